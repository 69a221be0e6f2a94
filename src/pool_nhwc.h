/* Pooling of channels-last (N, H, W, C) images, in float and double: the variants'
 * declarations and the dispatchers _pool.pyx calls.
 *
 * Every kernel works on one image and walks its output pixels; at each pixel it
 * combines the window's taps one after another, each tap a whole vector of C
 * channels read in place (the innermost loop runs along C with no branches, which
 * the compiler vectorises for the level). Taps are visited in the order of the
 * NCHW plane kernels (pool_planes_t.h): row-major over the window, starting from
 * the first tap inside the input, so the first maximum (and the first NaN) wins,
 * sums are formed in the same order and divided by the same divisor, and every
 * result equals the NCHW one transposed, bit for bit. The maxima without indices take
 * each tap with one max instruction and redo exactly a block of channels that met a NaN.
 *
 * Gradients are summed in output row-major order, as there: gathered where the geometry
 * allows (pool_nhwc_gather), each dx pixel written once from the windows that take it
 * (for max pooling when every index lies in its window, which the kernel counts),
 * otherwise scattered into zeroed rows.
 *
 * The template (pool_nhwc_t.h) is compiled once per element type and CPU level
 * (cpu_features.h); the caller passes the level (pyconv.cpu).
 */
#ifndef PYCONV_POOL_NHWC_H
#define PYCONV_POOL_NHWC_H

#include "pool.h"

/* The gather kernels serve windows of at most this many rows: they keep a pointer per
 * window row that takes an input row. */
#define POOL_NHWC_GATHER_ROWS 8

static inline ptrdiff_t pool_nhwc_gcd(ptrdiff_t a, ptrdiff_t b)
{
    while (b) {
        ptrdiff_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* The windows that take input row (or column) r as a tap, for r in [0, n): first[r], the
 * first of count[r] output indices in ascending order, pool_nhwc_step apart (f taps,
 * stride s, dilation d, padding pad before, on outputs). */
static inline void pool_nhwc_windows_of(ptrdiff_t n, ptrdiff_t on, ptrdiff_t f, ptrdiff_t s,
                                        ptrdiff_t d, ptrdiff_t pad, ptrdiff_t *first,
                                        ptrdiff_t *count)
{
    for (ptrdiff_t r = 0; r < n; r++) {
        first[r] = 0;
        count[r] = 0;
        for (ptrdiff_t u = f - 1; u >= 0; u--) { /* the output index ascends */
            ptrdiff_t num = r + pad - u * d;
            if (num < 0 || num % s || num / s >= on) continue;
            if (count[r]++ == 0) first[r] = num / s;
        }
    }
}

/* Between consecutive windows that take one input row (column): the taps u that do are
 * s / gcd(s, d) apart, so their outputs d / gcd(s, d). */
static inline ptrdiff_t pool_nhwc_step(ptrdiff_t s, ptrdiff_t d) { return d / pool_nhwc_gcd(s, d); }

/* taps (2 * (h + w) elements) = pool_nhwc_windows_of the rows (first, then count), then of
 * the columns: what the gather kernels read, computed once per call. */
static inline void pool_nhwc_taps(const pool_geom *g, ptrdiff_t *taps)
{
    pool_nhwc_windows_of(g->h, g->oh, g->fh, g->sh, g->dh, g->top, taps, taps + g->h);
    pool_nhwc_windows_of(g->w, g->ow, g->fw, g->sw, g->dw, g->left, taps + 2 * g->h,
                         taps + 2 * g->h + g->w);
}

/* Calls that read and write at least this many bytes write their results (pooled outputs
 * without indices, gradients) with streaming stores: written once, whole lines at a time,
 * they then skip reading every line before writing it, and leave the caches to the
 * inputs. Below, most of a 32 MiB L3 holds the whole call, and results written through
 * the caches are there for the next one. Measured on Zen 4, 2 threads, AlexNet pool1 and
 * VGG pools, batch 8: streamed, the float VGG max backward (45 MB) takes 0.76 ms instead
 * of 0.98, the double VGG average forward (64 MB) 0.80 ms instead of 1.00; the float
 * AlexNet average backward (12 MB) 0.24 ms instead of 0.21. */
#define POOL_NHWC_STREAM_BYTES ((ptrdiff_t)24 << 20)

/* Output rows a gather kernel keeps at once (a power of two): every output row whose
 * window reaches an input row is at most (fh - 1) * dh / sh + 1 rows behind the last
 * row any earlier input row needed. */
static inline ptrdiff_t pool_nhwc_ring_rows(const pool_geom *g)
{
    ptrdiff_t need = (g->fh - 1) * g->dh / g->sh + 2, rows = 1;
    while (rows < need) rows *= 2;
    return rows;
}

/* Whether the gather kernels serve this geometry (and, for float, the flat indices fit
 * 32-bit lanes). */
static inline int pool_nhwc_gather(const pool_geom *g, int f32)
{
    return g->fh <= POOL_NHWC_GATHER_ROWS && (!f32 || g->h * g->w <= INT32_MAX);
}

#define POOL_NHWC_DECLARE(TS, T, LEVEL)                                                       \
    void pool_nhwc_max_rows_##TS##_##LEVEL(const T *x, const pool_geom *g, ptrdiff_t c,       \
                                           ptrdiff_t i0, ptrdiff_t i1, int stream, T *out,    \
                                           int64_t *idx);                                     \
    void pool_nhwc_avg_rows_##TS##_##LEVEL(const T *x, const pool_geom *g, ptrdiff_t c,       \
                                           int count_include_pad, ptrdiff_t i0, ptrdiff_t i1, \
                                           int stream, T *out);                               \
    ptrdiff_t pool_nhwc_max_backward_band_##TS##_##LEVEL(const T *dout, const int64_t *idx,   \
                                                         const pool_geom *g, ptrdiff_t c,     \
                                                         ptrdiff_t r0, ptrdiff_t r1, T *dx);  \
    void pool_nhwc_max_backward_recompute_band_##TS##_##LEVEL(                                \
        const T *dout, const T *x, const pool_geom *g, ptrdiff_t c, ptrdiff_t r0,             \
        ptrdiff_t r1, T *vals, int64_t *wins, T *dx);                                         \
    void pool_nhwc_avg_backward_band_##TS##_##LEVEL(const T *dout, const pool_geom *g,        \
                                                    ptrdiff_t c, int count_include_pad,       \
                                                    ptrdiff_t r0, ptrdiff_t r1, T *share,     \
                                                    T *dx);                                   \
    ptrdiff_t pool_nhwc_max_backward_gather_band_##TS##_##LEVEL(                              \
        const T *dout, const int64_t *idx, const pool_geom *g, ptrdiff_t c,                   \
        const ptrdiff_t *taps, ptrdiff_t r0, ptrdiff_t r1, void *ring, int stream, T *dx);    \
    void pool_nhwc_avg_backward_gather_band_##TS##_##LEVEL(                                   \
        const T *dout, const pool_geom *g, ptrdiff_t c, int count_include_pad,                \
        const ptrdiff_t *taps, ptrdiff_t r0, ptrdiff_t r1, T *ring, int stream, T *dx);
CPU_EACH_VARIANT(POOL_NHWC_DECLARE)
#undef POOL_NHWC_DECLARE

#define pool_nhwc_max_rows_f32(level, ...) CPU_DISPATCH(level, pool_nhwc_max_rows, f32, (__VA_ARGS__))
#define pool_nhwc_max_rows_f64(level, ...) CPU_DISPATCH(level, pool_nhwc_max_rows, f64, (__VA_ARGS__))
#define pool_nhwc_avg_rows_f32(level, ...) CPU_DISPATCH(level, pool_nhwc_avg_rows, f32, (__VA_ARGS__))
#define pool_nhwc_avg_rows_f64(level, ...) CPU_DISPATCH(level, pool_nhwc_avg_rows, f64, (__VA_ARGS__))
#define pool_nhwc_max_backward_band_f32(level, ...)                                            \
    CPU_DISPATCH(level, pool_nhwc_max_backward_band, f32, (__VA_ARGS__))
#define pool_nhwc_max_backward_band_f64(level, ...)                                            \
    CPU_DISPATCH(level, pool_nhwc_max_backward_band, f64, (__VA_ARGS__))
#define pool_nhwc_max_backward_recompute_band_f32(level, ...)                                  \
    CPU_DISPATCH(level, pool_nhwc_max_backward_recompute_band, f32, (__VA_ARGS__))
#define pool_nhwc_max_backward_recompute_band_f64(level, ...)                                  \
    CPU_DISPATCH(level, pool_nhwc_max_backward_recompute_band, f64, (__VA_ARGS__))
#define pool_nhwc_avg_backward_band_f32(level, ...)                                            \
    CPU_DISPATCH(level, pool_nhwc_avg_backward_band, f32, (__VA_ARGS__))
#define pool_nhwc_avg_backward_band_f64(level, ...)                                            \
    CPU_DISPATCH(level, pool_nhwc_avg_backward_band, f64, (__VA_ARGS__))

#define pool_nhwc_max_backward_gather_band_f32(level, ...)                                     \
    CPU_DISPATCH(level, pool_nhwc_max_backward_gather_band, f32, (__VA_ARGS__))
#define pool_nhwc_max_backward_gather_band_f64(level, ...)                                     \
    CPU_DISPATCH(level, pool_nhwc_max_backward_gather_band, f64, (__VA_ARGS__))
#define pool_nhwc_avg_backward_gather_band_f32(level, ...)                                     \
    CPU_DISPATCH(level, pool_nhwc_avg_backward_gather_band, f32, (__VA_ARGS__))
#define pool_nhwc_avg_backward_gather_band_f64(level, ...)                                     \
    CPU_DISPATCH(level, pool_nhwc_avg_backward_gather_band, f64, (__VA_ARGS__))

#endif
