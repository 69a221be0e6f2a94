/* The portable plane kernels of pool.h for one element type T and CPU level: a template,
 * compiled once per (T, level) in a translation unit that setup.py generates (see
 * cpu_features.h): plain C that the compiler vectorises for the level. */
#include "pool.h"

#if CPU_LEVEL == CPU_PORTABLE || CPU_X86
/* The plane regrouped by column phase, so that stride-sw window taps read
 * contiguous memory: row r, column c is at base[r * rs + (c % sw) * len + c / sw].
 * For sw == 1 it is the plane itself. */
typedef struct {
    const T *base;
    ptrdiff_t rs, len;
} VARIANT(pool_phases);

/* Regroup the h rows of x (w wide) by column phase into buf (h * sw * ceil(w / sw)). */
POOL_INLINE VARIANT(pool_phases) VARIANT(pool_make_phases)(const T *POOL_RESTRICT x, ptrdiff_t h,
                                                     ptrdiff_t w, const ptrdiff_t sw,
                                                     T *POOL_RESTRICT buf)
{
    VARIANT(pool_phases) p;
    if (sw == 1) {
        p.base = x; p.rs = w; p.len = w;
        return p;
    }
    p.len = (w + sw - 1) / sw;
    p.rs = sw * p.len;
    p.base = buf;
    for (ptrdiff_t r = 0; r < h; r++) {
        const T *xr = x + r * w;
        T *dst = buf + r * p.rs;
        if (sw == 2) {
            T *even = dst, *odd = dst + p.len;
            for (ptrdiff_t k = 0; k < w / 2; k++) { even[k] = xr[2 * k]; odd[k] = xr[2 * k + 1]; }
            if (w & 1) even[w / 2] = xr[w - 1];
        } else {
            for (ptrdiff_t q = 0; q < sw; q++)
                for (ptrdiff_t k = 0, c = q; c < w; k++, c += sw) dst[q * p.len + k] = xr[c];
        }
    }
    return p;
}

/* Where output column j's tap at column offset off reads, for the columns j
 * whose tap is inside the row: (phase row pointer) + j + *shift. */
POOL_INLINE const T *VARIANT(pool_tap_row)(VARIANT(pool_phases) p, ptrdiff_t r, ptrdiff_t off,
                                       ptrdiff_t sw, ptrdiff_t *shift)
{
    ptrdiff_t m = pool_floor_div(off, sw);
    *shift = m;
    return p.base + r * p.rs + (off - m * sw) * p.len;
}

/* One tap over the output columns in [c0, c1) for which it is inside the row
 * (w wide): column j reads x[r, j * sw + off]. sw is a compile-time constant
 * in the common cases, which turns the divisions into shifts. */
POOL_INLINE void VARIANT(pool_max_tap)(VARIANT(pool_phases) p, ptrdiff_t r, T *POOL_RESTRICT o,
                                   int64_t *POOL_RESTRICT oi, ptrdiff_t c0, ptrdiff_t c1,
                                   ptrdiff_t w, ptrdiff_t off, const ptrdiff_t sw,
                                   const int track)
{
    ptrdiff_t lo, hi, m;
    const T *POOL_RESTRICT src = VARIANT(pool_tap_row)(p, r, off, sw, &m);
    const int64_t base = (int64_t)(r * w + off);
    pool_valid(off, sw, w, c1, &lo, &hi);
    if (lo < c0) lo = c0;
    for (ptrdiff_t j = lo; j < hi; j++) {
        T c = src[j + m], b = o[j];
        int t = POOL_TAKE(c, b);
        o[j] = t ? c : b;
        if (track) oi[j] = t ? base + (int64_t)(j * sw) : oi[j];
    }
}

/* Output columns [c0, c1) of row i, any geometry: each column starts from its
 * first tap inside the input, then every tap is combined in row-major order
 * (repeating a column's start tap changes nothing). */
POOL_INLINE void VARIANT(pool_max_row)(const T *POOL_RESTRICT x, VARIANT(pool_phases) p,
                                   const pool_geom *g, ptrdiff_t i, ptrdiff_t c0, ptrdiff_t c1,
                                   T *POOL_RESTRICT o, int64_t *POOL_RESTRICT oi,
                                   const ptrdiff_t sw, const int track)
{
    const ptrdiff_t w = g->w, dw = g->dw, left = g->left;
    ptrdiff_t a, b, ulo, uhi;
    ptrdiff_t r0 = i * g->sh - g->top;
    if (c0 >= c1) return;
    pool_valid(-left, sw, w, g->ow, &a, &b); /* columns whose first tap is inside */
    pool_valid(r0, g->dh, g->h, g->fh, &ulo, &uhi);
    if (ulo == uhi) { /* no input row in the window: refused by pool_geometry */
        for (ptrdiff_t j = c0; j < c1; j++) { o[j] = NAN; if (track) oi[j] = -1; }
        return;
    }
    ptrdiff_t r = r0 + ulo * g->dh;
    const T *xr = x + r * w;
    for (ptrdiff_t j = c0; j < c1; j++) {
        ptrdiff_t vlo, vhi, c;
        if (j >= a && j < b) { vlo = 0; vhi = 1; }
        else pool_valid(j * sw - left, dw, w, g->fw, &vlo, &vhi);
        if (vlo == vhi) { o[j] = NAN; if (track) oi[j] = -1; continue; }
        c = j * sw - left + vlo * dw;
        o[j] = xr[c];
        if (track) oi[j] = (int64_t)(r * w + c);
    }
    for (ptrdiff_t u = ulo; u < uhi; u++) {
        r = r0 + u * g->dh;
        for (ptrdiff_t v = (u == ulo); v < g->fw; v++)
            VARIANT(pool_max_tap)(p, r, o, oi, c0, c1, w, v * dw - left, sw, track);
    }
}

/* Output columns [ja, jb) of a row whose window taps are all inside the input,
 * for a window of N <= 9 taps (N known at compile time): the taps are combined
 * in registers. The tap pointers are separate variables, not an array, which
 * GCC would not vectorise through. */
POOL_INLINE void VARIANT(pool_max_fused)(VARIANT(pool_phases) p, const pool_geom *g, ptrdiff_t i,
                                     ptrdiff_t ja, ptrdiff_t jb, T *POOL_RESTRICT o,
                                     int64_t *POOL_RESTRICT oi, const int FH, const int FW,
                                     const ptrdiff_t sw, const int track)
{
    const int N = FH * FW;
    const ptrdiff_t w = g->w, r0 = i * g->sh - g->top;
    const T *src[9];
    int64_t tap[9];
    for (int t = 0; t < 9; t++) {
        int u = t < N ? t / FW : 0, v = t < N ? t % FW : 0;
        ptrdiff_t off = v * g->dw - g->left, r = r0 + u * g->dh, m;
        src[t] = VARIANT(pool_tap_row)(p, r, off, sw, &m) + m;
        tap[t] = (int64_t)(r * w + off);
    }
    const T *q0 = src[0], *q1 = src[1], *q2 = src[2], *q3 = src[3], *q4 = src[4];
    const T *q5 = src[5], *q6 = src[6], *q7 = src[7], *q8 = src[8];
    const int64_t t0 = tap[0], t1 = tap[1], t2 = tap[2], t3 = tap[3], t4 = tap[4];
    const int64_t t5 = tap[5], t6 = tap[6], t7 = tap[7], t8 = tap[8];
#define POOL_FUSED_TAP(k)                                                   \
    if (N > k) {                                                         \
        T c = q##k[j];                                                   \
        int take = POOL_TAKE(c, b);                                        \
        b = take ? c : b;                                                \
        if (track) bi = take ? t##k : bi;                                \
    }
    /* whole 64-byte vectors, then the last vector's worth again (overlapping,
     * recomputing equal values) instead of a slow scalar tail */
    const ptrdiff_t vl = (ptrdiff_t)(64 / sizeof(T)), n = jb - ja;
    const ptrdiff_t body_end = n >= vl ? ja + n / vl * vl : jb;
    for (int pass = 0; pass < 2; pass++) {
        const ptrdiff_t lo = pass ? jb - vl : ja, hi = pass ? jb : body_end;
        if (pass && body_end == jb) break;
        for (ptrdiff_t j = lo; j < hi; j++) {
            T b = q0[j];
            int64_t bi = t0;
            POOL_FUSED_TAP(1) POOL_FUSED_TAP(2) POOL_FUSED_TAP(3) POOL_FUSED_TAP(4)
            POOL_FUSED_TAP(5) POOL_FUSED_TAP(6) POOL_FUSED_TAP(7) POOL_FUSED_TAP(8)
            o[j] = b;
            if (track) oi[j] = bi + (int64_t)j * sw;
        }
    }
#undef POOL_FUSED_TAP
}

POOL_INLINE void VARIANT(pool_max_plane_body)(const T *POOL_RESTRICT x, const pool_geom *g,
                                          T *POOL_RESTRICT out, int64_t *POOL_RESTRICT idx,
                                          T *POOL_RESTRICT buf, const ptrdiff_t sw,
                                          const int track)
{
    const ptrdiff_t fh = g->fh, fw = g->fw, ow = g->ow;
    /* window shapes combined in registers: 2x2, 3x3 */
    const int kind = (fh == 2 && fw == 2) ? 2 : (fh == 3 && fw == 3) ? 3 : 0;
    ptrdiff_t a0, b0, a1, b1, ilo, ihi, ja, jb;
    pool_valid(-g->left, sw, g->w, ow, &a0, &b0);                   /* first column tap inside */
    pool_valid((fw - 1) * g->dw - g->left, sw, g->w, ow, &a1, &b1); /* last one inside */
    ja = a0 > a1 ? a0 : a1;
    jb = b0 < b1 ? b0 : b1;
    pool_valid(-g->top, g->sh, g->h, g->oh, &a0, &b0);
    pool_valid((fh - 1) * g->dh - g->top, g->sh, g->h, g->oh, &a1, &b1);
    ilo = a0 > a1 ? a0 : a1;
    ihi = b0 < b1 ? b0 : b1;
    const int fused = kind && jb > ja;
    VARIANT(pool_phases) p = VARIANT(pool_make_phases)(x, g->h, g->w, sw, buf);
    for (ptrdiff_t i = 0; i < g->oh; i++) {
        T *o = out + i * ow;
        int64_t *oi = track ? idx + i * ow : NULL;
        if (!fused || i < ilo || i >= ihi) {
            VARIANT(pool_max_row)(x, p, g, i, 0, ow, o, oi, sw, track);
            continue;
        }
        VARIANT(pool_max_row)(x, p, g, i, 0, ja, o, oi, sw, track);
        if (kind == 2) VARIANT(pool_max_fused)(p, g, i, ja, jb, o, oi, 2, 2, sw, track);
        else VARIANT(pool_max_fused)(p, g, i, ja, jb, o, oi, 3, 3, sw, track);
        VARIANT(pool_max_row)(x, p, g, i, jb, ow, o, oi, sw, track);
    }
}

/* out (oh, ow) = max over each window of x (h, w); idx (oh, ow) gets the flat
 * index of each maximum, or is NULL; buf is scratch of pool_phase_size(g)
 * elements. */
void VARIANT(pool_max_plane)(const T *x, const pool_geom *g, T *out, int64_t *idx,
                                            T *buf)
{
    if (g->sw == 1) {
        if (idx) VARIANT(pool_max_plane_body)(x, g, out, idx, buf, 1, 1);
        else VARIANT(pool_max_plane_body)(x, g, out, NULL, buf, 1, 0);
    } else if (g->sw == 2) {
        if (idx) VARIANT(pool_max_plane_body)(x, g, out, idx, buf, 2, 1);
        else VARIANT(pool_max_plane_body)(x, g, out, NULL, buf, 2, 0);
    } else {
        if (idx) VARIANT(pool_max_plane_body)(x, g, out, idx, buf, g->sw, 1);
        else VARIANT(pool_max_plane_body)(x, g, out, NULL, buf, g->sw, 0);
    }
}

/* o[j] += xr[j * sw + off] for the output columns j < ow where that is inside the row. */
POOL_INLINE void VARIANT(pool_add_tap)(const T *POOL_RESTRICT xr, T *POOL_RESTRICT o, ptrdiff_t ow,
                                   ptrdiff_t w, ptrdiff_t off, const ptrdiff_t sw)
{
    ptrdiff_t lo, hi;
    pool_valid(off, sw, w, ow, &lo, &hi);
    for (ptrdiff_t j = lo; j < hi; j++) o[j] = o[j] + xr[j * sw + off];
}

/* out (oh, ow) = mean over each window of x (h, w); the divisor is the count
 * of taps inside the padded input (fh * fw unless a ceil-mode window reaches
 * past it), or inside the input when count_include_pad is 0. */
void VARIANT(pool_avg_plane)(const T *x, const pool_geom *g, int count_include_pad,
                                       T *out)
{
    const ptrdiff_t w = g->w, ow = g->ow, sw = g->sw, dw = g->dw, left = g->left;
    const ptrdiff_t ew = w + left + g->right;
    const int whole = pool_windows_in_padding(g);
    ptrdiff_t lo, hi, ulo, uhi;
    for (ptrdiff_t i = 0; i < g->oh; i++) {
        T *o = out + i * ow;
        ptrdiff_t r0 = i * g->sh - g->top;
        pool_valid(r0, g->dh, g->h, g->fh, &ulo, &uhi);
        for (ptrdiff_t j = 0; j < ow; j++) o[j] = 0;
        for (ptrdiff_t u = ulo; u < uhi; u++) {
            const T *xr = x + (r0 + u * g->dh) * w;
            for (ptrdiff_t v = 0; v < g->fw; v++) {
                ptrdiff_t off = v * dw - left;
                if (sw == 1) VARIANT(pool_add_tap)(xr, o, ow, w, off, 1);
                else if (sw == 2) VARIANT(pool_add_tap)(xr, o, ow, w, off, 2);
                else VARIANT(pool_add_tap)(xr, o, ow, w, off, sw);
            }
        }
        if (count_include_pad && whole) {
            T d = (T)(g->fh * g->fw);
            for (ptrdiff_t j = 0; j < ow; j++) o[j] = o[j] / d;
        } else if (count_include_pad) { /* the taps inside the padded input */
            ptrdiff_t rows = pool_taps_before(i * g->sh, g->dh, g->h + g->top + g->bottom, g->fh);
            for (ptrdiff_t j = 0; j < ow; j++)
                o[j] = o[j] / (T)(rows * pool_taps_before(j * sw, dw, ew, g->fw));
        } else {
            for (ptrdiff_t j = 0; j < ow; j++) {
                pool_valid(j * sw - left, dw, w, g->fw, &lo, &hi);
                o[j] = o[j] / (T)((uhi - ulo) * (hi - lo));
            }
        }
    }
}

/* dx[lo:hi] of a plane dx (h, w) = sum of dout (oh, ow) over the flat
 * indices idx (oh, ow) that fall in [lo, hi), in output order, as the
 * oracle's np.add.at adds them (a scatter: each gradient read once, each dx
 * element written from zero in L1; faster than gathering the terms per
 * input element, even where windows overlap). Several calls on disjoint
 * ranges of one plane give the same dx as one call on the whole plane.
 * Returns the count of indices outside [0, h * w), which are skipped. */
ptrdiff_t VARIANT(pool_max_backward_rows)(const T *POOL_RESTRICT dout,
                                               const int64_t *POOL_RESTRICT idx, ptrdiff_t hw,
                                               ptrdiff_t ohw, ptrdiff_t lo, ptrdiff_t hi,
                                               T *POOL_RESTRICT dx)
{
    ptrdiff_t skipped = 0;
    memset(dx + lo, 0, (size_t)(hi - lo) * sizeof(T));
    for (ptrdiff_t k = 0; k < ohw; k++) {
        int64_t t = idx[k];
        if ((uint64_t)(t - lo) < (uint64_t)(hi - lo)) dx[t] = dx[t] + dout[k];
        skipped += (uint64_t)t >= (uint64_t)hw;
    }
    return skipped;
}

/* dxr[j * sw + off] += share[j] for the output columns j < ow where that is inside the row. */
POOL_INLINE void VARIANT(pool_spread_tap)(const T *POOL_RESTRICT share, T *POOL_RESTRICT dxr,
                                      ptrdiff_t ow, ptrdiff_t w, ptrdiff_t off,
                                      const ptrdiff_t sw)
{
    ptrdiff_t lo, hi;
    pool_valid(off, sw, w, ow, &lo, &hi);
    for (ptrdiff_t j = lo; j < hi; j++) dxr[j * sw + off] = dxr[j * sw + off] + share[j];
}

/* dx (h, w) = gradient of pool_avg_plane for dout (oh, ow); share is scratch
 * of ow elements. Each dx element sums its shares in output row-major order,
 * as the oracle does: rows in order, and within a row taps right to left,
 * which is output columns left to right. */
void VARIANT(pool_avg_backward_plane)(const T *dout, const pool_geom *g,
                                                int count_include_pad, T *share, T *dx)
{
    const ptrdiff_t w = g->w, ow = g->ow, sw = g->sw, dw = g->dw, left = g->left;
    const ptrdiff_t ew = w + left + g->right;
    const int whole = pool_windows_in_padding(g);
    ptrdiff_t lo, hi, ulo, uhi;
    memset(dx, 0, (size_t)(g->h * w) * sizeof(T));
    for (ptrdiff_t i = 0; i < g->oh; i++) {
        const T *d = dout + i * ow;
        ptrdiff_t r0 = i * g->sh - g->top;
        pool_valid(r0, g->dh, g->h, g->fh, &ulo, &uhi);
        if (count_include_pad && whole) {
            T div = (T)(g->fh * g->fw);
            for (ptrdiff_t j = 0; j < ow; j++) share[j] = d[j] / div;
        } else if (count_include_pad) { /* the taps inside the padded input */
            ptrdiff_t rows = pool_taps_before(i * g->sh, g->dh, g->h + g->top + g->bottom, g->fh);
            for (ptrdiff_t j = 0; j < ow; j++)
                share[j] = d[j] / (T)(rows * pool_taps_before(j * sw, dw, ew, g->fw));
        } else {
            for (ptrdiff_t j = 0; j < ow; j++) {
                pool_valid(j * sw - left, dw, w, g->fw, &lo, &hi);
                share[j] = d[j] / (T)((uhi - ulo) * (hi - lo));
            }
        }
        for (ptrdiff_t u = ulo; u < uhi; u++) {
            T *dxr = dx + (r0 + u * g->dh) * w;
            for (ptrdiff_t v = g->fw - 1; v >= 0; v--) {
                ptrdiff_t off = v * dw - left;
                if (sw == 1) VARIANT(pool_spread_tap)(share, dxr, ow, w, off, 1);
                else if (sw == 2) VARIANT(pool_spread_tap)(share, dxr, ow, w, off, 2);
                else VARIANT(pool_spread_tap)(share, dxr, ow, w, off, sw);
            }
        }
    }
}

#endif
