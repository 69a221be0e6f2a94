"""Channels-last (``layout="NHWC"``) convolution and pooling.

Pooling in NHWC equals the NCHW path transposed bit for bit (values, indices and
gradients); convolution agrees with it and with the oracles (which take ``layout``
too) within the tolerances of ``_helpers``. Every kernel at every CPU level, both
dtypes, odd shapes, views and read-only arrays, any thread count.
"""
import re

import dask.array as da
import numpy as np
import pytest
from _helpers import DTYPES, assert_close
from hypothesis import given, settings
from hypothesis import strategies as st

import pyconv
import pyconv.dask
from pyconv import _conv_nhwc, reference


def nhwc(a):
    """An NCHW (or CHW) array as a C-contiguous channels-last copy."""
    return np.ascontiguousarray(np.moveaxis(a, -3, -1))


def nchw(a):
    """A channels-last array as a C-contiguous NCHW copy."""
    return np.ascontiguousarray(np.moveaxis(a, -1, -3))


def assert_same(actual, expected):
    """Bit for bit (NaNs with NaNs), and the same dtype and shape."""
    assert actual.dtype == expected.dtype and actual.shape == expected.shape
    np.testing.assert_array_equal(actual, expected, strict=True)


def with_ties_and_nans(x, rng):
    """x with repeated values (ties), a -0.0 beside a 0.0 and a few NaNs."""
    flat = x.reshape(-1)
    flat[rng.integers(0, flat.size, flat.size // 4)] = 0.5
    flat[:2] = (-0.0, 0.0)[:flat.size]
    flat[rng.integers(0, flat.size, 3)] = np.nan
    return x


# (N, C, H, W), size, options: odd sizes, stride > window, padding, dilation, ceil mode,
# a channel count that is not a multiple of any vector (and ones that are)
POOL_CASES = [
    ((2, 5, 9, 8), 3, dict(stride=2, padding=1)),
    ((1, 1, 7, 7), 2, dict()),
    ((3, 3, 6, 7), (2, 3), dict(stride=(1, 2), padding=(1, 1), dilation=(2, 1))),
    ((2, 19, 5, 5), 3, dict(stride=2, ceil_mode=True)),
    ((1, 64, 8, 8), 2, dict(stride=2)),
    ((2, 37, 7, 6), 1, dict(stride=3)),
    ((1, 96, 11, 11), 3, dict(stride=2, padding=((1, 0), (0, 1)))),
    ((1, 8, 6, 6), 3, dict(stride=3, padding="same")),
]


@pytest.mark.parametrize("shape, size, opts", POOL_CASES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_pooling_equals_nchw_transposed(cpu_level, shape, size, opts, dtype):
    rng = np.random.default_rng(0)
    x = with_ties_and_nans(rng.standard_normal(shape).astype(dtype), rng)
    xl = nhwc(x)
    out, idx = pyconv.max_pool2d(x, size, strict=False, return_indices=True, **opts)
    out_l, idx_l = pyconv.max_pool2d(xl, size, strict=False, return_indices=True,
                                     layout="NHWC", **opts)
    assert_same(out_l, nhwc(out))
    assert_same(idx_l, nhwc(idx))
    assert_same(pyconv.max_pool2d(xl, size, strict=False, layout="NHWC", **opts), nhwc(out))
    back = {k: v for k, v in opts.items() if k != "padding" or v != "same"}
    if "padding" in back:
        dout = rng.standard_normal(out.shape).astype(dtype)
        dx = pyconv.max_pool2d_backward(dout, x, size, indices=idx, **back)
        assert_same(pyconv.max_pool2d_backward(nhwc(dout), xl, size, indices=idx_l,
                                               layout="NHWC", **back), nhwc(dx))
        assert_same(pyconv.max_pool2d_backward(nhwc(dout), xl, size, layout="NHWC", **back),
                    nhwc(pyconv.max_pool2d_backward(dout, x, size, **back)))
    for count_include_pad in (True, False):
        avg = pyconv.avg_pool2d(x, size, strict=False, count_include_pad=count_include_pad,
                                **opts)
        assert_same(pyconv.avg_pool2d(xl, size, strict=False, layout="NHWC",
                                      count_include_pad=count_include_pad, **opts), nhwc(avg))
        if "padding" in back:
            dout = rng.standard_normal(avg.shape).astype(dtype)
            dx = pyconv.avg_pool2d_backward(dout, x.shape, size,
                                            count_include_pad=count_include_pad, **back)
            assert_same(pyconv.avg_pool2d_backward(nhwc(dout), xl.shape, size, layout="NHWC",
                                                   count_include_pad=count_include_pad, **back),
                        nhwc(dx))


@pytest.mark.parametrize("shape, size, opts", POOL_CASES[:4])
@pytest.mark.parametrize("dtype", DTYPES)
def test_pooling_matches_oracles(cpu_level, shape, size, opts, dtype):
    rng = np.random.default_rng(1)
    xl = nhwc(rng.standard_normal(shape).astype(dtype))
    out, idx = pyconv.max_pool2d(xl, size, strict=False, return_indices=True, layout="NHWC",
                                 **opts)
    ref, ref_idx = reference.max_pool2d_naive(xl, size, strict=False, return_indices=True,
                                              layout="NHWC", **opts)
    assert_same(out, ref)
    assert_same(idx, ref_idx)
    dout = rng.standard_normal(out.shape).astype(dtype)
    assert_same(pyconv.max_pool2d_backward(dout, xl, size, layout="NHWC", **opts),
                reference.max_pool2d_backward_naive(dout, xl, size, layout="NHWC", **opts))
    assert_close(pyconv.avg_pool2d(xl, size, strict=False, layout="NHWC", **opts),
                 reference.avg_pool2d_naive(xl, size, strict=False, layout="NHWC", **opts), dtype)
    assert_close(pyconv.avg_pool2d_backward(dout, xl.shape, size, layout="NHWC", **opts),
                 reference.avg_pool2d_backward_naive(dout, xl.shape, size, layout="NHWC",
                                                     **opts), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_max_pool_backward_with_indices_outside_their_windows(cpu_level, dtype):
    # the gather kernels take each index from its own window; one elsewhere in the image
    # sends the call to the scatter kernel, and one 2**32 past a tap (what 32-bit lanes
    # would take for it) is refused as outside the image
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 19, 9, 9)).astype(dtype)
    out, idx = pyconv.max_pool2d(x, 3, stride=2, return_indices=True)
    dout = rng.standard_normal(out.shape).astype(dtype)
    idx[1, 5, 2, 3] = 80
    dx = pyconv.max_pool2d_backward(dout, x, 3, stride=2, indices=idx)
    assert_same(pyconv.max_pool2d_backward(nhwc(dout), nhwc(x), 3, stride=2,
                                           indices=nhwc(idx), layout="NHWC"), nhwc(dx))
    idx[0, 0, 0, 0] += 2**32
    with pytest.raises(ValueError, match="indices must lie in"):
        pyconv.max_pool2d_backward(nhwc(dout), nhwc(x), 3, stride=2, indices=nhwc(idx),
                                   layout="NHWC")


@pytest.mark.parametrize("dtype", DTYPES)
def test_large_results_written_past_the_cache(cpu_level, dtype):
    # calls that move 24 MiB and more write their results with streaming stores
    rng = np.random.default_rng(4)
    x = rng.standard_normal((48 // np.dtype(dtype).itemsize, 64, 97, 97)).astype(dtype)
    out, idx = pyconv.max_pool2d(x, 3, stride=2, return_indices=True)
    assert x.nbytes + out.nbytes >= 24 << 20
    assert_same(pyconv.max_pool2d(nhwc(x), 3, stride=2, layout="NHWC"), nhwc(out))
    assert_same(pyconv.avg_pool2d(nhwc(x), 3, stride=2, layout="NHWC"),
                nhwc(pyconv.avg_pool2d(x, 3, stride=2)))
    dout = rng.standard_normal(out.shape).astype(dtype)
    assert_same(pyconv.max_pool2d_backward(nhwc(dout), nhwc(x), 3, stride=2,
                                           indices=nhwc(idx), layout="NHWC"),
                nhwc(pyconv.max_pool2d_backward(dout, x, 3, stride=2, indices=idx)))
    assert_same(pyconv.avg_pool2d_backward(nhwc(dout), nhwc(x).shape, 3, stride=2,
                                           layout="NHWC"),
                nhwc(pyconv.avg_pool2d_backward(dout, x.shape, 3, stride=2)))


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 2), c=st.integers(1, 40), h=st.integers(1, 9), w=st.integers(1, 9),
       f=st.integers(1, 3), s=st.integers(1, 4), ceil_mode=st.booleans(),
       seed=st.integers(0, 2**16), dtype=st.sampled_from(DTYPES))
def test_pooling_hypothesis(n, c, h, w, f, s, ceil_mode, seed, dtype):
    f = min(f, h, w)
    rng = np.random.default_rng(seed)
    x = with_ties_and_nans(rng.standard_normal((n, c, h, w)).astype(dtype), rng)
    opts = dict(stride=s, ceil_mode=ceil_mode)
    out, idx = pyconv.max_pool2d(x, f, strict=False, return_indices=True, **opts)
    out_l, idx_l = pyconv.max_pool2d(nhwc(x), f, strict=False, return_indices=True,
                                     layout="NHWC", **opts)
    assert_same(out_l, nhwc(out))
    assert_same(idx_l, nhwc(idx))
    dout = rng.standard_normal(out.shape).astype(dtype)
    assert_same(pyconv.max_pool2d_backward(nhwc(dout), nhwc(x), f, layout="NHWC", **opts),
                nhwc(pyconv.max_pool2d_backward(dout, x, f, **opts)))
    assert_same(pyconv.avg_pool2d(nhwc(x), f, strict=False, layout="NHWC", **opts),
                nhwc(pyconv.avg_pool2d(x, f, strict=False, **opts)))
    assert_same(pyconv.avg_pool2d_backward(nhwc(dout), nhwc(x).shape, f, layout="NHWC", **opts),
                nhwc(pyconv.avg_pool2d_backward(dout, x.shape, f, **opts)))


# (N, C, H, W), K, (FH, FW), options: depthwise (multiplier 1 and 2, one channel),
# dense and grouped layers
CONV_CASES = [
    ((2, 6, 9, 8), 6, (3, 3), dict(padding=1, groups=6)),
    ((1, 37, 7, 7), 37, (3, 3), dict(stride=2, padding=1, groups=37)),
    ((2, 64, 6, 5), 64, (3, 3), dict(padding="same", groups=64, dilation=2)),
    ((2, 32, 7, 9), 32, (3, 3), dict(padding=1, groups=32)),  # pairs of inner pixels
    ((1, 48, 9, 11), 48, (3, 3), dict(stride=2, padding=1, groups=48)),
    ((1, 4, 8, 6), 8, (3, 2), dict(stride=(2, 1), padding=((1, 0), (2, 1)), groups=4)),
    ((2, 1, 6, 6), 3, (2, 2), dict()),
    ((2, 3, 8, 8), 5, (3, 3), dict(padding=1)),
    ((1, 4, 6, 6), 6, (2, 2), dict(groups=2, stride=2)),
    # the channel-blocked kernels in place: both gradients; dw only (stride 2, groups of
    # 16 filters); dilation; a 1x1 layer; pixels of dout 768 bytes (float32, in
    # place) and 1.5 KiB (float64, dx through copies) apart
    ((2, 20, 7, 9), 24, (3, 3), dict(padding=1)),
    ((1, 32, 9, 7), 32, (3, 3), dict(stride=2, padding=1, groups=2)),
    ((1, 16, 6, 7), 40, (2, 3), dict(padding=((1, 0), (2, 1)), dilation=(2, 1))),
    ((2, 17, 5, 6), 16, (1, 1), dict()),
    ((1, 16, 5, 6), 192, (3, 3), dict(padding=1)),
    # depthwise from the ring of rows: blocks of 8 (AVX-512) or 4 columns, then 4, 2 and 1;
    # taps in rows cut by the top and bottom edges, at a dilation of 2 along the columns;
    # 5x5 taps at stride 2
    ((2, 32, 5, 21), 32, (3, 3), dict(padding=1, groups=32)),
    ((1, 32, 4, 23), 32, (3, 3), dict(padding=1, groups=32)),
    ((1, 16, 9, 14), 16, (4, 3), dict(padding=((3, 1), (0, 2)), dilation=(2, 1), groups=16)),
    ((2, 16, 11, 11), 16, (5, 5), dict(stride=2, padding=2, groups=16)),
    # filter gradients from the ring: windows of 1 and 2 rows inside the input
    ((1, 16, 1, 9), 16, (3, 3), dict(padding=1, groups=16)),
    ((2, 32, 6, 10), 32, (2, 3), dict(padding=((1, 0), (1, 1)), groups=32)),
    # 1x1 layers from 256 positions by the GEMM tile turned around (rows of pixels):
    # rows past a tile's last (330 positions) and filters past a vector (50, 24, 100)
    # through scratch, whole tiles in place (256 positions by 48 filters); channels past a
    # vector (33; its few blocks of positions also take groups of the filters) and past a
    # block of the reduction (300); a filter gradient summed from two parts. Below 256
    # positions, by BLAS (the 1x1 layer above)
    ((3, 20, 10, 11), 50, (1, 1), dict()),
    ((2, 16, 24, 24), 24, (1, 1), dict()),
    ((2, 64, 8, 16), 48, (1, 1), dict()),
    ((1, 33, 16, 17), 100, (1, 1), dict()),
    ((1, 300, 16, 16), 20, (1, 1), dict()),
]


@pytest.mark.parametrize("shape, k, f, opts", CONV_CASES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_conv_matches_oracle_and_nchw(cpu_level, shape, k, f, opts, dtype):
    rng = np.random.default_rng(2)
    x = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal((k, shape[1] // opts.get("groups", 1)) + f).astype(dtype)
    b = rng.standard_normal(k).astype(dtype)
    xl = nhwc(x)
    out = pyconv.conv2d(xl, w, b, layout="NHWC", **opts)
    assert_close(out, reference.conv2d_naive(xl, w, b, layout="NHWC", **opts), dtype)
    assert_close(out, nhwc(pyconv.conv2d(x, w, b, **opts)), dtype)
    assert_close(pyconv.conv2d(xl, w, layout="NHWC", **opts),
                 reference.conv2d_im2col(xl, w, layout="NHWC", **opts), dtype)
    dout = rng.standard_normal(out.shape).astype(dtype)
    dx, dw, db = pyconv.conv2d_backward(dout, xl, w, layout="NHWC", **opts)
    rx, rw, rb = reference.conv2d_backward_naive(dout, xl, w, layout="NHWC", **opts)
    for actual, expected in ((dx, rx), (dw, rw), (db, rb)):
        assert_close(actual, expected, dtype)
    nx, nw, nb = pyconv.conv2d_backward(nchw(dout), x, w, **opts)
    for actual, expected in ((dx, nhwc(nx)), (dw, nw), (db, nb)):
        assert_close(actual, expected, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_depthwise_streaming_stores_give_the_same_sums(cpu_level, monkeypatch, dtype):
    # large outputs are written with streaming stores: the same sums, lane for lane
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 7, 13, 32)).astype(dtype)
    w = rng.standard_normal((32, 1, 3, 3)).astype(dtype)
    b = rng.standard_normal(32).astype(dtype)
    opts = dict(padding=1, groups=32, layout="NHWC")
    cached = pyconv.conv2d(x, w, b, **opts)
    monkeypatch.setattr(pyconv.conv, "_DEPTHWISE_STREAM_BYTES", 0)
    streamed = pyconv.conv2d(x, w, b, **opts)
    np.testing.assert_array_equal(streamed, cached)
    assert_close(streamed, reference.conv2d_naive(x, w, b, **opts), dtype)


@pytest.mark.parametrize("shape", [(2, 3, 5, 7), (1, 16, 3, 16), (2, 17, 4, 33),
                                   (1, 40, 2, 9), (1, 1, 1, 1)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_transposing_copies_move_every_value(cpu_level, shape, dtype):
    # whole blocks of a vector's lanes square (16 floats, 8 doubles at AVX-512) are
    # transposed in registers, the rest one value at a time, as are inputs whose rows are
    # not contiguous
    rng = np.random.default_rng(9)
    x = rng.standard_normal(shape).astype(dtype)
    last = np.empty((shape[0], shape[2], shape[3], shape[1]), dtype)
    _conv_nhwc.swap_channels(x, last, True, 2)
    np.testing.assert_array_equal(last, x.transpose(0, 2, 3, 1))
    first = np.empty(shape, dtype)
    _conv_nhwc.swap_channels(last, first, False, 3)
    np.testing.assert_array_equal(first, x)
    spaced = np.zeros((shape[0], 2 * shape[1], shape[2], 2 * shape[3]), dtype)
    spaced[:, ::2, :, ::2] = x
    _conv_nhwc.swap_channels(spaced[:, ::2, :, ::2], last, True, 2)
    np.testing.assert_array_equal(last, x.transpose(0, 2, 3, 1))


@pytest.mark.parametrize("dtype", DTYPES)
def test_results_through_transposed_copies_outlive_later_calls(dtype):
    # layers with few filters run the NCHW kernels on copies kept in this thread's scratch
    # buffer from call to call: what a call returns is its own array, which later calls
    # leave alone (one output channel too, copied out without a transpose)
    rng = np.random.default_rng(8)
    x1, x2 = (rng.standard_normal((2, 6, 5, 3)).astype(dtype) for _ in range(2))
    for k in (4, 1):
        w = rng.standard_normal((k, 3, 3, 3)).astype(dtype)
        out = pyconv.conv2d(x1, w, padding=1, layout="NHWC")
        dx, dw, _ = pyconv.conv2d_backward(np.ones_like(out), x1, w, padding=1,
                                            layout="NHWC")
        kept = [a.copy() for a in (out, dx, dw)]
        pyconv.conv2d(x2, w, padding=1, layout="NHWC")
        pyconv.conv2d_backward(out, x2, w, padding=1, layout="NHWC")
        for a, b in zip((out, dx, dw), kept):
            np.testing.assert_array_equal(a, b)
        assert_close(out, reference.conv2d_naive(x1, w, padding=1, layout="NHWC"), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_channel_blocked_layers_make_no_transposed_copies(monkeypatch, dtype):
    def copies(*args):
        raise AssertionError("went through transposed copies")

    monkeypatch.setattr(pyconv.conv, "_dense_nhwc_via_nchw", copies)
    rng = np.random.default_rng(4)
    xl = rng.standard_normal((2, 7, 9, 20)).astype(dtype)
    w = rng.standard_normal((24, 20, 3, 3)).astype(dtype)
    out = pyconv.conv2d(xl, w, padding=1, layout="NHWC")
    dx, dw, _ = pyconv.conv2d_backward(out, xl, w, padding=1, layout="NHWC")
    rx, rw, _ = reference.conv2d_backward_naive(out, xl, w, padding=1, layout="NHWC")
    assert_close(dx, rx, dtype)
    assert_close(dw, rw, dtype)


@pytest.mark.parametrize("method", ["direct", "im2col"])
def test_conv_backward_passes_gradcheck(method):
    rng = np.random.default_rng(3)
    for shape, k, f, opts in (CONV_CASES[0], CONV_CASES[3], CONV_CASES[5], CONV_CASES[9],
                              CONV_CASES[10], CONV_CASES[12]):
        x = rng.standard_normal(shape)[:1, :, :5, :5].transpose(0, 2, 3, 1)
        w = rng.standard_normal((k, shape[1] // opts.get("groups", 1)) + f)
        b = rng.standard_normal(k)
        opts = dict(opts, method=method, layout="NHWC", strict=False)
        dout = rng.standard_normal(pyconv.conv2d(x, w, b, **opts).shape)
        grads = pyconv.conv2d_backward(dout, x, w, **{k: v for k, v in opts.items()
                                                       if k != "strict"})
        pyconv.gradcheck(lambda x_, w_, b_: pyconv.conv2d(x_, w_, b_, **opts), (x, w, b), grads,
                         dout)


@pytest.mark.parametrize("count_include_pad", [True, False])
def test_pool_backward_passes_gradcheck(count_include_pad):
    rng = np.random.default_rng(4)
    x = rng.permutation(2 * 6 * 5 * 3).reshape(2, 6, 5, 3) / 7.0  # distinct: no ties
    opts = dict(stride=2, padding=1, layout="NHWC")
    dout = rng.standard_normal(pyconv.max_pool2d(x, 3, strict=False, **opts).shape)
    pyconv.gradcheck(lambda x_: pyconv.max_pool2d(x_, 3, strict=False, **opts), [x],
                     [pyconv.max_pool2d_backward(dout, x, 3, **opts)], dout)
    opts["count_include_pad"] = count_include_pad
    pyconv.gradcheck(lambda x_: pyconv.avg_pool2d(x_, 3, strict=False, **opts), [x],
                     [pyconv.avg_pool2d_backward(dout, x.shape, 3, **opts)], dout)


def all_calls(x, w, dout, pooled, idx):
    """Every NHWC call, by name: x (N, H, W, C), w depthwise filters, dout the conv's
    upstream gradient, pooled the 2x2 max pool's, idx its indices."""
    depthwise = dict(padding=1, groups=x.shape[-1], layout="NHWC")
    dense = dict(padding=1, layout="NHWC")
    wd = np.ones((3, x.shape[-1], 3, 3), x.dtype)
    wp = np.linspace(-1, 1, 40 * x.shape[-1], dtype=x.dtype).reshape(40, x.shape[-1], 1, 1)
    bias = np.arange(40, dtype=x.dtype)
    xt = np.tile(x, (1, 4, 2, 1))  # 1x1 layers from 256 positions run on the GEMM tile
    return {
        "conv2d depthwise": lambda t: pyconv.conv2d(x, w, num_threads=t, **depthwise),
        "conv2d dense": lambda t: pyconv.conv2d(x, wd, num_threads=t, **dense),
        "conv2d 1x1": lambda t: pyconv.conv2d(x, wp, bias, layout="NHWC", num_threads=t),
        "conv2d_backward 1x1": lambda t: pyconv.conv2d_backward(
            np.linspace(-2, 2, x.shape[0] * 8 * 6 * 40, dtype=x.dtype).reshape(-1, 8, 6, 40),
            x, wp, layout="NHWC", num_threads=t),
        "conv2d 1x1 tiled": lambda t: pyconv.conv2d(xt, wp, bias, layout="NHWC",
                                                    num_threads=t),
        "conv2d_backward 1x1 tiled": lambda t: pyconv.conv2d_backward(
            np.linspace(-2, 2, xt.shape[0] * 32 * 12 * 40, dtype=x.dtype).reshape(-1, 32, 12,
                                                                                  40),
            xt, wp, layout="NHWC", num_threads=t),
        "conv2d_backward": lambda t: pyconv.conv2d_backward(dout, x, w, num_threads=t,
                                                            **depthwise),
        "max_pool2d": lambda t: pyconv.max_pool2d(x, 2, return_indices=True, layout="NHWC",
                                                  num_threads=t),
        "avg_pool2d": lambda t: pyconv.avg_pool2d(x, 3, stride=1, padding=1, layout="NHWC",
                                                  num_threads=t),
        "max_pool2d_backward": lambda t: pyconv.max_pool2d_backward(
            pooled, x, 2, indices=idx, layout="NHWC", num_threads=t),
        "max_pool2d_backward(x)": lambda t: pyconv.max_pool2d_backward(pooled, x, 2,
                                                                       layout="NHWC",
                                                                       num_threads=t),
        "avg_pool2d_backward": lambda t: pyconv.avg_pool2d_backward(pooled, x.shape, 2,
                                                                    layout="NHWC", num_threads=t),
    }


def _inputs(n, dtype):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((n, 8, 6, 21)).astype(dtype)
    w = rng.standard_normal((21, 1, 3, 3)).astype(dtype)
    dout = rng.standard_normal((n, 8, 6, 21)).astype(dtype)
    pooled = rng.standard_normal((n, 4, 3, 21)).astype(dtype)
    idx = pyconv.max_pool2d(x, 2, return_indices=True, layout="NHWC")[1]
    return x, w, dout, pooled, idx


@pytest.mark.parametrize("n", [1, 3])
@pytest.mark.parametrize("dtype", DTYPES)
def test_results_do_not_depend_on_the_thread_count(n, dtype):
    calls = all_calls(*_inputs(n, dtype))
    for name, call in calls.items():
        one = call(1)
        for threads in (2, 3):
            many = call(threads)
            for a, b in zip(one if isinstance(one, tuple) else (one,),
                            many if isinstance(many, tuple) else (many,)):
                assert_same(b, a)


@pytest.mark.parametrize("dtype", DTYPES)
def test_views_and_read_only_inputs(dtype):
    x, w, dout, pooled, idx = _inputs(2, dtype)
    expected = {name: call(2) for name, call in all_calls(x, w, dout, pooled, idx).items()}
    # non-contiguous channels-last views of NCHW arrays, read-only
    views = []
    for a in (x, w, dout, pooled, idx):
        v = np.moveaxis(nchw(a), 1, -1) if a.ndim == 4 and a is not w else a.copy()
        v.flags.writeable = False
        views.append(v)
    assert not views[0].flags.c_contiguous
    for name, call in all_calls(*views).items():
        got = call(2)
        for a, b in zip(got if isinstance(got, tuple) else (got,),
                        expected[name] if isinstance(got, tuple) else (expected[name],)):
            assert_same(a, b)


def test_one_image_and_single_channel_inputs():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((6, 6, 3))  # (H, W, C)
    w = rng.standard_normal((4, 3, 2, 2))
    out = pyconv.conv2d(x, w, layout="NHWC")
    assert out.shape == (5, 5, 4)
    assert_close(out, nhwc(pyconv.conv2d(nchw(x), w)), np.float64)
    pooled = pyconv.max_pool2d(x, 2, layout="NHWC")
    assert_same(pooled, nhwc(pyconv.max_pool2d(nchw(x), 2)))
    assert_same(pyconv.avg_pool2d_backward(np.ones((3, 3, 3)), (6, 6, 3), 2, layout="NHWC"),
                nhwc(pyconv.avg_pool2d_backward(np.ones((3, 3, 3)), (3, 6, 6), 2)))
    # a 2-D x is one single-channel image: the layout changes nothing
    plane = rng.standard_normal((6, 6))
    for layout in ("NCHW", "NHWC"):
        assert_same(pyconv.conv2d(plane, np.ones((3, 3)), layout=layout),
                    pyconv.conv2d(plane, np.ones((3, 3))))
        assert_same(pyconv.max_pool2d(plane, 2, layout=layout), pyconv.max_pool2d(plane, 2))
        assert_same(pyconv.avg_pool2d_backward(np.ones((3, 3)), (6, 6), 2, layout=layout),
                    pyconv.avg_pool2d_backward(np.ones((3, 3)), (6, 6), 2))


@pytest.mark.parametrize("call", [
    lambda layout: pyconv.conv2d(np.ones((1, 4, 4, 2)), np.ones((2, 2, 3, 3)), layout=layout),
    lambda layout: pyconv.conv2d_backward(np.ones((1, 2, 2, 2)), np.ones((1, 4, 4, 2)),
                                          np.ones((2, 2, 3, 3)), layout=layout),
    lambda layout: pyconv.max_pool2d(np.ones((1, 4, 4, 2)), 2, layout=layout),
    lambda layout: pyconv.avg_pool2d(np.ones((1, 4, 4, 2)), 2, layout=layout),
    lambda layout: pyconv.max_pool2d_backward(np.ones((1, 2, 2, 2)), np.ones((1, 4, 4, 2)), 2,
                                              layout=layout),
    lambda layout: pyconv.avg_pool2d_backward(np.ones((1, 2, 2, 2)), (1, 4, 4, 2), 2,
                                              layout=layout),
    lambda layout: reference.conv2d_naive(np.ones((1, 4, 4, 2)), np.ones((2, 2, 3, 3)),
                                          layout=layout),
    lambda layout: reference.max_pool2d_naive(np.ones((1, 4, 4, 2)), 2, layout=layout),
    lambda layout: pyconv.dask.max_pool2d(da.ones((1, 4, 4, 2)), 2, layout=layout),
    lambda layout: pyconv.dask.conv2d(da.ones((1, 4, 4, 2)), np.ones((2, 2, 3, 3)),
                                      layout=layout),
])
@pytest.mark.parametrize("layout", ["nhwc", "NCWH", "", None, 1])
def test_an_unknown_layout_is_refused(call, layout):
    with pytest.raises(ValueError, match=r"^layout must be 'NCHW' or 'NHWC', got "
                                         + re.escape(repr(layout))):
        call(layout)


@pytest.mark.parametrize("layout, axis, x_shape", [("NHWC", -1, (1, 6, 6, 5)),
                                                    ("NCHW", -3, (1, 5, 6, 6)),
                                                    ("NHWC", -1, (6, 6, 5))])
@pytest.mark.parametrize("fn", [pyconv.conv2d, reference.conv2d_naive,
                                lambda x, w, layout: pyconv.conv2d_backward(
                                    np.ones((1, 4, 4, 4)), x, w, layout=layout)])
def test_channel_mismatch_names_the_layout(layout, axis, x_shape, fn):
    message = (rf"x has 5 channels in layout '{layout}' \(axis {axis}\) but w expects 6 "
               rf"\(C/groups=6, groups=1\)")
    with pytest.raises(ValueError, match=message):
        fn(np.ones(x_shape), np.ones((4, 6, 3, 3)), layout=layout)


@pytest.mark.parametrize("dtype", DTYPES)
def test_dask_equals_in_memory(dtype):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((5, 7, 6, 4)).astype(dtype)
    xd = da.from_array(x, chunks=(2, 7, 6, 4))
    w = rng.standard_normal((4, 1, 3, 3)).astype(dtype)
    opts = dict(padding=1, groups=4, layout="NHWC")
    assert_same(pyconv.dask.conv2d(xd, w, **opts).compute(), pyconv.conv2d(x, w, **opts))
    dout = rng.standard_normal((5, 7, 6, 4)).astype(dtype)
    got = pyconv.dask.conv2d_backward(da.from_array(dout, chunks=(2, 7, 6, 4)), xd, w, method="direct",
                                      **opts)
    for a, b in zip(got, pyconv.conv2d_backward(dout, x, w, method="direct", **opts)):
        assert_close(a.compute(), b, dtype)
    out, idx = pyconv.dask.max_pool2d(xd, 2, return_indices=True, strict=False, layout="NHWC")
    ref, ref_idx = pyconv.max_pool2d(x, 2, return_indices=True, strict=False, layout="NHWC")
    assert_same(out.compute(), ref)
    assert_same(idx.compute(), ref_idx)
    assert_same(pyconv.dask.avg_pool2d(xd, 2, strict=False, layout="NHWC").compute(),
                pyconv.avg_pool2d(x, 2, strict=False, layout="NHWC"))
    pooled = da.from_array(rng.standard_normal(ref.shape).astype(dtype), chunks=(2, -1, -1, -1))
    assert_same(pyconv.dask.max_pool2d_backward(pooled, xd, 2, layout="NHWC").compute(),
                pyconv.max_pool2d_backward(pooled.compute(), x, 2, layout="NHWC"))
    assert_same(pyconv.dask.max_pool2d_backward(pooled, xd, 2, indices=idx,
                                                layout="NHWC").compute(),
                pyconv.max_pool2d_backward(pooled.compute(), x, 2, indices=ref_idx,
                                           layout="NHWC"))
    assert_same(pyconv.dask.avg_pool2d_backward(pooled, x.shape, 2, layout="NHWC").compute(),
                pyconv.avg_pool2d_backward(pooled.compute(), x.shape, 2, layout="NHWC"))


def test_dask_refuses_chunks_along_the_channels_in_their_layout():
    with pytest.raises(ValueError, match=r"blocks along \(N, H, W, C\)"):
        pyconv.dask.max_pool2d(da.ones((2, 4, 4, 6), chunks=(1, 4, 4, 3)), 2, layout="NHWC")
