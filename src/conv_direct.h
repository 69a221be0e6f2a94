/* Direct 2-D convolution kernels (NCHW), forward and both gradients.
 *
 * One engine serves the forward pass and the input gradient: for a block of
 * output rows of one image and one group, it copies the input rows those
 * outputs read into a small zero-padded "band" buffer (padding and, for the
 * input gradient, the stride's zero insertion are written once there), so
 * that the inner loops read every tap as a full, unconditional vector load
 * along the output width. A stride along the width is removed in the same
 * copy by storing each padded row as `sw` phases (columns p with p % sw ==
 * q together), so taps of strided convolutions are contiguous too. The
 * microkernels keep 4 output channels x 2 vectors, or (one channel per
 * group) 4 rows x 2 vectors, of outputs in registers and sum over
 * input channels and taps in a fixed order; the weight gradient keeps up to
 * 4 filters x 4 taps (x 2 rows) of partial sums in registers along the width.
 * Depthwise layers (one input and one output channel per group, as in
 * MobileNets) take their own path: there is nothing to sum over channels,
 * so the layer is a stream through memory, and each task runs through
 * whole planes, copying each source row once into a small ring of padded
 * rows just before the output rows that read it, with the source and the
 * output prefetched ahead (cd_dw_task). This path serves the forward pass
 * and the input gradient of unit-row-stride convolutions; the weight
 * gradient of 3 x 3 depthwise filters with unit column stride and dilation
 * streams the same rows against dout's, one vector of sums per tap
 * (cd_dw_wgrad_task).
 * Known weak spots: the input gradient of a stride-s convolution still
 * multiplies the zeros between dout's columns (s_w times the work), and
 * rows narrower than a vector (OW < 16 floats) waste lanes.
 *
 * The kernel bodies live in the template conv_direct_t.h, compiled once per
 * element type and CPU level (cpu_features.h); the caller passes the level
 * the kernels run at (pyconv.cpu), so the package needs no -march flag.
 *
 * Every task writes its own outputs and sums in an order fixed by the shapes
 * alone, so results do not depend on the number of threads.
 */
#ifndef PYCONV_CONV_DIRECT_H
#define PYCONV_CONV_DIRECT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cpu_features.h"

/* Elements of one task's band buffer are capped near this (larger only when
 * a single output row needs more). */
#define CD_BAND_CAP 32768
/* Bands are made small enough that a call has at least this many tasks. */
#define CD_MIN_TASKS 16
/* A depthwise call has about this many tasks, each a run of whole planes
 * where there are enough of them. */
#define CD_DW_TASKS 64
/* Depthwise tasks prefetch the source this many bytes ahead of the row they
 * copy, and the output (for writing) twice as far ahead: a plane is too
 * short a stream for the hardware prefetchers, and without it the writes'
 * line fills stall the stores (measured: 1.4x faster on the benchmark's depthwise layer). */
#define CD_DW_PREFETCH 4096

typedef struct {
    /* source array (x, or dout for the input gradient): [N][in_c][in_h][in_w] */
    const void *src;
    ptrdiff_t n, groups, in_c, in_h, in_w;
    ptrdiff_t icg;              /* channels summed over per group */
    /* produced array: [N][out_c][oh][ow] */
    void *out;
    ptrdiff_t out_c, oh, ow;
    ptrdiff_t ocg;              /* outputs per group */
    ptrdiff_t fh, fw, dh, dw;   /* taps and dilation */
    ptrdiff_t sh, sw;           /* stride of the convolution over the band */
    /* band row r of a band starting at output row i0 holds source row
     * (i0 * sh - ph + r) / qh when that is a whole number in range, else
     * zeros; columns likewise with pw, qw. */
    ptrdiff_t ph, pw, qh, qw;
    /* weight of output o, input c, tap (u, v) in group g:
     * w[g * wg + o * wo + c * wc + u * wu + v * wv] */
    const void *w;
    ptrdiff_t wg, wo, wc, wu, wv;
    const void *bias;           /* [out_c] or NULL */
    /* weight gradient only: dout [N][k][oh][ow] (the produced array is dw) */
    const void *dout;
    /* plan, filled by cd_plan */
    int level;
    ptrdiff_t vl, wq, rl, band, nbands, ntasks, buf_elems;
    ptrdiff_t fpt;              /* filters per weight-gradient task */
    /* depthwise plan (one input and one output channel per group, no zero
     * rows between the source's rows): whether it applies, the source rows
     * two output rows read, the ring of rows holding them (a power of two),
     * (plane, band) items per task, how many rows ahead the source and the
     * output are prefetched */
    int dwise;
    ptrdiff_t dw_span, dw_ring, dw_ipt, dw_pf_in, dw_pf_out;
} cd_conv;

/* Filters per weight-gradient task: as many as keep kb * min(fw, 4) partial
 * sums in registers. */
static inline ptrdiff_t cd_dw_block(ptrdiff_t fw)
{
    return fw <= 3 ? 4 : (fw <= 6 ? 2 : 1);
}

#define CD_DECLARE(TS, T, LEVEL)                                                  \
    void cd_conv_task_##TS##_##LEVEL(const cd_conv *p, ptrdiff_t t, void *buf);   \
    void cd_wgrad_task_##TS##_##LEVEL(const cd_conv *p, ptrdiff_t t, void *buf);
CPU_EACH_VARIANT(CD_DECLARE)
#undef CD_DECLARE

/* Fill the plan: vector length, band row layout, band size, task count.
 * `weight_grad` plans the weight gradient (one channel per band buffer,
 * tasks over blocks of filters: a multiple of the register block `kb`, as
 * many as leave CD_MIN_TASKS tasks, since each task copies every input plane
 * of its group once); otherwise tasks are (image, group,
 * band of output rows), with bands small enough to give CD_MIN_TASKS tasks.
 * The plan depends on the shapes and the CPU level only, never on the
 * thread count. */
static inline void cd_plan(cd_conv *p, int level, size_t elem, int weight_grad, ptrdiff_t kb)
{
    ptrdiff_t chans, reach, rows_per_band, want_bands, min_bands;
    p->level = level;
    p->vl = (ptrdiff_t)cpu_vector_bytes(level) / (ptrdiff_t)elem;
    /* lanes cover max(ow, vl) outputs; a tap reaches (fw-1)*dw/sw further */
    p->wq = (p->ow > p->vl ? p->ow : p->vl) + (p->fw - 1) * p->dw / p->sw + 1;
    p->rl = p->wq * p->sw;
    /* the depthwise path, where its ring of rows is no larger than a band */
    p->dw_span = p->sh + (p->fh - 1) * p->dh + 1;
    for (p->dw_ring = 1; p->dw_ring < p->dw_span; p->dw_ring *= 2)
        ;
    p->dwise = p->icg == 1 && p->ocg == 1 && p->qh == 1
               && (p->dw_ring + 1) * p->rl <= CD_BAND_CAP;
    if (weight_grad)  /* the weight gradient's path: 3 x 3 filters, unit column steps */
        p->dwise = p->dwise && p->fh == 3 && p->fw == 3 && p->dw == 1 && p->sw == 1;
    if (p->dwise) {
        const ptrdiff_t planes = p->n * p->groups;
        ptrdiff_t items;
        p->nbands = planes >= CD_MIN_TASKS ? 1 : (CD_MIN_TASKS + planes - 1) / planes;
        if (p->nbands > p->oh) p->nbands = p->oh;
        p->band = (p->oh + p->nbands - 1) / p->nbands;
        p->nbands = (p->oh + p->band - 1) / p->band;
        items = planes * p->nbands;
        p->dw_ipt = items > CD_DW_TASKS ? items / CD_DW_TASKS : 1;
        p->ntasks = (items + p->dw_ipt - 1) / p->dw_ipt;
        p->buf_elems = (p->dw_ring + 1) * p->rl;
        p->dw_pf_in = CD_DW_PREFETCH / (p->in_w * (ptrdiff_t)elem) + 1;
        p->dw_pf_out = 2 * CD_DW_PREFETCH / (p->ow * (ptrdiff_t)elem) + 1;
        if (weight_grad)
            p->ntasks = p->groups;
        return;
    }
    chans = weight_grad ? 1 : p->icg;
    reach = (p->fh - 1) * p->dh + 1;
    rows_per_band = CD_BAND_CAP / (chans * p->rl);
    p->band = rows_per_band > reach ? (rows_per_band - reach) / p->sh + 1 : 1;
    if (!weight_grad) {
        min_bands = (CD_MIN_TASKS + p->n * p->groups - 1) / (p->n * p->groups);
        want_bands = (p->oh + p->band - 1) / p->band;
        if (want_bands < min_bands) {
            want_bands = min_bands < p->oh ? min_bands : p->oh;
            p->band = (p->oh + want_bands - 1) / want_bands;
        }
    }
    if (p->band > p->oh) p->band = p->oh;
    p->nbands = (p->oh + p->band - 1) / p->band;
    p->buf_elems = chans * ((p->band - 1) * p->sh + reach) * p->rl;
    if (weight_grad) {
        p->fpt = (p->ocg * p->groups + CD_MIN_TASKS - 1) / CD_MIN_TASKS;
        p->fpt = (p->fpt + kb - 1) / kb * kb;
        if (p->fpt > p->ocg) p->fpt = p->ocg;
        p->ntasks = p->groups * ((p->ocg + p->fpt - 1) / p->fpt);
    }
    else
        p->ntasks = p->n * p->groups * p->nbands;
}

/* Task t of a plan (forward or input gradient: conv; weight gradient: wgrad), run by the
 * variant of the plan's level. */
static inline void cd_conv_task_f32(const cd_conv *p, ptrdiff_t t, void *buf)
{
    CPU_DISPATCH(p->level, cd_conv_task, f32, (p, t, buf));
}

static inline void cd_conv_task_f64(const cd_conv *p, ptrdiff_t t, void *buf)
{
    CPU_DISPATCH(p->level, cd_conv_task, f64, (p, t, buf));
}

static inline void cd_wgrad_task_f32(const cd_conv *p, ptrdiff_t t, void *buf)
{
    CPU_DISPATCH(p->level, cd_wgrad_task, f32, (p, t, buf));
}

static inline void cd_wgrad_task_f64(const cd_conv *p, ptrdiff_t t, void *buf)
{
    CPU_DISPATCH(p->level, cd_wgrad_task, f64, (p, t, buf));
}

#endif
