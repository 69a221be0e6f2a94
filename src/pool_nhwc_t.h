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

/* At most this many vectors of channels are combined at once (in registers): enough
 * independent chains to hide the latency of each tap's operation. */
#define NHWC_WIDE 8

/* The size of the next block when nv vectors of channels are left: all of them up to
 * NHWC_WIDE, else an even share of the fewest blocks, so no block is left with one. */
POOL_INLINE int VARIANT(nhwc_block)(ptrdiff_t nv)
{
    ptrdiff_t blocks = (nv + NHWC_WIDE - 1) / NHWC_WIDE;
    return (int)((nv + blocks - 1) / blocks);
}

/* CALL(nb) with nb a constant equal to the runtime n in [1, NHWC_WIDE], so that an inlined
 * block kernel keeps its nb vectors in registers. */
#define NHWC_BY_BLOCK(n, CALL)                                                                 \
    switch (n) {                                                                               \
    case 1: CALL(1); break;                                                                    \
    case 2: CALL(2); break;                                                                    \
    case 3: CALL(3); break;                                                                    \
    case 4: CALL(4); break;                                                                    \
    case 5: CALL(5); break;                                                                    \
    case 6: CALL(6); break;                                                                    \
    case 7: CALL(7); break;                                                                    \
    default: CALL(8); break;                                                                   \
    }

/* CALL(nb) for each block of the whole vectors of channels [c, C) (see nhwc_block), c the
 * first channel of the block; c ends at the first channel left over. */
#define NHWC_FOR_BLOCKS(C, c, CALL)                                                            \
    for (ptrdiff_t nv_ = ((C) - (c)) / NV_LANES; nv_ > 0;) {                                   \
        const int nb_ = VARIANT(nhwc_block)(nv_);                                              \
        NHWC_BY_BLOCK(nb_, CALL)                                                               \
        c += nb_ * NV_LANES;                                                                   \
        nv_ -= nb_;                                                                            \
    }

/* Per lane, e if e > b, else b (b on a tie, or when either is NaN): x86's max instruction,
 * one operation where POOL_TAKE takes several. */
POOL_INLINE NV VARIANT(nhwc_max2)(NV e, NV b)
{
#if CPU_X86 && CPU_LEVEL == CPU_AVX512 && TS_F32
    return (NV)_mm512_max_ps((__m512)e, (__m512)b);
#elif CPU_X86 && CPU_LEVEL == CPU_AVX512
    return (NV)_mm512_max_pd((__m512d)e, (__m512d)b);
#elif CPU_X86 && CPU_LEVEL == CPU_AVX2 && TS_F32
    return (NV)_mm256_max_ps((__m256)e, (__m256)b);
#elif CPU_X86 && CPU_LEVEL == CPU_AVX2
    return (NV)_mm256_max_pd((__m256d)e, (__m256d)b);
#elif CPU_X86 && TS_F32
    return (NV)_mm_max_ps((__m128)e, (__m128)b);
#elif CPU_X86
    return (NV)_mm_max_pd((__m128d)e, (__m128d)b);
#else
    return VARIANT(nv_select)(e > b, e, b);
#endif
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

/* NaN bookkeeping of nhwc_max_quick: *seen notes whether vector e holds a NaN; by the
 * largest magnitude's bits on AVX-512 (integer operations, which leave the floating-point
 * units to the maxima), else by comparing e with itself. */
#if CPU_X86 && CPU_LEVEL == CPU_AVX512
#define NHWC_MAGNITUDE ((NV_INT)(((uint64_t)1 << (8 * sizeof(T) - 1)) - 1))
#define NHWC_INFINITY ((NV_INT)(TS_F32 ? 0x7f800000 : 0x7ff0000000000000))
#endif
POOL_INLINE void VARIANT(nhwc_note_nan)(NV_I *seen, NV e)
{
#if CPU_X86 && CPU_LEVEL == CPU_AVX512 && TS_F32
    *seen = (NV_I)_mm512_max_epi32((__m512i)*seen, (__m512i)((NV_I)e & NHWC_MAGNITUDE));
#elif CPU_X86 && CPU_LEVEL == CPU_AVX512
    *seen = (NV_I)_mm512_max_epi64((__m512i)*seen, (__m512i)((NV_I)e & NHWC_MAGNITUDE));
#else
    *seen |= e != e;
#endif
}

POOL_INLINE int VARIANT(nhwc_any_nan)(NV_I seen)
{
#if CPU_X86 && CPU_LEVEL == CPU_AVX512
    seen = seen > NHWC_INFINITY;
#endif
    NV_INT any = 0;
    for (int l = 0; l < NV_LANES; l++) any |= seen[l];
    return any != 0;
}

/* Channels [c, c + nb vectors) of pixel a's maxima, without indices: each tap taken by
 * nhwc_max2, which keeps the earlier value on a tie as POOL_TAKE does, and the NaNs of the
 * later taps (which nhwc_max2 drops, where POOL_TAKE takes the first) only noted. Returns
 * whether there were any; o is then to be redone by nhwc_max_vectors. */
POOL_INLINE int VARIANT(nhwc_max_quick)(const T *POOL_RESTRICT x, const pool_geom *g,
                                        ptrdiff_t C, VARIANT(nhwc_win) a, ptrdiff_t c,
                                        const int nb, int stream, T *POOL_RESTRICT o)
{
    NV b[NHWC_WIDE];
    NV_I seen[NHWC_WIDE];
    const T *p = x + NHWC_TAP(g, a, a.ulo, a.vlo) * C + c;
    POOL_UNROLL
    for (int k = 0; k < nb; k++) {
        b[k] = VARIANT(nv_load)(p + k * NV_LANES);
        seen[k] = (NV_I){0};
    }
    for (ptrdiff_t u = a.ulo; u < a.uhi; u++)
        for (ptrdiff_t v = (u == a.ulo ? a.vlo + 1 : a.vlo); v < a.vhi; v++) {
            p = x + NHWC_TAP(g, a, u, v) * C + c;
            POOL_UNROLL
            for (int k = 0; k < nb; k++) {
                NV e = VARIANT(nv_load)(p + k * NV_LANES);
#if CPU_X86 && defined(__GNUC__)
                __asm__("" : "+x"(e)); /* one load for both uses, not one folded into each */
#endif
                VARIANT(nhwc_note_nan)(&seen[k], e);
                b[k] = VARIANT(nhwc_max2)(e, b[k]);
            }
        }
    int any = 0;
    POOL_UNROLL
    for (int k = 0; k < nb; k++) {
        VARIANT(nhwc_put)(o + c + k * NV_LANES, b[k], stream);
        any |= VARIANT(nhwc_any_nan)(seen[k]);
    }
    return any;
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
 * flat indices r * W + c (POOL_TAKE keeps the first maximum and the first NaN); streamed
 * (without indices) if stream. */
POOL_INLINE void VARIANT(nhwc_max_pixel)(const T *POOL_RESTRICT x, const pool_geom *g,
                                         ptrdiff_t C, ptrdiff_t i, ptrdiff_t j,
                                         T *POOL_RESTRICT o, int64_t *POOL_RESTRICT oi,
                                         const int track, int stream)
{
    VARIANT(nhwc_win) a = VARIANT(nhwc_window)(g, i, j);
    ptrdiff_t c = 0;
    if (a.ulo == a.uhi || a.vlo == a.vhi) { /* no tap inside the input: refused by pool_geometry */
        for (ptrdiff_t k = 0; k < C; k++) { o[k] = NAN; if (track) oi[k] = -1; }
        return;
    }
    if (!track) {
        /* a block that met a NaN is redone by the exact kernel */
#define NHWC_QUICK(NB)                                                                         \
    if (VARIANT(nhwc_max_quick)(x, g, C, a, c, NB, stream, o))                                         \
        for (int k = 0; k < NB; k++)                                                           \
            VARIANT(nhwc_max_vectors)(x, g, C, a, c + k * NV_LANES, 1, o, oi, 0)
        NHWC_FOR_BLOCKS(C, c, NHWC_QUICK)
#undef NHWC_QUICK
    } else if ((uint64_t)(g->h * g->w) <= (uint64_t)((NV_INT)1 << (8 * sizeof(NV_INT) - 2))) {
        for (; c + NV_BLOCK * NV_LANES <= C; c += NV_BLOCK * NV_LANES)
            VARIANT(nhwc_max_vectors)(x, g, C, a, c, NV_BLOCK, o, oi, track);
        for (; c + NV_LANES <= C; c += NV_LANES)
            VARIANT(nhwc_max_vectors)(x, g, C, a, c, 1, o, oi, track);
    }
    if (c < C) VARIANT(nhwc_max_scalar)(x, g, C, a, c, o, oi, track);
}

/* out rows [i0, i1) (OH, OW, C) = the window maxima of x (H, W, C); idx (the same shape)
 * gets their flat indices r * W + c, or is NULL (and then out is streamed if stream and
 * the alignment allows). */
void VARIANT(pool_nhwc_max_rows)(const T *x, const pool_geom *g, ptrdiff_t c, ptrdiff_t i0,
                                 ptrdiff_t i1, int stream, T *out, int64_t *idx)
{
    stream = stream && !idx && VARIANT(nhwc_can_stream)(out, c);
    for (ptrdiff_t i = i0; i < i1; i++)
        for (ptrdiff_t j = 0; j < g->ow; j++) {
            ptrdiff_t at = (i * g->ow + j) * c;
            if (idx) VARIANT(nhwc_max_pixel)(x, g, c, i, j, out + at, idx + at, 1, 0);
            else VARIANT(nhwc_max_pixel)(x, g, c, i, j, out + at, NULL, 0, stream);
        }
    if (stream) VARIANT(nhwc_fence)();
}

/* Channels [c, c + nb vectors) of pixel a's mean: the taps summed from zero in row-major
 * order in registers, then divided by d. */
POOL_INLINE void VARIANT(nhwc_avg_vectors)(const T *POOL_RESTRICT x, const pool_geom *g,
                                           ptrdiff_t C, VARIANT(nhwc_win) a, ptrdiff_t c,
                                           const int nb, T d, int stream, T *POOL_RESTRICT o)
{
    NV s[NHWC_WIDE];
    POOL_UNROLL
    for (int k = 0; k < nb; k++) s[k] = (NV){0};
    for (ptrdiff_t u = a.ulo; u < a.uhi; u++)
        for (ptrdiff_t v = a.vlo; v < a.vhi; v++) {
            const T *p = x + NHWC_TAP(g, a, u, v) * C + c;
            POOL_UNROLL
            for (int k = 0; k < nb; k++) s[k] = s[k] + VARIANT(nv_load)(p + k * NV_LANES);
        }
    POOL_UNROLL
    for (int k = 0; k < nb; k++)
        VARIANT(nhwc_put)(o + c + k * NV_LANES, VARIANT(nhwc_div)(s[k], d), stream);
}

/* out rows [i0, i1) = the window means of x: the taps inside the input summed from zero in
 * row-major order, then divided by the divisor of pool_avg_plane; streamed as the maxima. */
void VARIANT(pool_nhwc_avg_rows)(const T *x, const pool_geom *g, ptrdiff_t C,
                                 int count_include_pad, ptrdiff_t i0, ptrdiff_t i1, int stream,
                                 T *out)
{
    stream = stream && VARIANT(nhwc_can_stream)(out, C);
    for (ptrdiff_t i = i0; i < i1; i++)
        for (ptrdiff_t j = 0; j < g->ow; j++) {
            T *POOL_RESTRICT o = out + (i * g->ow + j) * C;
            VARIANT(nhwc_win) a = VARIANT(nhwc_window)(g, i, j);
            const T d = VARIANT(nhwc_divisor)(g, i, j, count_include_pad, a.uhi - a.ulo,
                                              a.vhi - a.vlo);
            ptrdiff_t c = 0;
#define NHWC_AVG(NB) VARIANT(nhwc_avg_vectors)(x, g, C, a, c, NB, d, stream, o)
            NHWC_FOR_BLOCKS(C, c, NHWC_AVG)
#undef NHWC_AVG
            if (c == C) continue;
            for (ptrdiff_t k = c; k < C; k++) o[k] = 0;
            for (ptrdiff_t u = a.ulo; u < a.uhi; u++)
                for (ptrdiff_t v = a.vlo; v < a.vhi; v++) {
                    const T *POOL_RESTRICT p = x + NHWC_TAP(g, a, u, v) * C;
                    for (ptrdiff_t k = c; k < C; k++) o[k] = o[k] + p[k];
                }
            for (ptrdiff_t k = c; k < C; k++) o[k] = o[k] / d;
        }
    if (stream) VARIANT(nhwc_fence)();
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
            VARIANT(nhwc_max_pixel)(x, g, C, i, j, vals, wins, 1, 0);
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
/* ------------------------------------------------------------- gradients by gathering */

/* The gather kernels write each dx pixel once, in input order: the sum, from zero, of what
 * every window that takes it as a tap gives it, the windows in output row-major order (the
 * order in which the scatter kernels above add them), kept in registers. */

/* The windows of one input row: ni output rows (ptrs to their rows of dout, or of
 * shares, and of indices), then per column cfirst / ccount (see pool_nhwc_taps). */
typedef struct {
    const T *d[POOL_NHWC_GATHER_ROWS];
    const NV_INT *x[POOL_NHWC_GATHER_ROWS];
    ptrdiff_t ni;
} VARIANT(nhwc_rowwin);

/* Channels [c, c + nb vectors) of one dx pixel (flat index p) for max pooling: each
 * window's dout where its index is p. count gets -1 per lane per match. */
POOL_INLINE void VARIANT(nhwc_gather_max_vectors)(const VARIANT(nhwc_rowwin) *w, ptrdiff_t at,
                                                  ptrdiff_t nj, ptrdiff_t jstep, NV_INT p,
                                                  ptrdiff_t c, const int nb, int stream,
                                                  T *POOL_RESTRICT o, NV_I *count)
{
    NV acc[NHWC_WIDE];
    NV_I n = *count;
    POOL_UNROLL
    for (int k = 0; k < nb; k++) acc[k] = (NV){0};
    for (ptrdiff_t a = 0; a < w->ni; a++) {
        const T *d = w->d[a] + at + c;
        const NV_INT *x = w->x[a] + at + c;
        for (ptrdiff_t b = 0; b < nj; b++, d += jstep, x += jstep) {
            POOL_UNROLL
            for (int k = 0; k < nb; k++) {
                NV_I t;
                memcpy(&t, x + k * NV_LANES, sizeof t);
                NV_I m = t == p;
                acc[k] = acc[k] + VARIANT(nv_select)(m, VARIANT(nv_load)(d + k * NV_LANES), (NV){0});
                n += m;
            }
        }
    }
    POOL_UNROLL
    for (int k = 0; k < nb; k++) VARIANT(nhwc_put)(o + c + k * NV_LANES, acc[k], stream);
    *count = n;
}

/* The first output row whose window can reach input row r0 or a later one: where the
 * rings of the gather kernels start, every later output row being filled in turn. */
POOL_INLINE ptrdiff_t VARIANT(nhwc_first_row)(const pool_geom *g, ptrdiff_t r0)
{
    ptrdiff_t i = pool_ceil_div(r0 + g->top - (g->fh - 1) * g->dh, g->sh);
    return i > 0 ? i : 0;
}

/* Output row i's indices as lanes of T's width: idx's own row for double; for float, a
 * row of the ring narrowed from idx, -1 where an index lies outside [0, hw) (so that it
 * matches no pixel). Rows [*next, i] are narrowed now, into the ring's last nring. */
POOL_INLINE const NV_INT *VARIANT(nhwc_index_row)(const int64_t *POOL_RESTRICT idx,
                                                  ptrdiff_t i, ptrdiff_t owc, ptrdiff_t hw,
                                                  NV_INT *POOL_RESTRICT ring, ptrdiff_t nring,
                                                  ptrdiff_t *next)
{
#if TS_F32
    for (; *next <= i; ++*next) {
        const int64_t *POOL_RESTRICT src = idx + *next * owc;
        NV_INT *POOL_RESTRICT dst = ring + (*next & (nring - 1)) * owc;
        for (ptrdiff_t k = 0; k < owc; k++)
            dst[k] = (uint64_t)src[k] < (uint64_t)hw ? (NV_INT)src[k] : -1;
    }
    return ring + (i & (nring - 1)) * owc;
#else
    (void)hw; (void)ring; (void)nring; (void)next;
    return (const NV_INT *)(idx + i * owc);
#endif
}

/* Input rows [r0, r1) of dx (H, W, C) = pool_nhwc_max_backward_band's, gathered (ring:
 * pool_nhwc_ring_rows rows of OW * C indices of T's width, for float), with streaming
 * stores if stream and dx and C allow whole aligned vectors. Returns how many of
 * the indices matched a tap of their window: N * OH * OW * C over all bands exactly when
 * every index lies in its window; the caller runs the scatter kernel otherwise. */
ptrdiff_t VARIANT(pool_nhwc_max_backward_gather_band)(const T *dout, const int64_t *idx,
                                                      const pool_geom *g, ptrdiff_t C,
                                                      const ptrdiff_t *taps, ptrdiff_t r0,
                                                      ptrdiff_t r1, void *ring, int stream,
                                                      T *dx)
{
    const ptrdiff_t *rfirst = taps, *rcount = taps + g->h;
    const ptrdiff_t *cfirst = taps + 2 * g->h, *ccount = cfirst + g->w;
    const ptrdiff_t si = pool_nhwc_step(g->sh, g->dh), jstep = pool_nhwc_step(g->sw, g->dw) * C;
    const ptrdiff_t owc = g->ow * C, hw = g->h * g->w, nring = pool_nhwc_ring_rows(g);
    stream = stream && VARIANT(nhwc_can_stream)(dx, C);
    ptrdiff_t next = VARIANT(nhwc_first_row)(g, r0), matched = 0;
    for (ptrdiff_t r = r0; r < r1; r++) {
        VARIANT(nhwc_rowwin) w;
        NV_I count = {0};
        w.ni = rcount[r];
        for (ptrdiff_t a = 0; a < w.ni; a++) {
            ptrdiff_t i = rfirst[r] + a * si;
            w.d[a] = dout + i * owc;
            w.x[a] = VARIANT(nhwc_index_row)(idx, i, owc, hw, (NV_INT *)ring, nring, &next);
        }
        for (ptrdiff_t col = 0; col < g->w; col++) {
            const NV_INT p = (NV_INT)(r * g->w + col);
            const ptrdiff_t nj = w.ni ? ccount[col] : 0, at = cfirst[col] * C;
            T *POOL_RESTRICT o = dx + (r * g->w + col) * C;
            ptrdiff_t c = 0;
#define NHWC_GATHER(NB) \
    VARIANT(nhwc_gather_max_vectors)(&w, at, nj, jstep, p, c, NB, stream, o, &count)
            NHWC_FOR_BLOCKS(C, c, NHWC_GATHER)
#undef NHWC_GATHER
            for (; c < C; c++) {
                T acc = 0;
                for (ptrdiff_t a = 0; a < w.ni; a++)
                    for (ptrdiff_t b = 0; b < nj; b++)
                        if (w.x[a][at + b * jstep + c] == p) {
                            acc = acc + w.d[a][at + b * jstep + c];
                            matched++;
                        }
                o[c] = acc;
            }
        }
        for (ptrdiff_t l = 0; l < NV_LANES; l++) matched -= count[l];
    }
    if (stream) VARIANT(nhwc_fence)();
    return matched;
}

/* Output row i's shares (dout / the window's divisor, as pool_nhwc_avg_backward_band
 * computes them), from the ring, where it is computed when first needed. */
POOL_INLINE const T *VARIANT(nhwc_share_row)(const T *POOL_RESTRICT dout, const pool_geom *g,
                                             ptrdiff_t C, int count_include_pad, ptrdiff_t i,
                                             T *POOL_RESTRICT ring, ptrdiff_t nring,
                                             ptrdiff_t *next)
{
    const ptrdiff_t owc = g->ow * C;
    for (; *next <= i; ++*next) {
        T *POOL_RESTRICT s = ring + (*next & (nring - 1)) * owc;
        for (ptrdiff_t j = 0; j < g->ow; j++) {
            const T *POOL_RESTRICT d = dout + (*next * g->ow + j) * C;
            VARIANT(nhwc_win) a = VARIANT(nhwc_window)(g, *next, j);
            const T div = VARIANT(nhwc_divisor)(g, *next, j, count_include_pad, a.uhi - a.ulo,
                                                a.vhi - a.vlo);
            ptrdiff_t k = 0;
            for (; k + NV_LANES <= C; k += NV_LANES)
                VARIANT(nv_store)(s + j * C + k, VARIANT(nhwc_div)(VARIANT(nv_load)(d + k), div));
            for (; k < C; k++) s[j * C + k] = d[k] / div;
        }
    }
    return ring + (i & (nring - 1)) * owc;
}

/* Channels [c, c + nb vectors) of one dx pixel for average pooling: the windows' shares. */
POOL_INLINE void VARIANT(nhwc_gather_avg_vectors)(const VARIANT(nhwc_rowwin) *w, ptrdiff_t at,
                                                  ptrdiff_t nj, ptrdiff_t jstep, ptrdiff_t c,
                                                  const int nb, int stream, T *POOL_RESTRICT o)
{
    NV acc[NHWC_WIDE];
    POOL_UNROLL
    for (int k = 0; k < nb; k++) acc[k] = (NV){0};
    for (ptrdiff_t a = 0; a < w->ni; a++) {
        const T *d = w->d[a] + at + c;
        for (ptrdiff_t b = 0; b < nj; b++, d += jstep) {
            POOL_UNROLL
            for (int k = 0; k < nb; k++) acc[k] = acc[k] + VARIANT(nv_load)(d + k * NV_LANES);
        }
    }
    POOL_UNROLL
    for (int k = 0; k < nb; k++) VARIANT(nhwc_put)(o + c + k * NV_LANES, acc[k], stream);
}

/* Input rows [r0, r1) of dx (H, W, C) = pool_nhwc_avg_backward_band's, gathered (ring:
 * pool_nhwc_ring_rows rows of OW * C shares), streamed as the max kernel's. */
void VARIANT(pool_nhwc_avg_backward_gather_band)(const T *dout, const pool_geom *g, ptrdiff_t C,
                                                 int count_include_pad, const ptrdiff_t *taps,
                                                 ptrdiff_t r0, ptrdiff_t r1, T *ring, int stream,
                                                 T *dx)
{
    const ptrdiff_t *rfirst = taps, *rcount = taps + g->h;
    const ptrdiff_t *cfirst = taps + 2 * g->h, *ccount = cfirst + g->w;
    const ptrdiff_t si = pool_nhwc_step(g->sh, g->dh), jstep = pool_nhwc_step(g->sw, g->dw) * C;
    const ptrdiff_t nring = pool_nhwc_ring_rows(g);
    stream = stream && VARIANT(nhwc_can_stream)(dx, C);
    ptrdiff_t next = VARIANT(nhwc_first_row)(g, r0);
    for (ptrdiff_t r = r0; r < r1; r++) {
        VARIANT(nhwc_rowwin) w;
        w.ni = rcount[r];
        for (ptrdiff_t a = 0; a < w.ni; a++)
            w.d[a] = VARIANT(nhwc_share_row)(dout, g, C, count_include_pad, rfirst[r] + a * si,
                                             ring, nring, &next);
        for (ptrdiff_t col = 0; col < g->w; col++) {
            const ptrdiff_t nj = w.ni ? ccount[col] : 0, at = cfirst[col] * C;
            T *POOL_RESTRICT o = dx + (r * g->w + col) * C;
            ptrdiff_t c = 0;
#define NHWC_GATHER(NB) VARIANT(nhwc_gather_avg_vectors)(&w, at, nj, jstep, c, NB, stream, o)
            NHWC_FOR_BLOCKS(C, c, NHWC_GATHER)
#undef NHWC_GATHER
            for (; c < C; c++) {
                T acc = 0;
                for (ptrdiff_t a = 0; a < w.ni; a++)
                    for (ptrdiff_t b = 0; b < nj; b++) acc = acc + w.d[a][at + b * jstep + c];
                o[c] = acc;
            }
        }
    }    if (stream) VARIANT(nhwc_fence)();
}
#endif
