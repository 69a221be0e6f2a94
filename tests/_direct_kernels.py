"""Calls of the direct convolution kernels, and their check against the oracles,
shared by the direct and depthwise kernel tests."""
import numpy as np

from pyconv import _conv_direct
from pyconv._geometry import conv_geometry
from pyconv.reference import conv2d_backward_naive, conv2d_im2col

from _helpers import assert_close


def kernel_args(x, w, options):
    g = conv_geometry(x.shape, w.shape, strict=False, **options)
    return g, (*g.stride, g.pad[0], g.pad[2], *g.dilation, g.groups)


def forward(x, w, b=None, num_threads=2, **options):
    g, args = kernel_args(x, w, options)
    out = np.full(g.out_shape, np.nan, x.dtype)
    bias = np.zeros(0, x.dtype) if b is None else b
    _conv_direct.forward(x, w, bias, out, *args, num_threads)
    return out


def backward(dout, x, w, num_threads=2, **options):
    _, args = kernel_args(x, w, options)
    dx = np.full(x.shape, np.nan, x.dtype)
    dw = np.full(w.shape, np.nan, x.dtype)
    _conv_direct.backward_input(dout, w, dx, *args, num_threads)
    _conv_direct.backward_weight(dout, x, dw, *args, num_threads)
    return dx, dw


def problem(x_shape, w_shape, dtype, seed=0, bias=True):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[0]).astype(dtype) if bias else None
    return x, w, b


def check_against_oracles(x, w, b, options, dtype, seed=1):
    """The forward and both gradients of the kernels against the oracles."""
    g, _ = kernel_args(x, w, options)
    assert_close(forward(x, w, b, **options), conv2d_im2col(x, w, b, strict=False, **options),
                 dtype)
    dout = np.random.default_rng(seed).standard_normal(g.out_shape).astype(dtype)
    dx, dw = backward(dout, x, w, **options)
    rdx, rdw, _ = conv2d_backward_naive(dout.astype(np.float64), x, w, **options)
    assert_close(dx, rdx, dtype)
    assert_close(dw, rdw, dtype)
