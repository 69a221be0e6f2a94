/* Vectors of channels for the channels-last templates (pool_nhwc_t.h,
 * conv_depthwise_nhwc_t.h), for one element type T and CPU level: GCC vector extensions of
 * the level's width (16 bytes at the portable level), loaded and stored unaligned, or
 * stored past the caches (streamed).
 * NV_BLOCK vectors of channels are held in registers while a window's taps are combined. */
#ifndef PYCONV_NHWC_VEC_T_H
#define PYCONV_NHWC_VEC_T_H

#include <stdint.h>
#include <string.h>

#include "pool.h" /* POOL_INLINE */
#if CPU_X86
#include <immintrin.h>
#endif

#if CPU_LEVEL == CPU_AVX512
#define NV_BYTES 64
#elif CPU_LEVEL == CPU_AVX2
#define NV_BYTES 32
#else
#define NV_BYTES 16
#endif

#define NV_LANES (NV_BYTES / (ptrdiff_t)sizeof(T))
#define NV_BLOCK 4

/* a vector of T, and of the signed integers of T's width (what comparisons give) */
#if TS_F32
typedef int32_t VARIANT(nv_int);
#else
typedef int64_t VARIANT(nv_int);
#endif
typedef T VARIANT(nv) __attribute__((vector_size(NV_BYTES), aligned(sizeof(T)), may_alias));
typedef VARIANT(nv_int) VARIANT(nv_i) __attribute__((vector_size(NV_BYTES), aligned(sizeof(T))));
#define NV VARIANT(nv)
#define NV_I VARIANT(nv_i)
#define NV_INT VARIANT(nv_int)

/* (the alignment of one T and may_alias make these plain unaligned loads and stores) */
static inline NV VARIANT(nv_load)(const T *p) { return *(const NV *)p; }
static inline void VARIANT(nv_store)(T *p, NV v) { *(NV *)p = v; }
static inline NV VARIANT(nv_set1)(T a) { return (NV){0} + a; }
/* lanes of a where mask m (all ones or zeros per lane) is set, else of b */
static inline NV VARIANT(nv_select)(NV_I m, NV a, NV b) { return (NV)((m & (NV_I)a) | (~m & (NV_I)b)); }

/* Stores v at p (NV_BYTES-aligned) past the caches: a streaming store, for results written
 * once, whole lines at a time, and not read back by the kernel (so their lines need not be
 * fetched first). The kernel ends with nhwc_fence. */
POOL_INLINE void VARIANT(nhwc_stream)(T *p, NV v)
{
#if CPU_X86 && CPU_LEVEL == CPU_AVX512 && TS_F32
    _mm512_stream_ps(p, (__m512)v);
#elif CPU_X86 && CPU_LEVEL == CPU_AVX512
    _mm512_stream_pd(p, (__m512d)v);
#elif CPU_X86 && CPU_LEVEL == CPU_AVX2 && TS_F32
    _mm256_stream_ps(p, (__m256)v);
#elif CPU_X86 && CPU_LEVEL == CPU_AVX2
    _mm256_stream_pd(p, (__m256d)v);
#elif CPU_X86 && TS_F32
    _mm_stream_ps(p, (__m128)v);
#elif CPU_X86
    _mm_stream_pd(p, (__m128d)v);
#else
    VARIANT(nv_store)(p, v);
#endif
}

/* Orders the streaming stores before whatever follows (the end of the parallel loop). */
POOL_INLINE void VARIANT(nhwc_fence)(void)
{
#if CPU_X86
    _mm_sfence();
#endif
}

/* Stores v at p: streamed if stream (p then NV_BYTES-aligned). */
POOL_INLINE void VARIANT(nhwc_put)(T *p, NV v, int stream)
{
    if (stream) VARIANT(nhwc_stream)(p, v);
    else VARIANT(nv_store)(p, v);
}

/* Whether a kernel asked to stream its output o of C channels per pixel can: only whole
 * aligned vectors are streamed. */
POOL_INLINE int VARIANT(nhwc_can_stream)(const T *o, ptrdiff_t C)
{
    return (uintptr_t)o % NV_BYTES == 0 && C % NV_LANES == 0;
}

#if defined(__GNUC__) && !defined(__clang__)
/* The lanes of a and b in turn, from their lower halves (hi = 0) or their upper halves
 * (GCC's __builtin_shuffle; Clang's __builtin_shufflevector wants its lanes spelt out). */
static inline __attribute__((always_inline)) NV VARIANT(nv_zip)(NV a, NV b, const int hi)
{
    NV_I lanes;
    _Pragma("GCC unroll 16")
    for (int p = 0; p < NV_LANES; p++)
        lanes[p] = (p % 2) * NV_LANES + hi * (NV_LANES / 2) + p / 2;
    return __builtin_shuffle(a, b, lanes);
}

/* Rows v[0 .. rows-1] of a block of rows x NV_LANES values (rows a power of two, at most
 * NV_LANES) transposed in registers: log2(rows) rounds, each zipping vector i with vector
 * i + rows/2, leave in v[m] columns m*NV_LANES/rows onwards, each column's rows values in
 * order, one column after another. */
static inline __attribute__((always_inline)) void VARIANT(nv_zip_rows)(NV *v, const int rows)
{
    NV t[NV_LANES];
    _Pragma("GCC unroll 4")
    for (int round = 1; round < rows; round *= 2) {
        _Pragma("GCC unroll 8")
        for (int i = 0; i < rows / 2; i++) {
            t[2 * i] = VARIANT(nv_zip)(v[i], v[i + rows / 2], 0);
            t[2 * i + 1] = VARIANT(nv_zip)(v[i], v[i + rows / 2], 1);
        }
        _Pragma("GCC unroll 16")
        for (int i = 0; i < rows; i++) v[i] = t[i];
    }
}
#define NV_ZIP 1
#endif

#endif
