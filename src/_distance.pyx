"""L1 distance kernels."""
from cython.parallel cimport prange
from libc.math cimport fabs

ctypedef fused floating:
    float
    double


def l1_distances(const floating[:, ::1] X, const floating[:, ::1] Y, floating[:, ::1] D,
                 int num_threads):
    """Fill D (n_x, n_y) with sum_k |X[i, k] - Y[j, k]|; all C-contiguous, one dtype."""
    cdef Py_ssize_t i, j, k
    cdef Py_ssize_t n_x = X.shape[0], n_y = Y.shape[0], d = X.shape[1]
    cdef floating acc
    with nogil:
        for i in prange(n_x, schedule="static", num_threads=num_threads):
            for j in range(n_y):
                acc = 0
                for k in range(d):
                    acc = acc + fabs(X[i, k] - Y[j, k])
                D[i, j] = acc
