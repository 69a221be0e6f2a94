/* Winograd minimal filtering for 3x3 convolutions, stride 1 (Lavin & Gray,
 * arXiv:1509.09308): F(2x2, 3x3) and F(4x4, 3x3), NCHW.
 *
 * Output tile y (m x m) of one filter and one channel is A^T [U . V] A, with
 * U = G g G^T (the 3x3 filter g, transformed once per call, or by each item for its
 * own filters where few items share them) and V = B^T d B
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
 * results do not depend on the thread count. The code is the template winograd_t.h,
 * compiled once per element type and CPU level (cpu_features.h), as conv_gemm_t.h is. */
#ifndef PYCONV_WINOGRAD_H
#define PYCONV_WINOGRAD_H

#include <stddef.h>
#include <string.h>

#include "conv_gemm.h"
#include "cpu_features.h"

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

/* Channels per call of wg_filters: it gathers its panel's 3x3s, this many channels of
 * each filter, into one buffer of WG_FILTER_CHANNELS*9 vectors of MR values (4.5 KiB of
 * floats), so that the arithmetic then loads whole vectors. */
#define WG_FILTER_CHANNELS 16

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
    ptrdiff_t ldv;       /* row stride of a block's V_t and M_t: >= tiles per block, which
                          * are at most the GEMM's panel width (V_t is read as a panel) */
    ptrdiff_t ut;        /* distance between the transform points' filters in u */
    ptrdiff_t k0;        /* the first filter that u holds (a multiple of MR) */
    ptrdiff_t kc;        /* GEMM reduction block */
    /* The filters (K, C, 3, 3) at element strides sf, sc, su, sv, or NULL. Given, the
     * items transform their own filters, a panel at a time, into the thread's work
     * (u is then unused): per call, where few blocks of tiles meet each filter, this
     * spares the round trip of all the transforms through memory. */
    const void *filters;
    ptrdiff_t sf, sc, su, sv;
    const void *zero;      /* round_up(K, MR) zeros: the GEMM's bias */
} wg_plan;

#define WG_DECLARE(TS, T, LEVEL)                                                              \
    void wg_filters_##TS##_##LEVEL(int m, const T *w, ptrdiff_t sf, ptrdiff_t sc, ptrdiff_t su, \
                                   ptrdiff_t sv, ptrdiff_t live, ptrdiff_t cn, T *dst,        \
                                   ptrdiff_t ldt);                                            \
    void wg_item_##TS##_##LEVEL(const wg_plan *p, ptrdiff_t j0, ptrdiff_t j1, ptrdiff_t f0,    \
                                ptrdiff_t mc, const T *x, const T *u, const T *bias, T *out,  \
                                T *work, ptrdiff_t *where);
CPU_EACH_VARIANT(WG_DECLARE)
#undef WG_DECLARE

/* Tiles per vector of the transforms at CPU level `level`, for elem-byte values. */
static inline ptrdiff_t wg_lanes(int level, size_t elem)
{
#if defined(__GNUC__) || defined(__clang__)
    return (ptrdiff_t)cpu_vector_bytes(level) / (ptrdiff_t)elem;
#else
    (void)level, (void)elem;
    return 1;
#endif
}

/* wg_filters_<TS> (one panel of MR filters of a run of channels, transformed) and wg_item_<TS>
 * (one work item; see winograd_t.h): the variant of the given level. */
#define wg_filters_f32(level, ...) CPU_DISPATCH(level, wg_filters, f32, (__VA_ARGS__))
#define wg_filters_f64(level, ...) CPU_DISPATCH(level, wg_filters, f64, (__VA_ARGS__))
#define wg_item_f32(level, ...) CPU_DISPATCH(level, wg_item, f32, (__VA_ARGS__))
#define wg_item_f64(level, ...) CPU_DISPATCH(level, wg_item, f64, (__VA_ARGS__))

#endif
