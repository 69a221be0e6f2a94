/* One instantiation of the packed GEMM tile of conv_gemm.h, for element type
 * CG_T and vectors of CG_VBYTES bytes; the functions get the suffix CG_SUFFIX.
 * Included by conv_gemm.h once per (type, instruction set), under that
 * instruction set's target pragma. */

#define CG_VL (CG_VBYTES / (ptrdiff_t)sizeof(CG_T))
#define CG_MR (CG_VBYTES == 64 ? 8 : 4)
#define CG_NR (3 * CG_VL)
#define CG_V CG_CAT2(cg_vec, CG_SUFFIX)
#define CG_FN(name) CG_CAT2(name, CG_SUFFIX)

/* alignment of one element: loads and stores may be unaligned */
typedef CG_T CG_V __attribute__((vector_size(CG_VBYTES), aligned(sizeof(CG_T))));

/* C (MR, NV vectors) at c, row stride ldc = A (MR, kc) @ B (kc, NV vectors) + (load_c ?
 * C : bias), A packed as kc columns of MR values, B as kc rows of NR values (of which
 * the first NV vectors are used). Each value of C sums its kc products in order, one
 * fused multiply-add at a time. */
#define CG_TILE(NV)                                                                     \
static void CG_FN(cg_tile##NV)(ptrdiff_t kc, const CG_T *a, const CG_T *b, CG_T *c,    \
                               ptrdiff_t ldc, const CG_T *bias, int load_c)               \
{                                                                                       \
    CG_V acc[CG_MR][NV], bv[NV];                                                        \
    ptrdiff_t i, j, k;                                                                  \
    _Pragma("GCC unroll 8")                                                             \
    for (i = 0; i < CG_MR; i++)                                                         \
        _Pragma("GCC unroll 3")                                                         \
        for (j = 0; j < NV; j++)                                                        \
            acc[i][j] = load_c ? *(const CG_V *)(c + i * ldc + j * CG_VL)               \
                               : (CG_V){0} + bias[i];                                   \
    for (k = 0; k < kc; k++) {                                                          \
        _Pragma("GCC unroll 3")                                                         \
        for (j = 0; j < NV; j++)                                                        \
            bv[j] = *(const CG_V *)(b + j * CG_VL);                                     \
        _Pragma("GCC unroll 8")                                                         \
        for (i = 0; i < CG_MR; i++) {                                                   \
            const CG_T ai = a[i];  /* broadcast by the vector arithmetic */             \
            _Pragma("GCC unroll 3")                                                     \
            for (j = 0; j < NV; j++)                                                    \
                acc[i][j] = CG_FMA(bv[j], ai, acc[i][j]);                               \
        }                                                                               \
        a += CG_MR;                                                                     \
        b += CG_NR;                                                                     \
    }                                                                                   \
    _Pragma("GCC unroll 8")                                                             \
    for (i = 0; i < CG_MR; i++)                                                         \
        _Pragma("GCC unroll 3")                                                         \
        for (j = 0; j < NV; j++)                                                        \
            *(CG_V *)(c + i * ldc + j * CG_VL) = acc[i][j];                             \
}
CG_TILE(1)
CG_TILE(2)
CG_TILE(3)
#undef CG_TILE

/* out (round_up(m, MR), round_up(n, NR)), row stride ldo, = bias + A @ B for rows
 * 0 .. m-1 and columns 0 .. n-1 (the rest is scratch), where A is packed filters
 * (ceil(m/MR) panels of (kk, MR)) and B(k, j) = b[off[k] + j]. The reduction runs in blocks of kc_max rows; each block of a panel
 * of NR columns is first copied into pack (kc_max * NR values), so that the tiles read
 * it from L1, contiguous, while the A block stays in L2. */
static void CG_FN(cg_gemm)(ptrdiff_t m, ptrdiff_t n, ptrdiff_t kk, const CG_T *a, const CG_T *b,
                           const ptrdiff_t *off, const CG_T *bias, CG_T *out, ptrdiff_t ldo,
                           ptrdiff_t kc_max, CG_T *pack)
{
    ptrdiff_t k0, kc, k, q, blk, cols;
    for (k0 = 0; k0 < kk; k0 += kc_max) {
        kc = kk - k0 < kc_max ? kk - k0 : kc_max;
        for (q = 0; q * CG_NR < n; q++) {
            cols = n - q * CG_NR;
            for (k = 0; k < kc; k++) {
                const CG_T *src = b + off[k0 + k] + q * CG_NR;
                CG_V *dst = (CG_V *)(pack + k * CG_NR);
                if (cols >= CG_NR) {
                    dst[0] = *(const CG_V *)src;
                    dst[1] = *(const CG_V *)(src + CG_VL);
                    dst[2] = *(const CG_V *)(src + 2 * CG_VL);
                }
                else  /* never read past column n - 1 */
                    memcpy(dst, src, cols * sizeof(CG_T));
            }
            for (blk = 0; blk * CG_MR < m; blk++) {
                const CG_T *ap = a + blk * kk * CG_MR + k0 * CG_MR;
                CG_T *cp = out + blk * CG_MR * ldo + q * CG_NR;
                const CG_T *bb = bias + blk * CG_MR;
                if (cols <= CG_VL)  /* the last panel: as few vectors as cover it */
                    CG_FN(cg_tile1)(kc, ap, pack, cp, ldo, bb, k0 > 0);
                else if (cols <= 2 * CG_VL)
                    CG_FN(cg_tile2)(kc, ap, pack, cp, ldo, bb, k0 > 0);
                else
                    CG_FN(cg_tile3)(kc, ap, pack, cp, ldo, bb, k0 > 0);
            }
        }
    }
}

#undef CG_VL
#undef CG_MR
#undef CG_NR
#undef CG_V
#undef CG_FN
#undef CG_T
#undef CG_SUFFIX
