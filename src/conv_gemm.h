/* GEMM for the im2col convolution: out (m, n) = bias + A (m, k) @ B (k, n), with A
 * the filters packed in panels of MR rows and B "implicit" columns: row k of B is
 * read at b + off[k], a shifted view of the (phase-split, padded) input, so the
 * columns are never copied out (see _conv_im2col.pyx).
 *
 * The tile keeps MR x 3 vectors of outputs in registers (8 x 48 floats with
 * AVX-512, 4 x 24 with AVX2, 4 x 12 with SSE2) and sums each output's products
 * in the reduction's order, so a value never depends on the block it falls in,
 * nor on the thread that computes it. The bodies are compiled once per element
 * type and instruction set with GCC/Clang target pragmas and chosen at run time
 * (the instruction-set numbers are those of conv_direct.h, so both kernels
 * follow pyconv._conv_direct.force_isa); other compilers get the SSE2-width
 * body in portable C. */
#ifndef PYCONV_CONV_GEMM_H
#define PYCONV_CONV_GEMM_H

#include <stddef.h>
#include <string.h>

#define CG_CAT2_(a, b) a##_##b
#define CG_CAT2(a, b) CG_CAT2_(a, b)

#if (defined(__GNUC__) || defined(__clang__))
#define CG_FMA(a, b, c) ((a) * (b) + (c))
#if defined(__x86_64__)
#define CG_HAVE_X86_VARIANTS 1
#include <immintrin.h>
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx2,fma"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx2,fma")
#endif
#define CG_VBYTES 64
#define CG_T float
#define CG_SUFFIX f32_avx512
#define CG_LOAD_MASKED(src, bits) _mm512_maskz_loadu_ps((__mmask16)(bits), (src))
#include "conv_gemm_body.h"
#define CG_T double
#define CG_SUFFIX f64_avx512
#define CG_LOAD_MASKED(src, bits) _mm512_maskz_loadu_pd((__mmask8)(bits), (src))
#include "conv_gemm_body.h"
#undef CG_VBYTES
#if defined(__clang__)
#pragma clang attribute pop
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#else
#pragma GCC pop_options
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#endif
/* AVX2 masks its loads by the sign bit of each lane of a vector */
static inline __m256 cg_load_masked_f32_avx2(const float *src, unsigned long long bits)
{
    const __m256i lane = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    __m256i set = _mm256_and_si256(_mm256_set1_epi32((int)bits), lane);
    return _mm256_maskload_ps(src, _mm256_cmpeq_epi32(set, lane));
}
static inline __m256d cg_load_masked_f64_avx2(const double *src, unsigned long long bits)
{
    const __m256i lane = _mm256_setr_epi64x(1, 2, 4, 8);
    __m256i set = _mm256_and_si256(_mm256_set1_epi64x((long long)bits), lane);
    return _mm256_maskload_pd(src, _mm256_cmpeq_epi64(set, lane));
}
#define CG_VBYTES 32
#define CG_T float
#define CG_SUFFIX f32_avx2
#define CG_LOAD_MASKED cg_load_masked_f32_avx2
#include "conv_gemm_body.h"
#define CG_T double
#define CG_SUFFIX f64_avx2
#define CG_LOAD_MASKED cg_load_masked_f64_avx2
#include "conv_gemm_body.h"
#undef CG_VBYTES
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#else
#define CG_HAVE_X86_VARIANTS 0
#endif
#define CG_VBYTES 16
#define CG_T float
#define CG_SUFFIX f32_base
#include "conv_gemm_body.h"
#define CG_T double
#define CG_SUFFIX f64_base
#include "conv_gemm_body.h"
#undef CG_VBYTES
#else
/* No vector extensions: the same packed layout (4 x 12 floats, 4 x 6 doubles), one
 * value at a time, each output summing its products in order. */
#define CG_HAVE_X86_VARIANTS 0
#define CG_SCALAR_GEMM(T, suffix)                                                       \
    static void cg_gemm_##suffix(ptrdiff_t m, ptrdiff_t n, ptrdiff_t kk, const T *a,  \
                                 const T *b, const ptrdiff_t *off, const T *bias,     \
                                 T *out, ptrdiff_t ldo, ptrdiff_t kc_max, T *pack)    \
    {                                                                                 \
        ptrdiff_t i, j, k;                                                            \
        for (i = 0; i < m; i++)                                                       \
            for (j = 0; j < n; j++) {                                                 \
                T acc = bias[i];                                                      \
                for (k = 0; k < kk; k++)                                              \
                    acc += a[(i / 4 * kk + k) * 4 + i % 4] * b[off[k] + j];           \
                out[i * ldo + j] = acc;                                               \
            }                                                                         \
    }
#define CG_SCALAR_GEMM_SAME(T, suffix)                                                  \
    static void cg_gemm_same_##suffix(ptrdiff_t m, ptrdiff_t n, ptrdiff_t kk, const T *a, \
                                      const T *b, ptrdiff_t istride, ptrdiff_t np,       \
                                      const ptrdiff_t *off, const T *bias,               \
                                      T *out, ptrdiff_t ldo, ptrdiff_t kc_max, T *pack,  \
                                      ptrdiff_t p0, ptrdiff_t h, ptrdiff_t w,            \
                                      ptrdiff_t fh, ptrdiff_t fw, ptrdiff_t dh,          \
                                      ptrdiff_t pt, const unsigned long long *colmask)  \
    {                                                                                 \
        ptrdiff_t i, j, k, row, pos;                                                  \
        for (i = 0; i < m; i++)                                                       \
            for (j = 0; j < n; j++) {                                                 \
                T acc = bias[i];                                                      \
                pos = (p0 + j) % np;                                                  \
                for (k = 0; k < kk; k++) {                                            \
                    row = pos / w + k / fw % fh * dh - pt;                            \
                    if (row >= 0 && row < h && colmask[pos % w * fw + k % fw] & 1)    \
                        acc += a[(i / 4 * kk + k) * 4 + i % 4]                        \
                               * b[(p0 + j) / np * istride + off[k] + pos];           \
                }                                                                     \
                out[i * ldo + j] = acc;                                               \
            }                                                                         \
    }
CG_SCALAR_GEMM(float, f32_base)
CG_SCALAR_GEMM(double, f64_base)
CG_SCALAR_GEMM_SAME(float, f32_base)
CG_SCALAR_GEMM_SAME(double, f64_base)
#endif

enum { CG_ISA_BASELINE = 0, CG_ISA_AVX2 = 1, CG_ISA_AVX512 = 2 };

/* Bytes of one vector of the body that instruction set `isa` runs. */
static ptrdiff_t cg_vector_bytes(int isa)
{
    if (CG_HAVE_X86_VARIANTS && isa == CG_ISA_AVX512) return 64;
    if (CG_HAVE_X86_VARIANTS && isa == CG_ISA_AVX2) return 32;
    return 16;
}

/* Rows (filters) per A panel and columns per B panel for `isa` and `elem`-byte values. */
static ptrdiff_t cg_mr(int isa) { return cg_vector_bytes(isa) == 64 ? 8 : 4; }
static ptrdiff_t cg_nr(int isa, size_t elem) { return 3 * cg_vector_bytes(isa) / (ptrdiff_t)elem; }

#define CG_DISPATCH(fn, T, args)                                            \
    do {                                                                    \
        if (CG_HAVE_X86_VARIANTS && isa == CG_ISA_AVX512)                   \
            CG_CAT2(fn, CG_CAT2(T, avx512)) args;                           \
        else if (CG_HAVE_X86_VARIANTS && isa == CG_ISA_AVX2)                \
            CG_CAT2(fn, CG_CAT2(T, avx2)) args;                             \
        else                                                                \
            CG_CAT2(fn, CG_CAT2(T, base)) args;                             \
    } while (0)

static void cg_gemm_f32(int isa, ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const float *a,
                        const float *b, const ptrdiff_t *off, const float *bias, float *out,
                        ptrdiff_t ldo, ptrdiff_t kc, float *pack)
{
    CG_DISPATCH(cg_gemm, f32, (m, n, k, a, b, off, bias, out, ldo, kc, pack));
}

static void cg_gemm_f64(int isa, ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const double *a,
                        const double *b, const ptrdiff_t *off, const double *bias, double *out,
                        ptrdiff_t ldo, ptrdiff_t kc, double *pack)
{
    CG_DISPATCH(cg_gemm, f64, (m, n, k, a, b, off, bias, out, ldo, kc, pack));
}


/* cg_gemm_same (see conv_gemm_body.h) for one instruction set and element type. */
static void cg_gemm_same_f32(int isa, ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const float *a,
                             const float *b, ptrdiff_t istride, ptrdiff_t np,
                             const ptrdiff_t *off, const float *bias,
                             float *out, ptrdiff_t ldo, ptrdiff_t kc, float *pack, ptrdiff_t p0,
                             ptrdiff_t h, ptrdiff_t w, ptrdiff_t fh, ptrdiff_t fw, ptrdiff_t dh,
                             ptrdiff_t pt, const unsigned long long *colmask)
{
    CG_DISPATCH(cg_gemm_same, f32,
                (m, n, k, a, b, istride, np, off, bias, out, ldo, kc, pack, p0, h, w, fh, fw, dh,
                 pt, colmask));
}

static void cg_gemm_same_f64(int isa, ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const double *a,
                             const double *b, ptrdiff_t istride, ptrdiff_t np,
                             const ptrdiff_t *off, const double *bias,
                             double *out, ptrdiff_t ldo, ptrdiff_t kc, double *pack,
                             ptrdiff_t p0, ptrdiff_t h, ptrdiff_t w, ptrdiff_t fh, ptrdiff_t fw,
                             ptrdiff_t dh, ptrdiff_t pt, const unsigned long long *colmask)
{
    CG_DISPATCH(cg_gemm_same, f64,
                (m, n, k, a, b, istride, np, off, bias, out, ldo, kc, pack, p0, h, w, fh, fw, dh,
                 pt, colmask));
}

#endif
