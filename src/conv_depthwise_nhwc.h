/* Depthwise convolution of channels-last (N, H, W, C) images, in float and double: what the
 * template shares, its variants' declarations and the dispatchers _conv_nhwc.pyx calls.
 *
 * A depthwise layer here is one whose filters each read one input channel (C/groups == 1):
 * filter k reads channel k / m, m = K / C filters per channel (the depth multiplier). Each
 * output pixel starts from the bias and adds its window's taps one after another, each tap
 * a whole vector of channels read in place from the input and from the filters packed tap
 * by tap (FH*FW, K); the innermost loop runs along the channels with no branches, which the
 * compiler vectorises (with fused multiply-adds from the avx2 level up). Each output is
 * summed in the same order whatever the threads, so results do not depend on their count.
 *
 * Layers with one filter per channel and whole vectors of channels run from a ring of input
 * rows (dwn_forward_band): each input row is copied once, between zero padding columns, into
 * a per-thread ring that holds each vector of channels of the row's pixels in one run, so
 * every load is aligned and every output column has its whole window; an output row is
 * computed a vector of channels at a time along its columns, 8 columns (4 below AVX-512)
 * per block of registers, while the next input row is prefetched. Large outputs are written
 * with streaming stores, which skip reading each line before writing it: the 8x56x56x128
 * float layer on 2 Zen 4 cores went from 1.5-2.3 ms to 0.67-0.83 (in place, unaligned pixels,
 * pairs of columns; alternating processes).
 *
 * The filter gradient (one filter per channel, m == 1) sums, per tap, a vector of channels
 * of dout times the input over the output rows of a band, in order; the caller adds the
 * bands' partial gradients in order, so it too is independent of the thread count. Filters
 * 3 wide at stride 1 (dwn_filter_grad_band) read the input from the forward's ring of
 * rows, all taps of a row of dout at once.
 *
 * The template (conv_depthwise_nhwc_t.h) is compiled once per element type and CPU level
 * (cpu_features.h); the caller passes the level (pyconv.cpu).
 */
#ifndef PYCONV_CONV_DEPTHWISE_NHWC_H
#define PYCONV_CONV_DEPTHWISE_NHWC_H

#include <stddef.h>

#include "cpu_features.h"

/* Geometry of one call: input (h, w) with c channels, k = c * m outputs channels, output
 * (oh, ow), window (fh, fw), stride, dilation, top and left padding. */
typedef struct {
    ptrdiff_t h, w, c, k, m, oh, ow, fh, fw, sh, sw, dh, dw, top, left;
} dwn_geom;

/* The ring of input rows of dwn_forward_band: at most this many rows (the filter's height,
 * dilated), and this many bytes; larger layers run dwn_forward_rows. */
#define DWN_RING_MAX_ROWS 16
#define DWN_RING_MAX_BYTES (8 << 20)

/* Rows of the ring: those under one output row. */
static inline ptrdiff_t dwn_ring_rows(const dwn_geom *g) { return (g->fh - 1) * g->dh + 1; }

/* Elements of one ring row: the columns an output row reads, the input's between its
 * padding, times the channels. */
static inline ptrdiff_t dwn_ring_row_elems(const dwn_geom *g)
{
    ptrdiff_t cols = (g->ow - 1) * g->sw + (g->fw - 1) * g->dw + 1;
    if (cols < g->left + g->w) cols = g->left + g->w;
    return cols * g->c;
}

/* Elements of the whole ring. */
static inline ptrdiff_t dwn_ring_elems(const dwn_geom *g)
{
    return dwn_ring_rows(g) * dwn_ring_row_elems(g);
}

/* Whether dwn_forward_band runs the layer from a ring of rows: one filter per channel, whole
 * vectors of lanes channels, a ring within the limits above, and at least 4 taps per input
 * pixel copied into the ring (sh * sw of them per output pixel): a 3x3 layer at stride 2
 * has 2.25 and ran 20% slower from the ring on one Zen 4 core (8x113x113x64, float), a
 * 5x5 one at stride 2 (6.25) 1.2-1.5x faster. */
static inline int dwn_ring_applies(const dwn_geom *g, ptrdiff_t lanes, ptrdiff_t elem)
{
    return g->m == 1 && g->c % lanes == 0 && g->fh * g->fw >= 4 * g->sh * g->sw
           && dwn_ring_rows(g) <= DWN_RING_MAX_ROWS
           && dwn_ring_elems(g) * elem <= DWN_RING_MAX_BYTES;
}

/* Bytes of the ring that dwn_forward_band needs for the layer at a CPU level (vectors of 16,
 * 32 or 64 bytes), elem-byte elements: 0 where it runs dwn_forward_rows instead. */
static inline ptrdiff_t dwn_ring_bytes(const dwn_geom *g, int level, ptrdiff_t elem)
{
    const ptrdiff_t vector = cpu_vector_bytes(level);
    return dwn_ring_applies(g, vector / elem, elem) ? dwn_ring_elems(g) * elem : 0;
}

/* Whether dwn_filter_grad_band sums the layer's filter gradient from a ring of rows: as
 * dwn_ring_applies, for taps at most 3 rows by 3 columns at stride and dilation 1 along the
 * rows (each output pixel's 9 sums held in registers for a block of channels). */
static inline int dwn_grad_ring_applies(const dwn_geom *g, ptrdiff_t lanes, ptrdiff_t elem)
{
    return dwn_ring_applies(g, lanes, elem) && g->fh <= 3 && g->fw == 3 && g->sw == 1
           && g->dw == 1;
}

/* Bytes of the ring that dwn_filter_grad_band needs, as dwn_ring_bytes. */
static inline ptrdiff_t dwn_grad_ring_bytes(const dwn_geom *g, int level, ptrdiff_t elem)
{
    const ptrdiff_t vector = cpu_vector_bytes(level);
    return dwn_grad_ring_applies(g, vector / elem, elem) ? dwn_ring_elems(g) * elem : 0;
}

#define DWN_DECLARE(TS, T, LEVEL)                                                             \
    void dwn_forward_band_##TS##_##LEVEL(const T *x, const T *wt, const T *bias,              \
                                         const dwn_geom *g, ptrdiff_t i0, ptrdiff_t i1,       \
                                         T *out, T *ring, int stream);                        \
    void dwn_filter_grad_band_##TS##_##LEVEL(const T *dout, const T *x, const dwn_geom *g,    \
                                             ptrdiff_t i0, ptrdiff_t i1, T *part, T *ring);
CPU_EACH_VARIANT(DWN_DECLARE)
#undef DWN_DECLARE

#define dwn_forward_band_f32(level, ...) CPU_DISPATCH(level, dwn_forward_band, f32, (__VA_ARGS__))
#define dwn_forward_band_f64(level, ...) CPU_DISPATCH(level, dwn_forward_band, f64, (__VA_ARGS__))
#define dwn_filter_grad_band_f32(level, ...)                                                  \
    CPU_DISPATCH(level, dwn_filter_grad_band, f32, (__VA_ARGS__))
#define dwn_filter_grad_band_f64(level, ...)                                                  \
    CPU_DISPATCH(level, dwn_filter_grad_band, f64, (__VA_ARGS__))

#endif
