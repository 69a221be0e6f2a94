/* Pooling over one (H, W) plane, in float and double, bitwise as the NumPy oracles: what the
 * pooling templates share, their variants' declarations, and the dispatchers _pool.pyx calls.
 *
 * The portable plane kernels (pool_planes_t.h) serve every geometry:
 * Every kernel walks output rows and, inside a row, one window tap at a time
 * over all the output columns for which that tap is inside the input: the
 * innermost loop runs along the output width with no branches, which the
 * compiler vectorises (a constant stride of 1 or 2 is specialised so the
 * strided loads become vector permutes). Taps are visited in row-major window
 * order, so the first maximum (and the first NaN) wins and sums are formed in
 * the oracle's order.
 *
 * The vector kernels (pool_simd_t.h, avx2 and avx512 only) serve the common
 * geometries faster; see there.
 *
 * Both templates are compiled once per element type and CPU level
 * (cpu_features.h); the caller passes the level (pyconv.cpu).
 */
#ifndef PYCONV_POOL_H
#define PYCONV_POOL_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cpu_features.h"

#if defined(__GNUC__)
#define POOL_INLINE static inline __attribute__((always_inline))
#define POOL_RESTRICT __restrict__
#else
#define POOL_INLINE static inline
#define POOL_RESTRICT
#endif

/* Geometry of one pooling call: input (h, w), output (oh, ow), window (fh, fw),
 * stride, dilation, and the top, left, bottom and right padding (a window may
 * reach past the bottom or right padding in ceil mode). */
typedef struct {
    ptrdiff_t h, w, oh, ow, fh, fw, sh, sw, dh, dw, top, left, bottom, right;
} pool_geom;

/* Floor of a / b and ceiling of a / b for b > 0 and any sign of a. */
POOL_INLINE ptrdiff_t pool_floor_div(ptrdiff_t a, ptrdiff_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }
POOL_INLINE ptrdiff_t pool_ceil_div(ptrdiff_t a, ptrdiff_t b) { return a >= 0 ? (a + b - 1) / b : -((-a) / b); }

/* [*lo, *hi): the k in [0, count) with 0 <= k * step + off < n. */
POOL_INLINE void pool_valid(ptrdiff_t off, ptrdiff_t step, ptrdiff_t n, ptrdiff_t count,
                        ptrdiff_t *lo, ptrdiff_t *hi)
{
    ptrdiff_t a = pool_ceil_div(-off, step), b = pool_floor_div(n - 1 - off, step) + 1;
    if (a < 0) a = 0;
    if (b > count) b = count;
    if (b < a) b = a;
    *lo = a;
    *hi = b;
}

/* How many of the count taps start, start + step, ... (start >= 0) lie before end. */
POOL_INLINE ptrdiff_t pool_taps_before(ptrdiff_t start, ptrdiff_t step, ptrdiff_t end,
                                       ptrdiff_t count)
{
    ptrdiff_t n = start < end ? (end - start + step - 1) / step : 0;
    return n < count ? n : count;
}

/* Whether every window lies inside the padded input (so count_include_pad
 * divides by fh * fw everywhere). */
POOL_INLINE int pool_windows_in_padding(const pool_geom *g)
{
    return (g->oh - 1) * g->sh + (g->fh - 1) * g->dh < g->h + g->top + g->bottom
        && (g->ow - 1) * g->sw + (g->fw - 1) * g->dw < g->w + g->left + g->right;
}

/* Scratch elements the max kernels need per thread: the plane regrouped by
 * column phase when the stride is not 1. */
static inline ptrdiff_t pool_phase_size(const pool_geom *g)
{
    return g->sw == 1 ? 1 : g->h * g->sw * ((g->w + g->sw - 1) / g->sw);
}

/* Whether candidate c replaces the running maximum b: it is larger, or it is
 * the first NaN. Equal values keep the earlier one. */
#define POOL_TAKE(c, b) ((c) > (b) || ((c) != (c) && (b) == (b)))

/* Most lanes of any variant (AVX-512 float): scratch is padded by this much. */
#define POOL_MAX_LANES 16

/* pool_avg_overlap_k: bytes of input rows a band of output rows reads (they
 * stay in L1 from one column block to the next). */
#define POOL_BAND_BYTES 4096

/* How far ahead of the rows it reads the forward kernel prefetches (bytes). */
#define POOL_PREFETCH 8192

/* Whether the vector kernels serve this geometry: no top or left padding and
 * no dilation, every window inside the input (bottom or right padding, or a
 * ceil-mode window, may add only outputs it does not reach), a window at most
 * 3x3, column stride 1 or 2 (and rows short enough that a tap's offset
 * 2 * w + 2 fits the 32-bit lanes that track float maxima). */
static inline int pool_simd_geometry(const pool_geom *g)
{
    return g->top == 0 && g->left == 0 && g->dh == 1 && g->dw == 1 && g->fh <= 3 && g->fw <= 3
        && g->fh <= g->h && g->fw <= g->w /* so every window lies inside the input */
        && g->w <= ((ptrdiff_t)1 << 29)
        && (g->sw == 1 || g->sw == 2) && (g->h - g->fh) / g->sh + 1 == g->oh
        && (g->w - g->fw) / g->sw + 1 == g->ow;
}

/* The vector gradient's scratch: per output row, a row of shares padded on
 * both sides; zeroed by the caller before the first plane. */
static inline ptrdiff_t pool_share_row(const pool_geom *g)
{
    ptrdiff_t cols = (g->w + g->sw - 1) / g->sw;
    return POOL_MAX_LANES + (cols > g->ow ? cols : g->ow) + POOL_MAX_LANES;
}

static inline ptrdiff_t pool_share_size(const pool_geom *g)
{
    return g->oh * pool_share_row(g);
}

/* pool_quot_note: the mean divides the window sum s by d = fh * fw. A vector
 * division costs 5 to 16 cycles a vector, as much as the rest of the
 * window, so where d is odd (3, 9) it is done by a multiplication and two
 * FMAs that round exactly as the division does: with y = RN(1/d),
 * q = RN(s * y) and the exact residual r = q * d - s, RN(q - r * y) is
 * RN(s / d) (Markstein's theorem) as long as y is within half an ulp of 1/d
 * and q within one ulp of s/d. For d = 3 and 9, y's relative error is at
 * most 2^-p-1 (p: the precision, 24 or 53), which keeps q within one ulp.
 * Where s / d is subnormal the grid is fixed-point, q is still within one
 * step and q - r * y within a 2^-p-1 fraction of a step of s / d, which
 * for an odd d is never half-way between two steps, so it rounds the same.
 * Zeros keep their sign; an infinite or NaN s gives a NaN residual, and
 * then q (+-inf or NaN) is the quotient. Tests compare it with the
 * division over every float32. A d that is a power of two is a
 * multiplication by its exact inverse; 6 is divided. */

/* Unroll the loop over window taps (at most 9) so the taps combine in registers. */
#if defined(__clang__)
#define POOL_UNROLL _Pragma("clang loop unroll(full)")
#elif defined(__GNUC__) && __GNUC__ >= 8
#define POOL_UNROLL _Pragma("GCC unroll 9")
#else
#define POOL_UNROLL
#endif

#define POOL_DECLARE(TS, T, LEVEL)                                                            \
    void pool_max_plane_##TS##_##LEVEL(const T *x, const pool_geom *g, T *out, int64_t *idx,      \
                                       T *buf);                                                  \
    void pool_avg_plane_##TS##_##LEVEL(const T *x, const pool_geom *g, int count_include_pad,     \
                                       T *out);                                                  \
    ptrdiff_t pool_max_backward_rows_##TS##_##LEVEL(const T *dout, const int64_t *idx,            \
                                                    ptrdiff_t hw, ptrdiff_t ohw, ptrdiff_t lo,    \
                                                    ptrdiff_t hi, T *dx);                        \
    void pool_avg_backward_plane_##TS##_##LEVEL(const T *dout, const pool_geom *g,                \
                                                int count_include_pad, T *share, T *dx);          \
    int pool_simd_plane_##TS##_##LEVEL(const T *x, const pool_geom *g, int avg, T *out,           \
                                       int64_t *idx, int64_t base);                              \
    int pool_simd_avg_backward_##TS##_##LEVEL(const T *dout, const pool_geom *g, T *scratch,      \
                                              T *dx);
CPU_EACH_VARIANT(POOL_DECLARE)
#undef POOL_DECLARE

/* The portable plane kernels at CPU level `level` (see pool_planes_t.h). */
#define pool_max_plane_f32(level, ...) CPU_DISPATCH(level, pool_max_plane, f32, (__VA_ARGS__))
#define pool_max_plane_f64(level, ...) CPU_DISPATCH(level, pool_max_plane, f64, (__VA_ARGS__))
#define pool_avg_plane_f32(level, ...) CPU_DISPATCH(level, pool_avg_plane, f32, (__VA_ARGS__))
#define pool_avg_plane_f64(level, ...) CPU_DISPATCH(level, pool_avg_plane, f64, (__VA_ARGS__))
#define pool_max_backward_rows_f32(level, ...)                                                 \
    CPU_DISPATCH(level, pool_max_backward_rows, f32, (__VA_ARGS__))
#define pool_max_backward_rows_f64(level, ...)                                                 \
    CPU_DISPATCH(level, pool_max_backward_rows, f64, (__VA_ARGS__))
#define pool_avg_backward_plane_f32(level, ...)                                                \
    CPU_DISPATCH(level, pool_avg_backward_plane, f32, (__VA_ARGS__))
#define pool_avg_backward_plane_f64(level, ...)                                                \
    CPU_DISPATCH(level, pool_avg_backward_plane, f64, (__VA_ARGS__))

/* The vector kernels (pool_simd_t.h): out rows [i0, i1) (base 0; out and idx point at the
 * plane's first row), and the gradient of average pooling (scratch: pool_share_size(g)
 * zeroed elements); 0 where they do not serve (the portable level), else 1. */
#define POOL_SIMD_ENTRY_POINTS(TS, T)                                                         \
static inline int pool_simd_rows_##TS(int level, const T *x, const pool_geom *g, int avg,      \
                                      ptrdiff_t i0, ptrdiff_t i1, T *out, int64_t *idx)        \
{                                                                                             \
    pool_geom band = *g;                                                                      \
    band.oh = i1 - i0;                                                                        \
    return CPU_DISPATCH_VECTOR(level, pool_simd_plane, TS,                                    \
                               (x + i0 * g->sh * g->w, &band, avg, out + i0 * g->ow,          \
                                idx ? idx + i0 * g->ow : NULL, (int64_t)(i0 * g->sh * g->w)), \
                               0);                                                            \
}                                                                                             \
static inline int pool_simd_avg_backward_##TS(int level, const T *dout, const pool_geom *g,    \
                                              T *scratch, T *dx)                              \
{                                                                                             \
    return CPU_DISPATCH_VECTOR(level, pool_simd_avg_backward, TS, (dout, g, scratch, dx), 0); \
}
POOL_SIMD_ENTRY_POINTS(f32, float)
POOL_SIMD_ENTRY_POINTS(f64, double)
#undef POOL_SIMD_ENTRY_POINTS

#endif
