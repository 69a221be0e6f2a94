/* Pairwise L1 distances and L1 top-k: SIMD across pairs, cache blocked, OpenMP over chunks of Y.
 *
 * Every distance D[i, j] is summed in the order k = 0, 1, ..., d - 1 exactly as the scalar loop
 * `acc = acc + fabs(X[i, k] - Y[j, k])` does: the vectors hold different PAIRS (lanes are rows
 * of Y, packed into panels of NR rows, k-major), never different k of one pair. Blocking over k
 * stores a partial sum and resumes it, which keeps the order. So results are bitwise identical
 * whatever the thread count, the block sizes, or the CPU level the caller passes (the code is
 * the template l1_t.h, compiled once per element type and level, see cpu_features.h), and no
 * -ffast-math is needed. |x - y| is computed as (x - y) with its sign bit cleared, equal to
 * fabs(y - x) bit for bit.
 *
 * Work: Y is cut into chunks of NC rows that the threads take one at a time (dynamic schedule,
 * no barrier); a thread packs its chunk once, then sweeps X in blocks of XB rows, each computing
 * an XB x NC tile with a register-blocked micro-kernel (MR rows of X x NR rows of Y), k in slabs
 * of KC so one panel slab stays in L1 while the block's rows of X stay in L2. l1 writes the tile
 * into D with streaming stores (D is written once and not read back: going through the cache
 * would read every line first and halve the speed at small d): straight from the registers when
 * all rows of D start at one offset in a 64-byte line (chunks then start on a line), through a
 * small buffer otherwise. top-k writes the tile into a per-thread buffer and folds each row into
 * k-best lists (see l1_topk in l1_t.h), merged in a total order (distance, NaN last, then index), so
 * the result does not depend on which thread saw which chunk.
 */
#ifndef PYCONV_L1_H
#define PYCONV_L1_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_features.h"

typedef ptrdiff_t l1_idx;

#ifdef _OPENMP
#include <omp.h>
static inline l1_idx l1_thread_num(void) { return omp_get_thread_num(); }
static inline l1_idx l1_num_threads(void) { return omp_get_num_threads(); }
#else
static inline l1_idx l1_thread_num(void) { return 0; }
static inline l1_idx l1_num_threads(void) { return 1; }
#endif

#define L1_KC 256                    /* k per slab: NR * KC * sizeof(T) <= 64 KiB (L1) */
#define L1_CHUNK_BYTES (1 << 21)     /* packed chunk of Y: about 2 MiB (L2) */
#define L1_MAX_NC 2048
#define L1_MAX_XB 128               /* rows of X per block: XB * KC * sizeof(T) <= 256 KiB (L2) */
#define L1_HEAP_BYTES (1 << 22)      /* per-thread top-k lists (few rows of X): about 4 MiB */
#define L1_MIRROR_TB 32              /* columns per block of the symmetric copy */
#define L1_SYMMETRIC_MIN_D 64        /* below, copying half of D costs more than computing it */
#define L1_TOPK_XB 64                /* rows of X per top-k block: their tile stays in L2 */
#define L1_SHARED_BYTES (1 << 23)    /* packed super-chunk of Y shared by the top-k threads: 8 MiB */
#define L1_TILE_BYTES (1 << 18)      /* a tile of distances in a buffer (top-k, unaligned D): 256 KiB */
#define L1_TOPK_DEEP 512             /* from this d, top-k shares chunks of Y as l1 does (no barrier) */

/* Order of top-k entries: by distance, NaN after every number, ties by index.
 * Returns whether (da, ia) comes after (db, ib). */
#define L1_AFTER(da, ia, db, ib)                                                              \
    (((da) != (da) || (db) != (db))                                                           \
         ? (((da) != (da)) != ((db) != (db)) ? (da) != (da) : (ia) > (ib))                    \
         : ((da) != (db) ? (da) > (db) : (ia) > (ib)))

#define L1_DECLARE(TS, T, LEVEL)                                                              \
    int l1_distances_##TS##_##LEVEL(const T *X, l1_idx nx, const T *Y, l1_idx ny, l1_idx d,     \
                                    T *D, int symmetric, int nthreads);                        \
    int l1_topk_##TS##_##LEVEL(const T *X, l1_idx nx, const T *Y, l1_idx ny, l1_idx d,          \
                               l1_idx k, T *dist, l1_idx *idx, int nthreads);
CPU_EACH_VARIANT(L1_DECLARE)
#undef L1_DECLARE

/* l1_distances_<TS> and l1_topk_<TS>: the variant of the given CPU level. */
#define l1_distances_f32(level, ...) CPU_DISPATCH(level, l1_distances, f32, (__VA_ARGS__))
#define l1_distances_f64(level, ...) CPU_DISPATCH(level, l1_distances, f64, (__VA_ARGS__))
#define l1_topk_f32(level, ...) CPU_DISPATCH(level, l1_topk, f32, (__VA_ARGS__))
#define l1_topk_f64(level, ...) CPU_DISPATCH(level, l1_topk, f64, (__VA_ARGS__))

#endif
