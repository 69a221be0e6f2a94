"""Max and average pooling kernels (NCHW), forward and backward.

Each kernel runs plane functions over the N*C (H, W) planes in parallel: the
vector kernels of ``pool_simd_t.h`` where they serve the geometry and the CPU,
else the portable ones of ``pool_planes_t.h`` (and always the scatter of
``pool_max_backward_rows`` for the gradient of max pooling). A plane (or, in the
vector forward kernels and the max-pooling gradients with fewer planes than
threads, a band of its rows) is written by one thread only, each output
computed the same way whatever the split, so results do not depend on the
thread count. The wrapper checks every argument; ``geom`` is (fh, fw, sh, sw,
dh, dw, top, left, bottom, right).
"""
from cython.parallel cimport parallel, prange
from libc.stdint cimport int64_t

import numpy as np

from pyconv import cpu
from pyconv._validation import empty

from _interrupt cimport pc_again, pc_guard, pc_guard_new, pc_stop_flag, pc_stopped
from _openmp_helpers cimport omp_get_thread_num

ctypedef fused floating:
    float
    double


# per-thread workspace (a plane's worth for strided windows): refused up front when it
# cannot fit, as outputs are
SCRATCH = "the pooling workspace (per thread)"


cdef extern from "pool.h" nogil:
    ctypedef struct pool_geom:
        Py_ssize_t h, w, oh, ow, fh, fw, sh, sw, dh, dw, top, left, bottom, right
    int pool_simd_geometry(const pool_geom *g)
    Py_ssize_t pool_share_size(const pool_geom *g)
    Py_ssize_t pool_phase_size(const pool_geom *g)
    int pool_simd_rows_f32(int level, const float *x, const pool_geom *g, int avg, Py_ssize_t i0,
                           Py_ssize_t i1, float *out, int64_t *idx)
    int pool_simd_rows_f64(int level, const double *x, const pool_geom *g, int avg,
                           Py_ssize_t i0, Py_ssize_t i1, double *out, int64_t *idx)
    int pool_simd_avg_backward_f32(int level, const float *dout, const pool_geom *g,
                                   float *scratch, float *dx)
    int pool_simd_avg_backward_f64(int level, const double *dout, const pool_geom *g,
                                   double *scratch, double *dx)
    void pool_max_plane_f32(int level, const float *x, const pool_geom *g, float *out,
                            int64_t *idx, float *buf)
    void pool_max_plane_f64(int level, const double *x, const pool_geom *g, double *out,
                            int64_t *idx, double *buf)
    void pool_avg_plane_f32(int level, const float *x, const pool_geom *g, int count_include_pad,
                            float *out)
    void pool_avg_plane_f64(int level, const double *x, const pool_geom *g,
                            int count_include_pad, double *out)
    Py_ssize_t pool_max_backward_rows_f32(int level, const float *dout, const int64_t *idx,
                                          Py_ssize_t hw, Py_ssize_t ohw, Py_ssize_t lo,
                                          Py_ssize_t hi, float *dx)
    Py_ssize_t pool_max_backward_rows_f64(int level, const double *dout, const int64_t *idx,
                                          Py_ssize_t hw, Py_ssize_t ohw, Py_ssize_t lo,
                                          Py_ssize_t hi, double *dx)
    void pool_avg_backward_plane_f32(int level, const float *dout, const pool_geom *g,
                                     int count_include_pad, float *share, float *dx)
    void pool_avg_backward_plane_f64(int level, const double *dout, const pool_geom *g,
                                     int count_include_pad, double *share, double *dx)


cdef bint use_simd(int level, const pool_geom *g) noexcept nogil:
    """Whether the vector kernels of pool_simd_t.h serve this call at CPU level `level`."""
    return level != 0 and pool_simd_geometry(g)


cdef Py_ssize_t row_bands(Py_ssize_t planes, Py_ssize_t rows, int num_threads) noexcept nogil:
    """Bands to cut each plane into so that fewer planes than threads still keep every
    thread busy (1 when there are enough planes)."""
    if planes >= num_threads:
        return 1
    return min(rows, (num_threads + planes - 1) // planes)


cdef void simd_pool(int level, const floating *x, const pool_geom *g, Py_ssize_t planes,
                    int avg, floating *out, int64_t *idx, int num_threads,
                    const pc_stop_flag *stop) noexcept nogil:
    """The vector forward kernels over all planes (with idx, max pooling also gives the
    indices), each plane cut into row_bands bands of output rows (computed as they would be
    whole); the bands left once stop is set are skipped."""
    cdef Py_ssize_t t, p, b, bands = row_bands(planes, g.oh, num_threads)
    cdef Py_ssize_t hw = g.h * g.w, ohw = g.oh * g.ow
    for t in prange(planes * bands, schedule="static", num_threads=num_threads):
        if pc_stopped(stop):
            continue
        p = t // bands
        b = t % bands
        if floating is float:
            pool_simd_rows_f32(level, x + p * hw, g, avg, b * g.oh // bands,
                                  (b + 1) * g.oh // bands, out + p * ohw,
                                  idx + p * ohw if idx != NULL else NULL)
        else:
            pool_simd_rows_f64(level, x + p * hw, g, avg, b * g.oh // bands,
                                  (b + 1) * g.oh // bands, out + p * ohw,
                                  idx + p * ohw if idx != NULL else NULL)


cdef pool_geom make_geom(Py_ssize_t h, Py_ssize_t w, Py_ssize_t oh, Py_ssize_t ow, tuple geom):
    cdef pool_geom g
    g.h, g.w, g.oh, g.ow = h, w, oh, ow
    g.fh, g.fw, g.sh, g.sw, g.dh, g.dw, g.top, g.left, g.bottom, g.right = geom
    return g


def max_pool2d(const floating[:, :, :, ::1] x, floating[:, :, :, ::1] out,
               int64_t[:, :, :, ::1] indices, tuple geom, int num_threads):
    """Fill out (N, C, OH, OW) with window maxima of x (N, C, H, W), and indices unless None."""
    cdef pool_geom g = make_geom(x.shape[2], x.shape[3], out.shape[2], out.shape[3], geom)
    cdef int level = cpu.level()
    cdef Py_ssize_t p, planes = x.shape[0] * x.shape[1]
    cdef Py_ssize_t hw = g.h * g.w, ohw = g.oh * g.ow
    cdef const floating *xp = &x[0, 0, 0, 0]
    cdef floating *op = &out[0, 0, 0, 0]
    cdef int64_t *ip = NULL
    cdef pc_guard guard = pc_guard_new()
    if indices is not None:
        ip = &indices[0, 0, 0, 0]
    if use_simd(level, &g):
        while pc_again(&guard):
            with nogil:
                simd_pool(level, xp, &g, planes, 0, op, ip, num_threads, guard.stop)
        return
    cdef floating[:, ::1] scratch = empty((num_threads, pool_phase_size(&g)),
                                          np.float32 if floating is float else np.float64,
                                          SCRATCH)
    cdef floating *buf
    while pc_again(&guard):
        with nogil, parallel(num_threads=num_threads):
            buf = &scratch[omp_get_thread_num(), 0]
            for p in prange(planes, schedule="static"):
                if pc_stopped(guard.stop):
                    continue
                if floating is float:
                    pool_max_plane_f32(level, xp + p * hw, &g, op + p * ohw,
                                   ip + p * ohw if ip != NULL else NULL, buf)
                else:
                    pool_max_plane_f64(level, xp + p * hw, &g, op + p * ohw,
                                   ip + p * ohw if ip != NULL else NULL, buf)


def avg_pool2d(const floating[:, :, :, ::1] x, floating[:, :, :, ::1] out, tuple geom,
               bint count_include_pad, int num_threads):
    """Fill out (N, C, OH, OW) with window means of x (N, C, H, W)."""
    cdef pool_geom g = make_geom(x.shape[2], x.shape[3], out.shape[2], out.shape[3], geom)
    cdef int level = cpu.level()
    cdef Py_ssize_t p, planes = x.shape[0] * x.shape[1]
    cdef Py_ssize_t hw = g.h * g.w, ohw = g.oh * g.ow
    cdef const floating *xp = &x[0, 0, 0, 0]
    cdef floating *op = &out[0, 0, 0, 0]
    cdef pc_guard guard = pc_guard_new()
    cdef bint simd = use_simd(level, &g)
    while pc_again(&guard):
        if simd:
            with nogil:
                simd_pool(level, xp, &g, planes, 1, op, NULL, num_threads, guard.stop)
            continue
        for p in prange(planes, nogil=True, schedule="static", num_threads=num_threads):
            if pc_stopped(guard.stop):
                continue
            if floating is float:
                pool_avg_plane_f32(level, xp + p * hw, &g, count_include_pad, op + p * ohw)
            else:
                pool_avg_plane_f64(level, xp + p * hw, &g, count_include_pad, op + p * ohw)


def max_pool2d_backward(const floating[:, :, :, ::1] dout, const int64_t[:, :, :, ::1] indices,
                        floating[:, :, :, ::1] dx, tuple geom, int num_threads):
    """Fill dx (N, C, H, W) with dout (N, C, OH, OW) summed at the flat plane indices.

    Each plane is cut into row_bands bands of input rows, each scattered to by one thread
    (it reads all the plane's indices and keeps those in its rows). Returns nonzero when
    indices lie outside [0, H*W): those are skipped, and the wrapper refuses the call.
    """
    cdef pool_geom g = make_geom(dx.shape[2], dx.shape[3], dout.shape[2], dout.shape[3], geom)
    cdef int level = cpu.level()
    cdef Py_ssize_t t, p, b, planes = dx.shape[0] * dx.shape[1], outside = 0
    cdef Py_ssize_t hw = g.h * g.w, ohw = g.oh * g.ow
    cdef Py_ssize_t bands = row_bands(planes, g.h, num_threads)
    cdef const floating *dp = &dout[0, 0, 0, 0]
    cdef const int64_t *ip = &indices[0, 0, 0, 0]
    cdef floating *xp = &dx[0, 0, 0, 0]
    cdef pc_guard guard = pc_guard_new()
    while pc_again(&guard):
        outside = 0
        for t in prange(planes * bands, nogil=True, schedule="static", num_threads=num_threads):
            if pc_stopped(guard.stop):
                continue
            p = t // bands
            b = t % bands
            if floating is float:
                outside += pool_max_backward_rows_f32(level, dp + p * ohw, ip + p * ohw, hw, ohw,
                                                  b * g.h // bands * g.w,
                                                  (b + 1) * g.h // bands * g.w, xp + p * hw)
            else:
                outside += pool_max_backward_rows_f64(level, dp + p * ohw, ip + p * ohw, hw, ohw,
                                                  b * g.h // bands * g.w,
                                                  (b + 1) * g.h // bands * g.w, xp + p * hw)
    return outside


def max_pool2d_backward_recompute(const floating[:, :, :, ::1] dout,
                                  const floating[:, :, :, ::1] x, floating[:, :, :, ::1] dx,
                                  tuple geom, int num_threads):
    """Fill dx (N, C, H, W) with dout (N, C, OH, OW) summed at the maxima of x.

    Row bands as in max_pool2d_backward; each band's thread finds the plane's maxima (with
    the vector forward kernel where it serves) and scatters into its rows.
    """
    cdef pool_geom g = make_geom(x.shape[2], x.shape[3], dout.shape[2], dout.shape[3], geom)
    cdef int level = cpu.level()
    cdef Py_ssize_t t, p, b, planes = x.shape[0] * x.shape[1]
    cdef Py_ssize_t hw = g.h * g.w, ohw = g.oh * g.ow
    cdef Py_ssize_t bands = row_bands(planes, g.h, num_threads)
    cdef const floating *dp = &dout[0, 0, 0, 0]
    cdef const floating *xp = &x[0, 0, 0, 0]
    cdef floating *gp = &dx[0, 0, 0, 0]
    dtype = np.float32 if floating is float else np.float64
    cdef floating[:, ::1] values = empty((num_threads, ohw), dtype, SCRATCH)
    cdef int64_t[:, ::1] winners = empty((num_threads, ohw), np.int64, SCRATCH)
    cdef bint simd = use_simd(level, &g)
    cdef floating[:, ::1] scratch = empty((num_threads, 1 if simd else pool_phase_size(&g)), dtype,
                                          SCRATCH)
    cdef floating *vals
    cdef floating *buf
    cdef int64_t *wins
    cdef pc_guard guard = pc_guard_new()
    while pc_again(&guard):
        with nogil, parallel(num_threads=num_threads):
            vals = &values[omp_get_thread_num(), 0]
            wins = &winners[omp_get_thread_num(), 0]
            buf = &scratch[omp_get_thread_num(), 0]
            for t in prange(planes * bands, schedule="static"):
                if pc_stopped(guard.stop):
                    continue
                p = t // bands
                b = t % bands
                if floating is float:
                    if not (simd and pool_simd_rows_f32(level, xp + p * hw, &g, 0, 0, g.oh, vals, wins)):
                        pool_max_plane_f32(level, xp + p * hw, &g, vals, wins, buf)
                    pool_max_backward_rows_f32(level, dp + p * ohw, wins, hw, ohw, b * g.h // bands * g.w,
                                           (b + 1) * g.h // bands * g.w, gp + p * hw)
                else:
                    if not (simd and pool_simd_rows_f64(level, xp + p * hw, &g, 0, 0, g.oh, vals, wins)):
                        pool_max_plane_f64(level, xp + p * hw, &g, vals, wins, buf)
                    pool_max_backward_rows_f64(level, dp + p * ohw, wins, hw, ohw, b * g.h // bands * g.w,
                                           (b + 1) * g.h // bands * g.w, gp + p * hw)


def avg_pool2d_backward(const floating[:, :, :, ::1] dout, floating[:, :, :, ::1] dx, tuple geom,
                        bint count_include_pad, int num_threads):
    """Fill dx (N, C, H, W) with the gradient of average pooling for dout (N, C, OH, OW)."""
    cdef pool_geom g = make_geom(dx.shape[2], dx.shape[3], dout.shape[2], dout.shape[3], geom)
    cdef int level = cpu.level()
    cdef Py_ssize_t p, planes = dx.shape[0] * dx.shape[1]
    cdef Py_ssize_t hw = g.h * g.w, ohw = g.oh * g.ow
    cdef const floating *dp = &dout[0, 0, 0, 0]
    cdef floating *gp = &dx[0, 0, 0, 0]
    cdef bint simd = use_simd(level, &g)
    cdef floating[:, ::1] share = empty((num_threads, pool_share_size(&g) if simd else g.ow),
                                        np.float32 if floating is float else np.float64,
                                        SCRATCH)
    share[:, :] = 0  # the vector kernel's padding
    cdef floating *buf
    cdef pc_guard guard = pc_guard_new()
    while pc_again(&guard):
        with nogil, parallel(num_threads=num_threads):
            buf = &share[omp_get_thread_num(), 0]
            for p in prange(planes, schedule="static"):
                if pc_stopped(guard.stop):
                    continue
                if simd:
                    if floating is float:
                        pool_simd_avg_backward_f32(level, dp + p * ohw, &g, buf, gp + p * hw)
                    else:
                        pool_simd_avg_backward_f64(level, dp + p * ohw, &g, buf, gp + p * hw)
                elif floating is float:
                    pool_avg_backward_plane_f32(level, dp + p * ohw, &g, count_include_pad, buf, gp + p * hw)
                else:
                    pool_avg_backward_plane_f64(level, dp + p * ohw, &g, count_include_pad, buf, gp + p * hw)


# ------------------------------------------------------------------ channels last

cdef extern from "pool_nhwc.h" nogil:
    void pool_nhwc_max_rows_f32(int level, const float *x, const pool_geom *g, Py_ssize_t c,
                                Py_ssize_t i0, Py_ssize_t i1, int stream, float *out,
                                int64_t *idx)
    void pool_nhwc_max_rows_f64(int level, const double *x, const pool_geom *g, Py_ssize_t c,
                                Py_ssize_t i0, Py_ssize_t i1, int stream, double *out,
                                int64_t *idx)
    void pool_nhwc_avg_rows_f32(int level, const float *x, const pool_geom *g, Py_ssize_t c,
                                int count_include_pad, Py_ssize_t i0, Py_ssize_t i1, int stream,
                                float *out)
    void pool_nhwc_avg_rows_f64(int level, const double *x, const pool_geom *g, Py_ssize_t c,
                                int count_include_pad, Py_ssize_t i0, Py_ssize_t i1, int stream,
                                double *out)
    Py_ssize_t pool_nhwc_max_backward_band_f32(int level, const float *dout, const int64_t *idx,
                                               const pool_geom *g, Py_ssize_t c, Py_ssize_t r0,
                                               Py_ssize_t r1, float *dx)
    Py_ssize_t pool_nhwc_max_backward_band_f64(int level, const double *dout, const int64_t *idx,
                                               const pool_geom *g, Py_ssize_t c, Py_ssize_t r0,
                                               Py_ssize_t r1, double *dx)
    void pool_nhwc_max_backward_recompute_band_f32(int level, const float *dout, const float *x,
                                                   const pool_geom *g, Py_ssize_t c,
                                                   Py_ssize_t r0, Py_ssize_t r1, float *vals,
                                                   int64_t *wins, float *dx)
    void pool_nhwc_max_backward_recompute_band_f64(int level, const double *dout,
                                                   const double *x, const pool_geom *g,
                                                   Py_ssize_t c, Py_ssize_t r0, Py_ssize_t r1,
                                                   double *vals, int64_t *wins, double *dx)
    void pool_nhwc_avg_backward_band_f32(int level, const float *dout, const pool_geom *g,
                                         Py_ssize_t c, int count_include_pad, Py_ssize_t r0,
                                         Py_ssize_t r1, float *share, float *dx)
    void pool_nhwc_avg_backward_band_f64(int level, const double *dout, const pool_geom *g,
                                         Py_ssize_t c, int count_include_pad, Py_ssize_t r0,
                                         Py_ssize_t r1, double *share, double *dx)
    int pool_nhwc_gather(const pool_geom *g, int f32)
    Py_ssize_t pool_nhwc_ring_rows(const pool_geom *g)
    Py_ssize_t POOL_NHWC_STREAM_BYTES
    void pool_nhwc_taps(const pool_geom *g, Py_ssize_t *taps)
    Py_ssize_t pool_nhwc_max_backward_gather_band_f32(
        int level, const float *dout, const int64_t *idx, const pool_geom *g, Py_ssize_t c,
        const Py_ssize_t *taps, Py_ssize_t r0, Py_ssize_t r1, void *ring, int stream,
        float *dx)
    Py_ssize_t pool_nhwc_max_backward_gather_band_f64(
        int level, const double *dout, const int64_t *idx, const pool_geom *g, Py_ssize_t c,
        const Py_ssize_t *taps, Py_ssize_t r0, Py_ssize_t r1, void *ring, int stream,
        double *dx)
    void pool_nhwc_avg_backward_gather_band_f32(
        int level, const float *dout, const pool_geom *g, Py_ssize_t c, int count_include_pad,
        const Py_ssize_t *taps, Py_ssize_t r0, Py_ssize_t r1, float *ring, int stream,
        float *dx)
    void pool_nhwc_avg_backward_gather_band_f64(
        int level, const double *dout, const pool_geom *g, Py_ssize_t c, int count_include_pad,
        const Py_ssize_t *taps, Py_ssize_t r0, Py_ssize_t r1, double *ring, int stream,
        double *dx)


def max_pool2d_nhwc(const floating[:, :, :, ::1] x, floating[:, :, :, ::1] out,
                    int64_t[:, :, :, ::1] indices, tuple geom, int num_threads):
    """Fill out (N, OH, OW, C) with window maxima of x (N, H, W, C), and indices unless None.

    Items are (image, output row), each written by one thread.
    """
    cdef pool_geom g = make_geom(x.shape[1], x.shape[2], out.shape[1], out.shape[2], geom)
    cdef int level = cpu.level()
    cdef Py_ssize_t t, n, i, c = x.shape[3]
    cdef Py_ssize_t hwc = g.h * g.w * c, ohwc = g.oh * g.ow * c
    cdef const floating *xp = &x[0, 0, 0, 0]
    cdef floating *op = &out[0, 0, 0, 0]
    cdef int64_t *ip = NULL
    cdef int stream = x.shape[0] * (hwc + ohwc) * sizeof(floating) >= POOL_NHWC_STREAM_BYTES
    cdef pc_guard guard = pc_guard_new()
    if indices is not None:
        ip = &indices[0, 0, 0, 0]
    while pc_again(&guard):
        for t in prange(x.shape[0] * g.oh, nogil=True, schedule="static",
                        num_threads=num_threads):
            if pc_stopped(guard.stop):
                continue
            n = t // g.oh
            i = t % g.oh
            if floating is float:
                pool_nhwc_max_rows_f32(level, xp + n * hwc, &g, c, i, i + 1, stream, op + n * ohwc,
                                       ip + n * ohwc if ip != NULL else NULL)
            else:
                pool_nhwc_max_rows_f64(level, xp + n * hwc, &g, c, i, i + 1, stream, op + n * ohwc,
                                       ip + n * ohwc if ip != NULL else NULL)


def avg_pool2d_nhwc(const floating[:, :, :, ::1] x, floating[:, :, :, ::1] out, tuple geom,
                    bint count_include_pad, int num_threads):
    """Fill out (N, OH, OW, C) with window means of x (N, H, W, C); items as max_pool2d_nhwc."""
    cdef pool_geom g = make_geom(x.shape[1], x.shape[2], out.shape[1], out.shape[2], geom)
    cdef int level = cpu.level()
    cdef Py_ssize_t t, n, i, c = x.shape[3]
    cdef Py_ssize_t hwc = g.h * g.w * c, ohwc = g.oh * g.ow * c
    cdef const floating *xp = &x[0, 0, 0, 0]
    cdef floating *op = &out[0, 0, 0, 0]
    cdef int stream = x.shape[0] * (hwc + ohwc) * sizeof(floating) >= POOL_NHWC_STREAM_BYTES
    cdef pc_guard guard = pc_guard_new()
    while pc_again(&guard):
        for t in prange(x.shape[0] * g.oh, nogil=True, schedule="static",
                        num_threads=num_threads):
            if pc_stopped(guard.stop):
                continue
            n = t // g.oh
            i = t % g.oh
            if floating is float:
                pool_nhwc_avg_rows_f32(level, xp + n * hwc, &g, c, count_include_pad, i, i + 1,
                                       stream, op + n * ohwc)
            else:
                pool_nhwc_avg_rows_f64(level, xp + n * hwc, &g, c, count_include_pad, i, i + 1,
                                       stream, op + n * ohwc)


def max_pool2d_backward_nhwc(const floating[:, :, :, ::1] dout,
                             const int64_t[:, :, :, ::1] indices, floating[:, :, :, ::1] dx,
                             tuple geom, int num_threads):
    """Fill dx (N, H, W, C) with dout (N, OH, OW, C) summed at the flat pixel indices.

    Items are (image, band of input rows), row_bands bands per image, each written by one
    thread: gathered where the geometry allows (pool_nhwc_gather) and every index lies in
    its window, else scattered. Returns nonzero when indices lie outside [0, H*W) (skipped;
    the wrapper refuses the call).
    """
    cdef pool_geom g = make_geom(dx.shape[1], dx.shape[2], dout.shape[1], dout.shape[2], geom)
    cdef int level = cpu.level()
    cdef Py_ssize_t t, n, b, c = dx.shape[3], outside = 0, matched = 0
    cdef Py_ssize_t hwc = g.h * g.w * c, ohwc = g.oh * g.ow * c
    cdef Py_ssize_t bands = row_bands(dx.shape[0], g.h, num_threads)
    cdef const floating *dp = &dout[0, 0, 0, 0]
    cdef const int64_t *ip = &indices[0, 0, 0, 0]
    cdef floating *xp = &dx[0, 0, 0, 0]
    cdef Py_ssize_t[::1] taps
    cdef floating[:, ::1] ring
    cdef void *rp
    cdef int stream = dx.shape[0] * ((hwc + ohwc) * sizeof(floating) + ohwc * 8) >= POOL_NHWC_STREAM_BYTES
    cdef pc_guard guard = pc_guard_new()
    if pool_nhwc_gather(&g, floating is float):
        taps = np.empty(2 * (g.h + g.w), np.intp)
        pool_nhwc_taps(&g, &taps[0])
        # float narrows the indices to 32 bits, double reads them in place
        ring = empty((num_threads, pool_nhwc_ring_rows(&g) * g.ow * c if floating is float
                      else 1), np.float32 if floating is float else np.float64, SCRATCH)
        while pc_again(&guard):
            matched = 0
            with nogil, parallel(num_threads=num_threads):
                rp = &ring[omp_get_thread_num(), 0]
                for t in prange(dx.shape[0] * bands, schedule="static"):
                    if pc_stopped(guard.stop):
                        continue
                    n = t // bands
                    b = t % bands
                    if floating is float:
                        matched += pool_nhwc_max_backward_gather_band_f32(
                            level, dp + n * ohwc, ip + n * ohwc, &g, c, &taps[0],
                            b * g.h // bands, (b + 1) * g.h // bands, rp, stream, xp + n * hwc)
                    else:
                        matched += pool_nhwc_max_backward_gather_band_f64(
                            level, dp + n * ohwc, ip + n * ohwc, &g, c, &taps[0],
                            b * g.h // bands, (b + 1) * g.h // bands, rp, stream, xp + n * hwc)
        if matched == dx.shape[0] * ohwc:
            return 0
        guard = pc_guard_new()
    while pc_again(&guard):
        outside = 0
        for t in prange(dx.shape[0] * bands, nogil=True, schedule="static",
                        num_threads=num_threads):
            if pc_stopped(guard.stop):
                continue
            n = t // bands
            b = t % bands
            if floating is float:
                outside += pool_nhwc_max_backward_band_f32(
                    level, dp + n * ohwc, ip + n * ohwc, &g, c, b * g.h // bands,
                    (b + 1) * g.h // bands, xp + n * hwc)
            else:
                outside += pool_nhwc_max_backward_band_f64(
                    level, dp + n * ohwc, ip + n * ohwc, &g, c, b * g.h // bands,
                    (b + 1) * g.h // bands, xp + n * hwc)
    return outside


def max_pool2d_backward_recompute_nhwc(const floating[:, :, :, ::1] dout,
                                       const floating[:, :, :, ::1] x,
                                       floating[:, :, :, ::1] dx, tuple geom, int num_threads):
    """Fill dx (N, H, W, C) with dout (N, OH, OW, C) summed at the maxima of x (N, H, W, C);
    items as max_pool2d_backward_nhwc, each finding again the maxima its band receives."""
    cdef pool_geom g = make_geom(x.shape[1], x.shape[2], dout.shape[1], dout.shape[2], geom)
    cdef int level = cpu.level()
    cdef Py_ssize_t t, n, b, c = x.shape[3]
    cdef Py_ssize_t hwc = g.h * g.w * c, ohwc = g.oh * g.ow * c
    cdef Py_ssize_t bands = row_bands(x.shape[0], g.h, num_threads)
    cdef const floating *dp = &dout[0, 0, 0, 0]
    cdef const floating *xp = &x[0, 0, 0, 0]
    cdef floating *gp = &dx[0, 0, 0, 0]
    cdef floating[:, ::1] values = empty((num_threads, c),
                                         np.float32 if floating is float else np.float64, SCRATCH)
    cdef int64_t[:, ::1] winners = empty((num_threads, c), np.int64, SCRATCH)
    cdef floating *vals
    cdef int64_t *wins
    cdef pc_guard guard = pc_guard_new()
    while pc_again(&guard):
        with nogil, parallel(num_threads=num_threads):
            vals = &values[omp_get_thread_num(), 0]
            wins = &winners[omp_get_thread_num(), 0]
            for t in prange(x.shape[0] * bands, schedule="static"):
                if pc_stopped(guard.stop):
                    continue
                n = t // bands
                b = t % bands
                if floating is float:
                    pool_nhwc_max_backward_recompute_band_f32(
                        level, dp + n * ohwc, xp + n * hwc, &g, c, b * g.h // bands,
                        (b + 1) * g.h // bands, vals, wins, gp + n * hwc)
                else:
                    pool_nhwc_max_backward_recompute_band_f64(
                        level, dp + n * ohwc, xp + n * hwc, &g, c, b * g.h // bands,
                        (b + 1) * g.h // bands, vals, wins, gp + n * hwc)


def avg_pool2d_backward_nhwc(const floating[:, :, :, ::1] dout, floating[:, :, :, ::1] dx,
                             tuple geom, bint count_include_pad, int num_threads):
    """Fill dx (N, H, W, C) with the gradient of average pooling for dout (N, OH, OW, C);
    items as max_pool2d_backward_nhwc, gathered where the geometry allows."""
    cdef pool_geom g = make_geom(dx.shape[1], dx.shape[2], dout.shape[1], dout.shape[2], geom)
    cdef int level = cpu.level()
    cdef Py_ssize_t t, n, b, c = dx.shape[3]
    cdef Py_ssize_t hwc = g.h * g.w * c, ohwc = g.oh * g.ow * c
    cdef Py_ssize_t bands = row_bands(dx.shape[0], g.h, num_threads)
    cdef const floating *dp = &dout[0, 0, 0, 0]
    cdef floating *gp = &dx[0, 0, 0, 0]
    cdef Py_ssize_t[::1] taps
    cdef floating[:, ::1] ring
    cdef floating *rp
    cdef int stream = dx.shape[0] * (hwc + ohwc) * sizeof(floating) >= POOL_NHWC_STREAM_BYTES
    cdef floating[:, ::1] share
    cdef floating *buf
    cdef pc_guard guard = pc_guard_new()
    if pool_nhwc_gather(&g, 0):
        taps = np.empty(2 * (g.h + g.w), np.intp)
        pool_nhwc_taps(&g, &taps[0])
        ring = empty((num_threads, pool_nhwc_ring_rows(&g) * g.ow * c),
                     np.float32 if floating is float else np.float64, SCRATCH)
        while pc_again(&guard):
            with nogil, parallel(num_threads=num_threads):
                rp = &ring[omp_get_thread_num(), 0]
                for t in prange(dx.shape[0] * bands, schedule="static"):
                    if pc_stopped(guard.stop):
                        continue
                    n = t // bands
                    b = t % bands
                    if floating is float:
                        pool_nhwc_avg_backward_gather_band_f32(
                            level, dp + n * ohwc, &g, c, count_include_pad, &taps[0],
                            b * g.h // bands, (b + 1) * g.h // bands, rp, stream, gp + n * hwc)
                    else:
                        pool_nhwc_avg_backward_gather_band_f64(
                            level, dp + n * ohwc, &g, c, count_include_pad, &taps[0],
                            b * g.h // bands, (b + 1) * g.h // bands, rp, stream, gp + n * hwc)
        return
    share = empty((num_threads, c), np.float32 if floating is float else np.float64, SCRATCH)
    while pc_again(&guard):
        with nogil, parallel(num_threads=num_threads):
            buf = &share[omp_get_thread_num(), 0]
            for t in prange(dx.shape[0] * bands, schedule="static"):
                if pc_stopped(guard.stop):
                    continue
                n = t // bands
                b = t % bands
                if floating is float:
                    pool_nhwc_avg_backward_band_f32(level, dp + n * ohwc, &g, c,
                                                    count_include_pad, b * g.h // bands,
                                                    (b + 1) * g.h // bands, buf, gp + n * hwc)
                else:
                    pool_nhwc_avg_backward_band_f64(level, dp + n * ohwc, &g, c,
                                                    count_include_pad, b * g.h // bands,
                                                    (b + 1) * g.h // bands, buf, gp + n * hwc)
