/* The packed GEMM tile of conv_gemm.h for one element type T and CPU level: a template,
 * compiled once per (T, level) in a translation unit that setup.py generates (see
 * cpu_features.h); the entry points are cg_gemm_<TS>_<LEVEL>, cg_gemm_same_<TS>_<LEVEL>
 * and cg_rows_gemm_<TS>_<LEVEL>.
 * Vectors are 64 bytes at avx512, 32 at avx2 and 16 (SSE2 width) in portable C. */
#include <stddef.h>
#include <string.h>

#include "conv_gemm.h"

#if CPU_LEVEL == CPU_PORTABLE || CPU_X86
#if defined(__GNUC__) || defined(__clang__)
#include "nhwc_vec_t.h" /* vectors of the level's width, and their transposes (nv_zip_rows) */

#if CPU_LEVEL == CPU_AVX512
#include <immintrin.h>
#define CG_VBYTES 64
#if TS_F32
#define CG_LOAD_MASKED(src, bits) _mm512_maskz_loadu_ps((__mmask16)(bits), (src))
#else
#define CG_LOAD_MASKED(src, bits) _mm512_maskz_loadu_pd((__mmask8)(bits), (src))
#endif
#elif CPU_LEVEL == CPU_AVX2
#include <immintrin.h>
#define CG_VBYTES 32
/* AVX2 masks its loads by the sign bit of each lane of a vector */
#if TS_F32
static inline __m256 cg_load_masked(const float *src, unsigned long long bits)
{
    const __m256i lane = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    __m256i set = _mm256_and_si256(_mm256_set1_epi32((int)bits), lane);
    return _mm256_maskload_ps(src, _mm256_cmpeq_epi32(set, lane));
}
#else
static inline __m256d cg_load_masked(const double *src, unsigned long long bits)
{
    const __m256i lane = _mm256_setr_epi64x(1, 2, 4, 8);
    __m256i set = _mm256_and_si256(_mm256_set1_epi64x((long long)bits), lane);
    return _mm256_maskload_pd(src, _mm256_cmpeq_epi64(set, lane));
}
#endif
#define CG_LOAD_MASKED cg_load_masked
#else
#define CG_VBYTES 16
#endif

#define CG_FMA(a, b, c) ((a) * (b) + (c))
#define CG_VL (CG_VBYTES / (ptrdiff_t)sizeof(T))
#define CG_MR (CG_VBYTES == 64 ? 8 : 4)
#define CG_NR (3 * CG_VL)
#define CG_V VARIANT(cg_vec)

/* alignment of one element: loads and stores may be unaligned */
typedef T CG_V __attribute__((vector_size(CG_VBYTES), aligned(sizeof(T))));

/* C (MR, NV vectors) at c, row stride ldc = A (MR, kc) @ B (kc, NV vectors) + (load_c ?
 * C : the bias, bias[i] for row i, or with col_bias the NV vectors at bias, one value
 * per column), A packed as kc columns of MR values, B as kc rows ldb values apart (NR
 * in a packed panel), of which the first NV vectors are used. Each value of C sums its
 * kc products in order, one fused multiply-add at a time. Meanwhile it asks for the
 * lines of npf rows of the next panel to pack (NR values at pf + pfo[k], k < npf): rows
 * of the columns lie in as many places as the kernel has taps, too many for the
 * hardware's prefetchers, and asked for here they arrive while the tiles compute. */
#define TILE(NV)                                                                     \
static void VARIANT(cg_tile##NV)(ptrdiff_t kc, const T *a, const T *b, ptrdiff_t ldb, \
                               T *c, ptrdiff_t ldc, const T *bias, int col_bias,     \
                               int load_c, const T *pf, const ptrdiff_t *pfo,        \
                               ptrdiff_t npf)                                        \
{                                                                                       \
    CG_V acc[CG_MR][NV], bv[NV];                                                        \
    ptrdiff_t i, j, k;                                                                  \
    _Pragma("GCC unroll 8")                                                             \
    for (i = 0; i < CG_MR; i++)                                                         \
        _Pragma("GCC unroll 3")                                                         \
        for (j = 0; j < NV; j++)                                                        \
            acc[i][j] = load_c ? *(const CG_V *)(c + i * ldc + j * CG_VL)               \
                      : col_bias ? *(const CG_V *)(bias + j * CG_VL)                    \
                               : (CG_V){0} + bias[i];                                   \
    for (k = 0; k < kc; k++) {                                                          \
        if (k < npf) {                                                                  \
            __builtin_prefetch(pf + pfo[k], 0, 2);                                      \
            __builtin_prefetch(pf + pfo[k] + CG_VL, 0, 2);                              \
            __builtin_prefetch(pf + pfo[k] + 2 * CG_VL, 0, 2);                          \
            __builtin_prefetch(pf + pfo[k] + CG_NR - 1, 0, 2);                          \
        }                                                                               \
        _Pragma("GCC unroll 3")                                                         \
        for (j = 0; j < NV; j++)                                                        \
            bv[j] = *(const CG_V *)(b + j * CG_VL);                                     \
        _Pragma("GCC unroll 8")                                                         \
        for (i = 0; i < CG_MR; i++) {                                                   \
            const T ai = a[i];  /* broadcast by the vector arithmetic */             \
            _Pragma("GCC unroll 3")                                                     \
            for (j = 0; j < NV; j++)                                                    \
                acc[i][j] = CG_FMA(bv[j], ai, acc[i][j]);                               \
        }                                                                               \
        a += CG_MR;                                                                     \
        b += ldb;                                                                       \
    }                                                                                   \
    _Pragma("GCC unroll 8")                                                             \
    for (i = 0; i < CG_MR; i++)                                                         \
        _Pragma("GCC unroll 3")                                                         \
        for (j = 0; j < NV; j++)                                                        \
            *(CG_V *)(c + i * ldc + j * CG_VL) = acc[i][j];                             \
}
TILE(1)
TILE(2)
TILE(3)
#undef TILE

#ifdef CG_LOAD_MASKED
#define CG_LOAD_SOME(src, bits) ((CG_V)CG_LOAD_MASKED((src), (bits)))
#else
/* One vector: src[t] for the lanes t whose bit is set in bits, zero in the others
 * (which are never read). */
static inline CG_V VARIANT(cg_load_some)(const T *src, unsigned long long bits)
{
    CG_V v = {0};
    ptrdiff_t t;
    for (t = 0; t < CG_VL; t++)
        if (bits >> t & 1)
            v[t] = src[t];
    return v;
}
#define CG_LOAD_SOME(src, bits) VARIANT(cg_load_some)((src), (bits))
#endif

/* The tile of as few vectors as cover cols columns (all three from NR on), with the
 * arguments of cg_tile. */
static inline void VARIANT(cg_tile_cols)(ptrdiff_t cols, ptrdiff_t kc, const T *a, const T *b,
                                         ptrdiff_t ldb, T *c, ptrdiff_t ldc, const T *bias,
                                         int col_bias, int load_c, const T *pf,
                                         const ptrdiff_t *pfo, ptrdiff_t npf)
{
    if (cols <= CG_VL)
        VARIANT(cg_tile1)(kc, a, b, ldb, c, ldc, bias, col_bias, load_c, pf, pfo, npf);
    else if (cols <= 2 * CG_VL)
        VARIANT(cg_tile2)(kc, a, b, ldb, c, ldc, bias, col_bias, load_c, pf, pfo, npf);
    else
        VARIANT(cg_tile3)(kc, a, b, ldb, c, ldc, bias, col_bias, load_c, pf, pfo, npf);
}

/* The tiles of one packed panel of B (kc rows ldb values apart, of which the first cols
 * columns are used) against every A panel: out columns q*NR .. q*NR + cols - 1 of all
 * round_up(m, MR) rows, for reduction rows k0 .. k0 + kc - 1 of kk. The tiles share
 * out the prefetching of the next panel's rows, at pf + off[k0 + k] (none if pf is
 * NULL). */
static void VARIANT(cg_panel)(ptrdiff_t m, ptrdiff_t kk, ptrdiff_t k0, ptrdiff_t kc,
                            ptrdiff_t q, ptrdiff_t cols, const T *a, const T *pack,
                            ptrdiff_t ldb,
                            const T *bias, T *out, ptrdiff_t ldo, const T *pf,
                            const ptrdiff_t *off)
{
    ptrdiff_t blk, tiles = (m + CG_MR - 1) / CG_MR, share = (kc + tiles - 1) / tiles, npf;
    for (blk = 0; blk * CG_MR < m; blk++) {
        const T *ap = a + blk * kk * CG_MR + k0 * CG_MR;
        T *cp = out + blk * CG_MR * ldo + q * CG_NR;
        const T *bb = bias + blk * CG_MR;
        const ptrdiff_t *pfo = pf == NULL ? NULL : off + k0 + blk * share;
        npf = pf == NULL ? 0 : kc - blk * share < share ? kc - blk * share : share;
        npf = npf < 0 ? 0 : npf;
        /* the last panel: as few vectors as cover it */
        VARIANT(cg_tile_cols)(cols, kc, ap, pack, ldb, cp, ldo, bb, 0, k0 > 0, pf, pfo, npf);
    }
}

/* out (round_up(m, MR), round_up(n, NR)), row stride ldo, = bias + A @ B for rows
 * 0 .. m-1 and columns 0 .. n-1 (the rest is scratch), where A is packed filters
 * (ceil(m/MR) panels of (kk, MR)) and B(k, j) = b[off[k] + j]. The reduction runs in blocks of kc_max rows; each block of a panel
 * of NR columns is first copied into pack (kc_max * NR values), so that the tiles read
 * it from L1, contiguous, while the A block stays in L2. */
void VARIANT(cg_gemm)(ptrdiff_t m, ptrdiff_t n, ptrdiff_t kk, const T *a, const T *b,
                           const ptrdiff_t *off, const T *bias, T *out, ptrdiff_t ldo,
                           ptrdiff_t kc_max, T *pack)
{
    ptrdiff_t k0, kc, k, q, cols;
    for (k0 = 0; k0 < kk; k0 += kc_max) {
        kc = kk - k0 < kc_max ? kk - k0 : kc_max;
        for (q = 0; q * CG_NR < n; q++) {
            cols = n - q * CG_NR;
            for (k = 0; k < kc; k++) {
                const T *src = b + off[k0 + k] + q * CG_NR;
                CG_V *dst = (CG_V *)(pack + k * CG_NR);
                if (cols >= CG_NR) {
                    dst[0] = *(const CG_V *)src;
                    dst[1] = *(const CG_V *)(src + CG_VL);
                    dst[2] = *(const CG_V *)(src + 2 * CG_VL);
                }
                else  /* never read past column n - 1 */
                    memcpy(dst, src, cols * sizeof(T));
            }
            VARIANT(cg_panel)(m, kk, k0, kc, q, cols, a, pack, CG_NR, bias, out, ldo,
                            (q + 1) * CG_NR < n ? b + (q + 1) * CG_NR : NULL, off);
        }
    }
}

/* As cg_gemm, for a B that is already laid out as packed panels are: at most NR
 * columns, row k at b + k*ldb (ldb at least n; rows may start anywhere), read in place,
 * nothing copied. Each output sums its products in the same order as cg_gemm's. */
void VARIANT(cg_gemm_packed)(ptrdiff_t m, ptrdiff_t n, ptrdiff_t kk, const T *a, const T *b,
                             ptrdiff_t ldb, const T *bias, T *out, ptrdiff_t ldo,
                             ptrdiff_t kc_max)
{
    ptrdiff_t k0, kc;
    for (k0 = 0; k0 < kk; k0 += kc_max) {
        kc = kk - k0 < kc_max ? kk - k0 : kc_max;
        VARIANT(cg_panel)(m, kk, k0, kc, 0, n, a, b + k0 * ldb, ldb, bias, out, ldo, NULL,
                          NULL);
    }
}

/* Rows 0 .. m-1 of x (kk values each, row stride ldx) as the A panels of the tiles:
 * ceil(m / MR) panels of kk columns of MR values, zeros for rows past m. A whole panel is
 * transposed a vector's columns at a time in registers (nv_zip_rows of nhwc_vec_t.h,
 * under GCC), which leaves each column's MR values in order, one column after another
 * (float32 in L2: 0.08 ns a value, against 0.29 moved one value at a time). */
static void VARIANT(cg_pack_rows)(const T *x, ptrdiff_t ldx, ptrdiff_t m, ptrdiff_t kk,
                                  T *a)
{
    ptrdiff_t p, c, i;
    for (p = 0; p * CG_MR < m; p++) {
        const T *src = x + p * CG_MR * ldx;
        T *dst = a + p * CG_MR * kk;
        const ptrdiff_t rows = m - p * CG_MR < CG_MR ? m - p * CG_MR : CG_MR;
        c = 0;
#ifdef NV_ZIP
        if (rows == CG_MR)
            for (; c + NV_LANES <= kk; c += NV_LANES) {
                NV v[CG_MR];
                _Pragma("GCC unroll 8")
                for (i = 0; i < CG_MR; i++) v[i] = VARIANT(nv_load)(src + i * ldx + c);
                VARIANT(nv_zip_rows)(v, CG_MR);
                _Pragma("GCC unroll 8")
                for (i = 0; i < CG_MR; i++)
                    VARIANT(nv_store)(dst + c * CG_MR + i * NV_LANES, v[i]);
            }
#endif
        for (; c < kk; c++)
            for (i = 0; i < CG_MR; i++)
                dst[c * CG_MR + i] = i < rows ? src[i * ldx + c] : 0;
    }
}

/* out (m, n), row stride ldo, = bias + x (m, kk), row stride ldx, @ B: the product of a
 * block of pixels by the filters of a 1x1 layer, channels last (rows are pixels, columns
 * output channels). B is packed as ceil(n / NR) panels of kk rows of NR values, and the
 * bias is one value per column, both zero past column n. x is first packed into a
 * (round_up(m, MR) * kk values); then, for each panel of B and each block of kc_max
 * reduction rows, every A panel's tile, which reads the block of B (in L1) and its A
 * panel (in L2) and keeps its MR x NR sums in registers. The tiles write whole MR x VL
 * blocks: out must hold round_up(m, MR) rows of round_up(n, VL) values. Each output sums
 * the bias, then its products in order. Meanwhile the tiles ask, a share each, for the
 * lines of the next block of pixels (next_bytes at next, none if next is NULL), which the
 * caller packs next: the hardware's prefetchers leave most of them to arrive while it
 * packs (float32, one core: packing took 14% of the time of 8x28x28x256 to 128). */
void VARIANT(cg_rows_gemm)(ptrdiff_t m, ptrdiff_t n, ptrdiff_t kk, const T *x, ptrdiff_t ldx,
                           const T *b, const T *bias, T *out, ptrdiff_t ldo,
                           ptrdiff_t kc_max, T *a, const T *next, ptrdiff_t next_bytes)
{
    const ptrdiff_t panels = (m + CG_MR - 1) / CG_MR, blocks = (kk + kc_max - 1) / kc_max;
    const ptrdiff_t tiles = (n + CG_NR - 1) / CG_NR * blocks * panels;
    const ptrdiff_t share = next == NULL ? 0 : ((next_bytes + 63) / 64 + tiles - 1) / tiles;
    const char *line = (const char *)next, *end = line + next_bytes;
    ptrdiff_t q, k0, kc, blk, l;
    VARIANT(cg_pack_rows)(x, ldx, m, kk, a);
    for (q = 0; q * CG_NR < n; q++)
        for (k0 = 0; k0 < kk; k0 += kc_max) {
            const ptrdiff_t cols = n - q * CG_NR;
            const T *bq = b + (q * kk + k0) * CG_NR, *bb = bias + q * CG_NR;
            kc = kk - k0 < kc_max ? kk - k0 : kc_max;
            for (blk = 0; blk < panels; blk++) {
                const T *ap = a + blk * kk * CG_MR + k0 * CG_MR;
                T *cp = out + blk * CG_MR * ldo + q * CG_NR;
                VARIANT(cg_tile_cols)(cols, kc, ap, bq, CG_NR, cp, ldo, bb, 1, k0 > 0, NULL,
                                      NULL, 0);
                for (l = 0; l < share && line < end; l++, line += 64)
                    __builtin_prefetch(line, 0, 2);
            }
        }
}

/* As cg_gemm, for a stride-1 convolution whose output rows are as wide as the input's
 * (w == OW, a "same" padding), read straight from the unpadded planes of a run of
 * images: column j is position p0 + j of the run's images laid end to end, plane
 * (p0 + j) / np position (p0 + j) % np, and B(k, j) is b[img*istride + off[k] + pos]
 * where that pixel lies inside the image, else zero. Row k is tap (u, v) =
 * (k / fw % fh, k % fw), whose pixel row is inside the image for positions
 * [(pt - u*dh)*w, (h + pt - u*dh)*w), and whose pixel column is inside it where
 * colmask[r*fw + v] has bit t set, for the position r + t (r < w). Lanes outside the
 * image are never read; a panel that spans images merges one masked load per image. */
void VARIANT(cg_gemm_same)(ptrdiff_t m, ptrdiff_t n, ptrdiff_t kk, const T *a,
                                const T *b, ptrdiff_t istride, ptrdiff_t np,
                                const ptrdiff_t *off, const T *bias, T *out,
                                ptrdiff_t ldo, ptrdiff_t kc_max, T *pack, ptrdiff_t p0,
                                ptrdiff_t h, ptrdiff_t w, ptrdiff_t fh, ptrdiff_t fw,
                                ptrdiff_t dh, ptrdiff_t pt, const unsigned long long *colmask)
{
    typedef long long CG_VI __attribute__((vector_size(CG_VBYTES)));
    const unsigned long long lane = (1ULL << CG_VL) - 1, all = (1ULL << CG_NR) - 1;
    /* the panel's lanes in runs, one per image: lane t of run r (lo[r] <= t < hi[r]) is
     * position start[r] + t of the image whose planes begin at base[r] */
    const T *base[CG_NR];
    const unsigned long long *cm[CG_NR];
    ptrdiff_t start[CG_NR], lo[CG_NR], hi[CG_NR];
    unsigned long long rows[CG_NR], bits;
    ptrdiff_t k0, kc, k, q, cols, u, v, r, runs, t, at, a_, b_;
    for (k0 = 0; k0 < kk; k0 += kc_max) {
        kc = kk - k0 < kc_max ? kk - k0 : kc_max;
        for (q = 0; q * CG_NR < n; q++) {
            cols = n - q * CG_NR < CG_NR ? n - q * CG_NR : CG_NR;
            for (runs = 0, t = 0; t < cols; runs++, t = hi[runs - 1]) {
                at = p0 + q * CG_NR + t;
                start[runs] = at % np - t;
                lo[runs] = t;
                hi[runs] = t + np - at % np < cols ? t + np - at % np : cols;
                base[runs] = b + at / np * istride + start[runs];
                cm[runs] = colmask + (start[runs] % w + w) % w * fw;
            }
            u = k0 / fw % fh;
            v = k0 % fw;
            for (k = 0; k < kc; k++) {
                CG_V *dst = (CG_V *)(pack + k * CG_NR);
                if (k == 0 || v == 0)  /* a new tap row: its lanes inside the image */
                    for (r = 0; r < runs; r++) {
                        a_ = (pt - u * dh) * w - start[r];
                        b_ = (h + pt - u * dh) * w - start[r];
                        a_ = a_ < lo[r] ? lo[r] : a_ > hi[r] ? hi[r] : a_;
                        b_ = b_ < a_ ? a_ : b_ > hi[r] ? hi[r] : b_;
                        rows[r] = b_ > a_ ? ((1ULL << (b_ - a_)) - 1) << a_ : 0;
                    }
                bits = rows[0] & cm[0][v];
                if (runs == 1 && bits == all) {
                    const T *src = base[0] + off[k0 + k];
                    dst[0] = *(const CG_V *)src;
                    dst[1] = *(const CG_V *)(src + CG_VL);
                    dst[2] = *(const CG_V *)(src + 2 * CG_VL);
                }
                else if (runs == 1) {  /* one image, lanes at its edges left zero */
                    const T *src = base[0] + off[k0 + k];
                    dst[0] = CG_LOAD_SOME(src, bits & lane);
                    dst[1] = CG_LOAD_SOME(src + CG_VL, bits >> CG_VL & lane);
                    dst[2] = CG_LOAD_SOME(src + 2 * CG_VL, bits >> 2 * CG_VL & lane);
                }
                else {
                    CG_VI acc[3] = {{0}, {0}, {0}};
                    for (r = 0; r < runs; r++) {
                        const T *src = base[r] + off[k0 + k];
                        bits = rows[r] & cm[r][v];
                        for (t = 0; t < 3; t++)
                            if (bits >> t * CG_VL & lane)  /* disjoint lanes: merge bits */
                                acc[t] |= (CG_VI)CG_LOAD_SOME(src + t * CG_VL,
                                                              bits >> t * CG_VL & lane);
                    }
                    dst[0] = (CG_V)acc[0];
                    dst[1] = (CG_V)acc[1];
                    dst[2] = (CG_V)acc[2];
                }
                if (++v == fw) {
                    v = 0;
                    if (++u == fh)
                        u = 0;
                }
            }
            /* the next panel's rows, as if it lay in the same image */
            VARIANT(cg_panel)(m, kk, k0, kc, q, cols, a, pack, CG_NR, bias, out, ldo,
                            (q + 1) * CG_NR < n ? base[0] + CG_NR : NULL, off);
        }
    }
}

#else
/* No vector extensions: the same packed layout (4 x 12 floats, 4 x 6 doubles), one value at
 * a time, each output summing its products in order. */
void VARIANT(cg_gemm)(ptrdiff_t m, ptrdiff_t n, ptrdiff_t kk, const T *a, const T *b,
                      const ptrdiff_t *off, const T *bias, T *out, ptrdiff_t ldo,
                      ptrdiff_t kc_max, T *pack)
{
    ptrdiff_t i, j, k;
    for (i = 0; i < m; i++)
        for (j = 0; j < n; j++) {
            T acc = bias[i];
            for (k = 0; k < kk; k++)
                acc += a[(i / 4 * kk + k) * 4 + i % 4] * b[off[k] + j];
            out[i * ldo + j] = acc;
        }
}

void VARIANT(cg_gemm_packed)(ptrdiff_t m, ptrdiff_t n, ptrdiff_t kk, const T *a, const T *b,
                             ptrdiff_t ldb, const T *bias, T *out, ptrdiff_t ldo,
                             ptrdiff_t kc_max)
{
    ptrdiff_t i, j, k;
    (void)kc_max;
    for (i = 0; i < m; i++)
        for (j = 0; j < n; j++) {
            T acc = bias[i];
            for (k = 0; k < kk; k++)
                acc += a[(i / 4 * kk + k) * 4 + i % 4] * b[k * ldb + j];
            out[i * ldo + j] = acc;
        }
}

void VARIANT(cg_rows_gemm)(ptrdiff_t m, ptrdiff_t n, ptrdiff_t kk, const T *x, ptrdiff_t ldx,
                           const T *b, const T *bias, T *out, ptrdiff_t ldo,
                           ptrdiff_t kc_max, T *a, const T *next, ptrdiff_t next_bytes)
{
    const ptrdiff_t nr = 48 / (ptrdiff_t)sizeof(T);
    ptrdiff_t i, j, k;
    (void)kc_max;
    (void)a;
    (void)next;
    (void)next_bytes;
    for (i = 0; i < m; i++)
        for (j = 0; j < n; j++) {
            T acc = bias[j];
            for (k = 0; k < kk; k++)
                acc += x[i * ldx + k] * b[(j / nr * kk + k) * nr + j % nr];
            out[i * ldo + j] = acc;
        }
}

void VARIANT(cg_gemm_same)(ptrdiff_t m, ptrdiff_t n, ptrdiff_t kk, const T *a, const T *b,
                           ptrdiff_t istride, ptrdiff_t np, const ptrdiff_t *off,
                           const T *bias, T *out, ptrdiff_t ldo, ptrdiff_t kc_max, T *pack,
                           ptrdiff_t p0, ptrdiff_t h, ptrdiff_t w, ptrdiff_t fh, ptrdiff_t fw,
                           ptrdiff_t dh, ptrdiff_t pt, const unsigned long long *colmask)
{
    ptrdiff_t i, j, k, row, pos;
    for (i = 0; i < m; i++)
        for (j = 0; j < n; j++) {
            T acc = bias[i];
            pos = (p0 + j) % np;
            for (k = 0; k < kk; k++) {
                row = pos / w + k / fw % fh * dh - pt;
                if (row >= 0 && row < h && colmask[pos % w * fw + k % fw] & 1)
                    acc += a[(i / 4 * kk + k) * 4 + i % 4]
                           * b[(p0 + j) / np * istride + off[k] + pos];
            }
            out[i * ldo + j] = acc;
        }
}
#endif
#endif
