/* Pooling of channels-last (N, H, W, C) images, in float and double: the variants'
 * declarations and the dispatchers _pool.pyx calls.
 *
 * Every kernel works on one image and walks its output pixels; at each pixel it
 * combines the window's taps one after another, each tap a whole vector of C
 * channels read in place (the innermost loop runs along C with no branches, which
 * the compiler vectorises for the level). Taps are visited in the order of the
 * NCHW plane kernels (pool_planes_t.h): row-major over the window, starting from
 * the first tap inside the input, so the first maximum (and the first NaN) wins,
 * sums are formed in the same order and divided by the same divisor, and every
 * result equals the NCHW one transposed, bit for bit. Gradients are scattered in
 * output row-major order, as there.
 *
 * The template (pool_nhwc_t.h) is compiled once per element type and CPU level
 * (cpu_features.h); the caller passes the level (pyconv.cpu).
 */
#ifndef PYCONV_POOL_NHWC_H
#define PYCONV_POOL_NHWC_H

#include "pool.h"

#define POOL_NHWC_DECLARE(TS, T, LEVEL)                                                       \
    void pool_nhwc_max_rows_##TS##_##LEVEL(const T *x, const pool_geom *g, ptrdiff_t c,       \
                                           ptrdiff_t i0, ptrdiff_t i1, T *out, int64_t *idx); \
    void pool_nhwc_avg_rows_##TS##_##LEVEL(const T *x, const pool_geom *g, ptrdiff_t c,       \
                                           int count_include_pad, ptrdiff_t i0, ptrdiff_t i1, \
                                           T *out);                                           \
    ptrdiff_t pool_nhwc_max_backward_band_##TS##_##LEVEL(const T *dout, const int64_t *idx,   \
                                                         const pool_geom *g, ptrdiff_t c,     \
                                                         ptrdiff_t r0, ptrdiff_t r1, T *dx);  \
    void pool_nhwc_max_backward_recompute_band_##TS##_##LEVEL(                                \
        const T *dout, const T *x, const pool_geom *g, ptrdiff_t c, ptrdiff_t r0,             \
        ptrdiff_t r1, T *vals, int64_t *wins, T *dx);                                         \
    void pool_nhwc_avg_backward_band_##TS##_##LEVEL(const T *dout, const pool_geom *g,        \
                                                    ptrdiff_t c, int count_include_pad,       \
                                                    ptrdiff_t r0, ptrdiff_t r1, T *share,     \
                                                    T *dx);
CPU_EACH_VARIANT(POOL_NHWC_DECLARE)
#undef POOL_NHWC_DECLARE

#define pool_nhwc_max_rows_f32(level, ...) CPU_DISPATCH(level, pool_nhwc_max_rows, f32, (__VA_ARGS__))
#define pool_nhwc_max_rows_f64(level, ...) CPU_DISPATCH(level, pool_nhwc_max_rows, f64, (__VA_ARGS__))
#define pool_nhwc_avg_rows_f32(level, ...) CPU_DISPATCH(level, pool_nhwc_avg_rows, f32, (__VA_ARGS__))
#define pool_nhwc_avg_rows_f64(level, ...) CPU_DISPATCH(level, pool_nhwc_avg_rows, f64, (__VA_ARGS__))
#define pool_nhwc_max_backward_band_f32(level, ...)                                            \
    CPU_DISPATCH(level, pool_nhwc_max_backward_band, f32, (__VA_ARGS__))
#define pool_nhwc_max_backward_band_f64(level, ...)                                            \
    CPU_DISPATCH(level, pool_nhwc_max_backward_band, f64, (__VA_ARGS__))
#define pool_nhwc_max_backward_recompute_band_f32(level, ...)                                  \
    CPU_DISPATCH(level, pool_nhwc_max_backward_recompute_band, f32, (__VA_ARGS__))
#define pool_nhwc_max_backward_recompute_band_f64(level, ...)                                  \
    CPU_DISPATCH(level, pool_nhwc_max_backward_recompute_band, f64, (__VA_ARGS__))
#define pool_nhwc_avg_backward_band_f32(level, ...)                                            \
    CPU_DISPATCH(level, pool_nhwc_avg_backward_band, f32, (__VA_ARGS__))
#define pool_nhwc_avg_backward_band_f64(level, ...)                                            \
    CPU_DISPATCH(level, pool_nhwc_avg_backward_band, f64, (__VA_ARGS__))

#endif
