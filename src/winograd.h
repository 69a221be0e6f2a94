/* Winograd minimal filtering for 3x3 convolutions, stride 1 (Lavin & Gray,
 * arXiv:1509.09308): F(2x2, 3x3) and F(4x4, 3x3), NCHW.
 *
 * Output tile y (m x m) of one filter and one channel is A^T [U . V] A, with
 * U = G g G^T (the 3x3 filter g, transformed once per call) and V = B^T d B
 * (the (m+2) x (m+2) input patch d); summed over channels, the (m+2)^2 products
 * become as many GEMMs, one per transform point t: M_t (K, tiles) = U_t (K, C)
 * @ V_t (C, tiles). One work item takes a block of tiles and a chunk of filters
 * and runs the whole pipeline on them - input transform into the thread's
 * buffer V, the GEMMs (pyconv's packed GEMM tile, conv_gemm.h) into its buffer
 * M, output transform into the result - so the transformed data stays in the
 * thread's cache, never going through memory.
 *
 * Transforms vectorise across tiles: lane l of a vector is tile j0 + l. The
 * matrices are Toom-Cook's at the points 0, 1, -1 (F2) and 0, 1, -1, 1/2, -2
 * (F4), and infinity; the point 1/2 instead of Lavin's 2 halves the float32
 * rounding error of F4 (Barabasz et al., arXiv:1803.10986), measured on VGG
 * and ResNet layers. The data transform B^T has small integer entries; the
 * fractions sit in G, which is applied in double precision to the filters.
 * The transform loops run over the tables and are unrolled by the compiler,
 * which drops the zero entries and turns the unit ones into additions.
 *
 * Each value is computed by the same operations whatever the block or chunk it
 * falls in (tiles are independent lanes, the GEMM sums channels in order), so
 * results do not depend on the thread count. Bodies per element type and
 * instruction set come from winograd_body.h, as conv_gemm.h does. */
#ifndef PYCONV_WINOGRAD_H
#define PYCONV_WINOGRAD_H

#include <stddef.h>
#include <string.h>

#include "conv_gemm.h"

/* F(2x2, 3x3) at 0, 1, -1, infinity, and F(4x4, 3x3) at 0, 1, -1, 1/2, -2,
 * infinity, in 6x6 storage (F2 uses the top-left corner). */
static const double wg_bt2[6][6] = {
    {1, 0, -1, 0}, {0, 1, 1, 0}, {0, -1, 1, 0}, {0, -1, 0, 1}};
static const double wg_g2[6][3] = {
    {1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
static const double wg_at2[4][6] = {{1, 1, 1, 0}, {0, 1, -1, 1}};
static const double wg_bt4[6][6] = {
    {2, -3, -4, 3, 2, 0},  {0, -2, 1, 5, 2, 0},  {0, -2, 5, -1, -2, 0},
    {0, 2, 1, -2, -1, 0},  {0, 1, -2, -1, 2, 0}, {0, 2, -3, -4, 3, 2}};
static const double wg_g4[6][3] = {
    {1.0 / 2, 0, 0},
    {1.0 / 6, 1.0 / 6, 1.0 / 6},
    {1.0 / 6, -1.0 / 6, 1.0 / 6},
    {16.0 / 15, 8.0 / 15, 4.0 / 15},
    {1.0 / 30, -1.0 / 15, 2.0 / 15},
    {0, 0, 1.0 / 2}};
static const double wg_at4[4][6] = {
    {1, 1, 1, 1, 1, 0}, {0, 1, -1, 0.5, -2, 0}, {0, 1, 1, 0.25, 4, 0}, {0, 1, -1, 0.125, -8, 1}};

#define WG_BT(m, i, j) ((m) == 2 ? wg_bt2[i][j] : wg_bt4[i][j])
#define WG_AT(m, i, j) ((m) == 2 ? wg_at2[i][j] : wg_at4[i][j])

#if defined(__GNUC__) || defined(__clang__)
#define WG_INLINE static inline __attribute__((always_inline))
#define WG_UNROLL _Pragma("GCC unroll 8")
#else
#define WG_INLINE static inline
#define WG_UNROLL
#endif

/* The geometry of one call. Tile j (of n * th * tw, image-major, row-major within an
 * image) covers outputs (ty*m .. ty*m + m-1, tx*m .. tx*m + m-1) and reads the input
 * patch at rows ty*m - pt .., columns tx*m - pl .. (zeros outside the image). */
typedef struct {
    ptrdiff_t n, c, h, w, k, oh, ow, pt, pl, m, th, tw;
    ptrdiff_t ldv;       /* row stride of a block's V_t and M_t: >= tiles per block */
    ptrdiff_t ut;        /* distance between the transform points' filters in u */
    ptrdiff_t kc;        /* GEMM reduction block */
    const ptrdiff_t *off;  /* off[c] = c * ldv: row c of V_t, for the GEMM */
    const void *zero;      /* round_up(K, MR) zeros: the GEMM's bias */
} wg_plan;

#if CG_HAVE_X86_VARIANTS
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx2,fma"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx2,fma")
#endif
#define WG_VBYTES 64
#define WG_T float
#define WG_SUFFIX f32_avx512
#include "winograd_body.h"
#define WG_T double
#define WG_SUFFIX f64_avx512
#include "winograd_body.h"
#undef WG_VBYTES
#if defined(__clang__)
#pragma clang attribute pop
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#else
#pragma GCC pop_options
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#endif
#define WG_VBYTES 32
#define WG_T float
#define WG_SUFFIX f32_avx2
#include "winograd_body.h"
#define WG_T double
#define WG_SUFFIX f64_avx2
#include "winograd_body.h"
#undef WG_VBYTES
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#endif
/* the portable body: 16-byte vectors with GCC/Clang, one value at a time otherwise */
#if defined(__GNUC__) || defined(__clang__)
#define WG_VBYTES 16
#endif
#define WG_T float
#define WG_SUFFIX f32_base
#include "winograd_body.h"
#define WG_T double
#define WG_SUFFIX f64_base
#include "winograd_body.h"
#undef WG_VBYTES

/* Lanes of the transforms for instruction set isa and elem-byte values. */
static ptrdiff_t wg_lanes(int isa, size_t elem)
{
#if defined(__GNUC__) || defined(__clang__)
    return cg_vector_bytes(isa) / (ptrdiff_t)elem;
#else
    (void)isa, (void)elem;
    return 1;
#endif
}

/* One panel of MR filters of one channel, transformed (wg_filters of winograd_body.h). */
static void wg_filters_f32(int isa, int m, const float *w, ptrdiff_t sf, ptrdiff_t su,
                           ptrdiff_t sv, ptrdiff_t live, float *dst, ptrdiff_t ldt)
{
    CG_DISPATCH(wg_filters, f32, (m, w, sf, su, sv, live, dst, ldt));
}

static void wg_filters_f64(int isa, int m, const double *w, ptrdiff_t sf, ptrdiff_t su,
                           ptrdiff_t sv, ptrdiff_t live, double *dst, ptrdiff_t ldt)
{
    CG_DISPATCH(wg_filters, f64, (m, w, sf, su, sv, live, dst, ldt));
}

static void wg_item_f32(int isa, const wg_plan *p, ptrdiff_t j0, ptrdiff_t j1, ptrdiff_t f0,
                        ptrdiff_t mc, const float *x, const float *u, const float *bias,
                        float *out, float *work, ptrdiff_t *where)
{
    CG_DISPATCH(wg_item, f32, (p, j0, j1, f0, mc, x, u, bias, out, work, where));
}

static void wg_item_f64(int isa, const wg_plan *p, ptrdiff_t j0, ptrdiff_t j1, ptrdiff_t f0,
                        ptrdiff_t mc, const double *x, const double *u, const double *bias,
                        double *out, double *work, ptrdiff_t *where)
{
    CG_DISPATCH(wg_item, f64, (p, j0, j1, f0, mc, x, u, bias, out, work, where));
}

#endif
