"""Max and average pooling (NCHW, or channels last with ``layout="NHWC"``), forward and
backward.

Semantics are those of the oracles in :mod:`pyconv.reference.pool`: a padded
position never wins a max, a NaN in a window gives NaN (with the first NaN's
index), ties go to the first maximum in row-major window order, and average
pooling divides by the window size or, with ``count_include_pad=False``, by
the number of real elements in the window, as PyTorch does. Paddings may
differ on each side (TensorFlow's and ONNX's explicit paddings), ``"same"``
follows TensorFlow at any stride, ``ceil_mode`` PyTorch, and average pooling
takes ONNX's dilation.
"""
import numpy as np

from . import _pool
from ._geometry import batch_views, pool_geometry, remembered
from ._validation import (as_array, as_kernel_input, check_int, check_layout, check_shape, empty,
                          float_dtype, from_nchw, to_nchw)
from .threads import resolve_num_threads


# a network pools the same shapes again and again
_geometry = remembered(pool_geometry)


def _kernel_geometry(g):
    (sh, sw), (dh, dw), (top, bottom, left, right) = g.stride, g.dilation, g.pad
    return g.fh, g.fw, sh, sw, dh, dw, top, left, bottom, right


def _prepare(x, size, stride, padding, dilation, strict, ceil_mode, layout):
    """Check a pooling call on ``x`` (in ``layout``).

    Returns x as 4-D in the kernels' layout (NCHW, or NHWC for a 3- or 4-D x in
    NHWC: a view, not yet converted), the dtype, the geometry (NCHW sizes),
    the 4-D output shape in that layout, whether it is NHWC, and the function
    that removes the axes a 2- or 3-D ``x`` lacks.
    """
    x = as_array(x, "x")
    nhwc = check_layout(layout) == "NHWC" and x.ndim > 2
    dtype = float_dtype(x)
    x4, _, restore = batch_views(to_nchw(x, layout))
    g = _geometry(x4.shape, size, stride, padding, dilation, strict, ceil_mode)
    if nhwc:
        return from_nchw(x4, "NHWC"), dtype, g, (g.n, g.oh, g.ow, g.c), nhwc, restore
    return x4, dtype, g, g.out_shape, nhwc, restore


def _forward_shaped(arr, name, out4, ndim, dtype):
    """``arr`` (dout or indices, of the forward output's shape ``out4`` less the axes an
    ``ndim``-D input lacks) as a C-contiguous 4-D ``dtype`` array."""
    check_shape(arr, out4[4 - ndim:], name, "the forward output's shape")
    return as_kernel_input(arr.reshape(out4), dtype, name)


def max_pool2d(x, size, *, stride=None, padding=0, dilation=1, ceil_mode=False, strict=True,
               return_indices=False, layout="NCHW", num_threads=None):
    """Max pooling over windows of each (H, W) plane.

    Parameters
    ----------
    x : array_like, shape (N, C, H, W), (C, H, W) or (H, W) (see ``layout``)
        Real numbers; float32 stays float32, integers compute in float64.
    size : int or (int, int)
        Window (FH, FW).
    stride : int or (int, int), optional
        Step between windows; None means ``size``.
    padding : int, (int, int), ((int, int), (int, int)), "valid" or "same", default 0
        Padding on each side, (h, w) on both sides of each axis, or
        ``((top, bottom), (left, right))``, each at most half the window
        (PyTorch's rule); padded positions never win. ``"same"`` is
        TensorFlow's: ``OH = ceil(H / sh)``, the total padding
        ``max((OH - 1)*sh + (FH - 1)*dh + 1 - H, 0)`` split with the odd one
        at the bottom (likewise W), at any stride and dilation.
    dilation : int or (int, int), default 1
        Spacing between window taps.
    ceil_mode : bool, default False
        Round the output size up, as PyTorch's ``ceil_mode``: the last
        window may reach past the padding (its taps there are ignored), and
        one that would start in the bottom or right padding is dropped.
        Not with ``padding="same"``.
    strict : bool, default True
        If True, a window that does not tile the padded input is an error;
        if False, the output size is floored (PyTorch's semantics). No
        effect with ``ceil_mode`` or ``"same"``.
    return_indices : bool, default False
        Also return where each maximum is.
    layout : {"NCHW", "NHWC"}, default "NCHW"
        The axes of ``x`` and of the results: NHWC is channels last, (N, H, W,
        C) or (H, W, C) in and (N, OH, OW, C) or (OH, OW, C) out, computed by
        kernels that read and write that layout in place, equal bit for bit
        to the NCHW results transposed. A 2-D ``x`` has no channel axis and
        is the same in both.
    num_threads : int, optional
        OpenMP threads; see :func:`pyconv.resolve_num_threads`.

    Returns
    -------
    out : ndarray, shape (N, C, OH, OW) (fewer leading axes for a 2-D or 3-D ``x``)
        ``OH = (H + pt + pb - dh*(FH - 1) - 1) / sh + 1`` (floored, or with
        ``ceil_mode`` ceiled), and likewise ``OW``; see
        :func:`pyconv.pool_output_size`.
    indices : ndarray of int64, shape of ``out``, only if ``return_indices``
        Flat index ``h * W + w`` of each maximum within its (H, W) plane, as
        PyTorch gives it.

    Raises
    ------
    ValueError
        If ``x`` is not 2-, 3- or 4-D, a padding exceeds half the window,
        ``ceil_mode`` comes with ``"same"``, or
        (:class:`pyconv.InvalidConfigError`) the windows do not fit.
    TypeError
        If ``x`` is not real-valued, a size is not an int or ``ceil_mode``
        not a bool.
    KeyboardInterrupt
        On Ctrl-C during the call (README: "Interrupting a call").

    Notes
    -----
    ``out[n, c, i, j]`` is the maximum of ``x[n, c, i*sh - pt + u*dh, j*sw - pl + v*dw]``
    over the window taps inside the input. A NaN in the window gives NaN;
    among equal maxima the first in row-major window order wins (and gets
    the gradient in :func:`max_pool2d_backward`).

    Examples
    --------
    The CS231n handout's 4x4 input, 3x3 windows at stride 3 with padding 1:

    >>> import pyconv
    >>> I = [[1, 2, 3, 4], [4, 3, 2, 1], [-1, 0, 1, 2], [0, -2, 4, 0]]
    >>> pyconv.max_pool2d(I, 3, stride=3, padding=1)
    array([[4., 4.],
           [0., 4.]])
    >>> out, idx = pyconv.max_pool2d(I, 2, return_indices=True)
    >>> idx
    array([[ 4,  3],
           [ 9, 14]])

    TensorFlow's "same" at stride 2 pads 1 at the bottom and right here;
    PyTorch's ceil mode gives the same size without padding:

    >>> x = [[1, 2, 3], [4, 5, 6], [7, 8, 9]]
    >>> pyconv.max_pool2d(x, 2, padding="same")
    array([[5., 6.],
           [8., 9.]])
    >>> pyconv.max_pool2d(x, 2, ceil_mode=True)
    array([[5., 6.],
           [8., 9.]])
    >>> pyconv.max_pool2d(x, 2, stride=1, padding=((1, 0), (0, 0)))
    array([[2., 3.],
           [5., 6.],
           [8., 9.]])

    Channels last, (H, W, C): indices still count pixels of each channel's plane:

    >>> xl = np.stack([x, np.negative(x)], axis=-1)
    >>> out, idx = pyconv.max_pool2d(xl, 2, stride=1, return_indices=True, layout="NHWC")
    >>> out[..., 1]
    array([[-1., -2.],
           [-4., -5.]])
    >>> idx[..., 1]
    array([[0, 1],
           [3, 4]])
    """
    x4, dtype, g, out4, nhwc, restore = _prepare(x, size, stride, padding, dilation, strict,
                                                 ceil_mode, layout)
    out = empty(out4, dtype, "the pooled output", align=64 if nhwc else None)
    indices = empty(out4, np.int64, "the indices") if return_indices else None
    if out.size:
        kernel = _pool.max_pool2d_nhwc if nhwc else _pool.max_pool2d
        kernel(as_kernel_input(x4, dtype, "x"), out, indices, _kernel_geometry(g),
               resolve_num_threads(num_threads))
    if return_indices:
        return restore(out), restore(indices)
    return restore(out)


def avg_pool2d(x, size, *, stride=None, padding=0, dilation=1, ceil_mode=False,
               count_include_pad=True, strict=True, layout="NCHW", num_threads=None):
    """Average pooling over windows of each (H, W) plane.

    Parameters
    ----------
    x : array_like, shape (N, C, H, W), (C, H, W) or (H, W) (see ``layout``)
        Real numbers; float32 stays float32, integers compute in float64.
    size : int or (int, int)
        Window (FH, FW).
    stride : int or (int, int), optional
        Step between windows; None means ``size``.
    padding : int, (int, int), ((int, int), (int, int)), "valid" or "same", default 0
        Zero padding, in the forms and within the limits of :func:`max_pool2d`.
    dilation : int or (int, int), default 1
        Spacing between window taps, as ONNX AveragePool's ``dilations``.
    ceil_mode : bool, default False
        As in :func:`max_pool2d`.
    count_include_pad : bool, default True
        Divide by the number of window taps inside the padded input (FH*FW,
        unless a ``ceil_mode`` window reaches past the padding: PyTorch's
        divisor), or, if False, by the number of taps inside the input.
    strict : bool, default True
        As in :func:`max_pool2d`.
    layout : {"NCHW", "NHWC"}, default "NCHW"
        As in :func:`max_pool2d` (``dout`` and the result too).
    num_threads : int, optional
        OpenMP threads; see :func:`pyconv.resolve_num_threads`.

    Returns
    -------
    ndarray, shape (N, C, OH, OW) (fewer leading axes for a 2-D or 3-D ``x``)

    Raises
    ------
    ValueError, TypeError
        As :func:`max_pool2d`.
    KeyboardInterrupt
        On Ctrl-C during the call (README: "Interrupting a call").

    Notes
    -----
    ``out[n, c, i, j]`` is the sum of ``x[n, c, i*sh - pt + u*dh, j*sw - pl + v*dw]``
    over the window taps inside the input, divided by the divisor above:
    with ``count_include_pad`` the taps inside the padded input (rows
    ``-pt <= r < H + pb``, likewise columns), which is PyTorch's divisor in
    ceil mode and ONNX AveragePool's with dilation. The window sum is formed
    in row-major window order, then divided, so results equal the oracle
    :func:`pyconv.reference.avg_pool2d_naive` bit for bit.

    Examples
    --------
    >>> import pyconv
    >>> x = [[1, 2, 3, 4], [5, 6, 7, 8]]
    >>> pyconv.avg_pool2d(x, 2)
    array([[3.5, 5.5]])
    >>> pyconv.avg_pool2d([[4, 8]], (1, 3), stride=1, padding=(0, 1), count_include_pad=False)
    array([[6., 6.]])

    In ceil mode the last window of a 3-wide row holds one element, and only
    it counts, as in PyTorch:

    >>> pyconv.avg_pool2d([[2, 4, 9]], (1, 2), ceil_mode=True)
    array([[3., 9.]])
    >>> pyconv.avg_pool2d([[1, 2, 3, 4, 5]], (1, 2), stride=1, dilation=(1, 3))
    array([[2.5, 3.5]])
    >>> pyconv.avg_pool2d(np.arange(8.0).reshape(1, 2, 2, 2), 2, layout="NHWC")
    array([[[[3., 4.]]]])
    """
    x4, dtype, g, out4, nhwc, restore = _prepare(x, size, stride, padding, dilation, strict,
                                                 ceil_mode, layout)
    out = empty(out4, dtype, "the pooled output", align=64 if nhwc else None)
    if out.size:
        kernel = _pool.avg_pool2d_nhwc if nhwc else _pool.avg_pool2d
        kernel(as_kernel_input(x4, dtype, "x"), out, _kernel_geometry(g),
               bool(count_include_pad), resolve_num_threads(num_threads))
    return restore(out)


def _check_indices(indices):
    indices = as_array(indices, "indices")
    if indices.dtype.kind not in "iu":
        raise TypeError(f"indices must be integers (as max_pool2d(..., return_indices=True) "
                        f"gives them), got dtype {indices.dtype}")
    return indices


def _outside_planes(indices, g):
    """The error for indices outside their planes (the kernel counts them as it goes)."""
    low, high = indices.min(), indices.max()
    return ValueError(f"indices must lie in [0, H*W) = [0, {g.h * g.w}) (flat positions "
                      f"in each {g.h}x{g.w} plane), got values from {low} to {high}")


def max_pool2d_backward(dout, x, size, *, stride=None, padding=0, dilation=1, ceil_mode=False,
                        indices=None, layout="NCHW", num_threads=None):
    """Gradient of :func:`max_pool2d` with respect to its input.

    Parameters
    ----------
    dout : array_like, the shape of the forward output
        Upstream gradient.
    x : array_like, shape (N, C, H, W), (C, H, W) or (H, W) (see ``layout``)
        The forward input.
    size, stride, padding, dilation, ceil_mode
        As in the forward call (the output size is floored, as with
        ``strict=False``, unless ``ceil_mode``).
    indices : array_like of int, optional
        The forward call's ``return_indices`` output; None recomputes the
        maxima from ``x``. Any flat index in [0, H*W) is accepted, so
        indices from another pooling of the same shape work too.
    layout : {"NCHW", "NHWC"}, default "NCHW"
        As in :func:`max_pool2d` (``dout`` and the result too).
    num_threads : int, optional
        OpenMP threads; see :func:`pyconv.resolve_num_threads`.

    Returns
    -------
    dx : ndarray, the shape of ``x``, of ``x``'s float dtype
        Each output's gradient added at its maximum; overlapping windows
        accumulate.

    Raises
    ------
    ValueError
        If ``dout`` or ``indices`` does not have the forward output's shape,
        or an index lies outside its plane.
    TypeError
        If an array is not real-valued or ``indices`` is not integer.
    KeyboardInterrupt
        On Ctrl-C during the call (README: "Interrupting a call").

    Examples
    --------
    >>> import pyconv
    >>> x = [[1, 5], [7, 3]]
    >>> pyconv.max_pool2d_backward([[10]], x, 2)
    array([[ 0.,  0.],
           [10.,  0.]])
    >>> pyconv.max_pool2d_backward([[[10, 20]]], [[[1, 0], [5, 0]], [[7, 9], [3, 0]]], 2,
    ...                            layout="NHWC")[..., 1]
    array([[ 0.,  0.],
           [20.,  0.]])
    """
    x = as_array(x, "x")
    x4, dtype, g, out4, nhwc, restore = _prepare(x, size, stride, padding, dilation, False,
                                                 ceil_mode, layout)
    d4 = _forward_shaped(as_array(dout, "dout"), "dout", out4, x.ndim, dtype)
    if indices is not None:
        indices = _check_indices(indices)
        idx = _forward_shaped(indices, "indices", out4, x.ndim, np.int64)
    dx = empty(x4.shape, dtype, "dx", align=64 if nhwc else None)
    if dx.size == 0:
        return restore(dx)
    n_threads = resolve_num_threads(num_threads)
    if indices is not None:
        kernel = _pool.max_pool2d_backward_nhwc if nhwc else _pool.max_pool2d_backward
        if kernel(d4, idx, dx, _kernel_geometry(g), n_threads):
            raise _outside_planes(indices, g)
    else:
        kernel = (_pool.max_pool2d_backward_recompute_nhwc if nhwc
                  else _pool.max_pool2d_backward_recompute)
        kernel(d4, as_kernel_input(x4, dtype, "x"), dx, _kernel_geometry(g), n_threads)
    return restore(dx)


def _check_shape(x_shape):
    if not isinstance(x_shape, (tuple, list)) or len(x_shape) not in (2, 3, 4):
        raise ValueError(f"x_shape must be the forward input's shape, (N, C, H, W), (C, H, W) "
                         f"or (H, W) (channels last with layout='NHWC'), got {x_shape!r}")
    return tuple(check_int(s, "x_shape entries", 0) for s in x_shape)


def avg_pool2d_backward(dout, x_shape, size, *, stride=None, padding=0, dilation=1,
                        ceil_mode=False, count_include_pad=True, layout="NCHW", num_threads=None):
    """Gradient of :func:`avg_pool2d` with respect to its input.

    Parameters
    ----------
    dout : array_like, the shape of the forward output
        Upstream gradient; its float dtype is the result's.
    x_shape : tuple of int
        Shape of the forward input: (N, C, H, W), (C, H, W) or (H, W), or
        (N, H, W, C), (H, W, C) with ``layout="NHWC"``.
    size, stride, padding, dilation, ceil_mode, count_include_pad
        As in the forward call (the output size is floored, as with
        ``strict=False``, unless ``ceil_mode``).
    layout : {"NCHW", "NHWC"}, default "NCHW"
        As in :func:`max_pool2d` (``dout`` and the result too).
    num_threads : int, optional
        OpenMP threads; see :func:`pyconv.resolve_num_threads`.

    Returns
    -------
    dx : ndarray of shape ``x_shape``
        Each output's gradient divided by its divisor and added to every
        real element of its window.

    Raises
    ------
    ValueError
        If ``dout`` does not have the forward output's shape, or ``x_shape``
        is not a 2-, 3- or 4-D shape.
    TypeError
        If ``dout`` is not real-valued.
    KeyboardInterrupt
        On Ctrl-C during the call (README: "Interrupting a call").

    Examples
    --------
    >>> import pyconv
    >>> pyconv.avg_pool2d_backward([[8]], (2, 2), 2)
    array([[2., 2.],
           [2., 2.]])
    >>> pyconv.avg_pool2d_backward([[6, 9]], (1, 3), (1, 2), ceil_mode=True)
    array([[3., 3., 9.]])
    >>> pyconv.avg_pool2d_backward([[[8, 4]]], (2, 2, 2), 2, layout="NHWC")[0]
    array([[2., 1.],
           [2., 1.]])
    """
    x_shape = _check_shape(x_shape)
    d = as_array(dout, "dout")
    dtype = float_dtype(d)
    x4, _, g, out4, nhwc, restore = _prepare(np.broadcast_to(np.zeros((), dtype), x_shape), size,
                                             stride, padding, dilation, False, ceil_mode, layout)
    d4 = _forward_shaped(d, "dout", out4, len(x_shape), dtype)
    dx = empty(x4.shape, dtype, "dx", align=64 if nhwc else None)
    if dx.size == 0:
        return restore(dx)
    n_threads = resolve_num_threads(num_threads)
    kernel = _pool.avg_pool2d_backward_nhwc if nhwc else _pool.avg_pool2d_backward
    kernel(d4, dx, _kernel_geometry(g), bool(count_include_pad), n_threads)
    return restore(dx)
