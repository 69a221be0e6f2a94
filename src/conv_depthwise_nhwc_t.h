/* The channels-last depthwise convolution of conv_depthwise_nhwc.h for one element type T
 * and CPU level: a template, compiled once per (T, level) in a translation unit that
 * setup.py generates (see cpu_features.h). */
#include "conv_depthwise_nhwc.h"

#include "pool.h" /* pool_valid */

#if CPU_LEVEL == CPU_PORTABLE || CPU_X86
#include "nhwc_vec_t.h"

/* Channels [c, c + nb vectors) of one output pixel, m == 1: the bias (or zero), then the
 * taps [ulo, uhi) x [vlo, vhi) added in row-major order, nb vectors held in registers. */
POOL_INLINE void VARIANT(dwn_vectors)(const T *POOL_RESTRICT x, const T *POOL_RESTRICT wt,
                                      const T *POOL_RESTRICT bias, const dwn_geom *g,
                                      ptrdiff_t r0, ptrdiff_t c0, ptrdiff_t ulo, ptrdiff_t uhi,
                                      ptrdiff_t vlo, ptrdiff_t vhi, ptrdiff_t c, const int nb,
                                      T *POOL_RESTRICT o)
{
    NV s[NV_BLOCK];
    POOL_UNROLL
    for (int k = 0; k < nb; k++) s[k] = bias ? VARIANT(nv_load)(bias + c + k * NV_LANES) : (NV){0};
    for (ptrdiff_t u = ulo; u < uhi; u++)
        for (ptrdiff_t v = vlo; v < vhi; v++) {
            const T *p = x + ((r0 + u * g->dh) * g->w + c0 + v * g->dw) * g->c + c;
            const T *f = wt + (u * g->fw + v) * g->k + c;
            POOL_UNROLL
            for (int k = 0; k < nb; k++)
                s[k] = s[k] + VARIANT(nv_load)(f + k * NV_LANES) * VARIANT(nv_load)(p + k * NV_LANES);
        }
    POOL_UNROLL
    for (int k = 0; k < nb; k++) VARIANT(nv_store)(o + c + k * NV_LANES, s[k]);
}

/* The same for two neighbouring output pixels (the second sw columns right of the first,
 * both with every column tap inside the input, out at o and o + K), each filter vector
 * loaded once for both. */
POOL_INLINE void VARIANT(dwn_vectors2)(const T *POOL_RESTRICT x, const T *POOL_RESTRICT wt,
                                       const T *POOL_RESTRICT bias, const dwn_geom *g,
                                       ptrdiff_t r0, ptrdiff_t c0, ptrdiff_t ulo, ptrdiff_t uhi,
                                       ptrdiff_t c, const int nb, T *POOL_RESTRICT o)
{
    NV s[NV_BLOCK], t[NV_BLOCK];
    const ptrdiff_t next = g->sw * g->c;
    POOL_UNROLL
    for (int k = 0; k < nb; k++) {
        s[k] = bias ? VARIANT(nv_load)(bias + c + k * NV_LANES) : (NV){0};
        t[k] = s[k];
    }
    for (ptrdiff_t u = ulo; u < uhi; u++)
        for (ptrdiff_t v = 0; v < g->fw; v++) {
            const T *p = x + ((r0 + u * g->dh) * g->w + c0 + v * g->dw) * g->c + c;
            const T *f = wt + (u * g->fw + v) * g->k + c;
            POOL_UNROLL
            for (int k = 0; k < nb; k++) {
                NV fk = VARIANT(nv_load)(f + k * NV_LANES);
                s[k] = s[k] + fk * VARIANT(nv_load)(p + k * NV_LANES);
                t[k] = t[k] + fk * VARIANT(nv_load)(p + next + k * NV_LANES);
            }
        }
    POOL_UNROLL
    for (int k = 0; k < nb; k++) {
        VARIANT(nv_store)(o + c + k * NV_LANES, s[k]);
        VARIANT(nv_store)(o + g->k + c + k * NV_LANES, t[k]);
    }
}

/* Output pixels per strip of dwn_strip: its sums, the strip's 2 more input vectors per
 * tap row and the row's 3 filter vectors fit the level's registers (32 with AVX-512,
 * 16 below). */
#if NV_BYTES == 64
#define DWN_STRIP 8
#else
#define DWN_STRIP 4
#endif
/* strips in float only (see dwn_forward_rows) */
#if TS_F32
#define DWN_STRIPS 1
#else
#define DWN_STRIPS 0
#endif
/* unrolled whole, so that the strip's vectors stay in registers (POOL_UNROLL stops at 9) */
#if defined(__clang__)
#define DWN_UNROLL _Pragma("clang loop unroll(full)")
#elif defined(__GNUC__)
#define DWN_UNROLL _Pragma("GCC unroll 16")
#else
#define DWN_UNROLL
#endif

/* DWN_STRIP neighbouring output pixels of one row (out at o, o + K, ...), channels
 * [c, c + NV_LANES), one filter per channel, 3 tap columns at stride 1 and dilation 1,
 * every tap column inside the input (c0: the first pixel's leftmost input column): the
 * bias, then the taps added in row-major order, as dwn_vectors adds them, so each output
 * is the same. Each tap row loads its 3 filter vectors and DWN_STRIP + 2 input vectors
 * once for all the strip's pixels: 3 multiply-adds per load instead of dwn_vectors2's
 * 2 per 3 loads (AVX-512 on Zen 4 loads one 64-byte vector a cycle). */
POOL_INLINE void VARIANT(dwn_strip)(const T *POOL_RESTRICT x, const T *POOL_RESTRICT wt,
                                    const T *POOL_RESTRICT bias, const dwn_geom *g,
                                    ptrdiff_t r0, ptrdiff_t c0, ptrdiff_t ulo, ptrdiff_t uhi,
                                    ptrdiff_t c, T *POOL_RESTRICT o)
{
    const ptrdiff_t C = g->c, K = g->k;
    NV s[DWN_STRIP], in[DWN_STRIP + 2], f0, f1, f2;
    DWN_UNROLL
    for (int q = 0; q < DWN_STRIP; q++) s[q] = bias ? VARIANT(nv_load)(bias + c) : (NV){0};
    for (ptrdiff_t u = ulo; u < uhi; u++) {
        const T *row = x + ((r0 + u * g->dh) * g->w + c0) * C + c;
        const T *f = wt + u * 3 * K + c;
        f0 = VARIANT(nv_load)(f);
        f1 = VARIANT(nv_load)(f + K);
        f2 = VARIANT(nv_load)(f + 2 * K);
        DWN_UNROLL
        for (int q = 0; q < DWN_STRIP + 2; q++) in[q] = VARIANT(nv_load)(row + q * C);
        DWN_UNROLL
        for (int q = 0; q < DWN_STRIP; q++) {
            s[q] = s[q] + f0 * in[q];
            s[q] = s[q] + f1 * in[q + 1];
            s[q] = s[q] + f2 * in[q + 2];
        }
    }
    DWN_UNROLL
    for (int q = 0; q < DWN_STRIP; q++) VARIANT(nv_store)(o + q * K + c, s[q]);
}

/* Output rows [i0, i1) of out (OH, OW, K) = bias (K, or NULL for none) plus the
 * convolution of x (H, W, C) by the filters wt (FH*FW, K) packed tap by tap: the taps
 * inside the input added in row-major order. */
void VARIANT(dwn_forward_rows)(const T *x, const T *wt, const T *bias, const dwn_geom *g,
                               ptrdiff_t i0, ptrdiff_t i1, T *out)
{
    const ptrdiff_t C = g->c, K = g->k, m = g->m;
    /* strips: the output columns [jlo, jend) whose every tap column lies inside the input,
     * in whole strips, for 3-wide filters at stride and dilation 1 along the rows; float
     * only (one Zen 4 core, in cache: float 44 -> 53 GFLOP/s, double no faster, slower
     * with 2 KiB between pixels, where a strip's rows share few L1 sets) */
    ptrdiff_t jlo = 0, jend = 0;
    if (m == 1 && g->fw == 3 && g->sw == 1 && g->dw == 1 && C % NV_LANES == 0 && DWN_STRIPS) {
        jlo = g->left;
        jend = g->w - 2 + g->left;  /* j + 2 - left <= w - 1 */
        if (jend > g->ow) jend = g->ow;
        jend = jend > jlo ? jlo + (jend - jlo) / DWN_STRIP * DWN_STRIP : jlo;
    }
    for (ptrdiff_t i = i0; i < i1; i++) {
        ptrdiff_t ulo, uhi, r0 = i * g->sh - g->top;
        pool_valid(r0, g->dh, g->h, g->fh, &ulo, &uhi);
        /* a strip's pixels over all their channels while their rows are in L1 (with a
         * power-of-two C, one vector of channels over the whole row would land in a few
         * L1 sets) */
        for (ptrdiff_t j = jlo; j < jend; j += DWN_STRIP)
            for (ptrdiff_t c = 0; c < C; c += NV_LANES)
                VARIANT(dwn_strip)(x, wt, bias, g, r0, j - g->left, ulo, uhi, c,
                                   out + (i * g->ow + j) * K);
        for (ptrdiff_t j = 0; j < g->ow; j++) {
            ptrdiff_t vlo, vhi, c0 = j * g->sw - g->left, c = 0;
            T *POOL_RESTRICT o = out + (i * g->ow + j) * K;
            if (j == jlo && jend > jlo) {  /* the strips' columns are done */
                j = jend - 1;
                continue;
            }
            if (m == 1 && j + 1 < g->ow && c0 >= 0 && c0 + g->sw + (g->fw - 1) * g->dw < g->w
                && C % NV_LANES == 0 && (j + 1 != jlo || jend == jlo)) {
                /* two pixels with every column tap inside */
                for (; c + NV_BLOCK * NV_LANES <= C; c += NV_BLOCK * NV_LANES)
                    VARIANT(dwn_vectors2)(x, wt, bias, g, r0, c0, ulo, uhi, c, NV_BLOCK, o);
                for (; c < C; c += NV_LANES)
                    VARIANT(dwn_vectors2)(x, wt, bias, g, r0, c0, ulo, uhi, c, 1, o);
                j++;
                continue;
            }
            if (c0 >= 0 && c0 + (g->fw - 1) * g->dw < g->w) { vlo = 0; vhi = g->fw; }
            else pool_valid(c0, g->dw, g->w, g->fw, &vlo, &vhi);
            if (m == 1) {
                for (; c + NV_BLOCK * NV_LANES <= C; c += NV_BLOCK * NV_LANES)
                    VARIANT(dwn_vectors)(x, wt, bias, g, r0, c0, ulo, uhi, vlo, vhi, c, NV_BLOCK, o);
                for (; c + NV_LANES <= C; c += NV_LANES)
                    VARIANT(dwn_vectors)(x, wt, bias, g, r0, c0, ulo, uhi, vlo, vhi, c, 1, o);
                if (c == C) continue;
            }
            /* the channels left (all of them when m > 1), one output at a time */
            for (ptrdiff_t k = c * m; k < K; k++) o[k] = bias ? bias[k] : 0;
            for (ptrdiff_t u = ulo; u < uhi; u++)
                for (ptrdiff_t v = vlo; v < vhi; v++) {
                    const T *POOL_RESTRICT p = x + ((r0 + u * g->dh) * g->w + c0 + v * g->dw) * C;
                    const T *POOL_RESTRICT f = wt + (u * g->fw + v) * K;
                    for (ptrdiff_t ci = c; ci < C; ci++)
                        for (ptrdiff_t q = 0; q < m; q++)
                            o[ci * m + q] = o[ci * m + q] + f[ci * m + q] * p[ci];
                }
        }
    }
}

/* Channels [c, c + nb vectors) of tap (u, v)'s gradient over output rows [i0, i1): the sum
 * of dout (OH, OW, C) times the tap's input pixel (H, W, C), for the columns [jlo, jhi)
 * whose pixel lies inside, nb vectors held in registers; added to part. */
POOL_INLINE void VARIANT(dwn_grad_vectors)(const T *POOL_RESTRICT dout, const T *POOL_RESTRICT x,
                                           const dwn_geom *g, ptrdiff_t i0, ptrdiff_t i1,
                                           ptrdiff_t u, ptrdiff_t v, ptrdiff_t jlo, ptrdiff_t jhi,
                                           ptrdiff_t c, const int nb, T *POOL_RESTRICT part)
{
    const ptrdiff_t C = g->c, step = g->sw * C;
    NV s[NV_BLOCK];
    POOL_UNROLL
    for (int k = 0; k < nb; k++) s[k] = (NV){0};
    for (ptrdiff_t i = i0; i < i1; i++) {
        const ptrdiff_t r = i * g->sh - g->top + u * g->dh;
        const T *d, *p;
        if (r < 0 || r >= g->h) continue;
        d = dout + (i * g->ow + jlo) * C + c;
        p = x + (r * g->w + jlo * g->sw - g->left + v * g->dw) * C + c;
        for (ptrdiff_t j = jlo; j < jhi; j++, d += C, p += step)
            POOL_UNROLL
            for (int k = 0; k < nb; k++)
                s[k] = s[k] + VARIANT(nv_load)(d + k * NV_LANES) * VARIANT(nv_load)(p + k * NV_LANES);
    }
    POOL_UNROLL
    for (int k = 0; k < nb; k++)
        VARIANT(nv_store)(part + c + k * NV_LANES, VARIANT(nv_load)(part + c + k * NV_LANES) + s[k]);
}

/* The columns [*jlo, *jhi) of an output row whose tap column v reads a pixel inside the input
 * (j*sw - left + v*dw in [0, w)). */
POOL_INLINE void VARIANT(dwn_tap_columns)(const dwn_geom *g, ptrdiff_t v, ptrdiff_t *jlo,
                                          ptrdiff_t *jhi)
{
    const ptrdiff_t at = v * g->dw - g->left;
    *jlo = at >= 0 ? 0 : (-at + g->sw - 1) / g->sw;
    *jhi = g->w - at <= 0 ? 0 : (g->w - at + g->sw - 1) / g->sw;
    if (*jhi > g->ow) *jhi = g->ow;
}

/* part ((FH*FW, C), zeroed here) = the filter gradient of one filter per channel (m == 1)
 * over output rows [i0, i1) of one image: dout (OH, OW, C), x (H, W, C). Per block of
 * DWN_GRAD_VECTORS vectors of channels, row after row, every tap: the taps read a row of
 * dout and the input rows under it from the caches (3.5 ms for the 8x56x56x128 float32
 * layer on one Zen 4 core, against 3.7 taking each tap over the whole band). */
#define DWN_GRAD_VECTORS 4
void VARIANT(dwn_filter_grad_rows)(const T *dout, const T *x, const dwn_geom *g, ptrdiff_t i0,
                                   ptrdiff_t i1, T *part)
{
    const ptrdiff_t C = g->c, block = DWN_GRAD_VECTORS * NV_LANES;
    ptrdiff_t c, i, u, v, jlo, jhi;
    for (c = 0; c < g->fh * g->fw * C; c++) part[c] = 0;
    for (c = 0; c + NV_LANES <= C; c += C - c >= block ? block : NV_LANES) {
        const int nb = C - c >= block ? DWN_GRAD_VECTORS : 1;
        for (i = i0; i < i1; i++)
            for (u = 0; u < g->fh; u++)
                for (v = 0; v < g->fw; v++) {
                    VARIANT(dwn_tap_columns)(g, v, &jlo, &jhi);
                    if (jhi <= jlo) continue;
                    if (nb == DWN_GRAD_VECTORS)
                        VARIANT(dwn_grad_vectors)(dout, x, g, i, i + 1, u, v, jlo, jhi, c,
                                                  DWN_GRAD_VECTORS, part + (u * g->fw + v) * C);
                    else
                        VARIANT(dwn_grad_vectors)(dout, x, g, i, i + 1, u, v, jlo, jhi, c, 1,
                                                  part + (u * g->fw + v) * C);
                }
    }
    for (; c < C; c++)  /* the channels left, one at a time */
        for (i = i0; i < i1; i++)
            for (u = 0; u < g->fh; u++)
                for (v = 0; v < g->fw; v++) {
                    const ptrdiff_t r = i * g->sh - g->top + u * g->dh;
                    T *dst = part + (u * g->fw + v) * C + c;
                    VARIANT(dwn_tap_columns)(g, v, &jlo, &jhi);
                    if (r < 0 || r >= g->h) continue;
                    for (ptrdiff_t j = jlo; j < jhi; j++)
                        *dst = *dst + dout[(i * g->ow + j) * C + c]
                                      * x[(r * g->w + j * g->sw - g->left + v * g->dw) * C + c];
                }
}
#undef DWN_GRAD_VECTORS
#undef DWN_STRIP
#undef DWN_UNROLL
#undef DWN_STRIPS
#endif
