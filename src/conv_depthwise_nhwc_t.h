/* The channels-last depthwise convolution of conv_depthwise_nhwc.h for one element type T
 * and CPU level: a template, compiled once per (T, level) in a translation unit that
 * setup.py generates (see cpu_features.h). */
#include "conv_depthwise_nhwc.h"

#include "pool.h" /* pool_valid */

#if CPU_LEVEL == CPU_PORTABLE || CPU_X86
#include "nhwc_vec_t.h"

/* Channels [c, c + nb vectors) of one output pixel, m == 1: the bias (or zero), then the
 * taps [ulo, uhi) x [vlo, vhi) added in row-major order, nb vectors held in registers. */
POOL_INLINE void VARIANT(dwn_vectors)(const T *POOL_RESTRICT x, const T *POOL_RESTRICT wt,
                                      const T *POOL_RESTRICT bias, const dwn_geom *g,
                                      ptrdiff_t r0, ptrdiff_t c0, ptrdiff_t ulo, ptrdiff_t uhi,
                                      ptrdiff_t vlo, ptrdiff_t vhi, ptrdiff_t c, const int nb,
                                      T *POOL_RESTRICT o)
{
    NV s[NV_BLOCK];
    POOL_UNROLL
    for (int k = 0; k < nb; k++) s[k] = bias ? VARIANT(nv_load)(bias + c + k * NV_LANES) : (NV){0};
    for (ptrdiff_t u = ulo; u < uhi; u++)
        for (ptrdiff_t v = vlo; v < vhi; v++) {
            const T *p = x + ((r0 + u * g->dh) * g->w + c0 + v * g->dw) * g->c + c;
            const T *f = wt + (u * g->fw + v) * g->k + c;
            POOL_UNROLL
            for (int k = 0; k < nb; k++)
                s[k] = s[k] + VARIANT(nv_load)(f + k * NV_LANES) * VARIANT(nv_load)(p + k * NV_LANES);
        }
    POOL_UNROLL
    for (int k = 0; k < nb; k++) VARIANT(nv_store)(o + c + k * NV_LANES, s[k]);
}

/* Output columns per strip of dwn_ring_strip: its sums, the strip's 2 more input vectors
 * per tap row and the row's 3 filter vectors fit the level's registers (32 with AVX-512,
 * 16 below). */
#if NV_BYTES == 64
#define DWN_STRIP 8
#else
#define DWN_STRIP 4
#endif
/* unrolled whole, so that the strip's vectors stay in registers (POOL_UNROLL stops at 9) */
#if defined(__clang__)
#define DWN_UNROLL _Pragma("clang loop unroll(full)")
#elif defined(__GNUC__)
#define DWN_UNROLL _Pragma("GCC unroll 16")
#else
#define DWN_UNROLL
#endif

/* Output rows [i0, i1) of out (OH, OW, K) = bias (K, or NULL for none) plus the
 * convolution of x (H, W, C) by the filters wt (FH*FW, K) packed tap by tap: the taps
 * inside the input added in row-major order. */
static void VARIANT(dwn_forward_rows)(const T *x, const T *wt, const T *bias,
                                      const dwn_geom *g, ptrdiff_t i0, ptrdiff_t i1, T *out)
{
    const ptrdiff_t C = g->c, K = g->k, m = g->m;
    for (ptrdiff_t i = i0; i < i1; i++) {
        ptrdiff_t ulo, uhi, r0 = i * g->sh - g->top;
        pool_valid(r0, g->dh, g->h, g->fh, &ulo, &uhi);
        for (ptrdiff_t j = 0; j < g->ow; j++) {
            ptrdiff_t vlo, vhi, c0 = j * g->sw - g->left, c = 0;
            T *POOL_RESTRICT o = out + (i * g->ow + j) * K;
            if (c0 >= 0 && c0 + (g->fw - 1) * g->dw < g->w) { vlo = 0; vhi = g->fw; }
            else pool_valid(c0, g->dw, g->w, g->fw, &vlo, &vhi);
            if (m == 1) {
                for (; c + NV_BLOCK * NV_LANES <= C; c += NV_BLOCK * NV_LANES)
                    VARIANT(dwn_vectors)(x, wt, bias, g, r0, c0, ulo, uhi, vlo, vhi, c, NV_BLOCK, o);
                for (; c + NV_LANES <= C; c += NV_LANES)
                    VARIANT(dwn_vectors)(x, wt, bias, g, r0, c0, ulo, uhi, vlo, vhi, c, 1, o);
                if (c == C) continue;
            }
            /* the channels left (all of them when m > 1), one output at a time */
            for (ptrdiff_t k = c * m; k < K; k++) o[k] = bias ? bias[k] : 0;
            for (ptrdiff_t u = ulo; u < uhi; u++)
                for (ptrdiff_t v = vlo; v < vhi; v++) {
                    const T *POOL_RESTRICT p = x + ((r0 + u * g->dh) * g->w + c0 + v * g->dw) * C;
                    const T *POOL_RESTRICT f = wt + (u * g->fw + v) * K;
                    for (ptrdiff_t ci = c; ci < C; ci++)
                        for (ptrdiff_t q = 0; q < m; q++)
                            o[ci * m + q] = o[ci * m + q] + f[ci * m + q] * p[ci];
                }
        }
    }
}

/* s[0 .. nq) to output columns j, j + 1, ... (K channels a pixel) at channel c, streamed if
 * stream */
POOL_INLINE void VARIANT(dwn_store_columns)(T *POOL_RESTRICT o, ptrdiff_t j, ptrdiff_t K,
                                            ptrdiff_t c, const int nq, int stream, const NV *s)
{
    DWN_UNROLL
    for (int q = 0; q < nq; q++) VARIANT(nhwc_put)(o + (j + q) * K + c, s[q], stream);
}

/* The ring of dwn_forward_band holds input rows in blocks of channels: ring row element
 * (b, col, l) (b < C / NV_LANES, col < the ring's columns, l < NV_LANES) is channel
 * b * NV_LANES + l of input column col - left (zero for the padding columns), so that one
 * vector of channels of a row's pixels lies in one run of memory. */

/* The rows of the ring under output row i: [*ulo, *uhi) of the filter's rows lie inside the
 * input, and rows[u - ulo] holds filter row u's input row. Each input row of the window is
 * copied into ring row (its index mod the ring's rows) once, in order (*next: the first row
 * not copied yet). */
POOL_INLINE void VARIANT(dwn_ring_fill)(const T *x, const dwn_geom *g, ptrdiff_t i, T *ring,
                                        ptrdiff_t *next, const T **rows, ptrdiff_t *ulo,
                                        ptrdiff_t *uhi)
{
    const ptrdiff_t r0 = i * g->sh - g->top, nring = dwn_ring_rows(g), C = g->c;
    const ptrdiff_t stride = dwn_ring_row_elems(g);
    const ptrdiff_t seg = dwn_ring_row_elems(g) / (C / NV_LANES);
    ptrdiff_t r, u;
    pool_valid(r0, g->dh, g->h, g->fh, ulo, uhi);
    if (*uhi <= *ulo) return;
    r = r0 > *next ? r0 : *next;  /* the window's rows from the first inside the input, */
    if (r < 0) r = 0;              /* those between dilated taps too (later rows' taps) */
    for (; r <= r0 + (*uhi - 1) * g->dh; r++) {
        const T *POOL_RESTRICT src = x + r * g->w * C;
        T *POOL_RESTRICT dst = ring + (r % nring) * stride + g->left * NV_LANES;
        for (ptrdiff_t col = 0; col < g->w; col++, src += C, dst += NV_LANES)
            for (ptrdiff_t b = 0; b < C / NV_LANES; b++)
                VARIANT(nv_store)(dst + b * seg, VARIANT(nv_load)(src + b * NV_LANES));
    }
    *next = r;
    for (u = *ulo; u < *uhi; u++) rows[u - *ulo] = ring + ((r0 + u * g->dh) % nring) * stride;
}

/* nq (at most DWN_STRIP) output columns from j on, channels [c, c + NV_LANES) (at off in the
 * ring rows), any taps, stride and dilation, from the ring's rows (nu of them, rows[u]
 * holding filter row ulo + u's input row; every tap column inside them): the bias, then the
 * taps in row-major order, as dwn_vectors adds them, each filter vector loaded once for the
 * nq columns. */
POOL_INLINE void VARIANT(dwn_ring_columns)(const T *const *rows, ptrdiff_t nu, ptrdiff_t off,
                                           const T *wt, const T *POOL_RESTRICT bias,
                                           const dwn_geom *g, ptrdiff_t ulo, ptrdiff_t j,
                                           ptrdiff_t c, const int nq, int stream,
                                           T *POOL_RESTRICT o)
{
    const ptrdiff_t K = g->k, step = g->sw * NV_LANES;
    NV s[DWN_STRIP];
    DWN_UNROLL
    for (int q = 0; q < nq; q++) s[q] = bias ? VARIANT(nv_load)(bias + c) : (NV){0};
    for (ptrdiff_t u = 0; u < nu; u++)
        for (ptrdiff_t v = 0; v < g->fw; v++) {
            const T *POOL_RESTRICT p = rows[u] + off + (j * g->sw + v * g->dw) * NV_LANES;
            const NV f = VARIANT(nv_load)(wt + ((ulo + u) * g->fw + v) * K + c);
            DWN_UNROLL
            for (int q = 0; q < nq; q++) s[q] = s[q] + f * VARIANT(nv_load)(p + q * step);
        }
    VARIANT(dwn_store_columns)(o, j, K, c, nq, stream, s);
}

/* nq (at most DWN_STRIP) output columns from j on, channels [c, c + NV_LANES) (at off in the
 * ring rows), 3 tap columns at stride and dilation 1, from the ring's rows: as dwn_strip. */
POOL_INLINE void VARIANT(dwn_ring_strip)(const T *const *rows, ptrdiff_t nu, ptrdiff_t off,
                                         const T *wt, const T *POOL_RESTRICT bias,
                                         const dwn_geom *g, ptrdiff_t ulo, ptrdiff_t j,
                                         ptrdiff_t c, const int nq, int stream,
                                         T *POOL_RESTRICT o)
{
    const ptrdiff_t K = g->k;
    NV s[DWN_STRIP], in[DWN_STRIP + 2], f0, f1, f2;
    DWN_UNROLL
    for (int q = 0; q < nq; q++) s[q] = bias ? VARIANT(nv_load)(bias + c) : (NV){0};
    for (ptrdiff_t u = 0; u < nu; u++) {
        const T *POOL_RESTRICT row = rows[u] + off + j * NV_LANES;
        const T *POOL_RESTRICT f = wt + (ulo + u) * 3 * K + c;
        f0 = VARIANT(nv_load)(f);
        f1 = VARIANT(nv_load)(f + K);
        f2 = VARIANT(nv_load)(f + 2 * K);
        DWN_UNROLL
        for (int q = 0; q < nq + 2; q++) in[q] = VARIANT(nv_load)(row + q * NV_LANES);
        DWN_UNROLL
        for (int q = 0; q < nq; q++) {
            s[q] = s[q] + f0 * in[q];
            s[q] = s[q] + f1 * in[q + 1];
            s[q] = s[q] + f2 * in[q + 2];
        }
    }
    VARIANT(dwn_store_columns)(o, j, K, c, nq, stream, s);
}

/* Output rows [i0, i1) of one image, as dwn_forward_rows computes them; with one filter per
 * channel and whole vectors of channels, from a ring of input rows (ring: dwn_ring_elems
 * elements starting on a cache line, zeroed here). Each input row is copied once into the
 * ring, between zero padding columns, with each vector of channels of the row's pixels in
 * one run, which an output row then reads a block of channels at a time, the row's columns
 * in order; a padding tap adds 0 * w, which leaves finite sums unchanged. */
/* nq columns from j on, by the 3-tap strip where it applies */
#define DWN_COLUMNS(nq, j)                                                                     \
    do {                                                                                      \
        if (strips)                                                                           \
            VARIANT(dwn_ring_strip)(rows, uhi - ulo, off, wt, bias, g, ulo, j, c, nq, stream,  \
                                    o);                                                       \
        else                                                                                  \
            VARIANT(dwn_ring_columns)(rows, uhi - ulo, off, wt, bias, g, ulo, j, c, nq,        \
                                      stream, o);                                             \
    } while (0)
void VARIANT(dwn_forward_band)(const T *x, const T *wt, const T *bias, const dwn_geom *g,
                               ptrdiff_t i0, ptrdiff_t i1, T *out, T *ring, int stream)
{
    const ptrdiff_t C = g->c, K = g->k, blocks = g->c / NV_LANES;
    const ptrdiff_t in_lines = (g->w * C * (ptrdiff_t)sizeof(T) + 63) / 64;
    const T *rows[DWN_RING_MAX_ROWS];
    ptrdiff_t next = PTRDIFF_MIN, ulo, uhi, seg, pf_per;
    int strips;
    if (!dwn_ring_applies(g, NV_LANES, (ptrdiff_t)sizeof(T))) {
        VARIANT(dwn_forward_rows)(x, wt, bias, g, i0, i1, out);
        return;
    }
    seg = dwn_ring_row_elems(g) / blocks;
    memset(ring, 0, (size_t)dwn_ring_elems(g) * sizeof(T));
    strips = g->fw == 3 && g->sw == 1 && g->dw == 1;
    /* streamed only where a vector is a whole line: narrower vectors would write each line
     * in parts, one block of channels apart */
    stream = stream && NV_BYTES == 64 && VARIANT(nhwc_can_stream)(out, K);
    /* lines of the next input row prefetched per block of DWN_STRIP columns */
    pf_per = (in_lines + blocks * ((g->ow + DWN_STRIP - 1) / DWN_STRIP) - 1)
             / (blocks * ((g->ow + DWN_STRIP - 1) / DWN_STRIP));
    for (ptrdiff_t i = i0; i < i1; i++) {
        T *POOL_RESTRICT o = out + i * g->ow * K;
        /* the input row that the next output row copies is prefetched while this one is
         * computed, a few lines per block of columns (rows past the input or the band: the
         * last row, again) */
        ptrdiff_t rn = (i + 1) * g->sh - g->top + (g->fh - 1) * g->dh;
        const char *pf, *pf_end;
        if (rn >= g->h || i + 1 >= i1) rn = g->h - 1;
        if (rn < 0) rn = 0;
        pf = (const char *)(x + rn * g->w * C);
        pf_end = pf + in_lines * 64;
        VARIANT(dwn_ring_fill)(x, g, i, ring, &next, rows, &ulo, &uhi);
        for (ptrdiff_t b = 0; b < blocks; b++) {
            const ptrdiff_t off = b * seg, c = b * NV_LANES;
            for (ptrdiff_t j = 0; j < g->ow; j += DWN_STRIP) {
                const ptrdiff_t width = g->ow - j < DWN_STRIP ? g->ow - j : DWN_STRIP;
                if (width == DWN_STRIP)
                    DWN_COLUMNS(DWN_STRIP, j);
                else {  /* the row's last columns: 4, 2 and 1 at a time */
                    ptrdiff_t q = j;
                    for (; q + 4 <= j + width; q += 4) DWN_COLUMNS(4, q);
                    for (; q + 2 <= j + width; q += 2) DWN_COLUMNS(2, q);
                    for (; q < j + width; q++) DWN_COLUMNS(1, q);
                }
                for (ptrdiff_t k = 0; k < pf_per && pf < pf_end; k++, pf += 64)
                    __builtin_prefetch(pf, 0, 3);
            }
        }
    }
    if (stream) VARIANT(nhwc_fence)();
}

/* Channels [c, c + nb vectors) of tap (u, v)'s gradient over output rows [i0, i1): the sum
 * of dout (OH, OW, C) times the tap's input pixel (H, W, C), for the columns [jlo, jhi)
 * whose pixel lies inside, nb vectors held in registers; added to part. */
POOL_INLINE void VARIANT(dwn_grad_vectors)(const T *POOL_RESTRICT dout, const T *POOL_RESTRICT x,
                                           const dwn_geom *g, ptrdiff_t i0, ptrdiff_t i1,
                                           ptrdiff_t u, ptrdiff_t v, ptrdiff_t jlo, ptrdiff_t jhi,
                                           ptrdiff_t c, const int nb, T *POOL_RESTRICT part)
{
    const ptrdiff_t C = g->c, step = g->sw * C;
    NV s[NV_BLOCK];
    POOL_UNROLL
    for (int k = 0; k < nb; k++) s[k] = (NV){0};
    for (ptrdiff_t i = i0; i < i1; i++) {
        const ptrdiff_t r = i * g->sh - g->top + u * g->dh;
        const T *d, *p;
        if (r < 0 || r >= g->h) continue;
        d = dout + (i * g->ow + jlo) * C + c;
        p = x + (r * g->w + jlo * g->sw - g->left + v * g->dw) * C + c;
        for (ptrdiff_t j = jlo; j < jhi; j++, d += C, p += step)
            POOL_UNROLL
            for (int k = 0; k < nb; k++)
                s[k] = s[k] + VARIANT(nv_load)(d + k * NV_LANES) * VARIANT(nv_load)(p + k * NV_LANES);
    }
    POOL_UNROLL
    for (int k = 0; k < nb; k++)
        VARIANT(nv_store)(part + c + k * NV_LANES, VARIANT(nv_load)(part + c + k * NV_LANES) + s[k]);
}

/* The columns [*jlo, *jhi) of an output row whose tap column v reads a pixel inside the input
 * (j*sw - left + v*dw in [0, w)). */
POOL_INLINE void VARIANT(dwn_tap_columns)(const dwn_geom *g, ptrdiff_t v, ptrdiff_t *jlo,
                                          ptrdiff_t *jhi)
{
    const ptrdiff_t at = v * g->dw - g->left;
    *jlo = at >= 0 ? 0 : (-at + g->sw - 1) / g->sw;
    *jhi = g->w - at <= 0 ? 0 : (g->w - at + g->sw - 1) / g->sw;
    if (*jhi > g->ow) *jhi = g->ow;
}

/* part ((FH*FW, C), zeroed here) = the filter gradient of one filter per channel (m == 1)
 * over output rows [i0, i1) of one image: dout (OH, OW, C), x (H, W, C). Per block of
 * DWN_GRAD_VECTORS vectors of channels, row after row, every tap: the taps read a row of
 * dout and the input rows under it from the caches (3.5 ms for the 8x56x56x128 float32
 * layer on one Zen 4 core, against 3.7 taking each tap over the whole band). */
#define DWN_GRAD_VECTORS 4
static void VARIANT(dwn_filter_grad_rows)(const T *dout, const T *x, const dwn_geom *g,
                                          ptrdiff_t i0, ptrdiff_t i1, T *part)
{
    const ptrdiff_t C = g->c, block = DWN_GRAD_VECTORS * NV_LANES;
    ptrdiff_t c, i, u, v, jlo, jhi;
    for (c = 0; c < g->fh * g->fw * C; c++) part[c] = 0;
    for (c = 0; c + NV_LANES <= C; c += C - c >= block ? block : NV_LANES) {
        const int nb = C - c >= block ? DWN_GRAD_VECTORS : 1;
        for (i = i0; i < i1; i++)
            for (u = 0; u < g->fh; u++)
                for (v = 0; v < g->fw; v++) {
                    VARIANT(dwn_tap_columns)(g, v, &jlo, &jhi);
                    if (jhi <= jlo) continue;
                    if (nb == DWN_GRAD_VECTORS)
                        VARIANT(dwn_grad_vectors)(dout, x, g, i, i + 1, u, v, jlo, jhi, c,
                                                  DWN_GRAD_VECTORS, part + (u * g->fw + v) * C);
                    else
                        VARIANT(dwn_grad_vectors)(dout, x, g, i, i + 1, u, v, jlo, jhi, c, 1,
                                                  part + (u * g->fw + v) * C);
                }
    }
    for (; c < C; c++)  /* the channels left, one at a time */
        for (i = i0; i < i1; i++)
            for (u = 0; u < g->fh; u++)
                for (v = 0; v < g->fw; v++) {
                    const ptrdiff_t r = i * g->sh - g->top + u * g->dh;
                    T *dst = part + (u * g->fw + v) * C + c;
                    VARIANT(dwn_tap_columns)(g, v, &jlo, &jhi);
                    if (r < 0 || r >= g->h) continue;
                    for (ptrdiff_t j = jlo; j < jhi; j++)
                        *dst = *dst + dout[(i * g->ow + j) * C + c]
                                      * x[(r * g->w + j * g->sw - g->left + v * g->dw) * C + c];
                }
}

/* The filter gradient's sums of output row i's pixels, one block of channels (c; at off in
 * the ring rows), nu of the filter's rows (rows[u] holding filter row ulo + u's input row),
 * 3 tap columns: s[u][v] = the sum over the row's columns j of dout(i, j) * the ring's pixel
 * j + v of row u, in order of j (padding pixels are zeros), each dout vector loaded once
 * for the row's taps; then added to part. */
POOL_INLINE void VARIANT(dwn_grad_row)(const T *POOL_RESTRICT d, const T *const *rows,
                                       const int nu, ptrdiff_t ulo, ptrdiff_t off, ptrdiff_t c,
                                       const dwn_geom *g, T *POOL_RESTRICT part)
{
    const ptrdiff_t C = g->c;
    NV s[3][3];
    DWN_UNROLL
    for (int u = 0; u < nu; u++)
        DWN_UNROLL
        for (int v = 0; v < 3; v++) s[u][v] = (NV){0};
    for (ptrdiff_t j = 0; j < g->ow; j++) {
        const NV dv = VARIANT(nv_load)(d + j * C + c);
        DWN_UNROLL
        for (int u = 0; u < nu; u++) {
            const T *POOL_RESTRICT p = rows[u] + off + j * NV_LANES;
            DWN_UNROLL
            for (int v = 0; v < 3; v++)
                s[u][v] = s[u][v] + dv * VARIANT(nv_load)(p + v * NV_LANES);
        }
    }
    DWN_UNROLL
    for (int u = 0; u < nu; u++)
        DWN_UNROLL
        for (int v = 0; v < 3; v++) {
            T *POOL_RESTRICT q = part + ((ulo + u) * 3 + v) * C + c;
            VARIANT(nv_store)(q, VARIANT(nv_load)(q) + s[u][v]);
        }
}

/* part ((FH*FW, C), zeroed here) = the filter gradient over output rows [i0, i1) of one
 * image, as dwn_filter_grad_rows computes it (the same sums in the same order, padding taps
 * adding zeros); for the layers of dwn_grad_ring_applies, from a ring of input rows as
 * dwn_forward_band's (ring: dwn_ring_elems elements on a cache line): per output row, a
 * block of channels at a time, the row's 9 (or fewer) sums in registers, one load of dout
 * per pixel and 3 input loads per tap row. */
void VARIANT(dwn_filter_grad_band)(const T *dout, const T *x, const dwn_geom *g, ptrdiff_t i0,
                                   ptrdiff_t i1, T *part, T *ring)
{
    const ptrdiff_t C = g->c, blocks = g->c / NV_LANES;
    const T *rows[DWN_RING_MAX_ROWS];
    ptrdiff_t next = PTRDIFF_MIN, ulo, uhi, seg;
    if (!dwn_grad_ring_applies(g, NV_LANES, (ptrdiff_t)sizeof(T))) {
        VARIANT(dwn_filter_grad_rows)(dout, x, g, i0, i1, part);
        return;
    }
    seg = dwn_ring_row_elems(g) / blocks;
    memset(ring, 0, (size_t)dwn_ring_elems(g) * sizeof(T));
    memset(part, 0, (size_t)(g->fh * 3 * C) * sizeof(T));
    for (ptrdiff_t i = i0; i < i1; i++) {
        const T *d = dout + i * g->ow * C;
        /* the next row of dout and the input row the next output row copies are prefetched
         * while this one is summed, a share of their lines per block of channels (past the
         * band or the input: this row's, again) */
        ptrdiff_t rn = (i + 1) * g->sh - g->top + (g->fh - 1) * g->dh;
        const char *pf_d = (const char *)(i + 1 < i1 ? d + g->ow * C : d);
        const char *pf_x;
        const ptrdiff_t d_lines = (g->ow * C * (ptrdiff_t)sizeof(T) + 63) / 64;
        const ptrdiff_t x_lines = (g->w * C * (ptrdiff_t)sizeof(T) + 63) / 64;
        if (rn >= g->h || i + 1 >= i1) rn = g->h - 1;
        if (rn < 0) rn = 0;
        pf_x = (const char *)(x + rn * g->w * C);
        VARIANT(dwn_ring_fill)(x, g, i, ring, &next, rows, &ulo, &uhi);
        for (ptrdiff_t b = 0; b < blocks; b++) {
            const ptrdiff_t off = b * seg, c = b * NV_LANES;
            if (uhi - ulo == 3) VARIANT(dwn_grad_row)(d, rows, 3, ulo, off, c, g, part);
            else if (uhi - ulo == 2) VARIANT(dwn_grad_row)(d, rows, 2, ulo, off, c, g, part);
            else if (uhi - ulo == 1) VARIANT(dwn_grad_row)(d, rows, 1, ulo, off, c, g, part);
            for (ptrdiff_t l = b * d_lines / blocks; l < (b + 1) * d_lines / blocks; l++)
                __builtin_prefetch(pf_d + l * 64, 0, 3);
            for (ptrdiff_t l = b * x_lines / blocks; l < (b + 1) * x_lines / blocks; l++)
                __builtin_prefetch(pf_x + l * 64, 0, 3);
        }
    }
}
#undef DWN_GRAD_VECTORS
#undef DWN_STRIP
#undef DWN_UNROLL
#endif
