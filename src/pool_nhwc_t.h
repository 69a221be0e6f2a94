/* The channels-last pooling kernels of pool_nhwc.h for one element type T and CPU level: a
 * template, compiled once per (T, level) in a translation unit that setup.py generates
 * (see cpu_features.h): plain C whose loops along the channels the compiler vectorises
 * for the level. x, out, dout and dx point at one image (H, W, C) or (OH, OW, C). */
#include "pool_nhwc.h"

#if CPU_LEVEL == CPU_PORTABLE || CPU_X86
/* The window of output pixel (i, j): taps [*ulo, *uhi) x [*vlo, *vhi) lie inside the
 * input, from input row *r0 and column *c0. */
POOL_INLINE void VARIANT(nhwc_window)(const pool_geom *g, ptrdiff_t i, ptrdiff_t j,
                                      ptrdiff_t *r0, ptrdiff_t *c0, ptrdiff_t *ulo,
                                      ptrdiff_t *uhi, ptrdiff_t *vlo, ptrdiff_t *vhi)
{
    *r0 = i * g->sh - g->top;
    *c0 = j * g->sw - g->left;
    pool_valid(*r0, g->dh, g->h, g->fh, ulo, uhi);
    pool_valid(*c0, g->dw, g->w, g->fw, vlo, vhi);
}

/* The divisor of output pixel (i, j), as pool_avg_plane computes it. */
POOL_INLINE T VARIANT(nhwc_divisor)(const pool_geom *g, ptrdiff_t i, ptrdiff_t j,
                                    int count_include_pad, ptrdiff_t rows, ptrdiff_t cols)
{
    if (!count_include_pad) return (T)(rows * cols);
    return (T)(pool_taps_before(i * g->sh, g->dh, g->h + g->top + g->bottom, g->fh)
               * pool_taps_before(j * g->sw, g->dw, g->w + g->left + g->right, g->fw));
}

/* o[0:C] = the maxima of the window of output pixel (i, j) and, if track, oi[0:C] their
 * flat indices r * W + c: the first tap inside the input, then every tap in row-major
 * order (POOL_TAKE keeps the first maximum and the first NaN). */
POOL_INLINE void VARIANT(nhwc_max_pixel)(const T *POOL_RESTRICT x, const pool_geom *g,
                                         ptrdiff_t C, ptrdiff_t i, ptrdiff_t j,
                                         T *POOL_RESTRICT o, int64_t *POOL_RESTRICT oi,
                                         const int track)
{
    ptrdiff_t r0, c0, ulo, uhi, vlo, vhi;
    VARIANT(nhwc_window)(g, i, j, &r0, &c0, &ulo, &uhi, &vlo, &vhi);
    if (ulo == uhi || vlo == vhi) { /* no tap inside the input: refused by pool_geometry */
        for (ptrdiff_t c = 0; c < C; c++) { o[c] = NAN; if (track) oi[c] = -1; }
        return;
    }
    const int64_t first = (int64_t)((r0 + ulo * g->dh) * g->w + c0 + vlo * g->dw);
    const T *POOL_RESTRICT p = x + first * C;
    for (ptrdiff_t c = 0; c < C; c++) o[c] = p[c];
    if (track)
        for (ptrdiff_t c = 0; c < C; c++) oi[c] = first;
    for (ptrdiff_t u = ulo; u < uhi; u++) {
        for (ptrdiff_t v = (u == ulo ? vlo + 1 : vlo); v < vhi; v++) {
            const int64_t t = (int64_t)((r0 + u * g->dh) * g->w + c0 + v * g->dw);
            p = x + t * C;
            if (track) {
                for (ptrdiff_t c = 0; c < C; c++) {
                    T a = p[c], b = o[c];
                    int take = POOL_TAKE(a, b);
                    o[c] = take ? a : b;
                    oi[c] = take ? t : oi[c];
                }
            } else {
                for (ptrdiff_t c = 0; c < C; c++) {
                    T a = p[c], b = o[c];
                    o[c] = POOL_TAKE(a, b) ? a : b;
                }
            }
        }
    }
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

/* out rows [i0, i1) = the window means of x: the taps inside the input summed from zero in
 * row-major order, then divided by the divisor of pool_avg_plane. */
void VARIANT(pool_nhwc_avg_rows)(const T *x, const pool_geom *g, ptrdiff_t C,
                                 int count_include_pad, ptrdiff_t i0, ptrdiff_t i1, T *out)
{
    for (ptrdiff_t i = i0; i < i1; i++)
        for (ptrdiff_t j = 0; j < g->ow; j++) {
            ptrdiff_t r0, c0, ulo, uhi, vlo, vhi;
            T *POOL_RESTRICT o = out + (i * g->ow + j) * C;
            VARIANT(nhwc_window)(g, i, j, &r0, &c0, &ulo, &uhi, &vlo, &vhi);
            for (ptrdiff_t c = 0; c < C; c++) o[c] = 0;
            for (ptrdiff_t u = ulo; u < uhi; u++)
                for (ptrdiff_t v = vlo; v < vhi; v++) {
                    const T *POOL_RESTRICT p = x + ((r0 + u * g->dh) * g->w + c0 + v * g->dw) * C;
                    for (ptrdiff_t c = 0; c < C; c++) o[c] = o[c] + p[c];
                }
            const T d = VARIANT(nhwc_divisor)(g, i, j, count_include_pad, uhi - ulo, vhi - vlo);
            for (ptrdiff_t c = 0; c < C; c++) o[c] = o[c] / d;
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
 * (OH, OW, C): each output's share (dout / its divisor, share: C elements of scratch) added
 * to every tap of its window inside the band, outputs in row-major order, so each dx
 * element sums its shares in the order of pool_avg_backward_plane. */
void VARIANT(pool_nhwc_avg_backward_band)(const T *dout, const pool_geom *g, ptrdiff_t C,
                                          int count_include_pad, ptrdiff_t r0, ptrdiff_t r1,
                                          T *POOL_RESTRICT share, T *POOL_RESTRICT dx)
{
    memset(dx + r0 * g->w * C, 0, (size_t)((r1 - r0) * g->w * C) * sizeof(T));
    for (ptrdiff_t i = 0; i < g->oh; i++) {
        if (!VARIANT(nhwc_row_meets)(g, i, r0, r1)) continue;
        for (ptrdiff_t j = 0; j < g->ow; j++) {
            ptrdiff_t top, c0, ulo, uhi, vlo, vhi;
            const T *POOL_RESTRICT d = dout + (i * g->ow + j) * C;
            VARIANT(nhwc_window)(g, i, j, &top, &c0, &ulo, &uhi, &vlo, &vhi);
            const T div = VARIANT(nhwc_divisor)(g, i, j, count_include_pad, uhi - ulo, vhi - vlo);
            for (ptrdiff_t c = 0; c < C; c++) share[c] = d[c] / div;
            for (ptrdiff_t u = ulo; u < uhi; u++) {
                ptrdiff_t r = top + u * g->dh;
                if (r < r0 || r >= r1) continue;
                for (ptrdiff_t v = vlo; v < vhi; v++) {
                    T *POOL_RESTRICT q = dx + (r * g->w + c0 + v * g->dw) * C;
                    for (ptrdiff_t c = 0; c < C; c++) q[c] = q[c] + share[c];
                }
            }
        }
    }
}
#endif
