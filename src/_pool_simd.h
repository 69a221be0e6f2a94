/* Vector pooling kernels for the common geometries, in AVX-512 and AVX2.
 *
 * They cover windows without padding or dilation, at most 3x3, with a
 * column stride of 1 or 2 (2x2 stride 2, 3x3 stride 2, 3x3 stride 1, ...):
 * every window tap is inside the input, so each output row is a few whole
 * vectors of output columns and one masked vector for the remainder, and a
 * stride-2 tap is split from two loaded vectors by one permute (for average
 * pooling, the taps of a window row share their loads, and windows that
 * overlap down the columns share each input row's taps: pv_avg_overlap_k).
 * The taps are combined in the oracles' order (row-major in the window for
 * the forward pass; output row-major for the gradient of average pooling),
 * and the mean is rounded as the division rounds (pv_quot_note), so
 * results are bitwise those of the portable kernels of _pool_planes.h, which
 * serve every other geometry and CPUs without these instruction sets. (The
 * gradient of max pooling is a scalar scatter, pc_max_backward_rows, for
 * every geometry: it beats a vector gather.)
 *
 * The instruction set is chosen at run time with __builtin_cpu_supports;
 * tests force each one the CPU has (pc_forced_isa) to compare them.
 */
#ifndef PYCONV_POOL_SIMD_H
#define PYCONV_POOL_SIMD_H

#include "_pool_planes.h"

#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
#define PV_X86 1
#include <immintrin.h>
#else
#define PV_X86 0
#endif

enum { PV_ISA_BASELINE = 0, PV_ISA_AVX2 = 1, PV_ISA_AVX512 = 2 };

/* Most lanes of any variant (AVX-512 float): scratch is padded by this much. */
#define PV_MAX_LANES 16

/* pv_avg_overlap_k: bytes of input rows a band of output rows reads (they
 * stay in L1 from one column block to the next). */
#define PV_BAND_BYTES 4096

/* How far ahead of the rows it reads the forward kernel prefetches (bytes). */
#define PV_PREFETCH 8192

/* -1: the best the CPU has; otherwise the variant tests asked for. */
static int pc_forced_isa = -1;

static int pc_cpu_isa(void)
{
#if PV_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq"))
        return PV_ISA_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return PV_ISA_AVX2;
#endif
    return PV_ISA_BASELINE;
}

static int pc_isa(void)
{
    return pc_forced_isa >= 0 ? pc_forced_isa : pc_cpu_isa();
}

/* Whether the vector kernels serve this geometry: no top or left padding and
 * no dilation, every window inside the input (bottom or right padding, or a
 * ceil-mode window, may add only outputs it does not reach), a window at most
 * 3x3, column stride 1 or 2 (and rows short enough that a tap's offset
 * 2 * w + 2 fits the 32-bit lanes that track float maxima). */
static int pc_simd_geometry(const pc_geom *g)
{
    return g->top == 0 && g->left == 0 && g->dh == 1 && g->dw == 1 && g->fh <= 3 && g->fw <= 3
        && g->fh <= g->h && g->fw <= g->w /* so every window lies inside the input */
        && g->w <= ((ptrdiff_t)1 << 29)
        && (g->sw == 1 || g->sw == 2) && (g->h - g->fh) / g->sh + 1 == g->oh
        && (g->w - g->fw) / g->sw + 1 == g->ow;
}

/* The vector gradient's scratch: per output row, a row of shares padded on
 * both sides; zeroed by the caller before the first plane. */
static ptrdiff_t pc_share_row(const pc_geom *g)
{
    ptrdiff_t cols = (g->w + g->sw - 1) / g->sw;
    return PV_MAX_LANES + (cols > g->ow ? cols : g->ow) + PV_MAX_LANES;
}

static ptrdiff_t pc_share_size(const pc_geom *g)
{
    return g->oh * pc_share_row(g);
}

/* pv_quot_note: the mean divides the window sum s by d = fh * fw. A vector
 * division costs 5 to 16 cycles a vector, as much as the rest of the
 * window, so where d is odd (3, 9) it is done by a multiplication and two
 * FMAs that round exactly as the division does: with y = RN(1/d),
 * q = RN(s * y) and the exact residual r = q * d - s, RN(q - r * y) is
 * RN(s / d) (Markstein's theorem) as long as y is within half an ulp of 1/d
 * and q within one ulp of s/d. For d = 3 and 9, y's relative error is at
 * most 2^-p-1 (p: the precision, 24 or 53), which keeps q within one ulp.
 * Where s / d is subnormal the grid is fixed-point, q is still within one
 * step and q - r * y within a 2^-p-1 fraction of a step of s / d, which
 * for an odd d is never half-way between two steps, so it rounds the same.
 * Zeros keep their sign; an infinite or NaN s gives a NaN residual, and
 * then q (+-inf or NaN) is the quotient. Tests compare it with the
 * division over every float32. A d that is a power of two is a
 * multiplication by its exact inverse; 6 is divided. */

/* Unroll the loop over window taps (at most 9) so the taps combine in registers. */
#if defined(__clang__)
#define PV_UNROLL _Pragma("clang loop unroll(full)")
#elif defined(__GNUC__) && __GNUC__ >= 8
#define PV_UNROLL _Pragma("GCC unroll 9")
#else
#define PV_UNROLL
#endif

#define PV_CAT2(a, b) a##_##b
#define PV_CAT(a, b) PV_CAT2(a, b)

#if PV_X86
/* ---- AVX-512 ---- */
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512dq,avx2"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx512dq,avx2")
#endif

#define PV_OPS_AVX512(S, T, V, M, W, ps, RT, epi)                                             \
static inline M pv_mask_##S(ptrdiff_t n) { return (M)((1u << n) - 1u); }                    \
static inline V pv_load_##S(const T *p) { return _mm512_loadu_##ps(p); }                     \
static inline V pv_loadn_##S(const T *p, ptrdiff_t n)                                        \
{ return _mm512_maskz_loadu_##ps(pv_mask_##S(n), p); }                                       \
static inline void pv_store_##S(T *p, V v) { _mm512_storeu_##ps(p, v); }                     \
static inline void pv_storen_##S(T *p, V v, ptrdiff_t n)                                     \
{ _mm512_mask_storeu_##ps(p, pv_mask_##S(n), v); }                                           \
static inline V pv_zero_##S(void) { return _mm512_setzero_##ps(); }                          \
static inline V pv_set1_##S(T a) { return _mm512_set1_##ps(a); }                             \
static inline V pv_add_##S(V a, V b) { return _mm512_add_##ps(a, b); }                       \
static inline V pv_mul_##S(V a, V b) { return _mm512_mul_##ps(a, b); }                       \
static inline V pv_div_##S(V a, V b) { return _mm512_div_##ps(a, b); }                       \
/* s / d for an odd d, rounded as division rounds, from y = 1 / d rounded                    \
 * (pv_quot_note) */                                                                         \
static inline V pv_quot_##S(V s, V d, V y)                                                   \
{                                                                                            \
    V q = _mm512_mul_##ps(s, y), r = _mm512_fmsub_##ps(q, d, s);                             \
    return _mm512_mask_blend_##ps(_mm512_cmp_##ps##_mask(r, r, _CMP_UNORD_Q),                \
                                  _mm512_fnmadd_##ps(r, y, q), q);                           \
}                                                                                            \
/* b, or c where c is larger or the first NaN */                                             \
static inline V pv_take_##S(V b, V c)                                                        \
{                                                                                            \
    M k = _mm512_cmp_##ps##_mask(b, b, _CMP_ORD_Q);                                          \
    k = _mm512_mask_cmp_##ps##_mask(k, c, b, _CMP_NLE_UQ);                                   \
    return _mm512_mask_blend_##ps(k, b, c);                                                  \
}                                                                                            \
/* pv_take, and *at = code in the lanes where c is taken */                                 \
static inline V pv_take_at_##S(V b, V c, __m512i *at, RT code)                               \
{                                                                                            \
    M k = _mm512_cmp_##ps##_mask(b, b, _CMP_ORD_Q);                                          \
    k = _mm512_mask_cmp_##ps##_mask(k, c, b, _CMP_NLE_UQ);                                   \
    *at = _mm512_mask_mov_##epi(*at, k, _mm512_set1_##epi(code));                            \
    return _mm512_mask_blend_##ps(k, b, c);                                                  \
}                                                                                            \
static inline __m512i pv_izero_##S(void) { return _mm512_setzero_si512(); }                  \
static inline void pv_istore_##S(RT *p, __m512i v) { _mm512_storeu_si512(p, v); }            \
static inline V pv_even_##S(V lo, V hi)                                                      \
{ return _mm512_permutex2var_##ps(lo, pv_evens_##S(), hi); }                              \
/* lanes 1.. of e, then last */                                                              \
static inline V pv_next_##S(V e, T last)                                                     \
{                                                                                            \
    return _mm512_castsi512_##ps(_mm512_alignr_##epi(                                        \
        _mm512_cast##ps##_si512(_mm512_set1_##ps(last)), _mm512_cast##ps##_si512(e), 1));    \
}                                                                                            \
static inline V pv_odd_##S(V lo, V hi)                                                       \
{ return _mm512_permutex2var_##ps(lo, _mm512_add_##epi(pv_evens_##S(), _mm512_set1_##epi(1)), hi); } \
static inline V pv_ziplo_##S(V e, V o)                                                       \
{ return _mm512_permutex2var_##ps(e, pv_zip_##S(0), o); }                                    \
static inline V pv_ziphi_##S(V e, V o)                                                       \
{ return _mm512_permutex2var_##ps(e, pv_zip_##S(W / 2), o); }

/* lane j reads lane 2j of the pair (lo, hi) (2j + 1: add 1) */
static inline __m512i pv_evens_f32_avx512(void)
{
    return _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
}
static inline __m512i pv_evens_f64_avx512(void)
{
    return _mm512_setr_epi64(0, 2, 4, 6, 8, 10, 12, 14);
}
/* lanes e[a], o[a], e[a+1], o[a+1], ... of the pair (e, o) */
static inline __m512i pv_zip_f32_avx512(int a)
{
    return _mm512_setr_epi32(a, a + 16, a + 1, a + 17, a + 2, a + 18, a + 3, a + 19,
                             a + 4, a + 20, a + 5, a + 21, a + 6, a + 22, a + 7, a + 23);
}
static inline __m512i pv_zip_f64_avx512(int a)
{
    return _mm512_setr_epi64(a, a + 8, a + 1, a + 9, a + 2, a + 10, a + 3, a + 11);
}
PV_OPS_AVX512(f32_avx512, float, __m512, __mmask16, 16, ps, int32_t, epi32)
PV_OPS_AVX512(f64_avx512, double, __m512d, __mmask8, 8, pd, int64_t, epi64)

#define T float
#define V __m512
#define PV_I __m512i
#define RT int32_t
#define PV_W 16
#define PV_SUF f32_avx512
#include "_pool_simd_t.h"
#define T double
#define V __m512d
#define PV_I __m512i
#define RT int64_t
#define PV_W 8
#define PV_SUF f64_avx512
#include "_pool_simd_t.h"

#if defined(__clang__)
#pragma clang attribute pop
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#else
#pragma GCC pop_options
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#endif

/* ---- AVX2 ---- */
static inline __m256i pv_lanes_below(ptrdiff_t n)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
static inline __m256i pv_lanes_below64(ptrdiff_t n)
{
    return _mm256_cmpgt_epi64(_mm256_set1_epi64x(n), _mm256_setr_epi64x(0, 1, 2, 3));
}

/* a lane mask as float lanes (a double lane's mask sets both its halves) */
static inline __m256 pv_ps_mask(__m256 k) { return k; }

#define PV_OPS_AVX2(S, T, V, ps, below, RT, set1, tops)                                      \
static inline V pv_load_##S(const T *p) { return _mm256_loadu_##ps(p); }                     \
static inline V pv_loadn_##S(const T *p, ptrdiff_t n)                                        \
{ return _mm256_maskload_##ps(p, below(n)); }                                                \
static inline void pv_store_##S(T *p, V v) { _mm256_storeu_##ps(p, v); }                     \
static inline void pv_storen_##S(T *p, V v, ptrdiff_t n)                                     \
{ _mm256_maskstore_##ps(p, below(n), v); }                                                   \
static inline V pv_zero_##S(void) { return _mm256_setzero_##ps(); }                          \
static inline V pv_set1_##S(T a) { return _mm256_set1_##ps(a); }                             \
static inline V pv_add_##S(V a, V b) { return _mm256_add_##ps(a, b); }                       \
static inline V pv_mul_##S(V a, V b) { return _mm256_mul_##ps(a, b); }                       \
static inline V pv_div_##S(V a, V b) { return _mm256_div_##ps(a, b); }                       \
/* s / d for an odd d, rounded as division rounds, from y = 1 / d rounded                    \
 * (pv_quot_note) */                                                                         \
static inline V pv_quot_##S(V s, V d, V y)                                                   \
{                                                                                            \
    V q = _mm256_mul_##ps(s, y), r = _mm256_fmsub_##ps(q, d, s);                             \
    return _mm256_blendv_##ps(_mm256_fnmadd_##ps(r, y, q), q, _mm256_cmp_##ps(r, r, _CMP_UNORD_Q)); \
}                                                                                            \
static inline V pv_take_##S(V b, V c)                                                        \
{                                                                                            \
    V k = _mm256_and_##ps(_mm256_cmp_##ps(b, b, _CMP_ORD_Q), _mm256_cmp_##ps(c, b, _CMP_NLE_UQ)); \
    return _mm256_blendv_##ps(b, c, k);                                                      \
}                                                                                            \
static inline V pv_take_at_##S(V b, V c, __m256i *at, RT code)                               \
{                                                                                            \
    V k = _mm256_and_##ps(_mm256_cmp_##ps(b, b, _CMP_ORD_Q), _mm256_cmp_##ps(c, b, _CMP_NLE_UQ)); \
    *at = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(*at),                    \
                                               _mm256_castsi256_ps(set1(code)), tops(k)));   \
    return _mm256_blendv_##ps(b, c, k);                                                      \
}                                                                                            \
static inline __m256i pv_izero_##S(void) { return _mm256_setzero_si256(); }                  \
static inline void pv_istore_##S(RT *p, __m256i v) { _mm256_storeu_si256((__m256i *)p, v); }
PV_OPS_AVX2(f32_avx2, float, __m256, ps, pv_lanes_below, int32_t, _mm256_set1_epi32, pv_ps_mask)
PV_OPS_AVX2(f64_avx2, double, __m256d, pd, pv_lanes_below64, int64_t, _mm256_set1_epi64x,
            _mm256_castpd_ps)

/* even and odd lanes of (lo, hi); (e, o) interleaved, first and second half */
static inline __m256 pv_even_f32_avx2(__m256 lo, __m256 hi)
{
    __m256 t = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(2, 0, 2, 0));
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(t), _MM_SHUFFLE(3, 1, 2, 0)));
}
static inline __m256d pv_even_f64_avx2(__m256d lo, __m256d hi)
{
    return _mm256_permute4x64_pd(_mm256_unpacklo_pd(lo, hi), _MM_SHUFFLE(3, 1, 2, 0));
}
/* lanes 1.. of e, then last */
static inline __m256 pv_next_f32_avx2(__m256 e, float last)
{
    __m256 r = _mm256_permutevar8x32_ps(e, _mm256_setr_epi32(1, 2, 3, 4, 5, 6, 7, 0));
    return _mm256_blend_ps(r, _mm256_set1_ps(last), 0x80);
}
static inline __m256d pv_next_f64_avx2(__m256d e, double last)
{
    return _mm256_blend_pd(_mm256_permute4x64_pd(e, _MM_SHUFFLE(0, 3, 2, 1)), _mm256_set1_pd(last),
                           0x8);
}
static inline __m256 pv_odd_f32_avx2(__m256 lo, __m256 hi)
{
    __m256 t = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(3, 1, 3, 1));
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(t), _MM_SHUFFLE(3, 1, 2, 0)));
}
static inline __m256d pv_odd_f64_avx2(__m256d lo, __m256d hi)
{
    return _mm256_permute4x64_pd(_mm256_unpackhi_pd(lo, hi), _MM_SHUFFLE(3, 1, 2, 0));
}
static inline __m256 pv_ziplo_f32_avx2(__m256 e, __m256 o)
{
    return _mm256_permute2f128_ps(_mm256_unpacklo_ps(e, o), _mm256_unpackhi_ps(e, o), 0x20);
}
static inline __m256 pv_ziphi_f32_avx2(__m256 e, __m256 o)
{
    return _mm256_permute2f128_ps(_mm256_unpacklo_ps(e, o), _mm256_unpackhi_ps(e, o), 0x31);
}
static inline __m256d pv_ziplo_f64_avx2(__m256d e, __m256d o)
{
    return _mm256_permute2f128_pd(_mm256_unpacklo_pd(e, o), _mm256_unpackhi_pd(e, o), 0x20);
}
static inline __m256d pv_ziphi_f64_avx2(__m256d e, __m256d o)
{
    return _mm256_permute2f128_pd(_mm256_unpacklo_pd(e, o), _mm256_unpackhi_pd(e, o), 0x31);
}

#define T float
#define V __m256
#define PV_I __m256i
#define RT int32_t
#define PV_W 8
#define PV_SUF f32_avx2
#include "_pool_simd_t.h"
#define T double
#define V __m256d
#define PV_I __m256i
#define RT int64_t
#define PV_W 4
#define PV_SUF f64_avx2
#include "_pool_simd_t.h"

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#endif /* PV_X86 */

/* Per element type: the vector kernel for the CPU (or the forced variant), or 0 where the
 * baseline is chosen and the caller runs the portable kernel. */
#if PV_X86
#define PV_DISPATCH(TS, name, args)                                                          \
    do {                                                                                     \
        int isa_ = pc_isa();                                                                 \
        if (isa_ == PV_ISA_AVX512) return PV_CAT(name, PV_CAT(TS, avx512)) args;           \
        if (isa_ == PV_ISA_AVX2) return PV_CAT(name, PV_CAT(TS, avx2)) args;               \
        return 0;                                                                            \
    } while (0)
#else
#define PV_DISPATCH(TS, name, args) return 0
#endif

#define PV_ENTRY_POINTS(TS, T)                                                               \
/* out (oh, ow) = window max (avg 0) or mean (avg 1) of x (h, w), and for max pooling with \
 * idx not NULL, idx (oh, ow) = base + the flat index in x of each maximum; 0 if not       \
 * handled */                                                                                \
static int pc_simd_pool_plane_##TS(const T *x, const pc_geom *g, int avg, T *out,            \
                                   int64_t *idx, int64_t base)                               \
{                                                                                            \
    PV_DISPATCH(TS, pv_pool_plane, (x, g, avg, out, idx, base));                             \
}                                                                                            \
/* Output rows [i0, i1) of pc_simd_pool_plane (base 0): out and idx point at the plane's     \
 * first row. */                                                                             \
static int pc_simd_pool_rows_##TS(const T *x, const pc_geom *g, int avg, ptrdiff_t i0,       \
                                  ptrdiff_t i1, T *out, int64_t *idx)                        \
{                                                                                            \
    pc_geom band = *g;                                                                       \
    band.oh = i1 - i0;                                                                       \
    return pc_simd_pool_plane_##TS(x + i0 * g->sh * g->w, &band, avg, out + i0 * g->ow,      \
                                   idx ? idx + i0 * g->ow : NULL,                            \
                                   (int64_t)(i0 * g->sh * g->w));                            \
}                                                                                            \
/* dx (h, w) = gradient of average pooling for dout (oh, ow); scratch:                      \
 * pc_share_size(g) zeroed elements. 0 if not handled (then dx is untouched). */             \
static int pc_simd_avg_backward_plane_##TS(const T *dout, const pc_geom *g, T *scratch,     \
                                           T *dx)                                            \
{                                                                                            \
    PV_DISPATCH(TS, pv_avg_backward_plane, (dout, g, scratch, dx));                          \
}
PV_ENTRY_POINTS(f32, float)
PV_ENTRY_POINTS(f64, double)

#endif
