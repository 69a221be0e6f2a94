/* The channels-last pooling kernels of pool_nhwc.h for one element type T and CPU level: a
 * template, compiled once per (T, level) in a translation unit that setup.py generates
 * (see cpu_features.h): plain C whose loops along the channels the compiler vectorises
 * for the level. x, out, dout and dx point at one image (H, W, C) or (OH, OW, C). */
#include "pool_nhwc.h"

#if CPU_LEVEL == CPU_PORTABLE || CPU_X86
#include "nhwc_vec_t.h"

/* The taps [*lo, *hi) of a window of f taps (dilation d) from input index off that lie
 * inside [0, n): all of them without a division when the window is inside. */
POOL_INLINE void VARIANT(nhwc_taps)(ptrdiff_t off, ptrdiff_t d, ptrdiff_t n, ptrdiff_t f,
                                    ptrdiff_t *lo, ptrdiff_t *hi)
{
    if (off >= 0 && off + (f - 1) * d < n) { *lo = 0; *hi = f; }
    else pool_valid(off, d, n, f, lo, hi);
}

/* The divisor of output pixel (i, j) whose window has rows x cols taps inside the input, as
 * pool_avg_plane computes it. */
POOL_INLINE T VARIANT(nhwc_divisor)(const pool_geom *g, ptrdiff_t i, ptrdiff_t j,
                                    int count_include_pad, ptrdiff_t rows, ptrdiff_t cols)
{
    if (!count_include_pad) return (T)(rows * cols);
    return (T)(pool_taps_before(i * g->sh, g->dh, g->h + g->top + g->bottom, g->fh)
               * pool_taps_before(j * g->sw, g->dw, g->w + g->left + g->right, g->fw));
}

/* s / d for a vector s, as the division rounds it: by d's exact inverse when d is a power
 * of two. */
POOL_INLINE NV VARIANT(nhwc_div)(NV s, T d)
{
    int64_t n = (int64_t)d;
    return (n & (n - 1)) == 0 ? s * ((T)1 / d) : s / d;
}

/* One output pixel's window: rows [ulo, uhi) from input row r0, columns [vlo, vhi) from
 * input column c0, taps inside the input only. */
typedef struct {
    ptrdiff_t r0, c0, ulo, uhi, vlo, vhi;
} VARIANT(nhwc_win);

POOL_INLINE VARIANT(nhwc_win) VARIANT(nhwc_window)(const pool_geom *g, ptrdiff_t i, ptrdiff_t j)
{
    VARIANT(nhwc_win) a;
    a.r0 = i * g->sh - g->top;
    a.c0 = j * g->sw - g->left;
    VARIANT(nhwc_taps)(a.r0, g->dh, g->h, g->fh, &a.ulo, &a.uhi);
    VARIANT(nhwc_taps)(a.c0, g->dw, g->w, g->fw, &a.vlo, &a.vhi);
    return a;
}

/* The flat index r * W + c of tap (u, v) of window a. */
#define NHWC_TAP(g, a, u, v) (((a).r0 + (u) * (g)->dh) * (g)->w + (a).c0 + (v) * (g)->dw)

/* Channels [c, c + nb vectors) of pixel a's maxima (and, if track, their flat indices):
 * the first tap inside the input, then every tap in row-major order, nb vectors held in
 * registers. The indices are tracked in lanes of T's width (the caller checks that H * W
 * fits). */
POOL_INLINE void VARIANT(nhwc_max_vectors)(const T *POOL_RESTRICT x, const pool_geom *g,
                                           ptrdiff_t C, VARIANT(nhwc_win) a, ptrdiff_t c,
                                           const int nb, T *POOL_RESTRICT o,
                                           int64_t *POOL_RESTRICT oi, const int track)
{
    NV b[NV_BLOCK];
    NV_I bi[NV_BLOCK];
    const NV_INT first = (NV_INT)NHWC_TAP(g, a, a.ulo, a.vlo);
    const T *p = x + (ptrdiff_t)first * C + c;
    POOL_UNROLL
    for (int k = 0; k < nb; k++) {
        b[k] = VARIANT(nv_load)(p + k * NV_LANES);
        bi[k] = (NV_I){0} + first;
    }
    for (ptrdiff_t u = a.ulo; u < a.uhi; u++)
        for (ptrdiff_t v = (u == a.ulo ? a.vlo + 1 : a.vlo); v < a.vhi; v++) {
            const NV_INT t = (NV_INT)NHWC_TAP(g, a, u, v);
            p = x + (ptrdiff_t)t * C + c;
            POOL_UNROLL
            for (int k = 0; k < nb; k++) {
                NV e = VARIANT(nv_load)(p + k * NV_LANES);
                NV_I take = (e > b[k]) | ((e != e) & (b[k] == b[k]));
                b[k] = VARIANT(nv_select)(take, e, b[k]);
                if (track) bi[k] = (take & t) | (~take & bi[k]);
            }
        }
    POOL_UNROLL
    for (int k = 0; k < nb; k++) {
        VARIANT(nv_store)(o + c + k * NV_LANES, b[k]);
        if (track) {
            NV_INT lanes[NV_LANES];
            memcpy(lanes, &bi[k], sizeof lanes);
            for (ptrdiff_t l = 0; l < NV_LANES; l++) oi[c + k * NV_LANES + l] = lanes[l];
        }
    }
}

/* Channels [c, C) of the same, one channel at a time (any H * W). */
POOL_INLINE void VARIANT(nhwc_max_scalar)(const T *POOL_RESTRICT x, const pool_geom *g,
                                          ptrdiff_t C, VARIANT(nhwc_win) a, ptrdiff_t c,
                                          T *POOL_RESTRICT o, int64_t *POOL_RESTRICT oi,
                                          const int track)
{
    const int64_t first = (int64_t)NHWC_TAP(g, a, a.ulo, a.vlo);
    for (ptrdiff_t k = c; k < C; k++) {
        o[k] = x[first * C + k];
        if (track) oi[k] = first;
    }
    for (ptrdiff_t u = a.ulo; u < a.uhi; u++)
        for (ptrdiff_t v = (u == a.ulo ? a.vlo + 1 : a.vlo); v < a.vhi; v++) {
            const int64_t t = (int64_t)NHWC_TAP(g, a, u, v);
            const T *POOL_RESTRICT p = x + t * C;
            for (ptrdiff_t k = c; k < C; k++) {
                T e = p[k], b = o[k];
                int take = POOL_TAKE(e, b);
                o[k] = take ? e : b;
                if (track) oi[k] = take ? t : oi[k];
            }
        }
}

/* o[0:C] = the maxima of the window of output pixel (i, j) and, if track, oi[0:C] their
 * flat indices r * W + c (POOL_TAKE keeps the first maximum and the first NaN). */
POOL_INLINE void VARIANT(nhwc_max_pixel)(const T *POOL_RESTRICT x, const pool_geom *g,
                                         ptrdiff_t C, ptrdiff_t i, ptrdiff_t j,
                                         T *POOL_RESTRICT o, int64_t *POOL_RESTRICT oi,
                                         const int track)
{
    VARIANT(nhwc_win) a = VARIANT(nhwc_window)(g, i, j);
    ptrdiff_t c = 0;
    if (a.ulo == a.uhi || a.vlo == a.vhi) { /* no tap inside the input: refused by pool_geometry */
        for (ptrdiff_t k = 0; k < C; k++) { o[k] = NAN; if (track) oi[k] = -1; }
        return;
    }
    if (!track || (uint64_t)(g->h * g->w) <= (uint64_t)((NV_INT)1 << (8 * sizeof(NV_INT) - 2))) {
        for (; c + NV_BLOCK * NV_LANES <= C; c += NV_BLOCK * NV_LANES)
            VARIANT(nhwc_max_vectors)(x, g, C, a, c, NV_BLOCK, o, oi, track);
        for (; c + NV_LANES <= C; c += NV_LANES)
            VARIANT(nhwc_max_vectors)(x, g, C, a, c, 1, o, oi, track);
    }
    if (c < C) VARIANT(nhwc_max_scalar)(x, g, C, a, c, o, oi, track);
}

/* out rows [i0, i1) (OH, OW, C) = the window maxima of x (H, W, C); idx (the same shape)
 * gets their flat indices r * W + c, or is NULL. */
void VARIANT(pool_nhwc_max_rows)(const T *x, const pool_geom *g, ptrdiff_t c, ptrdiff_t i0,
                                 ptrdiff_t i1, T *out, int64_t *idx)
{
    for (ptrdiff_t i = i0; i < i1; i++)
        for (ptrdiff_t j = 0; j < g->ow; j++) {
            ptrdiff_t at = (i * g->ow + j) * c;
            if (idx) VARIANT(nhwc_max_pixel)(x, g, c, i, j, out + at, idx + at, 1);
            else VARIANT(nhwc_max_pixel)(x, g, c, i, j, out + at, NULL, 0);
        }
}

/* Channels [c, c + nb vectors) of pixel a's mean: the taps summed from zero in row-major
 * order in registers, then divided by d. */
POOL_INLINE void VARIANT(nhwc_avg_vectors)(const T *POOL_RESTRICT x, const pool_geom *g,
                                           ptrdiff_t C, VARIANT(nhwc_win) a, ptrdiff_t c,
                                           const int nb, T d, T *POOL_RESTRICT o)
{
    NV s[NV_BLOCK];
    POOL_UNROLL
    for (int k = 0; k < nb; k++) s[k] = (NV){0};
    for (ptrdiff_t u = a.ulo; u < a.uhi; u++)
        for (ptrdiff_t v = a.vlo; v < a.vhi; v++) {
            const T *p = x + NHWC_TAP(g, a, u, v) * C + c;
            POOL_UNROLL
            for (int k = 0; k < nb; k++) s[k] = s[k] + VARIANT(nv_load)(p + k * NV_LANES);
        }
    POOL_UNROLL
    for (int k = 0; k < nb; k++) VARIANT(nv_store)(o + c + k * NV_LANES, VARIANT(nhwc_div)(s[k], d));
}

/* out rows [i0, i1) = the window means of x: the taps inside the input summed from zero in
 * row-major order, then divided by the divisor of pool_avg_plane. */
void VARIANT(pool_nhwc_avg_rows)(const T *x, const pool_geom *g, ptrdiff_t C,
                                 int count_include_pad, ptrdiff_t i0, ptrdiff_t i1, T *out)
{
    for (ptrdiff_t i = i0; i < i1; i++)
        for (ptrdiff_t j = 0; j < g->ow; j++) {
            T *POOL_RESTRICT o = out + (i * g->ow + j) * C;
            VARIANT(nhwc_win) a = VARIANT(nhwc_window)(g, i, j);
            const T d = VARIANT(nhwc_divisor)(g, i, j, count_include_pad, a.uhi - a.ulo,
                                              a.vhi - a.vlo);
            ptrdiff_t c = 0;
            for (; c + NV_BLOCK * NV_LANES <= C; c += NV_BLOCK * NV_LANES)
                VARIANT(nhwc_avg_vectors)(x, g, C, a, c, NV_BLOCK, d, o);
            for (; c + NV_LANES <= C; c += NV_LANES)
                VARIANT(nhwc_avg_vectors)(x, g, C, a, c, 1, d, o);
            if (c == C) continue;
            for (ptrdiff_t k = c; k < C; k++) o[k] = 0;
            for (ptrdiff_t u = a.ulo; u < a.uhi; u++)
                for (ptrdiff_t v = a.vlo; v < a.vhi; v++) {
                    const T *POOL_RESTRICT p = x + NHWC_TAP(g, a, u, v) * C;
                    for (ptrdiff_t k = c; k < C; k++) o[k] = o[k] + p[k];
                }
            for (ptrdiff_t k = c; k < C; k++) o[k] = o[k] / d;
        }
}

/* Whether the window rows of output row i meet the input rows [r0, r1). */
POOL_INLINE int VARIANT(nhwc_row_meets)(const pool_geom *g, ptrdiff_t i, ptrdiff_t r0,
                                        ptrdiff_t r1)
{
    ptrdiff_t top = i * g->sh - g->top;
    return top < r1 && top + (g->fh - 1) * g->dh >= r0;
}

/* Input rows [r0, r1) of dx (H, W, C) = the sum of dout (OH, OW, C) at the flat indices
 * idx (OH, OW, C) that fall in them, in output order. Several calls on disjoint bands give
 * the dx of one call on all rows. Returns the count of indices outside [0, H * W), which
 * are skipped. */
ptrdiff_t VARIANT(pool_nhwc_max_backward_band)(const T *POOL_RESTRICT dout,
                                               const int64_t *POOL_RESTRICT idx,
                                               const pool_geom *g, ptrdiff_t C, ptrdiff_t r0,
                                               ptrdiff_t r1, T *POOL_RESTRICT dx)
{
    const ptrdiff_t lo = r0 * g->w, hi = r1 * g->w, hw = g->h * g->w;
    ptrdiff_t skipped = 0;
    memset(dx + lo * C, 0, (size_t)((hi - lo) * C) * sizeof(T));
    for (ptrdiff_t k = 0; k < g->oh * g->ow; k++) {
        const T *POOL_RESTRICT d = dout + k * C;
        const int64_t *POOL_RESTRICT t = idx + k * C;
        for (ptrdiff_t c = 0; c < C; c++) {
            int64_t at = t[c];
            if ((uint64_t)(at - lo) < (uint64_t)(hi - lo)) dx[at * C + c] = dx[at * C + c] + d[c];
            skipped += (uint64_t)at >= (uint64_t)hw;
        }
    }
    return skipped;
}

/* The same with the maxima found again in x (vals and wins: C elements of scratch each);
 * only output rows whose windows meet the band are visited. */
void VARIANT(pool_nhwc_max_backward_recompute_band)(const T *dout, const T *x,
                                                    const pool_geom *g, ptrdiff_t C,
                                                    ptrdiff_t r0, ptrdiff_t r1,
                                                    T *POOL_RESTRICT vals,
                                                    int64_t *POOL_RESTRICT wins,
                                                    T *POOL_RESTRICT dx)
{
    const ptrdiff_t lo = r0 * g->w, hi = r1 * g->w;
    memset(dx + lo * C, 0, (size_t)((hi - lo) * C) * sizeof(T));
    for (ptrdiff_t i = 0; i < g->oh; i++) {
        if (!VARIANT(nhwc_row_meets)(g, i, r0, r1)) continue;
        for (ptrdiff_t j = 0; j < g->ow; j++) {
            const T *POOL_RESTRICT d = dout + (i * g->ow + j) * C;
            VARIANT(nhwc_max_pixel)(x, g, C, i, j, vals, wins, 1);
            for (ptrdiff_t c = 0; c < C; c++) {
                int64_t at = wins[c];
                if ((uint64_t)(at - lo) < (uint64_t)(hi - lo))
                    dx[at * C + c] = dx[at * C + c] + d[c];
            }
        }
    }
}

/* Input rows [r0, r1) of dx (H, W, C) = the gradient of pool_nhwc_avg_rows for dout
 * (OH, OW, C), row by row (each row zeroed, then filled while it is in cache): the outputs
 * whose windows reach the row, in row-major order, each add their share (dout / their
 * divisor; share: C elements of scratch) to their taps in the row, so each dx element sums
 * its shares in the order of pool_avg_backward_plane. */
void VARIANT(pool_nhwc_avg_backward_band)(const T *dout, const pool_geom *g, ptrdiff_t C,
                                          int count_include_pad, ptrdiff_t r0, ptrdiff_t r1,
                                          T *POOL_RESTRICT share, T *POOL_RESTRICT dx)
{
    for (ptrdiff_t r = r0; r < r1; r++) {
        T *POOL_RESTRICT dxr = dx + r * g->w * C;
        memset(dxr, 0, (size_t)(g->w * C) * sizeof(T));
        /* window row u of output row i is input row r: u from the last, so i ascends */
        for (ptrdiff_t u = g->fh - 1; u >= 0; u--) {
            ptrdiff_t num = r + g->top - u * g->dh, i = num / g->sh;
            if (num < 0 || num % g->sh || i >= g->oh) continue;
            for (ptrdiff_t j = 0; j < g->ow; j++) {
                const T *POOL_RESTRICT d = dout + (i * g->ow + j) * C;
                VARIANT(nhwc_win) a = VARIANT(nhwc_window)(g, i, j);
                const T div = VARIANT(nhwc_divisor)(g, i, j, count_include_pad, a.uhi - a.ulo,
                                                    a.vhi - a.vlo);
                ptrdiff_t k = 0;
                for (; k + NV_LANES <= C; k += NV_LANES)
                    VARIANT(nv_store)(share + k, VARIANT(nhwc_div)(VARIANT(nv_load)(d + k), div));
                for (; k < C; k++) share[k] = d[k] / div;
                for (ptrdiff_t v = a.vlo; v < a.vhi; v++) {
                    T *POOL_RESTRICT q = dxr + (a.c0 + v * g->dw) * C;
                    for (ptrdiff_t c = 0; c < C; c++) q[c] = q[c] + share[c];
                }
            }
        }
    }
}
#endif
