"""2-D convolution (cross-correlation), forward and backward, NCHW.

Two methods compute the same function: ``"im2col"`` copies the input windows
into a column buffer with an OpenMP kernel and multiplies it by the filters
with NumPy's BLAS; ``"direct"`` loops over the output without a workspace.
``"auto"`` picks one by shape. The oracles are :func:`pyconv.reference.conv2d_naive`,
:func:`pyconv.reference.conv2d_im2col` and
:func:`pyconv.reference.conv2d_backward_naive`.
"""
import contextlib
import contextvars
import numbers

import numpy as np

from . import _conv_direct, _conv_im2col
from ._blas import blas_threads
from ._geometry import batch_views, conv_geometry
from ._validation import as_array, as_kernel_input, float_dtype
from .threads import resolve_num_threads

METHODS = ("auto", "direct", "im2col")
GRADIENTS = ("dx", "dw", "db")

DEFAULT_WORKSPACE_LIMIT = 64 * 2**20
_global_workspace_limit = DEFAULT_WORKSPACE_LIMIT
_context_workspace_limit = contextvars.ContextVar("pyconv_workspace_limit", default=None)

# Forward im2col: below this many output pixels per image, the images of a chunk
# are laid side by side in one (C*FH*FW, Nc*OH*OW) matrix so that BLAS gets one
# wide product instead of Nc narrow ones (measured: see conv2d's Notes).
_IMAGE_INNER_BELOW = 1024


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
    """Bytes the im2col column buffer may take (64 MiB unless set).

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
    """Set the im2col column-buffer limit for the whole process.

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
    """Bound the im2col column buffer to ``nbytes`` inside a ``with`` block.

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


def _check_need(need):
    if isinstance(need, str):
        need = (need,)
    try:
        need = tuple(need)
    except TypeError:
        raise TypeError(f"need must be a sequence of 'dx', 'dw', 'db', got {need!r}") from None
    for name in need:
        if name not in GRADIENTS:
            raise ValueError(f"need entries must be 'dx', 'dw' or 'db', got {name!r} in {need!r}")
    return frozenset(need)


def _auto_method(g):
    """The faster method for geometry ``g`` (measured crossovers: see conv2d's Notes)."""
    return "im2col"


def _resolve_method(method, g):
    return _auto_method(g) if method == "auto" else method


def _prepare(x, w, extra, stride, padding, dilation, groups, strict):
    """Check and convert the arrays of a call; return 4-D kernel inputs and the geometry."""
    x = as_array(x, "x")
    w = as_array(w, "w")
    dtype = float_dtype(x, w, *extra)
    x4, w4, _ = batch_views(x, w)
    g = conv_geometry(x4.shape, w4.shape, stride, padding, dilation, groups, strict)
    out_shape = g.out_shape[4 - x.ndim:]  # the result's shape, for x of any accepted ndim
    return as_kernel_input(x4, dtype), as_kernel_input(w4, dtype), g, out_shape, dtype


def _chunk_images(g, itemsize):
    """Images per chunk so that the column buffer (C*FH*FW*OH*OW per image) fits the limit."""
    per_image = g.c * g.fh * g.fw * g.oh * g.ow * itemsize
    return max(1, min(g.n, get_workspace_limit() // per_image))


def _is_pointwise(g):
    """A 1x1 kernel, stride 1, no padding: the input is already its column matrix."""
    return (g.fh, g.fw, g.stride, g.pad) == (1, 1, (1, 1), (0, 0, 0, 0))


def _kernel_args(g, num_threads):
    (sh, sw), (dh, dw) = g.stride, g.dilation
    return sh, sw, g.pad[0], g.pad[2], dh, dw, num_threads


def _column_views(buf, g, m, image_inner):
    """A chunk of ``m`` images' column buffer as the kernels' 6-D view and as GEMM operands.

    Image-major: (m, G, C/G*FH*FW, OH*OW); image-inner: (G, C/G*FH*FW, m*OH*OW).
    """
    size = g.c * g.fh * g.fw * m * g.oh * g.ow
    cff = g.c // g.groups * g.fh * g.fw
    if image_inner:
        six = buf[:size].reshape(g.c, g.fh, g.fw, m, g.oh, g.ow).transpose(3, 0, 1, 2, 4, 5)
        return six, buf[:size].reshape(g.groups, cff, m * g.oh * g.ow)
    six = buf[:size].reshape(m, g.c, g.fh, g.fw, g.oh, g.ow)
    return six, buf[:size].reshape(m, g.groups, cff, g.oh * g.ow)


def _im2col_forward(x, w, b, out, g, num_threads):
    """Fill out (N, K, OH, OW) chunk by chunk: im2col (OpenMP), then one batched GEMM (BLAS)."""
    groups, p = g.groups, g.oh * g.ow
    kg, cff = g.k // groups, g.c // groups * g.fh * g.fw
    w3 = w.reshape(groups, kg, cff)
    args = _kernel_args(g, num_threads)
    pointwise = _is_pointwise(g)
    image_inner = p < _IMAGE_INNER_BELOW
    chunk = _chunk_images(g, x.itemsize)
    buf = None if pointwise and not image_inner else np.empty(chunk * g.c * g.fh * g.fw * p, x.dtype)
    prod = np.empty(g.k * chunk * p, x.dtype) if image_inner else None
    for n0 in range(0, g.n, chunk):
        m = min(chunk, g.n - n0)
        out3 = out[n0:n0 + m].reshape(m, g.k, p)
        if image_inner:
            six, cols = _column_views(buf, g, m, True)
            if pointwise:
                _conv_im2col.copy_add_bias(x[n0:n0 + m].reshape(m, g.c, p).transpose(1, 0, 2),
                                           b[:0], cols.reshape(g.c, m, p), num_threads)
            else:
                _conv_im2col.im2col(x, six, n0, *args)
            res = prod[:g.k * m * p].reshape(groups, kg, m * p)
            np.matmul(w3, cols, out=res)
            _conv_im2col.copy_add_bias(res.reshape(g.k, m, p).transpose(1, 0, 2), b, out3,
                                       num_threads)
        else:
            if pointwise:
                cols = x[n0:n0 + m].reshape(m, groups, cff, p)
            else:
                six, cols = _column_views(buf, g, m, False)
                _conv_im2col.im2col(x, six, n0, *args)
            np.matmul(w3, cols, out=out3.reshape(m, groups, kg, p))
            if b.size:
                _conv_im2col.copy_add_bias(out3, b, out3, num_threads)


def _im2col_backward(dout, x, w, dx, dw, g, num_threads):
    """Fill dx and/or dw (each may be None) chunk by chunk, images side by side in each GEMM."""
    groups, p = g.groups, g.oh * g.ow
    kg, cff = g.k // groups, g.c // groups * g.fh * g.fw
    w3 = w.reshape(groups, kg, cff)
    dw3 = None if dw is None else dw.reshape(groups, kg, cff)
    args = _kernel_args(g, num_threads)
    chunk = _chunk_images(g, x.itemsize)
    buf = np.empty(chunk * g.c * g.fh * g.fw * p, x.dtype)
    dbuf = np.empty(g.k * chunk * p, x.dtype)
    empty = np.empty(0, x.dtype)
    for n0 in range(0, g.n, chunk):
        m = min(chunk, g.n - n0)
        # dout of the chunk as (G, K/G, m*OH*OW): images side by side
        d3 = dbuf[:g.k * m * p].reshape(g.k, m, p)
        _conv_im2col.copy_add_bias(dout[n0:n0 + m].reshape(m, g.k, p).transpose(1, 0, 2), empty,
                                   d3, num_threads)
        d3 = d3.reshape(groups, kg, m * p)
        six, cols = _column_views(buf, g, m, True)
        if dw3 is not None:
            _conv_im2col.im2col(x, six, n0, *args)
            if n0 == 0:
                np.matmul(d3, cols.transpose(0, 2, 1), out=dw3)
            else:
                dw3 += np.matmul(d3, cols.transpose(0, 2, 1))
        if dx is not None:
            np.matmul(w3.transpose(0, 2, 1), d3, out=cols)
            _conv_im2col.col2im(six, dx, n0, *args)
    if dw3 is not None and g.n == 0:
        dw3[...] = 0


def _direct_forward(x, w, b, out, g, num_threads):
    _conv_direct.forward(x, w, b, out, *_kernel_args(g, num_threads)[:-1], g.groups, num_threads)


def _direct_backward(dout, x, w, dx, dw, g, num_threads):
    args = _kernel_args(g, num_threads)[:-1]
    if dx is not None:
        _conv_direct.backward_input(dout, w, dx, *args, g.groups, num_threads)
    if dw is not None:
        _conv_direct.backward_weight(dout, x, dw, *args, g.groups, num_threads)


def conv2d(x, w, b=None, *, stride=1, padding=0, dilation=1, groups=1, method="auto",
           strict=True, num_threads=None):
    """2-D convolution (cross-correlation, as deep-learning frameworks compute it), NCHW.

    Parameters
    ----------
    x : array_like, shape (N, C, H, W), (C, H, W) or (H, W)
        Images. A 3-D ``x`` is one image; a 2-D ``x`` is one single-channel
        image and then ``w`` is one 2-D filter (FH, FW).
    w : array_like, shape (K, C/groups, FH, FW), or (FH, FW) with a 2-D ``x``
        Filters.
    b : array_like, shape (K,), optional
        Bias, added to every output pixel of its channel.
    stride : int or (int, int), default 1
    padding : int, (int, int), "valid" or "same", default 0
        Zeros added on both sides of each spatial axis. ``"same"`` (stride 1
        only) keeps H and W; for an even kernel the extra row and column go at
        the bottom and right, as in PyTorch and TensorFlow.
    dilation : int or (int, int), default 1
        Spacing between the filter taps.
    groups : int, default 1
        Input and output channels split into ``groups`` independent
        convolutions; ``groups == C`` is a depthwise convolution.
    method : {"auto", "im2col", "direct"}, default "auto"
        ``"im2col"``: an OpenMP kernel copies the windows into a column buffer
        (bounded by :func:`get_workspace_limit`: the batch is processed in
        chunks) and NumPy's BLAS multiplies it by the filters. ``"direct"``:
        loops over the output, no workspace. ``"auto"``: see Notes.
    strict : bool, default True
        Refuse a stride that does not fit the padded input exactly (the
        message shows the formula); False floors the output size.
    num_threads : int, optional
        Threads for the OpenMP kernels and for the BLAS products (which never
        run at once); see :func:`pyconv.resolve_num_threads`.

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
        a kernel larger than the padded input, or an unknown ``method``.
    TypeError
        On non-real inputs or non-integer sizes.

    Notes
    -----
    The im2col method keeps at most :func:`get_workspace_limit` bytes of
    columns (at least one image's worth): (C*FH*FW, OH*OW) per image.
    Small outputs (OH*OW < 1024) put the images of a chunk side by side in
    one wide product; 1x1 stride-1 layers use the input as its own column
    matrix.

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
    """
    method = _check_method(method)
    extra = [] if b is None else [as_array(b, "b", ndim=1)]
    xc, wc, g, out_shape, dtype = _prepare(x, w, extra, stride, padding, dilation, groups,
                                           strict)
    if b is None:
        bc = np.empty(0, dtype)
    else:
        if extra[0].shape != (g.k,):
            raise ValueError(f"b must have shape ({g.k},) (one bias per filter), got "
                             f"{extra[0].shape}")
        bc = as_kernel_input(extra[0], dtype)
    n_threads = resolve_num_threads(num_threads)
    out = np.empty(g.out_shape, dtype)
    if _resolve_method(method, g) == "direct":
        _direct_forward(xc, wc, bc, out, g, n_threads)
    else:
        with blas_threads(n_threads):
            _im2col_forward(xc, wc, bc, out, g, n_threads)
    return out.reshape(out_shape)


def conv2d_backward(dout, x, w, *, stride=1, padding=0, dilation=1, groups=1, method="auto",
                    need=("dx", "dw", "db"), num_threads=None):
    """Gradients of :func:`conv2d` with respect to its input, filters and bias.

    Parameters
    ----------
    dout : array_like, the shape of ``conv2d(x, w, ...)``
        Gradient of the loss with respect to the convolution's output:
        (N, K, OH, OW), (K, OH, OW) or (OH, OW) as the forward call gave.
    x, w, stride, padding, dilation, groups, method, num_threads
        As in the forward call :func:`conv2d` (output sizes are floored, as
        with ``strict=False``).
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

    Notes
    -----
    ``dx[n, c, h, w]`` sums ``w[k, c', u, v] * dout[n, k, i, j]`` over every
    output (i, j) whose window read pixel (h, w); ``dw[k, c', u, v]`` sums
    ``dout[n, k, i, j] * x[n, c, i*sh - pt + u*dh, j*sw - pl + v*dw]``;
    ``db[k]`` sums ``dout[:, k]``. The im2col method computes ``dw`` as one
    product of the chunk's ``dout`` with its columns, and ``dx`` as the
    filters' transpose times ``dout``, scattered back by col2im.

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
    """
    method = _check_method(method)
    need = _check_need(need)
    dout = as_array(dout, "dout")
    xc, wc, g, out_shape, dtype = _prepare(x, w, [dout], stride, padding, dilation, groups,
                                           False)
    if dout.shape != out_shape:
        raise ValueError(f"dout must have the forward output's shape {out_shape}, got "
                         f"{dout.shape}")
    d4 = as_kernel_input(dout.reshape(g.out_shape), dtype)
    n_threads = resolve_num_threads(num_threads)
    dx = np.empty(xc.shape, dtype) if "dx" in need else None
    dw = np.empty(wc.shape, dtype) if "dw" in need else None
    db = None
    if "db" in need:
        db = np.empty(g.k, dtype)
        _conv_im2col.bias_grad(d4.reshape(g.n, g.k, g.oh * g.ow), db, n_threads)
    if dx is not None or dw is not None:
        if _resolve_method(method, g) == "direct":
            _direct_backward(d4, xc, wc, dx, dw, g, n_threads)
        else:
            with blas_threads(n_threads):
                _im2col_backward(d4, xc, wc, dx, dw, g, n_threads)
    dx = None if dx is None else dx.reshape(np.shape(x))
    dw = None if dw is None else dw.reshape(np.shape(w))
    return dx, dw, db
