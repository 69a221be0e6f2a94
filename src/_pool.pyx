"""Max and average pooling kernels (NCHW), forward and backward.

Each kernel runs plane functions over the N*C (H, W) planes in parallel: the
vector kernels of ``_pool_simd.h`` where they serve the geometry and the CPU,
else the portable ones of ``_pool_planes.h`` (and always the scatter of
``pc_max_backward_rows`` for the gradient of max pooling). A plane (or, in the
vector forward kernels and the max-pooling gradients with fewer planes than
threads, a band of its rows) is written by one thread only, each output
computed the same way whatever the split, so results do not depend on the
thread count. The wrapper checks every argument; ``geom`` is (fh, fw, sh, sw,
dh, dw, top, left, bottom, right).
"""
from cython.parallel cimport parallel, prange
from libc.stdint cimport int64_t

import numpy as np

from pyconv._validation import empty

from _openmp_helpers cimport omp_get_thread_num

ctypedef fused floating:
    float
    double


# per-thread workspace (a plane's worth for strided windows): refused up front when it
# cannot fit, as outputs are
SCRATCH = "the pooling workspace (per thread)"


cdef extern from "_pool_simd.h" nogil:
    ctypedef struct pc_geom:
        Py_ssize_t h, w, oh, ow, fh, fw, sh, sw, dh, dw, top, left, bottom, right
    int pc_forced_isa
    int pc_isa()
    int pc_cpu_isa()
    int pc_simd_geometry(const pc_geom *g)
    Py_ssize_t pc_share_size(const pc_geom *g)
    int pc_simd_pool_rows_f32(const float *x, const pc_geom *g, int avg, Py_ssize_t i0,
                              Py_ssize_t i1, float *out, int64_t *idx)
    int pc_simd_pool_rows_f64(const double *x, const pc_geom *g, int avg, Py_ssize_t i0,
                              Py_ssize_t i1, double *out, int64_t *idx)
    int pc_simd_avg_backward_plane_f32(const float *dout, const pc_geom *g, float *scratch,
                                       float *dx)
    int pc_simd_avg_backward_plane_f64(const double *dout, const pc_geom *g, double *scratch,
                                       double *dx)
    Py_ssize_t pc_phase_size(const pc_geom *g)
    void pc_max_plane_f(const float *x, const pc_geom *g, float *out, int64_t *idx, float *buf)
    void pc_max_plane_d(const double *x, const pc_geom *g, double *out, int64_t *idx,
                        double *buf)
    void pc_avg_plane_f(const float *x, const pc_geom *g, int count_include_pad, float *out)
    void pc_avg_plane_d(const double *x, const pc_geom *g, int count_include_pad, double *out)
    Py_ssize_t pc_max_backward_rows_f(const float *dout, const int64_t *idx, Py_ssize_t hw,
                                      Py_ssize_t ohw, Py_ssize_t lo, Py_ssize_t hi, float *dx)
    Py_ssize_t pc_max_backward_rows_d(const double *dout, const int64_t *idx, Py_ssize_t hw,
                                      Py_ssize_t ohw, Py_ssize_t lo, Py_ssize_t hi, double *dx)
    void pc_avg_backward_plane_f(const float *dout, const pc_geom *g, int count_include_pad,
                                 float *share, float *dx)
    void pc_avg_backward_plane_d(const double *dout, const pc_geom *g, int count_include_pad,
                                 double *share, double *dx)


ISAS = ("baseline", "avx2", "avx512")


def available_isas():
    """Instruction sets this build can run on this CPU, slowest first."""
    return ISAS[:pc_cpu_isa() + 1]


def current_isa():
    """The instruction set the kernels use now."""
    return ISAS[pc_isa()]


def force_isa(name):
    """Use instruction set ``name`` (None: the best available); returns the previous setting.

    For tests, which run every variant this CPU supports.
    """
    global pc_forced_isa
    previous = None if pc_forced_isa < 0 else ISAS[pc_forced_isa]
    if name is None:
        pc_forced_isa = -1
    elif name in available_isas():
        pc_forced_isa = ISAS.index(name)
    else:
        raise ValueError(f"isa must be one of {available_isas()} or None, got {name!r}")
    return previous


cdef bint use_simd(const pc_geom *g) noexcept nogil:
    """Whether the vector kernels of _pool_simd.h serve this call."""
    return pc_isa() != 0 and pc_simd_geometry(g)


cdef Py_ssize_t row_bands(Py_ssize_t planes, Py_ssize_t rows, int num_threads) noexcept nogil:
    """Bands to cut each plane into so that fewer planes than threads still keep every
    thread busy (1 when there are enough planes)."""
    if planes >= num_threads:
        return 1
    return min(rows, (num_threads + planes - 1) // planes)


cdef void simd_pool(const floating *x, const pc_geom *g, Py_ssize_t planes, int avg,
                    floating *out, int64_t *idx, int num_threads) noexcept nogil:
    """The vector forward kernels over all planes (with idx, max pooling also gives the
    indices), each plane cut into row_bands bands of output rows (computed as they would be
    whole)."""
    cdef Py_ssize_t t, p, b, bands = row_bands(planes, g.oh, num_threads)
    cdef Py_ssize_t hw = g.h * g.w, ohw = g.oh * g.ow
    for t in prange(planes * bands, schedule="static", num_threads=num_threads):
        p = t // bands
        b = t % bands
        if floating is float:
            pc_simd_pool_rows_f32(x + p * hw, g, avg, b * g.oh // bands,
                                  (b + 1) * g.oh // bands, out + p * ohw,
                                  idx + p * ohw if idx != NULL else NULL)
        else:
            pc_simd_pool_rows_f64(x + p * hw, g, avg, b * g.oh // bands,
                                  (b + 1) * g.oh // bands, out + p * ohw,
                                  idx + p * ohw if idx != NULL else NULL)


cdef pc_geom make_geom(Py_ssize_t h, Py_ssize_t w, Py_ssize_t oh, Py_ssize_t ow, tuple geom):
    cdef pc_geom g
    g.h, g.w, g.oh, g.ow = h, w, oh, ow
    g.fh, g.fw, g.sh, g.sw, g.dh, g.dw, g.top, g.left, g.bottom, g.right = geom
    return g


def max_pool2d(const floating[:, :, :, ::1] x, floating[:, :, :, ::1] out,
               int64_t[:, :, :, ::1] indices, tuple geom, int num_threads):
    """Fill out (N, C, OH, OW) with window maxima of x (N, C, H, W), and indices unless None."""
    cdef pc_geom g = make_geom(x.shape[2], x.shape[3], out.shape[2], out.shape[3], geom)
    cdef Py_ssize_t p, planes = x.shape[0] * x.shape[1]
    cdef Py_ssize_t hw = g.h * g.w, ohw = g.oh * g.ow
    cdef const floating *xp = &x[0, 0, 0, 0]
    cdef floating *op = &out[0, 0, 0, 0]
    cdef int64_t *ip = NULL
    if indices is not None:
        ip = &indices[0, 0, 0, 0]
    if use_simd(&g):
        simd_pool(xp, &g, planes, 0, op, ip, num_threads)
        return
    cdef floating[:, ::1] scratch = empty((num_threads, pc_phase_size(&g)),
                                          np.float32 if floating is float else np.float64,
                                          SCRATCH)
    cdef floating *buf
    with nogil, parallel(num_threads=num_threads):
        buf = &scratch[omp_get_thread_num(), 0]
        for p in prange(planes, schedule="static"):
            if floating is float:
                pc_max_plane_f(xp + p * hw, &g, op + p * ohw,
                               ip + p * ohw if ip != NULL else NULL, buf)
            else:
                pc_max_plane_d(xp + p * hw, &g, op + p * ohw,
                               ip + p * ohw if ip != NULL else NULL, buf)


def avg_pool2d(const floating[:, :, :, ::1] x, floating[:, :, :, ::1] out, tuple geom,
               bint count_include_pad, int num_threads):
    """Fill out (N, C, OH, OW) with window means of x (N, C, H, W)."""
    cdef pc_geom g = make_geom(x.shape[2], x.shape[3], out.shape[2], out.shape[3], geom)
    cdef Py_ssize_t p, planes = x.shape[0] * x.shape[1]
    cdef Py_ssize_t hw = g.h * g.w, ohw = g.oh * g.ow
    cdef const floating *xp = &x[0, 0, 0, 0]
    cdef floating *op = &out[0, 0, 0, 0]
    if use_simd(&g):
        simd_pool(xp, &g, planes, 1, op, NULL, num_threads)
        return
    for p in prange(planes, nogil=True, schedule="static", num_threads=num_threads):
        if floating is float:
            pc_avg_plane_f(xp + p * hw, &g, count_include_pad, op + p * ohw)
        else:
            pc_avg_plane_d(xp + p * hw, &g, count_include_pad, op + p * ohw)


def max_pool2d_backward(const floating[:, :, :, ::1] dout, const int64_t[:, :, :, ::1] indices,
                        floating[:, :, :, ::1] dx, tuple geom, int num_threads):
    """Fill dx (N, C, H, W) with dout (N, C, OH, OW) summed at the flat plane indices.

    Each plane is cut into row_bands bands of input rows, each scattered to by one thread
    (it reads all the plane's indices and keeps those in its rows). Returns nonzero when
    indices lie outside [0, H*W): those are skipped, and the wrapper refuses the call.
    """
    cdef pc_geom g = make_geom(dx.shape[2], dx.shape[3], dout.shape[2], dout.shape[3], geom)
    cdef Py_ssize_t t, p, b, planes = dx.shape[0] * dx.shape[1], outside = 0
    cdef Py_ssize_t hw = g.h * g.w, ohw = g.oh * g.ow
    cdef Py_ssize_t bands = row_bands(planes, g.h, num_threads)
    cdef const floating *dp = &dout[0, 0, 0, 0]
    cdef const int64_t *ip = &indices[0, 0, 0, 0]
    cdef floating *xp = &dx[0, 0, 0, 0]
    for t in prange(planes * bands, nogil=True, schedule="static", num_threads=num_threads):
        p = t // bands
        b = t % bands
        if floating is float:
            outside += pc_max_backward_rows_f(dp + p * ohw, ip + p * ohw, hw, ohw,
                                              b * g.h // bands * g.w,
                                              (b + 1) * g.h // bands * g.w, xp + p * hw)
        else:
            outside += pc_max_backward_rows_d(dp + p * ohw, ip + p * ohw, hw, ohw,
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
    cdef pc_geom g = make_geom(x.shape[2], x.shape[3], dout.shape[2], dout.shape[3], geom)
    cdef Py_ssize_t t, p, b, planes = x.shape[0] * x.shape[1]
    cdef Py_ssize_t hw = g.h * g.w, ohw = g.oh * g.ow
    cdef Py_ssize_t bands = row_bands(planes, g.h, num_threads)
    cdef const floating *dp = &dout[0, 0, 0, 0]
    cdef const floating *xp = &x[0, 0, 0, 0]
    cdef floating *gp = &dx[0, 0, 0, 0]
    dtype = np.float32 if floating is float else np.float64
    cdef floating[:, ::1] values = empty((num_threads, ohw), dtype, SCRATCH)
    cdef int64_t[:, ::1] winners = empty((num_threads, ohw), np.int64, SCRATCH)
    cdef bint simd = use_simd(&g)
    cdef floating[:, ::1] scratch = empty((num_threads, 1 if simd else pc_phase_size(&g)), dtype,
                                          SCRATCH)
    cdef floating *vals
    cdef floating *buf
    cdef int64_t *wins
    with nogil, parallel(num_threads=num_threads):
        vals = &values[omp_get_thread_num(), 0]
        wins = &winners[omp_get_thread_num(), 0]
        buf = &scratch[omp_get_thread_num(), 0]
        for t in prange(planes * bands, schedule="static"):
            p = t // bands
            b = t % bands
            if floating is float:
                if not (simd and pc_simd_pool_rows_f32(xp + p * hw, &g, 0, 0, g.oh, vals, wins)):
                    pc_max_plane_f(xp + p * hw, &g, vals, wins, buf)
                pc_max_backward_rows_f(dp + p * ohw, wins, hw, ohw, b * g.h // bands * g.w,
                                       (b + 1) * g.h // bands * g.w, gp + p * hw)
            else:
                if not (simd and pc_simd_pool_rows_f64(xp + p * hw, &g, 0, 0, g.oh, vals, wins)):
                    pc_max_plane_d(xp + p * hw, &g, vals, wins, buf)
                pc_max_backward_rows_d(dp + p * ohw, wins, hw, ohw, b * g.h // bands * g.w,
                                       (b + 1) * g.h // bands * g.w, gp + p * hw)


def avg_pool2d_backward(const floating[:, :, :, ::1] dout, floating[:, :, :, ::1] dx, tuple geom,
                        bint count_include_pad, int num_threads):
    """Fill dx (N, C, H, W) with the gradient of average pooling for dout (N, C, OH, OW)."""
    cdef pc_geom g = make_geom(dx.shape[2], dx.shape[3], dout.shape[2], dout.shape[3], geom)
    cdef Py_ssize_t p, planes = dx.shape[0] * dx.shape[1]
    cdef Py_ssize_t hw = g.h * g.w, ohw = g.oh * g.ow
    cdef const floating *dp = &dout[0, 0, 0, 0]
    cdef floating *gp = &dx[0, 0, 0, 0]
    cdef bint simd = use_simd(&g)
    cdef floating[:, ::1] share = empty((num_threads, pc_share_size(&g) if simd else g.ow),
                                        np.float32 if floating is float else np.float64,
                                        SCRATCH)
    share[:, :] = 0  # the vector kernel's padding
    cdef floating *buf
    with nogil, parallel(num_threads=num_threads):
        buf = &share[omp_get_thread_num(), 0]
        for p in prange(planes, schedule="static"):
            if simd:
                if floating is float:
                    pc_simd_avg_backward_plane_f32(dp + p * ohw, &g, buf, gp + p * hw)
                else:
                    pc_simd_avg_backward_plane_f64(dp + p * ohw, &g, buf, gp + p * hw)
            elif floating is float:
                pc_avg_backward_plane_f(dp + p * ohw, &g, count_include_pad, buf, gp + p * hw)
            else:
                pc_avg_backward_plane_d(dp + p * ohw, &g, count_include_pad, buf, gp + p * hw)
