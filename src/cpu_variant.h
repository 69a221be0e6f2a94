/* Included first by each generated variant translation unit (see cpu_features.h), which
 * defines T, TS, CPU_LEVEL and LEVEL: compiles the rest of the unit for the level's
 * instruction sets, and names its functions with VARIANT(op) = op_<TS>_<LEVEL>. (With Clang,
 * the unit ends with the matching `#pragma clang attribute pop`.) */
#ifndef PYCONV_CPU_VARIANT_H
#define PYCONV_CPU_VARIANT_H

#include "cpu_features.h"

#if CPU_LEVEL == CPU_AVX512
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma"))), apply_to = function)
#else
#pragma GCC target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")
#endif
#elif CPU_LEVEL == CPU_AVX2
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#else
#pragma GCC target("avx2,fma")
#endif
#endif

#define VARIANT(op) CPU_CAT3(op, TS, LEVEL)

#endif
