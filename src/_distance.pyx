"""L1 distance kernels: thin Cython wrappers over the SIMD/OpenMP C code of src/l1.h."""

from pyconv import cpu

ctypedef fused floating:
    float
    double


cdef extern from "l1.h" nogil:
    int l1_distances_f32(int level, const float *X, Py_ssize_t nx, const float *Y,
                         Py_ssize_t ny, Py_ssize_t d, float *D, int symmetric, int nthreads)
    int l1_distances_f64(int level, const double *X, Py_ssize_t nx, const double *Y,
                         Py_ssize_t ny, Py_ssize_t d, double *D, int symmetric, int nthreads)
    int l1_topk_f32(int level, const float *X, Py_ssize_t nx, const float *Y, Py_ssize_t ny,
                    Py_ssize_t d, Py_ssize_t k, float *dist, Py_ssize_t *idx, int nthreads)
    int l1_topk_f64(int level, const double *X, Py_ssize_t nx, const double *Y, Py_ssize_t ny,
                    Py_ssize_t d, Py_ssize_t k, double *dist, Py_ssize_t *idx, int nthreads)


def l1_distances(const floating[:, ::1] X, const floating[:, ::1] Y, floating[:, ::1] D,
                 bint symmetric, int num_threads):
    """Fill D (n_x, n_y) with sum_k |X[i, k] - Y[j, k]|; all C-contiguous, one dtype, d >= 1;
    symmetric: Y is X (half is computed, half copied)."""
    cdef Py_ssize_t n_x = X.shape[0], n_y = Y.shape[0], d = X.shape[1]
    cdef int rc, level = cpu.level()
    if n_x == 0 or n_y == 0:
        return
    with nogil:
        if floating is float:
            rc = l1_distances_f32(level, &X[0, 0],
                           n_x, &Y[0, 0], n_y, d,
                           &D[0, 0], symmetric, num_threads)
        else:
            rc = l1_distances_f64(level, &X[0, 0],
                           n_x, &Y[0, 0], n_y, d,
                           &D[0, 0], symmetric, num_threads)
    if rc != 0:
        raise MemoryError("l1_distances could not allocate its working block")


def l1_topk(const floating[:, ::1] X, const floating[:, ::1] Y, floating[:, ::1] dist,
            Py_ssize_t[:, ::1] idx, int num_threads):
    """Fill dist, idx (n_x, k) with the k nearest rows of Y per row of X; 1 <= k <= n_y, d >= 1."""
    cdef Py_ssize_t n_x = X.shape[0], n_y = Y.shape[0], d = X.shape[1], k = dist.shape[1]
    cdef int rc, level = cpu.level()
    if n_x == 0:
        return
    with nogil:
        if floating is float:
            rc = l1_topk_f32(level, &X[0, 0], n_x,
                                &Y[0, 0], n_y, d, k,
                                &dist[0, 0], &idx[0, 0], num_threads)
        else:
            rc = l1_topk_f64(level, &X[0, 0], n_x,
                                &Y[0, 0], n_y, d, k,
                                &dist[0, 0], &idx[0, 0], num_threads)
    if rc != 0:
        raise MemoryError("l1_topk could not allocate its working block")
