/* Vector pooling kernels for one element type and instruction set; included
 * by _pool_simd.h with T (element), V (vector), PV_I (the integer vector),
 * RT (the signed integer as wide as T), PV_W (lanes) and PV_SUF (the name
 * suffix of its vector operations) defined, and undefines them. The
 * geometry is one that pc_simd_geometry accepts. */
#define PV_F(name) PV_CAT(name, PV_SUF)

/* Lane j = p[j * SW] (SW 1 or 2), reading nothing at or past p + avail;
 * FULL: the caller knows all PV_W * SW elements from p are readable. */
PC_INLINE V PV_F(pv_tap)(const T *p, ptrdiff_t avail, const int SW, const int FULL)
{
    if (SW == 1) return FULL || avail >= PV_W ? PV_F(pv_load)(p) : PV_F(pv_loadn)(p, avail);
    if (FULL || avail >= 2 * PV_W) return PV_F(pv_even)(PV_F(pv_load)(p), PV_F(pv_load)(p + PV_W));
    if (avail > PV_W) return PV_F(pv_even)(PV_F(pv_load)(p), PV_F(pv_loadn)(p + PV_W, avail - PV_W));
    return PV_F(pv_even)(PV_F(pv_loadn)(p, avail), PV_F(pv_zero)());
}

/* Store the first n (1..PV_W) lanes of v at p. */
PC_INLINE void PV_F(pv_put)(T *p, V v, ptrdiff_t n)
{
    if (n >= PV_W) PV_F(pv_store)(p, v);
    else PV_F(pv_storen)(p, v, n);
}

/* s / n, rounded as division rounds, for div = n and inv = 1 / n rounded:
 * a multiplication where n is a power of two, pv_quot where it is odd. */
PC_INLINE V PV_F(pv_mean)(V s, V div, V inv, const int n)
{
    if ((n & (n - 1)) == 0) return PV_F(pv_mul)(s, inv);
    return n & 1 ? PV_F(pv_quot)(s, div, inv) : PV_F(pv_div)(s, div);
}

/* One vector of outputs whose windows start at p (a row w wide, avail
 * elements left in it): the taps in row-major window order combined by max
 * (first maximum or first NaN wins). */
PC_INLINE V PV_F(pv_window)(const T *p, ptrdiff_t w, ptrdiff_t avail, const int FH,
                            const int FW, const int SW, const int FULL)
{
    V b = PV_F(pv_tap)(p, avail, SW, FULL);
    PV_UNROLL
    for (int t = 1; t < FH * FW; t++) {
        const int u = t / FW, v = t % FW;
        V c = PV_F(pv_tap)(p + u * w + v, avail - v, SW, FULL);
        b = PV_F(pv_take)(b, c);
    }
    return b;
}

/* (*lo, *hi) = the PV_W elements from p and the PV_W after them, reading nothing at
 * or past p + avail (zeros there); FULL: all are readable. */
PC_INLINE void PV_F(pv_pair)(const T *p, ptrdiff_t avail, const int FULL, V *lo, V *hi)
{
    if (FULL || avail >= 2 * PV_W) {
        *lo = PV_F(pv_load)(p);
        *hi = PV_F(pv_load)(p + PV_W);
    } else if (avail > PV_W) {
        *lo = PV_F(pv_load)(p);
        *hi = PV_F(pv_loadn)(p + PV_W, avail - PV_W);
    } else {
        *lo = PV_F(pv_loadn)(p, avail);
        *hi = PV_F(pv_zero)();
    }
}

/* t[v] (v < FW), lane l = p[l * SW + v]: the FW taps of one input row for
 * PV_W output columns whose windows start at p (avail elements readable
 * from p). At stride 2 all come from the same two loaded vectors (and one
 * element), which would otherwise be split loads. */
PC_INLINE void PV_F(pv_row_taps)(const T *p, ptrdiff_t avail, const int FW, const int SW,
                                 const int FULL, V *t)
{
    if (SW == 1) {
        PV_UNROLL
        for (int v = 0; v < FW; v++) t[v] = PV_F(pv_tap)(p + v, avail - v, 1, FULL);
        return;
    }
    V lo, hi;
    PV_F(pv_pair)(p, avail, FULL, &lo, &hi);
    t[0] = PV_F(pv_even)(lo, hi);
    if (FW > 1) t[1] = PV_F(pv_odd)(lo, hi);
    /* tap 2 is tap 0 a lane on, and the element after the two vectors */
    if (FW > 2) t[2] = PV_F(pv_next)(t[0], FULL || avail > 2 * PV_W ? p[2 * PV_W] : (T)0);
}

/* pv_window's windows summed from zero in row-major window order, each
 * window row's taps from pv_row_taps. */
PC_INLINE V PV_F(pv_window_sum)(const T *p, ptrdiff_t w, ptrdiff_t avail, const int FH,
                                const int FW, const int SW, const int FULL)
{
    V b = PV_F(pv_zero)();
    PV_UNROLL
    for (int u = 0; u < FH; u++) {
        V t[3];
        PV_F(pv_row_taps)(p + u * w, avail, FW, SW, FULL, t);
        PV_UNROLL
        for (int v = 0; v < FW; v++) b = PV_F(pv_add)(b, t[v]);
    }
    return b;
}

/* pv_window for max pooling that also sets *at, in each lane, to the winner's
 * offset u * w + v from its window's corner (its tap, in the same order). */
PC_INLINE V PV_F(pv_window_at)(const T *p, ptrdiff_t w, ptrdiff_t avail, const int FH,
                               const int FW, const int SW, const int FULL, PV_I *at)
{
    V b = PV_F(pv_tap)(p, avail, SW, FULL);
    PV_I a = PV_F(pv_izero)();
    PV_UNROLL
    for (int t = 1; t < FH * FW; t++) {
        const int u = t / FW, v = t % FW;
        V c = PV_F(pv_tap)(p + u * w + v, avail - v, SW, FULL);
        b = PV_F(pv_take_at)(b, c, &a, (RT)(u * w + v));
    }
    *at = a;
    return b;
}

/* q[l] = corner + l * SW + at[l] for the first n (1..PV_W) lanes: flat indices of the
 * winners of windows whose corners are SW apart from corner on. */
PC_INLINE void PV_F(pv_put_at)(int64_t *q, PV_I at, int64_t corner, const int SW, ptrdiff_t n)
{
    RT a[PV_W];
    PV_F(pv_istore)(a, at);
    if (n >= PV_W) n = PV_W;
    for (ptrdiff_t l = 0; l < n; l++) q[l] = corner + l * SW + (int64_t)a[l];
}

/* The plane for an FH x FW window, column stride SW: whole vectors of
 * output columns while every tap's loads stay inside the row, then masked
 * ones. The mean is the sum divided by the window size (pv_mean). Each
 * output row
 * first prefetches the SH input rows it advances by, PV_PREFETCH bytes
 * ahead: the hardware prefetcher stops at page boundaries, and with the
 * input streaming from memory this cuts the time by about a third. */
PC_INLINE void PV_F(pv_pool_plane_k)(const T *x, const pc_geom *g, T *out, int64_t *idx,
                                     int64_t base, const int FH, const int FW, const int SW,
                                     const int AVG, const int IDX)
{
    const ptrdiff_t w = g->w, ow = g->ow;
    const V div = PV_F(pv_set1)((T)(FH * FW)), inv = PV_F(pv_set1)((T)1 / (T)(FH * FW));
    /* whole vectors j0 < full: (j0 + PV_W) * SW + FW - 1 <= w */
    ptrdiff_t full = (w - (FW - 1)) / SW - PV_W;
    if (full > ow - PV_W) full = ow - PV_W;
    for (ptrdiff_t i = 0; i < g->oh; i++) {
        const T *row = x + i * g->sh * w;
        T *o = out + i * ow;
        int64_t *q = IDX ? idx + i * ow : NULL;
        const int64_t corner = base + (int64_t)(i * g->sh * w);
        const char *ahead = (const char *)row + PV_PREFETCH;
        for (ptrdiff_t b = 0; b < (ptrdiff_t)(g->sh * w * sizeof(T)); b += 64)
            __builtin_prefetch(ahead + b, 0, 3);
        ptrdiff_t j0 = 0;
        for (; j0 <= full; j0 += PV_W) {
            V b;
            if (IDX) {
                PV_I at;
                b = PV_F(pv_window_at)(row + j0 * SW, w, w - j0 * SW, FH, FW, SW, 1, &at);
                PV_F(pv_put_at)(q + j0, at, corner + j0 * SW, SW, PV_W);
            } else {
                b = AVG ? PV_F(pv_window_sum)(row + j0 * SW, w, w - j0 * SW, FH, FW, SW, 1)
                        : PV_F(pv_window)(row + j0 * SW, w, w - j0 * SW, FH, FW, SW, 1);
            }
            if (AVG) b = PV_F(pv_mean)(b, div, inv, FH * FW);
            PV_F(pv_store)(o + j0, b);
        }
        for (; j0 < ow; j0 += PV_W) {
            V b;
            if (IDX) {
                PV_I at;
                b = PV_F(pv_window_at)(row + j0 * SW, w, w - j0 * SW, FH, FW, SW, 0, &at);
                PV_F(pv_put_at)(q + j0, at, corner + j0 * SW, SW, ow - j0);
            } else {
                b = AVG ? PV_F(pv_window_sum)(row + j0 * SW, w, w - j0 * SW, FH, FW, SW, 0)
                        : PV_F(pv_window)(row + j0 * SW, w, w - j0 * SW, FH, FW, SW, 0);
            }
            if (AVG) b = PV_F(pv_mean)(b, div, inv, FH * FW);
            PV_F(pv_put)(o + j0, b, ow - j0);
        }
    }
}

/* Means of output rows [i0, i1), columns j0 .. j0 + PV_W - 1 (those below ow),
 * for windows that overlap down the columns (FH > SH): walking down, each
 * input row's taps are formed once and kept in registers for the FH - SH
 * windows below that still hold it. Each window is summed from zero in
 * row-major order, as pv_window does. On its way down the first column
 * block prefetches the rows of the next band, as many rows below. */
PC_INLINE void PV_F(pv_avg_column)(const T *x, ptrdiff_t w, ptrdiff_t i0, ptrdiff_t i1,
                                   ptrdiff_t j0, T *out, ptrdiff_t ow, V div, V inv,
                                   const int FH, const int FW, const int SH, const int SW,
                                   const int FULL)
{
    const ptrdiff_t avail = w - j0 * SW, ahead = (i1 - i0) * SH * w;
    const T *p = x + i0 * SH * w + j0 * SW;
    V t[3][3];
    PV_UNROLL
    for (int u = 0; u < FH - SH; u++) PV_F(pv_row_taps)(p + u * w, avail, FW, SW, FULL, t[u]);
    for (ptrdiff_t i = i0; i < i1; i++, p += SH * w) {
        PV_UNROLL
        for (int u = FH - SH; u < FH; u++) {
            if (j0 == 0)
                for (ptrdiff_t c = 0; c < w; c += 64 / (ptrdiff_t)sizeof(T))
                    __builtin_prefetch(p + u * w + ahead + c, 0, 3);
            PV_F(pv_row_taps)(p + u * w, avail, FW, SW, FULL, t[u]);
        }
        V b = PV_F(pv_add)(PV_F(pv_zero)(), t[0][0]);
        PV_UNROLL
        for (int k = 1; k < FH * FW; k++) b = PV_F(pv_add)(b, t[k / FW][k % FW]);
        b = PV_F(pv_mean)(b, div, inv, FH * FW);
        PV_F(pv_put)(out + i * ow + j0, b, ow - j0);
        PV_UNROLL
        for (int u = 0; u < FH - SH; u++) {
            PV_UNROLL
            for (int v = 0; v < FW; v++) t[u][v] = t[u + SH][v];
        }
    }
}

/* Average pooling where windows overlap down the columns (FH > SH: 3x3
 * stride 2): pv_avg_column over bands of output rows whose input rows fit
 * in PV_BAND_BYTES, so that the column blocks after the first find them in
 * L1. Each input row's taps (loads and, at stride 2, permutes: the bulk of
 * the work) are formed once per column block instead of once per window
 * holding it, except for the FH - SH rows a band shares with the next. */
PC_INLINE void PV_F(pv_avg_overlap_k)(const T *x, const pc_geom *g, T *out, const int FH,
                                      const int FW, const int SH, const int SW)
{
    const ptrdiff_t w = g->w, ow = g->ow, oh = g->oh;
    const V div = PV_F(pv_set1)((T)(FH * FW)), inv = PV_F(pv_set1)((T)1 / (T)(FH * FW));
    ptrdiff_t band = ((ptrdiff_t)(PV_BAND_BYTES / sizeof(T)) / w - (FH - SH)) / SH;
    if (band < 1) band = 1;
    /* whole vectors j0 <= full: (j0 + PV_W) * SW + FW - 1 <= w */
    ptrdiff_t full = (w - (FW - 1)) / SW - PV_W;
    if (full > ow - PV_W) full = ow - PV_W;
    for (ptrdiff_t i0 = 0; i0 < oh; i0 += band) {
        const ptrdiff_t i1 = i0 + band < oh ? i0 + band : oh;
        ptrdiff_t j0 = 0;
        for (; j0 <= full; j0 += PV_W)
            PV_F(pv_avg_column)(x, w, i0, i1, j0, out, ow, div, inv, FH, FW, SH, SW, 1);
        for (; j0 < ow; j0 += PV_W)
            PV_F(pv_avg_column)(x, w, i0, i1, j0, out, ow, div, inv, FH, FW, SH, SW, 0);
    }
}

/* out = window max (avg 0; with idx, also the flat indices of the maxima plus base) or mean
 * (avg 1); 0 if the window or stride has no vector kernel. */
static int PV_F(pv_pool_plane)(const T *x, const pc_geom *g, int avg, T *out, int64_t *idx,
                               int64_t base)
{
#define PV_CASE(FH_, FW_, SW_)                                                       \
    if (g->fh == FH_ && g->fw == FW_ && g->sw == SW_) {                            \
        if (avg && FH_ > 1 && g->sh == 1) PV_F(pv_avg_overlap_k)(x, g, out, FH_, FW_, 1, SW_); \
        else if (avg && FH_ > 2 && g->sh == 2)                                     \
            PV_F(pv_avg_overlap_k)(x, g, out, FH_, FW_, 2, SW_);                   \
        else if (avg) PV_F(pv_pool_plane_k)(x, g, out, NULL, 0, FH_, FW_, SW_, 1, 0); \
        else if (idx) PV_F(pv_pool_plane_k)(x, g, out, idx, base, FH_, FW_, SW_, 0, 1); \
        else PV_F(pv_pool_plane_k)(x, g, out, NULL, 0, FH_, FW_, SW_, 0, 0);        \
        return 1;                                                                  \
    }
#define PV_CASES(FH_) PV_CASE(FH_, 1, 1) PV_CASE(FH_, 2, 1) PV_CASE(FH_, 3, 1) \
                      PV_CASE(FH_, 1, 2) PV_CASE(FH_, 2, 2) PV_CASE(FH_, 3, 2)
    PV_CASES(1) PV_CASES(2) PV_CASES(3)
#undef PV_CASES
#undef PV_CASE
    return 0;
}

/* The gradient of average pooling by gathering: dx[r, c] sums, from zero
 * and in output row-major order as the oracle adds them, the share
 * dout[i, j] / (fh * fw) of each window (i, j) that covers (r, c). The
 * shares are laid out first, one padded row per output row; the caller
 * zeroes the scratch once per call and the kernel writes only columns
 * [0, ow) of these rows, so a window column outside [0, ow) adds an exact
 * zero. */
static inline void PV_F(pv_avg_backward_k)(const T *dout, const pc_geom *g, T *val, T *dx,
                                           const int FW, const int SW)
{
    const ptrdiff_t h = g->h, w = g->w, oh = g->oh, ow = g->ow, fh = g->fh, sh = g->sh;
    const ptrdiff_t sl = pc_share_row(g), pad = PV_MAX_LANES;
    const int pow2 = ((fh * FW) & (fh * FW - 1)) == 0;
    const T div = pow2 ? (T)1 / (T)(fh * FW) : (T)(fh * FW);
    for (ptrdiff_t i = 0; i < oh; i++) {
        T *s = val + i * sl + pad;
        const T *d = dout + i * ow;
        if (pow2) for (ptrdiff_t j = 0; j < ow; j++) s[j] = d[j] * div;
        else for (ptrdiff_t j = 0; j < ow; j++) s[j] = d[j] / div;
    }
#define PV_TERM(acc, i, m) acc = PV_F(pv_add)(acc, PV_F(pv_load)(val + (i) * sl + pad + (m)))
    for (ptrdiff_t r = 0; r < h; r++) {
        /* windows i with i * sh <= r <= i * sh + fh - 1 */
        ptrdiff_t ilo = r >= fh ? (r - fh) / sh + 1 : 0, ihi = r / sh;
        T *d = dx + r * w;
        if (ihi > oh - 1) ihi = oh - 1;
        if (ilo > ihi) {
            memset(d, 0, (size_t)w * sizeof(T));
            continue;
        }
        if (SW == 1) {
            /* column c: windows j = c - t for t = FW - 1 .. 0 */
            for (ptrdiff_t c0 = 0; c0 < w; c0 += PV_W) {
                V acc = PV_F(pv_zero)();
                for (ptrdiff_t i = ilo; i <= ihi; i++)
                    for (int t = FW - 1; t >= 0; t--) PV_TERM(acc, i, c0 - t);
                PV_F(pv_put)(d + c0, acc, w - c0);
            }
            continue;
        }
        /* column 2m: windows j = m - t, t = (FW-1)/2 .. 0;
         * column 2m + 1: j = m - t, t = (FW-2)/2 .. 0 */
        for (ptrdiff_t m0 = 0; 2 * m0 < w; m0 += PV_W) {
            V even = PV_F(pv_zero)(), odd = PV_F(pv_zero)();
            const ptrdiff_t left = w - 2 * m0;
            for (ptrdiff_t i = ilo; i <= ihi; i++) {
                for (int t = (FW - 1) / 2; t >= 0; t--) PV_TERM(even, i, m0 - t);
                for (int t = (FW - 2) / 2; FW >= 2 && t >= 0; t--) PV_TERM(odd, i, m0 - t);
            }
            PV_F(pv_put)(d + 2 * m0, PV_F(pv_ziplo)(even, odd), left);
            if (left > PV_W) PV_F(pv_put)(d + 2 * m0 + PV_W, PV_F(pv_ziphi)(even, odd), left - PV_W);
        }
    }
#undef PV_TERM
}

static int PV_F(pv_avg_backward_plane)(const T *dout, const pc_geom *g, T *scratch, T *dx)
{
#define PV_CASE(FW_, SW_)                                                                      \
    if (g->fw == FW_ && g->sw == SW_) {                                                      \
        PV_F(pv_avg_backward_k)(dout, g, scratch, dx, FW_, SW_);                             \
        return 1;                                                                            \
    }
    PV_CASE(1, 1) PV_CASE(2, 1) PV_CASE(3, 1) PV_CASE(1, 2) PV_CASE(2, 2) PV_CASE(3, 2)
#undef PV_CASE
    return 0;
}

#undef PV_F
#undef T
#undef V
#undef PV_I
#undef RT
#undef PV_W
#undef PV_SUF
