"""Convolution oracles (cross-correlation, NCHW), in plain NumPy.

Each takes ``layout="NHWC"`` too: its arrays are then viewed as NCHW, computed
on, and the results viewed back (2-D images have no channel axis and ignore it).

Semantics: ``out[n, k, i, j] = b[k] + sum over c, u, v of
w[k, c, u, v] * xp[n, g*C/groups + c, i*sh + u*dh, j*sw + v*dw]`` where ``xp``
is ``x`` zero-padded and ``g = k // (K/groups)`` is the filter's group.
"""
import numpy as np

from .._geometry import batch_views, conv_geometry
from .._validation import (as_array, check_layout, check_need, check_shape, float_dtype, from_nchw,
                           to_nchw)


def _prepare(x, w, b, stride, padding, dilation, groups, strict, layout):
    """x (given in ``layout``) as NCHW, and the geometry."""
    x = to_nchw(as_array(x, "x"), check_layout(layout))
    w = as_array(w, "w")
    arrays = [x, w] if b is None else [x, w, as_array(b, "b", ndim=1)]
    dtype = float_dtype(*arrays)
    x4, w4, restore = batch_views(x.astype(dtype), w.astype(dtype))
    g = conv_geometry(x4.shape, w4.shape, stride, padding, dilation, groups, strict, layout)
    bias = np.zeros(g.k, dtype) if b is None else np.asarray(b, dtype)
    if bias.shape != (g.k,):
        raise ValueError(f"b must have shape ({g.k},), got {bias.shape}")
    top, bottom, left, right = g.pad
    xp = np.pad(x4, ((0, 0), (0, 0), (top, bottom), (left, right)))
    return x4, w4, bias, xp, g, restore


def _window(xp, g, n, k, i, j):
    """The input patch filter ``k`` sees at output (i, j) of image ``n``."""
    cg = g.c // g.groups
    first = (k // (g.k // g.groups)) * cg
    (sh, sw), (dh, dw) = g.stride, g.dilation
    rows = slice(i * sh, i * sh + dh * (g.fh - 1) + 1, dh)
    cols = slice(j * sw, j * sw + dw * (g.fw - 1) + 1, dw)
    return first, rows, cols, xp[n, first:first + cg, rows, cols]


def conv2d_naive(x, w, b=None, *, stride=1, padding=0, dilation=1, groups=1, strict=True,
                 layout="NCHW"):
    """2-D cross-correlation by explicit loops over every output element.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W), (C, H, W) or (H, W)
    w : ndarray, shape (K, C/groups, FH, FW), or (FH, FW) with a 2-D ``x``
    b : ndarray, shape (K,), optional
    stride, padding, dilation, groups, strict
        As in :func:`pyconv.conv2d`.

    Returns
    -------
    ndarray, shape (N, K, OH, OW) (fewer leading axes for a 2-D or 3-D ``x``)

    Examples
    --------
    >>> I = [[1, 2, 3, 4], [4, 3, 2, 1], [-1, 0, 1, 2], [0, -2, 4, 0]]
    >>> conv2d_naive(I, [[1, -1], [0, 2]])
    array([[ 5.,  3.,  1.],
           [ 1.,  3.,  5.],
           [-5.,  7., -1.]])
    """
    _, w4, bias, xp, g, restore = _prepare(x, w, b, stride, padding, dilation, groups, strict,
                                           layout)
    out = np.empty(g.out_shape, dtype=xp.dtype)
    for n in range(g.n):
        for k in range(g.k):
            for i in range(g.oh):
                for j in range(g.ow):
                    patch = _window(xp, g, n, k, i, j)[3]
                    out[n, k, i, j] = np.sum(patch * w4[k]) + bias[k]
    return from_nchw(restore(out), layout)


def conv2d_im2col(x, w, b=None, *, stride=1, padding=0, dilation=1, groups=1, strict=True,
                  layout="NCHW"):
    """2-D cross-correlation as im2col (strided window view) and a matrix product.

    Same parameters and result as :func:`conv2d_naive`; fast enough to be the
    benchmark's NumPy baseline.
    """
    _, w4, bias, xp, g, restore = _prepare(x, w, b, stride, padding, dilation, groups, strict,
                                           layout)
    (sh, sw), (dh, dw) = g.stride, g.dilation
    windows = np.lib.stride_tricks.sliding_window_view(
        xp, (dh * (g.fh - 1) + 1, dw * (g.fw - 1) + 1), axis=(2, 3))
    # (N, C, OH, OW, FH, FW) after taking every stride-th window and dilation-th tap
    cols = windows[:, :, ::sh, ::sw, ::dh, ::dw][:, :, :g.oh, :g.ow]
    cg, kg = g.c // g.groups, g.k // g.groups
    out = np.empty((g.n, g.oh, g.ow, g.k), dtype=xp.dtype)
    for grp in range(g.groups):
        patch = cols[:, grp * cg:(grp + 1) * cg].transpose(0, 2, 3, 1, 4, 5)
        patch = patch.reshape(g.n, g.oh, g.ow, cg * g.fh * g.fw)
        filters = w4[grp * kg:(grp + 1) * kg].reshape(kg, -1)
        out[..., grp * kg:(grp + 1) * kg] = patch @ filters.T
    out += bias
    return from_nchw(restore(np.ascontiguousarray(out.transpose(0, 3, 1, 2))), layout)


def conv2d_backward_naive(dout, x, w, *, stride=1, padding=0, dilation=1, groups=1,
                          layout="NCHW", need=("dx", "dw", "db")):
    """Gradients of :func:`conv2d_naive` by explicit loops.

    Parameters
    ----------
    dout : ndarray, the shape of the forward output
        Gradient of the loss with respect to the convolution's output.
    x, w, stride, padding, dilation, groups, layout
        As in the forward call.
    need : sequence of {"dx", "dw", "db"}, default all three
        The gradients to compute; the others are returned as None.

    Returns
    -------
    dx : ndarray, the shape of ``x``, or None
    dw : ndarray, the shape of ``w``, or None
    db : ndarray, shape (K,), or None
    """
    need = check_need(need)
    x4, w4, _, xp, g, _ = _prepare(x, w, None, stride, padding, dilation, groups, False, layout)
    x = to_nchw(as_array(x, "x"), layout)
    d = check_shape(to_nchw(as_array(dout, "dout"), layout), g.out_shape[4 - np.ndim(x):], "dout",
                    "the forward output's shape")
    d4 = d.astype(xp.dtype).reshape(g.out_shape)
    dxp = np.zeros_like(xp)
    dw = np.zeros_like(w4)
    for n in range(g.n):
        for k in range(g.k):
            for i in range(g.oh):
                for j in range(g.ow):
                    first, rows, cols, patch = _window(xp, g, n, k, i, j)
                    grad = d4[n, k, i, j]
                    dw[k] += grad * patch
                    dxp[n, first:first + patch.shape[0], rows, cols] += grad * w4[k]
    top, _, left, _ = g.pad
    dx = dxp[:, :, top:top + g.h, left:left + g.w]
    db = d4.sum(axis=(0, 2, 3))
    return _needed(need, from_nchw(dx.reshape(np.shape(x)), layout), dw.reshape(np.shape(w)), db)


def _needed(need, dx, dw, db):
    """(dx, dw, db) with those not in ``need`` replaced by None."""
    return tuple(grad if name in need else None
                 for name, grad in (("dx", dx), ("dw", dw), ("db", db)))


def conv2d_backward_im2col(dout, x, w, *, stride=1, padding=0, dilation=1, groups=1,
                           layout="NCHW", need=("dx", "dw", "db")):
    """Gradients of :func:`conv2d_im2col` by matrix products (tensordot over windows).

    Same parameters and results as :func:`conv2d_backward_naive`; fast enough
    to be the benchmark's NumPy baseline: ``dw`` contracts ``dout`` with the
    window view of ``x``, ``dx`` scatters ``dout @ w`` back tap by tap; a
    gradient not in ``need`` is not computed.
    """
    need = check_need(need)
    _, w4, _, xp, g, _ = _prepare(x, w, None, stride, padding, dilation, groups, False, layout)
    x = to_nchw(as_array(x, "x"), layout)
    d4 = to_nchw(np.asarray(dout, dtype=xp.dtype), layout).reshape(g.out_shape)
    (sh, sw), (dh, dw) = g.stride, g.dilation
    windows = np.lib.stride_tricks.sliding_window_view(
        xp, (dh * (g.fh - 1) + 1, dw * (g.fw - 1) + 1), axis=(2, 3))
    cols = windows[:, :, ::sh, ::sw, ::dh, ::dw][:, :, :g.oh, :g.ow]  # (N, C, OH, OW, FH, FW)
    cg, kg = g.c // g.groups, g.k // g.groups
    dxp = np.zeros_like(xp)
    dw4 = np.empty_like(w4)
    for grp in range(g.groups):
        chans, filters = slice(grp * cg, (grp + 1) * cg), slice(grp * kg, (grp + 1) * kg)
        d = d4[:, filters]
        if "dw" in need:
            dw4[filters] = np.tensordot(d, cols[:, chans], axes=([0, 2, 3], [0, 2, 3]))
        if "dx" not in need:
            continue
        dcols = np.tensordot(d, w4[filters], axes=([1], [0]))  # (N, OH, OW, cg, FH, FW)
        for u in range(g.fh):
            for v in range(g.fw):
                rows = slice(u * dh, u * dh + sh * (g.oh - 1) + 1, sh)
                cols_ = slice(v * dw, v * dw + sw * (g.ow - 1) + 1, sw)
                dxp[:, chans, rows, cols_] += dcols[..., u, v].transpose(0, 3, 1, 2)
    top, _, left, _ = g.pad
    dx = dxp[:, :, top:top + g.h, left:left + g.w]
    db = d4.sum(axis=(0, 2, 3)) if "db" in need else None
    return _needed(need, from_nchw(dx.reshape(np.shape(x)), layout), dw4.reshape(np.shape(w)), db)
