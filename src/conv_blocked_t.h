/* The channel-blocked direct convolution of conv_blocked.h for one element type T
 * and CPU level: a template, compiled once per (T, level) in a translation unit
 * that setup.py generates (see cpu_features.h); the entry points are
 * cb_pack_<TS>_<LEVEL> and cb_task_<TS>_<LEVEL>. Vectors are 64 bytes at avx512,
 * 32 at avx2 and 16 (SSE2 width) in portable C. */
#include <stddef.h>

#include "conv_blocked.h"

#if CPU_LEVEL == CPU_PORTABLE || CPU_X86

#if CPU_LEVEL == CPU_AVX512
#define CB_VBYTES 64
#elif CPU_LEVEL == CPU_AVX2
#define CB_VBYTES 32
#else
#define CB_VBYTES 16
#endif

#define CB_VL (CB_VBYTES / (ptrdiff_t)sizeof(T))
/* positions per tile: 2 x P sums, two filter vectors and a broadcast pixel fit the
 * 32 vector registers of AVX-512 or the 16 of AVX2 and SSE2 */
#define CB_P (CB_VBYTES == 64 ? 14 : 6)
#define CB_V VARIANT(cb_vec)

typedef T CB_V __attribute__((vector_size(CB_VBYTES), aligned(sizeof(T))));

/* acc += w * (the pixel at px, in every lane). At avx512 the pixel is broadcast by
 * the multiply-add's own load (an embedded broadcast), where compilers broadcast it
 * once into a register for both blocks of a pair: on AMD Zen 4 that broadcast
 * costs a shuffle on the floating-point pipes, and the tile ran 5-10% slower. */
#if CPU_LEVEL == CPU_AVX512 && TS_F32
#define CB_FMA_PIXEL(acc, w, px) \
    __asm__("vfmadd231ps %2%{1to16%}, %1, %0" : "+v"(acc) : "v"(w), "m"(*(px)))
#elif CPU_LEVEL == CPU_AVX512
#define CB_FMA_PIXEL(acc, w, px) \
    __asm__("vfmadd231pd %2%{1to8%}, %1, %0" : "+v"(acc) : "v"(w), "m"(*(px)))
#else
#define CB_FMA_PIXEL(acc, w, px) ((acc) = (w) * *(px) + (acc))
#endif

/* Pack item = g * pairs + q: the filters and bias of pair q of group g, zeros for
 * outputs past ocg. */
void VARIANT(cb_pack)(const cb_conv *p, ptrdiff_t item)
{
    const ptrdiff_t g = item / p->pairs, q = item % p->pairs, lanes = 2 * p->vl;
    const ptrdiff_t ftaps = p->fh * p->fw, taps = p->icg * ftaps;
    const T *w = (const T *)p->filt + g * p->wg;
    T *dst = (T *)p->wpack + item * taps * lanes;
    T *bias = (T *)p->bpack + item * lanes;
    /* channels per block: the block's packed values, CB_PACK_BYTES, stay in L1 */
    ptrdiff_t block = CB_PACK_BYTES / (ftaps * lanes * (ptrdiff_t)sizeof(T));
    const int spaced = p->wu == p->fw * p->wv, dense = spaced && p->wv == 1 && p->wc == ftaps;
    ptrdiff_t l, c, c0, c1, u, v, k;
    if (block < 1) block = 1;
    for (l = 0; l < lanes; l++) {
        const ptrdiff_t o = q * lanes + l;
        bias[l] = o < p->ocg && p->bias != NULL ? ((const T *)p->bias)[g * p->ocg + o] : 0;
    }
    /* a block of channels at a time, one filter after another: each filter's taps of the
     * block are read in one sweep along its row, one loop where the taps are contiguous.
     * Reading a channel at a time from all 32 filters (rows 9 KB apart for ResNet-late, so
     * their cache lines share 4 of L1's 64 sets) packed ResNet-late's 2.4 MB in 0.83 ms on
     * one core; this order takes 0.27 ms. */
    for (c0 = 0; c0 < p->icg; c0 = c1) {
        c1 = c0 + block < p->icg ? c0 + block : p->icg;
        for (l = 0; l < lanes; l++) {
            const ptrdiff_t o = q * lanes + l;
            T *to = dst + c0 * ftaps * lanes + l;
            if (o >= p->ocg)
                for (k = 0; k < (c1 - c0) * ftaps; k++)
                    to[k * lanes] = 0;
            else if (dense)  /* the block's taps are one run of the filter's row */
                for (k = 0; k < (c1 - c0) * ftaps; k++)
                    to[k * lanes] = w[o * p->wo + c0 * p->wc + k];
            else if (spaced)  /* tap t of a channel at t * wv: flipped filters (dx) */
                for (c = c0; c < c1; c++)
                    for (k = 0; k < ftaps; k++)
                        to[((c - c0) * ftaps + k) * lanes] = w[o * p->wo + c * p->wc + k * p->wv];
            else
                for (c = c0; c < c1; c++)
                    for (u = 0; u < p->fh; u++)
                        for (v = 0; v < p->fw; v++)
                            to[((c - c0) * ftaps + u * p->fw + v) * lanes] =
                                w[o * p->wo + c * p->wc + u * p->wu + v * p->wv];
        }
    }
}

/* Where a tile reads its input pixels: the pixel of position j, input channel c
 * and tap (u, v) (counted from the first tap the tile runs) at
 * x[c*xc + u*xu + v*xv + j*step]. */
typedef struct {
    const T *x;
    ptrdiff_t xc, xu, xv, step;
} VARIANT(cb_src);

/* The sums of a tile, acc[kb][j] at part + (kb*CB_P + j)*CB_VL, for channels
 * o < kvalid and positions j < n, to y[o*yk + j*yw]. */
static void VARIANT(cb_store)(const cb_conv *p, const T *part, ptrdiff_t n, T *y,
                              ptrdiff_t kvalid)
{
    ptrdiff_t o, j;
    if (p->yk == 1 && kvalid % CB_VL == 0) {  /* channels last: whole vectors */
        for (j = 0; j < n; j++)
            for (o = 0; o < kvalid; o += CB_VL)
                *(CB_V *)(y + j * p->yw + o) =
                    *(const CB_V *)(part + (o / CB_VL * CB_P + j) * CB_VL);
        return;
    }
    for (o = 0; o < kvalid; o++) {  /* channels first: each channel's n positions */
        const T *from = part + (o / CB_VL) * CB_P * CB_VL + o % CB_VL;
        T *to = y + o * p->yk;
        for (j = 0; j < n; j++)
            to[j * p->yw] = from[j * CB_VL];
    }
}

/* One tile: KB (1 or 2) vectors of output channels at P positions, summed over
 * icg channels, nu tap rows and nv tap columns in that order; w points at the
 * packed filters of the first tap. The sums start from part (laid out as
 * cb_store reads it) and go back there. Inlined with constant KB, P, (where 1)
 * step and (where nonzero) TAPS3, so the sums stay in registers; TAPS3 = 3 or 1 says
 * that nu is 3 and nv is TAPS3, and unrolls the taps. */
static inline __attribute__((always_inline)) void
VARIANT(cb_tile)(const int KB, const int P, const ptrdiff_t step, const int TAPS3,
                 VARIANT(cb_src) src, const T *w, const cb_conv *p, ptrdiff_t nc, ptrdiff_t nu,
                 ptrdiff_t nv, T *part)
{
    const ptrdiff_t wv = 2 * CB_VL, wu = p->fw * wv, wc = p->fh * wu;
    CB_V acc[2][CB_P];
    ptrdiff_t c, u, v, j, kb;
    for (kb = 0; kb < 2; kb++)  /* both blocks set, even for KB = 1, or GCC keeps them in memory */
        for (j = 0; j < P; j++)
            acc[kb][j] = *(const CB_V *)(part + (kb * CB_P + j) * CB_VL);
#define CB_TAP(U, V)                                                                      \
    do {                                                                                  \
        const T *xp = xc + (U) * src.xu + (V) * src.xv, *wp = wcp + (U) * wu + (V) * wv;  \
        const CB_V w0 = *(const CB_V *)wp;                                                \
        const CB_V w1 = KB > 1 ? *(const CB_V *)(wp + CB_VL) : w0;                        \
        for (j = 0; j < P; j++) {                                                         \
            if (KB > 1) {                                                                 \
                CB_FMA_PIXEL(acc[0][j], w0, xp + j * step);                               \
                CB_FMA_PIXEL(acc[1][j], w1, xp + j * step);                               \
            }                                                                             \
            else  /* the compiler folds the broadcast into the multiply-add */            \
                acc[0][j] = w0 * xp[j * step] + acc[0][j];                                \
        }                                                                                 \
    } while (0)
    if (TAPS3) {
        /* three tap rows of nv = TAPS3 (3 or 1) columns, unrolled, so the only loop left
         * runs over the channels: VGG and ResNet-late 3x3 layers ran 4-5% faster at 2
         * threads than with the loops over 3 tap rows and columns */
        for (c = 0; c < nc; c++) {
            const T *xc = src.x + c * src.xc, *wcp = w + c * wc;
            CB_TAP(0, 0); if (TAPS3 == 3) { CB_TAP(0, 1); CB_TAP(0, 2); }
            CB_TAP(1, 0); if (TAPS3 == 3) { CB_TAP(1, 1); CB_TAP(1, 2); }
            CB_TAP(2, 0); if (TAPS3 == 3) { CB_TAP(2, 1); CB_TAP(2, 2); }
        }
    }
    else
        for (c = 0; c < nc; c++) {
            const T *xc = src.x + c * src.xc, *wcp = w + c * wc;
            for (u = 0; u < nu; u++)
                for (v = 0; v < nv; v++)
                    CB_TAP(u, v);
        }
#undef CB_TAP
    for (kb = 0; kb < KB; kb++)
        for (j = 0; j < P; j++)
            *(CB_V *)(part + (kb * CB_P + j) * CB_VL) = acc[kb][j];
}

/* cb_tile for run-time n (<= CB_P) positions, KB = 1 + two and any step; unrolled over
 * the taps where a pair of blocks at step 1 runs three tap rows of 3 or 1 columns. */
static void VARIANT(cb_tile_n)(int two, ptrdiff_t n, VARIANT(cb_src) src, const T *w,
                               const cb_conv *p, ptrdiff_t nc, ptrdiff_t nu, ptrdiff_t nv,
                               T *part)
{
#define CB_CASE(KB_, P_, STEP_, TAPS3_)                                               \
    case P_:                                                                          \
        VARIANT(cb_tile)(KB_, P_, STEP_, TAPS3_, src, w, p, nc, nu, nv, part);        \
        break;
#if CB_P > 6
#define CB_MORE_CASES(KB_, STEP_, TAPS3_)                                             \
        CB_CASE(KB_, 7, STEP_, TAPS3_) CB_CASE(KB_, 8, STEP_, TAPS3_)                 \
        CB_CASE(KB_, 9, STEP_, TAPS3_) CB_CASE(KB_, 10, STEP_, TAPS3_)                \
        CB_CASE(KB_, 11, STEP_, TAPS3_) CB_CASE(KB_, 12, STEP_, TAPS3_)               \
        CB_CASE(KB_, 13, STEP_, TAPS3_) CB_CASE(KB_, 14, STEP_, TAPS3_)
#else
#define CB_MORE_CASES(KB_, STEP_, TAPS3_)
#endif
#define CB_CASES(KB_, STEP_, TAPS3_)                                                  \
    switch (n) {                                                                      \
        CB_CASE(KB_, 1, STEP_, TAPS3_) CB_CASE(KB_, 2, STEP_, TAPS3_)                 \
        CB_CASE(KB_, 3, STEP_, TAPS3_) CB_CASE(KB_, 4, STEP_, TAPS3_)                 \
        CB_CASE(KB_, 5, STEP_, TAPS3_) CB_CASE(KB_, 6, STEP_, TAPS3_)                 \
        CB_MORE_CASES(KB_, STEP_, TAPS3_)                                             \
    }
    if (src.step == 1 && two && nu == 3 && nv == 3)
        CB_CASES(2, 1, 3)
    else if (src.step == 1 && two && nu == 3 && nv == 1)
        CB_CASES(2, 1, 1)
    else if (src.step == 1 && two)
        CB_CASES(2, 1, 0)
    else if (src.step == 1)
        CB_CASES(1, 1, 0)
    else if (two)
        CB_CASES(2, src.step, 0)
    else
        CB_CASES(1, src.step, 0)
#undef CB_CASES
#undef CB_MORE_CASES
#undef CB_CASE
}

/* One run of positions of output row r, for pair q of blocks of output channels of
 * group g of image n, in tiles of CB_P positions. A tile whose windows cross the left
 * or right padding sums one tap column at a time over the positions it lies inside
 * for; every other sums all taps at once. */
static void VARIANT(cb_row)(const cb_conv *p, ptrdiff_t n, ptrdiff_t g, ptrdiff_t q,
                           ptrdiff_t r, ptrdiff_t run)
{
    ptrdiff_t i, j, j1, u0, u1, nu, kvalid;
    const ptrdiff_t lanes = 2 * CB_VL, taps = p->icg * p->fh * p->fw;
    const T *x, *w, *bias;
    T *y;
    int two;
    kvalid = p->ocg - q * lanes < lanes ? p->ocg - q * lanes : lanes;
    two = kvalid > CB_VL;
    w = (const T *)p->wpack + (g * p->pairs + q) * taps * lanes;
    bias = (const T *)p->bpack + (g * p->pairs + q) * lanes;
    x = (const T *)p->x + n * p->xn + g * p->icg * p->xc;
    y = (T *)p->y + n * p->yn + (g * p->ocg + q * lanes) * p->yk + r * p->yh;
    /* tap rows u0 .. u1-1 land inside the input: 0 <= r*sh - pt + u*dh < in_h */
    i = r * p->sh - p->pt;
    u0 = i >= 0 ? 0 : cb_ceil_div(-i, p->dh);
    u1 = p->in_h - i <= 0 ? 0 : cb_ceil_div(p->in_h - i, p->dh);
    if (u1 > p->fh) u1 = p->fh;
    nu = u1 > u0 ? u1 - u0 : 0;  /* none: the bias alone */
    i += u0 * p->dh;
    w += u0 * p->fw * lanes;
    j = run * p->run;
    j1 = j + p->run < p->cols ? j + p->run : p->cols;
    for (; j < j1; j += CB_P) {
        const ptrdiff_t m = j1 - j < CB_P ? j1 - j : CB_P, col = j * p->sw - p->pl;
        const VARIANT(cb_src) src = {x + i * p->xh + col * p->xw, p->xc, p->dh * p->xh,
                                     p->dw * p->xw, p->sw * p->xw};
        T part[2 * CB_P * CB_VL] __attribute__((aligned(64)));
        ptrdiff_t kb, l, v, c0;
        for (kb = 0; kb < 2; kb++)
            for (l = 0; l < m; l++)
                *(CB_V *)(part + (kb * CB_P + l) * CB_VL) = *(const CB_V *)(bias + kb * CB_VL);
        for (c0 = 0; c0 < p->icg; c0 += p->cblock) {  /* blocks of channels: see cb_plan */
            const ptrdiff_t nc = p->icg - c0 < p->cblock ? p->icg - c0 : p->cblock;
            const T *wc = w + c0 * p->fh * p->fw * lanes;
            VARIANT(cb_src) block = src;
            block.x += c0 * src.xc;
            if (j >= p->col_lo && j + m <= p->col_hi)  /* every window inside the columns */
                VARIANT(cb_tile_n)(two, m, block, wc, p, nc, nu, p->fw, part);
            else  /* tap column v for positions lo .. hi-1, whose pixel col + l*sw + v*dw is inside */
                for (v = 0; v < p->fw; v++) {
                    const ptrdiff_t at = col + v * p->dw;
                    const ptrdiff_t lo = at >= 0 ? 0 : cb_ceil_div(-at, p->sw);
                    ptrdiff_t hi = p->in_w - at <= 0 ? 0 : cb_ceil_div(p->in_w - at, p->sw);
                    VARIANT(cb_src) tap = block;
                    hi = hi < m ? hi : m;
                    if (hi <= lo)
                        continue;
                    tap.x += v * src.xv + lo * src.step;
                    VARIANT(cb_tile_n)(two, hi - lo, tap, wc + v * lanes, p, nc, nu, 1,
                                       part + lo * CB_VL);
                }
        }
        VARIANT(cb_store)(p, part, m, y + j * p->yw, kvalid);
    }
}


/* Task t of the plan: rows [r0, r0 + row_block) of one run of positions, for one pair of
 * blocks of output channels of one group of one image. */
void VARIANT(cb_task)(const cb_conv *p, ptrdiff_t t)
{
    ptrdiff_t n, g, q, rb, r, r1, run;
    run = t % p->runs;
    t /= p->runs;
    rb = t % p->row_tasks;
    t /= p->row_tasks;
    if (p->pairs_inner) {
        q = t % p->pairs;
        t /= p->pairs;
        g = t % p->groups;
        n = t / p->groups;
    }
    else {
        n = t % p->n;
        t /= p->n;
        q = t % p->pairs;
        g = t / p->pairs;
    }
    r1 = (rb + 1) * p->row_block < p->rows ? (rb + 1) * p->row_block : p->rows;
    for (r = rb * p->row_block; r < r1; r++)
        VARIANT(cb_row)(p, n, g, q, r, run);
}
/* The filter gradient (cbg_conv of conv_blocked.h). */

/* Copy the input rows of band rows [i0, i0 + rows) of image n, group g, channels-last
 * into xs[r][col][c] (r < the band's input rows, col < p->cols, c < icg), with zeros
 * for the padding: row r is input row i0*sh - pt + r, column col input column col - pl. */
static void VARIANT(cbg_copy_input)(const cbg_conv *p, ptrdiff_t n, ptrdiff_t g, ptrdiff_t i0,
                                    ptrdiff_t rows, T *xs)
{
    const ptrdiff_t nr = (rows - 1) * p->sh + (p->fh - 1) * p->dh + 1, icg = p->icg;
    const ptrdiff_t lo = p->pl < p->cols ? p->pl : p->cols;
    ptrdiff_t hi = p->pl + p->in_w < p->cols ? p->pl + p->in_w : p->cols;
    const T *x = (const T *)p->x + n * p->xn + g * icg * p->xc;
    ptrdiff_t r, col, c, c0;
    if (hi < lo) hi = lo;
    for (r = 0; r < nr; r++) {
        const ptrdiff_t ir = i0 * p->sh - p->pt + r;
        T *dst = xs + r * p->cols * icg;
        const T *src = x + ir * p->xh;
        if (ir < 0 || ir >= p->in_h) {
            for (col = 0; col < p->cols * icg; col++) dst[col] = 0;
            continue;
        }
        for (col = 0; col < lo * icg; col++) dst[col] = 0;
        for (col = hi * icg; col < p->cols * icg; col++) dst[col] = 0;
        if (p->xc == 1)  /* channels last already: one pixel's channels at a time */
            for (col = lo; col < hi; col++)
                for (c = 0; c < icg; c++)
                    dst[col * icg + c] = src[(col - p->pl) * p->xw + c];
        else  /* 16 channels at a time: each pixel's 16 values go to one cache line */
            for (c0 = 0; c0 < icg; c0 += 16) {
                const ptrdiff_t cn = icg - c0 < 16 ? icg - c0 : 16;
                for (col = lo; col < hi; col++)
                    for (c = 0; c < cn; c++)
                        dst[col * icg + c0 + c] = src[(c0 + c) * p->xc + (col - p->pl) * p->xw];
            }
    }
}

/* Transpose dy of band rows [i0, i0 + rows) of image n, pair q of group g into
 * ys[position][2 * vl] (positions of the band in row-major order), zeros past ocg. */
static void VARIANT(cbg_copy_grad)(const cbg_conv *p, ptrdiff_t n, ptrdiff_t g, ptrdiff_t q,
                                   ptrdiff_t i0, ptrdiff_t rows, T *ys)
{
    const ptrdiff_t lanes = 2 * CB_VL;
    const T *dy = (const T *)p->dy + n * p->yn + (g * p->ocg + q * lanes) * p->yk + i0 * p->yh;
    const ptrdiff_t kvalid = p->ocg - q * lanes < lanes ? p->ocg - q * lanes : lanes;
    ptrdiff_t l, i, j;
    for (i = 0; i < rows; i++)  /* each position's lanes in one or two cache lines */
        for (j = 0; j < p->ow; j++) {
            T *dst = ys + (i * p->ow + j) * lanes;
            const T *src = dy + i * p->yh + j * p->yw;
            for (l = 0; l < kvalid; l++) dst[l] = src[l * p->yk];
            for (; l < lanes; l++) dst[l] = 0;
        }
}

/* One tile of the filter gradient: KB (1 or 2) vectors of output channels at P taps,
 * summed over a band of rows x ow positions in order; the taps of position (i, j) are
 * xs[i*xrow + j*xstep + t] (t < P) and its gradients ys[(i*ow + j)*2*CB_VL + kb*CB_VL].
 * The sums start from sum (laid out as cb_store's part) and go back there. */
static inline __attribute__((always_inline)) void
VARIANT(cbg_tile)(const int KB, const int P, const T *xs, ptrdiff_t xstep, ptrdiff_t xrow,
                  const T *ys, ptrdiff_t rows, ptrdiff_t ow, T *sum)
{
    CB_V acc[2][CB_P];
    ptrdiff_t i, j, t, kb;
    for (kb = 0; kb < 2; kb++)  /* both blocks set, even for KB = 1, or GCC keeps them in memory */
        for (t = 0; t < P; t++)
            acc[kb][t] = *(const CB_V *)(sum + (kb * CB_P + t) * CB_VL);
    for (i = 0; i < rows; i++) {
        const T *xr = xs + i * xrow, *yr = ys + i * ow * 2 * CB_VL;
        for (j = 0; j < ow; j++) {
            const T *xp = xr + j * xstep;
            const CB_V d0 = *(const CB_V *)(yr + j * 2 * CB_VL);
            const CB_V d1 = KB > 1 ? *(const CB_V *)(yr + j * 2 * CB_VL + CB_VL) : d0;
            for (t = 0; t < P; t++) {
                if (KB > 1) {
                    CB_FMA_PIXEL(acc[0][t], d0, xp + t);
                    CB_FMA_PIXEL(acc[1][t], d1, xp + t);
                }
                else
                    acc[0][t] = d0 * xp[t] + acc[0][t];
            }
        }
    }
    for (kb = 0; kb < KB; kb++)
        for (t = 0; t < P; t++)
            *(CB_V *)(sum + (kb * CB_P + t) * CB_VL) = acc[kb][t];
}

/* cbg_tile for run-time m (<= CB_P) taps and KB = 1 + two. */
static void VARIANT(cbg_tile_n)(int two, ptrdiff_t m, const T *xs, ptrdiff_t xstep,
                                ptrdiff_t xrow, const T *ys, ptrdiff_t rows, ptrdiff_t ow,
                                T *sum)
{
#define CBG_CASE(KB_, P_)                                                             \
    case P_:                                                                          \
        VARIANT(cbg_tile)(KB_, P_, xs, xstep, xrow, ys, rows, ow, sum);               \
        break;
#if CB_P > 6
#define CBG_MORE_CASES(KB_)                                                           \
        CBG_CASE(KB_, 7) CBG_CASE(KB_, 8) CBG_CASE(KB_, 9) CBG_CASE(KB_, 10)          \
        CBG_CASE(KB_, 11) CBG_CASE(KB_, 12) CBG_CASE(KB_, 13) CBG_CASE(KB_, 14)
#else
#define CBG_MORE_CASES(KB_)
#endif
#define CBG_CASES(KB_)                                                                \
    switch (m) {                                                                      \
        CBG_CASE(KB_, 1) CBG_CASE(KB_, 2) CBG_CASE(KB_, 3) CBG_CASE(KB_, 4)           \
        CBG_CASE(KB_, 5) CBG_CASE(KB_, 6) CBG_MORE_CASES(KB_)                         \
    }
    if (two)
        CBG_CASES(2)
    else
        CBG_CASES(1)
#undef CBG_CASES
#undef CBG_MORE_CASES
#undef CBG_CASE
}

/* The tile of item it: group, pair, tap row, run and the run's taps [t0, t1). */
typedef struct {
    ptrdiff_t g, q, u, s, t0, t1;
} VARIANT(cbg_item);

static VARIANT(cbg_item) VARIANT(cbg_decode)(const cbg_conv *p, ptrdiff_t it)
{
    VARIANT(cbg_item) a;
    const ptrdiff_t t = it % p->tiles;
    it /= p->tiles;
    a.s = it % p->segs;
    it /= p->segs;
    a.u = it % p->fh;
    it /= p->fh;
    a.q = it % p->pairs;
    a.g = it / p->pairs;
    a.t0 = t * p->seg / p->tiles;
    a.t1 = (t + 1) * p->seg / p->tiles;
    return a;
}

/* Items [lo, hi) of the plan: every band of every image in order, then their sums
 * (sums + item * 2*CB_P*CB_VL) written to dw. scratch holds p->scratch elements.
 * Returns early, writing nothing, once stop is set. */
void VARIANT(cbg_part)(const cbg_conv *p, ptrdiff_t lo, ptrdiff_t hi, void *sums,
                       void *scratch, const pc_stop_flag *stop)
{
    const ptrdiff_t lanes = 2 * CB_VL, per_item = 2 * CB_P * CB_VL, icg = p->icg;
    T *xs = (T *)scratch, *ys = xs + p->band_rows * p->cols * icg;
    T *sum = (T *)sums;
    ptrdiff_t n, b, it, l;
    for (l = lo * per_item; l < hi * per_item; l++) sum[l] = 0;
    for (n = 0; n < p->n; n++)
        for (b = 0; b < p->bands; b++) {
            const ptrdiff_t i0 = b * p->band;
            const ptrdiff_t rows = p->oh - i0 < p->band ? p->oh - i0 : p->band;
            ptrdiff_t g_copied = -1, q_copied = -1;
            if (pc_stopped(stop))
                return;
            for (it = lo; it < hi; it++) {
                const VARIANT(cbg_item) a = VARIANT(cbg_decode)(p, it);
                const ptrdiff_t kvalid = p->ocg - a.q * lanes;
                if (a.g != g_copied) {
                    VARIANT(cbg_copy_input)(p, n, a.g, i0, rows, xs);
                    g_copied = a.g;
                    q_copied = -1;
                }
                if (a.q != q_copied) {
                    VARIANT(cbg_copy_grad)(p, n, a.g, a.q, i0, rows, ys);
                    q_copied = a.q;
                }
                VARIANT(cbg_tile_n)(kvalid > CB_VL, a.t1 - a.t0,
                                    xs + a.u * p->dh * p->cols * icg + a.s * p->seg_step + a.t0,
                                    p->sw * icg, p->sh * p->cols * icg, ys, rows, p->ow,
                                    sum + it * per_item);
            }
        }
    for (it = lo; it < hi; it++) {
        const VARIANT(cbg_item) a = VARIANT(cbg_decode)(p, it);
        T *dw = (T *)p->dw + a.g * p->wg;
        ptrdiff_t t;
        for (t = a.t0; t < a.t1; t++) {
            const ptrdiff_t v = p->segs == 1 ? t / icg : a.s, c = p->segs == 1 ? t % icg : t;
            const T *from = sum + it * per_item + (t - a.t0) * CB_VL;
            for (l = 0; l < lanes && a.q * lanes + l < p->ocg; l++)
                dw[(a.q * lanes + l) * p->wo + c * p->wc + a.u * p->wu + v * p->wv] =
                    from[(l / CB_VL) * CB_P * CB_VL + l % CB_VL];
        }
    }
}

#undef CB_VL
#undef CB_P
#undef CB_V
#undef CB_VBYTES

#endif
