/* Transposing copies between channels-first and channels-last layouts, in float and
 * double: the template's declarations and the dispatchers _conv_nhwc.pyx calls (its
 * swap_channels, behind the channels-last layers that run the NCHW kernels).
 *
 * nhwc_transpose copies a matrix of rows x cols values (unit stride along a row) into its
 * transpose: blocks of lanes x lanes values (one vector per row) are transposed in
 * registers by log2(lanes) rounds of zips (nv_zip_rows of nhwc_vec_t.h, GCC's
 * __builtin_shuffle), the rest one value at a time (and everything under Clang). The template
 * (nhwc_swap_t.h) is compiled once per element type and CPU level (cpu_features.h).
 */
#ifndef PYCONV_NHWC_SWAP_H
#define PYCONV_NHWC_SWAP_H

#include <stddef.h>

#include "cpu_features.h"

#define NS_DECLARE(TS, T, LEVEL)                                                              \
    void nhwc_transpose_##TS##_##LEVEL(const T *a, ptrdiff_t rows, ptrdiff_t cols,            \
                                       ptrdiff_t lda, T *b, ptrdiff_t ldb);
CPU_EACH_VARIANT(NS_DECLARE)
#undef NS_DECLARE

#define nhwc_transpose_f32(level, ...) CPU_DISPATCH(level, nhwc_transpose, f32, (__VA_ARGS__))
#define nhwc_transpose_f64(level, ...) CPU_DISPATCH(level, nhwc_transpose, f64, (__VA_ARGS__))

#endif
