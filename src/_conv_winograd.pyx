"""Winograd convolution of 3x3 filters at stride 1 (winograd.h), in OpenMP threads.

A call transforms the filters once, in parallel, then runs items of (block of output
tiles, chunk of filters), fixed by the shapes alone, each thread through its own
buffers: every value is computed by the same operations whatever the thread count.
"""
from cython.parallel cimport parallel, prange

from _interrupt cimport pc_again, pc_guard, pc_guard_new, pc_stopped
from _openmp_helpers cimport omp_get_thread_num


cdef extern from "winograd.h" nogil:
    enum: WG_FILTER_CHANNELS
    ctypedef struct wg_plan:
        Py_ssize_t n, c, h, w, k, oh, ow, pt, pl, m, th, tw, ldv, ut, k0, kc
        const void *zero
        const void *filters
        Py_ssize_t sf, sc, su, sv
    void wg_filters_f32(int level, int m, const float *w, Py_ssize_t sf, Py_ssize_t sc,
                        Py_ssize_t su, Py_ssize_t sv, Py_ssize_t live, Py_ssize_t cn,
                        float *dst, Py_ssize_t ldt)
    void wg_filters_f64(int level, int m, const double *w, Py_ssize_t sf, Py_ssize_t sc,
                        Py_ssize_t su, Py_ssize_t sv, Py_ssize_t live, Py_ssize_t cn,
                        double *dst, Py_ssize_t ldt)
    Py_ssize_t wg_lanes(int level, size_t elem)
    void wg_item_f32(int level, const wg_plan *p, Py_ssize_t j0, Py_ssize_t j1, Py_ssize_t f0,
                     Py_ssize_t mc, const float *x, const float *u, const float *bias,
                     float *out, float *work, Py_ssize_t *where)
    void wg_item_f64(int level, const wg_plan *p, Py_ssize_t j0, Py_ssize_t j1, Py_ssize_t f0,
                     Py_ssize_t mc, const double *x, const double *u, const double *bias,
                     double *out, double *work, Py_ssize_t *where)

ctypedef fused floating:
    float
    double


def lanes(int level, Py_ssize_t itemsize):
    """Tiles per vector of the transforms at CPU level ``level`` (pyconv.cpu.level())."""
    return wg_lanes(level, itemsize)


def transform_filters(const floating[:, :, :, :] w, floating[:, ::1] u, int m, Py_ssize_t mr,
                      int level, int num_threads):
    """Fill u[:, :ceil(K/mr) * C * mr] ((m+2)^2 rows; longer rows stay clear of one another's
    cache sets) with the filters w (K, C, 3, 3; any strides) transformed (in double,
    rounded once) and packed for the GEMM of CPU level ``level`` (mr filters per panel):
    point t of filter f, channel c at u[t, ((f // mr) * C + c) * mr + f % mr]; zeros for
    f >= K. An item is one panel of WG_FILTER_CHANNELS channels."""
    cdef Py_ssize_t kk = w.shape[0], cc = w.shape[1], panels = (kk + mr - 1) // mr
    cdef Py_ssize_t runs = (cc + WG_FILTER_CHANNELS - 1) // WG_FILTER_CHANNELS
    cdef Py_ssize_t sf = w.strides[0] // w.itemsize, sc = w.strides[1] // w.itemsize
    cdef Py_ssize_t su = w.strides[2] // w.itemsize, sv = w.strides[3] // w.itemsize
    cdef Py_ssize_t item, p, c
    cdef pc_guard guard = pc_guard_new()
    while pc_again(&guard):
        with nogil:
            for item in prange(panels * runs, schedule="static", num_threads=num_threads):
                if pc_stopped(guard.stop):
                    continue
                p = item // runs
                c = item % runs * WG_FILTER_CHANNELS
                if floating is float:
                    wg_filters_f32(level, m, &w[p * mr, c, 0, 0], sf, sc, su, sv,
                                   min(mr, kk - p * mr), min(WG_FILTER_CHANNELS, cc - c),
                                   &u[0, (p * cc + c) * mr], u.shape[1])
                else:
                    wg_filters_f64(level, m, &w[p * mr, c, 0, 0], sf, sc, su, sv,
                                   min(mr, kk - p * mr), min(WG_FILTER_CHANNELS, cc - c),
                                   &u[0, (p * cc + c) * mr], u.shape[1])


def forward(const floating[:, :, :, ::1] x, const floating[:, ::1] u,
            const floating[:, :, :, :] w, bint fused,
            const floating[::1] bias, floating[:, :, :, ::1] out, int m, Py_ssize_t pt,
            Py_ssize_t pl, Py_ssize_t k0, Py_ssize_t k1, Py_ssize_t nb, Py_ssize_t fc,
            Py_ssize_t ldv, const floating[::1] zero,
            floating[:, ::1] work, Py_ssize_t[:, ::1] where, Py_ssize_t kc, int level,
            int num_threads):
    """out[:, k0:k1] (out: N, K, OH, OW) = bias + the conv of x (N >= 1, C, H, W) by the
    3x3 filters k0 .. k1-1 of w (K, C, 3, 3; any strides), with tiles of m x m outputs.
    Unless ``fused``, u holds their transforms (transform_filters of those filters; k0 a
    multiple of the GEMM's panel height); if ``fused``, each item transforms its own
    filters a panel at a time (u is not read). Items take nb tiles and fc filters (a
    multiple of the GEMM's panel height); each thread has a row of work (the V and M
    buffers of an item, and if fused one panel's transforms) and of where (4 * ldv); ldv
    is a multiple of the vector length, at least nb, and nb at most the GEMM's panel
    width."""
    cdef wg_plan p
    p.n, p.c, p.h, p.w = x.shape[0], x.shape[1], x.shape[2], x.shape[3]
    p.k, p.oh, p.ow = out.shape[1], out.shape[2], out.shape[3]
    p.pt, p.pl, p.m = pt, pl, m
    p.th, p.tw = (p.oh + m - 1) // m, (p.ow + m - 1) // m
    p.ldv, p.ut, p.k0, p.kc = ldv, u.strides[0] // u.itemsize, k0, kc
    p.zero = &zero[0]
    p.filters = &w[0, 0, 0, 0] if fused else NULL
    p.sf, p.sc = w.strides[0] // w.itemsize, w.strides[1] // w.itemsize
    p.su, p.sv = w.strides[2] // w.itemsize, w.strides[3] // w.itemsize
    cdef Py_ssize_t tiles = p.n * p.th * p.tw, blocks = (tiles + nb - 1) // nb
    cdef Py_ssize_t chunks = (k1 - k0 + fc - 1) // fc, item, j0, f0
    cdef int tid
    cdef pc_guard guard = pc_guard_new()
    while pc_again(&guard):
        with nogil, parallel(num_threads=num_threads):
            tid = omp_get_thread_num()
            for item in prange(blocks * chunks, schedule="dynamic"):
                if pc_stopped(guard.stop):
                    continue
                j0 = item // chunks * nb
                f0 = k0 + item % chunks * fc
                if floating is float:
                    wg_item_f32(level, &p, j0, min(j0 + nb, tiles), f0, min(fc, k1 - f0),
                                &x[0, 0, 0, 0], &u[0, 0], &bias[0], &out[0, 0, 0, 0],
                                &work[tid, 0], &where[tid, 0])
                else:
                    wg_item_f64(level, &p, j0, min(j0 + nb, tiles), f0, min(fc, k1 - f0),
                                &x[0, 0, 0, 0], &u[0, 0], &bias[0], &out[0, 0, 0, 0],
                                &work[tid, 0], &where[tid, 0])
