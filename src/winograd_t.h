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

/* dst[t*ldt + l] = point t of G g G^T for the 3x3 filters g at w + l*sf (element strides
 * su, sv), l < live; zeros for live <= l < MR. In double, lanes across the filters. */
WG_INLINE void WG_FN(wg_filters_m)(int m, const WG_T *w, ptrdiff_t sf, ptrdiff_t su,
                                   ptrdiff_t sv, ptrdiff_t live, WG_T *dst, ptrdiff_t ldt)
{
    const double (*gm)[3] = m == 2 ? wg_g2 : wg_g4;
    const int a = m + 2;
    double g[9][WG_MR], t[6][3][WG_MR];
    int i, j, l;
    for (i = 0; i < 9; i++)
        for (l = 0; l < WG_MR; l++)
            g[i][l] = l < live ? (double)w[l * sf + i / 3 * su + i % 3 * sv] : 0;
    WG_UNROLL
    for (i = 0; i < a; i++)
        for (j = 0; j < 3; j++)
            for (l = 0; l < WG_MR; l++)
                t[i][j][l] = gm[i][0] * g[j][l] + gm[i][1] * g[3 + j][l] + gm[i][2] * g[6 + j][l];
    WG_UNROLL
    for (i = 0; i < a; i++)
        WG_UNROLL
        for (j = 0; j < a; j++)
            for (l = 0; l < WG_MR; l++)
                dst[(i * a + j) * ldt + l] =
                    (WG_T)(t[i][0][l] * gm[j][0] + t[i][1][l] * gm[j][1] + t[i][2][l] * gm[j][2]);
}

void WG_FN(wg_filters)(int m, const WG_T *w, ptrdiff_t sf, ptrdiff_t su, ptrdiff_t sv,
                              ptrdiff_t live, WG_T *dst, ptrdiff_t ldt)
{
    if (m == 2)
        WG_FN(wg_filters_m)(2, w, sf, su, sv, live, dst, ldt);
    else
        WG_FN(wg_filters_m)(4, w, sf, su, sv, live, dst, ldt);
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
    WG_T *v = work, *mt = work + a2 * vt, *pack = mt + a2 * mtt;
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
    /* M_t (mcr, ldv) at mt + t*mtt = U_t (filters f0 .. f0 + mc - 1) @ V_t */
    for (t = 0; t < a2; t++)
        VARIANT(cg_gemm)(mc, nb, p->c, u + t * p->ut + f0 * p->c,
                                    v + t * vt, p->off, (const WG_T *)p->zero,
                                    mt + t * mtt, ldv, p->kc, pack);
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
 * panels of (C, MR)) and bias (K). work holds a^2 * ((C + round_up(mc, MR)) * ldv + 2 *
 * WG_LINE) values, then the GEMM's packing panel; where holds 4 * ldv offsets. */
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
#undef WG_MR
#undef WG_LINE
#undef WG_SPLAT
#undef WG_V
#undef WG_FN
#undef WG_T
#undef WG_VBYTES
#endif
