"""The channel-blocked direct kernels (method="direct" with 16 or more filters per group),
against the float64 oracle at every CPU level: the forward, the input gradient it computes
and the filter gradient."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pyconv
from pyconv import reference
from pyconv.gradcheck import numerical_gradient

from ._helpers import DTYPES, assert_close

# (N, C, H, W), (K, C/groups, FH, FW), stride, padding, dilation, groups: odd sizes, stride
# past the kernel, per-side padding wider than the kernel reaches, 1x1 (one long row),
# non-square, batch 1, one channel, an odd block of filters (K = 40: one pair and one
# half pair at AVX-512 float32), groups
GRID = [
    ((2, 3, 13, 17), (40, 3, 3, 3), 1, 1, 1, 1),
    ((1, 5, 9, 11), (33, 5, 5, 3), (2, 3), ((2, 0), (1, 2)), (1, 2), 1),
    ((2, 8, 12, 12), (64, 4, 3, 3), 1, ((0, 1), (2, 0)), (2, 1), 2),
    ((2, 16, 7, 7), (17, 16, 1, 1), 1, 0, 1, 1),
    ((1, 3, 30, 31), (96, 3, 11, 11), 4, 0, 1, 1),
    ((2, 6, 5, 5), (20, 6, 3, 3), 1, 3, 1, 1),
    ((1, 1, 6, 9), (16, 1, 2, 2), 5, 0, 1, 1),
    ((3, 4, 1, 40), (48, 4, 1, 3), 1, ((0, 0), (1, 1)), 1, 1),
]


def _oracle(x, w, b, stride, padding, dilation, groups):
    return reference.conv2d_im2col(x.astype(np.float64), w.astype(np.float64),
                                   b.astype(np.float64), stride=stride, padding=padding,
                                   dilation=dilation, groups=groups, strict=False)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("xs, ws, stride, padding, dilation, groups", GRID)
def test_forward_matches_oracle(cpu_level, dtype, xs, ws, stride, padding, dilation, groups):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(xs).astype(dtype)
    w = rng.standard_normal(ws).astype(dtype)
    b = rng.standard_normal(ws[0]).astype(dtype)
    y = pyconv.conv2d(x, w, b, stride=stride, padding=padding, dilation=dilation,
                      groups=groups, method="direct", strict=False)
    assert y.dtype == dtype
    assert_close(y, _oracle(x, w, b, stride, padding, dilation, groups), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("xs, ws, stride, padding, dilation, groups", GRID)
def test_gradients_match_oracle(cpu_level, dtype, xs, ws, stride, padding, dilation, groups):
    rng = np.random.default_rng(1)
    x = rng.standard_normal(xs).astype(dtype)
    w = rng.standard_normal(ws).astype(dtype)
    y = pyconv.conv2d(x, w, stride=stride, padding=padding, dilation=dilation, groups=groups,
                      strict=False)
    dout = rng.standard_normal(y.shape).astype(dtype)
    dx, dw, _ = pyconv.conv2d_backward(dout, x, w, stride=stride, padding=padding,
                                       dilation=dilation, groups=groups, method="direct")
    ex, ew, _ = reference.conv2d_backward_im2col(
        dout.astype(np.float64), x.astype(np.float64), w.astype(np.float64), stride=stride,
        padding=padding, dilation=dilation, groups=groups)
    assert_close(dx, ex, dtype)
    assert_close(dw, ew, dtype)


def test_strided_and_read_only_inputs_read_in_place():
    rng = np.random.default_rng(2)
    base = rng.standard_normal((2, 9, 14, 26))
    x = base[:, ::2, :, ::2]  # non-contiguous
    w = np.asfortranarray(rng.standard_normal((24, 5, 3, 3)))
    w.setflags(write=False)
    y = pyconv.conv2d(x, w, padding=1, method="direct")
    assert_close(y, _oracle(x, w, np.zeros(24), 1, 1, 1, 1))


def test_results_do_not_depend_on_the_thread_count():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 16, 15, 15)).astype(np.float32)
    w = rng.standard_normal((48, 16, 3, 3)).astype(np.float32)
    runs = [pyconv.conv2d(x, w, padding=1, method="direct", num_threads=t) for t in (1, 2, 3)]
    for y in runs[1:]:
        np.testing.assert_array_equal(y, runs[0])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("xs, ws, padding", [
    ((1, 64, 61, 23), (32, 64, 3, 3), 1),  # bands of 31 and 30 rows (13 for float64)
    ((2, 20, 40, 9), (24, 20, 5, 2), ((3, 0), (0, 4))),
])
def test_filter_gradient_in_several_bands_of_rows(cpu_level, dtype, xs, ws, padding):
    rng = np.random.default_rng(7)
    x = rng.standard_normal(xs).astype(dtype)
    w = rng.standard_normal(ws).astype(dtype)
    dout = rng.standard_normal(pyconv.conv2d(x, w, padding=padding, strict=False).shape)
    dout = dout.astype(dtype)
    _, dw, _ = pyconv.conv2d_backward(dout, x, w, padding=padding, method="direct",
                                      need=("dw",))
    _, expected, _ = reference.conv2d_backward_im2col(
        dout.astype(np.float64), x.astype(np.float64), w.astype(np.float64), padding=padding)
    assert_close(dw, expected, dtype)


def test_filter_gradient_reads_any_strides_and_does_not_depend_on_the_thread_count():
    rng = np.random.default_rng(8)
    x = rng.standard_normal((3, 34, 15, 15)).astype(np.float32)[:, ::2]
    dout = np.asfortranarray(rng.standard_normal((3, 40, 15, 15)).astype(np.float32))
    dout.setflags(write=False)
    w = np.zeros((40, 17, 3, 3), np.float32)
    runs = [pyconv.conv2d_backward(dout, x, w, padding=1, method="direct", need=("dw",),
                                   num_threads=t)[1] for t in (1, 2, 3)]
    for dw in runs[1:]:
        np.testing.assert_array_equal(dw, runs[0])
    _, expected, _ = reference.conv2d_backward_im2col(dout.astype(np.float64),
                                                      x.astype(np.float64), w, padding=1)
    assert_close(runs[0], expected, np.float32)


@pytest.mark.parametrize("xs, ws, stride", [
    ((1, 3, 6, 5), (16, 3, 3, 3), 1),
    ((2, 3, 7, 6), (16, 3, 3, 2), 2),
])
def test_gradcheck_of_both_gradients(xs, ws, stride):
    rng = np.random.default_rng(4)
    x = rng.standard_normal(xs)
    w = rng.standard_normal(ws)
    dout = rng.standard_normal(pyconv.conv2d(x, w, stride=stride, padding=1).shape)

    def loss(xv, wv):
        return float(np.sum(pyconv.conv2d(xv, wv, stride=stride, padding=1, method="direct")
                            * dout))

    dx, dw, _ = pyconv.conv2d_backward(dout, x, w, stride=stride, padding=1, method="direct")
    np.testing.assert_allclose(dx, numerical_gradient(lambda xv: loss(xv, w), x), rtol=1e-6,
                               atol=1e-6)
    np.testing.assert_allclose(dw, numerical_gradient(lambda wv: loss(x, wv), w), rtol=1e-6,
                               atol=1e-6)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 2), c=st.integers(1, 6), h=st.integers(1, 12), w=st.integers(1, 12),
       k=st.integers(16, 40), f=st.integers(1, 4), s=st.integers(1, 5), p=st.integers(0, 3),
       d=st.integers(1, 2), dtype=st.sampled_from(DTYPES))
def test_hypothesis_shapes(n, c, h, w, k, f, s, p, d, dtype):
    if h + 2 * p < (f - 1) * d + 1 or w + 2 * p < (f - 1) * d + 1:
        return
    rng = np.random.default_rng(5)
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    wt = rng.standard_normal((k, c, f, f)).astype(dtype)
    b = rng.standard_normal(k).astype(dtype)
    y = pyconv.conv2d(x, wt, b, stride=s, padding=p, dilation=d, method="direct", strict=False)
    assert_close(y, _oracle(x, wt, b, s, p, d, 1), dtype)
    dout = rng.standard_normal(y.shape).astype(dtype)
    _, dw, _ = pyconv.conv2d_backward(dout, x, wt, stride=s, padding=p, dilation=d,
                                      method="direct", need=("dw",))
    _, expected, _ = reference.conv2d_backward_im2col(
        dout.astype(np.float64), x.astype(np.float64), wt.astype(np.float64), stride=s,
        padding=p, dilation=d)
    assert_close(dw, expected, dtype)


@pytest.mark.parametrize("dtype, c", [(np.float32, 24), (np.float64, 256)])
def test_channels_last_agrees_with_channels_first(cpu_level, dtype, c):
    # 24 float32 channels run the blocked kernel in place; 256 float64 ones (2 KiB a
    # pixel) go through transposed copies
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 5, 7, c)).astype(dtype)
    w = rng.standard_normal((20, c, 3, 3)).astype(dtype)
    b = rng.standard_normal(20).astype(dtype)
    y = pyconv.conv2d(x, w, b, padding=1, layout="NHWC")
    expected = pyconv.conv2d(x.transpose(0, 3, 1, 2), w, b, padding=1, method="direct")
    assert_close(y, expected.transpose(0, 2, 3, 1), dtype)
