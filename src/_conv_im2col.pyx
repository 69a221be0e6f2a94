"""im2col / col2im and the small passes around the GEMMs of the im2col convolution.

A column buffer is viewed as ``col[n, c, u, v, i, j]`` (Nc, C, FH, FW, OH, OW) with
any strides but a contiguous last axis (checked: ``[..., ::1]`` would demand a
wholly C-contiguous array), so one kernel fills both the
image-major layout (Nc, C*FH*FW, OH*OW) and the image-inner layout
(C*FH*FW, Nc*OH*OW). ``col[n, c, u, v, i, j]`` is the input pixel
``x[n0 + n, c, i*sh - pt + u*dh, j*sw - pl + v*dw]``, zero outside the image.
"""
from cython.parallel cimport prange
from libc.string cimport memcpy, memset

ctypedef fused floating:
    float
    double


cdef inline Py_ssize_t _first_col(Py_ssize_t off, Py_ssize_t sw) noexcept nogil:
    """First output column j whose input column j*sw + off is >= 0."""
    return (-off + sw - 1) // sw if off < 0 else 0


cdef inline Py_ssize_t _end_col(Py_ssize_t off, Py_ssize_t width, Py_ssize_t sw,
                                Py_ssize_t ow) noexcept nogil:
    """One past the last output column j (< ow) whose input column j*sw + off is < width."""
    cdef Py_ssize_t end = 0
    if width - off > 0:
        end = (width - off + sw - 1) // sw
    return end if end < ow else ow


cdef _check_rows(Py_ssize_t size, Py_ssize_t stride, Py_ssize_t itemsize, str name):
    if size > 1 and stride != itemsize:
        raise ValueError(f"{name} must have a contiguous last axis, got stride {stride}")


def im2col(const floating[:, :, :, ::1] x, floating[:, :, :, :, :, :] col, Py_ssize_t n0,
           int sh, int sw, int pt, int pl, int dh, int dw, int num_threads):
    """Fill col (Nc, C, FH, FW, OH, OW) from images n0 .. n0+Nc-1 of x (N, C, H, W) entirely."""
    cdef Py_ssize_t nc = col.shape[0], c_in = col.shape[1], fh = col.shape[2]
    cdef Py_ssize_t fw = col.shape[3], oh = col.shape[4], ow = col.shape[5]
    cdef Py_ssize_t h = x.shape[2], w = x.shape[3]
    cdef Py_ssize_t item, n, c, u, v, i, j, hi, off, lo_j, hi_j, rest
    cdef floating *dst
    cdef const floating *src
    _check_rows(col.shape[5], col.strides[5], sizeof(floating), "col")
    with nogil:
        for item in prange(nc * c_in * fh * fw, schedule="static", num_threads=num_threads):
            v = item % fw
            rest = item // fw
            u = rest % fh
            rest = rest // fh
            c = rest % c_in
            n = rest // c_in
            off = v * dw - pl
            lo_j = _first_col(off, sw)
            hi_j = _end_col(off, w, sw, ow)
            if lo_j > hi_j:
                lo_j = hi_j
            for i in range(oh):
                dst = &col[n, c, u, v, i, 0]
                hi = i * sh - pt + u * dh
                if hi < 0 or hi >= h or lo_j == hi_j:
                    memset(dst, 0, ow * sizeof(floating))
                    continue
                src = &x[n0 + n, c, hi, 0]
                if lo_j > 0:
                    memset(dst, 0, lo_j * sizeof(floating))
                if sw == 1:
                    memcpy(dst + lo_j, src + lo_j + off, (hi_j - lo_j) * sizeof(floating))
                else:
                    for j in range(lo_j, hi_j):
                        dst[j] = src[j * sw + off]
                if hi_j < ow:
                    memset(dst + hi_j, 0, (ow - hi_j) * sizeof(floating))


def col2im(const floating[:, :, :, :, :, :] dcol, floating[:, :, :, ::1] dx, Py_ssize_t n0,
           int sh, int sw, int pt, int pl, int dh, int dw, int num_threads):
    """Overwrite dx[n0:n0+Nc] with dcol (Nc, C, FH, FW, OH, OW) summed where im2col read."""
    cdef Py_ssize_t nc = dcol.shape[0], c_in = dcol.shape[1], fh = dcol.shape[2]
    cdef Py_ssize_t fw = dcol.shape[3], oh = dcol.shape[4], ow = dcol.shape[5]
    cdef Py_ssize_t h = dx.shape[2], w = dx.shape[3]
    cdef Py_ssize_t item, n, c, u, v, i, j, hi, off, lo_j, hi_j
    cdef floating *row
    cdef const floating *src
    _check_rows(dcol.shape[5], dcol.strides[5], sizeof(floating), "dcol")
    with nogil:
        # one (image, channel) plane per iteration: no two threads write the same pixel
        for item in prange(nc * c_in, schedule="static", num_threads=num_threads):
            n = item // c_in
            c = item % c_in
            memset(&dx[n0 + n, c, 0, 0], 0, h * w * sizeof(floating))
            for u in range(fh):
                for v in range(fw):
                    off = v * dw - pl
                    lo_j = _first_col(off, sw)
                    hi_j = _end_col(off, w, sw, ow)
                    for i in range(oh):
                        hi = i * sh - pt + u * dh
                        if hi < 0 or hi >= h:
                            continue
                        row = &dx[n0 + n, c, hi, 0]
                        src = &dcol[n, c, u, v, i, 0]
                        for j in range(lo_j, hi_j):
                            row[j * sw + off] = row[j * sw + off] + src[j]


def copy_add_bias(const floating[:, :, :] src, const floating[::1] b, floating[:, :, ::1] dst,
                  int num_threads):
    """dst[n, k, p] = src[n, k, p] + b[k], or a plain copy when b is empty; src may be dst."""
    cdef Py_ssize_t nn = dst.shape[0], kk = dst.shape[1], pp = dst.shape[2]
    cdef Py_ssize_t item, n, k, p
    cdef bint bias = b.shape[0] > 0
    cdef floating bk
    cdef floating *d
    cdef const floating *s
    _check_rows(src.shape[2], src.strides[2], sizeof(floating), "src")
    with nogil:
        for item in prange(nn * kk, schedule="static", num_threads=num_threads):
            n = item // kk
            k = item % kk
            d = &dst[n, k, 0]
            s = &src[n, k, 0]
            if bias:
                bk = b[k]
                for p in range(pp):
                    d[p] = s[p] + bk
            elif d != s:
                memcpy(d, s, pp * sizeof(floating))


def bias_grad(const floating[:, :, ::1] dout, floating[::1] db, int num_threads):
    """db[k] = sum of dout[:, k, :] (N, K, P), accumulated in double in a fixed order."""
    cdef Py_ssize_t nn = dout.shape[0], kk = dout.shape[1], pp = dout.shape[2]
    cdef Py_ssize_t k, n, p
    cdef double acc
    cdef const floating *s
    with nogil:
        for k in prange(kk, schedule="static", num_threads=num_threads):
            acc = 0
            for n in range(nn):
                s = &dout[n, k, 0]
                for p in range(pp):
                    acc = acc + s[p]
            db[k] = <floating>acc
