/* The vector pooling kernels of pool.h for one element type T at the avx2 or avx512 level:
 * a template, compiled once per (T, level) in a translation unit that setup.py generates
 * (see cpu_features.h); the portable level has none (the plane kernels serve it).
 *
 * They cover windows without padding or dilation, at most 3x3, with a
 * column stride of 1 or 2 (2x2 stride 2, 3x3 stride 2, 3x3 stride 1, ...):
 * every window tap is inside the input, so each output row is a few whole
 * vectors of output columns and one masked vector for the remainder, and a
 * stride-2 tap is split from two loaded vectors by one permute (for average
 * pooling, the taps of a window row share their loads, and windows that
 * overlap down the columns share each input row's taps: pool_avg_overlap_k).
 * The taps are combined in the oracles' order (row-major in the window for
 * the forward pass; output row-major for the gradient of average pooling),
 * and the mean is rounded as the division rounds (pool_quot_note in pool.h), so
 * results are bitwise those of the portable kernels of pool_planes_t.h, which
 * serve every other geometry and the portable level. (The gradient of max
 * pooling is a scalar scatter, pool_max_backward_rows, for every geometry: it
 * beats a vector gather.) The geometry is one that pool_simd_geometry accepts.
 */
#include "pool.h"

#if CPU_X86 && CPU_LEVEL != CPU_PORTABLE
#include <immintrin.h>

#if CPU_LEVEL == CPU_AVX512
#define POOL_OPS_AVX512(S, T, V, M, W, ps, RT, epi)                                             \
static inline M pool_mask_##S(ptrdiff_t n) { return (M)((1u << n) - 1u); }                    \
static inline V pool_load_##S(const T *p) { return _mm512_loadu_##ps(p); }                     \
static inline V pool_loadn_##S(const T *p, ptrdiff_t n)                                        \
{ return _mm512_maskz_loadu_##ps(pool_mask_##S(n), p); }                                       \
static inline void pool_store_##S(T *p, V v) { _mm512_storeu_##ps(p, v); }                     \
static inline void pool_storen_##S(T *p, V v, ptrdiff_t n)                                     \
{ _mm512_mask_storeu_##ps(p, pool_mask_##S(n), v); }                                           \
static inline V pool_zero_##S(void) { return _mm512_setzero_##ps(); }                          \
static inline V pool_set1_##S(T a) { return _mm512_set1_##ps(a); }                             \
static inline V pool_add_##S(V a, V b) { return _mm512_add_##ps(a, b); }                       \
static inline V pool_mul_##S(V a, V b) { return _mm512_mul_##ps(a, b); }                       \
static inline V pool_div_##S(V a, V b) { return _mm512_div_##ps(a, b); }                       \
/* s / d for an odd d, rounded as division rounds, from y = 1 / d rounded                    \
 * (pool_quot_note) */                                                                         \
static inline V pool_quot_##S(V s, V d, V y)                                                   \
{                                                                                            \
    V q = _mm512_mul_##ps(s, y), r = _mm512_fmsub_##ps(q, d, s);                             \
    return _mm512_mask_blend_##ps(_mm512_cmp_##ps##_mask(r, r, _CMP_UNORD_Q),                \
                                  _mm512_fnmadd_##ps(r, y, q), q);                           \
}                                                                                            \
/* b, or c where c is larger or the first NaN */                                             \
static inline V pool_take_##S(V b, V c)                                                        \
{                                                                                            \
    M k = _mm512_cmp_##ps##_mask(b, b, _CMP_ORD_Q);                                          \
    k = _mm512_mask_cmp_##ps##_mask(k, c, b, _CMP_NLE_UQ);                                   \
    return _mm512_mask_blend_##ps(k, b, c);                                                  \
}                                                                                            \
/* pool_take, and *at = code in the lanes where c is taken */                                 \
static inline V pool_take_at_##S(V b, V c, __m512i *at, RT code)                               \
{                                                                                            \
    M k = _mm512_cmp_##ps##_mask(b, b, _CMP_ORD_Q);                                          \
    k = _mm512_mask_cmp_##ps##_mask(k, c, b, _CMP_NLE_UQ);                                   \
    *at = _mm512_mask_mov_##epi(*at, k, _mm512_set1_##epi(code));                            \
    return _mm512_mask_blend_##ps(k, b, c);                                                  \
}                                                                                            \
static inline __m512i pool_izero_##S(void) { return _mm512_setzero_si512(); }                  \
static inline void pool_istore_##S(RT *p, __m512i v) { _mm512_storeu_si512(p, v); }            \
static inline V pool_even_##S(V lo, V hi)                                                      \
{ return _mm512_permutex2var_##ps(lo, pool_evens_##S(), hi); }                              \
/* lanes 1.. of e, then last */                                                              \
static inline V pool_next_##S(V e, T last)                                                     \
{                                                                                            \
    return _mm512_castsi512_##ps(_mm512_alignr_##epi(                                        \
        _mm512_cast##ps##_si512(_mm512_set1_##ps(last)), _mm512_cast##ps##_si512(e), 1));    \
}                                                                                            \
static inline V pool_odd_##S(V lo, V hi)                                                       \
{ return _mm512_permutex2var_##ps(lo, _mm512_add_##epi(pool_evens_##S(), _mm512_set1_##epi(1)), hi); } \
static inline V pool_ziplo_##S(V e, V o)                                                       \
{ return _mm512_permutex2var_##ps(e, pool_zip_##S(0), o); }                                    \
static inline V pool_ziphi_##S(V e, V o)                                                       \
{ return _mm512_permutex2var_##ps(e, pool_zip_##S(W / 2), o); }

/* lane j reads lane 2j of the pair (lo, hi) (2j + 1: add 1) */
static inline __m512i pool_evens_f32_avx512(void)
{
    return _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
}
static inline __m512i pool_evens_f64_avx512(void)
{
    return _mm512_setr_epi64(0, 2, 4, 6, 8, 10, 12, 14);
}
/* lanes e[a], o[a], e[a+1], o[a+1], ... of the pair (e, o) */
static inline __m512i pool_zip_f32_avx512(int a)
{
    return _mm512_setr_epi32(a, a + 16, a + 1, a + 17, a + 2, a + 18, a + 3, a + 19,
                             a + 4, a + 20, a + 5, a + 21, a + 6, a + 22, a + 7, a + 23);
}
static inline __m512i pool_zip_f64_avx512(int a)
{
    return _mm512_setr_epi64(a, a + 8, a + 1, a + 9, a + 2, a + 10, a + 3, a + 11);
}

#if TS_F32
POOL_OPS_AVX512(f32_avx512, float, __m512, __mmask16, 16, ps, int32_t, epi32)
#define V __m512
#define RT int32_t
#define POOL_W 16
#else
POOL_OPS_AVX512(f64_avx512, double, __m512d, __mmask8, 8, pd, int64_t, epi64)
#define V __m512d
#define RT int64_t
#define POOL_W 8
#endif
#define POOL_I __m512i

#else
/* ---- AVX2 ---- */
static inline __m256i pool_lanes_below(ptrdiff_t n)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
static inline __m256i pool_lanes_below64(ptrdiff_t n)
{
    return _mm256_cmpgt_epi64(_mm256_set1_epi64x(n), _mm256_setr_epi64x(0, 1, 2, 3));
}

/* a lane mask as float lanes (a double lane's mask sets both its halves) */
static inline __m256 pool_ps_mask(__m256 k) { return k; }

#define POOL_OPS_AVX2(S, T, V, ps, below, RT, set1, tops)                                      \
static inline V pool_load_##S(const T *p) { return _mm256_loadu_##ps(p); }                     \
static inline V pool_loadn_##S(const T *p, ptrdiff_t n)                                        \
{ return _mm256_maskload_##ps(p, below(n)); }                                                \
static inline void pool_store_##S(T *p, V v) { _mm256_storeu_##ps(p, v); }                     \
static inline void pool_storen_##S(T *p, V v, ptrdiff_t n)                                     \
{ _mm256_maskstore_##ps(p, below(n), v); }                                                   \
static inline V pool_zero_##S(void) { return _mm256_setzero_##ps(); }                          \
static inline V pool_set1_##S(T a) { return _mm256_set1_##ps(a); }                             \
static inline V pool_add_##S(V a, V b) { return _mm256_add_##ps(a, b); }                       \
static inline V pool_mul_##S(V a, V b) { return _mm256_mul_##ps(a, b); }                       \
static inline V pool_div_##S(V a, V b) { return _mm256_div_##ps(a, b); }                       \
/* s / d for an odd d, rounded as division rounds, from y = 1 / d rounded                    \
 * (pool_quot_note) */                                                                         \
static inline V pool_quot_##S(V s, V d, V y)                                                   \
{                                                                                            \
    V q = _mm256_mul_##ps(s, y), r = _mm256_fmsub_##ps(q, d, s);                             \
    return _mm256_blendv_##ps(_mm256_fnmadd_##ps(r, y, q), q, _mm256_cmp_##ps(r, r, _CMP_UNORD_Q)); \
}                                                                                            \
static inline V pool_take_##S(V b, V c)                                                        \
{                                                                                            \
    V k = _mm256_and_##ps(_mm256_cmp_##ps(b, b, _CMP_ORD_Q), _mm256_cmp_##ps(c, b, _CMP_NLE_UQ)); \
    return _mm256_blendv_##ps(b, c, k);                                                      \
}                                                                                            \
static inline V pool_take_at_##S(V b, V c, __m256i *at, RT code)                               \
{                                                                                            \
    V k = _mm256_and_##ps(_mm256_cmp_##ps(b, b, _CMP_ORD_Q), _mm256_cmp_##ps(c, b, _CMP_NLE_UQ)); \
    *at = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(*at),                    \
                                               _mm256_castsi256_ps(set1(code)), tops(k)));   \
    return _mm256_blendv_##ps(b, c, k);                                                      \
}                                                                                            \
static inline __m256i pool_izero_##S(void) { return _mm256_setzero_si256(); }                  \
static inline void pool_istore_##S(RT *p, __m256i v) { _mm256_storeu_si256((__m256i *)p, v); }

/* even and odd lanes of (lo, hi); (e, o) interleaved, first and second half */
static inline __m256 pool_even_f32_avx2(__m256 lo, __m256 hi)
{
    __m256 t = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(2, 0, 2, 0));
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(t), _MM_SHUFFLE(3, 1, 2, 0)));
}
static inline __m256d pool_even_f64_avx2(__m256d lo, __m256d hi)
{
    return _mm256_permute4x64_pd(_mm256_unpacklo_pd(lo, hi), _MM_SHUFFLE(3, 1, 2, 0));
}
/* lanes 1.. of e, then last */
static inline __m256 pool_next_f32_avx2(__m256 e, float last)
{
    __m256 r = _mm256_permutevar8x32_ps(e, _mm256_setr_epi32(1, 2, 3, 4, 5, 6, 7, 0));
    return _mm256_blend_ps(r, _mm256_set1_ps(last), 0x80);
}
static inline __m256d pool_next_f64_avx2(__m256d e, double last)
{
    return _mm256_blend_pd(_mm256_permute4x64_pd(e, _MM_SHUFFLE(0, 3, 2, 1)), _mm256_set1_pd(last),
                           0x8);
}
static inline __m256 pool_odd_f32_avx2(__m256 lo, __m256 hi)
{
    __m256 t = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(3, 1, 3, 1));
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(t), _MM_SHUFFLE(3, 1, 2, 0)));
}
static inline __m256d pool_odd_f64_avx2(__m256d lo, __m256d hi)
{
    return _mm256_permute4x64_pd(_mm256_unpackhi_pd(lo, hi), _MM_SHUFFLE(3, 1, 2, 0));
}
static inline __m256 pool_ziplo_f32_avx2(__m256 e, __m256 o)
{
    return _mm256_permute2f128_ps(_mm256_unpacklo_ps(e, o), _mm256_unpackhi_ps(e, o), 0x20);
}
static inline __m256 pool_ziphi_f32_avx2(__m256 e, __m256 o)
{
    return _mm256_permute2f128_ps(_mm256_unpacklo_ps(e, o), _mm256_unpackhi_ps(e, o), 0x31);
}
static inline __m256d pool_ziplo_f64_avx2(__m256d e, __m256d o)
{
    return _mm256_permute2f128_pd(_mm256_unpacklo_pd(e, o), _mm256_unpackhi_pd(e, o), 0x20);
}
static inline __m256d pool_ziphi_f64_avx2(__m256d e, __m256d o)
{
    return _mm256_permute2f128_pd(_mm256_unpacklo_pd(e, o), _mm256_unpackhi_pd(e, o), 0x31);
}

#if TS_F32
POOL_OPS_AVX2(f32_avx2, float, __m256, ps, pool_lanes_below, int32_t, _mm256_set1_epi32, pool_ps_mask)
#define V __m256
#define RT int32_t
#define POOL_W 8
#else
POOL_OPS_AVX2(f64_avx2, double, __m256d, pd, pool_lanes_below64, int64_t, _mm256_set1_epi64x,
            _mm256_castpd_ps)
#define V __m256d
#define RT int64_t
#define POOL_W 4
#endif
#define POOL_I __m256i
#endif


/* Lane j = p[j * SW] (SW 1 or 2), reading nothing at or past p + avail;
 * FULL: the caller knows all POOL_W * SW elements from p are readable. */
POOL_INLINE V VARIANT(pool_tap)(const T *p, ptrdiff_t avail, const int SW, const int FULL)
{
    if (SW == 1) return FULL || avail >= POOL_W ? VARIANT(pool_load)(p) : VARIANT(pool_loadn)(p, avail);
    if (FULL || avail >= 2 * POOL_W) return VARIANT(pool_even)(VARIANT(pool_load)(p), VARIANT(pool_load)(p + POOL_W));
    if (avail > POOL_W) return VARIANT(pool_even)(VARIANT(pool_load)(p), VARIANT(pool_loadn)(p + POOL_W, avail - POOL_W));
    return VARIANT(pool_even)(VARIANT(pool_loadn)(p, avail), VARIANT(pool_zero)());
}

/* Store the first n (1..POOL_W) lanes of v at p. */
POOL_INLINE void VARIANT(pool_put)(T *p, V v, ptrdiff_t n)
{
    if (n >= POOL_W) VARIANT(pool_store)(p, v);
    else VARIANT(pool_storen)(p, v, n);
}

/* s / n, rounded as division rounds, for div = n and inv = 1 / n rounded:
 * a multiplication where n is a power of two, pool_quot where it is odd. */
POOL_INLINE V VARIANT(pool_mean)(V s, V div, V inv, const int n)
{
    if ((n & (n - 1)) == 0) return VARIANT(pool_mul)(s, inv);
    return n & 1 ? VARIANT(pool_quot)(s, div, inv) : VARIANT(pool_div)(s, div);
}

/* One vector of outputs whose windows start at p (a row w wide, avail
 * elements left in it): the taps in row-major window order combined by max
 * (first maximum or first NaN wins). */
POOL_INLINE V VARIANT(pool_window)(const T *p, ptrdiff_t w, ptrdiff_t avail, const int FH,
                            const int FW, const int SW, const int FULL)
{
    V b = VARIANT(pool_tap)(p, avail, SW, FULL);
    POOL_UNROLL
    for (int t = 1; t < FH * FW; t++) {
        const int u = t / FW, v = t % FW;
        V c = VARIANT(pool_tap)(p + u * w + v, avail - v, SW, FULL);
        b = VARIANT(pool_take)(b, c);
    }
    return b;
}

/* (*lo, *hi) = the POOL_W elements from p and the POOL_W after them, reading nothing at
 * or past p + avail (zeros there); FULL: all are readable. */
POOL_INLINE void VARIANT(pool_pair)(const T *p, ptrdiff_t avail, const int FULL, V *lo, V *hi)
{
    if (FULL || avail >= 2 * POOL_W) {
        *lo = VARIANT(pool_load)(p);
        *hi = VARIANT(pool_load)(p + POOL_W);
    } else if (avail > POOL_W) {
        *lo = VARIANT(pool_load)(p);
        *hi = VARIANT(pool_loadn)(p + POOL_W, avail - POOL_W);
    } else {
        *lo = VARIANT(pool_loadn)(p, avail);
        *hi = VARIANT(pool_zero)();
    }
}

/* t[v] (v < FW), lane l = p[l * SW + v]: the FW taps of one input row for
 * POOL_W output columns whose windows start at p (avail elements readable
 * from p). At stride 2 all come from the same two loaded vectors (and one
 * element), which would otherwise be split loads. */
POOL_INLINE void VARIANT(pool_row_taps)(const T *p, ptrdiff_t avail, const int FW, const int SW,
                                 const int FULL, V *t)
{
    if (SW == 1) {
        POOL_UNROLL
        for (int v = 0; v < FW; v++) t[v] = VARIANT(pool_tap)(p + v, avail - v, 1, FULL);
        return;
    }
    V lo, hi;
    VARIANT(pool_pair)(p, avail, FULL, &lo, &hi);
    t[0] = VARIANT(pool_even)(lo, hi);
    if (FW > 1) t[1] = VARIANT(pool_odd)(lo, hi);
    /* tap 2 is tap 0 a lane on, and the element after the two vectors */
    if (FW > 2) t[2] = VARIANT(pool_next)(t[0], FULL || avail > 2 * POOL_W ? p[2 * POOL_W] : (T)0);
}

/* pool_window's windows summed from zero in row-major window order, each
 * window row's taps from pool_row_taps. */
POOL_INLINE V VARIANT(pool_window_sum)(const T *p, ptrdiff_t w, ptrdiff_t avail, const int FH,
                                const int FW, const int SW, const int FULL)
{
    V b = VARIANT(pool_zero)();
    POOL_UNROLL
    for (int u = 0; u < FH; u++) {
        V t[3];
        VARIANT(pool_row_taps)(p + u * w, avail, FW, SW, FULL, t);
        POOL_UNROLL
        for (int v = 0; v < FW; v++) b = VARIANT(pool_add)(b, t[v]);
    }
    return b;
}

/* pool_window for max pooling that also sets *at, in each lane, to the winner's
 * offset u * w + v from its window's corner (its tap, in the same order). */
POOL_INLINE V VARIANT(pool_window_at)(const T *p, ptrdiff_t w, ptrdiff_t avail, const int FH,
                               const int FW, const int SW, const int FULL, POOL_I *at)
{
    V b = VARIANT(pool_tap)(p, avail, SW, FULL);
    POOL_I a = VARIANT(pool_izero)();
    POOL_UNROLL
    for (int t = 1; t < FH * FW; t++) {
        const int u = t / FW, v = t % FW;
        V c = VARIANT(pool_tap)(p + u * w + v, avail - v, SW, FULL);
        b = VARIANT(pool_take_at)(b, c, &a, (RT)(u * w + v));
    }
    *at = a;
    return b;
}

/* q[l] = corner + l * SW + at[l] for the first n (1..POOL_W) lanes: flat indices of the
 * winners of windows whose corners are SW apart from corner on. */
POOL_INLINE void VARIANT(pool_put_at)(int64_t *q, POOL_I at, int64_t corner, const int SW, ptrdiff_t n)
{
    RT a[POOL_W];
    VARIANT(pool_istore)(a, at);
    if (n >= POOL_W) n = POOL_W;
    for (ptrdiff_t l = 0; l < n; l++) q[l] = corner + l * SW + (int64_t)a[l];
}

/* The plane for an FH x FW window, column stride SW: whole vectors of
 * output columns while every tap's loads stay inside the row, then masked
 * ones. The mean is the sum divided by the window size (pool_mean). Each
 * output row
 * first prefetches the SH input rows it advances by, POOL_PREFETCH bytes
 * ahead: the hardware prefetcher stops at page boundaries, and with the
 * input streaming from memory this cuts the time by about a third. */
POOL_INLINE void VARIANT(pool_simd_plane_k)(const T *x, const pool_geom *g, T *out, int64_t *idx,
                                     int64_t base, const int FH, const int FW, const int SW,
                                     const int AVG, const int IDX)
{
    const ptrdiff_t w = g->w, ow = g->ow;
    const V div = VARIANT(pool_set1)((T)(FH * FW)), inv = VARIANT(pool_set1)((T)1 / (T)(FH * FW));
    /* whole vectors j0 < full: (j0 + POOL_W) * SW + FW - 1 <= w */
    ptrdiff_t full = (w - (FW - 1)) / SW - POOL_W;
    if (full > ow - POOL_W) full = ow - POOL_W;
    for (ptrdiff_t i = 0; i < g->oh; i++) {
        const T *row = x + i * g->sh * w;
        T *o = out + i * ow;
        int64_t *q = IDX ? idx + i * ow : NULL;
        const int64_t corner = base + (int64_t)(i * g->sh * w);
        const char *ahead = (const char *)row + POOL_PREFETCH;
        for (ptrdiff_t b = 0; b < (ptrdiff_t)(g->sh * w * sizeof(T)); b += 64)
            __builtin_prefetch(ahead + b, 0, 3);
        ptrdiff_t j0 = 0;
        for (; j0 <= full; j0 += POOL_W) {
            V b;
            if (IDX) {
                POOL_I at;
                b = VARIANT(pool_window_at)(row + j0 * SW, w, w - j0 * SW, FH, FW, SW, 1, &at);
                VARIANT(pool_put_at)(q + j0, at, corner + j0 * SW, SW, POOL_W);
            } else {
                b = AVG ? VARIANT(pool_window_sum)(row + j0 * SW, w, w - j0 * SW, FH, FW, SW, 1)
                        : VARIANT(pool_window)(row + j0 * SW, w, w - j0 * SW, FH, FW, SW, 1);
            }
            if (AVG) b = VARIANT(pool_mean)(b, div, inv, FH * FW);
            VARIANT(pool_store)(o + j0, b);
        }
        for (; j0 < ow; j0 += POOL_W) {
            V b;
            if (IDX) {
                POOL_I at;
                b = VARIANT(pool_window_at)(row + j0 * SW, w, w - j0 * SW, FH, FW, SW, 0, &at);
                VARIANT(pool_put_at)(q + j0, at, corner + j0 * SW, SW, ow - j0);
            } else {
                b = AVG ? VARIANT(pool_window_sum)(row + j0 * SW, w, w - j0 * SW, FH, FW, SW, 0)
                        : VARIANT(pool_window)(row + j0 * SW, w, w - j0 * SW, FH, FW, SW, 0);
            }
            if (AVG) b = VARIANT(pool_mean)(b, div, inv, FH * FW);
            VARIANT(pool_put)(o + j0, b, ow - j0);
        }
    }
}

/* Means of output rows [i0, i1), columns j0 .. j0 + POOL_W - 1 (those below ow),
 * for windows that overlap down the columns (FH > SH): walking down, each
 * input row's taps are formed once and kept in registers for the FH - SH
 * windows below that still hold it. Each window is summed from zero in
 * row-major order, as pool_window does. On its way down the first column
 * block prefetches the rows of the next band, as many rows below. */
POOL_INLINE void VARIANT(pool_avg_column)(const T *x, ptrdiff_t w, ptrdiff_t i0, ptrdiff_t i1,
                                   ptrdiff_t j0, T *out, ptrdiff_t ow, V div, V inv,
                                   const int FH, const int FW, const int SH, const int SW,
                                   const int FULL)
{
    const ptrdiff_t avail = w - j0 * SW, ahead = (i1 - i0) * SH * w;
    const T *p = x + i0 * SH * w + j0 * SW;
    V t[3][3];
    POOL_UNROLL
    for (int u = 0; u < FH - SH; u++) VARIANT(pool_row_taps)(p + u * w, avail, FW, SW, FULL, t[u]);
    for (ptrdiff_t i = i0; i < i1; i++, p += SH * w) {
        POOL_UNROLL
        for (int u = FH - SH; u < FH; u++) {
            if (j0 == 0)
                for (ptrdiff_t c = 0; c < w; c += 64 / (ptrdiff_t)sizeof(T))
                    __builtin_prefetch(p + u * w + ahead + c, 0, 3);
            VARIANT(pool_row_taps)(p + u * w, avail, FW, SW, FULL, t[u]);
        }
        V b = VARIANT(pool_add)(VARIANT(pool_zero)(), t[0][0]);
        POOL_UNROLL
        for (int k = 1; k < FH * FW; k++) b = VARIANT(pool_add)(b, t[k / FW][k % FW]);
        b = VARIANT(pool_mean)(b, div, inv, FH * FW);
        VARIANT(pool_put)(out + i * ow + j0, b, ow - j0);
        POOL_UNROLL
        for (int u = 0; u < FH - SH; u++) {
            POOL_UNROLL
            for (int v = 0; v < FW; v++) t[u][v] = t[u + SH][v];
        }
    }
}

/* Average pooling where windows overlap down the columns (FH > SH: 3x3
 * stride 2): pool_avg_column over bands of output rows whose input rows fit
 * in POOL_BAND_BYTES, so that the column blocks after the first find them in
 * L1. Each input row's taps (loads and, at stride 2, permutes: the bulk of
 * the work) are formed once per column block instead of once per window
 * holding it, except for the FH - SH rows a band shares with the next. */
POOL_INLINE void VARIANT(pool_avg_overlap_k)(const T *x, const pool_geom *g, T *out, const int FH,
                                      const int FW, const int SH, const int SW)
{
    const ptrdiff_t w = g->w, ow = g->ow, oh = g->oh;
    const V div = VARIANT(pool_set1)((T)(FH * FW)), inv = VARIANT(pool_set1)((T)1 / (T)(FH * FW));
    ptrdiff_t band = ((ptrdiff_t)(POOL_BAND_BYTES / sizeof(T)) / w - (FH - SH)) / SH;
    if (band < 1) band = 1;
    /* whole vectors j0 <= full: (j0 + POOL_W) * SW + FW - 1 <= w */
    ptrdiff_t full = (w - (FW - 1)) / SW - POOL_W;
    if (full > ow - POOL_W) full = ow - POOL_W;
    for (ptrdiff_t i0 = 0; i0 < oh; i0 += band) {
        const ptrdiff_t i1 = i0 + band < oh ? i0 + band : oh;
        ptrdiff_t j0 = 0;
        for (; j0 <= full; j0 += POOL_W)
            VARIANT(pool_avg_column)(x, w, i0, i1, j0, out, ow, div, inv, FH, FW, SH, SW, 1);
        for (; j0 < ow; j0 += POOL_W)
            VARIANT(pool_avg_column)(x, w, i0, i1, j0, out, ow, div, inv, FH, FW, SH, SW, 0);
    }
}

/* out = window max (avg 0; with idx, also the flat indices of the maxima plus base) or mean
 * (avg 1); 0 if the window or stride has no vector kernel. */
int VARIANT(pool_simd_plane)(const T *x, const pool_geom *g, int avg, T *out, int64_t *idx,
                               int64_t base)
{
#define POOL_CASE(FH_, FW_, SW_)                                                       \
    if (g->fh == FH_ && g->fw == FW_ && g->sw == SW_) {                            \
        if (avg && FH_ > 1 && g->sh == 1) VARIANT(pool_avg_overlap_k)(x, g, out, FH_, FW_, 1, SW_); \
        else if (avg && FH_ > 2 && g->sh == 2)                                     \
            VARIANT(pool_avg_overlap_k)(x, g, out, FH_, FW_, 2, SW_);                   \
        else if (avg) VARIANT(pool_simd_plane_k)(x, g, out, NULL, 0, FH_, FW_, SW_, 1, 0); \
        else if (idx) VARIANT(pool_simd_plane_k)(x, g, out, idx, base, FH_, FW_, SW_, 0, 1); \
        else VARIANT(pool_simd_plane_k)(x, g, out, NULL, 0, FH_, FW_, SW_, 0, 0);        \
        return 1;                                                                  \
    }
#define POOL_CASES(FH_) POOL_CASE(FH_, 1, 1) POOL_CASE(FH_, 2, 1) POOL_CASE(FH_, 3, 1) \
                      POOL_CASE(FH_, 1, 2) POOL_CASE(FH_, 2, 2) POOL_CASE(FH_, 3, 2)
    POOL_CASES(1) POOL_CASES(2) POOL_CASES(3)
#undef POOL_CASES
#undef POOL_CASE
    return 0;
}

/* The gradient of average pooling by gathering: dx[r, c] sums, from zero
 * and in output row-major order as the oracle adds them, the share
 * dout[i, j] / (fh * fw) of each window (i, j) that covers (r, c). The
 * shares are laid out first, one padded row per output row; the caller
 * zeroes the scratch once per call and the kernel writes only columns
 * [0, ow) of these rows, so a window column outside [0, ow) adds an exact
 * zero. */
static inline void VARIANT(pool_avg_backward_k)(const T *dout, const pool_geom *g, T *val, T *dx,
                                           const int FW, const int SW)
{
    const ptrdiff_t h = g->h, w = g->w, oh = g->oh, ow = g->ow, fh = g->fh, sh = g->sh;
    const ptrdiff_t sl = pool_share_row(g), pad = POOL_MAX_LANES;
    const int pow2 = ((fh * FW) & (fh * FW - 1)) == 0;
    const T div = pow2 ? (T)1 / (T)(fh * FW) : (T)(fh * FW);
    for (ptrdiff_t i = 0; i < oh; i++) {
        T *s = val + i * sl + pad;
        const T *d = dout + i * ow;
        if (pow2) for (ptrdiff_t j = 0; j < ow; j++) s[j] = d[j] * div;
        else for (ptrdiff_t j = 0; j < ow; j++) s[j] = d[j] / div;
    }
#define POOL_TERM(acc, i, m) acc = VARIANT(pool_add)(acc, VARIANT(pool_load)(val + (i) * sl + pad + (m)))
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
            for (ptrdiff_t c0 = 0; c0 < w; c0 += POOL_W) {
                V acc = VARIANT(pool_zero)();
                for (ptrdiff_t i = ilo; i <= ihi; i++)
                    for (int t = FW - 1; t >= 0; t--) POOL_TERM(acc, i, c0 - t);
                VARIANT(pool_put)(d + c0, acc, w - c0);
            }
            continue;
        }
        /* column 2m: windows j = m - t, t = (FW-1)/2 .. 0;
         * column 2m + 1: j = m - t, t = (FW-2)/2 .. 0 */
        for (ptrdiff_t m0 = 0; 2 * m0 < w; m0 += POOL_W) {
            V even = VARIANT(pool_zero)(), odd = VARIANT(pool_zero)();
            const ptrdiff_t left = w - 2 * m0;
            for (ptrdiff_t i = ilo; i <= ihi; i++) {
                for (int t = (FW - 1) / 2; t >= 0; t--) POOL_TERM(even, i, m0 - t);
                for (int t = (FW - 2) / 2; FW >= 2 && t >= 0; t--) POOL_TERM(odd, i, m0 - t);
            }
            VARIANT(pool_put)(d + 2 * m0, VARIANT(pool_ziplo)(even, odd), left);
            if (left > POOL_W) VARIANT(pool_put)(d + 2 * m0 + POOL_W, VARIANT(pool_ziphi)(even, odd), left - POOL_W);
        }
    }
#undef POOL_TERM
}

int VARIANT(pool_simd_avg_backward)(const T *dout, const pool_geom *g, T *scratch, T *dx)
{
#define POOL_CASE(FW_, SW_)                                                                      \
    if (g->fw == FW_ && g->sw == SW_) {                                                      \
        VARIANT(pool_avg_backward_k)(dout, g, scratch, dx, FW_, SW_);                             \
        return 1;                                                                            \
    }
    POOL_CASE(1, 1) POOL_CASE(2, 1) POOL_CASE(3, 1) POOL_CASE(1, 2) POOL_CASE(2, 2) POOL_CASE(3, 2)
#undef POOL_CASE
    return 0;
}


#endif
