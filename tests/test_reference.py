"""The oracles: the handout's worked examples, and each oracle against another."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyconv import gradcheck
from pyconv.reference import (avg_pool2d_backward_naive, avg_pool2d_naive,
                              conv2d_backward_im2col, conv2d_backward_naive, conv2d_im2col,
                              conv2d_naive,
                              l1_no_loops, l1_one_loop, l1_two_loops, max_pool2d_backward_naive,
                              max_pool2d_naive)

from _helpers import DTYPES, assert_close

I = np.array([[1, 2, 3, 4], [4, 3, 2, 1], [-1, 0, 1, 2], [0, -2, 4, 0]])
F = np.array([[1, -1], [0, 2]])


@pytest.mark.parametrize("conv", [conv2d_naive, conv2d_im2col])
def test_handout_2a_and_2b(conv):
    np.testing.assert_array_equal(conv(I, F), [[5, 3, 1], [1, 3, 5], [-5, 7, -1]])
    np.testing.assert_array_equal(conv(I, F, stride=2, padding=1),
                                  [[2, 6, 0], [-6, 3, 1], [0, -6, 0]])


def test_handout_2c_max_pool():
    np.testing.assert_array_equal(max_pool2d_naive(I, 3, stride=3, padding=1), [[4, 4], [0, 4]])


@st.composite
def conv_cases(draw):
    groups = draw(st.integers(1, 3))
    c = groups * draw(st.integers(1, 2))
    k = groups * draw(st.integers(1, 2))
    fh, fw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    dh, dw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    sh, sw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    h = draw(st.integers(max(1, dh * (fh - 1) + 1 - 2 * ph), 9))
    w = draw(st.integers(max(1, dw * (fw - 1) + 1 - 2 * pw), 9))
    n = draw(st.integers(1, 2))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = rng.standard_normal((n, c, h, w))
    wt = rng.standard_normal((k, c // groups, fh, fw))
    b = rng.standard_normal(k)
    options = dict(stride=(sh, sw), padding=(ph, pw), dilation=(dh, dw), groups=groups)
    return x, wt, b, options


@settings(max_examples=40, deadline=None)
@given(conv_cases())
def test_conv_oracles_agree(case):
    x, w, b, options = case
    assert_close(conv2d_im2col(x, w, b, strict=False, **options),
                 conv2d_naive(x, w, b, strict=False, **options))


@settings(max_examples=15, deadline=None)
@given(conv_cases())
def test_conv_backward_oracle_passes_gradcheck(case):
    x, w, b, options = case
    out = conv2d_naive(x, w, b, strict=False, **options)
    dout = np.random.default_rng(1).standard_normal(out.shape)
    dx, dw, db = conv2d_backward_naive(dout, x, w, **options)
    gradcheck(lambda x_, w_, b_: conv2d_im2col(x_, w_, b_, strict=False, **options),
              [x, w, b], [dx, dw, db], dout, rtol=1e-6)


@settings(max_examples=40, deadline=None)
@given(conv_cases())
def test_conv_backward_oracles_agree(case):
    x, w, b, options = case
    out = conv2d_naive(x, w, b, strict=False, **options)
    dout = np.random.default_rng(2).standard_normal(out.shape)
    fast = conv2d_backward_im2col(dout, x, w, **options)
    for got, want in zip(fast, conv2d_backward_naive(dout, x, w, **options)):
        assert_close(got, want)


@pytest.mark.parametrize("oracle", [conv2d_backward_naive, conv2d_backward_im2col])
@pytest.mark.parametrize("need", [("dx",), ("dw",), ("db",), ("dx", "db"), "dw"])
def test_conv_backward_oracles_compute_what_is_needed(oracle, need):
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal((2, 4, 7, 6)), rng.standard_normal((6, 2, 3, 2))
    options = dict(stride=(2, 1), padding=1, groups=2)
    dout = rng.standard_normal(conv2d_naive(x, w, **options).shape)
    every = oracle(dout, x, w, **options)
    some = oracle(dout, x, w, need=need, **options)
    for name, got, want in zip(("dx", "dw", "db"), some, every):
        if name in need:
            np.testing.assert_array_equal(got, want)
        else:
            assert got is None


@pytest.mark.parametrize("need, error", [(("dx", "dy"), ValueError), (3, TypeError)])
def test_conv_backward_oracles_refuse_an_unknown_gradient(need, error):
    x, w = np.ones((1, 1, 3, 3)), np.ones((1, 1, 2, 2))
    with pytest.raises(error, match="need"):
        conv2d_backward_im2col(np.ones((1, 1, 2, 2)), x, w, need=need)


@pytest.mark.parametrize("dtype", DTYPES)
def test_conv_oracles_keep_float_dtype(dtype):
    x = np.ones((1, 1, 3, 3), dtype)
    assert conv2d_naive(x, x).dtype == dtype
    assert conv2d_im2col(x, x).dtype == dtype
    assert conv2d_im2col(np.ones((1, 1, 3, 3), int), x.astype(int)).dtype == np.float64


def test_same_padding_of_an_even_kernel_pads_bottom_right():
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    w = np.ones((1, 1, 2, 2))
    out = conv2d_naive(x, w, padding="same")
    assert out.shape == (1, 1, 4, 4)
    assert out[0, 0, 0, 0] == 0 + 1 + 4 + 5  # no padding on top or left
    assert out[0, 0, 3, 3] == 15  # the padded row and column are below and right


# Pooling


def no_ties(rng, shape):
    return rng.permutation(np.prod(shape)).reshape(shape) / 7.0


@pytest.mark.parametrize("size, stride, padding, dilation", [
    (2, None, 0, 1), (3, 2, 1, 1), ((2, 3), (1, 2), (1, 0), 1), (2, 3, 0, 2), (3, 1, 1, 1)])
def test_max_pool_backward_passes_gradcheck(size, stride, padding, dilation):
    rng = np.random.default_rng(0)
    x = no_ties(rng, (2, 2, 7, 6))
    opts = dict(stride=stride, padding=padding, dilation=dilation)
    out = max_pool2d_naive(x, size, strict=False, **opts)
    dout = rng.standard_normal(out.shape)
    dx = max_pool2d_backward_naive(dout, x, size, **opts)
    gradcheck(lambda x_: max_pool2d_naive(x_, size, strict=False, **opts), [x], [dx], dout,
              eps=1e-4)


@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("size, stride, padding", [(2, None, 0), (3, 2, 1), ((3, 2), (2, 1), (1, 1))])
def test_avg_pool_backward_passes_gradcheck(size, stride, padding, count_include_pad):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 7, 6))
    opts = dict(stride=stride, padding=padding, count_include_pad=count_include_pad)
    out = avg_pool2d_naive(x, size, strict=False, **opts)
    dout = rng.standard_normal(out.shape)
    dx = avg_pool2d_backward_naive(dout, x.shape, size, **opts)
    gradcheck(lambda x_: avg_pool2d_naive(x_, size, strict=False, **opts), [x], [dx], dout)


def test_max_pool_padding_never_wins_and_ties_go_to_the_first():
    x = -np.ones((1, 1, 2, 2))
    out, idx = max_pool2d_naive(x, 3, stride=1, padding=1, return_indices=True)
    assert np.all(out == -1)  # a padded zero would have won
    np.testing.assert_array_equal(idx[0, 0], [[0, 0], [0, 0]])  # first in row-major order
    dx = max_pool2d_backward_naive(np.ones((1, 1, 2, 2)), x, 3, stride=1, padding=1)
    np.testing.assert_array_equal(dx[0, 0], [[4, 0], [0, 0]])


def test_max_pool_nan_propagates():
    x = np.array([[1.0, np.nan], [3.0, 2.0]])
    out, idx = max_pool2d_naive(x, 2, return_indices=True)
    assert np.isnan(out[0, 0]) and idx[0, 0] == 1


def test_avg_pool_count_include_pad():
    x = np.ones((3, 3))
    assert avg_pool2d_naive(x, 3, stride=1, padding=1)[0, 0] == pytest.approx(4 / 9)
    assert avg_pool2d_naive(x, 3, stride=1, padding=1, count_include_pad=False)[0, 0] == 1


# L1


@settings(max_examples=30, deadline=None)
@given(n_x=st.integers(1, 5), n_y=st.integers(1, 5), d=st.integers(1, 9),
       seed=st.integers(0, 2**32 - 1), same=st.booleans())
def test_l1_oracles_agree(n_x, n_y, d, seed, same):
    rng = np.random.default_rng(seed)
    X = rng.integers(-3, 4, (n_x, d))  # small integers: many ties and duplicates
    Y = None if same else rng.standard_normal((n_y, d))
    expected = l1_two_loops(X, Y)
    assert_close(l1_one_loop(X, Y), expected)
    assert_close(l1_no_loops(X, Y), expected)


def test_l1_takes_absolute_values():
    # the handout's vectorised snippet sums signed differences and would give 0 here
    np.testing.assert_array_equal(l1_no_loops([[0, 1]], [[1, 0]]), [[2]])


def test_l1_no_loops_refuses_a_huge_intermediate():
    X = np.zeros((100, 10))
    with pytest.raises(MemoryError, match="max_bytes=1,000"):
        l1_no_loops(X, X, max_bytes=1000)
