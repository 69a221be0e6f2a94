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
 * stride, dilation, and the top and left padding. */
typedef struct {
    ptrdiff_t h, w, oh, ow, fh, fw, sh, sw, dh, dw, top, left;
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

/* Whether candidate c replaces the running maximum b: it is larger, or it is
 * the first NaN. Equal values keep the earlier one. */
#define PC_TAKE(c, b) (((c) > (b)) | (((c) != (c)) & ((b) == (b))))

#define PC_DEFINE_PLANES(T, S)                                                                 \
                                                                                               \
/* One tap over output columns [lo, hi): column j reads xr[j * sw + off]. */                  \
PC_INLINE void pc_max_tap_##S(const T *PC_RESTRICT xr, T *PC_RESTRICT o,                       \
                              int64_t *PC_RESTRICT oi, ptrdiff_t lo, ptrdiff_t hi,              \
                              ptrdiff_t off, int64_t base, const ptrdiff_t sw, const int track) \
{                                                                                              \
    for (ptrdiff_t j = lo; j < hi; j++) {                                                      \
        T c = xr[j * sw + off], b = o[j];                                                      \
        int t = PC_TAKE(c, b);                                                                 \
        o[j] = t ? c : b;                                                                      \
        if (track) oi[j] = t ? base + (int64_t)(j * sw) : oi[j];                               \
    }                                                                                          \
}                                                                                              \
                                                                                               \
PC_INLINE void pc_max_plane_body_##S(const T *PC_RESTRICT x, const pc_geom *g,                 \
                                     T *PC_RESTRICT out, int64_t *PC_RESTRICT idx,              \
                                     const int track)                                          \
{                                                                                              \
    const ptrdiff_t w = g->w, ow = g->ow, sw = g->sw, dw = g->dw, left = g->left;              \
    ptrdiff_t a, b, lo, hi, ulo, uhi;                                                          \
    pc_valid(-left, sw, w, ow, &a, &b); /* columns whose first tap is inside */                \
    for (ptrdiff_t i = 0; i < g->oh; i++) {                                                    \
        T *o = out + i * ow;                                                                   \
        int64_t *oi = track ? idx + i * ow : NULL;                                             \
        ptrdiff_t r0 = i * g->sh - g->top;                                                     \
        pc_valid(r0, g->dh, g->h, g->fh, &ulo, &uhi);                                          \
        if (ulo == uhi) { /* no input row in the window: cannot happen for valid geometry */   \
            for (ptrdiff_t j = 0; j < ow; j++) { o[j] = NAN; if (track) oi[j] = -1; }          \
            continue;                                                                          \
        }                                                                                      \
        /* start every column from its first tap inside the input */                          \
        ptrdiff_t r = r0 + ulo * g->dh;                                                        \
        const T *xr = x + r * w;                                                               \
        for (ptrdiff_t j = 0; j < ow; j++) {                                                   \
            ptrdiff_t vlo, vhi, c;                                                             \
            if (j >= a && j < b) { vlo = 0; vhi = 1; }                                          \
            else pc_valid(j * sw - left, dw, w, g->fw, &vlo, &vhi);                             \
            if (vlo == vhi) { o[j] = NAN; if (track) oi[j] = -1; continue; }                  \
            c = j * sw - left + vlo * dw;                                                      \
            o[j] = xr[c];                                                                      \
            if (track) oi[j] = (int64_t)(r * w + c);                                           \
        }                                                                                      \
        /* then every tap in row-major order; repeating a column's start tap changes nothing */ \
        for (ptrdiff_t u = ulo; u < uhi; u++) {                                                \
            r = r0 + u * g->dh;                                                                \
            xr = x + r * w;                                                                    \
            for (ptrdiff_t v = (u == ulo); v < g->fw; v++) {                                   \
                ptrdiff_t off = v * dw - left;                                                 \
                int64_t base = (int64_t)(r * w + off);                                         \
                pc_valid(off, sw, w, ow, &lo, &hi);                                            \
                if (sw == 1) pc_max_tap_##S(xr, o, oi, lo, hi, off, base, 1, track);           \
                else if (sw == 2) pc_max_tap_##S(xr, o, oi, lo, hi, off, base, 2, track);      \
                else pc_max_tap_##S(xr, o, oi, lo, hi, off, base, sw, track);                  \
            }                                                                                  \
        }                                                                                      \
    }                                                                                          \
}                                                                                              \
                                                                                               \
/* out (oh, ow) = max over each window of x (h, w); idx (oh, ow) gets the flat \
 * index of each maximum, or is NULL. */                                                      \
PC_CLONES static void pc_max_plane_##S(const T *x, const pc_geom *g, T *out, int64_t *idx)     \
{                                                                                              \
    if (idx) pc_max_plane_body_##S(x, g, out, idx, 1);                                         \
    else pc_max_plane_body_##S(x, g, out, NULL, 0);                                            \
}                                                                                              \
                                                                                               \
PC_INLINE void pc_add_tap_##S(const T *PC_RESTRICT xr, T *PC_RESTRICT o, ptrdiff_t lo,          \
                              ptrdiff_t hi, ptrdiff_t off, const ptrdiff_t sw)                 \
{                                                                                              \
    for (ptrdiff_t j = lo; j < hi; j++) o[j] = o[j] + xr[j * sw + off];                        \
}                                                                                              \
                                                                                               \
/* out (oh, ow) = mean over each window of x (h, w); the divisor is fh * fw, \
 * or the count of taps inside the input when count_include_pad is 0. */                     \
PC_CLONES static void pc_avg_plane_##S(const T *x, const pc_geom *g, int count_include_pad,    \
                                       T *out)                                                 \
{                                                                                              \
    const ptrdiff_t w = g->w, ow = g->ow, sw = g->sw, dw = g->dw, left = g->left;              \
    ptrdiff_t lo, hi, ulo, uhi;                                                                \
    for (ptrdiff_t i = 0; i < g->oh; i++) {                                                    \
        T *o = out + i * ow;                                                                   \
        ptrdiff_t r0 = i * g->sh - g->top;                                                     \
        pc_valid(r0, g->dh, g->h, g->fh, &ulo, &uhi);                                          \
        for (ptrdiff_t j = 0; j < ow; j++) o[j] = 0;                                           \
        for (ptrdiff_t u = ulo; u < uhi; u++) {                                                \
            const T *xr = x + (r0 + u * g->dh) * w;                                            \
            for (ptrdiff_t v = 0; v < g->fw; v++) {                                            \
                ptrdiff_t off = v * dw - left;                                                 \
                pc_valid(off, sw, w, ow, &lo, &hi);                                            \
                if (sw == 1) pc_add_tap_##S(xr, o, lo, hi, off, 1);                            \
                else if (sw == 2) pc_add_tap_##S(xr, o, lo, hi, off, 2);                       \
                else pc_add_tap_##S(xr, o, lo, hi, off, sw);                                   \
            }                                                                                  \
        }                                                                                      \
        if (count_include_pad) {                                                               \
            T d = (T)(g->fh * g->fw);                                                          \
            for (ptrdiff_t j = 0; j < ow; j++) o[j] = o[j] / d;                                \
        } else {                                                                               \
            for (ptrdiff_t j = 0; j < ow; j++) {                                               \
                pc_valid(j * sw - left, dw, w, g->fw, &lo, &hi);                               \
                o[j] = o[j] / (T)((uhi - ulo) * (hi - lo));                                    \
            }                                                                                  \
        }                                                                                      \
    }                                                                                          \
}                                                                                              \
                                                                                               \
/* dx (h, w) = sum of dout (oh, ow) over the flat indices idx (oh, ow), in \
 * output order; an index outside [0, h * w) is skipped (never written). */                   \
static void pc_max_backward_plane_##S(const T *dout, const int64_t *idx, ptrdiff_t hw,        \
                                      ptrdiff_t ohw, T *dx)                                    \
{                                                                                              \
    memset(dx, 0, (size_t)hw * sizeof(T));                                                     \
    for (ptrdiff_t k = 0; k < ohw; k++) {                                                      \
        uint64_t t = (uint64_t)idx[k];                                                         \
        if (t < (uint64_t)hw) dx[t] = dx[t] + dout[k];                                         \
    }                                                                                          \
}                                                                                              \
                                                                                               \
PC_INLINE void pc_spread_tap_##S(const T *PC_RESTRICT share, T *PC_RESTRICT dxr, ptrdiff_t lo,  \
                                 ptrdiff_t hi, ptrdiff_t off, const ptrdiff_t sw)              \
{                                                                                              \
    for (ptrdiff_t j = lo; j < hi; j++) dxr[j * sw + off] = dxr[j * sw + off] + share[j];      \
}                                                                                              \
                                                                                               \
/* dx (h, w) = gradient of pc_avg_plane for dout (oh, ow); share is scratch \
 * of ow elements. Each dx element sums its shares in output row-major order, \
 * as the oracle does: rows in order, and within a row taps right to left, \
 * which is output columns left to right. */                                                  \
PC_CLONES static void pc_avg_backward_plane_##S(const T *dout, const pc_geom *g,               \
                                                int count_include_pad, T *share, T *dx)        \
{                                                                                              \
    const ptrdiff_t w = g->w, ow = g->ow, sw = g->sw, dw = g->dw, left = g->left;              \
    ptrdiff_t lo, hi, ulo, uhi;                                                                \
    memset(dx, 0, (size_t)(g->h * w) * sizeof(T));                                             \
    for (ptrdiff_t i = 0; i < g->oh; i++) {                                                    \
        const T *d = dout + i * ow;                                                            \
        ptrdiff_t r0 = i * g->sh - g->top;                                                     \
        pc_valid(r0, g->dh, g->h, g->fh, &ulo, &uhi);                                          \
        if (count_include_pad) {                                                               \
            T div = (T)(g->fh * g->fw);                                                        \
            for (ptrdiff_t j = 0; j < ow; j++) share[j] = d[j] / div;                          \
        } else {                                                                               \
            for (ptrdiff_t j = 0; j < ow; j++) {                                               \
                pc_valid(j * sw - left, dw, w, g->fw, &lo, &hi);                               \
                share[j] = d[j] / (T)((uhi - ulo) * (hi - lo));                                \
            }                                                                                  \
        }                                                                                      \
        for (ptrdiff_t u = ulo; u < uhi; u++) {                                                \
            T *dxr = dx + (r0 + u * g->dh) * w;                                                \
            for (ptrdiff_t v = g->fw - 1; v >= 0; v--) {                                       \
                ptrdiff_t off = v * dw - left;                                                 \
                pc_valid(off, sw, w, ow, &lo, &hi);                                            \
                if (sw == 1) pc_spread_tap_##S(share, dxr, lo, hi, off, 1);                    \
                else if (sw == 2) pc_spread_tap_##S(share, dxr, lo, hi, off, 2);               \
                else pc_spread_tap_##S(share, dxr, lo, hi, off, sw);                           \
            }                                                                                  \
        }                                                                                      \
    }                                                                                          \
}

PC_DEFINE_PLANES(float, f)
PC_DEFINE_PLANES(double, d)

#endif
