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
 * straight into D (streaming stores when aligned); top-k writes it into a per-thread buffer and
 * folds each row into that thread's heaps for a super-block of X rows; the heaps of all threads
 * are then merged row by row in a total order (distance, NaN last, then index), so the result
 * does not depend on which thread saw which chunk.
 */
#ifndef PYCONV_L1_KERNELS_H
#define PYCONV_L1_KERNELS_H

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
#define PC_HEAP_BYTES (1 << 22)      /* per-thread top-k heaps: at most about 4 MiB */

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define PC_X86 1
#endif

/* One instruction-set family for element type T: vectors of VB bytes, micro-kernel of MR rows
 * of X by NV vectors (NR = NV * VB / sizeof(T) rows of Y). ATTR selects the target, STREAM(p, v)
 * stores a vector past the cache, FAR16(p, w) tells whether all of p[0:16] are > w. */
#define PC_FAMILY(SFX, TS, ATTR, T, IT, SIGN, VB, MR, NV, STREAM, FAR16)                     \
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
/* Fold the distances row[0:n] to rows first, first + 1, ... of Y into the heap. A block of 16 \
 * is tested at once against the worst entry kept; only its near lanes are examined. */        \
static ATTR void SFX##_fold(const T *row, pc_idx n, pc_idx first, T *hd, pc_idx *hi, pc_idx k) \
{                                                                                             \
    pc_idx j0 = 0;                                                                            \
    for (; j0 + 16 <= n; j0 += 16) {                                                          \
        const T worst = hd[0];                                                                \
        if (FAR16(row + j0, worst)) continue;                                                 \
        unsigned near = 0;                                                                    \
        for (int u = 0; u < 16; u++) near |= (unsigned)!(row[j0 + u] > worst) << u;           \
        while (near) {                                                                        \
            const pc_idx j = j0 + __builtin_ctz(near);                                        \
            near &= near - 1;                                                                 \
            if (PC_AFTER(hd[0], hi[0], row[j], first + j)) {                                  \
                hd[0] = row[j];                                                               \
                hi[0] = first + j;                                                            \
                pc_##TS##_sift(hd, hi, k);                                                    \
            }                                                                                 \
        }                                                                                     \
    }                                                                                         \
    for (pc_idx j = j0; j < n; j++)                                                           \
        if (PC_AFTER(hd[0], hi[0], row[j], first + j)) {                                      \
            hd[0] = row[j];                                                                   \
            hi[0] = first + j;                                                                \
            pc_##TS##_sift(hd, hi, k);                                                        \
        }                                                                                     \
}

#define PC_SIGN32 ((int32_t)0x80000000u)
#define PC_SIGN64 ((int64_t)0x8000000000000000ull)

/* Order of top-k entries: by distance, NaN after every number, ties by index.
 * Returns whether (da, ia) comes after (db, ib). */
#define PC_AFTER(da, ia, db, ib)                                                              \
    (((da) != (da) || (db) != (db))                                                           \
         ? (((da) != (da)) != ((db) != (db)) ? (da) != (da) : (ia) > (ib))                    \
         : ((da) != (db) ? (da) > (db) : (ia) > (ib)))

/* Max-heap helpers for element type T (the worst entry on top). */
#define PC_HEAP(TS, T)                                                                        \
/* Restore the max-heap (worst entry on top) of k entries after replacing its top. Inlined into \
 * each instruction set's fold: a call to baseline SSE code from AVX-512 code costs a state     \
 * transition each time. */                                                                   \
static inline __attribute__((always_inline)) void pc_##TS##_sift(T *hd, pc_idx *hi, pc_idx k)                                 \
{                                                                                             \
    pc_idx i = 0;                                                                             \
    const T d = hd[0];                                                                        \
    const pc_idx id = hi[0];                                                                  \
    for (;;) {                                                                                \
        pc_idx c = 2 * i + 1;                                                                 \
        if (c >= k) break;                                                                    \
        if (c + 1 < k && PC_AFTER(hd[c + 1], hi[c + 1], hd[c], hi[c])) c++;                   \
        if (!PC_AFTER(hd[c], hi[c], d, id)) break;                                            \
        hd[i] = hd[c];                                                                        \
        hi[i] = hi[c];                                                                        \
        i = c;                                                                                \
    }                                                                                         \
    hd[i] = d;                                                                                \
    hi[i] = id;                                                                               \
}                                                                                             \
                                                                                              \
/* Sort a heap of k entries ascending in place (heap sort: the order is total). */            \
static void pc_##TS##_sort_heap(T *hd, pc_idx *hi, pc_idx k)                                  \
{                                                                                             \
    for (pc_idx n = k - 1; n > 0; n--) {                                                      \
        const T d = hd[0];                                                                    \
        const pc_idx id = hi[0];                                                              \
        hd[0] = hd[n];                                                                        \
        hi[0] = hi[n];                                                                        \
        hd[n] = d;                                                                            \
        hi[n] = id;                                                                           \
        pc_##TS##_sift(hd, hi, n);                                                            \
    }                                                                                         \
}                                                                                             \

PC_HEAP(f32, float)
PC_HEAP(f64, double)

#define PC_STORE(p, v) memcpy((p), &(v), sizeof(v))
/* Portable FAR16: are all of p[0:16] > w (false for NaN)? */
static inline int pc_far16_f32(const float *p, float w)
{
    int far = 1;
    for (int u = 0; u < 16; u++) far &= p[u] > w;
    return far;
}

static inline int pc_far16_f64(const double *p, double w)
{
    int far = 1;
    for (int u = 0; u < 16; u++) far &= p[u] > w;
    return far;
}
#define PC_FAR16_F32(p, w) pc_far16_f32((p), (w))
#define PC_FAR16_F64(p, w) pc_far16_f64((p), (w))

#ifdef PC_X86
#include <immintrin.h>
#define PC_AVX512 __attribute__((target("avx512f")))
#define PC_AVX2 __attribute__((target("avx2")))
#define PC_STREAM_512S(p, v) _mm512_stream_ps((p), (__m512)(v))
#define PC_STREAM_512D(p, v) _mm512_stream_pd((p), (__m512d)(v))
#define PC_STREAM_256S(p, v) _mm256_stream_ps((p), (__m256)(v))
#define PC_STREAM_256D(p, v) _mm256_stream_pd((p), (__m256d)(v))
#define PC_GT512S(p, w) _mm512_cmp_ps_mask(_mm512_loadu_ps(p), _mm512_set1_ps(w), _CMP_GT_OQ)
#define PC_GT512D(p, w) _mm512_cmp_pd_mask(_mm512_loadu_pd(p), _mm512_set1_pd(w), _CMP_GT_OQ)
#define PC_GT256S(p, w) _mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(p), _mm256_set1_ps(w), _CMP_GT_OQ))
#define PC_GT256D(p, w) _mm256_movemask_pd(_mm256_cmp_pd(_mm256_loadu_pd(p), _mm256_set1_pd(w), _CMP_GT_OQ))
#define PC_FAR16_512S(p, w) (PC_GT512S(p, w) == 0xFFFF)
#define PC_FAR16_512D(p, w) ((PC_GT512D(p, w) & PC_GT512D((p) + 8, w)) == 0xFF)
#define PC_FAR16_256S(p, w) ((PC_GT256S(p, w) & PC_GT256S((p) + 8, w)) == 0xFF)
#define PC_FAR16_256D(p, w)                                                                   \
    ((PC_GT256D(p, w) & PC_GT256D((p) + 4, w) & PC_GT256D((p) + 8, w) &                       \
      PC_GT256D((p) + 12, w)) == 0xF)
PC_FAMILY(pc_f32_avx512, f32, PC_AVX512, float, int32_t, PC_SIGN32, 64, 8, 2, PC_STREAM_512S,
          PC_FAR16_512S)
PC_FAMILY(pc_f64_avx512, f64, PC_AVX512, double, int64_t, PC_SIGN64, 64, 8, 2, PC_STREAM_512D,
          PC_FAR16_512D)
PC_FAMILY(pc_f32_avx2, f32, PC_AVX2, float, int32_t, PC_SIGN32, 32, 4, 2, PC_STREAM_256S,
          PC_FAR16_256S)
PC_FAMILY(pc_f64_avx2, f64, PC_AVX2, double, int64_t, PC_SIGN64, 32, 4, 2, PC_STREAM_256D,
          PC_FAR16_256D)
#define PC_FENCE() _mm_sfence()
#else
#define PC_FENCE() ((void)0)
#endif
PC_FAMILY(pc_f32_base, f32, , float, int32_t, PC_SIGN32, 16, 4, 2, PC_STORE, PC_FAR16_F32)
PC_FAMILY(pc_f64_base, f64, , double, int64_t, PC_SIGN64, 16, 4, 2, PC_STORE, PC_FAR16_F64)

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
    void (*fold)(const T *, pc_idx, pc_idx, T *, pc_idx *, pc_idx);                           \
} pc_##TS##_family;                                                                           \
                                                                                              \
static pc_##TS##_family pc_##TS##_pick(void)                                                  \
{                                                                                             \
    pc_##TS##_family f = {pc_##TS##_base_NR, 4, pc_##TS##_base_pack, pc_##TS##_base_tile, \
                          pc_##TS##_base_fold};    \
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
static void *pc_alloc_##TS(pc_idx n, size_t size)                                             \
{                                                                                             \
    return malloc((size_t)(n > 0 ? n : 1) * size);                                            \
}                                                                                             \
                                                                                              \
/* D (nx, ny) = L1 distances of X (nx, d) and Y (ny, d); all C-contiguous. Threads take       \
 * chunks of Y (each packed once, by its thread) with no barrier. 0, or -1 if out of memory. */ \
static int pc_l1_##TS(const T *X, pc_idx nx, const T *Y, pc_idx ny, pc_idx d, T *D,          \
                      int nthreads)                                                           \
{                                                                                             \
    const pc_##TS##_family f = pc_##TS##_pick();                                              \
    if (nx == 0 || ny == 0) return 0;                                                         \
    const pc_idx nc = pc_##TS##_chunk(&f, ny, d, nthreads);                                   \
    T *packed = (T *)pc_alloc_##TS(nthreads * nc * d, sizeof(T));                              \
    if (!packed) return -1;                                                                   \
    _Pragma("omp parallel for num_threads(nthreads) schedule(dynamic, 1)")                    \
    for (pc_idx y0 = 0; y0 < ny; y0 += nc) {                                                  \
        T *mine = packed + (pc_idx)pc_thread_num() * nc * d;                                  \
        const pc_idx n = ny - y0 < nc ? ny - y0 : nc;                                         \
        for (pc_idx p = 0; p < n; p += f.nr)                                                  \
            f.pack(Y + (y0 + p) * d, n - p, d, mine + p * d);                                 \
        for (pc_idx x0 = 0; x0 < nx; x0 += PC_MAX_XB)                                         \
            f.tile(X + x0 * d, nx - x0 < PC_MAX_XB ? nx - x0 : PC_MAX_XB, mine, n, d,         \
                   D + x0 * ny + y0, ny, 1);                                                  \
        PC_FENCE();                                                                           \
    }                                                                                         \
    free(packed);                                                                             \
    return 0;                                                                                 \
}                                                                                             \
                                                                                              \
/* dist, idx (nx, k): for every row of X, the k nearest rows of Y (ny >= k >= 1) in L1,        \
 * ascending, ties to the smaller index, NaN last. X is taken in super-blocks of sb rows; in    \
 * each, threads take chunks of Y into private heaps, then merge them row by row. The result is \
 * the k first of the union in a total order, whoever found what. 0, or -1 if out of memory. */ \
static int pc_l1_topk_##TS(const T *X, pc_idx nx, const T *Y, pc_idx ny, pc_idx d,           \
                           pc_idx k, T *dist, pc_idx *idx, int nthreads)                      \
{                                                                                             \
    const pc_##TS##_family f = pc_##TS##_pick();                                              \
    if (nx == 0) return 0;                                                                    \
    const pc_idx nc = pc_##TS##_chunk(&f, ny, d, nthreads);                                   \
    pc_idx sb = PC_HEAP_BYTES / (k * (pc_idx)(sizeof(T) + sizeof(pc_idx)));                   \
    sb = sb < nx ? sb : nx;                                                                   \
    sb = sb > 1 ? sb : 1;                                                                     \
    T *packed = (T *)pc_alloc_##TS(nthreads * nc * d, sizeof(T));                              \
    T *tiles = (T *)pc_alloc_##TS(nthreads * PC_MAX_XB * nc, sizeof(T));                      \
    T *heap_d = (T *)pc_alloc_##TS(nthreads * sb * k, sizeof(T));                             \
    pc_idx *heap_i = (pc_idx *)pc_alloc_##TS(nthreads * sb * k, sizeof(pc_idx));               \
    int ok = packed && tiles && heap_d && heap_i;                                             \
    if (ok) {                                                                                 \
        _Pragma("omp parallel num_threads(nthreads)")                                         \
        {                                                                                     \
            const pc_idx t = pc_thread_num(), team = pc_num_threads();                        \
            T *mine = packed + t * nc * d, *tile = tiles + t * PC_MAX_XB * nc;                \
            T *hd = heap_d + t * sb * k;                                                      \
            pc_idx *hi = heap_i + t * sb * k;                                                 \
            for (pc_idx s0 = 0; s0 < nx; s0 += sb) {                                          \
                const pc_idx ms = nx - s0 < sb ? nx - s0 : sb;                                \
                for (pc_idx e = 0; e < ms * k; e++) {                                         \
                    hd[e] = (T)NAN;                                                           \
                    hi[e] = PTRDIFF_MAX;                                                      \
                }                                                                             \
                _Pragma("omp for schedule(dynamic, 1)")                                       \
                for (pc_idx y0 = 0; y0 < ny; y0 += nc) {                                      \
                    const pc_idx n = ny - y0 < nc ? ny - y0 : nc;                             \
                    for (pc_idx p = 0; p < n; p += f.nr)                                      \
                        f.pack(Y + (y0 + p) * d, n - p, d, mine + p * d);                     \
                    for (pc_idx x0 = 0; x0 < ms; x0 += PC_MAX_XB) {                           \
                        const pc_idx m = ms - x0 < PC_MAX_XB ? ms - x0 : PC_MAX_XB;           \
                        f.tile(X + (s0 + x0) * d, m, mine, n, d, tile, nc, 0);                   \
                        for (pc_idx r = 0; r < m; r++)                                        \
                            f.fold(tile + r * nc, n, y0, hd + (x0 + r) * k,           \
                                           hi + (x0 + r) * k, k);                             \
                    }                                                                         \
                }                                                                             \
                _Pragma("omp for schedule(static)")                                           \
                for (pc_idx r = 0; r < ms; r++) {                                             \
                    T *od = dist + (s0 + r) * k;                                              \
                    pc_idx *oi = idx + (s0 + r) * k;                                          \
                    memcpy(od, heap_d + r * k, (size_t)k * sizeof(T));                        \
                    memcpy(oi, heap_i + r * k, (size_t)k * sizeof(pc_idx));                   \
                    for (pc_idx u = 1; u < team; u++)                                         \
                        for (pc_idx e = 0; e < k; e++) {                                      \
                            const T c = heap_d[(u * sb + r) * k + e];                         \
                            const pc_idx ci = heap_i[(u * sb + r) * k + e];                   \
                            if (PC_AFTER(od[0], oi[0], c, ci)) {                              \
                                od[0] = c;                                                    \
                                oi[0] = ci;                                                   \
                                pc_##TS##_sift(od, oi, k);                                    \
                            }                                                                 \
                        }                                                                     \
                    pc_##TS##_sort_heap(od, oi, k);                                           \
                }                                                                             \
            }                                                                                 \
        }                                                                                     \
    }                                                                                         \
    free(packed);                                                                             \
    free(tiles);                                                                              \
    free(heap_d);                                                                             \
    free(heap_i);                                                                             \
    return ok ? 0 : -1;                                                                       \
}

#ifdef PC_X86
#define PC_PICK_X86(TS)                                                                       \
    switch (pc_isa()) {                                                                       \
    case 2: f = (pc_##TS##_family){pc_##TS##_avx512_NR, 8, pc_##TS##_avx512_pack,             \
                                   pc_##TS##_avx512_tile, pc_##TS##_avx512_fold}; break;                             \
    case 1: f = (pc_##TS##_family){pc_##TS##_avx2_NR, 4, pc_##TS##_avx2_pack,                 \
                                   pc_##TS##_avx2_tile, pc_##TS##_avx2_fold}; break;                               \
    default: break;                                                                           \
    }
#else
#define PC_PICK_X86(TS)
#endif

PC_DRIVER(f32, float)
PC_DRIVER(f64, double)

#endif
