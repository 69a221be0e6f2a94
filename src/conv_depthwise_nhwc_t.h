/* The channels-last depthwise convolution of conv_depthwise_nhwc.h for one element type T
 * and CPU level: a template, compiled once per (T, level) in a translation unit that
 * setup.py generates (see cpu_features.h). */
#include "conv_depthwise_nhwc.h"

#include "pool.h" /* pool_valid */

#if CPU_LEVEL == CPU_PORTABLE || CPU_X86
/* Output rows [i0, i1) of out (OH, OW, K) = bias (K, or NULL for none) plus the
 * convolution of x (H, W, C) by the filters wt (FH*FW, K) packed tap by tap: the taps
 * inside the input added in row-major order. */
void VARIANT(dwn_forward_rows)(const T *x, const T *wt, const T *bias, const dwn_geom *g,
                               ptrdiff_t i0, ptrdiff_t i1, T *out)
{
    const ptrdiff_t C = g->c, K = g->k, m = g->m;
    for (ptrdiff_t i = i0; i < i1; i++) {
        ptrdiff_t ulo, uhi, r0 = i * g->sh - g->top;
        pool_valid(r0, g->dh, g->h, g->fh, &ulo, &uhi);
        for (ptrdiff_t j = 0; j < g->ow; j++) {
            ptrdiff_t vlo, vhi, c0 = j * g->sw - g->left;
            T *POOL_RESTRICT o = out + (i * g->ow + j) * K;
            pool_valid(c0, g->dw, g->w, g->fw, &vlo, &vhi);
            if (bias)
                for (ptrdiff_t k = 0; k < K; k++) o[k] = bias[k];
            else
                for (ptrdiff_t k = 0; k < K; k++) o[k] = 0;
            for (ptrdiff_t u = ulo; u < uhi; u++)
                for (ptrdiff_t v = vlo; v < vhi; v++) {
                    const T *POOL_RESTRICT p = x + ((r0 + u * g->dh) * g->w + c0 + v * g->dw) * C;
                    const T *POOL_RESTRICT f = wt + (u * g->fw + v) * K;
                    if (m == 1) {
                        for (ptrdiff_t k = 0; k < K; k++) o[k] = o[k] + f[k] * p[k];
                    } else {
                        for (ptrdiff_t c = 0; c < C; c++)
                            for (ptrdiff_t q = 0; q < m; q++)
                                o[c * m + q] = o[c * m + q] + f[c * m + q] * p[c];
                    }
                }
        }
    }
}
#endif
