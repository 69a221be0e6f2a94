"""Direct convolution kernels (NCHW, no workspace beyond a few padded rows per thread).

The loops live in conv_direct.h; this module fills its plan from the arrays
and runs its tasks in parallel. Every array is C-contiguous and of one dtype
(the caller guarantees it); out-of-range taps read zeros.
"""
from cython.parallel cimport parallel, prange
from libc.stdlib cimport free, malloc

from _interrupt cimport pc_again, pc_guard, pc_guard_new, pc_stopped

from pyconv import cpu

ctypedef fused floating:
    float
    double


cdef extern from "conv_direct.h" nogil:
    ctypedef struct cd_conv:
        const void *src
        Py_ssize_t n, groups, in_c, in_h, in_w, icg
        void *out
        Py_ssize_t out_c, oh, ow, ocg, fh, fw, dh, dw, sh, sw, ph, pw, qh, qw
        const void *w
        Py_ssize_t wg, wo, wc, wu, wv
        const void *bias
        const void *dout
        Py_ssize_t ntasks, buf_elems
    void cd_plan(cd_conv *p, int level, size_t elem, int weight_grad, Py_ssize_t kb)
    Py_ssize_t cd_dw_block(Py_ssize_t fw)
    void cd_conv_task_f32(const cd_conv *p, Py_ssize_t t, void *buf)
    void cd_conv_task_f64(const cd_conv *p, Py_ssize_t t, void *buf)
    void cd_wgrad_task_f32(const cd_conv *p, Py_ssize_t t, void *buf)
    void cd_wgrad_task_f64(const cd_conv *p, Py_ssize_t t, void *buf)

cdef int run(cd_conv *p, size_t elem, bint weight_grad, int num_threads) except -1:
    """Plan p for the CPU level in use and run its tasks on num_threads threads, each with its
    own band buffer."""
    cdef Py_ssize_t t
    cdef void *buf = NULL
    cdef int failed[1]
    cdef pc_guard guard = pc_guard_new()
    failed[0] = 0  # an array element stays shared inside the parallel block
    cd_plan(p, cpu.level(), elem, weight_grad, cd_dw_block(p.fw))
    while pc_again(&guard):
        with nogil, parallel(num_threads=num_threads):
            buf = malloc(p.buf_elems * elem)
            if buf == NULL:
                failed[0] = 1
            for t in prange(p.ntasks, schedule="dynamic"):
                if buf == NULL or pc_stopped(guard.stop):
                    continue
                if weight_grad:
                    if elem == sizeof(float):
                        cd_wgrad_task_f32(p, t, buf)
                    else:
                        cd_wgrad_task_f64(p, t, buf)
                elif elem == sizeof(float):
                    cd_conv_task_f32(p, t, buf)
                else:
                    cd_conv_task_f64(p, t, buf)
            free(buf)
    if failed[0]:
        raise MemoryError("could not allocate the direct convolution's band buffer")
    return 0


def forward(const floating[:, :, :, ::1] x, const floating[:, :, :, ::1] w,
            const floating[::1] b, floating[:, :, :, ::1] out,
            Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t pt, Py_ssize_t pl,
            Py_ssize_t dh, Py_ssize_t dw, Py_ssize_t groups, int num_threads):
    """Fill out (N, K, OH, OW) with the convolution of x (N, C, H, W) by w (K, C/groups, FH, FW) plus b (K,) or, for b of shape (0,), no bias."""
    cdef cd_conv p
    if out.shape[0] == 0 or out.shape[2] == 0 or out.shape[3] == 0:
        return
    p.src = &x[0, 0, 0, 0]
    p.n, p.groups = x.shape[0], groups
    p.in_c, p.in_h, p.in_w, p.icg = x.shape[1], x.shape[2], x.shape[3], w.shape[1]
    p.out = &out[0, 0, 0, 0]
    p.out_c, p.oh, p.ow, p.ocg = out.shape[1], out.shape[2], out.shape[3], w.shape[0] // groups
    p.fh, p.fw, p.dh, p.dw, p.sh, p.sw = w.shape[2], w.shape[3], dh, dw, sh, sw
    p.ph, p.pw, p.qh, p.qw = pt, pl, 1, 1
    p.w = &w[0, 0, 0, 0]
    p.wo = w.shape[1] * w.shape[2] * w.shape[3]
    p.wg, p.wc, p.wu, p.wv = p.ocg * p.wo, w.shape[2] * w.shape[3], w.shape[3], 1
    p.bias = &b[0] if b.shape[0] > 0 else NULL
    p.dout = NULL
    run(&p, sizeof(floating), False, num_threads)


def backward_input(const floating[:, :, :, ::1] dout, const floating[:, :, :, ::1] w,
                   floating[:, :, :, ::1] dx,
                   Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t pt, Py_ssize_t pl,
                   Py_ssize_t dh, Py_ssize_t dw, Py_ssize_t groups, int num_threads):
    """Fill dx (N, C, H, W) with the gradient of the forward convolution's input given dout (N, K, OH, OW)."""
    cdef cd_conv p
    cdef Py_ssize_t fh = w.shape[2], fw = w.shape[3]
    if dx.shape[0] == 0:
        return
    # dx is a stride-1 convolution, by the flipped and transposed filters, of
    # dout spread out by the stride (zeros between its rows and columns).
    p.src = &dout[0, 0, 0, 0]
    p.n, p.groups = dout.shape[0], groups
    p.in_c, p.in_h, p.in_w, p.icg = dout.shape[1], dout.shape[2], dout.shape[3], w.shape[0] // groups
    p.out = &dx[0, 0, 0, 0]
    p.out_c, p.oh, p.ow, p.ocg = dx.shape[1], dx.shape[2], dx.shape[3], w.shape[1]
    p.fh, p.fw, p.dh, p.dw, p.sh, p.sw = fh, fw, dh, dw, 1, 1
    p.ph, p.pw, p.qh, p.qw = (fh - 1) * dh - pt, (fw - 1) * dw - pl, sh, sw
    p.w = &w[0, 0, fh - 1, fw - 1]
    p.wo, p.wc, p.wu, p.wv = fh * fw, w.shape[1] * fh * fw, -fw, -1
    p.wg = p.icg * p.wc
    p.bias = NULL
    p.dout = NULL
    run(&p, sizeof(floating), False, num_threads)


def backward_weight(const floating[:, :, :, ::1] dout, const floating[:, :, :, ::1] x,
                    floating[:, :, :, ::1] grad_w,
                    Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t pt, Py_ssize_t pl,
                    Py_ssize_t dh, Py_ssize_t dw, Py_ssize_t groups, int num_threads):
    """Fill grad_w (K, C/groups, FH, FW) with the gradient of the forward convolution's filters given dout (N, K, OH, OW) and x (N, C, H, W)."""
    cdef cd_conv p
    if x.shape[0] == 0:
        grad_w[...] = 0
        return
    p.src = &x[0, 0, 0, 0]
    p.n, p.groups = x.shape[0], groups
    p.in_c, p.in_h, p.in_w, p.icg = x.shape[1], x.shape[2], x.shape[3], grad_w.shape[1]
    p.out = &grad_w[0, 0, 0, 0]
    p.out_c, p.oh, p.ow, p.ocg = dout.shape[1], dout.shape[2], dout.shape[3], grad_w.shape[0] // groups
    p.fh, p.fw, p.dh, p.dw, p.sh, p.sw = grad_w.shape[2], grad_w.shape[3], dh, dw, sh, sw
    p.ph, p.pw, p.qh, p.qw = pt, pl, 1, 1
    p.w = NULL
    p.bias = NULL
    p.dout = &dout[0, 0, 0, 0]
    run(&p, sizeof(floating), True, num_threads)


cdef inline void element_strides(const Py_ssize_t *strides, Py_ssize_t item, Py_ssize_t *s0,
                                 Py_ssize_t *s1, Py_ssize_t *s2, Py_ssize_t *s3) noexcept:
    """The first four byte strides of a memoryview, in elements of item bytes."""
    s0[0], s1[0], s2[0], s3[0] = (strides[0] // item, strides[1] // item, strides[2] // item,
                                  strides[3] // item)


cdef extern from "conv_blocked.h" nogil:
    ctypedef struct cb_conv:
        const void *x
        Py_ssize_t n, in_h, in_w, xn, xc, xh, xw
        void *y
        Py_ssize_t oh, ow, yn, yk, yh, yw
        Py_ssize_t groups, icg, ocg
        Py_ssize_t fh, fw, sh, sw, dh, dw, pt, pl
        const void *filt
        Py_ssize_t wg, wo, wc, wu, wv
        const void *bias
        void *wpack
        void *bpack
        Py_ssize_t vl, pairs, ntasks
    void cb_plan(cb_conv *p, int level, size_t elem)
    void cb_pack_f32(const cb_conv *p, Py_ssize_t item)
    void cb_pack_f64(const cb_conv *p, Py_ssize_t item)
    void cb_task_f32(const cb_conv *p, Py_ssize_t t)
    void cb_task_f64(const cb_conv *p, Py_ssize_t t)


def blocked_forward(const floating[:, :, :, :] x, const floating[:, :, :, :, :] w,
                    const floating[::1] b, floating[:, :, :, :] out,
                    Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t pt, Py_ssize_t pl,
                    Py_ssize_t dh, Py_ssize_t dw, int num_threads):
    """Fill out (N, K, OH, OW; any strides) with the convolution of x (N, C, H, W; any
    strides) by w (G, K/G, C/G, FH, FW; any strides) plus b (K,) or, for b of shape (0,),
    no bias: the channel-blocked kernel of conv_blocked.h."""
    cdef cb_conv p
    cdef Py_ssize_t i, t, items, packed
    cdef size_t elem = sizeof(floating)
    cdef Py_ssize_t item = sizeof(floating)  # signed: strides may be negative
    cdef char *raw
    cdef pc_guard guard = pc_guard_new()
    if out.shape[0] == 0 or out.shape[1] == 0 or out.shape[2] == 0 or out.shape[3] == 0:
        return
    p.x = &x[0, 0, 0, 0]
    p.n, p.in_h, p.in_w = x.shape[0], x.shape[2], x.shape[3]
    element_strides(x.strides, item, &p.xn, &p.xc, &p.xh, &p.xw)
    p.y = &out[0, 0, 0, 0]
    p.oh, p.ow = out.shape[2], out.shape[3]
    element_strides(out.strides, item, &p.yn, &p.yk, &p.yh, &p.yw)
    p.groups, p.ocg, p.icg, p.fh, p.fw = w.shape[0], w.shape[1], w.shape[2], w.shape[3], w.shape[4]
    p.sh, p.sw, p.pt, p.pl, p.dh, p.dw = sh, sw, pt, pl, dh, dw
    p.filt = &w[0, 0, 0, 0, 0]
    p.wg, p.wo, p.wc, p.wu, p.wv = (w.strides[0] // item, w.strides[1] // item,
                                    w.strides[2] // item, w.strides[3] // item, w.strides[4] // item)
    p.bias = &b[0] if b.shape[0] > 0 else NULL
    cb_plan(&p, cpu.level(), elem)
    items = p.groups * p.pairs
    packed = items * 2 * p.vl * (p.icg * p.fh * p.fw + 1)
    raw = <char *>malloc(packed * elem + 64)
    if raw == NULL:
        raise MemoryError("could not allocate the packed filters")
    p.wpack = raw + (64 - <size_t>raw % 64)
    p.bpack = <char *>p.wpack + items * 2 * p.vl * p.icg * p.fh * p.fw * elem
    try:
        while pc_again(&guard):
            with nogil, parallel(num_threads=num_threads):
                for i in prange(items, schedule="static"):
                    if pc_stopped(guard.stop):
                        continue
                    if elem == sizeof(float):
                        cb_pack_f32(&p, i)
                    else:
                        cb_pack_f64(&p, i)
                for t in prange(p.ntasks, schedule="dynamic"):
                    if pc_stopped(guard.stop):
                        continue
                    if elem == sizeof(float):
                        cb_task_f32(&p, t)
                    else:
                        cb_task_f64(&p, t)
    finally:
        free(raw)


cdef extern from "conv_blocked.h" nogil:
    ctypedef struct cbg_conv:
        const void *x
        Py_ssize_t n, in_h, in_w, xn, xc, xh, xw
        const void *dy
        Py_ssize_t oh, ow, yn, yk, yh, yw
        void *dw
        Py_ssize_t wg, wo, wc, wu, wv
        Py_ssize_t groups, icg, ocg, fh, fw, sh, sw, dh, dw_, pt, pl
        Py_ssize_t vl, tile, items, scratch
    void cbg_plan(cbg_conv *p, int level, size_t elem)
    void cbg_part_f32(const cbg_conv *p, Py_ssize_t lo, Py_ssize_t hi, void *sums,
                      void *scratch, const int *stop)
    void cbg_part_f64(const cbg_conv *p, Py_ssize_t lo, Py_ssize_t hi, void *sums,
                      void *scratch, const int *stop)


def blocked_filter_grad(const floating[:, :, :, :] dout, const floating[:, :, :, :] x,
                        floating[:, :, :, :, :] dw, Py_ssize_t sh, Py_ssize_t sw,
                        Py_ssize_t pt, Py_ssize_t pl, Py_ssize_t dh, Py_ssize_t dil_w,
                        int num_threads):
    """Fill dw (G, K/G, C/G, FH, FW; any strides) with the filter gradient of the
    convolution of x (N, C, H, W; any strides) whose output gradient is dout (N, K, OH, OW;
    any strides): the channel-blocked kernel of conv_blocked.h. Each thread sums a fixed
    range of tiles over every image."""
    cdef cbg_conv p
    cdef Py_ssize_t part, parts, per_item, per_part
    cdef size_t elem = sizeof(floating)
    cdef Py_ssize_t item = sizeof(floating)  # signed: strides may be negative
    cdef char *raw
    cdef char *sums
    cdef char *scratch
    cdef pc_guard guard = pc_guard_new()
    p.x = &x[0, 0, 0, 0]
    p.n, p.in_h, p.in_w = x.shape[0], x.shape[2], x.shape[3]
    element_strides(x.strides, item, &p.xn, &p.xc, &p.xh, &p.xw)
    p.dy = &dout[0, 0, 0, 0]
    p.oh, p.ow = dout.shape[2], dout.shape[3]
    element_strides(dout.strides, item, &p.yn, &p.yk, &p.yh, &p.yw)
    p.dw = &dw[0, 0, 0, 0, 0]
    p.wg, p.wo, p.wc, p.wu, p.wv = (dw.strides[0] // item, dw.strides[1] // item,
                                    dw.strides[2] // item, dw.strides[3] // item,
                                    dw.strides[4] // item)
    p.groups, p.ocg, p.icg, p.fh, p.fw = (dw.shape[0], dw.shape[1], dw.shape[2], dw.shape[3],
                                          dw.shape[4])
    p.sh, p.sw, p.pt, p.pl, p.dh, p.dw_ = sh, sw, pt, pl, dh, dil_w
    cbg_plan(&p, cpu.level(), elem)
    parts = max(1, min(num_threads, p.items))
    per_item = 2 * p.tile * p.vl
    per_part = (p.scratch + 16) // 16 * 16  # whole cache lines apart
    raw = <char *>malloc((p.items * per_item + parts * per_part) * elem + 64)
    if raw == NULL:
        raise MemoryError("could not allocate the filter gradient's sums and scratch")
    sums = raw + (64 - <size_t>raw % 64)
    scratch = sums + p.items * per_item * elem
    try:
        while pc_again(&guard):
            with nogil, parallel(num_threads=parts):
                for part in prange(parts, schedule="static"):
                    if floating is float:
                        cbg_part_f32(&p, part * p.items // parts, (part + 1) * p.items // parts,
                                     sums, scratch + part * per_part * elem, guard.stop)
                    else:
                        cbg_part_f64(&p, part * p.items // parts, (part + 1) * p.items // parts,
                                     sums, scratch + part * per_part * elem, guard.stop)
    finally:
        free(raw)
