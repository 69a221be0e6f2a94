/* The Winograd kernels of winograd.h for one element type T and CPU level: a template,
 * compiled once per (T, level) in a translation unit that setup.py generates (see
 * cpu_features.h); the entry points are wg_filters_<TS>_<LEVEL> and wg_item_<TS>_<LEVEL>,
 * which call the GEMM of the same variant, cg_gemm_<TS>_<LEVEL>. Vectors are 64 bytes
 * at avx512, 32 at avx2 and 16 in portable C (one value at a time without GCC's vector
 * extensions). */
#include <stddef.h>
#include <string.h>

#include "winograd.h"

#if CPU_LEVEL == CPU_PORTABLE || CPU_X86
#if defined(__GNUC__) || defined(__clang__)
#define WG_VBYTES (CPU_LEVEL == CPU_AVX512 ? 64 : CPU_LEVEL == CPU_AVX2 ? 32 : 16)
#endif
#define WG_T T

#ifdef WG_VBYTES
#define WG_VL (WG_VBYTES / (ptrdiff_t)sizeof(WG_T))
#else
#define WG_VL 1
#endif
#define WG_V VARIANT(wg_vec)
#if defined(WG_VBYTES) && WG_VBYTES == 64
#define WG_MR 8  /* filters per packed panel, as conv_gemm.h's tile */
#else
#define WG_MR 4
#endif
#define WG_FN(name) VARIANT(name)
#define WG_LINE (64 / (ptrdiff_t)sizeof(WG_T))  /* values per cache line */

#ifdef WG_VBYTES
/* alignment of one element: loads and stores may be unaligned */
typedef WG_T WG_V __attribute__((vector_size(WG_VBYTES), aligned(sizeof(WG_T))));
#define WG_SPLAT(s) ((WG_V){0} + (s))
#else
typedef WG_T WG_V;
#define WG_SPLAT(s) (s)
#endif

/* gathered[(c*9 + i)*MR + l] = tap i of channel c of filter l (w + l*sf + c*sc, taps at
 * strides su, sv), c < cn; zeros for live <= l < MR. Filters whose 3x3s are contiguous
 * and channels 9 apart (the usual layout) are read row by row, each filter's cn*9 taps
 * in one run, which the compiler interleaves with vector shuffles; any other strides
 * (the backward's flipped filters) value by value. */
WG_INLINE void WG_FN(wg_gather_filters)(const WG_T *w, ptrdiff_t sf, ptrdiff_t sc, ptrdiff_t su,
                                        ptrdiff_t sv, ptrdiff_t live, ptrdiff_t cn,
                                        WG_T *gathered)
{
    static const WG_T zeros[WG_FILTER_CHANNELS * 9];
    const WG_T *src[WG_MR];
    ptrdiff_t l, k, c, i;
    for (l = 0; l < WG_MR; l++)
        src[l] = l < live ? w + l * sf : zeros;
    if (sc == 9 && su == 3 && sv == 1) {
        for (k = 0; k < cn * 9; k++)
            WG_UNROLL
            for (l = 0; l < WG_MR; l++)
                gathered[k * WG_MR + l] = src[l][k];
        return;
    }
    for (c = 0; c < cn; c++)
        for (i = 0; i < 9; i++)
            for (l = 0; l < WG_MR; l++)
                gathered[(c * 9 + i) * WG_MR + l] =
                    l < live ? src[l][c * sc + i / 3 * su + i % 3 * sv] : 0;
}

/* The filter transform computes in double, a vector of doubles holding one panel's MR
 * filters (one zmm at avx512, one ymm at avx2; without GCC's vector extensions, one
 * value at a time). Vectors of GCC's extensions keep their width whatever width the
 * compiler prefers for its own loops (256 bits at avx512), which halved the work of
 * this transform beside plain loops over arrays of MR doubles. */
#ifdef WG_VBYTES
#define WG_FV VARIANT(wg_filter_vec)
#define WG_FVT VARIANT(wg_filter_vec_t)
typedef double WG_FV __attribute__((vector_size(WG_MR * sizeof(double)), aligned(sizeof(double))));
typedef WG_T WG_FVT __attribute__((vector_size(WG_MR * sizeof(WG_T)), aligned(sizeof(WG_T))));
#define WG_FLANES 1
#define WG_FLOAD(p) __builtin_convertvector(*(const WG_FVT *)(p), WG_FV)
#define WG_FSTORE(p, v) (*(WG_FVT *)(p) = __builtin_convertvector((v), WG_FVT))
#else
#define WG_FV double
#define WG_FLANES WG_MR
#define WG_FLOAD(p) ((double)*(p))
#define WG_FSTORE(p, v) (*(p) = (WG_T)(v))
#endif

/* sum over s < 3 of row[s] * v[s*step], the zero coefficients dropped (the row is a
 * constant of the unrolled loops, so this happens at compile time). */
WG_INLINE WG_FV WG_FN(wg_filter_combine)(const double *row, const WG_FV *v, int step)
{
    WG_FV acc = v[0];  /* replaced by the first term */
    int s, first = 1;
    for (s = 0; s < 3; s++) {
        if (row[s] == 0)
            continue;
        acc = first ? v[s * step] * row[s] : acc + v[s * step] * row[s];
        first = 0;
    }
    return acc;
}

/* dst[t*ldt + c*MR + l] = point t of G g G^T for the 3x3 filter g of filter l, channel c
 * < cn, gathered as wg_gather_filters leaves them. In double. */
WG_INLINE void WG_FN(wg_filters_m)(int m, const WG_T *gathered, ptrdiff_t cn, WG_T *dst,
                                   ptrdiff_t ldt)
{
    const double (*gm)[3] = m == 2 ? wg_g2 : wg_g4;
    const int a = m + 2;
    WG_FV g[9], t[6][3];
    ptrdiff_t c, lane;
    int i, j;
    for (c = 0; c < cn; c++)
        for (lane = 0; lane < WG_FLANES; lane++) {
            const WG_T *gc = gathered + c * 9 * WG_MR + lane;
            WG_T *dc = dst + c * WG_MR + lane;
            WG_UNROLL
            for (i = 0; i < 9; i++)
                g[i] = WG_FLOAD(gc + i * WG_MR);
            WG_UNROLL
            for (i = 0; i < a; i++)
                WG_UNROLL
                for (j = 0; j < 3; j++)
                    t[i][j] = WG_FN(wg_filter_combine)(gm[i], g + j, 3);
            WG_UNROLL
            for (i = 0; i < a; i++)
                WG_UNROLL
                for (j = 0; j < a; j++)
                    WG_FSTORE(dc + (i * a + j) * ldt, WG_FN(wg_filter_combine)(gm[j], t[i], 1));
        }
}

void WG_FN(wg_filters)(int m, const WG_T *w, ptrdiff_t sf, ptrdiff_t sc, ptrdiff_t su,
                       ptrdiff_t sv, ptrdiff_t live, ptrdiff_t cn, WG_T *dst, ptrdiff_t ldt)
{
    WG_T gathered[WG_FILTER_CHANNELS * 9 * WG_MR];
    ptrdiff_t c0, step;
    for (c0 = 0; c0 < cn; c0 += WG_FILTER_CHANNELS) {
        step = cn - c0 < WG_FILTER_CHANNELS ? cn - c0 : WG_FILTER_CHANNELS;
        WG_FN(wg_gather_filters)(w + c0 * sc, sf, sc, su, sv, live, step, gathered);
        if (m == 2)
            WG_FN(wg_filters_m)(2, gathered, step, dst + c0 * WG_MR, ldt);
        else
            WG_FN(wg_filters_m)(4, gathered, step, dst + c0 * WG_MR, ldt);
    }
}

/* sum over s < m + 2 of T[row][s] * src[s*step], T = A^T (at) or B^T: the loop is
 * unrolled for a constant m, the tables' zeros skipped, and the sum starts from its
 * first term, never from zero. */
WG_INLINE WG_V WG_FN(wg_combine)(int m, int at, int row, const WG_V *src, int step)
{
    WG_V acc = src[0];  /* replaced by the first term */
    int s, first = 1;
    WG_UNROLL
    for (s = 0; s < m + 2; s++) {
        const double t = at ? WG_AT(m, row, s) : WG_BT(m, row, s);
        if (t == 0)
            continue;
        acc = first ? src[s * step] * (WG_T)t : acc + src[s * step] * (WG_T)t;
        first = 0;
    }
    return acc;
}

/* v[t*ldt] (t = i*a + j, a = m + 2) = (B^T d B)[i][j] for the VL tiles whose patches
 * d[(r*a + s)*VL + lane] holds. */
WG_INLINE void WG_FN(wg_input_tile)(int m, const WG_T *d, WG_T *v, ptrdiff_t ldt)
{
    const int a = m + 2;
    WG_V in[36], row[6][6];
    int i, j;
    WG_UNROLL
    for (i = 0; i < a * a; i++)
        in[i] = *(const WG_V *)(d + i * WG_VL);
    WG_UNROLL
    for (i = 0; i < a; i++)
        WG_UNROLL
        for (j = 0; j < a; j++)
            row[i][j] = WG_FN(wg_combine)(m, 0, j, in + i * a, 1);
    WG_UNROLL
    for (i = 0; i < a; i++)
        WG_UNROLL
        for (j = 0; j < a; j++)
            *(WG_V *)(v + (i * a + j) * ldt) = WG_FN(wg_combine)(m, 0, i, &row[0][j], 6);
}

/* o[(i*m + j)*VL + lane] = (A^T M A)[i][j] + bias for the VL tiles of M[t*ldt]. */
WG_INLINE void WG_FN(wg_output_tile)(int m, const WG_T *mt, ptrdiff_t ldt, WG_T bias,
                                     WG_T *o)
{
    const int a = m + 2;
    WG_V in[36], col[4][6];
    int i, j;
    WG_UNROLL
    for (i = 0; i < a * a; i++)
        in[i] = *(const WG_V *)(mt + i * ldt);
    WG_UNROLL
    for (i = 0; i < m; i++)
        WG_UNROLL
        for (j = 0; j < a; j++)
            col[i][j] = WG_FN(wg_combine)(m, 1, i, in + j, a);
    WG_UNROLL
    for (i = 0; i < m; i++)
        WG_UNROLL
        for (j = 0; j < m; j++)
            *(WG_V *)(o + (i * m + j) * WG_VL) =
                WG_SPLAT(bias) + WG_FN(wg_combine)(m, 1, j, col[i], 1);
}

/* d (a*a values per lane, lanes of stride VL) = the input patches of channel plane
 * xc (H, W) for the `lanes` tiles described by where (input offset, top row, left
 * column); lanes past `lanes` get zeros. */
WG_INLINE void WG_FN(wg_gather)(int m, const wg_plan *p, const WG_T *xc, const ptrdiff_t *where,
                                ptrdiff_t ldw, ptrdiff_t lanes, WG_T *d)
{
    const int a = m + 2;
    ptrdiff_t l, r, s, y, x;
    for (l = 0; l < lanes; l++) {
        const WG_T *src = xc + where[l];
        const ptrdiff_t y0 = where[ldw + l], x0 = where[2 * ldw + l];
        if (y0 >= 0 && y0 + a <= p->h && x0 >= 0 && x0 + a <= p->w) {
            WG_UNROLL
            for (r = 0; r < a; r++)
                WG_UNROLL
                for (s = 0; s < a; s++)
                    d[(r * a + s) * WG_VL + l] = src[r * p->w + s];
            continue;
        }
        for (r = 0; r < a; r++)
            for (s = 0; s < a; s++) {
                y = y0 + r;
                x = x0 + s;
                d[(r * a + s) * WG_VL + l] =
                    y >= 0 && y < p->h && x >= 0 && x < p->w ? src[r * p->w + s] : 0;
            }
    }
    for (; l < WG_VL; l++)
        for (r = 0; r < a * a; r++)
            d[r * WG_VL + l] = 0;
}

/* One item for tiles of size m: see wg_item. */
WG_INLINE void WG_FN(wg_item_m)(int m, const wg_plan *p, ptrdiff_t j0, ptrdiff_t j1, ptrdiff_t f0,
                                ptrdiff_t mc, const WG_T *x, const WG_T *u, const WG_T *bias,
                                WG_T *out, WG_T *work, ptrdiff_t *where)
{
    const int a = m + 2, a2 = a * a;
    const ptrdiff_t nb = j1 - j0, ldv = p->ldv, mcr = (mc + WG_MR - 1) / WG_MR * WG_MR;
    const ptrdiff_t plane = p->h * p->w, oplane = p->oh * p->ow, per_image = p->th * p->tw;
    /* the points' rows of V and M lie a cache line further apart than their size, so
     * that the a^2 values a transform reads or writes do not share a cache set */
    const ptrdiff_t vt = p->c * ldv + WG_LINE, mtt = mcr * ldv + WG_LINE;
    /* a panel's transformed filters, when the item makes them: a^2 points, ft apart */
    const ptrdiff_t ft = p->c * WG_MR + WG_LINE;
    WG_T *v = work, *mt = work + a2 * vt, *fbuf = mt + a2 * mtt;
    WG_T d[36 * WG_VL], o[16 * WG_VL];
    ptrdiff_t j, l, c, t, k, g, i, jj, lanes, n, ty, tx, rows, cols;
    for (j = 0; j < nb; j++) {  /* each tile's input offset, top row, left column, output offset */
        n = (j0 + j) / per_image;
        ty = (j0 + j) % per_image / p->tw;
        tx = (j0 + j) % p->tw;
        where[ldv + j] = ty * m - p->pt;
        where[2 * ldv + j] = tx * m - p->pl;
        where[j] = n * p->c * plane + where[ldv + j] * p->w + where[2 * ldv + j];
        where[3 * ldv + j] = n * p->k * oplane + ty * m * p->ow + tx * m;
    }
    /* V_t (C, ldv) at v + t*vt */
    for (g = 0; g < nb; g += WG_VL) {
        lanes = nb - g < WG_VL ? nb - g : WG_VL;
        for (c = 0; c < p->c; c++) {
            WG_FN(wg_gather)(m, p, x + c * plane, where + g, ldv, lanes, d);
            WG_FN(wg_input_tile)(m, d, v + c * ldv + g, vt);
        }
    }
    /* M_t (mcr, ldv) at mt + t*mtt = U_t (filters f0 .. f0 + mc - 1) @ V_t, V_t read in
     * place as a packed panel: from u, or from each panel's transforms as the item makes
     * them into fbuf */
    if (p->filters == NULL)
        for (t = 0; t < a2; t++)
            VARIANT(cg_gemm_packed)(mc, nb, p->c, u + t * p->ut + (f0 - p->k0) * p->c,
                                    v + t * vt, ldv, (const WG_T *)p->zero, mt + t * mtt,
                                    ldv, p->kc);
    else
        for (k = 0; k < mc; k += WG_MR) {
            const ptrdiff_t live = mc - k < WG_MR ? mc - k : WG_MR;
            WG_FN(wg_filters)(m, (const WG_T *)p->filters + (f0 + k) * p->sf, p->sf, p->sc,
                              p->su, p->sv, live, p->c, fbuf, ft);
            for (t = 0; t < a2; t++)
                VARIANT(cg_gemm_packed)(live, nb, p->c, fbuf + t * ft, v + t * vt, ldv,
                                        (const WG_T *)p->zero, mt + t * mtt + k * ldv, ldv,
                                        p->kc);
        }
    for (k = 0; k < mc; k++)
        for (g = 0; g < nb; g += WG_VL) {
            lanes = nb - g < WG_VL ? nb - g : WG_VL;
            WG_FN(wg_output_tile)(m, mt + k * ldv + g, mtt, bias[f0 + k], o);
            for (l = 0; l < lanes; l++) {
                WG_T *dst = out + where[3 * ldv + g + l] + (f0 + k) * oplane;
                rows = p->oh - where[ldv + g + l] - p->pt;
                cols = p->ow - where[2 * ldv + g + l] - p->pl;
                if (rows >= m && cols >= m) {  /* a whole tile: unrolled */
                    WG_UNROLL
                    for (i = 0; i < m; i++)
                        WG_UNROLL
                        for (jj = 0; jj < m; jj++)
                            dst[i * p->ow + jj] = o[(i * m + jj) * WG_VL + l];
                    continue;
                }
                rows = rows < m ? rows : m;
                cols = cols < m ? cols : m;
                for (i = 0; i < rows; i++)
                    for (jj = 0; jj < cols; jj++)
                        dst[i * p->ow + jj] = o[(i * m + jj) * WG_VL + l];
            }
        }
}

/* One work item: output tiles j0 .. j1-1 of filters f0 .. f0 + mc - 1 of out (N, K, OH,
 * OW), from x (N, C, H, W), the transformed filters u (a^2 points, p->ut apart, of
 * panels of (C, MR), from filter p->k0 on) or the filters p->filters, and bias (K). work holds
 * a^2 * ((C + round_up(mc, MR)) * ldv + 2 * WG_LINE) values, with p->filters a^2 * (C * MR +
 * WG_LINE) more, then the GEMM's packing panel; where holds 4 * ldv offsets. */
void WG_FN(wg_item)(const wg_plan *p, ptrdiff_t j0, ptrdiff_t j1, ptrdiff_t f0,
                           ptrdiff_t mc, const WG_T *x, const WG_T *u, const WG_T *bias,
                           WG_T *out, WG_T *work, ptrdiff_t *where)
{
    if (p->m == 2)
        WG_FN(wg_item_m)(2, p, j0, j1, f0, mc, x, u, bias, out, work, where);
    else
        WG_FN(wg_item_m)(4, p, j0, j1, f0, mc, x, u, bias, out, work, where);
}

#undef WG_VL
#undef WG_FV
#undef WG_FVT
#undef WG_FLANES
#undef WG_FLOAD
#undef WG_FSTORE
#undef WG_MR
#undef WG_LINE
#undef WG_SPLAT
#undef WG_V
#undef WG_FN
#undef WG_T
#undef WG_VBYTES
#endif
