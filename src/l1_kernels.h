/* Pairwise L1 distances and L1 top-k: SIMD across pairs, cache blocked, OpenMP over chunks of Y.
 *
 * Every distance D[i, j] is summed in the order k = 0, 1, ..., d - 1 exactly as the scalar loop
 * `acc = acc + fabs(X[i, k] - Y[j, k])` does: the vectors hold different PAIRS (lanes are rows
 * of Y, packed into panels of NR rows, k-major), never different k of one pair. Blocking over k
 * stores a partial sum and resumes it, which keeps the order. So results are bitwise identical
 * whatever the thread count, the block sizes, or the instruction set picked at run time
 * (AVX-512, AVX2 or the portable build, chosen once with __builtin_cpu_supports), and no
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
 * k-best lists (see pc_l1_topk), merged in a total order (distance, NaN last, then index), so
 * the result does not depend on which thread saw which chunk.
 */
#ifndef PYCONV_L1_KERNELS_H
#define PYCONV_L1_KERNELS_H

#include "interrupt.h"
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef ptrdiff_t pc_idx;

#ifdef _OPENMP
#include <omp.h>
static pc_idx pc_thread_num(void) { return omp_get_thread_num(); }
static pc_idx pc_num_threads(void) { return omp_get_num_threads(); }
#else
static pc_idx pc_thread_num(void) { return 0; }
static pc_idx pc_num_threads(void) { return 1; }
#endif

#define PC_KC 256                    /* k per slab: NR * KC * sizeof(T) <= 64 KiB (L1) */
#define PC_CHUNK_BYTES (1 << 21)     /* packed chunk of Y: about 2 MiB (L2) */
#define PC_MAX_NC 2048
#define PC_MAX_XB 128               /* rows of X per block: XB * KC * sizeof(T) <= 256 KiB (L2) */
#define PC_HEAP_BYTES (1 << 22)      /* per-thread top-k lists (few rows of X): about 4 MiB */
#define PC_MIRROR_TB 32              /* columns per block of the symmetric copy */
#define PC_SYMMETRIC_MIN_D 64        /* below, copying half of D costs more than computing it */
#define PC_TOPK_XB 64                /* rows of X per top-k block: their tile stays in L2 */
#define PC_SHARED_BYTES (1 << 23)    /* packed super-chunk of Y shared by the top-k threads: 8 MiB */
#define PC_TILE_BYTES (1 << 18)      /* a tile of distances in a buffer (top-k, unaligned D): 256 KiB */
#define PC_TOPK_DEEP 512             /* from this d, top-k shares chunks of Y as l1 does (no barrier) */

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define PC_X86 1
#endif

/* One instruction-set family for element type T: vectors of VB bytes, micro-kernel of MR rows
 * of X by NV vectors (NR = NV * VB / sizeof(T) rows of Y). ATTR selects the target, STREAM(p, v)
 * stores a vector past the cache, NEAR16(p, w) has bit u set where p[u] <= w (not for NaN). */
#define PC_FAMILY(SFX, TS, ATTR, T, IT, SIGN, VB, MR, NV, STREAM, NEAR16)                     \
typedef T SFX##_v __attribute__((vector_size(VB), aligned(sizeof(T))));                      \
typedef IT SFX##_iv __attribute__((vector_size(VB), aligned(sizeof(T))));                    \
enum { SFX##_W = (VB) / (int)sizeof(T), SFX##_NR = (NV) * ((VB) / (int)sizeof(T)) };          \
                                                                                              \
/* Pack rows [0, n) of Y (n, d) into panels of NR rows, k-major, zero padded. */              \
static ATTR void SFX##_pack(const T *Y, pc_idx n, pc_idx d, T *dst)                           \
{                                                                                             \
    for (pc_idx k = 0; k < d; k++)                                                            \
        for (pc_idx r = 0; r < SFX##_NR; r++)                                                 \
            dst[k * SFX##_NR + r] = r < n ? Y[r * d + k] : (T)0;                              \
}                                                                                             \
                                                                                              \
/* C[r, c] (+)= sum_{k < kc} |x[r, k] - panel[k, c]| for MR (or 1) rows and NR columns; the   \
 * last slab of a full, aligned panel bypasses the cache (the output is not read again). */   \
static inline __attribute__((always_inline)) ATTR void SFX##_micro(                           \
    const int mr, const T *x, pc_idx ldx, const T *yp, pc_idx kc, T *c, pc_idx ldc,          \
    int first, int last, int ncols)                                                           \
{                                                                                             \
    SFX##_v acc[MR][NV];                                                                      \
    const SFX##_iv mask = (SFX##_iv){0} + (IT)(~(SIGN));                                      \
    T edge[MR * SFX##_NR];                                                                    \
    T *out = c;                                                                               \
    pc_idx ldo = ldc;                                                                         \
    if (ncols < SFX##_NR) {                                                                   \
        out = edge;                                                                           \
        ldo = SFX##_NR;                                                                       \
        if (!first)                                                                           \
            for (int r = 0; r < mr; r++)                                                      \
                for (int j = 0; j < ncols; j++) edge[r * SFX##_NR + j] = c[r * ldc + j];      \
    }                                                                                         \
    for (int r = 0; r < MR; r++)                                                              \
        for (int v = 0; v < NV; v++)                                                          \
            if (r < mr) {                                                                     \
                if (first) acc[r][v] = (SFX##_v){0};                                          \
                else memcpy(&acc[r][v], out + r * ldo + v * SFX##_W, VB);                      \
            }                                                                                 \
    for (pc_idx k = 0; k < kc; k++) {                                                         \
        SFX##_v y[NV];                                                                        \
        for (int v = 0; v < NV; v++) memcpy(&y[v], yp + k * SFX##_NR + v * SFX##_W, VB);      \
        for (int r = 0; r < MR; r++)                                                          \
            if (r < mr) {                                                                     \
                const T xs = x[r * ldx + k];                                                  \
                for (int v = 0; v < NV; v++) {                                                \
                    SFX##_v t = y[v] - xs;                                                    \
                    t = (SFX##_v)((SFX##_iv)t & mask);                                        \
                    acc[r][v] = acc[r][v] + t;                                                \
                }                                                                             \
            }                                                                                 \
    }                                                                                         \
    if (last && ncols == SFX##_NR && (uintptr_t)c % (VB) == 0 && ldc * sizeof(T) % (VB) == 0) \
        for (int r = 0; r < MR; r++)                                                          \
            for (int v = 0; v < NV; v++) {                                                    \
                if (r < mr) STREAM(out + r * ldo + v * SFX##_W, acc[r][v]);                   \
            }                                                                                 \
    else                                                                                      \
        for (int r = 0; r < MR; r++)                                                          \
            for (int v = 0; v < NV; v++)                                                      \
                if (r < mr) memcpy(out + r * ldo + v * SFX##_W, &acc[r][v], VB);              \
    if (ncols < SFX##_NR)                                                                     \
        for (int r = 0; r < mr; r++)                                                          \
            for (int j = 0; j < ncols; j++) c[r * ldc + j] = edge[r * SFX##_NR + j];          \
}                                                                                             \
                                                                                              \
/* C (nx, ny) with leading dimension ldc = L1 distances of X (nx, d >= 1) to the packed ny rows. */ \
static ATTR void SFX##_tile(const T *X, pc_idx nx, const T *yp, pc_idx ny, pc_idx d,          \
                            T *C, pc_idx ldc, int stream)                                     \
{                                                                                             \
    for (pc_idx k0 = 0; k0 < d; k0 += PC_KC) {                                                \
        const pc_idx kc = d - k0 < PC_KC ? d - k0 : PC_KC;                                    \
        for (pc_idx j0 = 0; j0 < ny; j0 += SFX##_NR) {                                        \
            const int nc = ny - j0 < SFX##_NR ? (int)(ny - j0) : SFX##_NR;                    \
            const T *panel = yp + j0 * d + k0 * SFX##_NR;                                     \
            pc_idx i = 0;                                                                     \
            for (; i + MR <= nx; i += MR)                                                     \
                SFX##_micro(MR, X + i * d + k0, d, panel, kc, C + i * ldc + j0, ldc,          \
                            k0 == 0, stream && k0 + kc == d, nc);                             \
            for (; i < nx; i++)                                                               \
                SFX##_micro(1, X + i * d + k0, d, panel, kc, C + i * ldc + j0, ldc,           \
                            k0 == 0, 0, nc);                                                  \
        }                                                                                     \
    }                                                                                         \
}                                                                                             \
                                                                                              \
/* Copy m rows of n values from src (leading dimension lds) to dst (ldd): each destination      \
 * row's whole 64-byte lines with streaming stores (the result is not read again here), the     \
 * partial lines at its two ends, which a neighbouring block may share, with plain stores. */   \
static ATTR void SFX##_put(const T *src, pc_idx lds, pc_idx m, pc_idx n, T *dst, pc_idx ldd)  \
{                                                                                             \
    enum { LINE = 64 / (int)sizeof(T) };                                                      \
    for (pc_idx r = 0; r < m; r++) {                                                          \
        const T *s = src + r * lds;                                                           \
        T *o = dst + r * ldd;                                                                 \
        pc_idx j = (uintptr_t)o % sizeof(T) ? n : (pc_idx)(-(uintptr_t)o % 64 / sizeof(T));   \
        j = j < n ? j : n;                                                                    \
        memcpy(o, s, (size_t)j * sizeof(T));                                                  \
        for (; j + LINE <= n; j += LINE)                                                      \
            for (int v = 0; v < LINE; v += SFX##_W) {                                         \
                SFX##_v t;                                                                    \
                memcpy(&t, s + j + v, VB);                                                    \
                STREAM(o + j + v, t);                                                         \
            }                                                                                 \
        memcpy(o + j, s + j, (size_t)(n - j) * sizeof(T));                                    \
    }                                                                                         \
}                                                                                             \
                                                                                              \
/* Take a row of n distances, to rows first, first + 1, ... of Y, into a row's k best so far     \
 * (sd, si: m entries, ascending): returns the new count. Candidates are the distances <= the    \
 * k-th kept, tested 16 at a time; while fewer than k numbers are kept, the k-th smallest of     \
 * the row's lane minima bounds them instead (that many distinct distances are at most it).      \
 * The few candidates are sorted and merged in. cd, ci: scratch for n + k entries. */            \
static ATTR pc_idx SFX##_take(const T *row, pc_idx n, pc_idx first, T *sd, pc_idx *si,         \
                              pc_idx m, pc_idx k, T *cd, pc_idx *ci)                           \
{                                                                                             \
    T thr = m == k ? sd[k - 1] : (T)NAN;                                                      \
    if (thr != thr && k <= 4 * SFX##_W) {                                                     \
        const pc_idx groups = (k + SFX##_W - 1) / SFX##_W;                                    \
        if (n >= groups * SFX##_W) {                                                          \
            SFX##_v lo[4];                                                                    \
            T mins[4 * SFX##_W];                                                              \
            for (pc_idx g = 0; g < groups; g++) lo[g] = (SFX##_v){0} + (T)INFINITY;           \
            for (pc_idx j = 0; j + groups * SFX##_W <= n; j += groups * SFX##_W)              \
                for (pc_idx g = 0; g < groups; g++) {                                         \
                    SFX##_v v;                                                                \
                    memcpy(&v, row + j + g * SFX##_W, VB);                                    \
                    const SFX##_iv lt = (SFX##_iv)(v < lo[g]);                                \
                    lo[g] = (SFX##_v)(((SFX##_iv)v & lt) | ((SFX##_iv)lo[g] & ~lt));          \
                }                                                                             \
            memcpy(mins, lo, (size_t)groups * VB);                                            \
            const T bound = pc_##TS##_kth_smallest(mins, groups * SFX##_W, k);                \
            if (bound < (T)INFINITY) thr = bound;                                             \
        }                                                                                     \
    }                                                                                         \
    pc_idx s = 0;                                                                             \
    if (thr != thr) {                                                                         \
        for (pc_idx j = 0; j < n; j++) {                                                      \
            cd[s] = row[j];                                                                   \
            ci[s++] = first + j;                                                              \
        }                                                                                     \
    } else {                                                                                  \
        pc_idx j0 = 0;                                                                        \
        for (; j0 + 16 <= n; j0 += 16) {                                                      \
            unsigned near = NEAR16(row + j0, thr);                                            \
            while (near) {                                                                    \
                const pc_idx j = j0 + __builtin_ctz(near);                                    \
                near &= near - 1;                                                             \
                cd[s] = row[j];                                                               \
                ci[s++] = first + j;                                                          \
            }                                                                                 \
        }                                                                                     \
        for (pc_idx j = j0; j < n; j++)                                                       \
            if (row[j] <= thr) {                                                              \
                cd[s] = row[j];                                                               \
                ci[s++] = first + j;                                                          \
            }                                                                                 \
    }                                                                                         \
    if (s == 0) return m;                                                                     \
    if (s > k) {                                                                              \
        pc_##TS##_select(cd, ci, s, k);                                                       \
        s = k;                                                                                \
    }                                                                                         \
    pc_##TS##_sort(cd, ci, s);                                                                \
    return pc_##TS##_merge(sd, si, m, cd, ci, s, k, cd + s, ci + s);                          \
}

#define PC_SIGN32 ((int32_t)0x80000000u)
#define PC_SIGN64 ((int64_t)0x8000000000000000ull)

/* Order of top-k entries: by distance, NaN after every number, ties by index.
 * Returns whether (da, ia) comes after (db, ib). */
#define PC_AFTER(da, ia, db, ib)                                                              \
    (((da) != (da) || (db) != (db))                                                           \
         ? (((da) != (da)) != ((db) != (db)) ? (da) != (da) : (ia) > (ib))                    \
         : ((da) != (db) ? (da) > (db) : (ia) > (ib)))

/* Selection helpers for element type T over entries (d[i], id[i]) in the order of PC_AFTER. They
 * are inlined into each instruction set's take: a call from AVX-512 code to baseline SSE code
 * costs a state transition each time. */
#define PC_SELECT(TS, T)                                                                      \
static inline __attribute__((always_inline)) void pc_##TS##_swap(T *d, pc_idx *id, pc_idx a,  \
                                                                 pc_idx b)                    \
{                                                                                             \
    const T t = d[a];                                                                         \
    const pc_idx ti = id[a];                                                                  \
    d[a] = d[b];                                                                              \
    id[a] = id[b];                                                                            \
    d[b] = t;                                                                                 \
    id[b] = ti;                                                                               \
}                                                                                             \
                                                                                              \
/* Sift entry i down the max-heap d[0:n] (largest in the order of PC_AFTER on top). */        \
static inline __attribute__((always_inline)) void pc_##TS##_sift(T *d, pc_idx *id, pc_idx i,  \
                                                                 pc_idx n)                    \
{                                                                                             \
    for (;;) {                                                                                \
        pc_idx c = 2 * i + 1;                                                                 \
        if (c >= n) return;                                                                   \
        if (c + 1 < n && PC_AFTER(d[c + 1], id[c + 1], d[c], id[c])) c++;                     \
        if (!PC_AFTER(d[c], id[c], d[i], id[i])) return;                                      \
        pc_##TS##_swap(d, id, i, c);                                                          \
        i = c;                                                                                \
    }                                                                                         \
}                                                                                             \
                                                                                              \
/* Sort n entries ascending: insertion sort when few (the usual case), heap sort else. */     \
static inline __attribute__((always_inline)) void pc_##TS##_sort(T *d, pc_idx *id, pc_idx n)  \
{                                                                                             \
    if (n > 32) {                                                                             \
        for (pc_idx i = n / 2 - 1; i >= 0; i--) pc_##TS##_sift(d, id, i, n);                  \
        for (pc_idx e = n - 1; e > 0; e--) {                                                  \
            pc_##TS##_swap(d, id, 0, e);                                                      \
            pc_##TS##_sift(d, id, 0, e);                                                      \
        }                                                                                     \
        return;                                                                               \
    }                                                                                         \
    for (pc_idx i = 1; i < n; i++) {                                                          \
        const T v = d[i];                                                                     \
        const pc_idx vi = id[i];                                                              \
        pc_idx j = i;                                                                         \
        for (; j > 0 && PC_AFTER(d[j - 1], id[j - 1], v, vi); j--) {                          \
            d[j] = d[j - 1];                                                                  \
            id[j] = id[j - 1];                                                                \
        }                                                                                     \
        d[j] = v;                                                                             \
        id[j] = vi;                                                                           \
    }                                                                                         \
}                                                                                             \
                                                                                              \
/* Reorder n > k entries so that the first k are the k smallest (quickselect, median of three). */ \
static inline __attribute__((always_inline)) void pc_##TS##_select(T *d, pc_idx *id, pc_idx n, \
                                                                   pc_idx k)                  \
{                                                                                             \
    pc_idx lo = 0, hi = n - 1;                                                                \
    while (hi - lo > 2) {                                                                     \
        const pc_idx mid = lo + (hi - lo) / 2;                                                \
        if (PC_AFTER(d[lo], id[lo], d[mid], id[mid])) pc_##TS##_swap(d, id, lo, mid);         \
        if (PC_AFTER(d[mid], id[mid], d[hi], id[hi])) pc_##TS##_swap(d, id, mid, hi);         \
        if (PC_AFTER(d[lo], id[lo], d[mid], id[mid])) pc_##TS##_swap(d, id, lo, mid);         \
        pc_##TS##_swap(d, id, mid, hi - 1); /* pivot at hi - 1; d[lo] <= pivot <= d[hi] */    \
        const T p = d[hi - 1];                                                                \
        const pc_idx pi = id[hi - 1];                                                         \
        pc_idx i = lo, j = hi - 1;                                                            \
        for (;;) {                                                                            \
            do i++; while (PC_AFTER(p, pi, d[i], id[i]));                                     \
            do j--; while (PC_AFTER(d[j], id[j], p, pi));                                     \
            if (i >= j) break;                                                                \
            pc_##TS##_swap(d, id, i, j);                                                      \
        }                                                                                     \
        pc_##TS##_swap(d, id, i, hi - 1); /* the pivot's final place: i */                    \
        if (i == k - 1 || i == k) return;                                                     \
        if (i < k) lo = i + 1;                                                                \
        else hi = i - 1;                                                                      \
    }                                                                                         \
    pc_##TS##_sort(d + lo, id + lo, hi - lo + 1);                                             \
}                                                                                             \
                                                                                              \
/* Merge ascending (sd, si)[0:m] and (cd, ci)[0:s] into the k first, back into sd, si, through \
 * the scratch td, ti; returns their count. */                                                \
static inline __attribute__((always_inline)) pc_idx pc_##TS##_merge(                          \
    T *sd, pc_idx *si, pc_idx m, const T *cd, const pc_idx *ci, pc_idx s, pc_idx k, T *td,    \
    pc_idx *ti)                                                                               \
{                                                                                             \
    const pc_idx total = m + s < k ? m + s : k;                                               \
    pc_idx a = 0, b = 0;                                                                      \
    for (pc_idx o = 0; o < total; o++)                                                        \
        if (b == s || (a < m && !PC_AFTER(sd[a], si[a], cd[b], ci[b]))) {                     \
            td[o] = sd[a];                                                                    \
            ti[o] = si[a++];                                                                  \
        } else {                                                                              \
            td[o] = cd[b];                                                                    \
            ti[o] = ci[b++];                                                                  \
        }                                                                                     \
    memcpy(sd, td, (size_t)total * sizeof(T));                                                \
    memcpy(si, ti, (size_t)total * sizeof(pc_idx));                                           \
    return total;                                                                             \
}                                                                                             \
                                                                                              \
/* The k-th smallest of n numbers (no NaN), k <= n; reorders them. */                         \
static inline __attribute__((always_inline)) T pc_##TS##_kth_smallest(T *v, pc_idx n,         \
                                                                      pc_idx k)               \
{                                                                                             \
    for (pc_idx i = 0; i < k; i++) {                                                          \
        pc_idx best = i;                                                                      \
        for (pc_idx j = i + 1; j < n; j++) best = v[j] < v[best] ? j : best;                 \
        const T t = v[i];                                                                     \
        v[i] = v[best];                                                                       \
        v[best] = t;                                                                          \
    }                                                                                         \
    return v[k - 1];                                                                          \
}

PC_SELECT(f32, float)
PC_SELECT(f64, double)

#define PC_STORE(p, v) memcpy((p), &(v), sizeof(v))
/* Portable NEAR16: bit u set where p[u] <= w (never for NaN). */
static inline unsigned pc_near16_f32(const float *p, float w)
{
    unsigned near = 0;
    for (int u = 0; u < 16; u++) near |= (unsigned)(p[u] <= w) << u;
    return near;
}

static inline unsigned pc_near16_f64(const double *p, double w)
{
    unsigned near = 0;
    for (int u = 0; u < 16; u++) near |= (unsigned)(p[u] <= w) << u;
    return near;
}
#define PC_NEAR16_F32(p, w) pc_near16_f32((p), (w))
#define PC_NEAR16_F64(p, w) pc_near16_f64((p), (w))

#ifdef PC_X86
#include <immintrin.h>
#define PC_AVX512 __attribute__((target("avx512f")))
#define PC_AVX2 __attribute__((target("avx2")))
#define PC_STREAM_512S(p, v) _mm512_stream_ps((p), (__m512)(v))
#define PC_STREAM_512D(p, v) _mm512_stream_pd((p), (__m512d)(v))
#define PC_STREAM_256S(p, v) _mm256_stream_ps((p), (__m256)(v))
#define PC_STREAM_256D(p, v) _mm256_stream_pd((p), (__m256d)(v))
#define PC_LE512S(p, w) _mm512_cmp_ps_mask(_mm512_loadu_ps(p), _mm512_set1_ps(w), _CMP_LE_OQ)
#define PC_LE512D(p, w) _mm512_cmp_pd_mask(_mm512_loadu_pd(p), _mm512_set1_pd(w), _CMP_LE_OQ)
#define PC_LE256S(p, w)                                                                       \
    (unsigned)_mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(p), _mm256_set1_ps(w), _CMP_LE_OQ))
#define PC_LE256D(p, w)                                                                       \
    (unsigned)_mm256_movemask_pd(_mm256_cmp_pd(_mm256_loadu_pd(p), _mm256_set1_pd(w), _CMP_LE_OQ))
#define PC_NEAR16_512S(p, w) (unsigned)PC_LE512S(p, w)
#define PC_NEAR16_512D(p, w) ((unsigned)PC_LE512D(p, w) | (unsigned)PC_LE512D((p) + 8, w) << 8)
#define PC_NEAR16_256S(p, w) (PC_LE256S(p, w) | PC_LE256S((p) + 8, w) << 8)
#define PC_NEAR16_256D(p, w)                                                                  \
    (PC_LE256D(p, w) | PC_LE256D((p) + 4, w) << 4 | PC_LE256D((p) + 8, w) << 8 |              \
     PC_LE256D((p) + 12, w) << 12)
PC_FAMILY(pc_f32_avx512, f32, PC_AVX512, float, int32_t, PC_SIGN32, 64, 8, 2, PC_STREAM_512S,
          PC_NEAR16_512S)
PC_FAMILY(pc_f64_avx512, f64, PC_AVX512, double, int64_t, PC_SIGN64, 64, 8, 2, PC_STREAM_512D,
          PC_NEAR16_512D)
PC_FAMILY(pc_f32_avx2, f32, PC_AVX2, float, int32_t, PC_SIGN32, 32, 4, 2, PC_STREAM_256S,
          PC_NEAR16_256S)
PC_FAMILY(pc_f64_avx2, f64, PC_AVX2, double, int64_t, PC_SIGN64, 32, 4, 2, PC_STREAM_256D,
          PC_NEAR16_256D)
#define PC_FENCE() _mm_sfence()
#else
#define PC_FENCE() ((void)0)
#endif
PC_FAMILY(pc_f32_base, f32, , float, int32_t, PC_SIGN32, 16, 4, 2, PC_STORE, PC_NEAR16_F32)
PC_FAMILY(pc_f64_base, f64, , double, int64_t, PC_SIGN64, 16, 4, 2, PC_STORE, PC_NEAR16_F64)

/* Instruction set: -1 = best the CPU supports; 0 portable, 1 AVX2, 2 AVX-512 (tests force
 * each in turn to check they agree bit for bit). */
static int pc_forced_isa = -1;

static int pc_best_isa(void)
{
#ifdef PC_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return 2;
    if (__builtin_cpu_supports("avx2")) return 1;
#endif
    return 0;
}

static int pc_isa(void)
{
    const int best = pc_best_isa();
    return pc_forced_isa >= 0 && pc_forced_isa < best ? pc_forced_isa : best;
}

/* Driver for element type T: pick the family, chunk Y, run the threads. */
#define PC_DRIVER(TS, T)                                                                      \
typedef struct {                                                                              \
    int nr, mr;                                                                               \
    void (*pack)(const T *, pc_idx, pc_idx, T *);                                             \
    void (*tile)(const T *, pc_idx, const T *, pc_idx, pc_idx, T *, pc_idx, int);             \
    void (*put)(const T *, pc_idx, pc_idx, pc_idx, T *, pc_idx);                              \
    pc_idx (*take)(const T *, pc_idx, pc_idx, T *, pc_idx *, pc_idx, pc_idx, T *, pc_idx *);   \
} pc_##TS##_family;                                                                           \
                                                                                              \
static pc_##TS##_family pc_##TS##_pick(void)                                                  \
{                                                                                             \
    pc_##TS##_family f = {pc_##TS##_base_NR, 4, pc_##TS##_base_pack, pc_##TS##_base_tile,     \
                          pc_##TS##_base_put, pc_##TS##_base_take};                           \
    PC_PICK_X86(TS)                                                                           \
    return f;                                                                                 \
}                                                                                             \
                                                                                              \
/* Rows of Y per chunk: a multiple of NR, packed in about PC_CHUNK_BYTES, and at least 8 chunks \
 * per thread when Y is big enough, for balance. */                                          \
static pc_idx pc_##TS##_chunk(const pc_##TS##_family *f, pc_idx ny, pc_idx d, int nthreads)  \
{                                                                                             \
    pc_idx c = PC_CHUNK_BYTES / ((d > 0 ? d : 1) * (pc_idx)sizeof(T));                         \
    const pc_idx balanced = (ny + 8 * (pc_idx)nthreads - 1) / (8 * (pc_idx)nthreads);         \
    c = c > PC_MAX_NC ? PC_MAX_NC : c;                                                        \
    c = c < balanced ? c : balanced;                                                          \
    c = c / f->nr * f->nr;                                                                    \
    return c > f->nr ? c : f->nr;                                                             \
}                                                                                             \
                                                                                              \
/* Rows of X per tile of nc columns in a buffer (leading dimension nc + 64 bytes): a multiple    \
 * of MR, at most PC_MAX_XB, the tile within about PC_TILE_BYTES. */                           \
static pc_idx pc_##TS##_tile_rows(const pc_##TS##_family *f, pc_idx nc)                      \
{                                                                                             \
    pc_idx xb = PC_TILE_BYTES / ((nc + 64 / (pc_idx)sizeof(T)) * (pc_idx)sizeof(T));          \
    xb = xb / f->mr * f->mr;                                                                  \
    return xb > PC_MAX_XB ? PC_MAX_XB : xb > f->mr ? xb : f->mr;                              \
}                                                                                             \
                                                                                              \
static void *pc_alloc_##TS(pc_idx n, size_t size)                                             \
{                                                                                             \
    return malloc((size_t)(n > 0 ? n : 1) * size);                                            \
}                                                                                             \
                                                                                              \
/* D (nx, ny) = L1 distances of X (nx, d) and Y (ny, d); all C-contiguous. Threads take       \
 * chunks of Y (each packed once, by its thread). symmetric (Y is X): only blocks of X rows     \
 * starting before a chunk's end are computed against it, the rest is copied from the other     \
 * side once all are done; |x - y| and |y - x| are the same bits and both sums run over k in    \
 * order, so D[j, i] equals the D[i, j] a full computation gives. 0, or -1 if out of memory. */ \
static int pc_l1_##TS(const T *X, pc_idx nx, const T *Y, pc_idx ny, pc_idx d, T *D,          \
                      int symmetric, int nthreads, const pc_stop_flag *stop)                  \
{                                                                                             \
    const pc_##TS##_family f = pc_##TS##_pick();                                              \
    if (nx == 0 || ny == 0) return 0;                                                         \
    symmetric = symmetric && d >= PC_SYMMETRIC_MIN_D;                                         \
    const pc_idx nc = pc_##TS##_chunk(&f, ny, d, nthreads);                                   \
    /* Rows of D whose lines all start at the same column (the usual case) get streaming stores  \
     * straight from the micro-kernel: chunks start `head` columns in, on a line, and the head   \
     * is one more, narrow chunk; other layouts go through a tile and put. */                    \
    const int uniform = (uintptr_t)D % sizeof(T) == 0 && ny * sizeof(T) % 64 == 0;           \
    const pc_idx line_head = uniform ? (pc_idx)(-(uintptr_t)D % 64 / sizeof(T)) : 0;          \
    const int direct = uniform && (line_head == 0 || !symmetric);                             \
    const pc_idx head = direct ? line_head : 0;                                               \
    const pc_idx body = (ny - head + nc - 1) / nc;                                            \
    const pc_idx chunks = body + (head + nc - 1) / nc;                                        \
    const pc_idx ldt = nc + 64 / (pc_idx)sizeof(T);                                           \
    const pc_idx xb = direct ? PC_MAX_XB : pc_##TS##_tile_rows(&f, nc);                       \
    T *packed = (T *)pc_alloc_##TS(nthreads * nc * d, sizeof(T));                              \
    T *tiles = direct ? NULL : (T *)pc_alloc_##TS(nthreads * xb * ldt, sizeof(T));           \
    if (!packed || (!direct && !tiles)) {                                                     \
        free(packed);                                                                         \
        free(tiles);                                                                          \
        return -1;                                                                            \
    }                                                                                         \
    _Pragma("omp parallel num_threads(nthreads)")                                             \
    {                                                                                         \
        T *mine = packed + (pc_idx)pc_thread_num() * nc * d;                                  \
        T *tile = direct ? NULL : tiles + (pc_idx)pc_thread_num() * xb * ldt;                 \
        /* symmetric: the biggest chunks (the last) first, for balance; the head's last */     \
        _Pragma("omp for schedule(dynamic, 1)")                                               \
        for (pc_idx c = 0; c < chunks; c++) {                                                 \
            if (pc_stopped(stop)) continue;                                                   \
            const pc_idx y0 = c >= body ? (c - body) * nc                                     \
                                        : head + (symmetric ? body - 1 - c : c) * nc;         \
            const pc_idx end = c >= body ? head : ny;                                         \
            const pc_idx n = end - y0 < nc ? end - y0 : nc;                                   \
            const pc_idx rows = symmetric ? y0 + n : nx;                                      \
            for (pc_idx p = 0; p < n; p += f.nr)                                              \
                f.pack(Y + (y0 + p) * d, n - p, d, mine + p * d);                             \
            for (pc_idx x0 = 0; x0 < rows && !pc_stopped(stop); x0 += xb) {                   \
                const pc_idx m = nx - x0 < xb ? nx - x0 : xb;                                 \
                if (direct)                                                                   \
                    f.tile(X + x0 * d, m, mine, n, d, D + x0 * ny + y0, ny, 1);               \
                else {                                                                        \
                    f.tile(X + x0 * d, m, mine, n, d, tile, ldt, 0);                          \
                    f.put(tile, ldt, m, n, D + x0 * ny + y0, ny);                             \
                }                                                                             \
            }                                                                                 \
            PC_FENCE();                                                                       \
        }                                                                                     \
        /* symmetric: block x0 was computed against the chunks ending after x0; the columns   \
         * before (x0 / nc) * nc are copied from the transposed side, computed above. */      \
        if (symmetric) {                                                                      \
            _Pragma("omp for schedule(dynamic, 1)")                                           \
            for (pc_idx b = (nx - 1) / xb; b >= 0; b--) {                                     \
                if (pc_stopped(stop)) continue;                                               \
                const pc_idx x0 = b * xb, x1 = nx - x0 < xb ? nx : x0 + xb;                   \
                const pc_idx cols = x0 / nc * nc;                                             \
                for (pc_idx j0 = 0; j0 < cols; j0 += PC_MIRROR_TB) {                          \
                    const pc_idx j1 = cols - j0 < PC_MIRROR_TB ? cols : j0 + PC_MIRROR_TB;    \
                    for (pc_idx i = x0; i < x1; i++)                                          \
                        for (pc_idx j = j0; j < j1; j++) D[i * ny + j] = D[j * ny + i];       \
                }                                                                             \
            }                                                                                 \
        }                                                                                     \
    }                                                                                         \
    free(packed);                                                                             \
    free(tiles);                                                                              \
    return 0;                                                                                 \
}                                                                                             \
                                                                                              \
/* Rows of Y per chunk, a multiple of NR packed in about PC_CHUNK_BYTES; and per shared        \
 * super-chunk, a multiple of the chunk packed in about PC_SHARED_BYTES. */                    \
static pc_idx pc_##TS##_shared_chunk(const pc_##TS##_family *f, pc_idx d, pc_idx *super)      \
{                                                                                             \
    pc_idx c = PC_CHUNK_BYTES / (d * (pc_idx)sizeof(T));                                      \
    c = c > PC_MAX_NC ? PC_MAX_NC : c;                                                        \
    c = c / f->nr * f->nr;                                                                    \
    c = c > f->nr ? c : f->nr;                                                                \
    *super = PC_SHARED_BYTES / (d * (pc_idx)sizeof(T)) / c * c;                               \
    *super = *super > c ? *super : c;                                                         \
    return c;                                                                                 \
}                                                                                             \
                                                                                              \
/* dist, idx (nx, k): for every row of X, the k nearest rows of Y (ny >= k >= 1) in L1,        \
 * ascending, ties to the smaller index, NaN last. Each row keeps its k best so far, ascending, \
 * and takes in each tile row of distances (see take). Two ways to share the work, the result   \
 * being the k first of all distances in a total order whichever runs:                          \
 * - over rows of X (enough rows for every thread, d < PC_TOPK_DEEP): the threads pack a       \
 *   super-chunk of Y together, then take blocks of X rows through it chunk by chunk; a row's   \
 *   k best live in dist, idx themselves. Few, long tiles: cheap per distance when d is small.  \
 * - over chunks of Y (few rows of X, or d >= PC_TOPK_DEEP, where the distances dominate): X is \
 *   taken in super-blocks of sb rows; in each, threads take chunks of Y into private k-best    \
 *   lists, then merge them row by row. The blocks of l1_distances, and no barrier but the one  \
 *   per super-block (two per super-chunk the other way, where a late thread stalls the rest).  \
 * 0, or -1 if out of memory. */                                                              \
static int pc_l1_topk_##TS(const T *X, pc_idx nx, const T *Y, pc_idx ny, pc_idx d,           \
                           pc_idx k, T *dist, pc_idx *idx, int nthreads,                      \
                           const pc_stop_flag *stop)                                          \
{                                                                                             \
    const pc_##TS##_family f = pc_##TS##_pick();                                              \
    if (nx == 0) return 0;                                                                    \
    /* blocks of X rows: at least 8 per thread, of MR to PC_TOPK_XB rows */                   \
    pc_idx xb = (nx + 8 * (pc_idx)nthreads - 1) / (8 * (pc_idx)nthreads);                     \
    const int over_x = (nthreads == 1 || xb >= f.mr) && d < PC_TOPK_DEEP;                     \
    xb = (xb + f.mr - 1) / f.mr * f.mr;                                                       \
    xb = xb > PC_TOPK_XB ? PC_TOPK_XB : xb;                                                   \
    pc_idx super = 0;                                                                         \
    const pc_idx nc = over_x ? pc_##TS##_shared_chunk(&f, d, &super)                          \
                             : pc_##TS##_chunk(&f, ny, d, nthreads);                          \
    if (!over_x) /* the blocks of l1_distances, as far as their tile fits PC_TILE_BYTES */     \
        xb = pc_##TS##_tile_rows(&f, nc);                                                     \
    pc_idx sb = PC_HEAP_BYTES / (k * (pc_idx)(sizeof(T) + sizeof(pc_idx)));                   \
    sb = over_x || sb > nx ? nx : sb > 1 ? sb : 1;                                            \
    const pc_idx lists = over_x ? 0 : nthreads * sb * k;                                      \
    T *packed = (T *)pc_alloc_##TS(over_x ? (super < ny ? super : ny + f.nr) * d             \
                                          : nthreads * nc * d, sizeof(T));                    \
    const pc_idx ldt = nc + 64 / (pc_idx)sizeof(T); /* tile rows not 4 KiB apart (L1 sets) */ \
    T *tiles = (T *)pc_alloc_##TS(nthreads * xb * ldt, sizeof(T));                            \
    T *cand_d = (T *)pc_alloc_##TS(nthreads * (nc + k), sizeof(T));                           \
    pc_idx *cand_i = (pc_idx *)pc_alloc_##TS(nthreads * (nc + k), sizeof(pc_idx));             \
    T *list_d = (T *)pc_alloc_##TS(lists, sizeof(T));                                         \
    pc_idx *list_i = (pc_idx *)pc_alloc_##TS(lists, sizeof(pc_idx));                          \
    pc_idx *seen = (pc_idx *)pc_alloc_##TS(nthreads, sizeof(pc_idx));                         \
    int ok = packed && tiles && cand_d && cand_i && list_d && list_i && seen;                 \
    if (ok) {                                                                                 \
        _Pragma("omp parallel num_threads(nthreads)")                                         \
        {                                                                                     \
            const pc_idx t = pc_thread_num(), team = pc_num_threads();                        \
            T *tile = tiles + t * xb * ldt, *cd = cand_d + t * (nc + k);                      \
            pc_idx *ci = cand_i + t * (nc + k);                                               \
            if (over_x) {                                                                     \
                for (pc_idx s0 = 0; s0 < ny; s0 += super) {                                   \
                    const pc_idx ns = ny - s0 < super ? ny - s0 : super;                      \
                    _Pragma("omp for schedule(static)")                                       \
                    for (pc_idx p = 0; p < ns; p += f.nr)                                     \
                        if (!pc_stopped(stop))                                                \
                            f.pack(Y + (s0 + p) * d, ns - p, d, packed + p * d);              \
                    _Pragma("omp for schedule(dynamic, 1)")                                   \
                    for (pc_idx x0 = 0; x0 < nx; x0 += xb) {                                  \
                        const pc_idx m = nx - x0 < xb ? nx - x0 : xb;                         \
                        for (pc_idx y0 = s0; y0 < s0 + ns && !pc_stopped(stop); y0 += nc) {  \
                            const pc_idx n = s0 + ns - y0 < nc ? s0 + ns - y0 : nc;           \
                            f.tile(X + x0 * d, m, packed + (y0 - s0) * d, n, d, tile, ldt, 0); \
                            for (pc_idx r = 0; r < m; r++)                                    \
                                f.take(tile + r * ldt, n, y0, dist + (x0 + r) * k,            \
                                       idx + (x0 + r) * k, y0 < k ? y0 : k, k, cd, ci);       \
                        }                                                                     \
                    }                                                                         \
                }                                                                             \
            } else {                                                                          \
                T *mine = packed + t * nc * d, *ld = list_d + t * sb * k;                     \
                pc_idx *li = list_i + t * sb * k;                                             \
                for (pc_idx s0 = 0; s0 < nx; s0 += sb) {                                      \
                    const pc_idx ms = nx - s0 < sb ? nx - s0 : sb;                            \
                    pc_idx mine_seen = 0;                                                     \
                    _Pragma("omp for schedule(dynamic, 1)")                                   \
                    for (pc_idx y0 = 0; y0 < ny; y0 += nc) {                                  \
                        if (pc_stopped(stop)) continue;                                       \
                        const pc_idx n = ny - y0 < nc ? ny - y0 : nc;                         \
                        const pc_idx kept = mine_seen < k ? mine_seen : k;                    \
                        for (pc_idx p = 0; p < n; p += f.nr)                                  \
                            f.pack(Y + (y0 + p) * d, n - p, d, mine + p * d);                 \
                        for (pc_idx x0 = 0; x0 < ms && !pc_stopped(stop); x0 += xb) {        \
                            const pc_idx m = ms - x0 < xb ? ms - x0 : xb;                     \
                            f.tile(X + (s0 + x0) * d, m, mine, n, d, tile, ldt, 0);            \
                            for (pc_idx r = 0; r < m; r++)                                    \
                                f.take(tile + r * ldt, n, y0, ld + (x0 + r) * k,               \
                                       li + (x0 + r) * k, kept, k, cd, ci);                   \
                        }                                                                     \
                        mine_seen += n;                                                       \
                    }                                                                         \
                    seen[t] = mine_seen < k ? mine_seen : k;                                  \
                    _Pragma("omp barrier")                                                    \
                    _Pragma("omp for schedule(static)")                                       \
                    for (pc_idx r = 0; r < ms; r++) {                                         \
                        T *od = dist + (s0 + r) * k;                                          \
                        pc_idx *oi = idx + (s0 + r) * k, m = 0;                               \
                        for (pc_idx u = 0; u < team; u++)                                     \
                            m = pc_##TS##_merge(od, oi, m, list_d + (u * sb + r) * k,         \
                                                list_i + (u * sb + r) * k, seen[u], k, cd, ci); \
                    }                                                                         \
                }                                                                             \
            }                                                                                 \
        }                                                                                     \
    }                                                                                         \
    free(packed);                                                                             \
    free(tiles);                                                                              \
    free(cand_d);                                                                             \
    free(cand_i);                                                                             \
    free(list_d);                                                                             \
    free(list_i);                                                                             \
    free(seen);                                                                               \
    return ok ? 0 : -1;                                                                       \
}

#ifdef PC_X86
#define PC_PICK_X86(TS)                                                                       \
    switch (pc_isa()) {                                                                       \
    case 2: f = (pc_##TS##_family){pc_##TS##_avx512_NR, 8, pc_##TS##_avx512_pack,             \
                                   pc_##TS##_avx512_tile, pc_##TS##_avx512_put,               \
                                   pc_##TS##_avx512_take}; break;                             \
    case 1: f = (pc_##TS##_family){pc_##TS##_avx2_NR, 4, pc_##TS##_avx2_pack,                 \
                                   pc_##TS##_avx2_tile, pc_##TS##_avx2_put,                   \
                                   pc_##TS##_avx2_take}; break;                               \
    default: break;                                                                           \
    }
#else
#define PC_PICK_X86(TS)
#endif

PC_DRIVER(f32, float)
PC_DRIVER(f64, double)

#endif
