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
    const ptrdiff_t taps = p->icg * p->fh * p->fw;
    const T *w = (const T *)p->filt + g * p->wg;
    T *dst = (T *)p->wpack + item * taps * lanes;
    T *bias = (T *)p->bpack + item * lanes;
    ptrdiff_t l, c, u, v;
    for (l = 0; l < lanes; l++) {
        const ptrdiff_t o = q * lanes + l;
        bias[l] = o < p->ocg && p->bias != NULL ? ((const T *)p->bias)[g * p->ocg + o] : 0;
    }
    for (c = 0; c < p->icg; c++)
        for (u = 0; u < p->fh; u++)
            for (v = 0; v < p->fw; v++, dst += lanes)
                for (l = 0; l < lanes; l++) {
                    const ptrdiff_t o = q * lanes + l;
                    dst[l] = o < p->ocg ? w[o * p->wo + c * p->wc + u * p->wu + v * p->wv] : 0;
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
 * cb_store reads it) and go back there. Inlined with constant KB, P and (where 1)
 * step, so the sums stay in registers. */
static inline __attribute__((always_inline)) void
VARIANT(cb_tile)(const int KB, const int P, const ptrdiff_t step, VARIANT(cb_src) src,
                 const T *w, const cb_conv *p, ptrdiff_t nu, ptrdiff_t nv, T *part)
{
    const ptrdiff_t wv = 2 * CB_VL, wu = p->fw * wv, wc = p->fh * wu;
    CB_V acc[2][CB_P];
    ptrdiff_t c, u, v, j, kb;
    for (kb = 0; kb < 2; kb++)  /* both blocks set, even for KB = 1, or GCC keeps them in memory */
        for (j = 0; j < P; j++)
            acc[kb][j] = *(const CB_V *)(part + (kb * CB_P + j) * CB_VL);
    for (c = 0; c < p->icg; c++) {
        const T *xc = src.x + c * src.xc, *wcp = w + c * wc;
        for (u = 0; u < nu; u++) {
            const T *xr = xc + u * src.xu, *wr = wcp + u * wu;
            for (v = 0; v < nv; v++) {
                const T *xp = xr + v * src.xv, *wp = wr + v * wv;
                const CB_V w0 = *(const CB_V *)wp;
                const CB_V w1 = KB > 1 ? *(const CB_V *)(wp + CB_VL) : w0;
                for (j = 0; j < P; j++) {
                    if (KB > 1) {
                        CB_FMA_PIXEL(acc[0][j], w0, xp + j * step);
                        CB_FMA_PIXEL(acc[1][j], w1, xp + j * step);
                    }
                    else  /* the compiler folds the broadcast into the multiply-add */
                        acc[0][j] = w0 * xp[j * step] + acc[0][j];
                }
            }
        }
    }
    for (kb = 0; kb < KB; kb++)
        for (j = 0; j < P; j++)
            *(CB_V *)(part + (kb * CB_P + j) * CB_VL) = acc[kb][j];
}

/* cb_tile for run-time n (<= CB_P) positions, KB = 1 + two and any step. */
static void VARIANT(cb_tile_n)(int two, ptrdiff_t n, VARIANT(cb_src) src, const T *w,
                               const cb_conv *p, ptrdiff_t nu, ptrdiff_t nv, T *part)
{
#define CB_CASE(KB_, P_, STEP_)                                                       \
    case P_:                                                                          \
        VARIANT(cb_tile)(KB_, P_, STEP_, src, w, p, nu, nv, part);                    \
        break;
#if CB_P > 6
#define CB_MORE_CASES(KB_, STEP_)                                                     \
        CB_CASE(KB_, 7, STEP_) CB_CASE(KB_, 8, STEP_) CB_CASE(KB_, 9, STEP_)          \
        CB_CASE(KB_, 10, STEP_) CB_CASE(KB_, 11, STEP_) CB_CASE(KB_, 12, STEP_)       \
        CB_CASE(KB_, 13, STEP_) CB_CASE(KB_, 14, STEP_)
#else
#define CB_MORE_CASES(KB_, STEP_)
#endif
#define CB_CASES(KB_, STEP_)                                                          \
    switch (n) {                                                                      \
        CB_CASE(KB_, 1, STEP_) CB_CASE(KB_, 2, STEP_) CB_CASE(KB_, 3, STEP_)          \
        CB_CASE(KB_, 4, STEP_) CB_CASE(KB_, 5, STEP_) CB_CASE(KB_, 6, STEP_)          \
        CB_MORE_CASES(KB_, STEP_)                                                     \
    }
    if (src.step == 1 && two)
        CB_CASES(2, 1)
    else if (src.step == 1)
        CB_CASES(1, 1)
    else if (two)
        CB_CASES(2, src.step)
    else
        CB_CASES(1, src.step)
#undef CB_CASES
#undef CB_MORE_CASES
#undef CB_CASE
}

/* Task t of the plan: one run of positions of one output row, for one pair of
 * blocks of output channels of one group of one image, in tiles of CB_P positions.
 * A tile whose windows cross the left or right padding sums one tap column at a
 * time over the positions it lies inside for; every other sums all taps at once. */
void VARIANT(cb_task)(const cb_conv *p, ptrdiff_t t)
{
    ptrdiff_t n, g, q, r, run, i, j, j1, u0, u1, nu, kvalid;
    const ptrdiff_t lanes = 2 * CB_VL, taps = p->icg * p->fh * p->fw;
    const T *x, *w, *bias;
    T *y;
    int two;
    run = t % p->runs;
    t /= p->runs;
    r = t % p->rows;
    t /= p->rows;
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
        ptrdiff_t kb, l, v;
        for (kb = 0; kb < 2; kb++)
            for (l = 0; l < m; l++)
                *(CB_V *)(part + (kb * CB_P + l) * CB_VL) = *(const CB_V *)(bias + kb * CB_VL);
        if (j >= p->col_lo && j + m <= p->col_hi)  /* every window inside the columns */
            VARIANT(cb_tile_n)(two, m, src, w, p, nu, p->fw, part);
        else  /* tap column v for positions lo .. hi-1, whose pixel col + l*sw + v*dw is inside */
            for (v = 0; v < p->fw; v++) {
                const ptrdiff_t at = col + v * p->dw;
                const ptrdiff_t lo = at >= 0 ? 0 : cb_ceil_div(-at, p->sw);
                ptrdiff_t hi = p->in_w - at <= 0 ? 0 : cb_ceil_div(p->in_w - at, p->sw);
                VARIANT(cb_src) tap = src;
                hi = hi < m ? hi : m;
                if (hi <= lo)
                    continue;
                tap.x += v * src.xv + lo * src.step;
                VARIANT(cb_tile_n)(two, hi - lo, tap, w + v * lanes, p, nu, 1,
                                   part + lo * CB_VL);
            }
        VARIANT(cb_store)(p, part, m, y + j * p->yw, kvalid);
    }
}

#undef CB_VL
#undef CB_P
#undef CB_V
#undef CB_VBYTES

#endif
