/* Channel-blocked direct convolution: output channels in the vector lanes.
 *
 * The layout of oneDNN's direct kernels (jit_avx512_common_conv_kernel): each
 * group's filters are packed once per call, per pair of blocks of VL output
 * channels (VL = the vector's lanes), as [pair][c][u][v][2 * VL], so that one
 * tap of one input channel is two vector loads. A register tile holds 2 x P
 * vectors of sums: 2 * VL output channels at P consecutive output positions of
 * one row (P = 14 with 32 vector registers, 6 with 16), and for every input
 * channel and tap it broadcasts each position's input pixel, read in place,
 * against the two filter vectors. Nothing is copied out of the input: strides,
 * dilation and any layout of x and of the output (NCHW or NHWC) are address
 * arithmetic. Positions whose window crosses the left or right padding run as
 * tiles of one position over the taps inside the input; rows whose window
 * crosses the top or bottom padding skip the rows outside. A tile writes its
 * sums once, each channel's P positions in a row where the output is NCHW.
 * Where the filters are 1x1, unit stride and no padding, each plane of
 * positions is one long row.
 *
 * Tasks are (image, group, pair, block of output rows, run of positions along them), in
 * an order that keeps one pair's filters in the core's L2 cache: the pairs
 * innermost where a group's filters fit in CB_FILTER_CACHE bytes, outermost
 * otherwise. Every output is summed by one tile in a fixed order (blocks of
 * input channels sized for L1; within a block, input channel, tap row, tap
 * column, or tap column first where the windows cross the padding), so
 * results do not depend on the number of threads.
 *
 * The kernel bodies live in the template conv_blocked_t.h, compiled once per
 * element type and CPU level (cpu_features.h).
 */
#ifndef PYCONV_CONV_BLOCKED_H
#define PYCONV_CONV_BLOCKED_H

#include <stddef.h>

#include "cpu_features.h"
#include "interrupt_flag.h"

/* A group's packed filters up to this size stay in L2 while every pair runs over
 * the same rows of input (half of a 1 MiB L2, the rest for the input rows). */
#define CB_FILTER_CACHE (512 * 1024)
/* Positions per task along a flattened plane (a 1x1 layer's). */
#define CB_RUN 112
/* A tile sums its input channels in blocks whose input rows take at most this many bytes,
 * so that they stay in L1 while the tile runs over them once per tap column (windows
 * crossing the padding) and the filters stream past: ResNet-late's 256 channels of 3 rows
 * touch 48 KiB. */
#define CB_INPUT_CACHE (16 * 1024)

/* Bytes of packed filters that the packing writes at a time, in L1. */
#define CB_PACK_BYTES (16 * 1024)
/* A task writes rows of at least this many bytes of each output channel (channels first):
 * ResNet-late's rows are 56 bytes, and with a row a task the two threads kept writing
 * the two halves of one cache line. */
#define CB_TASK_ROW_BYTES 1024

typedef struct {
    /* input x[n*xn + c*xc + h*xh + w*xw]: strides in elements */
    const void *x;
    ptrdiff_t n, in_h, in_w, xn, xc, xh, xw;
    /* output y[n*yn + k*yk + i*yh + j*yw] */
    void *y;
    ptrdiff_t oh, ow, yn, yk, yh, yw;
    ptrdiff_t groups, icg, ocg;     /* input and output channels per group */
    ptrdiff_t fh, fw, sh, sw, dh, dw, pt, pl;
    /* filters: weight of output o, input c, tap (u, v) of group g at
     * filt[g*wg + o*wo + c*wc + u*wu + v*wv] (strides may be negative) */
    const void *filt;
    ptrdiff_t wg, wo, wc, wu, wv;
    const void *bias;               /* [groups * ocg], or NULL */
    /* packed filters [groups][pairs][icg][fh][fw][2 * vl] and bias
     * [groups][pairs][2 * vl], zero past ocg (filled by cb_pack) */
    void *wpack, *bpack;
    /* plan, filled by cb_plan */
    int level;
    ptrdiff_t vl, pairs, rows, cols, run, runs, row_block, row_tasks, ntasks, cblock;
    int pairs_inner;
    /* positions [col_lo, col_hi) of a row read no column of padding */
    ptrdiff_t col_lo, col_hi;
} cb_conv;

#define CB_DECLARE(TS, T, LEVEL)                                                  \
    void cb_pack_##TS##_##LEVEL(const cb_conv *p, ptrdiff_t item);                \
    void cb_task_##TS##_##LEVEL(const cb_conv *p, ptrdiff_t t);
CPU_EACH_VARIANT(CB_DECLARE)
#undef CB_DECLARE

static inline ptrdiff_t cb_ceil_div(ptrdiff_t a, ptrdiff_t b)
{
    return a <= 0 ? 0 : (a + b - 1) / b;
}

/* Fill the plan for the CPU level: lanes, pairs, rows and runs of positions,
 * tasks and their order. It depends on the shapes and the level only. */
static inline void cb_plan(cb_conv *p, int level, size_t elem)
{
    ptrdiff_t hi, span, blocks;
    p->level = level;
    p->vl = (ptrdiff_t)cpu_vector_bytes(level) / (ptrdiff_t)elem;
    p->pairs = cb_ceil_div(p->ocg, 2 * p->vl);
    p->rows = p->oh;
    p->cols = p->ow;
    if (p->fh == 1 && p->fw == 1 && p->sh == 1 && p->sw == 1 && p->pt == 0 && p->pl == 0
        && p->oh == p->in_h && p->ow == p->in_w && p->xh == p->in_w * p->xw && p->yh == p->ow * p->yw) {
        p->rows = 1;  /* a 1x1 layer: every plane is one row of positions */
        p->cols = p->oh * p->ow;
    }
    p->run = p->rows == 1 && p->cols > CB_RUN ? CB_RUN : p->cols;
    p->runs = cb_ceil_div(p->cols, p->run);
    /* columns whose every tap lies inside the input: j*sw - pl >= 0 and
     * j*sw - pl + (fw-1)*dw <= w-1 */
    p->col_lo = cb_ceil_div(p->pl, p->sw);
    hi = p->in_w - 1 + p->pl - (p->fw - 1) * p->dw;
    p->col_hi = hi < 0 ? 0 : hi / p->sw + 1;
    if (p->col_hi > p->cols) p->col_hi = p->cols;
    if (p->col_lo > p->col_hi) p->col_lo = p->col_hi;
    if (p->rows == 1 && p->cols != p->ow) {  /* flattened: no padding anywhere */
        p->col_lo = 0;
        p->col_hi = p->cols;
    }
    p->pairs_inner = (size_t)(p->pairs * p->icg * p->fh * p->fw * 2 * p->vl) * elem
                     <= CB_FILTER_CACHE;
    /* a channel's input rows under a tile of up to 14 positions: fh rows of the span of
     * its windows, plus a cache line for the misalignment */
    span = (14 - 1) * p->sw + (p->fw - 1) * p->dw + 1;
    blocks = cb_ceil_div((ptrdiff_t)(p->icg * p->fh * (span * (ptrdiff_t)elem + 64)),
                         CB_INPUT_CACHE);
    p->cblock = blocks > 1 ? cb_ceil_div(p->icg, blocks) : p->icg;
    if (p->cblock < 1) p->cblock = 1;
    /* rows per task: at least CB_TASK_ROW_BYTES of each output channel where the output is
     * channels first, so that two threads seldom write one cache line */
    p->row_block = p->yk == 1 ? 1
                   : cb_ceil_div(CB_TASK_ROW_BYTES, p->cols * p->yw * (ptrdiff_t)elem);
    if (p->row_block < 1) p->row_block = 1;
    if (p->row_block > p->rows) p->row_block = p->rows;
    p->row_tasks = cb_ceil_div(p->rows, p->row_block);
    p->ntasks = p->n * p->groups * p->pairs * p->row_tasks * p->runs;
}

static inline void cb_pack_f32(const cb_conv *p, ptrdiff_t item)
{
    CPU_DISPATCH(p->level, cb_pack, f32, (p, item));
}

static inline void cb_pack_f64(const cb_conv *p, ptrdiff_t item)
{
    CPU_DISPATCH(p->level, cb_pack, f64, (p, item));
}

static inline void cb_task_f32(const cb_conv *p, ptrdiff_t t)
{
    CPU_DISPATCH(p->level, cb_task, f32, (p, t));
}

static inline void cb_task_f64(const cb_conv *p, ptrdiff_t t)
{
    CPU_DISPATCH(p->level, cb_task, f64, (p, t));
}

/* The filter gradient by the same blocking: dw[o][c][u][v] = sum over images n and
 * output positions (i, j) of dy[n][o][i][j] * x[n][c][i*sh - pt + u*dh][j*sw - pl + v*dw].
 *
 * Filters are in the vector lanes again, and the register tile is 2 x P sums: one pair
 * of blocks of output channels at P taps (u, v, c) that lie at consecutive addresses of
 * a channels-last copy of the input, the same tap row u and either the same column v
 * or, without dilation, consecutive (v, c). Per output position the tile loads the two
 * vectors of dy and broadcasts each of its P input values against them, so the sums
 * stay in registers over the whole reduction. Work goes in bands of output rows of one
 * image: the band's input rows are copied channels-last with the padding written as
 * zeros (so no tap needs a test), and its dy transposed to [position][2 * vl] per pair,
 * both small enough to stay in L2. A thread owns a fixed range of tiles over all bands
 * in order, so every sum is taken in the same order whatever the thread count. */

/* Bytes of a band's channels-last input and transposed dy that stay in the L2 cache. */
#define CBG_BAND_CACHE (384 * 1024)

typedef struct {
    const void *x;
    ptrdiff_t n, in_h, in_w, xn, xc, xh, xw;
    /* dy[n*yn + o*yk + i*yh + j*yw], o over all groups' output channels */
    const void *dy;
    ptrdiff_t oh, ow, yn, yk, yh, yw;
    /* the gradient: dw[g*wg + o*wo + c*wc + u*wu + v*wv] */
    void *dw;
    ptrdiff_t wg, wo, wc, wu, wv;
    ptrdiff_t groups, icg, ocg, fh, fw, sh, sw, dh, dw_, pt, pl;
    /* plan, filled by cbg_plan */
    int level;
    ptrdiff_t vl, pairs, tile;      /* lanes, pairs of vectors per group, taps per tile */
    ptrdiff_t seg, segs, seg_step;  /* per tap row: segs runs of seg consecutive taps */
    ptrdiff_t tiles, items;         /* tiles per run; items = groups*pairs*fh*segs*tiles */
    ptrdiff_t band, bands;          /* output rows per band, bands per image */
    ptrdiff_t band_rows, cols;      /* a band's input rows and padded columns */
    ptrdiff_t scratch;              /* elements of one thread's scratch */
} cbg_conv;

#define CBG_DECLARE(TS, T, LEVEL)                                                          \
    void cbg_part_##TS##_##LEVEL(const cbg_conv *p, ptrdiff_t lo, ptrdiff_t hi, void *sums, \
                                 void *scratch, const pc_stop_flag *stop);
CPU_EACH_VARIANT(CBG_DECLARE)
#undef CBG_DECLARE

/* Fill the plan of the filter gradient for the CPU level (shapes and level only). */
static inline void cbg_plan(cbg_conv *p, int level, size_t elem)
{
    ptrdiff_t per_row, budget, dy_row;
    p->level = level;
    p->vl = (ptrdiff_t)cpu_vector_bytes(level) / (ptrdiff_t)elem;
    p->pairs = cb_ceil_div(p->ocg, 2 * p->vl);
    p->tile = cpu_vector_bytes(level) == 64 ? 14 : 6;  /* CB_P of the template */
    if (p->dw_ == 1) {  /* (v, c) consecutive along a row of the copy */
        p->seg = p->fw * p->icg;
        p->segs = 1;
    }
    else {
        p->seg = p->icg;
        p->segs = p->fw;
    }
    p->seg_step = p->dw_ * p->icg;
    p->tiles = cb_ceil_div(p->seg, p->tile);
    p->items = p->groups * p->pairs * p->fh * p->segs * p->tiles;
    p->cols = (p->ow - 1) * p->sw + (p->fw - 1) * p->dw_ + 1;
    /* the largest band whose input rows and dy fit CBG_BAND_CACHE */
    per_row = p->sh * p->cols * p->icg;
    dy_row = p->ow * 2 * p->vl;
    budget = (ptrdiff_t)(CBG_BAND_CACHE / elem) - ((p->fh - 1) * p->dh + 1) * p->cols * p->icg;
    p->band = budget > 0 ? budget / (per_row + dy_row) : 1;
    if (p->band < 1) p->band = 1;
    if (p->band > p->oh) p->band = p->oh;
    p->bands = cb_ceil_div(p->oh, p->band);
    /* balance the bands: equal heights but the last */
    p->band = cb_ceil_div(p->oh, p->bands);
    p->band_rows = (p->band - 1) * p->sh + (p->fh - 1) * p->dh + 1;
    p->scratch = p->band_rows * p->cols * p->icg + p->band * p->ow * 2 * p->vl;
}

static inline void cbg_part_f32(const cbg_conv *p, ptrdiff_t lo, ptrdiff_t hi, void *sums,
                                void *scratch, const pc_stop_flag *stop)
{
    CPU_DISPATCH(p->level, cbg_part, f32, (p, lo, hi, sums, scratch, stop));
}

static inline void cbg_part_f64(const cbg_conv *p, ptrdiff_t lo, ptrdiff_t hi, void *sums,
                                void *scratch, const pc_stop_flag *stop)
{
    CPU_DISPATCH(p->level, cbg_part, f64, (p, lo, hi, sums, scratch, stop));
}

#endif
