"""im2col + GEMM convolution, each OpenMP thread packing and multiplying its own blocks.

Work is cut into items fixed by the geometry alone (never by the thread count): a
forward item is one image, one group and a block of output positions ``p0 .. p1-1``;
a backward item is a run of images, one group and a block of input channels. An
item packs its columns into its thread's slice of ``work`` and multiplies them with
SciPy's BLAS, which the caller keeps single-threaded meanwhile, so that the GEMMs
run inside our threads instead of alternating with BLAS's own. Every output value
is computed by the same calls whatever the thread count, so results do not depend
on it.

A column block is row-major (rows, nb): row ``r = (c - c0)*FH*FW + u*FW + v`` holds,
at ``p - p0``, the input pixel ``x[n, c, i*sh - pt + u*dh, j*sw - pl + v*dw]`` of
output position ``p = i*OW + j``, zero outside the image.
"""
from cython.parallel cimport parallel, prange
from libc.stdint cimport uintptr_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy, memset
from scipy.linalg.cython_blas cimport dgemm, sgemm

from _interrupt cimport pc_again, pc_guard, pc_guard_new, pc_stopped
from _openmp_helpers cimport omp_get_thread_num


cdef extern from "conv_gemm.h" nogil:
    Py_ssize_t cg_mr(int level)
    Py_ssize_t cg_nr(int level, size_t elem)
    void cg_gemm_f32(int level, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, const float *a,
                     const float *b, const Py_ssize_t *off, const float *bias, float *out,
                     Py_ssize_t ldo, Py_ssize_t kc, float *pack)
    void cg_gemm_f64(int level, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, const double *a,
                     const double *b, const Py_ssize_t *off, const double *bias, double *out,
                     Py_ssize_t ldo, Py_ssize_t kc, double *pack)
    void cg_gemm_same_f32(int level, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, const float *a,
                          const float *b, Py_ssize_t istride, Py_ssize_t np, const Py_ssize_t *off,
                          const float *bias, float *out, Py_ssize_t ldo, Py_ssize_t kc, float *pack,
                          Py_ssize_t p0, Py_ssize_t h, Py_ssize_t w, Py_ssize_t fh,
                          Py_ssize_t fw, Py_ssize_t dh, Py_ssize_t pt,
                          const unsigned long long *colmask)
    void cg_gemm_same_f64(int level, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, const double *a,
                          const double *b, Py_ssize_t istride, Py_ssize_t np, const Py_ssize_t *off,
                          const double *bias, double *out, Py_ssize_t ldo, Py_ssize_t kc, double *pack,
                          Py_ssize_t p0, Py_ssize_t h, Py_ssize_t w, Py_ssize_t fh,
                          Py_ssize_t fw, Py_ssize_t dh, Py_ssize_t pt,
                          const unsigned long long *colmask)
    void cg_rows_gemm_f32(int level, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, const float *x,
                          Py_ssize_t ldx, const float *b, const float *bias, float *out,
                          Py_ssize_t ldo, Py_ssize_t kc, float *a, const float *next,
                          Py_ssize_t next_bytes)
    void cg_rows_gemm_f64(int level, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, const double *x,
                          Py_ssize_t ldx, const double *b, const double *bias, double *out,
                          Py_ssize_t ldo, Py_ssize_t kc, double *a, const double *next,
                          Py_ssize_t next_bytes)

ctypedef fused floating:
    float
    double


cdef struct Geometry:
    Py_ssize_t h, w, oh, ow, fh, fw, sh, sw, pt, pl, dh, dw


cdef inline void gemm(bint trans_a, bint trans_b, int m, int n, int k, const floating *a,
                      int lda, const floating *b, int ldb, floating beta, floating *c,
                      int ldc) noexcept nogil:
    """Row-major C (m, n) = op(A) (m, k) @ op(B) (k, n) + beta*C, through column-major BLAS."""
    cdef char ta = b'T' if trans_a else b'N'
    cdef char tb = b'T' if trans_b else b'N'
    cdef floating one = 1
    # row-major C is column-major C^T = op(B)^T op(A)^T: swap the operands, keep the flags
    if floating is float:
        sgemm(&tb, &ta, &n, &m, &k, &one, <float *>b, &ldb, <float *>a, &lda, &beta, c, &ldc)
    else:
        dgemm(&tb, &ta, &n, &m, &k, &one, <double *>b, &ldb, <double *>a, &lda, &beta, c, &ldc)


cdef inline Py_ssize_t _first_col(Py_ssize_t off, Py_ssize_t sw) noexcept nogil:
    """First output column j whose input column j*sw + off is >= 0."""
    return (-off + sw - 1) // sw if off < 0 else 0


cdef inline Py_ssize_t _end_col(Py_ssize_t off, Py_ssize_t width, Py_ssize_t sw,
                                Py_ssize_t ow) noexcept nogil:
    """One past the last output column j (< ow) whose input column j*sw + off is < width."""
    cdef Py_ssize_t end = 0
    if width - off > 0:
        end = (width - off + sw - 1) // sw
    return end if end < ow else ow


cdef void pack(const floating *xn, Py_ssize_t channels, const Geometry *g, Py_ssize_t p0,
               Py_ssize_t p1, floating *col) noexcept nogil:
    """Fill col (channels*FH*FW, p1 - p0), row-major, with the columns of positions
    p0 .. p1-1 of the planes at xn (channels, H, W)."""
    cdef Py_ssize_t nb = p1 - p0, c, u, v, i, j, ja, jb, a, e, lo, hi, off, row_in
    cdef floating *dst
    cdef const floating *src
    for c in range(channels):
        for u in range(g.fh):
            for v in range(g.fw):
                # dst[i*ow + j] is output position (i, j)
                dst = col + ((c * g.fh + u) * g.fw + v) * nb - p0
                off = v * g.dw - g.pl
                lo = _first_col(off, g.sw)
                hi = _end_col(off, g.w, g.sw, g.ow)
                for i in range(p0 // g.ow, (p1 - 1) // g.ow + 1):
                    # this output row's positions within [p0, p1), as columns ja .. jb-1
                    ja = max(p0 - i * g.ow, 0)
                    jb = min(p1 - i * g.ow, g.ow)
                    row_in = i * g.sh - g.pt + u * g.dh
                    a = min(max(lo, ja), jb)  # zeros before a, pixels a .. e-1, zeros after
                    e = min(max(hi, a), jb)
                    if row_in < 0 or row_in >= g.h:  # a padding row: all zeros
                        a = e = jb
                    memset(dst + i * g.ow + ja, 0, (a - ja) * sizeof(floating))
                    if e > a:
                        src = xn + (c * g.h + row_in) * g.w + off
                        if g.sw == 1:
                            memcpy(dst + i * g.ow + a, src + a, (e - a) * sizeof(floating))
                        else:
                            for j in range(a, e):
                                dst[i * g.ow + j] = src[j * g.sw]
                    memset(dst + i * g.ow + e, 0, (jb - e) * sizeof(floating))


cdef void unpack_add(const floating *col, Py_ssize_t channels, const Geometry *g,
                     Py_ssize_t p0, Py_ssize_t p1, floating *dxn) noexcept nogil:
    """Add col (channels*FH*FW, p1 - p0) into the planes at dxn where pack read them."""
    cdef Py_ssize_t nb = p1 - p0, c, u, v, i, j, ja, jb, lo, hi, off, row_in
    cdef const floating *src
    cdef floating *dst
    for c in range(channels):
        for u in range(g.fh):
            for v in range(g.fw):
                src = col + ((c * g.fh + u) * g.fw + v) * nb - p0
                off = v * g.dw - g.pl
                lo = _first_col(off, g.sw)
                hi = _end_col(off, g.w, g.sw, g.ow)
                for i in range(p0 // g.ow, (p1 - 1) // g.ow + 1):
                    ja = max(p0 - i * g.ow, lo)
                    jb = min(p1 - i * g.ow, hi)
                    row_in = i * g.sh - g.pt + u * g.dh
                    if row_in < 0 or row_in >= g.h:
                        continue
                    dst = dxn + (c * g.h + row_in) * g.w + off
                    for j in range(ja, jb):
                        dst[j * g.sw] = dst[j * g.sw] + src[i * g.ow + j]


cdef Geometry _geometry(Py_ssize_t h, Py_ssize_t w, Py_ssize_t oh, Py_ssize_t ow,
                        Py_ssize_t fh, Py_ssize_t fw, int sh, int sw, int pt, int pl, int dh,
                        int dw):
    cdef Geometry g
    g.h, g.w, g.oh, g.ow, g.fh, g.fw = h, w, oh, ow, fh, fw
    g.sh, g.sw, g.pt, g.pl, g.dh, g.dw = sh, sw, pt, pl, dh, dw
    return g


def tile_shape(int level, Py_ssize_t itemsize):
    """(filters per packed weight panel, positions per packed column panel) of the GEMM."""
    return cg_mr(level), cg_nr(level, itemsize)


def pack_filters(const floating[:, :, :, :, :] w, floating[:, ::1] wp, Py_ssize_t mr,
                 int num_threads):
    """Fill wp (G, ceil(K/G / mr)*mr * A*FH*FW) with each group's filters w (G, K/G, A, FH,
    FW; any strides, so that the backward's flipped view needs no copy) in the GEMM's
    panels: panel p holds filters p*mr .. p*mr + mr-1 as A*FH*FW columns of mr values,
    the reduction index running over (a, u, v) row-major; zero filters past K/G."""
    cdef Py_ssize_t kg = w.shape[1], na = w.shape[2], fh = w.shape[3], fw = w.shape[4]
    cdef Py_ssize_t cff = na * fh * fw, panels = wp.shape[1] // (mr * cff)
    cdef Py_ssize_t sf = w.strides[1], sa = w.strides[2], su = w.strides[3], sv = w.strides[4]
    cdef Py_ssize_t item, grp, p, i, live, a, u, v
    cdef floating *dst
    cdef const char *src
    with nogil:
        for item in prange(w.shape[0] * panels, schedule="static", num_threads=num_threads):
            grp = item // panels
            p = item % panels
            live = min(mr, kg - p * mr)  # filters of this panel that exist
            dst = &wp[grp, p * cff * mr]
            src = <const char *>&w[grp, p * mr, 0, 0, 0]
            for a in range(na):
                for u in range(fh):
                    for v in range(fw):
                        for i in range(live):
                            dst[i] = (<const floating *>(src + i * sf + a * sa + u * su
                                                         + v * sv))[0]
                        for i in range(live, mr):
                            dst[i] = 0
                        dst = dst + mr


def forward(const floating[:, :, :, ::1] x, const floating[:, ::1] wp,
            const floating[:, ::1] bias, floating[:, :, ::1] out, Py_ssize_t n0, Py_ssize_t m,
            floating[::1] xq, floating[:, ::1] wide, const Py_ssize_t[::1] off, Py_ssize_t oh,
            Py_ssize_t ow, int sh, int sw, int pt, int pl, Py_ssize_t eh, Py_ssize_t ew,
            Py_ssize_t hq, Py_ssize_t wq, const unsigned long long[:, ::1] colmask,
            Py_ssize_t fh, int dh, Py_ssize_t fc, Py_ssize_t nbw, Py_ssize_t kc, int level,
            int num_threads):
    """out[n0:n0 + m] (m, K, OH*OW) = the conv of x[n0:n0 + m] (m, C, H, W) by the filters
    wp (G, ceil(K/G / MR)*MR * C/G*FH*FW), packed by tile_shape, plus bias
    (G, ceil(K/G / MR)*MR; zeros for none). The columns are read from xq, which gets
    each image's channels' padded planes split into the eh*ew stride phases (hq, wq)
    that the taps read (the first min(stride, kernel reach) along each axis) - or,
    if xq is empty, from x itself: as it is for stride 1 without padding, and masked
    at the image's edges by colmask (OW, FW; see cg_gemm_same) when it is not empty
    (stride 1, OW == W, kernel height fh, dilation dh). off (C/G*FH*FW) is where each
    row of the columns starts, from a group's first channel. An item computes fc
    filters (a multiple of MR) of a group for nbw positions; wide holds, per thread,
    such a block of (fc, nbw) outputs, then kc*NR values for packing."""
    cdef Py_ssize_t groups = wp.shape[0], kk = out.shape[1], kg = kk // groups
    cdef Py_ssize_t cc = x.shape[1], cg = cc // groups, cff = off.shape[0]
    cdef Py_ssize_t h = x.shape[2], w = x.shape[3], plane = hq * wq, per_c = eh * ew * plane
    cdef Py_ssize_t tile_size = wide.shape[1] - kc * cg_nr(level, sizeof(floating))
    # wide positions q = i*wq + j; those with j >= ow are computed and dropped (the last
    # row's are not computed, so nothing past the last plane is read)
    cdef Py_ssize_t positions = (oh - 1) * wq + ow
    cdef bint phases = xq.shape[0] > 0, same = colmask.shape[0] > 0, direct
    # with masks, blocks run over the m images' positions end to end
    cdef Py_ssize_t images = 1 if same else m, span = m * positions if same else positions
    cdef Py_ssize_t blocks = (span + nbw - 1) // nbw, chunks = (kg + fc - 1) // fc
    cdef Py_ssize_t mr = cg_mr(level)
    cdef Py_ssize_t item, n, c, ph, pw, y, row, lo, hi, z, grp, q0, q1, i, ja, jb, k, f0, mc
    cdef floating *dst
    cdef floating *tile
    cdef const floating *src
    cdef const floating *cols
    cdef pc_guard guard = pc_guard_new()
    while pc_again(&guard):
        with nogil:
            # each (image, channel) plane, zero-padded, split into phases: phase (ph, pw) row y
            # column z is padded pixel (y*sh + ph, z*sw + pw)
            for item in prange(m * cc if phases else 0, schedule="static",
                               num_threads=num_threads):
                if pc_stopped(guard.stop):
                    continue
                n = item // cc
                c = item % cc
                for ph in range(eh):
                    for pw in range(ew):
                        lo = _first_col(pw - pl, sw)
                        hi = max(_end_col(pw - pl, w, sw, wq), lo)
                        for y in range(hq):
                            dst = &xq[((item * eh + ph) * ew + pw) * plane + y * wq]
                            row = y * sh + ph - pt
                            if row < 0 or row >= h:
                                memset(dst, 0, wq * sizeof(floating))
                                continue
                            src = &x[n0 + n, c, row, 0] + pw - pl
                            memset(dst, 0, lo * sizeof(floating))
                            if sw == 1:
                                memcpy(dst + lo, src + lo, (hi - lo) * sizeof(floating))
                            else:
                                for z in range(lo, hi):
                                    dst[z] = src[z * sw]
                            memset(dst + hi, 0, (wq - hi) * sizeof(floating))
        with nogil, parallel(num_threads=num_threads):
            tile = &wide[omp_get_thread_num(), 0]
            # items: image, group, chunk of filters (its panels stay in L2 while the
            # threads go through the blocks of positions), block of positions
            for item in prange(images * groups * chunks * blocks, schedule="dynamic"):
                if pc_stopped(guard.stop):
                    continue
                n = item // (groups * chunks * blocks)
                grp = item // (chunks * blocks) % groups
                f0 = item // blocks % chunks * fc
                mc = min(fc, kg - f0)
                q0 = item % blocks * nbw
                q1 = min(q0 + nbw, span)
                # a whole block of whole tiles within one image, every position kept:
                # straight into out
                direct = wq == ow and mc % mr == 0 and q1 - q0 == nbw
                if same:
                    direct = direct and q0 // positions == (q1 - 1) // positions
                    dst = (&out[n0 + q0 // positions, grp * kg + f0, q0 % positions] if direct
                           else tile)
                    if floating is float:
                        cg_gemm_same_f32(level, mc, q1 - q0, cff, &wp[grp, f0 * cff],
                                         &x[n0, grp * cg, 0, 0], cc * h * w, positions, &off[0],
                                         &bias[grp, f0], dst, positions if direct else nbw, kc,
                                         tile + tile_size, q0, h, w, fh, colmask.shape[1], dh, pt,
                                         &colmask[0, 0])
                    else:
                        cg_gemm_same_f64(level, mc, q1 - q0, cff, &wp[grp, f0 * cff],
                                         &x[n0, grp * cg, 0, 0], cc * h * w, positions, &off[0],
                                         &bias[grp, f0], dst, positions if direct else nbw, kc,
                                         tile + tile_size, q0, h, w, fh, colmask.shape[1], dh, pt,
                                         &colmask[0, 0])
                    if not direct:  # each image's share of the block
                        for i in range(q0 // positions, (q1 - 1) // positions + 1):
                            ja = max(q0, i * positions)
                            jb = min(q1, i * positions + positions)
                            for k in range(mc):
                                memcpy(&out[n0 + i, grp * kg + f0 + k, ja - i * positions],
                                       tile + k * nbw + ja - q0, (jb - ja) * sizeof(floating))
                    continue
                if phases:
                    cols = &xq[(n * cc + grp * cg) * per_c + q0]
                else:
                    cols = &x[n0 + n, grp * cg, 0, 0] + q0
                dst = &out[n0 + n, grp * kg + f0, q0] if direct else tile
                if floating is float:
                    cg_gemm_f32(level, mc, q1 - q0, cff, &wp[grp, f0 * cff], cols, &off[0],
                                &bias[grp, f0], dst, positions if direct else nbw, kc,
                                tile + tile_size)
                else:
                    cg_gemm_f64(level, mc, q1 - q0, cff, &wp[grp, f0 * cff], cols, &off[0],
                                &bias[grp, f0], dst, positions if direct else nbw, kc,
                                tile + tile_size)
                if direct:
                    continue
                for i in range(q0 // wq, (q1 - 1) // wq + 1):
                    ja = max(q0 - i * wq, 0)
                    jb = min(q1 - i * wq, ow)
                    if jb > ja:
                        for k in range(mc):
                            memcpy(&out[n0 + n, grp * kg + f0 + k, i * ow + ja],
                                   tile + k * nbw + i * wq + ja - q0, (jb - ja) * sizeof(floating))


def backward(const floating[:, :, ::1] dout, const floating[:, :, :, ::1] x,
             const floating[:, :, ::1] w, floating[:, :, :, ::1] dx, floating[:, :, :, ::1] dw_parts,
             floating[:, ::1] work, Py_ssize_t fh, Py_ssize_t fw, Py_ssize_t oh, Py_ssize_t ow,
             int sh, int sw, int pt, int pl, int dh, int dw, Py_ssize_t cb, Py_ssize_t nb,
             Py_ssize_t run, bint pointwise, bint need_dx, bint need_dw, int num_threads):
    """dx (N, C, H, W) and partial filter gradients (ceil(N/run), G, K/G, C/G*FH*FW), one per
    run of ``run`` images, from dout (N, K, OH*OW), x and w (G, K/G, C/G*FH*FW); channels go
    ``cb`` at a time, positions ``nb`` at a time, through one (cb*FH*FW, nb) block of work per
    thread."""
    cdef Geometry g = _geometry(x.shape[2], x.shape[3], oh, ow, fh, fw, sh, sw, pt, pl, dh, dw)
    cdef Py_ssize_t groups = w.shape[0], kg = w.shape[1], cff = w.shape[2], ff = fh * fw
    cdef Py_ssize_t cg = x.shape[1] // groups, p = oh * ow, hw = g.h * g.w, nn = x.shape[0]
    cdef Py_ssize_t cblocks = (cg + cb - 1) // cb, runs = (nn + run - 1) // run
    cdef Py_ssize_t blocks = (p + nb - 1) // nb
    cdef Py_ssize_t item, r, n, grp, c0, c1, blk, p0, p1, ld
    cdef floating *col
    cdef floating *target
    cdef const floating *cols
    cdef const floating *d
    cdef pc_guard guard = pc_guard_new()
    while pc_again(&guard):
        with nogil, parallel(num_threads=num_threads):
            col = &work[omp_get_thread_num(), 0]
            for item in prange(runs * groups * cblocks, schedule="dynamic"):
                if pc_stopped(guard.stop):
                    continue
                r = item // (groups * cblocks)
                grp = item // cblocks % groups
                c0 = item % cblocks * cb
                c1 = min(c0 + cb, cg)
                for n in range(r * run, min(r * run + run, nn)):
                    d = &dout[n, grp * kg, 0]
                    if need_dx and not pointwise:
                        memset(&dx[n, grp * cg + c0, 0, 0], 0, (c1 - c0) * hw * sizeof(floating))
                    for blk in range(blocks):
                        if pc_stopped(guard.stop):
                            break
                        p0 = blk * nb
                        p1 = min(p0 + nb, p)
                        if need_dw:
                            if pointwise:
                                cols = &x[n, grp * cg + c0, 0, 0] + p0
                                ld = p
                            else:
                                pack(&x[n, grp * cg + c0, 0, 0], c1 - c0, &g, p0, p1, col)
                                cols = col
                                ld = p1 - p0
                            # dw[r, grp][:, rows of c0..c1] (+)= dout block @ columns^T
                            gemm(False, True, kg, (c1 - c0) * ff, p1 - p0, d + p0, p, cols, ld,
                                 0 if n == r * run and p0 == 0 else 1,
                                 &dw_parts[r, grp, 0, c0 * ff], cff)
                        if need_dx:
                            # columns of dx = w[grp][:, rows of c0..c1]^T @ dout block
                            if pointwise:
                                target = &dx[n, grp * cg + c0, 0, 0] + p0
                                ld = p
                            else:
                                target = col
                                ld = p1 - p0
                            gemm(True, False, (c1 - c0) * ff, p1 - p0, kg, &w[grp, 0, c0 * ff], cff,
                                 d + p0, p, 0, target, ld)
                            if not pointwise:
                                unpack_add(col, c1 - c0, &g, p0, p1, &dx[n, grp * cg + c0, 0, 0])


cdef inline double run_sum(const floating *s, Py_ssize_t count) noexcept nogil:
    """The sum of s[:count] in double: eight running sums (element i in sum i % 8, so that
    the additions do not wait on one another), added pairwise at the end."""
    cdef double a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0
    cdef Py_ssize_t q = 0
    while q + 8 <= count:
        a0 = a0 + s[q]
        a1 = a1 + s[q + 1]
        a2 = a2 + s[q + 2]
        a3 = a3 + s[q + 3]
        a4 = a4 + s[q + 4]
        a5 = a5 + s[q + 5]
        a6 = a6 + s[q + 6]
        a7 = a7 + s[q + 7]
        q = q + 8
    while q < count:
        a0 = a0 + s[q]
        q = q + 1
    return ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7))


def bias_grad(const floating[:, :, ::1] dout, floating[::1] db, int num_threads):
    """db[k] = sum of dout[:, k, :] (N, K, P), accumulated in double in a fixed order (each
    image's plane by run_sum, the images in turn)."""
    cdef Py_ssize_t nn = dout.shape[0], kk = dout.shape[1], pp = dout.shape[2]
    cdef Py_ssize_t k, n
    cdef double acc
    with nogil:
        for k in prange(kk, schedule="static", num_threads=num_threads):
            acc = 0
            for n in range(nn):
                acc = acc + run_sum(&dout[n, k, 0], pp)
            db[k] = <floating>acc


def bias_grad_channels_last(const floating[:, ::1] dout, floating[::1] db, double[::1] acc,
                            int num_threads):
    """db[k] = sum of dout[:, k] (positions, K), accumulated in double, position after
    position, in acc (K,); threads take blocks of channels."""
    cdef Py_ssize_t pp = dout.shape[0], kk = dout.shape[1]
    cdef Py_ssize_t block = 64, blocks = (kk + block - 1) // block
    cdef Py_ssize_t b, k, k0, k1, q
    cdef double *a
    cdef const floating *s
    with nogil:
        for b in prange(blocks, schedule="static", num_threads=num_threads):
            k0 = b * block
            k1 = min(kk, k0 + block)
            a = &acc[k0]
            for k in range(k0, k1):
                a[k - k0] = 0
            for q in range(pp):
                s = &dout[q, k0]
                for k in range(k1 - k0):
                    a[k] = a[k] + s[k]
            for k in range(k0, k1):
                db[k] = <floating>a[k - k0]


def pointwise_channels_last_tiled(const floating[:, ::1] x, const floating[:, :, ::1] wp,
                                  const floating[::1] bias, floating[:, ::1] out,
                                  Py_ssize_t rows, Py_ssize_t group, Py_ssize_t kc,
                                  int level, int num_threads):
    """out (P, K) = bias + x (P, C) @ w^T: a 1x1 convolution at stride 1 without padding,
    channels last, whose input is already the GEMM's left operand and whose output is the
    product. wp (ceil(K / NR), C, NR) holds the filters packed for the tile of ``level``
    (see pack_filters) and bias ceil(K / NR) * NR values, both zero past K (C > 0). Items
    are a block of ``rows`` positions (a multiple of the tile's MR) by a group of
    ``group`` panels of filters, one cg_rows_gemm each, with its thread's workspace for
    the packed pixels; an item whose tiles would write past its rows or past a row's K
    values goes to the thread's scratch and is copied out. An output sums the same
    products in the same order whatever item it falls in, so results do not depend on
    the thread count."""
    cdef Py_ssize_t p = x.shape[0], c = x.shape[1], k = out.shape[1]
    cdef Py_ssize_t mr = cg_mr(level), nr = cg_nr(level, sizeof(floating)), vl = nr // 3
    cdef Py_ssize_t groups = (wp.shape[0] + group - 1) // group
    cdef Py_ssize_t items = (p + rows - 1) // rows * groups, width = group * nr
    cdef Py_ssize_t item, r0, m, f0, n, i, ahead
    cdef const floating *ahead_at
    cdef size_t pack_size = rows * c, edge_size = rows * width
    cdef char *raw = NULL
    cdef floating *a
    cdef floating *edge
    cdef floating *dst
    cdef bint in_place
    cdef int failed[1]
    if p == 0 or k == 0:
        return
    failed[0] = 0  # an array element stays shared inside the parallel block
    cdef pc_guard guard = pc_guard_new()
    while pc_again(&guard):
        with nogil, parallel(num_threads=num_threads):
            raw = <char *>malloc((pack_size + 64 + edge_size) * sizeof(floating) + 64)
            if raw == NULL:
                failed[0] = 1
            a = <floating *>(raw + (-<uintptr_t>raw) % 64)
            edge = a + (pack_size + 63) // 64 * 64
            for item in prange(items, schedule="static"):
                if raw == NULL or pc_stopped(guard.stop):
                    continue
                r0 = item // groups * rows
                m = min(rows, p - r0)
                f0 = item % groups * width
                n = min(width, k - f0)
                # the block of positions this thread takes next (the static schedule's
                # next item), when items are whole rows
                ahead = min(rows, p - r0 - m) * c if groups == 1 else 0
                ahead_at = &x[r0 + m, 0] if ahead > 0 else NULL
                in_place = n % vl == 0 and m % mr == 0  # the tiles fit the item
                dst = &out[r0, f0] if in_place else edge
                if floating is float:
                    cg_rows_gemm_f32(level, m, n, c, &x[r0, 0], c, &wp[f0 // nr, 0, 0],
                                     &bias[f0], dst, k if in_place else width, kc, a,
                                     ahead_at, ahead * sizeof(floating))
                else:
                    cg_rows_gemm_f64(level, m, n, c, &x[r0, 0], c, &wp[f0 // nr, 0, 0],
                                     &bias[f0], dst, k if in_place else width, kc, a,
                                     ahead_at, ahead * sizeof(floating))
                if not in_place:
                    for i in range(m):
                        memcpy(&out[r0 + i, f0], edge + i * width, n * sizeof(floating))
            free(raw)
    if failed[0]:
        raise MemoryError("could not allocate the 1x1 convolution's workspace")


def pointwise_channels_last(const floating[:, ::1] x, const floating[:, ::1] w,
                            const floating[::1] bias, floating[:, ::1] out, Py_ssize_t rows,
                            Py_ssize_t filters, int num_threads):
    """out (P, K) = x (P, C) @ w (K, C)^T + bias (K, or empty for none): a 1x1 convolution
    at stride 1 without padding, channels last, where the input is already im2col's
    column matrix and the output is the GEMM's. Items are blocks of ``rows`` positions by
    ``filters`` filters, one single-threaded BLAS call each (the caller keeps BLAS on one
    thread), fixed by the shapes: results do not depend on the thread count."""
    cdef Py_ssize_t p = x.shape[0], c = x.shape[1], k = w.shape[0]
    cdef Py_ssize_t row_blocks = (p + rows - 1) // rows
    cdef Py_ssize_t filter_blocks = (k + filters - 1) // filters, item, r0, f0, r, f
    cdef int m, n
    cdef floating beta
    if p == 0 or k == 0:
        return
    cdef pc_guard guard = pc_guard_new()
    while pc_again(&guard):
        with nogil:
            for item in prange(row_blocks * filter_blocks, schedule="static",
                               num_threads=num_threads):
                if pc_stopped(guard.stop):
                    continue
                r0 = item // filter_blocks * rows
                f0 = item % filter_blocks * filters
                m = <int>min(rows, p - r0)
                n = <int>min(filters, k - f0)
                beta = 0
                if bias.shape[0] > 0:
                    beta = 1
                    for r in range(r0, r0 + m):
                        for f in range(f0, f0 + n):
                            out[r, f] = bias[f]
                gemm(False, True, m, n, <int>c, &x[r0, 0], <int>c, &w[f0, 0], <int>c, beta,
                     &out[r0, f0], <int>k)


def pointwise_channels_last_backward(const floating[:, ::1] dout, const floating[:, ::1] x,
                                     const floating[:, ::1] w, floating[:, ::1] dx,
                                     floating[:, :, ::1] parts, Py_ssize_t rows,
                                     Py_ssize_t part_rows, int num_threads):
    """The gradients of pointwise_channels_last: dx (P, C) = dout (P, K) @ w (K, C), in
    blocks of ``rows`` positions, and the filter gradient's parts: parts[i] (K, C) =
    dout^T @ x (P, C) over positions i*part_rows .. (i+1)*part_rows - 1, for the caller
    to add in order (so that no sum depends on the thread count). dx or parts with no
    rows is skipped. One single-threaded BLAS call per item (the caller keeps BLAS on one
    thread)."""
    cdef Py_ssize_t p = dout.shape[0], k = dout.shape[1], c = w.shape[1]
    cdef Py_ssize_t row_blocks = (p + rows - 1) // rows, item, r0
    if p == 0 or k == 0:  # BLAS refuses an empty reduction: the sums are zero
        parts[:, :, :] = 0
        dx[:, :] = 0
        return
    cdef pc_guard guard = pc_guard_new()
    while pc_again(&guard):
        with nogil:
            if dx.shape[0] > 0:
                for item in prange(row_blocks, schedule="static", num_threads=num_threads):
                    if pc_stopped(guard.stop):
                        continue
                    r0 = item * rows
                    gemm(False, False, <int>min(rows, p - r0), <int>c, <int>k, &dout[r0, 0],
                         <int>k, &w[0, 0], <int>c, 0, &dx[r0, 0], <int>c)
            for item in prange(parts.shape[0], schedule="static", num_threads=num_threads):
                if pc_stopped(guard.stop):
                    continue
                r0 = item * part_rows
                gemm(True, False, <int>k, <int>c, <int>min(part_rows, p - r0), &dout[r0, 0],
                     <int>k, &x[r0, 0], <int>c, 0, &parts[item, 0, 0], <int>c)
