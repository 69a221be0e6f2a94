"""The direct kernels' depthwise path (one input and one output channel per group).

It serves the forward pass and the input gradient of convolutions whose
source rows are not spread by a stride; every other depthwise case runs the
general kernel. Both are checked against the oracles, and against each other
bit for bit: they sum each output in the same order.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyconv import cpu, gradcheck

from _helpers import DTYPES
from test_conv_direct import backward, check_against_oracles, forward, kernel_args, problem


def depthwise(n, c, h, w, fh, fw, dtype, seed=0, multiplier=1):
    return problem((n, c, h, w), (c * multiplier, 1, fh, fw), dtype, seed)


# Row widths around every vector length (4, 8 and 16 lanes): narrower than a
# vector, equal, one more, a multiple, and the 56.
WIDTHS = [1, 3, 4, 7, 8, 9, 15, 16, 17, 31, 32, 33, 56]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("padding", [0, 1, 2])
def test_widths_and_padding(cpu_level, dtype, width, padding):
    x, w, b = depthwise(2, 3, 5, width, 3, 3, dtype)
    if width + 2 * padding < 3:
        w = np.ascontiguousarray(w[:, :, :, :1])
    check_against_oracles(x, w, b, dict(padding=padding, groups=3), dtype)


# Filters other than 3 x 3, dilation, strides, larger than the filter too
# (the strided input gradient takes the general kernel), padding wider than the filter (rows and whole
# outputs of nothing but padding), batch 1, one channel, more planes than
# tasks (tasks of several planes) and fewer (planes cut into bands).
CASES = [
    ((1, 1, 9, 20), (1, 1, 3, 3), dict(padding=1)),
    ((2, 5, 8, 19), (5, 1, 5, 5), dict(padding=2)),
    ((1, 4, 7, 18), (4, 1, 2, 3), dict(padding="same")),
    ((1, 3, 6, 21), (3, 1, 1, 1), {}),
    ((2, 3, 9, 23), (3, 1, 3, 3), dict(padding=2, dilation=2)),
    ((1, 2, 11, 40), (2, 1, 3, 3), dict(padding=1, dilation=(2, 1))),
    ((1, 2, 10, 37), (2, 1, 3, 3), dict(padding=1, dilation=(1, 3))),
    ((2, 3, 9, 35), (3, 1, 3, 3), dict(stride=2, padding=1)),
    ((1, 2, 12, 30), (2, 1, 3, 3), dict(stride=(1, 2), padding=1)),
    ((1, 2, 12, 30), (2, 1, 3, 3), dict(stride=(2, 1), padding=1)),
    ((1, 3, 9, 30), (3, 1, 1, 1), dict(stride=3)),
    ((1, 2, 23, 30), (2, 1, 2, 2), dict(stride=(5, 3), padding=1)),
    ((1, 2, 4, 17), (2, 1, 3, 3), dict(padding=4)),
    ((3, 50, 6, 9), (50, 1, 3, 3), dict(padding=1)),
    ((1, 2, 40, 20), (2, 1, 3, 3), dict(padding=1)),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("x_shape, w_shape, options", CASES)
def test_cases(cpu_level, dtype, x_shape, w_shape, options):
    x, w, b = problem(x_shape, w_shape, dtype)
    options = dict(options, groups=x_shape[1])
    check_against_oracles(x, w, b, options, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("x_shape, fh, fw, options", [
    ((2, 3, 7, 56), 3, 3, dict(padding=1)),
    ((1, 4, 9, 13), 5, 3, dict(padding=(2, 1), dilation=(1, 2))),
    ((3, 2, 8, 21), 3, 3, dict(stride=2, padding=1)),
])
def test_same_bits_as_the_general_kernel(cpu_level, dtype, x_shape, fh, fw, options):
    # a channel multiplier of 2 takes the general kernel; its even output
    # channels are the depthwise convolution by the even filters
    c = x_shape[1]
    x, w2, b2 = depthwise(*x_shape, fh, fw, dtype, multiplier=2)
    general = forward(x, w2, b2, groups=c, **options)
    single = forward(x, np.ascontiguousarray(w2[::2]), np.ascontiguousarray(b2[::2]), groups=c,
                     **options)
    np.testing.assert_array_equal(single, general[:, ::2])


@pytest.mark.parametrize("x_shape, options", [
    ((3, 50, 7, 21), dict(padding=1)),       # tasks of several planes
    ((1, 3, 37, 19), dict(padding=1)),       # planes cut into bands
    ((2, 5, 13, 40), dict(stride=2, padding=2, dilation=2)),
])
@pytest.mark.parametrize("dtype", DTYPES)
def test_results_do_not_depend_on_thread_count(dtype, x_shape, options):
    x, w, b = depthwise(*x_shape, 3, 3, dtype)
    options = dict(options, groups=x_shape[1])
    g, _ = kernel_args(x, w, options)
    dout = np.random.default_rng(1).standard_normal(g.out_shape).astype(dtype)
    one = forward(x, w, b, num_threads=1, **options)
    one_dx, _ = backward(dout, x, w, num_threads=1, **options)
    for n in (2, 3, 7):
        np.testing.assert_array_equal(forward(x, w, b, num_threads=n, **options), one)
        np.testing.assert_array_equal(backward(dout, x, w, num_threads=n, **options)[0], one_dx)


@pytest.mark.parametrize("options", [dict(padding=1), dict(padding=(0, 2), dilation=(2, 1))])
def test_gradcheck(cpu_level, options):
    x, w, _ = depthwise(2, 3, 6, 9, 3, 3, np.float64)
    options = dict(options, groups=3)
    g, _ = kernel_args(x, w, options)
    dout = np.random.default_rng(2).standard_normal(g.out_shape)
    dx, dw = backward(dout, x, w, **options)
    gradcheck(lambda x, w: forward(x, w, **options), [x, w], [dx, dw], dout)


@settings(max_examples=40, deadline=None)
@given(data=st.data(), dtype=st.sampled_from(DTYPES), seed=st.integers(0, 2**32 - 1))
def test_hypothesis_shapes(data, dtype, seed):
    draw = data.draw
    c, multiplier = draw(st.integers(1, 4)), draw(st.sampled_from([1, 1, 1, 2]))
    fh, fw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    dil = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    stride = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    h = draw(st.integers(max(1, dil[0] * (fh - 1) + 1 - 2 * padding[0]), 12))
    wd = draw(st.integers(max(1, dil[1] * (fw - 1) + 1 - 2 * padding[1]), 70))
    x, w, b = depthwise(draw(st.integers(1, 3)), c, h, wd, fh, fw, dtype, seed, multiplier)
    with cpu.use_level(draw(st.sampled_from(cpu.available()))):
        check_against_oracles(x, w, b, dict(stride=stride, padding=padding, dilation=dil,
                                            groups=c), dtype, seed)
