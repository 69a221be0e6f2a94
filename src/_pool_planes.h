/* Pooling over one (H, W) plane, in float and double, bitwise as the NumPy oracles.
 *
 * Every kernel walks output rows and, inside a row, one window tap at a time
 * over all the output columns for which that tap is inside the input: the
 * innermost loop runs along the output width with no branches, which the
 * compiler vectorises (a constant stride of 1 or 2 is specialised so the
 * strided loads become vector permutes). Taps are visited in row-major window
 * order, so the first maximum (and the first NaN) wins and sums are formed in
 * the oracle's order.
 *
 * With GCC or Clang on x86-64 ELF, each plane kernel is compiled for AVX-512,
 * AVX2 and the baseline, and the loader picks the best one for the CPU
 * (function multiversioning); other compilers get one portable build.
 */
#ifndef PYCONV_POOL_PLANES_H
#define PYCONV_POOL_PLANES_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) && defined(__ELF__) && \
    ((defined(__clang__) && __clang_major__ >= 14) || (!defined(__clang__) && defined(__GNUC__) && __GNUC__ >= 6))
#define PC_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define PC_CLONES
#endif

#if defined(__GNUC__)
#define PC_INLINE static inline __attribute__((always_inline))
#define PC_RESTRICT __restrict__
#else
#define PC_INLINE static inline
#define PC_RESTRICT
#endif

/* Geometry of one pooling call: input (h, w), output (oh, ow), window (fh, fw),
 * stride, dilation, and the top, left, bottom and right padding (a window may
 * reach past the bottom or right padding in ceil mode). */
typedef struct {
    ptrdiff_t h, w, oh, ow, fh, fw, sh, sw, dh, dw, top, left, bottom, right;
} pc_geom;

/* Floor of a / b and ceiling of a / b for b > 0 and any sign of a. */
PC_INLINE ptrdiff_t pc_floor_div(ptrdiff_t a, ptrdiff_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }
PC_INLINE ptrdiff_t pc_ceil_div(ptrdiff_t a, ptrdiff_t b) { return a >= 0 ? (a + b - 1) / b : -((-a) / b); }

/* [*lo, *hi): the k in [0, count) with 0 <= k * step + off < n. */
PC_INLINE void pc_valid(ptrdiff_t off, ptrdiff_t step, ptrdiff_t n, ptrdiff_t count,
                        ptrdiff_t *lo, ptrdiff_t *hi)
{
    ptrdiff_t a = pc_ceil_div(-off, step), b = pc_floor_div(n - 1 - off, step) + 1;
    if (a < 0) a = 0;
    if (b > count) b = count;
    if (b < a) b = a;
    *lo = a;
    *hi = b;
}

/* How many of the count taps start, start + step, ... (start >= 0) lie before end. */
PC_INLINE ptrdiff_t pc_taps_before(ptrdiff_t start, ptrdiff_t step, ptrdiff_t end, ptrdiff_t count)
{
    ptrdiff_t n = start < end ? (end - start + step - 1) / step : 0;
    return n < count ? n : count;
}

/* Whether every window lies inside the padded input (so count_include_pad
 * divides by fh * fw everywhere). */
PC_INLINE int pc_windows_in_padding(const pc_geom *g)
{
    return (g->oh - 1) * g->sh + (g->fh - 1) * g->dh < g->h + g->top + g->bottom
        && (g->ow - 1) * g->sw + (g->fw - 1) * g->dw < g->w + g->left + g->right;
}

/* Scratch elements the max kernels need per thread: the plane regrouped by
 * column phase when the stride is not 1. */
static inline ptrdiff_t pc_phase_size(const pc_geom *g)
{
    return g->sw == 1 ? 1 : g->h * g->sw * ((g->w + g->sw - 1) / g->sw);
}

/* Whether candidate c replaces the running maximum b: it is larger, or it is
 * the first NaN. Equal values keep the earlier one. */
#define PC_TAKE(c, b) ((c) > (b) || ((c) != (c) && (b) == (b)))

#define PC_CAT2(a, b) a##_##b
#define PC_CAT(a, b) PC_CAT2(a, b)

#define T float
#define PC_NAME(name) PC_CAT(name, f)
#include "_pool_planes_t.h"
#undef T
#undef PC_NAME

#define T double
#define PC_NAME(name) PC_CAT(name, d)
#include "_pool_planes_t.h"
#undef T
#undef PC_NAME

#endif
