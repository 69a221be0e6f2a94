/* The pairwise L1 kernels of l1.h for one element type T and CPU level: a template, compiled
 * once per (T, level) in a translation unit that setup.py generates (see cpu_features.h); the
 * entry points are l1_distances_<TS>_<LEVEL> and l1_topk_<TS>_<LEVEL>. How they work: l1.h.
 *
 * Per level: vectors of VB bytes, a micro-kernel of MR rows of X by NV vectors (NR = NV *
 * VB / sizeof(T) rows of Y); L1_STREAM(p, v) stores a vector past the cache and
 * L1_NEAR16(p, w) has bit u set where p[u] <= w (not for NaN). */
#include "l1.h"

#if CPU_LEVEL == CPU_PORTABLE || CPU_X86

#if TS_F32
#define IT int32_t
#define SIGN ((int32_t)0x80000000u)
#else
#define IT int64_t
#define SIGN ((int64_t)0x8000000000000000ull)
#endif

#if CPU_LEVEL == CPU_PORTABLE
#define VB 16
#define MR 4
#define NV 2
#define L1_STREAM(p, v) memcpy((p), &(v), sizeof(v))
#define L1_FENCE() ((void)0)
/* bit u set where p[u] <= w (never for NaN) */
static inline unsigned l1_near16(const T *p, T w)
{
    unsigned near = 0;
    for (int u = 0; u < 16; u++) near |= (unsigned)(p[u] <= w) << u;
    return near;
}
#define L1_NEAR16(p, w) l1_near16((p), (w))
#else
#include <immintrin.h>
#define L1_FENCE() _mm_sfence()
#define NV 2
#if CPU_LEVEL == CPU_AVX512
#define VB 64
#define MR 8
#if TS_F32
#define L1_STREAM(p, v) _mm512_stream_ps((p), (__m512)(v))
#define L1_LE(p, w) _mm512_cmp_ps_mask(_mm512_loadu_ps(p), _mm512_set1_ps(w), _CMP_LE_OQ)
#define L1_NEAR16(p, w) (unsigned)L1_LE(p, w)
#else
#define L1_STREAM(p, v) _mm512_stream_pd((p), (__m512d)(v))
#define L1_LE(p, w) _mm512_cmp_pd_mask(_mm512_loadu_pd(p), _mm512_set1_pd(w), _CMP_LE_OQ)
#define L1_NEAR16(p, w) ((unsigned)L1_LE(p, w) | (unsigned)L1_LE((p) + 8, w) << 8)
#endif
#else
#define VB 32
#define MR 4
#if TS_F32
#define L1_STREAM(p, v) _mm256_stream_ps((p), (__m256)(v))
#define L1_LE(p, w)                                                                          \
    (unsigned)_mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(p), _mm256_set1_ps(w), _CMP_LE_OQ))
#define L1_NEAR16(p, w) (L1_LE(p, w) | L1_LE((p) + 8, w) << 8)
#else
#define L1_STREAM(p, v) _mm256_stream_pd((p), (__m256d)(v))
#define L1_LE(p, w)                                                                          \
    (unsigned)_mm256_movemask_pd(_mm256_cmp_pd(_mm256_loadu_pd(p), _mm256_set1_pd(w), _CMP_LE_OQ))
#define L1_NEAR16(p, w)                                                                      \
    (L1_LE(p, w) | L1_LE((p) + 4, w) << 4 | L1_LE((p) + 8, w) << 8 | L1_LE((p) + 12, w) << 12)
#endif
#endif
#endif

/* Selection helpers over entries (d[i], id[i]) in the order of L1_AFTER. */
static inline __attribute__((always_inline)) void l1_swap(T *d, l1_idx *id, l1_idx a,
                                                                 l1_idx b)
{
    const T t = d[a];
    const l1_idx ti = id[a];
    d[a] = d[b];
    id[a] = id[b];
    d[b] = t;
    id[b] = ti;
}

/* Sift entry i down the max-heap d[0:n] (largest in the order of L1_AFTER on top). */
static inline __attribute__((always_inline)) void l1_sift(T *d, l1_idx *id, l1_idx i,
                                                                 l1_idx n)
{
    for (;;) {
        l1_idx c = 2 * i + 1;
        if (c >= n) return;
        if (c + 1 < n && L1_AFTER(d[c + 1], id[c + 1], d[c], id[c])) c++;
        if (!L1_AFTER(d[c], id[c], d[i], id[i])) return;
        l1_swap(d, id, i, c);
        i = c;
    }
}

/* Sort n entries ascending: insertion sort when few (the usual case), heap sort else. */
static inline __attribute__((always_inline)) void l1_sort(T *d, l1_idx *id, l1_idx n)
{
    if (n > 32) {
        for (l1_idx i = n / 2 - 1; i >= 0; i--) l1_sift(d, id, i, n);
        for (l1_idx e = n - 1; e > 0; e--) {
            l1_swap(d, id, 0, e);
            l1_sift(d, id, 0, e);
        }
        return;
    }
    for (l1_idx i = 1; i < n; i++) {
        const T v = d[i];
        const l1_idx vi = id[i];
        l1_idx j = i;
        for (; j > 0 && L1_AFTER(d[j - 1], id[j - 1], v, vi); j--) {
            d[j] = d[j - 1];
            id[j] = id[j - 1];
        }
        d[j] = v;
        id[j] = vi;
    }
}

/* Reorder n > k entries so that the first k are the k smallest (quickselect, median of three). */
static inline __attribute__((always_inline)) void l1_select(T *d, l1_idx *id, l1_idx n, l1_idx k)
{
    l1_idx lo = 0, hi = n - 1;
    while (hi - lo > 2) {
        const l1_idx mid = lo + (hi - lo) / 2;
        if (L1_AFTER(d[lo], id[lo], d[mid], id[mid])) l1_swap(d, id, lo, mid);
        if (L1_AFTER(d[mid], id[mid], d[hi], id[hi])) l1_swap(d, id, mid, hi);
        if (L1_AFTER(d[lo], id[lo], d[mid], id[mid])) l1_swap(d, id, lo, mid);
        l1_swap(d, id, mid, hi - 1); /* pivot at hi - 1; d[lo] <= pivot <= d[hi] */
        const T p = d[hi - 1];
        const l1_idx pi = id[hi - 1];
        l1_idx i = lo, j = hi - 1;
        for (;;) {
            do i++; while (L1_AFTER(p, pi, d[i], id[i]));
            do j--; while (L1_AFTER(d[j], id[j], p, pi));
            if (i >= j) break;
            l1_swap(d, id, i, j);
        }
        l1_swap(d, id, i, hi - 1); /* the pivot's final place: i */
        if (i == k - 1 || i == k) return;
        if (i < k) lo = i + 1;
        else hi = i - 1;
    }
    l1_sort(d + lo, id + lo, hi - lo + 1);
}

/* Merge ascending (sd, si)[0:m] and (cd, ci)[0:s] into the k first, back into sd, si, through
 * the scratch td, ti; returns their count. */
static inline __attribute__((always_inline)) l1_idx l1_merge(
    T *sd, l1_idx *si, l1_idx m, const T *cd, const l1_idx *ci, l1_idx s, l1_idx k, T *td,
    l1_idx *ti)
{
    const l1_idx total = m + s < k ? m + s : k;
    l1_idx a = 0, b = 0;
    for (l1_idx o = 0; o < total; o++)
        if (b == s || (a < m && !L1_AFTER(sd[a], si[a], cd[b], ci[b]))) {
            td[o] = sd[a];
            ti[o] = si[a++];
        } else {
            td[o] = cd[b];
            ti[o] = ci[b++];
        }
    memcpy(sd, td, (size_t)total * sizeof(T));
    memcpy(si, ti, (size_t)total * sizeof(l1_idx));
    return total;
}

/* The k-th smallest of n numbers (no NaN), k <= n; reorders them. */
static inline __attribute__((always_inline)) T l1_kth_smallest(T *v, l1_idx n,
                                                                      l1_idx k)
{
    for (l1_idx i = 0; i < k; i++) {
        l1_idx best = i;
        for (l1_idx j = i + 1; j < n; j++) best = v[j] < v[best] ? j : best;
        const T t = v[i];
        v[i] = v[best];
        v[best] = t;
    }
    return v[k - 1];
}

typedef T l1_v __attribute__((vector_size(VB), aligned(sizeof(T))));
typedef IT l1_iv __attribute__((vector_size(VB), aligned(sizeof(T))));
enum { L1_W = (VB) / (int)sizeof(T), L1_NR = (NV) * ((VB) / (int)sizeof(T)) };

/* Pack rows [0, n) of Y (n, d) into panels of NR rows, k-major, zero padded. */
static void l1_pack(const T *Y, l1_idx n, l1_idx d, T *dst)
{
    for (l1_idx k = 0; k < d; k++)
        for (l1_idx r = 0; r < L1_NR; r++)
            dst[k * L1_NR + r] = r < n ? Y[r * d + k] : (T)0;
}

/* C[r, c] (+)= sum_{k < kc} |x[r, k] - panel[k, c]| for MR (or 1) rows and NR columns; the
 * last slab of a full, aligned panel bypasses the cache (the output is not read again). */
static inline __attribute__((always_inline)) void l1_micro(
    const int mr, const T *x, l1_idx ldx, const T *yp, l1_idx kc, T *c, l1_idx ldc,
    int first, int last, int ncols)
{
    l1_v acc[MR][NV];
    const l1_iv mask = (l1_iv){0} + (IT)(~(SIGN));
    T edge[MR * L1_NR];
    T *out = c;
    l1_idx ldo = ldc;
    if (ncols < L1_NR) {
        out = edge;
        ldo = L1_NR;
        if (!first)
            for (int r = 0; r < mr; r++)
                for (int j = 0; j < ncols; j++) edge[r * L1_NR + j] = c[r * ldc + j];
    }
    for (int r = 0; r < MR; r++)
        for (int v = 0; v < NV; v++)
            if (r < mr) {
                if (first) acc[r][v] = (l1_v){0};
                else memcpy(&acc[r][v], out + r * ldo + v * L1_W, VB);
            }
    for (l1_idx k = 0; k < kc; k++) {
        l1_v y[NV];
        for (int v = 0; v < NV; v++) memcpy(&y[v], yp + k * L1_NR + v * L1_W, VB);
        for (int r = 0; r < MR; r++)
            if (r < mr) {
                const T xs = x[r * ldx + k];
                for (int v = 0; v < NV; v++) {
                    l1_v t = y[v] - xs;
                    t = (l1_v)((l1_iv)t & mask);
                    acc[r][v] = acc[r][v] + t;
                }
            }
    }
    if (last && ncols == L1_NR && (uintptr_t)c % (VB) == 0 && ldc * sizeof(T) % (VB) == 0)
        for (int r = 0; r < MR; r++)
            for (int v = 0; v < NV; v++) {
                if (r < mr) L1_STREAM(out + r * ldo + v * L1_W, acc[r][v]);
            }
    else
        for (int r = 0; r < MR; r++)
            for (int v = 0; v < NV; v++)
                if (r < mr) memcpy(out + r * ldo + v * L1_W, &acc[r][v], VB);
    if (ncols < L1_NR)
        for (int r = 0; r < mr; r++)
            for (int j = 0; j < ncols; j++) c[r * ldc + j] = edge[r * L1_NR + j];
}

/* C (nx, ny) with leading dimension ldc = L1 distances of X (nx, d >= 1) to the packed ny rows. */
static void l1_tile(const T *X, l1_idx nx, const T *yp, l1_idx ny, l1_idx d,
                            T *C, l1_idx ldc, int stream)
{
    for (l1_idx k0 = 0; k0 < d; k0 += L1_KC) {
        const l1_idx kc = d - k0 < L1_KC ? d - k0 : L1_KC;
        for (l1_idx j0 = 0; j0 < ny; j0 += L1_NR) {
            const int nc = ny - j0 < L1_NR ? (int)(ny - j0) : L1_NR;
            const T *panel = yp + j0 * d + k0 * L1_NR;
            l1_idx i = 0;
            for (; i + MR <= nx; i += MR)
                l1_micro(MR, X + i * d + k0, d, panel, kc, C + i * ldc + j0, ldc,
                            k0 == 0, stream && k0 + kc == d, nc);
            for (; i < nx; i++)
                l1_micro(1, X + i * d + k0, d, panel, kc, C + i * ldc + j0, ldc,
                            k0 == 0, 0, nc);
        }
    }
}

/* Copy m rows of n values from src (leading dimension lds) to dst (ldd): each destination
 * row's whole 64-byte lines with streaming stores (the result is not read again here), the
 * partial lines at its two ends, which a neighbouring block may share, with plain stores. */
static void l1_put(const T *src, l1_idx lds, l1_idx m, l1_idx n, T *dst, l1_idx ldd)
{
    enum { LINE = 64 / (int)sizeof(T) };
    for (l1_idx r = 0; r < m; r++) {
        const T *s = src + r * lds;
        T *o = dst + r * ldd;
        l1_idx j = (uintptr_t)o % sizeof(T) ? n : (l1_idx)(-(uintptr_t)o % 64 / sizeof(T));
        j = j < n ? j : n;
        memcpy(o, s, (size_t)j * sizeof(T));
        for (; j + LINE <= n; j += LINE)
            for (int v = 0; v < LINE; v += L1_W) {
                l1_v t;
                memcpy(&t, s + j + v, VB);
                L1_STREAM(o + j + v, t);
            }
        memcpy(o + j, s + j, (size_t)(n - j) * sizeof(T));
    }
}

/* Take a row of n distances, to rows first, first + 1, ... of Y, into a row's k best so far
 * (sd, si: m entries, ascending): returns the new count. Candidates are the distances <= the
 * k-th kept, tested 16 at a time; while fewer than k numbers are kept, the k-th smallest of
 * the row's lane minima bounds them instead (that many distinct distances are at most it).
 * The few candidates are sorted and merged in. cd, ci: scratch for n + k entries. */
static l1_idx l1_take(const T *row, l1_idx n, l1_idx first, T *sd, l1_idx *si,
                              l1_idx m, l1_idx k, T *cd, l1_idx *ci)
{
    T thr = m == k ? sd[k - 1] : (T)NAN;
    if (thr != thr && k <= 4 * L1_W) {
        const l1_idx groups = (k + L1_W - 1) / L1_W;
        if (n >= groups * L1_W) {
            l1_v lo[4];
            T mins[4 * L1_W];
            for (l1_idx g = 0; g < groups; g++) lo[g] = (l1_v){0} + (T)INFINITY;
            for (l1_idx j = 0; j + groups * L1_W <= n; j += groups * L1_W)
                for (l1_idx g = 0; g < groups; g++) {
                    l1_v v;
                    memcpy(&v, row + j + g * L1_W, VB);
                    const l1_iv lt = (l1_iv)(v < lo[g]);
                    lo[g] = (l1_v)(((l1_iv)v & lt) | ((l1_iv)lo[g] & ~lt));
                }
            memcpy(mins, lo, (size_t)groups * VB);
            const T bound = l1_kth_smallest(mins, groups * L1_W, k);
            if (bound < (T)INFINITY) thr = bound;
        }
    }
    l1_idx s = 0;
    if (thr != thr) {
        for (l1_idx j = 0; j < n; j++) {
            cd[s] = row[j];
            ci[s++] = first + j;
        }
    } else {
        l1_idx j0 = 0;
        for (; j0 + 16 <= n; j0 += 16) {
            unsigned near = L1_NEAR16(row + j0, thr);
            while (near) {
                const l1_idx j = j0 + __builtin_ctz(near);
                near &= near - 1;
                cd[s] = row[j];
                ci[s++] = first + j;
            }
        }
        for (l1_idx j = j0; j < n; j++)
            if (row[j] <= thr) {
                cd[s] = row[j];
                ci[s++] = first + j;
            }
    }
    if (s == 0) return m;
    if (s > k) {
        l1_select(cd, ci, s, k);
        s = k;
    }
    l1_sort(cd, ci, s);
    return l1_merge(sd, si, m, cd, ci, s, k, cd + s, ci + s);
}

/* Rows of Y per chunk: a multiple of NR, packed in about L1_CHUNK_BYTES, and at least 8 chunks
 * per thread when Y is big enough, for balance. */
static l1_idx l1_chunk(l1_idx ny, l1_idx d, int nthreads)
{
    l1_idx c = L1_CHUNK_BYTES / ((d > 0 ? d : 1) * (l1_idx)sizeof(T));
    const l1_idx balanced = (ny + 8 * (l1_idx)nthreads - 1) / (8 * (l1_idx)nthreads);
    c = c > L1_MAX_NC ? L1_MAX_NC : c;
    c = c < balanced ? c : balanced;
    c = c / L1_NR * L1_NR;
    return c > L1_NR ? c : L1_NR;
}

/* Rows of X per tile of nc columns in a buffer (leading dimension nc + 64 bytes): a multiple
 * of MR, at most L1_MAX_XB, the tile within about L1_TILE_BYTES. */
static l1_idx l1_tile_rows(l1_idx nc)
{
    l1_idx xb = L1_TILE_BYTES / ((nc + 64 / (l1_idx)sizeof(T)) * (l1_idx)sizeof(T));
    xb = xb / MR * MR;
    return xb > L1_MAX_XB ? L1_MAX_XB : xb > MR ? xb : MR;
}

static void *l1_alloc(l1_idx n, size_t size)
{
    return malloc((size_t)(n > 0 ? n : 1) * size);
}

/* D (nx, ny) = L1 distances of X (nx, d) and Y (ny, d); all C-contiguous. Threads take
 * chunks of Y (each packed once, by its thread). symmetric (Y is X): only blocks of X rows
 * starting before a chunk's end are computed against it, the rest is copied from the other
 * side once all are done; |x - y| and |y - x| are the same bits and both sums run over k in
 * order, so D[j, i] equals the D[i, j] a full computation gives. 0, or -1 if out of memory. */
int VARIANT(l1_distances)(const T *X, l1_idx nx, const T *Y, l1_idx ny, l1_idx d, T *D,
                      int symmetric, int nthreads)
{
    if (nx == 0 || ny == 0) return 0;
    symmetric = symmetric && d >= L1_SYMMETRIC_MIN_D;
    const l1_idx nc = l1_chunk(ny, d, nthreads);
    /* Rows of D whose lines all start at the same column (the usual case) get streaming stores
     * straight from the micro-kernel: chunks start `head` columns in, on a line, and the head
     * is one more, narrow chunk; other layouts go through a tile and put. */
    const int uniform = (uintptr_t)D % sizeof(T) == 0 && ny * sizeof(T) % 64 == 0;
    const l1_idx line_head = uniform ? (l1_idx)(-(uintptr_t)D % 64 / sizeof(T)) : 0;
    const int direct = uniform && (line_head == 0 || !symmetric);
    const l1_idx head = direct ? line_head : 0;
    const l1_idx body = (ny - head + nc - 1) / nc;
    const l1_idx chunks = body + (head + nc - 1) / nc;
    const l1_idx ldt = nc + 64 / (l1_idx)sizeof(T);
    const l1_idx xb = direct ? L1_MAX_XB : l1_tile_rows(nc);
    T *packed = (T *)l1_alloc(nthreads * nc * d, sizeof(T));
    T *tiles = direct ? NULL : (T *)l1_alloc(nthreads * xb * ldt, sizeof(T));
    if (!packed || (!direct && !tiles)) {
        free(packed);
        free(tiles);
        return -1;
    }
    #pragma omp parallel num_threads(nthreads)
    {
        T *mine = packed + (l1_idx)l1_thread_num() * nc * d;
        T *tile = direct ? NULL : tiles + (l1_idx)l1_thread_num() * xb * ldt;
        /* symmetric: the biggest chunks (the last) first, for balance; the head's last */
        #pragma omp for schedule(dynamic, 1)
        for (l1_idx c = 0; c < chunks; c++) {
            const l1_idx y0 = c >= body ? (c - body) * nc
                                        : head + (symmetric ? body - 1 - c : c) * nc;
            const l1_idx end = c >= body ? head : ny;
            const l1_idx n = end - y0 < nc ? end - y0 : nc;
            const l1_idx rows = symmetric ? y0 + n : nx;
            for (l1_idx p = 0; p < n; p += L1_NR)
                l1_pack(Y + (y0 + p) * d, n - p, d, mine + p * d);
            for (l1_idx x0 = 0; x0 < rows; x0 += xb) {
                const l1_idx m = nx - x0 < xb ? nx - x0 : xb;
                if (direct)
                    l1_tile(X + x0 * d, m, mine, n, d, D + x0 * ny + y0, ny, 1);
                else {
                    l1_tile(X + x0 * d, m, mine, n, d, tile, ldt, 0);
                    l1_put(tile, ldt, m, n, D + x0 * ny + y0, ny);
                }
            }
            L1_FENCE();
        }
        /* symmetric: block x0 was computed against the chunks ending after x0; the columns
         * before (x0 / nc) * nc are copied from the transposed side, computed above. */
        if (symmetric) {
            #pragma omp for schedule(dynamic, 1)
            for (l1_idx b = (nx - 1) / xb; b >= 0; b--) {
                const l1_idx x0 = b * xb, x1 = nx - x0 < xb ? nx : x0 + xb;
                const l1_idx cols = x0 / nc * nc;
                for (l1_idx j0 = 0; j0 < cols; j0 += L1_MIRROR_TB) {
                    const l1_idx j1 = cols - j0 < L1_MIRROR_TB ? cols : j0 + L1_MIRROR_TB;
                    for (l1_idx i = x0; i < x1; i++)
                        for (l1_idx j = j0; j < j1; j++) D[i * ny + j] = D[j * ny + i];
                }
            }
        }
    }
    free(packed);
    free(tiles);
    return 0;
}

/* Rows of Y per chunk, a multiple of NR packed in about L1_CHUNK_BYTES; and per shared
 * super-chunk, a multiple of the chunk packed in about L1_SHARED_BYTES. */
static l1_idx l1_shared_chunk(l1_idx d, l1_idx *super)
{
    l1_idx c = L1_CHUNK_BYTES / (d * (l1_idx)sizeof(T));
    c = c > L1_MAX_NC ? L1_MAX_NC : c;
    c = c / L1_NR * L1_NR;
    c = c > L1_NR ? c : L1_NR;
    *super = L1_SHARED_BYTES / (d * (l1_idx)sizeof(T)) / c * c;
    *super = *super > c ? *super : c;
    return c;
}

/* dist, idx (nx, k): for every row of X, the k nearest rows of Y (ny >= k >= 1) in L1,
 * ascending, ties to the smaller index, NaN last. Each row keeps its k best so far, ascending,
 * and takes in each tile row of distances (see take). Two ways to share the work, the result
 * being the k first of all distances in a total order whichever runs:
 * - over rows of X (enough rows for every thread, d < L1_TOPK_DEEP): the threads pack a
 *   super-chunk of Y together, then take blocks of X rows through it chunk by chunk; a row's
 *   k best live in dist, idx themselves. Few, long tiles: cheap per distance when d is small.
 * - over chunks of Y (few rows of X, or d >= L1_TOPK_DEEP, where the distances dominate): X is
 *   taken in super-blocks of sb rows; in each, threads take chunks of Y into private k-best
 *   lists, then merge them row by row. The blocks of l1_distances, and no barrier but the one
 *   per super-block (two per super-chunk the other way, where a late thread stalls the rest).
 * 0, or -1 if out of memory. */
int VARIANT(l1_topk)(const T *X, l1_idx nx, const T *Y, l1_idx ny, l1_idx d,
                           l1_idx k, T *dist, l1_idx *idx, int nthreads)
{
    if (nx == 0) return 0;
    /* blocks of X rows: at least 8 per thread, of MR to L1_TOPK_XB rows */
    l1_idx xb = (nx + 8 * (l1_idx)nthreads - 1) / (8 * (l1_idx)nthreads);
    const int over_x = (nthreads == 1 || xb >= MR) && d < L1_TOPK_DEEP;
    xb = (xb + MR - 1) / MR * MR;
    xb = xb > L1_TOPK_XB ? L1_TOPK_XB : xb;
    l1_idx super = 0;
    const l1_idx nc = over_x ? l1_shared_chunk(d, &super)
                             : l1_chunk(ny, d, nthreads);
    if (!over_x) /* the blocks of l1_distances, as far as their tile fits L1_TILE_BYTES */
        xb = l1_tile_rows(nc);
    l1_idx sb = L1_HEAP_BYTES / (k * (l1_idx)(sizeof(T) + sizeof(l1_idx)));
    sb = over_x || sb > nx ? nx : sb > 1 ? sb : 1;
    const l1_idx lists = over_x ? 0 : nthreads * sb * k;
    T *packed = (T *)l1_alloc(over_x ? (super < ny ? super : ny + L1_NR) * d
                                          : nthreads * nc * d, sizeof(T));
    const l1_idx ldt = nc + 64 / (l1_idx)sizeof(T); /* tile rows not 4 KiB apart (L1 sets) */
    T *tiles = (T *)l1_alloc(nthreads * xb * ldt, sizeof(T));
    T *cand_d = (T *)l1_alloc(nthreads * (nc + k), sizeof(T));
    l1_idx *cand_i = (l1_idx *)l1_alloc(nthreads * (nc + k), sizeof(l1_idx));
    T *list_d = (T *)l1_alloc(lists, sizeof(T));
    l1_idx *list_i = (l1_idx *)l1_alloc(lists, sizeof(l1_idx));
    l1_idx *seen = (l1_idx *)l1_alloc(nthreads, sizeof(l1_idx));
    int ok = packed && tiles && cand_d && cand_i && list_d && list_i && seen;
    if (ok) {
        #pragma omp parallel num_threads(nthreads)
        {
            const l1_idx t = l1_thread_num(), team = l1_num_threads();
            T *tile = tiles + t * xb * ldt, *cd = cand_d + t * (nc + k);
            l1_idx *ci = cand_i + t * (nc + k);
            if (over_x) {
                for (l1_idx s0 = 0; s0 < ny; s0 += super) {
                    const l1_idx ns = ny - s0 < super ? ny - s0 : super;
                    #pragma omp for schedule(static)
                    for (l1_idx p = 0; p < ns; p += L1_NR)
                        l1_pack(Y + (s0 + p) * d, ns - p, d, packed + p * d);
                    #pragma omp for schedule(dynamic, 1)
                    for (l1_idx x0 = 0; x0 < nx; x0 += xb) {
                        const l1_idx m = nx - x0 < xb ? nx - x0 : xb;
                        for (l1_idx y0 = s0; y0 < s0 + ns; y0 += nc) {
                            const l1_idx n = s0 + ns - y0 < nc ? s0 + ns - y0 : nc;
                            l1_tile(X + x0 * d, m, packed + (y0 - s0) * d, n, d, tile, ldt, 0);
                            for (l1_idx r = 0; r < m; r++)
                                l1_take(tile + r * ldt, n, y0, dist + (x0 + r) * k,
                                       idx + (x0 + r) * k, y0 < k ? y0 : k, k, cd, ci);
                        }
                    }
                }
            } else {
                T *mine = packed + t * nc * d, *ld = list_d + t * sb * k;
                l1_idx *li = list_i + t * sb * k;
                for (l1_idx s0 = 0; s0 < nx; s0 += sb) {
                    const l1_idx ms = nx - s0 < sb ? nx - s0 : sb;
                    l1_idx mine_seen = 0;
                    #pragma omp for schedule(dynamic, 1)
                    for (l1_idx y0 = 0; y0 < ny; y0 += nc) {
                        const l1_idx n = ny - y0 < nc ? ny - y0 : nc;
                        const l1_idx kept = mine_seen < k ? mine_seen : k;
                        for (l1_idx p = 0; p < n; p += L1_NR)
                            l1_pack(Y + (y0 + p) * d, n - p, d, mine + p * d);
                        for (l1_idx x0 = 0; x0 < ms; x0 += xb) {
                            const l1_idx m = ms - x0 < xb ? ms - x0 : xb;
                            l1_tile(X + (s0 + x0) * d, m, mine, n, d, tile, ldt, 0);
                            for (l1_idx r = 0; r < m; r++)
                                l1_take(tile + r * ldt, n, y0, ld + (x0 + r) * k,
                                       li + (x0 + r) * k, kept, k, cd, ci);
                        }
                        mine_seen += n;
                    }
                    seen[t] = mine_seen < k ? mine_seen : k;
                    #pragma omp barrier
                    #pragma omp for schedule(static)
                    for (l1_idx r = 0; r < ms; r++) {
                        T *od = dist + (s0 + r) * k;
                        l1_idx *oi = idx + (s0 + r) * k, m = 0;
                        for (l1_idx u = 0; u < team; u++)
                            m = l1_merge(od, oi, m, list_d + (u * sb + r) * k,
                                                list_i + (u * sb + r) * k, seen[u], k, cd, ci);
                    }
                }
            }
        }
    }
    free(packed);
    free(tiles);
    free(cand_d);
    free(cand_i);
    free(list_d);
    free(list_i);
    free(seen);
    return ok ? 0 : -1;
}
#endif
