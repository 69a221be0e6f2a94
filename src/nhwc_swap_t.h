/* The transposing copy of nhwc_swap.h for one element type T and CPU level: a template,
 * compiled once per (T, level) in a translation unit that setup.py generates (see
 * cpu_features.h). */
#include "nhwc_swap.h"

#if CPU_LEVEL == CPU_PORTABLE || CPU_X86
#include "nhwc_vec_t.h"

/* b[j*ldb + k] = a[k*lda + j] for rows k < rows and columns j < cols. */
void VARIANT(nhwc_transpose)(const T *a, ptrdiff_t rows, ptrdiff_t cols, ptrdiff_t lda, T *b,
                             ptrdiff_t ldb)
{
    ptrdiff_t k = 0, j, i;
#ifdef NV_ZIP
    for (; k + NV_LANES <= rows; k += NV_LANES) {
        for (j = 0; j + NV_LANES <= cols; j += NV_LANES) {
            NV v[NV_LANES];
            _Pragma("GCC unroll 16")
            for (i = 0; i < NV_LANES; i++) v[i] = VARIANT(nv_load)(a + (k + i) * lda + j);
            VARIANT(nv_zip_rows)(v, NV_LANES);  /* v[i]: column j + i, its rows in order */
            _Pragma("GCC unroll 16")
            for (i = 0; i < NV_LANES; i++) VARIANT(nv_store)(b + (j + i) * ldb + k, v[i]);
        }
        for (; j < cols; j++)
            for (i = 0; i < NV_LANES; i++) b[j * ldb + k + i] = a[(k + i) * lda + j];
    }
#endif
    for (; k < rows; k++)
        for (j = 0; j < cols; j++) b[j * ldb + k] = a[k * lda + j];
}

#endif
