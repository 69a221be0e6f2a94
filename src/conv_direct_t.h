/* The kernel bodies of conv_direct.h for one element type T and CPU level: a template,
 * compiled once per (T, level) in a translation unit that setup.py generates (see
 * cpu_features.h); the entry points are cd_conv_task_<TS>_<LEVEL> and
 * cd_wgrad_task_<TS>_<LEVEL>. Vectors are 64 bytes at avx512, 32 at avx2 and 16 in portable
 * C (GCC's vector extensions, which need GCC or Clang). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "conv_direct.h"

#if CPU_LEVEL == CPU_PORTABLE || CPU_X86

#if CPU_LEVEL == CPU_AVX512
#define CD_VBYTES 64
#elif CPU_LEVEL == CPU_AVX2
#define CD_VBYTES 32
#else
#define CD_VBYTES 16
#endif
#define CD_T T
#if TS_F32
#define CD_IT int32_t
#else
#define CD_IT int64_t
#endif
#define CD_V VARIANT(cd_vec)
#define CD_IV VARIANT(cd_ivec)
#define CD_VL ((ptrdiff_t)(CD_VBYTES / sizeof(CD_T)))
#define CD_INLINE static inline __attribute__((always_inline))

typedef CD_T CD_V __attribute__((vector_size(CD_VBYTES)));
typedef CD_IT CD_IV __attribute__((vector_size(CD_VBYTES)));

CD_INLINE CD_V VARIANT(cd_load)(const CD_T *p)
{
    CD_V v;
    memcpy(&v, p, sizeof v);
    return v;
}

CD_INLINE void VARIANT(cd_store)(CD_T *p, CD_V v)
{
    memcpy(p, &v, sizeof v);
}

/* Set n elements to zero / copy n elements: inline vector loops, as rows
 * here are too short to pay for a library call each. */
CD_INLINE void VARIANT(cd_zero)(CD_T *d, ptrdiff_t n)
{
    ptrdiff_t k = 0;
    for (; k + CD_VL <= n; k += CD_VL)
        VARIANT(cd_store)(d + k, (CD_V){0});
    for (; k < n; k++)
        d[k] = 0;
}

CD_INLINE void VARIANT(cd_copy)(CD_T *d, const CD_T *s, ptrdiff_t n)
{
    ptrdiff_t k = 0;
    for (; k + CD_VL <= n; k += CD_VL)
        VARIANT(cd_store)(d + k, VARIANT(cd_load)(s + k));
    if (k < n && n >= CD_VL)
        VARIANT(cd_store)(d + n - CD_VL, VARIANT(cd_load)(s + n - CD_VL));
    else
        for (; k < n; k++)
            d[k] = s[k];
}

/* Copy source rows first .. first + nrows - 1 (in band coordinates, see
 * cd_conv) of one channel plane into nrows zero-padded, phase-split rows. */
static void VARIANT(cd_fill)(const cd_conv *p, const CD_T *src, CD_T *dst, ptrdiff_t first,
                           ptrdiff_t nrows)
{
    const ptrdiff_t rl = p->rl, wq = p->wq, sw = p->sw, qh = p->qh, qw = p->qw;
    const ptrdiff_t pw = p->pw, in_h = p->in_h, in_w = p->in_w;
    ptrdiff_t r, q, m;
    for (r = 0; r < nrows; r++) {
        CD_T *d = dst + r * rl;
        const CD_T *s;
        ptrdiff_t row = first + r;
        if (qh > 1)  /* (divisions only here: they cost as much as a row's copy) */
            row = row >= 0 && row % qh == 0 ? row / qh : -1;
        if (row < 0 || row >= in_h) {
            VARIANT(cd_zero)(d, rl);
            continue;
        }
        s = src + row * in_w;
        if (qw == 1 && sw == 1) {
            ptrdiff_t lo = pw < 0 ? 0 : (pw > rl ? rl : pw);
            ptrdiff_t hi = pw + in_w;
            hi = hi < lo ? lo : (hi > rl ? rl : hi);
            if (lo <= CD_VL && rl - hi <= CD_VL && rl >= CD_VL) {
                /* the padding as two vector stores, before the copy overwrites
                 * the parts of them that are not padding */
                if (lo > 0)
                    VARIANT(cd_store)(d, (CD_V){0});
                if (hi < rl)
                    VARIANT(cd_store)(d + rl - CD_VL, (CD_V){0});
            } else {
                VARIANT(cd_zero)(d, lo);
                VARIANT(cd_zero)(d + hi, rl - hi);
            }
            VARIANT(cd_copy)(d + lo, s + (lo - pw), hi - lo);
        } else if (qw == 1) {
            /* a strided forward pass: split the padded row into sw phases */
            for (q = 0; q < sw; q++) {
                for (m = 0; m < wq; m++) {
                    ptrdiff_t col = m * sw + q - pw;
                    d[q * wq + m] = col >= 0 && col < in_w ? s[col] : (CD_T)0;
                }
            }
        } else {
            /* the input gradient (sw == 1): source column j lands at pw + j * qw */
            memset(d, 0, (size_t)rl * sizeof(CD_T));
            for (m = 0; m < in_w; m++) {
                ptrdiff_t col = pw + m * qw;
                if (col >= 0 && col < rl)
                    d[col] = s[m];
            }
        }
    }
}

/* KB output channels x RB output rows x JT vectors: out[kb * out_k + r * ow
 * + lane] = bias[kb] + sum over c, u, v of w[kb * wo + c * wc + u * wu + v *
 * wv] * in[c * in_c + r * in_r + u * in_u + voff[v] + lane], u over the nu
 * filter rows in ulist (the others read only zeros); only the first
 * nstore lanes of each row are stored (nstore < JT * VL only with JT == 1).
 * FW, when not 0, is the filter width known at compile time.
 * KB * RB * JT <= 8 independent sums hide the latency of the FMAs. */
CD_INLINE void VARIANT(cd_mk)(const int KB, const int RB, const int JT, const int FW,
                            const cd_conv *p, const CD_T *in, ptrdiff_t in_c,
                            const ptrdiff_t *ulist, ptrdiff_t nu, const ptrdiff_t *voff,
                            const CD_T *w, const CD_T *bias, CD_T *out, ptrdiff_t nstore)
{
    const ptrdiff_t nc = p->icg, fw = FW ? FW : p->fw, in_u = p->dh * p->rl;
    const ptrdiff_t in_r = p->sh * p->rl, wo = p->wo, wc = p->wc, wu = p->wu, wv = p->wv;
    const ptrdiff_t ow = p->ow, out_k = p->oh * p->ow;
    CD_V acc[4][4][4];
    CD_V xv[4][4];
    ptrdiff_t c, ui, v;
    int kb, r, t;
    for (kb = 0; kb < KB; kb++) {
        CD_T b0 = bias ? bias[kb] : (CD_T)0;
        for (r = 0; r < RB; r++)
            for (t = 0; t < JT; t++)
                acc[kb][r][t] = (CD_V){0} + b0;
    }
    for (c = 0; c < nc; c++) {
        for (ui = 0; ui < nu; ui++) {
            const CD_T *row = in + c * in_c + ulist[ui] * in_u;
            const CD_T *wr = w + c * wc + ulist[ui] * wu;
            for (v = 0; v < fw; v++) {
                const CD_T *x = row + voff[v];
                for (r = 0; r < RB; r++)
                    for (t = 0; t < JT; t++)
                        xv[r][t] = VARIANT(cd_load)(x + r * in_r + t * CD_VL);
                for (kb = 0; kb < KB; kb++) {
                    CD_T s = wr[kb * wo + v * wv];
                    for (r = 0; r < RB; r++)
                        for (t = 0; t < JT; t++)
                            acc[kb][r][t] = acc[kb][r][t] + xv[r][t] * s;
                }
            }
        }
    }
    for (kb = 0; kb < KB; kb++) {
        for (r = 0; r < RB; r++) {
            CD_T *o = out + kb * out_k + r * ow;
            if (nstore == JT * CD_VL) {
                for (t = 0; t < JT; t++)
                    VARIANT(cd_store)(o + t * CD_VL, acc[kb][r][t]);
            } else {
                CD_T lanes[CD_VBYTES / sizeof(CD_T)];
                VARIANT(cd_store)(lanes, acc[kb][r][0]);
                memcpy(o, lanes, (size_t)nstore * sizeof(CD_T));
            }
        }
    }
}

/* RB output rows of KB channels, tiled along the width: JT-vector tiles,
 * then single vectors, then a last vector that overlaps its left neighbour
 * (recomputing identical values) or, for rows narrower than a vector, a
 * partial store. */
CD_INLINE void VARIANT(cd_rows)(const int KB, const int RB, const int JT, const int FW,
                              const cd_conv *p, const CD_T *in, ptrdiff_t in_c,
                              const ptrdiff_t *ulist, ptrdiff_t nu, const ptrdiff_t *voff,
                              const CD_T *w, const CD_T *bias, CD_T *out)
{
    const ptrdiff_t ow = p->ow;
    ptrdiff_t j = 0;
    if (JT == 4)
        for (; j + 4 * CD_VL <= ow; j += 4 * CD_VL)
            VARIANT(cd_mk)(KB, RB, 4, FW, p, in + j, in_c, ulist, nu, voff, w, bias, out + j,
                         4 * CD_VL);
    if (JT >= 2)
        for (; j + 2 * CD_VL <= ow; j += 2 * CD_VL)
            VARIANT(cd_mk)(KB, RB, 2, FW, p, in + j, in_c, ulist, nu, voff, w, bias, out + j, 2 * CD_VL);
    for (; j + CD_VL <= ow; j += CD_VL)
        VARIANT(cd_mk)(KB, RB, 1, FW, p, in + j, in_c, ulist, nu, voff, w, bias, out + j, CD_VL);
    if (j < ow) {
        if (ow >= CD_VL) j = ow - CD_VL;
        VARIANT(cd_mk)(KB, RB, 1, FW, p, in + j, in_c, ulist, nu, voff, w, bias, out + j,
                     ow - j < CD_VL ? ow - j : CD_VL);
    }
}

#define CD_ROWS_FN(KB, RB, JT, FW)                                                     \
    static void VARIANT(cd_rows_##KB##_##RB##_##FW)(                                     \
        const cd_conv *p, const CD_T *in, ptrdiff_t in_c, const ptrdiff_t *ulist,      \
        ptrdiff_t nu, const ptrdiff_t *voff, const CD_T *w, const CD_T *bias, CD_T *out) \
    {                                                                                  \
        VARIANT(cd_rows)(KB, RB, JT, FW, p, in, in_c, ulist, nu, voff, w, bias, out);    \
    }
CD_ROWS_FN(4, 1, 2, 0)
CD_ROWS_FN(4, 2, 1, 0)
CD_ROWS_FN(1, 4, 2, 0)
CD_ROWS_FN(1, 1, 4, 0)
/* the common 3-wide filters, with the tap loop unrolled */
CD_ROWS_FN(4, 1, 2, 3)
CD_ROWS_FN(4, 2, 1, 3)
CD_ROWS_FN(1, 4, 2, 3)
CD_ROWS_FN(1, 1, 4, 3)
#undef CD_ROWS_FN

/* Column offset of tap v inside a phase-split band row. */
static void VARIANT(cd_tap_offsets)(const cd_conv *p, ptrdiff_t *voff)
{
    ptrdiff_t v;
    for (v = 0; v < p->fw; v++) {
        ptrdiff_t off = v * p->dw;
        voff[v] = (off % p->sw) * p->wq + off / p->sw;
    }
}

/* Prefetch the cache lines of n elements from address a (an integer: it may
 * lie past the end of the array, and prefetches never fault), for writing
 * if `write`. */
CD_INLINE void VARIANT(cd_prefetch)(uintptr_t a, ptrdiff_t n, int write)
{
    ptrdiff_t q;
    for (q = 0; q < n * (ptrdiff_t)sizeof(CD_T); q += 64) {
        if (write)
            __builtin_prefetch((const void *)(a + (uintptr_t)q), 1, 3);
        else
            __builtin_prefetch((const void *)(a + (uintptr_t)q), 0, 3);
    }
}

/* Depthwise layers (one input and one output channel per group, no zero
 * rows between the source's rows): each plane is streamed once, its rows
 * copied, zero-padded, into a small ring as the output rows reach them.
 *
 * RB output rows x JT vectors, at columns j0 + t * VL for t < JT - 1 and
 * jl for the last: out[r * ow + col + lane] = bias + the sum, taps in
 * row-major order, of wt[u * fw + v] * rows[r * sh + u * dh][voff[v] + col
 * + lane]; only the first nstore lanes of each row are stored (nstore < VL
 * only with JT == 1). K3, when set, says the filter is 3 x 3 with column
 * taps at 0, 1, 2 (no dilation or stride along the width), so that every
 * load has a constant offset from one of a few pointers. */
CD_INLINE void VARIANT(cd_dwk)(const int K3, const int RB, const int JT, const cd_conv *p,
                             const CD_T *const *rows, const ptrdiff_t *voff, ptrdiff_t j0,
                             ptrdiff_t jl, const CD_T *wt, CD_T b, CD_T *out,
                             ptrdiff_t nstore)
{
    const ptrdiff_t nu = K3 ? 3 : p->fh, nv = K3 ? 3 : p->fw, ow = p->ow;
    CD_V acc[2][4];
    ptrdiff_t u, v;
    int r, t;
    for (r = 0; r < RB; r++)
        for (t = 0; t < JT; t++)
            acc[r][t] = (CD_V){0} + b;
#pragma GCC unroll 3
    for (u = 0; u < nu; u++) {
        const CD_T *x[2], *xl[2];
        for (r = 0; r < RB; r++) {
            x[r] = rows[r * p->sh + u * p->dh] + j0;
            xl[r] = x[r] + (jl - j0);
        }
#pragma GCC unroll 3
        for (v = 0; v < nv; v++) {
            const CD_T s = wt[u * nv + v];
            const ptrdiff_t off = K3 ? v : voff[v];
            for (r = 0; r < RB; r++) {
                for (t = 0; t < JT - 1; t++)
                    acc[r][t] = acc[r][t] + VARIANT(cd_load)(x[r] + off + t * CD_VL) * s;
                acc[r][JT - 1] = acc[r][JT - 1] + VARIANT(cd_load)(xl[r] + off) * s;
            }
        }
    }
    for (r = 0; r < RB; r++) {
        if (nstore == CD_VL) {
            for (t = 0; t < JT - 1; t++)
                VARIANT(cd_store)(out + r * ow + j0 + t * CD_VL, acc[r][t]);
            VARIANT(cd_store)(out + r * ow + jl, acc[r][JT - 1]);
        } else {
            CD_T lanes[CD_VBYTES / sizeof(CD_T)];
            VARIANT(cd_store)(lanes, acc[r][0]);
            memcpy(out + r * ow + j0, lanes, (size_t)nstore * sizeof(CD_T));
        }
    }
}

/* RB output rows along the whole width, four vectors at a time; where a
 * vector does not divide the width the last one overlaps its left
 * neighbour (recomputing identical values); a row narrower than a vector
 * is one partial store. */
CD_INLINE void VARIANT(cd_dw_rows)(const int K3, const int RB, const cd_conv *p,
                                 const CD_T *const *rows, const ptrdiff_t *voff,
                                 const CD_T *wt, CD_T b, CD_T *out)
{
    const ptrdiff_t ow = p->ow, nj = (ow + CD_VL - 1) / CD_VL;
    ptrdiff_t k = 0;
    if (ow < CD_VL) {
        VARIANT(cd_dwk)(K3, RB, 1, p, rows, voff, 0, 0, wt, b, out, ow);
        return;
    }
#define CD_DW_LAST(k, jt) ((k) + (jt) < nj ? ((k) + (jt) - 1) * CD_VL : ow - CD_VL)
    for (; k + 4 <= nj; k += 4)
        VARIANT(cd_dwk)(K3, RB, 4, p, rows, voff, k * CD_VL, CD_DW_LAST(k, 4), wt, b, out,
                      CD_VL);
    if (nj - k == 3)
        VARIANT(cd_dwk)(K3, RB, 3, p, rows, voff, k * CD_VL, CD_DW_LAST(k, 3), wt, b, out,
                      CD_VL);
    else if (nj - k == 2)
        VARIANT(cd_dwk)(K3, RB, 2, p, rows, voff, k * CD_VL, CD_DW_LAST(k, 2), wt, b, out,
                      CD_VL);
    else if (nj - k == 1)
        VARIANT(cd_dwk)(K3, RB, 1, p, rows, voff, k * CD_VL, CD_DW_LAST(k, 1), wt, b, out,
                      CD_VL);
#undef CD_DW_LAST
}

/* The address of row t of a plane of h rows of w elements, or of row t - h
 * of the plane read after it, `next` (perhaps past its end: for prefetches
 * only). */
CD_INLINE uintptr_t VARIANT(cd_dw_row)(const CD_T *plane, const CD_T *next, ptrdiff_t h,
                                     ptrdiff_t w, ptrdiff_t t)
{
    return t < h ? (uintptr_t)(plane + t * w)
                 : (uintptr_t)next + (uintptr_t)((t - h) * w) * sizeof(CD_T);
}

/* Point rows[0 .. nk - 1] at the source rows k0 .. k0 + nk - 1 of `plane`:
 * slots (k mod p->dw_ring, a power of two) of buf holding them zero-padded,
 * each copied, and the row p->dw_pf_in further on (perhaps in the plane
 * read next, `next`) prefetched, when first needed (rows past *copied); or
 * the zero row after the ring, for rows outside the plane. Without a
 * column stride or spread (plain rows) only the source's columns are
 * copied: the caller zeroed the ring once (cd_dw_ring_zero). */
CD_INLINE void VARIANT(cd_dw_ring)(const cd_conv *p, const CD_T *plane, const CD_T *next,
                                 CD_T *buf, ptrdiff_t k0, ptrdiff_t nk, const CD_T **rows,
                                 ptrdiff_t *copied)
{
    const ptrdiff_t rl = p->rl, in_h = p->in_h, in_w = p->in_w;
    const int plain = p->sw == 1 && p->qw == 1;
    const ptrdiff_t lo = p->pw < 0 ? 0 : (p->pw > rl ? rl : p->pw);
    const ptrdiff_t hi = p->pw + in_w < lo ? lo : (p->pw + in_w > rl ? rl : p->pw + in_w);
    ptrdiff_t k;
    for (k = k0; k < k0 + nk; k++) {
        CD_T *slot = buf + (k & (p->dw_ring - 1)) * rl;
        if (k < 0 || k >= in_h) {
            rows[k - k0] = buf + p->dw_ring * rl;
            continue;
        }
        if (k > *copied) {
            VARIANT(cd_prefetch)(VARIANT(cd_dw_row)(plane, next, in_h, in_w, k + p->dw_pf_in), in_w,
                               0);
            if (plain) {
                /* the padding columns stay zero: set when the task began */
                VARIANT(cd_copy)(slot + lo, plane + k * in_w + (lo - p->pw), hi - lo);
            } else {
                VARIANT(cd_fill)(p, plane, slot, k, 1);
            }
            *copied = k;
        }
        rows[k - k0] = slot;
    }
}

/* Zero the ring and the zero row after it. */
CD_INLINE void VARIANT(cd_dw_ring_zero)(const cd_conv *p, CD_T *buf)
{
    VARIANT(cd_zero)(buf, (p->dw_ring + 1) * p->rl);
}

/* Output rows i0 .. i1 - 1 of channel c of image n, two at a time, from the
 * ring of source rows (cd_dw_ring). */
CD_INLINE void VARIANT(cd_dw_band)(const int K3, const cd_conv *p, ptrdiff_t n,
                                 ptrdiff_t c, ptrdiff_t i0, ptrdiff_t i1, CD_T *buf)
{
    const ptrdiff_t span = p->dw_span, ow = p->ow, taps = p->fh * p->fw;
    const CD_T *plane = (const CD_T *)p->src + (n * p->in_c + c) * p->in_h * p->in_w;
    const CD_T *w = (const CD_T *)p->w + c * p->wg;
    const CD_T b = p->bias ? ((const CD_T *)p->bias)[c] : (CD_T)0;
    CD_T *out = (CD_T *)p->out + ((n * p->out_c + c) * p->oh + i0) * ow;
    const CD_T *rows[span];
    ptrdiff_t voff[p->fw];
    CD_T wt[taps];
    ptrdiff_t i, u, v, copied = PTRDIFF_MIN;
    for (u = 0; u < p->fh; u++)
        for (v = 0; v < p->fw; v++)
            wt[u * p->fw + v] = w[u * p->wu + v * p->wv];
    VARIANT(cd_tap_offsets)(p, voff);
    for (i = i0; i < i1; i += 2, out += 2 * ow) {
        const ptrdiff_t k0 = i * p->sh - p->ph;
        const int rb = i + 2 <= i1 ? 2 : 1;
        const ptrdiff_t nk = (rb - 1) * p->sh + (p->fh - 1) * p->dh + 1;
        VARIANT(cd_dw_ring)(p, plane, plane + p->in_h * p->in_w, buf, k0, nk, rows, &copied);
        VARIANT(cd_prefetch)((uintptr_t)out + (uintptr_t)(p->dw_pf_out * ow) * sizeof(CD_T),
                           2 * ow, 1);
        if (rb == 2)
            VARIANT(cd_dw_rows)(K3, 2, p, rows, voff, wt, b, out);
        else
            VARIANT(cd_dw_rows)(K3, 1, p, rows, voff, wt, b, out);
    }
}

static void VARIANT(cd_dw_band_33)(const cd_conv *p, ptrdiff_t n, ptrdiff_t c, ptrdiff_t i0,
                                 ptrdiff_t i1, CD_T *buf)
{
    VARIANT(cd_dw_band)(1, p, n, c, i0, i1, buf);
}

static void VARIANT(cd_dw_band_any)(const cd_conv *p, ptrdiff_t n, ptrdiff_t c, ptrdiff_t i0,
                                  ptrdiff_t i1, CD_T *buf)
{
    VARIANT(cd_dw_band)(0, p, n, c, i0, i1, buf);
}

/* Depthwise task: items task * p->dw_ipt .. (plane, band of output rows)
 * in order, planes (n, c) in memory order. buf holds p->buf_elems
 * elements. */
static void VARIANT(cd_dw_task)(const cd_conv *p, ptrdiff_t task, void *vbuf)
{
    CD_T *buf = (CD_T *)vbuf;
    const ptrdiff_t items = p->n * p->groups * p->nbands;
    const ptrdiff_t t0 = task * p->dw_ipt;
    const ptrdiff_t t1 = t0 + p->dw_ipt < items ? t0 + p->dw_ipt : items;
    ptrdiff_t t;
    VARIANT(cd_dw_ring_zero)(p, buf);
    for (t = t0; t < t1; t++) {
        const ptrdiff_t plane = t / p->nbands, band = t % p->nbands;
        const ptrdiff_t i0 = band * p->band;
        const ptrdiff_t i1 = i0 + p->band < p->oh ? i0 + p->band : p->oh;
        if (p->fh == 3 && p->fw == 3 && p->dw == 1 && p->sw == 1)
            VARIANT(cd_dw_band_33)(p, plane / p->groups, plane % p->groups, i0, i1, buf);
        else
            VARIANT(cd_dw_band_any)(p, plane / p->groups, plane % p->groups, i0, i1, buf);
    }
}

/* Task (n, g, band): every output row of the band, every output channel of
 * group g, image n. buf holds p->buf_elems elements. */
void VARIANT(cd_conv_task)(const cd_conv *p, ptrdiff_t task, void *vbuf)
{
    CD_T *buf = (CD_T *)vbuf;
    const ptrdiff_t band = task % p->nbands, g = (task / p->nbands) % p->groups;
    const ptrdiff_t n = task / p->nbands / p->groups;
    const ptrdiff_t i0 = band * p->band;
    const ptrdiff_t i1 = i0 + p->band < p->oh ? i0 + p->band : p->oh;
    const ptrdiff_t nrows = (i1 - i0 - 1) * p->sh + (p->fh - 1) * p->dh + 1;
    const ptrdiff_t in_c = nrows * p->rl, in_r = p->sh * p->rl, ow = p->ow;
    const CD_T *src = (const CD_T *)p->src;
    const CD_T *w = (const CD_T *)p->w + g * p->wg;
    const CD_T *bias = p->bias ? (const CD_T *)p->bias + g * p->ocg : NULL;
    ptrdiff_t voff[p->fw], uall[p->fh], ulist[p->fh];
    ptrdiff_t c, o, i, u;
    if (p->dwise) {
        VARIANT(cd_dw_task)(p, task, buf);
        return;
    }
    VARIANT(cd_tap_offsets)(p, voff);
    for (c = 0; c < p->icg; c++)
        VARIANT(cd_fill)(p, src + (n * p->in_c + g * p->icg + c) * p->in_h * p->in_w,
                       buf + c * in_c, i0 * p->sh - p->ph, nrows);
    for (u = 0; u < p->fh; u++)
        uall[u] = u;
    for (o = 0; o < p->ocg;) {
        const int kb = p->ocg - o >= 4 ? 4 : 1;
        const CD_T *wk = w + o * p->wo, *bk = bias ? bias + o : NULL;
        CD_T *out = (CD_T *)p->out + ((n * p->out_c + g * p->ocg + o) * p->oh + i0) * ow;
        const CD_T *in = buf;
        i = i0;
        if (p->qh > 1) {
            /* input gradient of a strided convolution: most band rows are the
             * zeros between dout's rows; each output row skips the taps on them */
            for (; i < i1; i++, in += in_r, out += ow) {
                ptrdiff_t nu = 0;
                for (u = 0; u < p->fh; u++) {
                    ptrdiff_t idx = i * p->sh - p->ph + u * p->dh;
                    if (idx >= 0 && idx % p->qh == 0 && idx / p->qh < p->in_h)
                        ulist[nu++] = u;
                }
                if (kb == 4)
                    VARIANT(cd_rows_4_1_0)(p, in, in_c, ulist, nu, voff, wk, bk, out);
                else
                    VARIANT(cd_rows_1_1_0)(p, in, in_c, ulist, nu, voff, wk, bk, out);
            }
        } else if (kb == 4) {
            if (ow < 2 * CD_VL)  /* rows narrower than two vectors: two rows at a time,
                                  * so that 8 sums are in flight, not 4 */
                for (; i + 2 <= i1; i += 2, in += 2 * in_r, out += 2 * ow)
                    (p->fw == 3 ? VARIANT(cd_rows_4_2_3) : VARIANT(cd_rows_4_2_0))(
                        p, in, in_c, uall, p->fh, voff, wk, bk, out);
            for (; i < i1; i++, in += in_r, out += ow)
                (p->fw == 3 ? VARIANT(cd_rows_4_1_3) : VARIANT(cd_rows_4_1_0))(
                    p, in, in_c, uall, p->fh, voff, wk, bk, out);
        } else {
            for (; i + 4 <= i1; i += 4, in += 4 * in_r, out += 4 * ow)
                (p->fw == 3 ? VARIANT(cd_rows_1_4_3) : VARIANT(cd_rows_1_4_0))(
                    p, in, in_c, uall, p->fh, voff, wk, bk, out);
            for (; i < i1; i++, in += in_r, out += ow)
                (p->fw == 3 ? VARIANT(cd_rows_1_1_3) : VARIANT(cd_rows_1_1_0))(
                    p, in, in_c, uall, p->fh, voff, wk, bk, out);
        }
        o += kb;
    }
}

/* Add to acc[kb][k][r] the products of RB rows of dout (kb * d_k + r * ow
 * + j) and of the band (r * xr_r + voff[k] + j) over the whole width; the
 * last, partial vector of a row is masked so no product is counted twice. */
CD_INLINE void VARIANT(cd_wk_rows)(const int KB, const int NV, const int RB, const cd_conv *p,
                                 const CD_T *xr, ptrdiff_t xr_r, const ptrdiff_t *voff,
                                 const CD_T *dr, ptrdiff_t d_k, CD_IV mask,
                                 CD_V acc[4][4][2])
{
    const ptrdiff_t ow = p->ow, vl = CD_VL;
    const ptrdiff_t rem = ow % vl, last = ow >= vl ? ow - vl : 0;
    CD_V d[4][2], x[4][2];
    ptrdiff_t j;
    int kb, k, r;
    for (j = 0; j + vl <= ow; j += vl) {
        for (kb = 0; kb < KB; kb++)
            for (r = 0; r < RB; r++)
                d[kb][r] = VARIANT(cd_load)(dr + kb * d_k + r * ow + j);
        for (k = 0; k < NV; k++)
            for (r = 0; r < RB; r++)
                x[k][r] = VARIANT(cd_load)(xr + r * xr_r + voff[k] + j);
        for (kb = 0; kb < KB; kb++)
            for (k = 0; k < NV; k++)
                for (r = 0; r < RB; r++)
                    acc[kb][k][r] = acc[kb][k][r] + d[kb][r] * x[k][r];
    }
    if (rem) {
        for (kb = 0; kb < KB; kb++) {
            for (r = 0; r < RB; r++) {
                if (ow >= vl) {
                    d[kb][r] = VARIANT(cd_load)(dr + kb * d_k + r * ow + last);
                } else {
                    CD_T lanes[CD_VBYTES / sizeof(CD_T)] = {0};
                    memcpy(lanes, dr + kb * d_k + r * ow, (size_t)ow * sizeof(CD_T));
                    d[kb][r] = VARIANT(cd_load)(lanes);
                }
                d[kb][r] = (CD_V)((CD_IV)d[kb][r] & mask);
            }
        }
        for (k = 0; k < NV; k++)
            for (r = 0; r < RB; r++)
                x[k][r] = VARIANT(cd_load)(xr + r * xr_r + voff[k] + last);
        for (kb = 0; kb < KB; kb++)
            for (k = 0; k < NV; k++)
                for (r = 0; r < RB; r++)
                    acc[kb][k][r] = acc[kb][k][r] + d[kb][r] * x[k][r];
    }
}

/* Partial weight gradients of KB filters x NV taps (v0 .. v0 + NV - 1) of
 * row u, over the output rows i0 .. i1 - 1 of one image and channel:
 * dw[kb][v] += sum over i, j of dout[kb * d_k + i * ow + j]
 * * band[((i - i0) * sh + u * dh) * rl + voff[v] + j], rows taken in pairs
 * (two independent sums) where registers allow, lanes summed in a fixed
 * order. */
CD_INLINE void VARIANT(cd_wk)(const int KB, const int NV, const cd_conv *p, const CD_T *band,
                            ptrdiff_t i0, ptrdiff_t i1, ptrdiff_t u, const ptrdiff_t *voff,
                            const CD_T *dout, ptrdiff_t d_k, CD_T *dw, ptrdiff_t dw_k)
{
    const ptrdiff_t ow = p->ow, rl = p->rl, vl = CD_VL, rem = ow % vl;
    const ptrdiff_t xr_r = p->sh * rl;
    CD_V acc[4][4][2];
    CD_IV mask;
    ptrdiff_t i;
    int kb, t, k;
    for (t = 0; t < vl; t++)
        mask[t] = (ow >= vl ? t >= vl - rem : t < ow) ? (CD_IT)-1 : 0;
    for (kb = 0; kb < KB; kb++)
        for (k = 0; k < NV; k++)
            acc[kb][k][0] = acc[kb][k][1] = (CD_V){0};
    i = i0;
    /* rows in pairs while the 2 * KB * NV sums fit the vector registers */
    if (2 * KB * NV <= (CD_VBYTES == 64 ? 24 : 12))
        for (; i + 2 <= i1; i += 2)
            VARIANT(cd_wk_rows)(KB, NV, 2, p, band + ((i - i0) * p->sh + u * p->dh) * rl, xr_r,
                              voff, dout + i * ow, d_k, mask, acc);
    for (; i < i1; i++)
        VARIANT(cd_wk_rows)(KB, NV, 1, p, band + ((i - i0) * p->sh + u * p->dh) * rl, xr_r,
                          voff, dout + i * ow, d_k, mask, acc);
    for (kb = 0; kb < KB; kb++) {
        for (k = 0; k < NV; k++) {
            CD_V sum = acc[kb][k][0] + acc[kb][k][1];
            CD_T s = 0;
            for (t = 0; t < vl; t++)
                s = s + sum[t];
            dw[kb * dw_k + k] = dw[kb * dw_k + k] + s;
        }
    }
}

#define CD_WK_CASE(KB, NV)                                                        \
    case (KB) * 8 + (NV):                                                         \
        VARIANT(cd_wk)(KB, NV, p, band, i0, i1, u, voff, dout, d_k, dw, dw_k);       \
        break;

static void VARIANT(cd_wk_any)(int kb, int nv, const cd_conv *p, const CD_T *band,
                             ptrdiff_t i0, ptrdiff_t i1, ptrdiff_t u, const ptrdiff_t *voff,
                             const CD_T *dout, ptrdiff_t d_k, CD_T *dw, ptrdiff_t dw_k)
{
    switch (kb * 8 + nv) {
        CD_WK_CASE(4, 1) CD_WK_CASE(4, 2) CD_WK_CASE(4, 3)
        CD_WK_CASE(2, 1) CD_WK_CASE(2, 2) CD_WK_CASE(2, 3) CD_WK_CASE(2, 4)
        CD_WK_CASE(1, 1) CD_WK_CASE(1, 2) CD_WK_CASE(1, 3) CD_WK_CASE(1, 4)
        default: break;
    }
}

/* Add to acc[u * 3 + v] the products of dout row d (ow elements) and the
 * source rows rows[u * dh], shifted by v, over the whole width; the last,
 * partial vector of a row is masked so no product is counted twice. */
CD_INLINE void VARIANT(cd_dw_wrow)(const cd_conv *p, const CD_T *const *rows, const CD_T *d,
                                 CD_IV mask, CD_V acc[9])
{
    const ptrdiff_t ow = p->ow, vl = CD_VL;
    const CD_T *x[3];
    ptrdiff_t j;
    int u, v;
    for (u = 0; u < 3; u++)
        x[u] = rows[u * p->dh];
    for (j = 0; j + vl <= ow; j += vl) {
        const CD_V dv = VARIANT(cd_load)(d + j);
        for (u = 0; u < 3; u++)
            for (v = 0; v < 3; v++)
                acc[u * 3 + v] = acc[u * 3 + v] + dv * VARIANT(cd_load)(x[u] + j + v);
    }
    if (ow % vl) {
        CD_V dv;
        j = ow >= vl ? ow - vl : 0;
        if (ow >= vl) {
            dv = VARIANT(cd_load)(d + j);
        } else {
            CD_T lanes[CD_VBYTES / sizeof(CD_T)] = {0};
            memcpy(lanes, d, (size_t)ow * sizeof(CD_T));
            dv = VARIANT(cd_load)(lanes);
        }
        dv = (CD_V)((CD_IV)dv & mask);
        for (u = 0; u < 3; u++)
            for (v = 0; v < 3; v++)
                acc[u * 3 + v] = acc[u * 3 + v] + dv * VARIANT(cd_load)(x[u] + j + v);
    }
}

/* Depthwise weight gradient of a 3 x 3 filter with unit column stride and
 * dilation, task c: channel c's nine taps, one vector of sums each, over the
 * images in order, their output rows in order (the source rows streamed
 * through the ring of cd_dw_ring, the next image's planes prefetched), the
 * vectors along a row left to right; the lanes summed in order at the end. */
static void VARIANT(cd_dw_wgrad_task)(const cd_conv *p, ptrdiff_t c, void *vbuf)
{
    CD_T *buf = (CD_T *)vbuf;
    const ptrdiff_t ow = p->ow, oh = p->oh, vl = CD_VL, rem = ow % vl;
    const ptrdiff_t in_plane = p->in_h * p->in_w, out_plane = oh * ow;
    const ptrdiff_t nk = 2 * p->dh + 1;
    const CD_T *src = (const CD_T *)p->src, *dout = (const CD_T *)p->dout;
    CD_T *dw = (CD_T *)p->out + c * 9;
    const CD_T *rows[nk];
    CD_V acc[9];
    CD_IV mask;
    ptrdiff_t n, i, t;
    for (t = 0; t < vl; t++)
        mask[t] = (ow >= vl ? t >= vl - rem : t < ow) ? (CD_IT)-1 : 0;
    for (t = 0; t < 9; t++)
        acc[t] = (CD_V){0};
    VARIANT(cd_dw_ring_zero)(p, buf);
    for (n = 0; n < p->n; n++) {
        const CD_T *plane = src + (n * p->in_c + c) * in_plane;
        const CD_T *dplane = dout + (n * p->out_c + c) * out_plane;
        const ptrdiff_t step = n + 1 < p->n ? 1 : 0;
        const CD_T *next = plane + step * p->in_c * in_plane;
        const CD_T *dnext = dplane + step * p->out_c * out_plane;
        ptrdiff_t copied = PTRDIFF_MIN;
        for (i = 0; i < oh; i++) {
            VARIANT(cd_dw_ring)(p, plane, next, buf, i * p->sh - p->ph, nk, rows, &copied);
            VARIANT(cd_prefetch)(VARIANT(cd_dw_row)(dplane, dnext, oh, ow, i + p->dw_pf_in), ow, 0);
            VARIANT(cd_dw_wrow)(p, rows, dplane + i * ow, mask, acc);
        }
    }
    for (t = 0; t < 9; t++) {
        CD_T s = 0;
        int lane;
        for (lane = 0; lane < vl; lane++)
            s = s + acc[t][lane];
        dw[t] = s;
    }
}

/* Task (g, filter block): the weight gradient of up to p->fpt filters of
 * group g, summed over images, then bands, in order. buf holds
 * p->buf_elems elements (one channel's band). */
void VARIANT(cd_wgrad_task)(const cd_conv *p, ptrdiff_t task, void *vbuf)
{
    CD_T *buf = (CD_T *)vbuf;
    const ptrdiff_t block = p->fpt, rb = cd_dw_block(p->fw);
    const ptrdiff_t nblocks = (p->ocg + block - 1) / block;
    const ptrdiff_t g = task / nblocks, o0 = (task % nblocks) * block;
    const ptrdiff_t nk = p->ocg - o0 < block ? p->ocg - o0 : block;
    const ptrdiff_t taps = p->fh * p->fw, dw_k = p->icg * taps, d_k = p->oh * p->ow;
    const CD_T *src = (const CD_T *)p->src;
    CD_T *dw = (CD_T *)p->out + (g * p->ocg + o0) * dw_k;
    ptrdiff_t voff[p->fw];
    ptrdiff_t n, c, b, u, v0, o;
    if (p->dwise) {
        VARIANT(cd_dw_wgrad_task)(p, task, buf);
        return;
    }
    VARIANT(cd_tap_offsets)(p, voff);
    memset(dw, 0, (size_t)(nk * dw_k) * sizeof(CD_T));
    for (n = 0; n < p->n; n++) {
        const CD_T *dout = (const CD_T *)p->dout + (n * p->out_c + g * p->ocg + o0) * d_k;
        for (c = 0; c < p->icg; c++) {
            const CD_T *plane = src + (n * p->in_c + g * p->icg + c) * p->in_h * p->in_w;
            for (b = 0; b < p->nbands; b++) {
                const ptrdiff_t i0 = b * p->band;
                const ptrdiff_t i1 = i0 + p->band < p->oh ? i0 + p->band : p->oh;
                const ptrdiff_t nrows = (i1 - i0 - 1) * p->sh + (p->fh - 1) * p->dh + 1;
                VARIANT(cd_fill)(p, plane, buf, i0 * p->sh - p->ph, nrows);
                for (o = 0; o < nk;) {
                    const int kb = nk - o >= 4 && rb >= 4 ? 4 : (nk - o >= 2 && rb >= 2 ? 2 : 1);
                    const ptrdiff_t nvk = kb == 4 ? 3 : 4;
                    for (u = 0; u < p->fh; u++) {
                        for (v0 = 0; v0 < p->fw; v0 += nvk) {
                            const int nv = (int)(p->fw - v0 < nvk ? p->fw - v0 : nvk);
                            VARIANT(cd_wk_any)(kb, nv, p, buf, i0, i1, u, voff + v0,
                                             dout + o * d_k, d_k,
                                             dw + o * dw_k + c * taps + u * p->fw + v0, dw_k);
                        }
                    }
                    o += kb;
                }
            }
        }
    }
}

#endif
