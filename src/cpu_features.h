/* CPU levels: the one list every kernel family's variants are compiled for and chosen by.
 *
 * A level is a set of instruction-set features a variant may use:
 *   portable  plain C (the compiler's baseline for the target, SSE2 on x86-64)
 *   avx2      AVX2 and FMA
 *   avx512    AVX-512 F, BW, DQ and VL (and AVX2, FMA)
 * pyconv._cpu detects the CPU's level once per process; pyconv.cpu holds the level in use
 * (lowered by PYCONV_DISABLE_CPU_FEATURES, or forced by tests) and every kernel wrapper
 * passes it down as an int argument to its family's dispatcher.
 *
 * A family's variants: one template, src/<family>_t.h, holds the code; setup.py generates
 * one translation unit per (dtype, level) that defines T (float or double), TS (f32 or f64),
 * TS_F32 (1 or 0), CPU_LEVEL (CPU_PORTABLE, CPU_AVX2 or CPU_AVX512) and LEVEL (portable, avx2
 * or avx512), includes cpu_variant.h (the level's target options) and the template. VARIANT(op) names a function op_<TS>_<LEVEL>, and
 * CPU_DISPATCH(level, op, TS, args) calls the variant for a level.
 */
#ifndef PYCONV_CPU_FEATURES_H
#define PYCONV_CPU_FEATURES_H

/* the levels, as numbers (macros, so that #if can test them) */
#define CPU_PORTABLE 0
#define CPU_AVX2 1
#define CPU_AVX512 2

/* Whether this compiler builds the avx2 and avx512 variants (GCC or Clang on x86-64);
 * elsewhere only the portable ones exist. */
#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
#define CPU_X86 1
#else
#define CPU_X86 0
#endif

#define CPU_CAT3_(a, b, c) a##_##b##_##c
#define CPU_CAT3(a, b, c) CPU_CAT3_(a, b, c)

/* The variant of op for element type TS (f32, f64) at run-time level `level`. */
#if CPU_X86
#define CPU_DISPATCH(level, op, TS, args)                                                     \
    ((level) == CPU_AVX512 ? CPU_CAT3(op, TS, avx512) args                                    \
     : (level) == CPU_AVX2 ? CPU_CAT3(op, TS, avx2) args : CPU_CAT3(op, TS, portable) args)
#else
#define CPU_DISPATCH(level, op, TS, args) CPU_CAT3(op, TS, portable) args
#endif

/* The same for a family that has avx2 and avx512 variants only: `otherwise` at other levels. */
#if CPU_X86
#define CPU_DISPATCH_VECTOR(level, op, TS, args, otherwise)                                   \
    ((level) == CPU_AVX512 ? CPU_CAT3(op, TS, avx512) args                                    \
     : (level) == CPU_AVX2 ? CPU_CAT3(op, TS, avx2) args : (otherwise))
#else
#define CPU_DISPATCH_VECTOR(level, op, TS, args, otherwise) (otherwise)
#endif

/* Bytes of one vector of the variants that CPU level `level` runs (16, SSE2's width, in
 * portable C). */
static inline int cpu_vector_bytes(int level)
{
    if (CPU_X86 && level == CPU_AVX512) return 64;
    if (CPU_X86 && level == CPU_AVX2) return 32;
    return 16;
}

/* M(TS, T, LEVEL) once per compiled variant: for declaring a family's variants. */
#if CPU_X86
#define CPU_EACH_VARIANT(M)                                                                   \
    M(f32, float, portable) M(f64, double, portable) M(f32, float, avx2)                      \
    M(f64, double, avx2) M(f32, float, avx512) M(f64, double, avx512)
#else
#define CPU_EACH_VARIANT(M) M(f32, float, portable) M(f64, double, portable)
#endif

#endif
