"""Convolution kernels for channels-last (N, H, W, C) images.

The depthwise forward and filter gradient (filters that each read one input
channel) live in conv_depthwise_nhwc_t.h; this module runs them over (image,
output row or band of rows) items in parallel. Every array is C-contiguous and of one dtype (the caller guarantees it).
"""
from cython.parallel cimport parallel, prange
from libc.stdint cimport uintptr_t
from libc.stdlib cimport free, malloc

from _interrupt cimport pc_again, pc_guard, pc_guard_new, pc_stopped

from pyconv import cpu

# items per thread of the depthwise forward, and the fewest output rows per item
cdef Py_ssize_t _BAND_ITEMS_PER_THREAD = 4
cdef Py_ssize_t _MIN_BAND = 4

ctypedef fused floating:
    float
    double


cdef extern from "nhwc_swap.h" nogil:
    void nhwc_transpose_f32(int level, const float *a, Py_ssize_t rows, Py_ssize_t cols,
                            Py_ssize_t lda, float *b, Py_ssize_t ldb)
    void nhwc_transpose_f64(int level, const double *a, Py_ssize_t rows, Py_ssize_t cols,
                            Py_ssize_t lda, double *b, Py_ssize_t ldb)


cdef extern from "conv_depthwise_nhwc.h" nogil:
    ctypedef struct dwn_geom:
        Py_ssize_t h, w, c, k, m, oh, ow, fh, fw, sh, sw, dh, dw, top, left
    void dwn_forward_band_f32(int level, const float *x, const float *wt, const float *bias,
                              const dwn_geom *g, Py_ssize_t i0, Py_ssize_t i1, float *out,
                              float *ring, int stream)
    void dwn_forward_band_f64(int level, const double *x, const double *wt, const double *bias,
                              const dwn_geom *g, Py_ssize_t i0, Py_ssize_t i1, double *out,
                              double *ring, int stream)
    Py_ssize_t dwn_ring_bytes(const dwn_geom *g, int level, Py_ssize_t elem)
    void dwn_filter_grad_band_f32(int level, const float *dout, const float *x,
                                  const dwn_geom *g, Py_ssize_t i0, Py_ssize_t i1, float *part,
                                  float *ring)
    void dwn_filter_grad_band_f64(int level, const double *dout, const double *x,
                                  const dwn_geom *g, Py_ssize_t i0, Py_ssize_t i1, double *part,
                                  double *ring)
    Py_ssize_t dwn_grad_ring_bytes(const dwn_geom *g, int level, Py_ssize_t elem)


def depthwise_forward(const floating[:, :, :, ::1] x, const floating[:, ::1] wt,
                      const floating[::1] b, floating[:, :, :, ::1] out, Py_ssize_t fh,
                      Py_ssize_t fw, Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t pt, Py_ssize_t pl,
                      Py_ssize_t dh, Py_ssize_t dw, bint stream, int num_threads):
    """Fill out (N, OH, OW, K) with the depthwise convolution of x (N, H, W, C) by the filters
    wt (FH*FW, K) packed tap by tap (filter k reads channel k // (K // C)), plus b (K,) or,
    for b of shape (0,), no bias: over (image, band of output rows) items, at least
    _BAND_ITEMS_PER_THREAD per thread, each thread with its own ring of input rows (see
    dwn_forward_band)."""
    cdef dwn_geom g
    cdef int level = cpu.level()
    cdef Py_ssize_t t, n, i0, i1, band, bands, items
    cdef size_t ring_bytes
    cdef char *raw = NULL
    cdef int failed[1]
    g.h, g.w, g.c = x.shape[1], x.shape[2], x.shape[3]
    g.oh, g.ow, g.k = out.shape[1], out.shape[2], out.shape[3]
    g.m = g.k // g.c
    g.fh, g.fw, g.sh, g.sw, g.dh, g.dw, g.top, g.left = fh, fw, sh, sw, dh, dw, pt, pl
    if out.shape[0] == 0 or g.oh == 0 or g.ow == 0:
        return
    cdef Py_ssize_t hwc = g.h * g.w * g.c, ohwk = g.oh * g.ow * g.k
    cdef const floating *xp = &x[0, 0, 0, 0]
    cdef const floating *wp = &wt[0, 0]
    cdef const floating *bp = &b[0] if b.shape[0] else NULL
    cdef floating *op = &out[0, 0, 0, 0]
    cdef floating *ring
    # bands of output rows: enough items for every thread, none shorter than _MIN_BAND rows
    # where the image has that many (a band copies the rows above its first once more)
    bands = (_BAND_ITEMS_PER_THREAD * max(num_threads, 1) + out.shape[0] - 1) // out.shape[0]
    band = max((g.oh + bands - 1) // bands, min(g.oh, _MIN_BAND))
    bands = (g.oh + band - 1) // band
    items = out.shape[0] * bands
    ring_bytes = dwn_ring_bytes(&g, level, sizeof(floating))  # 0: the layer needs none
    failed[0] = 0  # an array element stays shared inside the parallel block
    cdef pc_guard guard = pc_guard_new()
    while pc_again(&guard):
        with nogil, parallel(num_threads=num_threads):
            raw = <char *>malloc(ring_bytes + 64) if ring_bytes else NULL
            if ring_bytes and raw == NULL:
                failed[0] = 1
            ring = <floating *>(raw + (-<uintptr_t>raw) % 64) if raw != NULL else NULL
            for t in prange(items, schedule="static"):
                if (ring_bytes and raw == NULL) or pc_stopped(guard.stop):
                    continue
                n = t // bands
                i0 = t % bands * band
                i1 = min(i0 + band, g.oh)
                if floating is float:
                    dwn_forward_band_f32(level, xp + n * hwc, wp, bp, &g, i0, i1, op + n * ohwk,
                                         ring, stream)
                else:
                    dwn_forward_band_f64(level, xp + n * hwc, wp, bp, &g, i0, i1, op + n * ohwk,
                                         ring, stream)
            free(raw)
    if failed[0]:
        raise MemoryError("could not allocate the depthwise convolution's ring of input rows")


def depthwise_filter_grad(const floating[:, :, :, ::1] dout, const floating[:, :, :, ::1] x,
                          floating[:, :, ::1] parts, Py_ssize_t band, Py_ssize_t fh,
                          Py_ssize_t fw, Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t pt,
                          Py_ssize_t pl, Py_ssize_t dh, Py_ssize_t dw, int num_threads):
    """Fill parts (N * ceil(OH / band), FH*FW, C) with the partial filter gradients of the
    depthwise convolution (one filter per channel) of x (N, H, W, C) whose output gradient
    is dout (N, OH, OW, C): one per image and band of output rows, in order, each thread
    with its own ring of input rows where the layer takes one (see dwn_filter_grad_band)."""
    cdef dwn_geom g
    cdef int level = cpu.level()
    cdef Py_ssize_t t, n, b, bands
    cdef size_t ring_bytes
    cdef char *raw = NULL
    cdef floating *ring
    cdef int failed[1]
    g.h, g.w, g.c = x.shape[1], x.shape[2], x.shape[3]
    g.oh, g.ow, g.k, g.m = dout.shape[1], dout.shape[2], dout.shape[3], 1
    g.fh, g.fw, g.sh, g.sw, g.dh, g.dw, g.top, g.left = fh, fw, sh, sw, dh, dw, pt, pl
    bands = (g.oh + band - 1) // band
    if parts.shape[0] == 0 or g.ow == 0:
        parts[...] = 0
        return
    cdef Py_ssize_t hwc = g.h * g.w * g.c, ohwc = g.oh * g.ow * g.c
    cdef Py_ssize_t per_part = parts.shape[1] * parts.shape[2]
    cdef const floating *dp = &dout[0, 0, 0, 0]
    cdef const floating *xp = &x[0, 0, 0, 0]
    cdef floating *pp = &parts[0, 0, 0]
    ring_bytes = dwn_grad_ring_bytes(&g, level, sizeof(floating))  # 0: the layer needs none
    failed[0] = 0  # an array element stays shared inside the parallel block
    cdef pc_guard guard = pc_guard_new()
    while pc_again(&guard):
        with nogil, parallel(num_threads=num_threads):
            raw = <char *>malloc(ring_bytes + 64) if ring_bytes else NULL
            if ring_bytes and raw == NULL:
                failed[0] = 1
            ring = <floating *>(raw + (-<uintptr_t>raw) % 64) if raw != NULL else NULL
            for t in prange(parts.shape[0], schedule="static"):
                if (ring_bytes and raw == NULL) or pc_stopped(guard.stop):
                    continue
                n = t // bands
                b = t % bands
                if floating is float:
                    dwn_filter_grad_band_f32(level, dp + n * ohwc, xp + n * hwc, &g, b * band,
                                             min(g.oh, (b + 1) * band), pp + t * per_part, ring)
                else:
                    dwn_filter_grad_band_f64(level, dp + n * ohwc, xp + n * hwc, &g, b * band,
                                             min(g.oh, (b + 1) * band), pp + t * per_part, ring)
            free(raw)
    if failed[0]:
        raise MemoryError("could not allocate the depthwise filter gradient's ring of input "
                          "rows")


# Tiles of swap_channels: TILE pixels by TILE channels, read along one axis and written
# along the other, both within L1.
cdef enum:
    TILE = 16


def swap_channels(const floating[:, :, :, :] x, floating[:, :, :, ::1] out, bint to_last,
                  int num_threads):
    """out (N, C, H, W) = x (N, H, W, C), or with ``to_last`` out (N, H, W, C) = x (N, C,
    H, W); x of any strides. One item per image row: transposed by nhwc_transpose (blocks
    of a vector's lanes square, in registers) where x's row runs contiguous along the axis
    it is read by, else in tiles of TILE pixels by TILE channels, one value at a time
    (NumPy's transposing copies ran at a third to a thirteenth of a copy's speed on the
    benchmark's layers; the tiles, from 2 threads, at 16-40 GB/s where a copy from one
    ran at 57-87)."""
    cdef Py_ssize_t n = out.shape[0], h = out.shape[2] if to_last == 0 else out.shape[1]
    cdef Py_ssize_t w = x.shape[2] if to_last == 0 else x.shape[3]
    cdef Py_ssize_t c = x.shape[3] if to_last == 0 else x.shape[1]
    cdef Py_ssize_t e = sizeof(floating)
    # element strides of a pixel (j) and a channel (k), in x and in out
    cdef Py_ssize_t xj = x.strides[2 if to_last == 0 else 3] // e
    cdef Py_ssize_t xk = x.strides[3 if to_last == 0 else 1] // e
    cdef Py_ssize_t oj = out.strides[3 if to_last == 0 else 2] // e
    cdef Py_ssize_t ok = out.strides[1 if to_last == 0 else 3] // e
    cdef Py_ssize_t item, b, i, tj, tc, j0, c0, j, k
    cdef const floating *src
    cdef floating *dst
    cdef int level = cpu.level()
    # whole rows by nhwc_transpose where x's rows run contiguous: to_last, C rows of W
    # pixels into W rows of C channels; else W rows of C channels into C rows of W pixels
    cdef bint rows = (xj == 1 and ok == 1) if to_last else (xk == 1 and oj == 1)
    cdef Py_ssize_t count = c if to_last else w, length = w if to_last else c
    cdef Py_ssize_t lda = xk if to_last else xj, ldb = oj if to_last else ok
    if c == 0 or w == 0:
        return
    cdef pc_guard guard = pc_guard_new()
    while pc_again(&guard):
        with nogil:
            for item in prange(n * h, schedule="static", num_threads=num_threads):
                if pc_stopped(guard.stop):
                    continue
                b = item // h
                i = item % h
                if to_last:
                    src = &x[b, 0, i, 0]
                    dst = &out[b, i, 0, 0]
                else:
                    src = &x[b, i, 0, 0]
                    dst = &out[b, 0, i, 0]
                if rows:
                    if floating is float:
                        nhwc_transpose_f32(level, src, count, length, lda, dst, ldb)
                    else:
                        nhwc_transpose_f64(level, src, count, length, lda, dst, ldb)
                    continue
                for tc in range((c + TILE - 1) // TILE):
                    c0 = tc * TILE
                    for tj in range((w + TILE - 1) // TILE):
                        j0 = tj * TILE
                        for k in range(c0, min(c0 + TILE, c)):
                            for j in range(j0, min(j0 + TILE, w)):
                                dst[j * oj + k * ok] = src[j * xj + k * xk]
