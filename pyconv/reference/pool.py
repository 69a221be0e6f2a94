"""Pooling oracles (NCHW), in plain NumPy.

Each takes ``layout="NHWC"`` too: its arrays are then viewed as NCHW, computed
on, and the results viewed back (2-D images have no channel axis and ignore it).

Max pooling: a padded position never wins (as if padded with -inf); a NaN in
a window makes that output NaN; the winner of a tie is the first maximum in
row-major window order, and so is the position that receives its gradient.
Indices are flat positions ``h * W + w`` within each (H, W) plane.

Average pooling: the window sum divided by the number of window taps inside
the padded input (``count_include_pad=True``, padded zeros count; the window
size unless a ceil-mode window reaches past the padding) or inside the input
(``count_include_pad=False``), as PyTorch defines it, and ONNX with dilation.
"""
import numpy as np

from .._geometry import batch_views, pool_geometry
from .._validation import as_array, check_layout, check_shape, float_dtype, from_nchw, to_nchw


def _prepare(x, size, stride, padding, dilation, strict, ceil_mode, layout):
    """x (given in ``layout``) as 4-D NCHW, the geometry, and the function that gives a
    result ``x``'s number of axes and ``layout``."""
    x = to_nchw(as_array(x, "x"), check_layout(layout))
    x4, _, restore = batch_views(x.astype(float_dtype(x)))
    g = pool_geometry(x4.shape, size, stride, padding, dilation, strict, ceil_mode)
    return x4, g, lambda out: from_nchw(restore(out), layout)


def _taps(g, i, j):
    """Input (row, col) of every window tap of output (i, j), in row-major order."""
    (sh, sw), (dh, dw) = g.stride, g.dilation
    top, left = g.pad[0], g.pad[2]
    for u in range(g.fh):
        for v in range(g.fw):
            yield i * sh - top + u * dh, j * sw - left + v * dw


def max_pool2d_naive(x, size, *, stride=None, padding=0, dilation=1, ceil_mode=False,
                     strict=True, return_indices=False, layout="NCHW"):
    """Max pooling by loops over output positions and window taps.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W), (C, H, W) or (H, W)
    size, stride, padding, dilation, ceil_mode, strict, return_indices
        As in :func:`pyconv.max_pool2d`.

    Returns
    -------
    out : ndarray, shape (N, C, OH, OW) (fewer leading axes for a 2-D or 3-D ``x``)
    indices : ndarray of int64, same shape, only if ``return_indices``

    Examples
    --------
    >>> I = [[1, 2, 3, 4], [4, 3, 2, 1], [-1, 0, 1, 2], [0, -2, 4, 0]]
    >>> max_pool2d_naive(I, 3, stride=3, padding=1)
    array([[4., 4.],
           [0., 4.]])
    """
    x4, g, restore = _prepare(x, size, stride, padding, dilation, strict, ceil_mode, layout)
    out = np.empty(g.out_shape, dtype=x4.dtype)
    idx = np.empty(g.out_shape, dtype=np.int64)
    for i in range(g.oh):
        for j in range(g.ow):
            best = best_idx = None
            for r, c in _taps(g, i, j):
                if not (0 <= r < g.h and 0 <= c < g.w):
                    continue  # padding never wins
                v = x4[:, :, r, c]
                if best is None:
                    best, best_idx = v.copy(), np.full(v.shape, r * g.w + c)
                    continue
                # first maximum wins; the first NaN wins and then stays
                take = ((v > best) | np.isnan(v)) & ~np.isnan(best)
                best[take] = v[take]
                best_idx[take] = r * g.w + c
            out[:, :, i, j], idx[:, :, i, j] = best, best_idx
    if return_indices:
        return restore(out), restore(idx)
    return restore(out)


def max_pool2d_backward_naive(dout, x, size, *, stride=None, padding=0, dilation=1,
                              ceil_mode=False, indices=None, layout="NCHW"):
    """Gradient of :func:`max_pool2d_naive`: each output's gradient goes to its winner.

    Parameters
    ----------
    dout : ndarray, the shape of the forward output
    x : ndarray, the forward input
    size, stride, padding, dilation, ceil_mode
        As in the forward call.
    indices : ndarray of int, optional
        The forward call's indices; recomputed from ``x`` when None.

    Returns
    -------
    dx : ndarray, the shape of ``x``
    """
    x4, g, restore = _prepare(x, size, stride, padding, dilation, False, ceil_mode, layout)
    dout = to_nchw(as_array(dout, "dout"), layout)
    if indices is not None:
        indices = to_nchw(as_array(indices, "indices"), layout)
    if indices is None:
        indices = max_pool2d_naive(x4, size, stride=stride, padding=padding,
                                   dilation=dilation, ceil_mode=ceil_mode, strict=False,
                                   return_indices=True)[1]
    idx = np.asarray(indices).reshape(g.n * g.c, -1)
    forward_shape = g.out_shape[4 - np.ndim(x):]
    if indices is not None:
        check_shape(as_array(indices, "indices"), forward_shape, "indices",
                    "the forward output's shape")
    d = check_shape(as_array(dout, "dout"), forward_shape, "dout", "the forward output's shape")
    d = d.astype(x4.dtype).reshape(g.n * g.c, -1)
    dx = np.zeros((g.n * g.c, g.h * g.w), dtype=x4.dtype)
    for plane in range(g.n * g.c):
        np.add.at(dx[plane], idx[plane], d[plane])
    return restore(dx.reshape(x4.shape))


def _divisor(g, i, j, count_include_pad):
    top, bottom, left, right = g.pad if count_include_pad else (0, 0, 0, 0)
    return sum(-top <= r < g.h + bottom and -left <= c < g.w + right
               for r, c in _taps(g, i, j))


def avg_pool2d_naive(x, size, *, stride=None, padding=0, dilation=1, ceil_mode=False,
                     count_include_pad=True, strict=True, layout="NCHW"):
    """Average pooling by loops over output positions and window taps.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W), (C, H, W) or (H, W)
    size, stride, padding, dilation, ceil_mode, count_include_pad, strict
        As in :func:`pyconv.avg_pool2d`.

    Returns
    -------
    ndarray, shape (N, C, OH, OW) (fewer leading axes for a 2-D or 3-D ``x``)
    """
    x4, g, restore = _prepare(x, size, stride, padding, dilation, strict, ceil_mode, layout)
    out = np.zeros(g.out_shape, dtype=x4.dtype)
    for i in range(g.oh):
        for j in range(g.ow):
            for r, c in _taps(g, i, j):
                if 0 <= r < g.h and 0 <= c < g.w:
                    out[:, :, i, j] += x4[:, :, r, c]
            out[:, :, i, j] /= _divisor(g, i, j, count_include_pad)
    return restore(out)


def avg_pool2d_backward_naive(dout, x_shape, size, *, stride=None, padding=0, dilation=1,
                              ceil_mode=False, count_include_pad=True, layout="NCHW"):
    """Gradient of :func:`avg_pool2d_naive`: each output's gradient spread over its window.

    Parameters
    ----------
    dout : ndarray, the shape of the forward output
    x_shape : tuple of int
        Shape of the forward input.
    size, stride, padding, dilation, ceil_mode, count_include_pad
        As in the forward call.

    Returns
    -------
    dx : ndarray of shape ``x_shape``
    """
    d = to_nchw(as_array(dout, "dout"), check_layout(layout))
    dtype = float_dtype(d)
    if not isinstance(x_shape, (tuple, list)):
        raise TypeError(f"x_shape must be a tuple of ints, got {x_shape!r}")
    x4, g, restore = _prepare(np.empty(x_shape, dtype), size, stride, padding, dilation, False,
                              ceil_mode, layout)
    check_shape(d, g.out_shape[4 - len(x_shape):], "dout", "the forward output's shape")
    d4 = d.astype(dtype).reshape(g.out_shape)
    dx = np.zeros(x4.shape, dtype=dtype)
    for i in range(g.oh):
        for j in range(g.ow):
            share = d4[:, :, i, j] / _divisor(g, i, j, count_include_pad)
            for r, c in _taps(g, i, j):
                if 0 <= r < g.h and 0 <= c < g.w:
                    dx[:, :, r, c] += share
    return restore(dx)
