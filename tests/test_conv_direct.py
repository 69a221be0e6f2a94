"""The direct convolution kernels, called directly, against the NumPy oracles."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyconv import _conv_direct, gradcheck
from pyconv._geometry import conv_geometry
from pyconv.reference import conv2d_backward_naive, conv2d_im2col, conv2d_naive

from _helpers import DTYPES, assert_close

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


# (x shape, w shape, options): odd sizes, stride > kernel, asymmetric 'same'
# padding of even kernels, dilation, grouped and depthwise, batch 1,
# channels 1, 1x1, FH != FW, rows narrower and wider than a vector.
CASES = [
    ((2, 3, 7, 9), (4, 3, 3, 3), dict(padding=1)),
    ((1, 1, 28, 28), (8, 1, 5, 5), {}),
    ((1, 2, 8, 8), (5, 2, 2, 3), dict(stride=2, padding=(1, 0))),
    ((2, 3, 11, 13), (6, 3, 1, 1), dict(stride=3)),
    ((1, 2, 9, 10), (3, 2, 2, 2), dict(stride=4)),
    ((2, 4, 9, 11), (4, 1, 3, 3), dict(padding=1, groups=4)),
    ((1, 3, 10, 12), (6, 1, 3, 2), dict(stride=(2, 3), dilation=(2, 1), groups=3)),
    ((2, 6, 7, 9), (4, 3, 3, 3), dict(padding="same", groups=2)),
    ((2, 3, 7, 9), (5, 3, 2, 4), dict(padding="same")),
    ((1, 2, 8, 9), (3, 2, 4, 1), dict(padding="same", dilation=(1, 2))),
    ((1, 1, 5, 5), (1, 1, 1, 1), dict(stride=3)),
    ((1, 3, 12, 37), (5, 3, 5, 5), dict(padding=2)),
    ((1, 2, 6, 40), (3, 2, 3, 1), dict(stride=(1, 4), padding=(0, 3))),
    ((1, 5, 3, 70), (7, 5, 3, 3), dict(padding=(2, 1), dilation=2)),
    ((3, 8, 6, 6), (8, 1, 3, 3), dict(padding=4, groups=8)),
    # rows narrower than two vectors: 4 filters and two rows at a time, odd OH (16
    # images, so that each task is a band of several rows, not one)
    ((16, 3, 7, 9), (8, 3, 3, 3), dict(padding=1)),
    ((16, 2, 9, 5), (4, 2, 5, 3), dict(padding=(2, 1))),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("x_shape, w_shape, options", CASES)
def test_forward_matches_oracles(cpu_level, dtype, x_shape, w_shape, options):
    x, w, b = problem(x_shape, w_shape, dtype)
    out = forward(x, w, b, **options)
    assert_close(out, conv2d_im2col(x, w, b, strict=False, **options), dtype)
    assert_close(forward(x, w, **options),
                 conv2d_im2col(x, w, strict=False, **options), dtype)
    if out.size <= 2000:
        assert_close(out, conv2d_naive(x.astype(np.float64), w, b, strict=False, **options),
                     dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("x_shape, w_shape, options", CASES)
def test_backward_matches_oracle(cpu_level, dtype, x_shape, w_shape, options):
    x, w, _ = problem(x_shape, w_shape, dtype)
    g, _ = kernel_args(x, w, options)
    dout = np.random.default_rng(1).standard_normal(g.out_shape).astype(dtype)
    dx, dw = backward(dout, x, w, **options)
    rdx, rdw, _ = conv2d_backward_naive(dout.astype(np.float64), x, w, **options)
    assert_close(dx, rdx, dtype)
    assert_close(dw, rdw, dtype)


@settings(max_examples=40, deadline=None)
@given(data=st.data(), dtype=st.sampled_from(DTYPES), seed=st.integers(0, 2**32 - 1))
def test_hypothesis_shapes(data, dtype, seed):
    draw = data.draw
    groups = draw(st.integers(1, 3))
    cg, kg = draw(st.integers(1, 3)), draw(st.integers(1, 5))
    fh, fw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    dil = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    if draw(st.booleans()):
        stride, padding = 1, "same"
    else:
        stride = (draw(st.integers(1, 5)), draw(st.integers(1, 5)))
        padding = (draw(st.integers(0, 3)), draw(st.integers(0, 3)))
    h = draw(st.integers(max(1, dil[0] * (fh - 1) + 1 - 2 * (padding != "same") * 3), 12))
    wd = draw(st.integers(max(1, dil[1] * (fw - 1) + 1 - 2 * (padding != "same") * 3), 40))
    options = dict(stride=stride, padding=padding, dilation=dil, groups=groups)
    x_shape, w_shape = (draw(st.integers(1, 3)), cg * groups, h, wd), (kg * groups, cg, fh, fw)
    try:
        g, _ = kernel_args(np.empty(x_shape), np.empty(w_shape), options)
    except ValueError:
        return  # a kernel larger than the padded input
    if min(g.oh, g.ow) < 1:
        return
    x, w, b = problem(x_shape, w_shape, dtype, seed)
    check_against_oracles(x, w, b, options, dtype, seed)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("x_shape, w_shape, options", [
    ((3, 8, 17, 45), (12, 8, 3, 3), dict(padding=1)),
    ((2, 16, 19, 21), (16, 1, 3, 3), dict(padding=1, groups=16)),
    ((5, 1, 28, 28), (8, 1, 5, 5), dict(stride=2, padding=2)),
])
def test_results_do_not_depend_on_thread_count(dtype, x_shape, w_shape, options):
    x, w, b = problem(x_shape, w_shape, dtype)
    g, _ = kernel_args(x, w, options)
    dout = np.random.default_rng(1).standard_normal(g.out_shape).astype(dtype)
    one = forward(x, w, b, num_threads=1, **options)
    one_dx, one_dw = backward(dout, x, w, num_threads=1, **options)
    for n in (2, 3, 7):
        np.testing.assert_array_equal(forward(x, w, b, num_threads=n, **options), one)
        dx, dw = backward(dout, x, w, num_threads=n, **options)
        np.testing.assert_array_equal(dx, one_dx)
        np.testing.assert_array_equal(dw, one_dw)


@pytest.mark.parametrize("x_shape, w_shape, options", [
    ((2, 2, 5, 6), (3, 2, 3, 2), dict(stride=(2, 1), padding=(1, 2), dilation=(1, 2))),
    ((1, 4, 5, 5), (4, 2, 2, 3), dict(padding="same", groups=2)),
    ((2, 3, 6, 5), (3, 1, 3, 3), dict(stride=3, padding=1, groups=3)),
])
def test_gradcheck(cpu_level, x_shape, w_shape, options):
    x, w, _ = problem(x_shape, w_shape, np.float64)
    g, _ = kernel_args(x, w, options)
    dout = np.random.default_rng(2).standard_normal(g.out_shape)
    dx, dw = backward(dout, x, w, **options)
    gradcheck(lambda x, w: forward(x, w, **options), [x, w], [dx, dw], dout)


def test_read_only_inputs():
    x, w, b = problem((2, 3, 9, 9), (4, 3, 3, 3), np.float32)
    dout = np.ones((2, 4, 7, 7), np.float32)
    for a in (x, w, b, dout):
        a.flags.writeable = False
    assert_close(forward(x, w, b), conv2d_im2col(x, w, b), np.float32)
    dx, dw = backward(dout, x, w)
    rdx, rdw, _ = conv2d_backward_naive(dout, x, w)
    assert_close(dx, rdx, np.float32)
    assert_close(dw, rdw, np.float32)
