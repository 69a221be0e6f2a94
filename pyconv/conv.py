"""2-D convolution (cross-correlation), forward and backward, NCHW.

Two methods compute the same function: ``"im2col"`` multiplies the filters with
the input's im2col columns (read as shifted views of the input in the forward,
masked at its edges or phase-split and padded, by pyconv's own GEMM tile; packed
per thread for SciPy's
BLAS in the backward); ``"direct"`` loops over the output without a workspace;
``"winograd"`` (3x3 filters at stride 1 only) computes it with fewer
multiplications and a bounded extra rounding error. ``"auto"`` picks one by shape
(Winograd only under :func:`pyconv.set_float32_conv_precision` ``"high"``). The
oracles are :func:`pyconv.reference.conv2d_naive`,
:func:`pyconv.reference.conv2d_im2col` and
:func:`pyconv.reference.conv2d_backward_naive`.
"""
import contextlib
import contextvars
import math
import numbers
import threading

import numpy as np

from . import _conv_direct, _conv_im2col, _conv_nhwc, _conv_winograd, cpu
from ._blas import blas_threads
from ._geometry import Geometry, batch_views, conv_geometry, remembered
from ._validation import (as_array, as_kernel_input, check_layout, check_need, empty, float_dtype,
                          from_nchw, to_nchw)
from .precision import get_float32_conv_precision
from .threads import resolve_num_threads

METHODS = ("auto", "direct", "im2col", "winograd")

DEFAULT_WORKSPACE_LIMIT = 64 * 2**20
_global_workspace_limit = DEFAULT_WORKSPACE_LIMIT
_context_workspace_limit = contextvars.ContextVar("pyconv_workspace_limit", default=None)

# Forward: a thread's block of outputs (filters of a group x positions) holds about
# this many bytes, and the GEMM tile sums this many products per pass, so that the
# block stays in L2 and a pass's packed columns in half of L1 (24 KiB: 128 x 48
# floats), beside the filters streaming through and the rows being packed (with 256
# rows, all of a 48 KiB L1, packing a row took 11 cycles instead of 4).
_OUTPUT_BLOCK = 128 * 2**10
_REDUCTION_BLOCK = 128
# and a group's packed filters go in about equal chunks of at most this many bytes,
# each an item of its own, so that a chunk stays in L2 while the threads run through
# its blocks of positions (and a layer with few positions still has items for all)
_FILTER_BLOCK = 2**20
# Winograd: an item takes one GEMM panel's worth of tiles (48 with AVX-512, float32) and
# all filters, unless there are fewer than _WINOGRAD_ITEMS blocks of tiles per thread:
# then the filters go in the fewest chunks that give every thread as many items (each
# chunk transforms the tiles' inputs again: 4 chunks of ResNet-late's 256 filters at
# N=1 cost 25% more than one).
_WINOGRAD_ITEMS = 4
# A call that transforms its filters at once does so in as few equal chunks of whole
# panels as keep each chunk's transforms within this many bytes, so that they stay in
# L3 for the products that read them, and below glibc's 32 MiB mmap threshold, so that the allocator reuses
# their memory from chunk to chunk and call to call (512x512 filters with 4x4 tiles,
# 38 MB in one fresh buffer per call, cost as much in page faults as the products)
_WINOGRAD_FILTER_BYTES = 24 * 2**20
_WINOGRAD_MIN_CHANNELS = 16
# The tile m (F(m x m, 3x3), m = 2 or 4) is the cheaper by a count of products per
# filter and channel: (m+2)^2 times the tiles, as the GEMM holds them (whole vectors,
# blocks of about one panel), plus the filters' transform, the cheaper of two ways:
# all at once, this many for transforming them and writing the result to memory, plus
# this many per block that reads them again; or by each item for its own filters into
# its cache, this many per block (a filter is transformed once per block). The first
# two weights are what a transformed value costs beside one product, measured at one
# thread, float32: about 0.4 ns to transform it, write it and read it back the first
# time, 0.08 ns to read it again from L3, where a product costs 0.02 ns (100 GFLOP/s);
# the third is fitted to per-call timings at 2 threads (ResNet-late, 1 to 32 images;
# VGG, 1 to 8): the items' way won up to 6 blocks and mostly lost from 8. A call that transforms
# its filters (no WinogradFilters) takes the cheaper way. "auto" (float32, precision "high") takes Winograd where the
# count is below the direct products, 9 per output position, and there are at least
# _WINOGRAD_MIN_CHANNELS channels in and out.
_WINOGRAD_TRANSFORM_COST = 20
_WINOGRAD_READ_COST = 4
_WINOGRAD_ITEM_TRANSFORM_COST = 7
# Backward: a thread's column block (about this many bytes, in L2 while BLAS packs
# it) covers input channels worth about _BACKWARD_ROWS column rows (C*FH*FW). BLAS
# packs the block of dout once per block of channels, so fewer, taller blocks pay
# off: 576 rows (all of VGG's 64 channels of 3x3) made its filter gradient 12-14%
# faster than 128 rows at 2 threads, and ResNet-late's 18-24%.
_COLUMN_BLOCK = 512 * 2**10
_BACKWARD_ROWS = 576
# Each thread gets at least this much work (multiply-adds x 2): waking a thread
# costs more than a smaller share saves.
_FLOPS_PER_THREAD = 2**20
# Filters per group from which the direct method runs the channel-blocked kernel: a
# pair of AVX-512 float32 vectors holds 32, so 16 fill at least half of one pair.
_BLOCKED_MIN_FILTERS = 16
# Channels-last pixels this many bytes apart or more go through transposed copies: a
# tile reads 14 pixels of 3 rows at such a stride, which fall into a few sets of the L1
# cache and evict each other (float64 ResNet-late, 2 KiB apart: 40 GFLOP/s in place
# against 107 for NCHW). At 1 KiB the copies still win, by less: one core, GFLOP/s in
# place against through the copies, float32 8x14x14x256 3x3 93-102 against 99-108,
# 8x14x14x384 96 against 104, float64 8x28x28x128 39 against 47; at 512 bytes (float32
# 8x28x28x128) 96-98 against 86-93.
_NHWC_PIXEL_BYTES = 1024
# Channels-last layers with one input channel per group run the channels-last depthwise
# kernels (channels in the vector lanes) from this many bytes of channels per pixel, one
# vector; with fewer, most lanes would be empty, and the NCHW kernels with transposed
# copies are faster (MNIST-like, one channel, float32: 2.0 ms against 0.35)
_DEPTHWISE_NHWC_BYTES = 64
# Channels-last results start on a cache line (NumPy's large arrays start 16 bytes past
# one), so that the kernels' vectors of channels do not straddle two lines when a
# pixel's channels fill whole lines: the depthwise forward, float32 56x56x128 on one
# core in cache, 39 -> 53 GFLOP/s with its input aligned too
_OUTPUT_ALIGN = 64
# A channels-last 1x1 layer with at least _POINTWISE_TILED_POSITIONS positions (N*H*W)
# runs its forward and input gradient on pyconv's GEMM tile, whose items pack blocks of
# positions of about _POINTWISE_PACK_BYTES (in L2 while every filter's tiles read them).
# With fewer, packing the filters costs more than the tile saves, and SciPy's BLAS
# multiplies in place, blocks of _POINTWISE_ROWS positions (and of filters, when that
# leaves fewer than _POINTWISE_ITEMS calls) per call. Float32, 2 threads, GFLOP/s of the
# tile against BLAS: 49 positions (512 -> 2048 channels) 53-64 against 97-107; 196 (256 ->
# 1024) 119-142 against 146-152; 392, 152-176 against 137; 784 (1024 -> 256) 146-166
# against 122. The filter gradient sums at most _POINTWISE_ITEMS parts of at least
# _POINTWISE_PART_ROWS positions, each one BLAS call (see _pointwise_nhwc_backward).
_POINTWISE_TILED_POSITIONS = 256
_POINTWISE_PACK_BYTES = 256 * 2**10
_POINTWISE_ROWS = 256
_POINTWISE_ITEMS = 8
_POINTWISE_PART_ROWS = 512
# Channels-last depthwise calls that read and write this many bytes or more write their
# output with streaming stores (at the AVX-512 level), which skip reading each line before
# it is written; below, as for pooling (POOL_NHWC_STREAM_BYTES in src/pool_nhwc.h), most of
# a 32 MiB L3 holds the call and a result written through the caches is there for the
# next layer. Float32 on 2 Zen 4 cores, the layer then a 2x2 max pool of its output:
# 8x56x56x128 (25.7 MB) 2.2-2.8 ms through the caches, 1.9-2.2 streamed; 8x28x28x256
# (12.8 MB) 0.63-0.82 through the caches, 0.77-0.97 streamed.
_DEPTHWISE_STREAM_BYTES = 24 << 20
# Output rows per partial filter gradient of a channels-last depthwise layer: fixed by the
# shapes, so that the partials (added in order) do not depend on the thread count; 8 rows of
# VGG-sized 56x56x128 float32 layers keep a band's dout and input (460 KiB) in L2.
_DEPTHWISE_BAND = 8
# a network convolves the same shapes again and again
_conv_geometry = remembered(conv_geometry)


def _check_workspace_limit(nbytes):
    if nbytes is None:
        return None
    if isinstance(nbytes, bool) or not isinstance(nbytes, numbers.Integral):
        raise TypeError(f"the workspace limit must be an int number of bytes or None, got "
                        f"{nbytes!r} of type {type(nbytes).__name__}")
    if nbytes < 1:
        raise ValueError(f"the workspace limit must be a positive number of bytes, got {nbytes}")
    return int(nbytes)


def get_workspace_limit():
    """Bytes the im2col method's workspace may take (64 MiB unless set).

    The workspace is the forward's phase-split copy of the input, when it
    needs one (a chunk of images at a time, at least one), and the
    backward's per-thread column blocks and partial filter gradients.

    Returns
    -------
    int

    Examples
    --------
    >>> import pyconv
    >>> pyconv.get_workspace_limit() == 64 * 2**20
    True
    """
    limit = _context_workspace_limit.get()
    return _global_workspace_limit if limit is None else limit


def set_workspace_limit(nbytes):
    """Set the im2col workspace limit for the whole process.

    Parameters
    ----------
    nbytes : int or None
        Positive number of bytes; None restores the default, 64 MiB.

    Raises
    ------
    ValueError
        If ``nbytes`` is not positive.
    TypeError
        If ``nbytes`` is not an int or None.
    """
    global _global_workspace_limit
    nbytes = _check_workspace_limit(nbytes)
    _global_workspace_limit = DEFAULT_WORKSPACE_LIMIT if nbytes is None else nbytes


@contextlib.contextmanager
def workspace_limit(nbytes):
    """Bound the im2col workspace to ``nbytes`` inside a ``with`` block.

    Parameters
    ----------
    nbytes : int or None
        Positive number of bytes; None defers to :func:`set_workspace_limit`.

    Examples
    --------
    >>> import pyconv
    >>> with pyconv.workspace_limit(2**20):
    ...     pyconv.get_workspace_limit()
    1048576
    """
    token = _context_workspace_limit.set(_check_workspace_limit(nbytes))
    try:
        yield
    finally:
        _context_workspace_limit.reset(token)


def _check_method(method):
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(map(repr, METHODS))}, got {method!r}")
    return method


def _winograd_refusal(g):
    """The condition of Winograd's method that geometry g fails, or None if it has none."""
    if (g.fh, g.fw) != (3, 3):
        return f"3x3 filters, got {g.fh}x{g.fw}"
    if g.stride != (1, 1):
        return f"stride 1, got stride={g.stride}"
    if g.dilation != (1, 1):
        return f"dilation 1, got dilation={g.dilation}"
    if g.groups != 1:
        return f"groups=1, got groups={g.groups}"
    return None


def _auto_method(g, backward, dtype):
    """The faster method for geometry ``g``, by the rules in the Notes of conv2d."""
    if (dtype == np.float32 and get_float32_conv_precision() == "high"
            and _winograd_refusal(g) is None and min(g.c, g.k) >= _WINOGRAD_MIN_CHANNELS
            and _winograd_tile(g, 4)[1] < 9 * g.n * g.oh * g.ow):
        return "winograd"
    # im2col's tiles hold 8 filters x 48 positions: a group needs enough filters and
    # reduction behind each output (K/G * C/G*FH*FW) to fill them; its backward
    # (per-group BLAS calls) also loses to direct on grouped layers
    size = g.k // g.groups * (g.c // g.groups * g.fh * g.fw)
    if backward:
        return "im2col" if size >= 1024 and g.groups == 1 else "direct"
    # the channel-blocked direct kernel reads the input in place; a 1x1 layer's input
    # is already im2col's column matrix, which its GEMM runs faster
    if _blocked_applies(g) and not _is_pointwise(g):
        return "direct"
    return "im2col" if size >= 512 else "direct"


def _resolve_method(method, g, dtype, backward=False):
    if method == "auto":
        return _auto_method(g, backward, dtype)
    if method == "winograd":
        refusal = _winograd_refusal(g)
        if refusal is not None:
            raise ValueError(f"method='winograd' needs {refusal}")
    return method


def _threads_for(g, num_threads):
    """The requested thread count, lowered so that each thread has a useful share of the work."""
    flops = 2 * g.n * g.k * g.oh * g.ow * (g.c // g.groups) * g.fh * g.fw
    return max(1, min(resolve_num_threads(num_threads), flops // _FLOPS_PER_THREAD))


def _prepare(x, w, extra, stride, padding, dilation, groups, strict, layout="NCHW"):
    """Check and convert the arrays of a call; return 4-D kernel inputs (x in ``layout``:
    NCHW for a 2-D x, whose one channel has no axis), the geometry, the result's shape and
    the dtype."""
    x = as_array(x, "x")
    w = as_array(w, "w")
    dtype = float_dtype(x, w, *extra)
    x4, w4, _ = batch_views(to_nchw(x, layout), w)
    g = _conv_geometry(x4.shape, w4.shape, stride, padding, dilation, groups, strict, layout)
    out4 = g.out_shape
    if layout == "NHWC" and x.ndim > 2:
        x4, out4 = from_nchw(x4, layout), (g.n, g.oh, g.ow, g.k)
    out_shape = out4[4 - x.ndim:]  # the result's shape, for x of any accepted ndim
    return (as_kernel_input(x4, dtype, "x"), as_kernel_input(w4, dtype, "w"), g, out_shape,
            dtype)


def _nhwc(layout, x):
    """Whether a call on ``x`` in ``layout`` runs the channels-last kernels."""
    return layout == "NHWC" and np.ndim(x) > 2


def _depthwise_nhwc_forward(x, w, b, g, num_threads):
    """out (N, OH, OW, K) of x (N, H, W, C) by filters that each read one channel, by the
    channels-last depthwise kernel (filters packed tap by tap, (FH*FW, K))."""
    out = empty((g.n, g.oh, g.ow, g.k), x.dtype, align=_OUTPUT_ALIGN)
    wt = np.ascontiguousarray(w.reshape(g.k, g.fh * g.fw).T)
    stream = x.nbytes + out.nbytes >= _DEPTHWISE_STREAM_BYTES
    _conv_nhwc.depthwise_forward(x, wt, b, out, g.fh, g.fw, *_window_args(g), stream,
                                 num_threads)
    return out


def _pointwise_nhwc_forward(x, w, b, g, num_threads):
    """out (N, H, W, K) of the 1x1 layer (stride 1, no padding, one group) on x (N, H, W,
    C): x is already the GEMM's left operand (N*H*W, C), and out the product, computed in
    place by pyconv's GEMM tile (_pointwise_nhwc_product) from _POINTWISE_TILED_POSITIONS
    positions, else by SciPy's BLAS, a block of _POINTWISE_ROWS positions (and, for
    layers with few positions, of filters) per call, inside the OpenMP threads."""
    out = empty((g.n, g.oh, g.ow, g.k), x.dtype, align=_OUTPUT_ALIGN)
    rows = g.n * g.h * g.w
    if rows >= _POINTWISE_TILED_POSITIONS:
        _pointwise_nhwc_product(x.reshape(rows, g.c), w.reshape(g.k, g.c), b,
                                out.reshape(rows, g.k), num_threads)
        return out
    row_blocks = -(-rows // _POINTWISE_ROWS)
    filters = g.k
    if row_blocks < _POINTWISE_ITEMS:  # few positions: the filters in chunks too
        filters = -(-g.k // -(-_POINTWISE_ITEMS // row_blocks))
    with blas_threads(1):  # the products run inside the OpenMP threads
        _conv_im2col.pointwise_channels_last(x.reshape(rows, g.c), w.reshape(g.k, g.c), b,
                                             out.reshape(rows, g.k), _POINTWISE_ROWS,
                                             filters, num_threads)
    return out


def _pointwise_nhwc_product(a, w2, b, out, num_threads):
    """Fill out (P, n) with b (n, or empty for none) + a (P, kk) @ w2 (n, kk; any
    strides)^T, by pyconv's GEMM tile in place (_conv_im2col.pointwise_channels_last_tiled):
    w2 packed once for the tile (by _conv_im2col.pack_filters, in panels of NR rows),
    then items of a block of rows of ``a`` whose packed pixels take about
    _POINTWISE_PACK_BYTES, as many blocks per thread, and, where that leaves fewer than
    _POINTWISE_ITEMS items, a group of the panels each."""
    (positions, kk), n = a.shape, w2.shape[0]
    if kk == 0 or positions == 0 or n == 0:  # no products: the bias alone
        out[...] = b if b.size else 0
        return
    level = cpu.level()
    mr, nr = _conv_im2col.tile_shape(level, a.itemsize)
    panels = -(-n // nr)
    wp = np.empty((1, panels * nr * kk), a.dtype)
    _conv_im2col.pack_filters(w2.reshape(1, n, kk, 1, 1), wp, nr, num_threads)
    bias = np.zeros(panels * nr, a.dtype)
    if b.size:
        bias[:n] = b
    rows = max(mr, _POINTWISE_PACK_BYTES // (kk * a.itemsize) // mr * mr)
    blocks = -(-positions // rows)
    groups = min(panels, -(-_POINTWISE_ITEMS // blocks))  # few positions: of panels too
    if groups == 1:  # as many blocks per thread
        blocks = -(-blocks // num_threads) * num_threads
    rows = -(-positions // blocks)
    rows = -(-rows // mr) * mr  # a whole number of the tile's rows
    _conv_im2col.pointwise_channels_last_tiled(a, wp.reshape(panels, kk, nr), bias, out, rows,
                                               -(-panels // groups), _REDUCTION_BLOCK, level,
                                               num_threads)


def _pointwise_nhwc_backward(dout, x, w, need, g, num_threads):
    """(dx or None, dw or None), those in ``need``, of the layer of _pointwise_nhwc_forward,
    in place: dx (N*H*W, C) = dout (N*H*W, K) @ w (K, C), from _POINTWISE_TILED_POSITIONS
    positions as the forward's product (_pointwise_nhwc_product), else by SciPy's BLAS in
    blocks of _POINTWISE_ROWS positions; dw = dout^T @ x by SciPy's BLAS, as the sum, in
    order, of up to _POINTWISE_ITEMS parts over equal runs of at least
    _POINTWISE_PART_ROWS positions (each part one call of full height: blocks of filters
    summing over all positions ran at 95-140 GFLOP/s against 170, float32)."""
    rows = g.n * g.h * g.w
    dx = empty(x.shape, x.dtype, "dx", align=_OUTPUT_ALIGN) if "dx" in need else None
    dw = empty(w.shape, x.dtype, "dw") if "dw" in need else None
    blas_dx = dx
    if dx is not None and rows >= _POINTWISE_TILED_POSITIONS:
        _pointwise_nhwc_product(dout.reshape(rows, g.k), w.reshape(g.k, g.c).T,
                                np.empty(0, x.dtype), dx.reshape(rows, g.c), num_threads)
        blas_dx = None
    count = 0 if dw is None else max(1, min(_POINTWISE_ITEMS, rows // _POINTWISE_PART_ROWS))
    part_rows = -(-rows // count) if count else 0
    if count > 1:
        parts = empty((count, g.k, g.c), x.dtype, "dw")
    else:
        parts = np.empty((0, g.k, g.c), x.dtype) if dw is None else dw.reshape(1, g.k, g.c)
    with blas_threads(1):  # the products run inside the OpenMP threads
        _conv_im2col.pointwise_channels_last_backward(
            dout.reshape(rows, g.k), x.reshape(rows, g.c), w.reshape(g.k, g.c),
            np.empty((0, g.c), x.dtype) if blas_dx is None else blas_dx.reshape(rows, g.c),
            parts, _POINTWISE_ROWS, part_rows, num_threads)
    if count > 1:
        np.sum(parts, axis=0, out=dw.reshape(g.k, g.c))
    return dx, dw


def _dense_nhwc_via_nchw(run, num_threads, images_shape, *arrays):
    """``run`` (an NCHW computation) on the NHWC ``arrays`` (N, H, W, C), by transposed
    copies in and out (_conv_nhwc.swap_channels, on num_threads threads):
    ``run(images, *copies)`` takes each array as a C-contiguous (N, C, H, W) copy and
    ``images``, an array of ``images_shape`` (NCHW) to fill (None if that is None), and
    returns (images or None, *others); the images come back as a new C-contiguous
    (N, H', W', C') array, the others (filter and bias gradients) as they are. The copies
    and the NCHW images lie in this thread's scratch (_scratch_arrays), kept from call to
    call.

    The forwards and gradients that the channel-blocked kernels do not run
    (fewer than 16 filters per group, im2col or Winograd asked for or chosen,
    pixels 1 KiB or more apart) go this way.
    """
    moved = [a for a in arrays if not a.transpose(0, 3, 1, 2).flags.c_contiguous]
    specs = [((a.shape[0], a.shape[3], a.shape[1], a.shape[2]), a.dtype) for a in moved]
    if images_shape is not None:
        specs.append((images_shape, arrays[0].dtype))
    scratch = iter(_scratch_arrays(*specs, purpose="the channels-last copies"))
    copies = []
    for a in arrays:
        if a.transpose(0, 3, 1, 2).flags.c_contiguous:  # one channel: nothing to move
            copies.append(a.transpose(0, 3, 1, 2))
            continue
        copies.append(next(scratch))
        _conv_nhwc.swap_channels(a, copies[-1], False, num_threads)
    images, *others = run(next(scratch, None), *copies)
    if images is None:
        return (None, *others)
    nhwc = empty((images.shape[0], *images.shape[2:], images.shape[1]), images.dtype)
    if images.transpose(0, 2, 3, 1).flags.c_contiguous:  # one channel: a plain copy
        np.copyto(nhwc, images.transpose(0, 2, 3, 1))
    else:
        _conv_nhwc.swap_channels(images, nhwc, True, num_threads)
    return (nhwc, *others)


def _is_pointwise(g):
    """A 1x1 kernel, stride 1, no padding: the input is already its column matrix."""
    return (g.fh, g.fw, g.stride, g.pad) == (1, 1, (1, 1), (0, 0, 0, 0))


def _window_args(g):
    """Stride, top and left padding, and dilation, as the kernels take them."""
    (sh, sw), (dh, dw) = g.stride, g.dilation
    return sh, sw, g.pad[0], g.pad[2], dh, dw


def _block_positions(rows, g, itemsize):
    """Output positions per column block of ``rows`` rows: about _COLUMN_BLOCK bytes, within
    the workspace limit, at least one."""
    budget = min(_COLUMN_BLOCK, get_workspace_limit())
    return int(max(1, min(g.oh * g.ow, budget // (rows * itemsize))))


def _workspace(rows, nb, g, dtype, num_threads):
    """One (rows, nb) column block per thread, as many threads as the workspace limit allows.

    Returns the buffer and the thread count to run with; a block depends on the
    geometry and the limit, never on the thread count, so neither do the results.
    """
    block = 1 if _is_pointwise(g) else rows * nb
    threads = int(max(1, min(num_threads, get_workspace_limit() // (block * dtype.itemsize))))
    return np.empty((threads, block), dtype), threads


def _packed_filters(w5, b, mr, num_threads):
    """Each group's filters w5 (G, K/G, C/G, FH, FW; any strides) packed for the GEMM tile,
    in panels of ``mr`` filters (zero filters past K/G), one row per group; and the bias
    likewise (zeros if none)."""
    groups, kg, cff = w5.shape[0], w5.shape[1], w5.shape[2] * w5.shape[3] * w5.shape[4]
    wp = np.empty((groups, -(-kg // mr) * mr * cff), w5.dtype)
    _conv_im2col.pack_filters(w5, wp, mr, num_threads)
    bias = np.zeros((groups, wp.shape[1] // cff), w5.dtype)
    if b.size:
        bias[:, :kg] = b.reshape(groups, kg)
    return wp, bias


def _phase_layout(g):
    """The forward's view of the input: each channel's padded plane split into its stride
    phases of (hq, wq) values - the eh*ew phases that taps read, eh = min(sh, kernel reach)
    (likewise ew) - and where each row (c, u, v) of a group's columns starts in that view:
    tap (u, v) reads phase (u*dh % sh, v*dw % sw), shifted by (u*dh // sh, v*dw // sw), so
    that column row r at output (i, j) is the value at offset ``off[r] + i*wq + j``.
    Returns (eh, ew, hq, wq, off)."""
    (sh, sw), (dh, dw) = g.stride, g.dilation
    eh, ew = min(sh, (g.fh - 1) * dh + 1), min(sw, (g.fw - 1) * dw + 1)
    hq = -(-(g.h + g.pad[0] + g.pad[1]) // sh)
    wq = -(-(g.w + g.pad[2] + g.pad[3]) // sw)
    ru = np.arange(g.fh)[:, None] * dh
    rv = np.arange(g.fw)[None, :] * dw
    tap = ((ru % sh * ew + rv % sw) * hq + ru // sh) * wq + rv // sw
    channel = np.arange(g.c // g.groups)[:, None] * (eh * ew * hq * wq)
    return eh, ew, hq, wq, (channel + tap.ravel()).ravel().astype(np.intp)


def _edge_layout(g, nr):
    """The forward's view of the input for stride 1 with OW == W (a "same" padding): the
    unpadded planes themselves, column row (c, u, v) at output position p reading offset
    ``off[r] + p``, where the pixel is inside the image. Returns off and the column masks
    (OW, FW): bit t of mask[r, v] is set when tap column v of position r + t (of a row
    that starts at a multiple of OW) falls inside the image."""
    (dh, dw), pt, pl = g.dilation, g.pad[0], g.pad[2]
    ru = np.arange(g.fh)[:, None] * dh - pt
    rv = np.arange(g.fw)[None, :] * dw - pl
    channel = np.arange(g.c // g.groups)[:, None] * (g.h * g.w)
    off = (channel + (ru * g.w + rv).ravel()).ravel().astype(np.intp)
    col = (np.arange(g.ow)[:, None, None] + np.arange(nr)) % g.ow + rv.reshape(1, -1, 1)
    inside = (col >= 0) & (col < g.w)
    masks = (inside.astype(np.uint64) << np.arange(nr, dtype=np.uint64)).sum(axis=2)
    return off, np.ascontiguousarray(masks, dtype=np.uint64)


def _im2col_forward(x, w5, b, out, g, num_threads):
    """Fill out (N, K, OH, OW) with the conv of x by the filters w5 (G, K/G, C/G, FH, FW;
    any strides): per chunk of images, the phase-split input (unless stride 1
    and no padding, or a "same" padding at stride 1: then x itself), then per (image,
    group, block of positions) one GEMM on the implicit columns."""
    level = cpu.level()
    mr, nr = _conv_im2col.tile_shape(level, x.itemsize)
    eh, ew, hq, wq, off = _phase_layout(g)
    per_image = g.c * eh * ew * hq * wq
    colmask = np.empty((0, 1), np.uint64)
    if g.stride == (1, 1) and g.pad == (0, 0, 0, 0):
        chunk, xq = max(g.n, 1), np.empty(0, x.dtype)
    elif g.stride == (1, 1) and g.ow == g.w:
        chunk, xq, wq = max(g.n, 1), np.empty(0, x.dtype), g.w
        off, colmask = _edge_layout(g, nr)
    else:
        chunk = int(max(1, min(g.n, get_workspace_limit() // (per_image * x.itemsize))))
        xq = np.empty(chunk * per_image, x.dtype)
    wp, bias = _packed_filters(w5, b, mr, num_threads)
    rows = bias.shape[1]
    span = g.oh * wq * (chunk if colmask.size else 1)  # positions one item's blocks cover
    nbw = max(nr, min(_OUTPUT_BLOCK // (rows * x.itemsize), span + nr - 1) // nr * nr)
    panels, chunks = rows // mr, -(-wp[0].nbytes // _FILTER_BLOCK)
    fc = -(-panels // chunks) * mr
    wide = np.empty((num_threads, fc * nbw + _REDUCTION_BLOCK * nr), x.dtype)
    out3 = out.reshape(g.n, g.k, g.oh * g.ow)
    for n0 in range(0, g.n, chunk):
        m = min(chunk, g.n - n0)
        _conv_im2col.forward(x, wp, bias, out3, n0, m, xq[:m * per_image], wide, off, g.oh,
                             g.ow, *_window_args(g)[:4], eh, ew, hq, wq, colmask, g.fh,
                             g.dilation[0], fc, nbw, _REDUCTION_BLOCK, level, num_threads)


def _input_grad_as_forward(dout, w, dx, g, num_threads, forward=None):
    """Fill dx as a forward convolution (``forward``, by default _im2col_forward) when the
    stride is 1: dout padded by the kernel's reach less the padding, with each group's
    filters flipped and transposed (a view, G, C/G, K/G, FH, FW). Returns False, doing
    nothing, for a stride > 1 or a padding past the reach."""
    reach_h, reach_w = (g.fh - 1) * g.dilation[0], (g.fw - 1) * g.dilation[1]
    pad = (reach_h - g.pad[0], reach_h - g.pad[1], reach_w - g.pad[2], reach_w - g.pad[3])
    if g.stride != (1, 1) or min(pad) < 0:
        return False
    kg, cg = g.k // g.groups, g.c // g.groups
    flipped = w.reshape(g.groups, kg, cg, g.fh, g.fw)[..., ::-1, ::-1].transpose(0, 2, 1, 3, 4)
    gt = Geometry(g.n, g.k, g.oh, g.ow, g.c, g.fh, g.fw, g.h, g.w, (1, 1), pad, g.dilation,
                  g.groups)
    (forward or _im2col_forward)(dout, flipped, np.empty(0, dout.dtype), dx, gt, num_threads)
    return True


def _im2col_backward(dout, x, w, dx, dw, g, num_threads):
    """Fill dx and/or dw (each may be None). dx of a stride-1 layer is a forward
    convolution (_input_grad_as_forward); otherwise, per (run of images, group, block of
    channels), pack, multiply and unpack; dw is summed over the runs' partial gradients in
    order."""
    if g.n == 0:  # dx is empty; dw sums nothing
        if dw is not None:
            dw[...] = 0
        return
    if dx is not None and _input_grad_as_forward(dout, w, dx, g, num_threads):
        dx = None
        if dw is None:
            return
    cg, ff, kg = g.c // g.groups, g.fh * g.fw, g.k // g.groups
    cblocks = -(-cg * ff // _BACKWARD_ROWS)
    cb = -(-cg // cblocks)
    nb = _block_positions(cb * ff, g, x.itemsize)
    work, threads = _workspace(cb * ff, nb, g, x.dtype, num_threads)
    # one partial filter gradient per run of images, within half the workspace limit
    runs = 1
    if dw is not None:
        runs = max(1, min(g.n, get_workspace_limit() // 2 // (dw.size * dw.itemsize)))
    run = -(-g.n // runs)
    runs = -(-g.n // run)
    if dw is None:
        parts = np.empty((1, 1, 1, 1), x.dtype)
    elif runs == 1:
        parts = dw.reshape(1, g.groups, kg, cg * ff)
    else:
        parts = np.empty((runs, g.groups, kg, cg * ff), x.dtype)
    with blas_threads(1):  # the products run inside the OpenMP threads
        _conv_im2col.backward(dout.reshape(g.n, g.k, g.oh * g.ow), x,
                              w.reshape(g.groups, kg, cg * ff),
                              np.empty((1, 1, 1, 1), x.dtype) if dx is None else dx, parts,
                              work, g.fh, g.fw, g.oh, g.ow, *_window_args(g), cb, nb,
                              run, _is_pointwise(g), dx is not None, dw is not None, threads)
    if dw is not None and runs > 1:
        np.sum(parts, axis=0, out=dw.reshape(parts.shape[1:]))


def _winograd_blocks(tiles, nr, lanes):
    """(blocks, tiles per block, GEMM columns per block) of a call with this many tiles:
    blocks of about one GEMM panel (nr), as equal as whole vectors (lanes) make them."""
    blocks = -(-tiles // nr)
    nb = -(-tiles // blocks // lanes) * lanes
    return -(-tiles // nb), nb, -(-nb // lanes) * lanes


def _winograd_tile(g, itemsize):
    """(m, cost): the output tile size m of F(m x m, 3x3) for geometry g and itemsize-byte
    values, the cheaper of 2 and 4, and its cost per filter and channel in products, by
    the count of _WINOGRAD_TRANSFORM_COST's comment. The filters' transform counts even
    when a WinogradFilters holds it, so that both give the same tiles, hence the same
    result."""
    level = cpu.level()
    nr = _conv_im2col.tile_shape(level, itemsize)[1]
    lanes = _conv_winograd.lanes(level, itemsize)

    def cost(m):
        blocks, _, ldv = _winograd_blocks(g.n * -(-g.oh // m) * -(-g.ow // m), nr, lanes)
        return (m + 2) ** 2 * (blocks * ldv + _winograd_transform_cost(blocks)[0])
    return min((cost(4), 4), (cost(2), 2))[::-1]


def _winograd_transform_cost(blocks):
    """(cost, by_items): the filters' transform in the count of _WINOGRAD_TRANSFORM_COST's
    comment, for a call of this many blocks of tiles, the cheaper way, and whether that
    is the items' (each transforms its own filters, a panel at a time)."""
    at_once = _WINOGRAD_TRANSFORM_COST + _WINOGRAD_READ_COST * blocks
    by_items = _WINOGRAD_ITEM_TRANSFORM_COST * blocks
    return min(at_once, by_items), by_items < at_once


def _winograd_filter_shape(k, c, m, mr, itemsize):
    """The shape of _winograd_filters' result for k filters of c channels."""
    return (m + 2) ** 2, -(-k // mr) * c * mr + 64 // itemsize


def _winograd_filters(w, m, mr, level, num_threads, u=None):
    """The 3x3 filters w (K, C, 3, 3; any strides) transformed for F(m x m, 3x3) and packed
    for the GEMM tile of mr filters, in u (new if None) of _winograd_filter_shape: (m+2)^2
    rows of ceil(K/mr)*C*mr values and one cache line more, so that they share no cache
    sets."""
    if u is None:
        u = np.empty(_winograd_filter_shape(*w.shape[:2], m, mr, w.itemsize), w.dtype)
    _conv_winograd.transform_filters(w, u, m, mr, level, num_threads)
    return u


# Per-call buffers lie in one buffer per Python thread and purpose, kept from call to
# call up to _SCRATCH_BYTES: allocated afresh, glibc gave several megabytes back to the
# system between calls and the next call faulted their pages in again. Winograd's (the
# transformed filters, at most _WINOGRAD_FILTER_BYTES, and the threads' work rows):
# ResNet-late's 9.4 MB of transforms cost about 1.3 ms of a 6 ms call, in the middle of
# a benchmark run. The channels-last layers run on transposed copies
# (_dense_nhwc_via_nchw): float32 16x32x32x3 to 8 channels, 3x3, in a new process, 0.50 ms
# a call, 0.17 with the buffer kept.
_SCRATCH_BYTES = 64 * 2**20
_scratch = threading.local()


def _scratch_arrays(*specs, purpose):
    """Arrays of the (shape, dtype) ``specs``, each starting on a cache line, in this
    thread's scratch buffer for ``purpose`` (which also names it in a MemoryError; grown
    when too small, and not kept past _SCRATCH_BYTES): valid until the thread's next call
    for that purpose."""
    nbytes = [math.prod(shape) * np.dtype(dtype).itemsize for shape, dtype in specs]
    total = sum(-(-n // 64) * 64 for n in nbytes)
    buffers = getattr(_scratch, "buffers", None)
    if buffers is None:
        buffers = _scratch.buffers = {}
    buffer = buffers.get(purpose)  # starts on a cache line
    if buffer is None or buffer.nbytes < total:
        buffer = empty((total,), np.uint8, purpose, align=64)
        if total <= _SCRATCH_BYTES:
            buffers[purpose] = buffer
    arrays, start = [], 0
    for (shape, dtype), n in zip(specs, nbytes):
        arrays.append(buffer[start:start + n].view(dtype).reshape(shape))
        start += -(-n // 64) * 64
    return arrays


class WinogradFilters:
    """3x3 filters that keep their Winograd transforms for repeated calls.

    ``conv2d(x, WinogradFilters(w), method="winograd")`` computes what
    ``conv2d(x, w, method="winograd")`` does, bit for bit, but transforms the
    filters only on the first call of each kind (dtype, tile size and CPU
    level) and reuses the transform afterwards: for inference, where one set
    of filters meets image after image, the transform is no longer paid per
    call (one ResNet-late image, 256 filters of 256 channels: about a fifth
    of the call at 2 threads).

    Parameters
    ----------
    w : array_like, shape (K, C, 3, 3)
        The filters, real. They are copied: later changes to ``w`` do not
        reach the transforms.

    Raises
    ------
    ValueError
        If ``w`` is not a 4-D array of 3x3 filters.
    TypeError
        On non-real filters.

    Notes
    -----
    Only :func:`conv2d` with ``method="winograd"`` takes them (any other
    method raises a ``ValueError``); the call computes in the dtype that
    ``x`` and the filters give, as with an array. Each transform held takes
    (m+2)^2/9 times the filters' size (16/9 for F(2x2, 3x3), 4 for
    F(4x4, 3x3)) for as long as the object lives.

    Examples
    --------
    >>> import pyconv
    >>> rng = np.random.default_rng(0)
    >>> w = rng.standard_normal((4, 2, 3, 3))
    >>> x = rng.standard_normal((1, 2, 6, 6))
    >>> filters = pyconv.WinogradFilters(w)
    >>> filters.shape
    (4, 2, 3, 3)
    >>> y = pyconv.conv2d(x, filters, padding=1, method="winograd")
    >>> bool(np.array_equal(y, pyconv.conv2d(x, w, padding=1, method="winograd")))
    True
    """

    def __init__(self, w):
        w = as_array(w, "w")
        if w.ndim != 4 or w.shape[2:] != (3, 3):
            raise ValueError(f"w must be 3x3 filters of shape (K, C, 3, 3), got shape {w.shape}")
        self._filters = as_kernel_input(w, float_dtype(w), "w").copy()
        self._filters.setflags(write=False)
        self._transforms = {}

    @property
    def filters(self):
        """The filters (K, C, 3, 3), read-only."""
        return self._filters

    @property
    def shape(self):
        """(K, C, 3, 3)."""
        return self._filters.shape

    @property
    def dtype(self):
        """The filters' dtype (float32 or float64)."""
        return self._filters.dtype

    def __repr__(self):
        return (f"WinogradFilters(shape={self.shape}, dtype={self.dtype}, "
                f"transforms held={len(self._transforms)})")

    def _transformed(self, dtype, m, mr, level, num_threads):
        """The filters transformed as _winograd_filters does, in dtype: made on first use."""
        key = (np.dtype(dtype).str, m, mr, level)
        u = self._transforms.get(key)
        if u is None:
            u = _winograd_filters(self._filters.astype(dtype, copy=False), m, mr, level,
                                  num_threads)
            self._transforms[key] = u
        return u


def _winograd_forward(x, w, b, out, g, num_threads, transforms=None):
    """Fill out (N, K, OH, OW) with the conv of x by the 3x3 filters w (K, C, 3, 3; any
    strides), stride 1, by Winograd's F(m x m, 3x3): the filters transformed once (or
    taken from ``transforms``, a WinogradFilters of w), then items of (block of tiles,
    chunk of filters), each through its thread's buffers."""
    if g.n == 0:
        return
    m = _winograd_tile(g, x.itemsize)[0]
    level = cpu.level()
    mr, nr = _conv_im2col.tile_shape(level, x.itemsize)
    lanes = _conv_winograd.lanes(level, x.itemsize)
    a2 = (m + 2) ** 2
    tiles = g.n * -(-g.oh // m) * -(-g.ow // m)
    panels = -(-g.k // mr)
    line = 64 // x.itemsize
    blocks, nb, ldv = _winograd_blocks(tiles, nr, lanes)
    fused = transforms is None and _winograd_transform_cost(blocks)[1]
    if transforms is None and not fused:
        # transformed per call, a chunk of filters at a time (whole panels)
        parts = -(-panels * a2 * g.c * mr * x.itemsize // _WINOGRAD_FILTER_BYTES)
        chunk = -(-panels // parts) * mr
    else:
        chunk = panels * mr
    chunk_panels = -(-min(chunk, g.k) // mr)  # the first chunk, the largest
    fc = chunk_panels * mr
    if 1 < num_threads and blocks < _WINOGRAD_ITEMS * num_threads:
        # no output's sums depend on the chunks: results stay the same
        parts = min(chunk_panels, num_threads // math.gcd(blocks, num_threads))
        fc = -(-chunk_panels // parts) * mr
    u_shape = _winograd_filter_shape(min(chunk, g.k), g.c, m, mr, x.itemsize)
    panel_values = a2 * (g.c * mr + line) if fused else 0
    u_all, work, where = _scratch_arrays(
        (u_shape if transforms is None and not fused else (1, 1), x.dtype),
        ((num_threads, a2 * ((g.c + fc) * ldv + 2 * line) + panel_values), x.dtype),
        ((num_threads, 4 * ldv), np.intp), purpose="Winograd's buffers")
    zero = np.zeros(fc, x.dtype)
    bias = np.zeros(g.k, x.dtype) if b.size == 0 else b
    for k0 in range(0, g.k, chunk):
        k1 = min(g.k, k0 + chunk)
        if fused:
            u = u_all
        elif transforms is None:
            shape = _winograd_filter_shape(k1 - k0, g.c, m, mr, x.itemsize)
            u = _winograd_filters(w[k0:k1], m, mr, level, num_threads,
                                  u_all.reshape(-1)[:math.prod(shape)].reshape(shape))
        else:
            u = transforms._transformed(x.dtype, m, mr, level, num_threads)
        _conv_winograd.forward(x, u, w, fused, bias, out, m, g.pad[0], g.pad[2], k0, k1, nb,
                               fc, ldv, zero, work, where, _REDUCTION_BLOCK, level, num_threads)


def _winograd_backward(dout, x, w, dx, dw, g, num_threads):
    """Fill dx and/or dw (each may be None): dx as Winograd's forward convolution of dout
    (_input_grad_as_forward), unless the padding exceeds the kernel's reach; dw, and dx
    then, as the im2col method does."""
    if dx is not None and _input_grad_as_forward(
            dout, w, dx, g, num_threads,
            lambda d, w5, b, out, gt, t: _winograd_forward(d, w5[0], b, out, gt, t)):
        dx = None
    if dw is not None and _blocked_applies(g):
        _blocked_filter_grad(dout, x, dw, g, num_threads)
        dw = None
    if dx is not None or dw is not None:
        _im2col_backward(dout, x, w, dx, dw, g, num_threads)


def _blocked_applies(g):
    """Whether the direct method runs the channel-blocked kernel (output channels in the
    vector lanes): at least _BLOCKED_MIN_FILTERS filters per group. Fewer (MNIST's 8,
    depthwise layers' 1) would leave most lanes empty; those keep the kernel that
    vectorises along the output width."""
    return g.k // g.groups >= _BLOCKED_MIN_FILTERS


def _blocked_forward(x, w5, b, out, g, num_threads):
    """Fill out by the channel-blocked kernel; w5 is (G, K/G, C/G, FH, FW), any strides."""
    sh, sw, pt, pl, dh, dw = _window_args(g)
    _conv_direct.blocked_forward(x, w5, b, out, sh, sw, pt, pl, dh, dw, num_threads)


def _blocked_filter_grad(dout, x, dw, g, num_threads):
    """Fill dw (K, C/G, FH, FW) by the channel-blocked filter-gradient kernel."""
    _conv_direct.blocked_filter_grad(dout, x, dw.reshape(g.groups, g.k // g.groups, *dw.shape[1:]),
                                     *_window_args(g), num_threads)


def _direct_forward(x, w, b, out, g, num_threads):
    if _blocked_applies(g):
        _blocked_forward(x, w.reshape(g.groups, g.k // g.groups, *w.shape[1:]), b, out, g,
                         num_threads)
    else:
        _conv_direct.forward(x, w, b, out, *_window_args(g), g.groups, num_threads)


def _blocked_input_grad_applies(g):
    """Whether the direct method computes dx by the channel-blocked forward kernel (see
    _input_grad_as_forward): stride 1, a padding within the kernel's reach, and at least
    _BLOCKED_MIN_FILTERS input channels per group (the filters of that forward)."""
    reach_h, reach_w = (g.fh - 1) * g.dilation[0], (g.fw - 1) * g.dilation[1]
    return (g.stride == (1, 1) and g.c // g.groups >= _BLOCKED_MIN_FILTERS
            and max(g.pad[:2]) <= reach_h and max(g.pad[2:]) <= reach_w)


def _direct_backward(dout, x, w, dx, dw, g, num_threads):
    args = _window_args(g)
    if dx is not None and _blocked_input_grad_applies(g):
        _input_grad_as_forward(dout, w, dx, g, num_threads, _blocked_forward)
        dx = None
    if dx is not None:
        _conv_direct.backward_input(dout, w, dx, *args, g.groups, num_threads)
    if dw is not None and _blocked_applies(g):
        _blocked_filter_grad(dout, x, dw, g, num_threads)
    elif dw is not None:
        _conv_direct.backward_weight(dout, x, dw, *args, g.groups, num_threads)


def _auto_gradient_methods(g, need_dx, rule):
    """(method for dx, method for dw) that "auto" runs, where its whole-layer ``rule`` is
    not Winograd: the channel-blocked kernels (direct) where they apply, but for 1x1
    layers (whose input is already im2col's column matrix), and for dw beside an im2col
    dx at stride > 1 (that pass packs the columns dw needs as well: AlexNet conv1's dx
    and dw together take about as long as its dx alone)."""
    pointwise = _is_pointwise(g)
    dx_method = "direct" if _blocked_input_grad_applies(g) and not pointwise else rule
    dw_method = "direct" if _blocked_applies(g) and not pointwise else rule
    if need_dx and dx_method == "im2col" and g.stride != (1, 1):
        dw_method = "im2col"
    return dx_method, dw_method


def _depthwise_nhwc_backward(dout, x, w, need, g, num_threads):
    """(dx or None, dw or None) of a channels-last layer with one filter per channel, by the
    channels-last depthwise kernels: dx of a stride-1 layer whose padding is within the
    kernel's reach as the depthwise forward of dout by the flipped filters (through
    transposed copies otherwise), dw as per-(image, band of _DEPTHWISE_BAND output rows)
    partial gradients added in order."""
    dx = dw = None
    if "dx" in need:
        reach_h, reach_w = (g.fh - 1) * g.dilation[0], (g.fw - 1) * g.dilation[1]
        pad = (reach_h - g.pad[0], reach_h - g.pad[1], reach_w - g.pad[2], reach_w - g.pad[3])
        if g.stride == (1, 1) and min(pad) >= 0:
            gt = Geometry(g.n, g.k, g.oh, g.ow, g.c, g.fh, g.fw, g.h, g.w, (1, 1), pad,
                          g.dilation, g.groups)
            dx = _depthwise_nhwc_forward(dout, w[..., ::-1, ::-1], np.empty(0, x.dtype), gt,
                                         num_threads)
        else:
            dx, _ = _dense_nhwc_via_nchw(
                lambda dx4, d, x4: _backward(d, x4, w, ("dx",), g, "direct", num_threads,
                                             dx4),
                num_threads, (g.n, g.c, g.h, g.w), dout, x)
    if "dw" in need:
        band = _DEPTHWISE_BAND
        parts = np.empty((g.n * -(-g.oh // band), g.fh * g.fw, g.c), x.dtype)
        _conv_nhwc.depthwise_filter_grad(dout, x, parts, band, g.fh, g.fw, *_window_args(g),
                                         num_threads)
        dw = np.ascontiguousarray(parts.sum(axis=0).T).reshape(w.shape)
    return dx, dw


def _nhwc_backward(dout, x, w, need, g, method, num_threads):
    """(dx or None, dw or None) of channels-last dout (N, OH, OW, K) and x (N, H, W, C):
    each gradient that ``method`` computes by a channel-blocked kernel (see _backward) runs
    in place on transposed views, dx only where dout's pixels lie less than
    _NHWC_PIXEL_BYTES apart; the others go through _dense_nhwc_via_nchw."""
    resolved = _resolve_method(method, g, x.dtype, backward=True)
    if method == "auto" and resolved != "winograd":
        dx_method, dw_method = _auto_gradient_methods(g, "dx" in need, resolved)
    else:
        dx_method = dw_method = resolved
    dx = dw = None
    if _is_pointwise(g) and g.groups == 1:
        blas = [name for name, by in (("dx", dx_method), ("dw", dw_method))
                if name in need and by == "im2col"]
        if blas:
            dx, dw = _pointwise_nhwc_backward(dout, x, w, blas, g, num_threads)
    if (g.c == g.groups == g.k and method != "im2col"  # one filter per channel
            and g.c * x.itemsize >= _DEPTHWISE_NHWC_BYTES):
        return _depthwise_nhwc_backward(dout, x, w, need, g, num_threads)
    if ("dx" in need and dx_method == "direct" and _blocked_input_grad_applies(g)
            and g.k * x.itemsize < _NHWC_PIXEL_BYTES):
        dx = empty(x.shape, x.dtype, "dx")
        _input_grad_as_forward(dout.transpose(0, 3, 1, 2), w, dx.transpose(0, 3, 1, 2), g,
                               num_threads, _blocked_forward)
    if "dw" in need and dw_method == "direct" and _blocked_applies(g):
        dw = empty(w.shape, x.dtype, "dw")
        _blocked_filter_grad(dout.transpose(0, 3, 1, 2), x.transpose(0, 3, 1, 2), dw, g,
                             num_threads)
    rest = [name for name, done in (("dx", dx), ("dw", dw)) if name in need and done is None]
    if rest:
        dx_rest, dw_rest = _dense_nhwc_via_nchw(
            lambda dx4, d, x4: _backward(d, x4, w, rest, g, method, num_threads, dx4),
            num_threads, (g.n, g.c, g.h, g.w) if "dx" in rest else None, dout, x)
        dx = dx if dx is not None else dx_rest
        dw = dw if dw is not None else dw_rest
    return dx, dw


def _forward(x, w, b, g, method, num_threads, transforms=None, out=None):
    """out (N, K, OH, OW; new if None) of x (N, C, H, W) by ``method`` (resolved;
    ``transforms``: the WinogradFilters of w, if the call was given them)."""
    out = empty(g.out_shape, x.dtype) if out is None else out
    if method == "direct":
        _direct_forward(x, w, b, out, g, num_threads)
    elif method == "winograd":
        _winograd_forward(x, w, b, out, g, num_threads, transforms)
    else:
        _im2col_forward(x, w.reshape(g.groups, g.k // g.groups, *w.shape[1:]), b, out, g,
                        num_threads)
    return out


def _backward(dout, x, w, need, g, method, num_threads, dx=None):
    """(dx or None, dw or None) of dout (N, K, OH, OW), x (N, C, H, W) by ``method``; dx
    (if needed) in the array given, or a new one."""
    dx = (empty(x.shape, x.dtype, "dx") if dx is None else dx) if "dx" in need else None
    dw = empty(w.shape, x.dtype, "dw") if "dw" in need else None
    if dx is None and dw is None:
        return dx, dw
    run = {"direct": _direct_backward, "winograd": _winograd_backward,
           "im2col": _im2col_backward}
    resolved = _resolve_method(method, g, x.dtype, backward=True)
    if method == "auto" and resolved != "winograd":
        dx_method, dw_method = _auto_gradient_methods(g, dx is not None, resolved)
        if dx_method != dw_method:
            if dx is not None:
                run[dx_method](dout, x, w, dx, None, g, num_threads)
            if dw is not None:
                run[dw_method](dout, x, w, None, dw, g, num_threads)
            return dx, dw
        resolved = dx_method
    run[resolved](dout, x, w, dx, dw, g, num_threads)
    return dx, dw


def conv2d(x, w, b=None, *, stride=1, padding=0, dilation=1, groups=1, method="auto",
           strict=True, layout="NCHW", num_threads=None):
    """2-D convolution (cross-correlation, as deep-learning frameworks compute it), NCHW.

    Parameters
    ----------
    x : array_like, shape (N, C, H, W), (C, H, W) or (H, W) (see ``layout``)
        Images. A 3-D ``x`` is one image; a 2-D ``x`` is one single-channel
        image and then ``w`` is one 2-D filter (FH, FW).
    w : array_like, shape (K, C/groups, FH, FW), or (FH, FW) with a 2-D ``x``
        Filters. With ``method="winograd"``, also :class:`WinogradFilters`,
        which keep their transforms from call to call.
    b : array_like, shape (K,), optional
        Bias, added to every output pixel of its channel.
    stride : int or (int, int), default 1
    padding : int, (int, int), ((int, int), (int, int)), "valid" or "same", default 0
        Zeros added on both sides of each spatial axis, (h, w) on both sides
        of each, or ``((top, bottom), (left, right))`` apart (TensorFlow's
        explicit padding, ONNX's ``pads``); the kernels read it in place.
        ``"same"`` is TensorFlow's, at any stride and dilation: ``OH =
        ceil(H / sh)`` with a total padding of ``max((OH - 1)*sh + (FH -
        1)*dh + 1 - H, 0)``, the odd row at the bottom (likewise columns at
        the right); at stride 1 it keeps H and W, as PyTorch's ``"same"``.
    dilation : int or (int, int), default 1
        Spacing between the filter taps.
    groups : int, default 1
        Input and output channels split into ``groups`` independent
        convolutions; ``groups == C`` is a depthwise convolution.
    method : {"auto", "im2col", "direct", "winograd"}, default "auto"
        ``"im2col"``: a GEMM of the filters with the im2col columns, which
        are read as shifted views of the padded input, never copied out
        (workspace bounded by :func:`get_workspace_limit`). ``"direct"``:
        loops over the output, no workspace. ``"winograd"``: Winograd's
        minimal filtering, for 3x3 filters, stride 1, dilation 1 and
        ``groups=1`` only (any padding); fewer multiplications, a larger but
        bounded rounding error (see Notes). ``"auto"``: see Notes.
    strict : bool, default True
        Refuse a stride that does not fit the padded input exactly (the
        message shows the formula); False floors the output size.
    layout : {"NCHW", "NHWC"}, default "NCHW"
        The axes of ``x`` and of the result: NHWC is channels last, ``x``
        (N, H, W, C) or (H, W, C) and the result (N, OH, OW, K) or
        (OH, OW, K); the filters stay (K, C/groups, FH, FW). A 2-D ``x`` has
        no channel axis and is the same in both. In NHWC, layers whose
        filters each read one channel (C/groups == 1: depthwise, with any
        depth multiplier) run a kernel that reads and writes channels last
        in place, whatever the ``method`` (but ``"winograd"``); other layers
        run ``method`` on transposed copies for now.
    num_threads : int, optional
        OpenMP threads; see :func:`pyconv.resolve_num_threads`. A call with
        less than about a million flops per thread uses fewer threads.

    Returns
    -------
    ndarray, shape (N, K, OH, OW), (K, OH, OW) or (OH, OW)
        ``out[n, k, i, j] = b[k] + sum over c, u, v of
        w[k, c, u, v] * x[n, g*C/groups + c, i*sh - pt + u*dh, j*sw - pl + v*dw]``
        (zero outside ``x``; ``g`` the group of filter ``k``), with
        ``OH = (H + pt + pb - dh*(FH - 1) - 1) // sh + 1`` and likewise OW.
        float32 inputs give float32, float64 and integers give float64, mixed
        inputs promote as NumPy does.

    Raises
    ------
    ValueError
        On shapes that do not fit together (``w`` against ``x`` and
        ``groups``, ``b`` against ``w``), an invalid stride/padding
        configuration (:class:`pyconv.InvalidConfigError` when ``strict``),
        a kernel larger than the padded input, an unknown ``method``, or
        ``method="winograd"`` on a layer it does not compute (the message
        names the condition that failed).
    TypeError
        On non-real inputs or non-integer sizes.
    KeyboardInterrupt
        On Ctrl-C during the call (README: "Interrupting a call").

    Notes
    -----
    im2col never builds the column matrix. At stride 1 with OW == W (a
    "same" padding), the column row of tap (u, v) is the input plane itself
    read from a fixed offset, through load masks that give zeros outside the
    image, and blocks of positions run across the images of the batch.
    Otherwise each channel's zero-padded plane is split once into its stride
    phases (sh*sw planes of every sh-th row and sw-th column; a copy of about
    the input's size, for as many images as :func:`get_workspace_limit`
    allows, at least one; none at all for stride 1 without padding), so that
    the column row of tap (u, v) is that plane read from a fixed offset:
    outputs are computed at every column of the phase planes, the few past
    OW dropped. Each thread takes a (image, group,
    block of positions) item and runs a register tile (8 filters x 48
    positions with AVX-512, 4 x 24 with AVX2) over the packed filters and
    L1-sized packed panels of those rows, summing each output in the
    reduction's order: items are fixed by the shapes, so results do not
    depend on the thread count. The instruction set is chosen at run time,
    as for ``"direct"``.

    ``"direct"`` with at least 16 filters per group runs the channel-blocked
    kernel (oneDNN's layout): each group's filters are packed once per call
    by pairs of blocks of output channels (2 x 16 float32 lanes with
    AVX-512), and a register tile of those 32 channels x 14 positions of an
    output row broadcasts each input pixel, read in place at any stride,
    dilation or layout, against the pair's filter vectors. Windows that
    cross the left or right padding sum one tap column at a time over the
    positions it lies inside for; rows skip the tap rows in the padding. No
    copy of the input is made. Fewer filters per group (MNIST's 8,
    depthwise layers) keep the kernel that vectorises along the output width.
    Its ``dx`` of a stride-1 layer is the same kernel run on ``dout``; its
    ``dw`` keeps the filters in the lanes and tiles 14 taps (consecutive
    channels, or channels and tap columns) of a channels-last copy of a band
    of input rows, summing over every output position in order (see
    :func:`conv2d_backward`).

    ``method="auto"`` takes direct for layers with at least 16 filters per
    group, except 1x1 layers at stride 1 without padding (their input is
    already im2col's column matrix, and im2col's GEMM runs them faster);
    otherwise im2col when a group's filter matrix is large enough to fill
    the tiles, (K/groups) * (C/groups)*FH*FW >= 512, direct otherwise (its
    backward rule is in :func:`conv2d_backward`); the choice
    never depends on the thread count, so neither does the result. The
    crossovers behind the rule are measured in the repository's
    ``docs/benchmarks.md``; ``pyconv bench --only conv`` times the methods.

    ``method="winograd"`` computes each m x m tile of outputs as
    ``A^T [sum over c of (G g G^T) * (B^T d B)] A`` (Lavin & Gray,
    arXiv:1509.09308), F(4x4, 3x3) (36 products per 16 outputs instead of
    144) or F(2x2, 3x3) (16 per 4), whichever needs fewer products once
    the tiles are counted as the GEMM holds them (whole vectors) and the
    transform of the filters ((m+2)^2 values per 3x3 filter and channel)
    is counted as about 20 products per value, or 7 per block of tiles
    when the threads make it for their own blocks: 4x4 tiles for VGG and
    ResNet layers from 14x14 up, 2x2 for one image at 7x7, where four
    4x4 tiles would transform 36 values per filter and channel for 4
    tiles. The points are 0, 1, -1, 1/2, -2 and infinity (with Lavin's 2
    in place of 1/2, F4's float32 error doubles). Each thread takes a
    block of tiles (one GEMM panel, 48 with AVX-512 float32) and all the
    filters, or part of them when there are few blocks: it transforms the
    input patches, multiplies them by the transformed filters with
    pyconv's GEMM tile, one product per transform point, and transforms
    the products back into ``out``, all within its cache. The filters
    are transformed per call, in double precision: where few blocks meet
    each filter (up to 6), by each thread for its own block, 8 or 4
    filters at a time, just before their products; otherwise once, before
    the products, in chunks of at most 24 MiB of transforms, in a buffer
    that each Python thread keeps for its next call (up to 64 MiB).
    Either way gives the same values. Results do not
    depend on the thread count. Rounding: with x standard normal and
    filters scaled by sqrt(2/(C*9)), ``max|y - y64| / max|y64|`` (``y64``
    the float64 result) stays below 1e-5 in float32 (at most about 10
    times im2col's) and 1e-12 in float64, on the VGG and ResNet layers
    measured (C up to 256) and on the tests' shapes; it grows with C and
    with the tile size. A NaN or infinity in an input patch spreads to the
    whole output tile.

    ``method="auto"`` takes Winograd only where the float32 precision is
    ``"high"`` (:func:`pyconv.set_float32_conv_precision`; by default it is
    ``"highest"`` and ``auto`` chooses as above), the layer is float32 and
    one Winograd computes, with at least 16 input channels and 16 filters,
    and the count above is below the direct products (9 per output
    position, N*OH*OW per filter and channel): with fewer positions,
    transforming the filters costs more than the products save. float64
    ``auto`` never takes it.

    Examples
    --------
    The 4x4 example of the CS231n handout, as one call:

    >>> import pyconv
    >>> I = [[1, 2, 3, 4], [4, 3, 2, 1], [-1, 0, 1, 2], [0, -2, 4, 0]]
    >>> pyconv.conv2d(I, [[1, -1], [0, 2]])
    array([[ 5.,  3.,  1.],
           [ 1.,  3.,  5.],
           [-5.,  7., -1.]])
    >>> x = np.ones((2, 3, 5, 5), np.float32)
    >>> pyconv.conv2d(x, np.ones((4, 3, 3, 3), np.float32), padding="same").shape
    (2, 4, 5, 5)
    >>> pyconv.conv2d(x, np.ones((4, 3, 3, 3), np.float32), stride=2, padding="same").shape
    (2, 4, 3, 3)
    >>> pyconv.conv2d(I, [[1, -1], [0, 2]], padding=((1, 0), (0, 1)))  # top 1, right 1
    array([[ 4.,  6.,  8.,  0.],
           [ 5.,  3.,  1.,  4.],
           [ 1.,  3.,  5.,  1.],
           [-5.,  7., -1.,  2.]])

    Channels last: one 3x3 filter per channel of an (N, H, W, C) batch:

    >>> xl = np.ones((2, 5, 5, 8), np.float32)
    >>> y = pyconv.conv2d(xl, np.ones((8, 1, 3, 3), np.float32), padding=1, groups=8,
    ...                   layout="NHWC")
    >>> y.shape
    (2, 5, 5, 8)
    >>> y[0, :2, :2, 0]
    array([[4., 6.],
           [6., 9.]], dtype=float32)
    """
    method = _check_method(method)
    layout = check_layout(layout)
    transforms = None
    if isinstance(w, WinogradFilters):
        if method != "winograd":
            raise ValueError(f"w is WinogradFilters: method must be 'winograd', got {method!r}")
        transforms, w = w, w.filters
    extra = [] if b is None else [as_array(b, "b", ndim=1)]
    xc, wc, g, out_shape, dtype = _prepare(x, w, extra, stride, padding, dilation, groups,
                                           strict, layout)
    if b is None:
        bc = np.empty(0, dtype)
    else:
        if extra[0].shape != (g.k,):
            raise ValueError(f"b must have shape ({g.k},), got {extra[0].shape}")
        bc = as_kernel_input(extra[0], dtype, "b")
    n_threads = _threads_for(g, num_threads)
    requested, method = method, _resolve_method(method, g, dtype)
    if not _nhwc(layout, x):
        return _forward(xc, wc, bc, g, method, n_threads, transforms).reshape(out_shape)
    if (g.c == g.groups and method != "winograd"
            and g.c * xc.itemsize >= _DEPTHWISE_NHWC_BYTES):
        return _depthwise_nhwc_forward(xc, wc, bc, g, n_threads).reshape(out_shape)
    if method == "im2col" and _is_pointwise(g) and g.groups == 1:
        return _pointwise_nhwc_forward(xc, wc, bc, g, n_threads).reshape(out_shape)
    if (_blocked_applies(g) and requested in ("auto", "direct") and method != "winograd"
            and g.c * xc.itemsize < _NHWC_PIXEL_BYTES):
        # the channel-blocked kernel reads and writes channels last in place
        out = empty((g.n, g.oh, g.ow, g.k), dtype, align=_OUTPUT_ALIGN)
        _blocked_forward(xc.transpose(0, 3, 1, 2),
                         wc.reshape(g.groups, g.k // g.groups, *wc.shape[1:]), bc,
                         out.transpose(0, 3, 1, 2), g, n_threads)
        return out.reshape(out_shape)
    out, = _dense_nhwc_via_nchw(
        lambda out4, x4: (_forward(x4, wc, bc, g, method, n_threads, transforms, out4),),
        n_threads, g.out_shape, xc)
    return out.reshape(out_shape)


def conv2d_backward(dout, x, w, *, stride=1, padding=0, dilation=1, groups=1, method="auto",
                    need=("dx", "dw", "db"), layout="NCHW", num_threads=None):
    """Gradients of :func:`conv2d` with respect to its input, filters and bias.

    Parameters
    ----------
    dout : array_like, the shape of ``conv2d(x, w, ...)``
        Gradient of the loss with respect to the convolution's output:
        (N, K, OH, OW), (K, OH, OW) or (OH, OW) as the forward call gave.
    x, w, stride, padding, dilation, groups, method, layout, num_threads
        As in the forward call :func:`conv2d`, every padding form included
        (output sizes are floored, as with ``strict=False``). With
        ``layout="NHWC"``, ``dout``, ``x`` and ``dx`` are channels last;
        the gradients that the channel-blocked kernels compute (see Notes)
        read and write them in place (``dx`` only where ``dout``'s pixels lie
        less than 1 KiB apart), as do channels-last depthwise kernels for
        layers with one filter per channel (``dx`` at stride 1), the others
        go through the NCHW kernels on transposed copies, and ``db`` sums
        ``dout`` over N, OH and OW in place.
    need : sequence of {"dx", "dw", "db"}, default all three
        The gradients to compute; the others are returned as None and cost
        nothing.

    Returns
    -------
    dx : ndarray, the shape of ``x``, or None
    dw : ndarray, the shape of ``w``, or None
    db : ndarray, shape (K,), or None
        In the dtype the forward call computes in.

    Raises
    ------
    ValueError
        If ``dout`` does not have the forward output's shape, ``need`` names an
        unknown gradient, or as :func:`conv2d` does.
    TypeError
        On non-real inputs.
    KeyboardInterrupt
        On Ctrl-C during the call (README: "Interrupting a call").

    Notes
    -----
    ``dx[n, c, h, w]`` sums ``w[k, c', u, v] * dout[n, k, i, j]`` over every
    output (i, j) whose window read pixel (h, w); ``dw[k, c', u, v]`` sums
    ``dout[n, k, i, j] * x[n, c, i*sh - pt + u*dh, j*sw - pl + v*dw]``;
    ``db[k]`` sums ``dout[:, k]`` (in double precision). With stride 1, the
    im2col method computes ``dx`` as a forward convolution (the im2col one)
    of ``dout``, padded by the kernel's reach less the padding, with each
    group's filters flipped and transposed. Otherwise it
    splits the work into (run of images, group, block of input channels)
    items fixed by the shapes; each thread packs its items' columns, block
    by block of positions, and multiplies them with SciPy's BLAS (limited to
    one thread meanwhile, with threadpoolctl): ``dw`` as ``dout`` times the
    columns' transpose, summed over the runs in order, and ``dx`` as the
    filters' transpose times ``dout``, added back where im2col read.

    ``method="winograd"`` computes ``dx`` by Winograd's forward
    convolution of ``dout`` (padded by 2 less the padding, filters flipped
    and transposed), within the same bound as the forward (see
    :func:`conv2d`), unless the padding exceeds 2: then as im2col does.
    ``dw`` is the direct method's (below) where that runs the
    channel-blocked kernel, im2col's otherwise: a Winograd filter gradient
    was not built. The layers it accepts are those of the forward.

    ``method="direct"`` with at least 16 filters per group computes ``dw``
    by the channel-blocked kernel: per band of output rows of one image
    (sized to stay in L2), the band's input rows are copied channels last
    with the padding as zeros and ``dout`` is transposed to
    [position][32 filters]; a register tile of 32 filters x 14 taps lying
    at consecutive addresses of that copy loads each position's two
    ``dout`` vectors and broadcasts its 14 inputs against them. Each thread
    owns a fixed range of tiles and sums them over every band in order, so
    the result does not depend on the thread count. With at least 16 input
    channels per group, stride 1 and a padding within the kernel's reach,
    its ``dx`` is the channel-blocked forward kernel run on ``dout``
    (padded by the reach less the padding, filters flipped and transposed).

    ``method="auto"`` chooses each gradient's kernel: the channel-blocked
    ones above where they apply, except for 1x1 layers at stride 1 without
    padding (im2col's GEMM runs those faster) and for ``dw`` when ``dx``
    is im2col's at a stride above 1 (that pass packs the columns ``dw``
    needs as well); otherwise im2col for
    ungrouped layers whose filter matrix (K * C*FH*FW) has at least 1024
    entries, direct for the rest. Under float32 precision ``"high"``, the
    layers :func:`conv2d` computes by Winograd take it here too (``dx`` and
    ``dw`` as above). The measurements behind the rule sit with
    :func:`conv2d`'s.

    Examples
    --------
    >>> import pyconv
    >>> x = np.arange(16.0).reshape(4, 4)
    >>> dx, dw, db = pyconv.conv2d_backward(np.ones((3, 3)), x, np.ones((2, 2)))
    >>> dx
    array([[1., 2., 2., 1.],
           [2., 4., 4., 2.],
           [2., 4., 4., 2.],
           [1., 2., 2., 1.]])
    >>> dw
    array([[45., 54.],
           [81., 90.]])
    >>> db
    array([9.])
    >>> dx, dw, db = pyconv.conv2d_backward(np.ones((1, 3, 3, 2)), np.ones((1, 4, 4, 2)),
    ...                                     np.ones((2, 1, 2, 2)), groups=2, layout="NHWC")
    >>> dx[0, :2, :2, 0]
    array([[1., 2.],
           [2., 4.]])
    """
    method = _check_method(method)
    need = check_need(need)
    layout = check_layout(layout)
    dout = as_array(dout, "dout")
    xc, wc, g, out_shape, dtype = _prepare(x, w, [dout], stride, padding, dilation, groups,
                                           False, layout)
    if dout.shape != out_shape:
        raise ValueError(f"dout must have the forward output's shape {out_shape}, got "
                         f"{dout.shape}")
    nhwc = _nhwc(layout, x)
    d4 = as_kernel_input(dout.reshape((g.n, g.oh, g.ow, g.k) if nhwc else g.out_shape), dtype,
                         "dout")
    n_threads = _threads_for(g, num_threads)
    db = None
    if "db" in need and nhwc:
        db = np.empty(g.k, dtype)
        _conv_im2col.bias_grad_channels_last(d4.reshape(-1, g.k), db, np.empty(g.k), n_threads)
    elif "db" in need:
        db = np.empty(g.k, dtype)
        _conv_im2col.bias_grad(d4.reshape(g.n, g.k, g.oh * g.ow), db, n_threads)
    if nhwc:
        dx, dw = _nhwc_backward(d4, xc, wc, need, g, method, n_threads)
    else:
        dx, dw = _backward(d4, xc, wc, need, g, method, n_threads)
    dx = None if dx is None else dx.reshape(np.shape(x))
    dw = None if dw is None else dw.reshape(np.shape(w))
    return dx, dw, db
