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
 * The filter gradient (one filter per channel, m == 1) sums, per tap, a vector of channels
 * of dout times the input over the output rows of a band, in order; the caller adds the
 * bands' partial gradients in order, so it too is independent of the thread count.
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

#define DWN_DECLARE(TS, T, LEVEL)                                                             \
    void dwn_forward_rows_##TS##_##LEVEL(const T *x, const T *wt, const T *bias,              \
                                         const dwn_geom *g, ptrdiff_t i0, ptrdiff_t i1,       \
                                         T *out);                                             \
    void dwn_filter_grad_rows_##TS##_##LEVEL(const T *dout, const T *x, const dwn_geom *g,    \
                                             ptrdiff_t i0, ptrdiff_t i1, T *part);
CPU_EACH_VARIANT(DWN_DECLARE)
#undef DWN_DECLARE

#define dwn_forward_rows_f32(level, ...) CPU_DISPATCH(level, dwn_forward_rows, f32, (__VA_ARGS__))
#define dwn_forward_rows_f64(level, ...) CPU_DISPATCH(level, dwn_forward_rows, f64, (__VA_ARGS__))
#define dwn_filter_grad_rows_f32(level, ...)                                                  \
    CPU_DISPATCH(level, dwn_filter_grad_rows, f32, (__VA_ARGS__))
#define dwn_filter_grad_rows_f64(level, ...)                                                  \
    CPU_DISPATCH(level, dwn_filter_grad_rows, f64, (__VA_ARGS__))

#endif
