/* GEMM for the im2col convolution: out (m, n) = bias + A (m, k) @ B (k, n), with A
 * the filters packed in panels of MR rows and B "implicit" columns: row k of B is
 * read at b + off[k], a shifted view of the (phase-split, padded) input, so the
 * columns are never copied out (see _conv_im2col.pyx).
 *
 * The tile keeps MR x 3 vectors of outputs in registers (8 x 48 floats with
 * AVX-512, 4 x 24 with AVX2, 4 x 12 with SSE2) and sums each output's products
 * in the reduction's order, so a value never depends on the block it falls in,
 * nor on the thread that computes it. The code is the template conv_gemm_t.h,
 * compiled once per element type and CPU level (cpu_features.h); the caller
 * passes the level, and cg_mr / cg_nr give the tile of that level. Compilers
 * without GCC's vector extensions get a scalar portable variant of the same
 * packed layout. cg_gemm_packed takes a B already laid out as a packed panel (the
 * Winograd kernel's transformed input) and reads it in place. cg_rows_gemm turns the
 * tile around for channels-last 1x1 layers: A is a block of pixels, packed by the
 * kernel itself, B the filters packed once per call, the bias one value per column. */
#ifndef PYCONV_CONV_GEMM_H
#define PYCONV_CONV_GEMM_H

#include <stddef.h>

#include "cpu_features.h"

#define CG_DECLARE(TS, T, LEVEL)                                                              \
    void cg_gemm_##TS##_##LEVEL(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const T *a,            \
                                const T *b, const ptrdiff_t *off, const T *bias, T *out,      \
                                ptrdiff_t ldo, ptrdiff_t kc, T *pack);                        \
    void cg_gemm_packed_##TS##_##LEVEL(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const T *a,     \
                                       const T *b, ptrdiff_t ldb, const T *bias, T *out,      \
                                       ptrdiff_t ldo, ptrdiff_t kc);                          \
    void cg_gemm_same_##TS##_##LEVEL(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const T *a,       \
                                     const T *b, ptrdiff_t istride, ptrdiff_t np,             \
                                     const ptrdiff_t *off, const T *bias, T *out,             \
                                     ptrdiff_t ldo, ptrdiff_t kc, T *pack, ptrdiff_t p0,      \
                                     ptrdiff_t h, ptrdiff_t w, ptrdiff_t fh, ptrdiff_t fw,    \
                                     ptrdiff_t dh, ptrdiff_t pt,                              \
                                     const unsigned long long *colmask);              \
    void cg_rows_gemm_##TS##_##LEVEL(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const T *x,       \
                                     ptrdiff_t ldx, const T *b, const T *bias, T *out,        \
                                     ptrdiff_t ldo, ptrdiff_t kc, T *a, const T *next,      \
                                     ptrdiff_t next_bytes);
CPU_EACH_VARIANT(CG_DECLARE)
#undef CG_DECLARE

/* Rows (filters) per A panel and columns per B panel for `level` and `elem`-byte values. */
static inline ptrdiff_t cg_mr(int level) { return cpu_vector_bytes(level) == 64 ? 8 : 4; }
static inline ptrdiff_t cg_nr(int level, size_t elem)
{
    return 3 * (ptrdiff_t)cpu_vector_bytes(level) / (ptrdiff_t)elem;
}

/* cg_gemm_<TS> and cg_gemm_same_<TS>: the variant of the given level. */
#define cg_gemm_f32(level, ...) CPU_DISPATCH(level, cg_gemm, f32, (__VA_ARGS__))
#define cg_gemm_f64(level, ...) CPU_DISPATCH(level, cg_gemm, f64, (__VA_ARGS__))
#define cg_gemm_same_f32(level, ...) CPU_DISPATCH(level, cg_gemm_same, f32, (__VA_ARGS__))
#define cg_gemm_same_f64(level, ...) CPU_DISPATCH(level, cg_gemm_same, f64, (__VA_ARGS__))
#define cg_rows_gemm_f32(level, ...) CPU_DISPATCH(level, cg_rows_gemm, f32, (__VA_ARGS__))
#define cg_rows_gemm_f64(level, ...) CPU_DISPATCH(level, cg_rows_gemm, f64, (__VA_ARGS__))

#endif
