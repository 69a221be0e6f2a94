/* Vector pooling kernels for one element type and instruction set; included
 * by _pool_simd.h with T (element), V (vector), PV_W (lanes) and PV_SUF (the
 * name suffix of its vector operations) defined, and undefines them. The
 * geometry is one that pc_simd_geometry accepts. */
#define PV_F(name) PV_CAT(name, PV_SUF)

/* Lane j = p[j * SW] (SW 1 or 2), reading nothing at or past p + avail. */
static inline V PV_F(pv_tap)(const T *p, ptrdiff_t avail, const int SW)
{
    if (SW == 1) return avail >= PV_W ? PV_F(pv_load)(p) : PV_F(pv_loadn)(p, avail);
    if (avail >= 2 * PV_W) return PV_F(pv_even)(PV_F(pv_load)(p), PV_F(pv_load)(p + PV_W));
    if (avail > PV_W) return PV_F(pv_even)(PV_F(pv_load)(p), PV_F(pv_loadn)(p + PV_W, avail - PV_W));
    return PV_F(pv_even)(PV_F(pv_loadn)(p, avail), PV_F(pv_zero)());
}

/* Store the first n (1..PV_W) lanes of v at p. */
static inline void PV_F(pv_put)(T *p, V v, ptrdiff_t n)
{
    if (n >= PV_W) PV_F(pv_store)(p, v);
    else PV_F(pv_storen)(p, v, n);
}

/* The plane for an FH x FW window, column stride SW: each output vector
 * combines its taps in row-major window order, a max (first maximum or first
 * NaN wins) or a sum from zero then divided by the window size (multiplied
 * by its inverse where that is a power of two, which is exact). */
static inline void PV_F(pv_pool_plane_k)(const T *x, const pc_geom *g, T *out, const int FH,
                                          const int FW, const int SW, const int AVG)
{
    const ptrdiff_t w = g->w, ow = g->ow;
    const int pow2 = ((FH * FW) & (FH * FW - 1)) == 0;
    const V div = PV_F(pv_set1)(pow2 ? (T)1 / (T)(FH * FW) : (T)(FH * FW));
    for (ptrdiff_t i = 0; i < g->oh; i++) {
        const T *row = x + i * g->sh * w;
        T *o = out + i * ow;
        for (ptrdiff_t j0 = 0; j0 < ow; j0 += PV_W) {
            const T *p = row + j0 * SW;
            const ptrdiff_t avail = w - j0 * SW;
            V b = PV_F(pv_tap)(p, avail, SW);
            if (AVG) b = PV_F(pv_add)(PV_F(pv_zero)(), b);
            for (int u = 0; u < FH; u++)
                for (int v = (u == 0); v < FW; v++) {
                    V c = PV_F(pv_tap)(p + u * w + v, avail - v, SW);
                    b = AVG ? PV_F(pv_add)(b, c) : PV_F(pv_take)(b, c);
                }
            if (AVG) b = pow2 ? PV_F(pv_mul)(b, div) : PV_F(pv_div)(b, div);
            PV_F(pv_put)(o + j0, b, ow - j0);
        }
    }
}

static void PV_F(pv_pool_plane)(const T *x, const pc_geom *g, int avg, T *out)
{
#define PV_CASE(FH_, FW_, SW_)                                                  \
    if (g->fh == FH_ && g->fw == FW_ && g->sw == SW_) {                       \
        if (avg) PV_F(pv_pool_plane_k)(x, g, out, FH_, FW_, SW_, 1);           \
        else PV_F(pv_pool_plane_k)(x, g, out, FH_, FW_, SW_, 0);               \
        return;                                                               \
    }
#define PV_CASES(FH_) PV_CASE(FH_, 1, 1) PV_CASE(FH_, 2, 1) PV_CASE(FH_, 3, 1) \
                      PV_CASE(FH_, 1, 2) PV_CASE(FH_, 2, 2) PV_CASE(FH_, 3, 2)
    PV_CASES(1) PV_CASES(2) PV_CASES(3)
#undef PV_CASES
#undef PV_CASE
}

/* Gradient of average pooling by gathering: dx[r, c] sums the shares
 * dout[i, j] / (fh * fw) of the windows (i, j) that cover (r, c), in output
 * row-major order as the oracle adds them, from zero. The shares are laid
 * out first, each row with zeros on both sides, so a window column outside
 * [0, ow) adds an exact zero. */
static inline void PV_F(pv_avg_backward_k)(const T *dout, const pc_geom *g, T *share, T *dx,
                                           const int FW, const int SW)
{
    const ptrdiff_t h = g->h, w = g->w, oh = g->oh, ow = g->ow, fh = g->fh, sh = g->sh;
    const ptrdiff_t sl = pc_share_row(g), pad = PV_MAX_LANES;
    const T div = (T)(fh * FW);
    for (ptrdiff_t i = 0; i < oh; i++) {
        T *s = share + i * sl;
        for (ptrdiff_t j = 0; j < pad; j++) s[j] = 0;
        for (ptrdiff_t j = 0; j < ow; j++) s[pad + j] = dout[i * ow + j] / div;
        for (ptrdiff_t j = pad + ow; j < sl; j++) s[j] = 0;
    }
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
            /* column c: windows j = c - FW + 1 .. c */
            for (ptrdiff_t c0 = 0; c0 < w; c0 += PV_W) {
                V acc = PV_F(pv_zero)();
                for (ptrdiff_t i = ilo; i <= ihi; i++) {
                    const T *s = share + i * sl + pad + c0;
                    for (int t = FW - 1; t >= 0; t--) acc = PV_F(pv_add)(acc, PV_F(pv_load)(s - t));
                }
                PV_F(pv_put)(d + c0, acc, w - c0);
            }
            continue;
        }
        /* column 2m: windows j = m - (FW-1)/2 .. m; column 2m + 1: j = m - (FW-2)/2 .. m */
        for (ptrdiff_t m0 = 0; 2 * m0 < w; m0 += PV_W) {
            V even = PV_F(pv_zero)(), odd = PV_F(pv_zero)();
            const ptrdiff_t left = w - 2 * m0;
            for (ptrdiff_t i = ilo; i <= ihi; i++) {
                const T *s = share + i * sl + pad + m0;
                for (int t = (FW - 1) / 2; t >= 0; t--)
                    even = PV_F(pv_add)(even, PV_F(pv_load)(s - t));
                for (int t = (FW - 2) / 2; FW >= 2 && t >= 0; t--)
                    odd = PV_F(pv_add)(odd, PV_F(pv_load)(s - t));
            }
            PV_F(pv_put)(d + 2 * m0, PV_F(pv_ziplo)(even, odd), left);
            if (left > PV_W) PV_F(pv_put)(d + 2 * m0 + PV_W, PV_F(pv_ziphi)(even, odd), left - PV_W);
        }
    }
}

static void PV_F(pv_avg_backward_plane)(const T *dout, const pc_geom *g, T *share, T *dx)
{
#define PV_CASE(FW_, SW_)                                                         \
    if (g->fw == FW_ && g->sw == SW_) {                                         \
        PV_F(pv_avg_backward_k)(dout, g, share, dx, FW_, SW_);                   \
        return;                                                               \
    }
    PV_CASE(1, 1) PV_CASE(2, 1) PV_CASE(3, 1) PV_CASE(1, 2) PV_CASE(2, 2) PV_CASE(3, 2)
#undef PV_CASE
}

#undef PV_F
#undef T
#undef V
#undef PV_W
#undef PV_SUF
