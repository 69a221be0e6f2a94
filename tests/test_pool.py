import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pyconv
from pyconv.reference import (avg_pool2d_backward_naive, avg_pool2d_naive,
                              max_pool2d_backward_naive, max_pool2d_naive)

from _helpers import DTYPES, assert_close

# (size, stride, padding, dilation): overlapping, non-overlapping, stride > size,
# non-square windows and strides, padding, dilation, and the fused 2x2 / 3x3 paths
GEOMETRIES = [
    (2, None, 0, 1), (3, 2, 0, 1), (3, 2, 1, 1), (3, 1, 1, 1), (2, 1, 0, 1), (3, 3, 1, 1),
    (1, 1, 0, 1), (2, 3, 0, 1), ((2, 3), (1, 2), (1, 1), 1), ((3, 1), (2, 1), (1, 0), 1),
    (3, 2, 1, 2), ((2, 2), 1, 1, (2, 3)), (4, 3, 2, 1), (5, 4, 2, 1),
]
# (N, C, H, W): batch 1, odd sizes, widths around and above the vector widths
SHAPES = [(1, 1, 7, 9), (2, 3, 11, 13), (1, 2, 6, 71)]



def _grid(rng, shape, dtype):
    """Small integers, so ties are everywhere."""
    return rng.integers(-3, 4, shape).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("size, stride, padding, dilation", GEOMETRIES)
def test_max_pool_matches_oracle_bitwise(size, stride, padding, dilation, shape, dtype):
    rng = np.random.default_rng(0)
    x = _grid(rng, shape, dtype)
    opts = dict(stride=stride, padding=padding, dilation=dilation, strict=False)
    out, idx = pyconv.max_pool2d(x, size, return_indices=True, **opts)
    ref, ref_idx = max_pool2d_naive(x, size, return_indices=True, **opts)
    assert out.dtype == dtype and idx.dtype == np.int64
    np.testing.assert_array_equal(out, ref)
    np.testing.assert_array_equal(idx, ref_idx)  # ties: the first maximum
    np.testing.assert_array_equal(pyconv.max_pool2d(x, size, **opts), ref)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("size, stride, padding, dilation", GEOMETRIES)
def test_max_pool_backward_matches_oracle(size, stride, padding, dilation, shape, dtype):
    rng = np.random.default_rng(1)
    x = _grid(rng, shape, dtype)
    opts = dict(stride=stride, padding=padding, dilation=dilation)
    out, idx = pyconv.max_pool2d(x, size, return_indices=True, strict=False, **opts)
    dout = rng.standard_normal(out.shape).astype(dtype)
    ref = max_pool2d_backward_naive(dout, x, size, **opts)
    dx = pyconv.max_pool2d_backward(dout, x, size, **opts)
    assert dx.dtype == dtype
    np.testing.assert_array_equal(dx, ref)  # same sums in the same order
    np.testing.assert_array_equal(pyconv.max_pool2d_backward(dout, x, size, indices=idx, **opts),
                                  ref)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("size, stride, padding, dilation", [g for g in GEOMETRIES if g[3] == 1])
def test_avg_pool_matches_oracle(size, stride, padding, dilation, shape, count_include_pad,
                                 dtype):
    rng = np.random.default_rng(2)
    x = rng.standard_normal(shape).astype(dtype)
    opts = dict(stride=stride, padding=padding, count_include_pad=count_include_pad)
    out = pyconv.avg_pool2d(x, size, strict=False, **opts)
    assert out.dtype == dtype
    assert_close(out, avg_pool2d_naive(x, size, strict=False, **opts), dtype)
    dout = rng.standard_normal(out.shape).astype(dtype)
    dx = pyconv.avg_pool2d_backward(dout, shape, size, **opts)
    assert dx.dtype == dtype
    assert_close(dx, avg_pool2d_backward_naive(dout, shape, size, **opts), dtype)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 2), c=st.integers(1, 3), h=st.integers(1, 24), w=st.integers(1, 40),
       fh=st.integers(1, 4), fw=st.integers(1, 4), sh=st.integers(1, 4), sw=st.integers(1, 4),
       dh=st.integers(1, 2), dw=st.integers(1, 2), data=st.data(),
       dtype=st.sampled_from(DTYPES), seed=st.integers(0, 2**32 - 1))
def test_pooling_hypothesis(n, c, h, w, fh, fw, sh, sw, dh, dw, data, dtype, seed):
    ph = data.draw(st.integers(0, fh // 2))
    pw = data.draw(st.integers(0, fw // 2))
    rng = np.random.default_rng(seed)
    x = _grid(rng, (n, c, h, w), dtype)
    x[rng.random(x.shape) < 0.05] = np.nan
    geometry = dict(stride=(sh, sw), padding=(ph, pw))
    try:
        ref, ref_idx = max_pool2d_naive(x, (fh, fw), dilation=(dh, dw), strict=False,
                                        return_indices=True, **geometry)
    except ValueError:  # the window does not fit; both sides must refuse it
        with pytest.raises(ValueError):
            pyconv.max_pool2d(x, (fh, fw), dilation=(dh, dw), strict=False, **geometry)
        return
    out, idx = pyconv.max_pool2d(x, (fh, fw), dilation=(dh, dw), strict=False,
                                 return_indices=True, **geometry)
    np.testing.assert_array_equal(out, ref)
    np.testing.assert_array_equal(idx, ref_idx)
    dout = rng.standard_normal(out.shape).astype(dtype)
    np.testing.assert_array_equal(
        pyconv.max_pool2d_backward(dout, x, (fh, fw), dilation=(dh, dw), **geometry),
        max_pool2d_backward_naive(dout, x, (fh, fw), dilation=(dh, dw), **geometry))
    x = np.nan_to_num(x)
    for count_include_pad in (True, False):
        opts = dict(geometry, count_include_pad=count_include_pad)
        try:
            ref = avg_pool2d_naive(x, (fh, fw), strict=False, **opts)
        except ValueError:  # fits only with the dilation that max pooling had
            return
        assert_close(pyconv.avg_pool2d(x, (fh, fw), strict=False, **opts), ref, dtype)
        dout = rng.standard_normal(ref.shape).astype(dtype)
        assert_close(pyconv.avg_pool2d_backward(dout, x.shape, (fh, fw), **opts),
                     avg_pool2d_backward_naive(dout, x.shape, (fh, fw), **opts), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size, stride, width", [(2, 2, 70), (3, 2, 71), (3, 1, 40), (4, 3, 61)])
def test_max_pool_nan_in_vector_body_and_tail(size, stride, width, dtype):
    # plane k has a NaN at column k: every vector lane, chunk end and scalar tail
    x = np.arange(width * 5 * width, dtype=dtype).reshape(1, width, 5, width) % 7
    x[0, np.arange(width), 2, np.arange(width)] = np.nan
    out, idx = pyconv.max_pool2d(x, size, stride=stride, strict=False, return_indices=True)
    ref, ref_idx = max_pool2d_naive(x, size, stride=stride, strict=False, return_indices=True)
    np.testing.assert_array_equal(out, ref)
    np.testing.assert_array_equal(idx, ref_idx)
    assert np.isnan(out).any(axis=(2, 3)).all()


def test_first_nan_wins_and_padding_never_wins():
    x = np.array([[-5.0, np.nan], [np.nan, -1.0]])
    out, idx = pyconv.max_pool2d(x, 2, return_indices=True)
    assert np.isnan(out[0, 0]) and idx[0, 0] == 1
    out, idx = pyconv.max_pool2d(-np.ones((3, 3)), 3, stride=1, padding=1, return_indices=True)
    np.testing.assert_array_equal(out, -np.ones((3, 3)))  # padding (as -inf) loses to -1
    assert idx[0, 0] == 0 and idx[2, 2] == 4


def test_ties_go_to_the_first_maximum_in_row_major_order():
    x = np.array([[0.0, 1.0], [1.0, 1.0]])
    dx = pyconv.max_pool2d_backward([[1.0]], x, 2)
    np.testing.assert_array_equal(dx, [[0, 1], [0, 0]])
    x = np.array([[-0.0, 0.0]])
    out = pyconv.max_pool2d(x, (1, 2))
    assert np.signbit(out[0, 0])  # the first of equal values, bit for bit


def test_overlapping_windows_accumulate_gradients():
    x = np.zeros((5, 5))
    x[2, 2] = 1.0  # the centre is the maximum of all four 3x3 stride-2 windows
    dx = pyconv.max_pool2d_backward(np.ones((2, 2)), x, 3, stride=2)
    assert dx[2, 2] == 4 and dx.sum() == 4


def test_handout_2c_example_in_one_call():
    I = np.array([[1, 2, 3, 4], [4, 3, 2, 1], [-1, 0, 1, 2], [0, -2, 4, 0]])
    np.testing.assert_array_equal(pyconv.max_pool2d(I, 3, stride=3, padding=1),
                                  [[4, 4], [0, 4]])


@pytest.mark.parametrize("size, stride, padding", [(2, 2, 0), (3, 2, 1), ((2, 3), 1, (1, 1))])
def test_max_pool_backward_passes_gradcheck(size, stride, padding):
    rng = np.random.default_rng(3)
    x = rng.permutation(2 * 6 * 7).reshape(1, 2, 6, 7) / 10.0  # distinct: no ties
    opts = dict(stride=stride, padding=padding)
    out = pyconv.max_pool2d(x, size, strict=False, **opts)
    dout = rng.standard_normal(out.shape)
    dx = pyconv.max_pool2d_backward(dout, x, size, **opts)
    pyconv.gradcheck(lambda x_: pyconv.max_pool2d(x_, size, strict=False, **opts), [x], [dx],
                     dout)


@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("size, stride, padding", [(2, 2, 0), (3, 2, 1), ((3, 2), (1, 2), (1, 1))])
def test_avg_pool_backward_passes_gradcheck(size, stride, padding, count_include_pad):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((1, 2, 6, 7))
    opts = dict(stride=stride, padding=padding, count_include_pad=count_include_pad)
    out = pyconv.avg_pool2d(x, size, strict=False, **opts)
    dout = rng.standard_normal(out.shape)
    dx = pyconv.avg_pool2d_backward(dout, x.shape, size, **opts)
    pyconv.gradcheck(lambda x_: pyconv.avg_pool2d(x_, size, strict=False, **opts), [x], [dx],
                     dout)


@pytest.mark.parametrize("padding", [0, 1])  # 0: the vector kernels
@pytest.mark.parametrize("dtype", DTYPES)
def test_results_do_not_depend_on_thread_count(dtype, padding):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 5, 23, 29)).astype(dtype)
    opts = dict(stride=2, padding=padding)
    out, idx = pyconv.max_pool2d(x, 3, return_indices=True, strict=False, **opts)
    dout = rng.standard_normal(out.shape).astype(dtype)
    calls = [
        lambda n: pyconv.max_pool2d(x, 3, return_indices=True, strict=False, num_threads=n,
                                    **opts),
        lambda n: pyconv.max_pool2d(x, 3, strict=False, num_threads=n, **opts),
        lambda n: pyconv.avg_pool2d(x, 3, strict=False, num_threads=n, **opts),
        lambda n: pyconv.max_pool2d_backward(dout, x, 3, num_threads=n, **opts),
        lambda n: pyconv.max_pool2d_backward(dout, x, 3, indices=idx, num_threads=n, **opts),
        lambda n: pyconv.avg_pool2d_backward(dout, x.shape, 3, count_include_pad=False,
                                             num_threads=n, **opts),
    ]
    for call in calls:
        one = call(1)
        for n in (2, 3, -1):
            np.testing.assert_array_equal(call(n), one)


def test_convenience_shapes_and_any_array():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((3, 8, 10))
    full = pyconv.max_pool2d(x[None], 2)
    np.testing.assert_array_equal(pyconv.max_pool2d(x, 2), full[0])  # (C, H, W)
    np.testing.assert_array_equal(pyconv.max_pool2d(x[0], 2), full[0, 0])  # (H, W)
    readonly = x.copy()
    readonly.flags.writeable = False
    fortran = np.asfortranarray(x)
    swapped = x.astype(x.dtype.newbyteorder())
    strided = np.repeat(x, 2, axis=2)[:, :, ::2]
    for y in (readonly, fortran, swapped, strided):
        np.testing.assert_array_equal(pyconv.max_pool2d(y, 2), full[0])
        np.testing.assert_array_equal(pyconv.avg_pool2d(y, 2), pyconv.avg_pool2d(x, 2))
    assert pyconv.max_pool2d(np.arange(16).reshape(4, 4), 2).dtype == np.float64
    assert pyconv.avg_pool2d(np.ones((4, 4), np.float16), 2).dtype == np.float32
    assert pyconv.max_pool2d(np.ones((0, 2, 4, 4)), 2).shape == (0, 2, 2, 2)
    dx = pyconv.avg_pool2d_backward(np.ones((2, 4, 5)), (2, 8, 10), 2)
    np.testing.assert_array_equal(dx, np.full((2, 8, 10), 0.25))


@pytest.mark.parametrize("call, error, message", [
    (lambda: pyconv.max_pool2d(np.ones(4), 2), ValueError, r"\(N, C, H, W\), \(C, H, W\) or"),
    (lambda: pyconv.max_pool2d(np.ones((4, 4), complex), 2), TypeError, "real numbers"),
    (lambda: pyconv.max_pool2d(np.ones((4, 4)), 2, padding=2), ValueError,
     "at most half the pool window"),
    (lambda: pyconv.max_pool2d(np.ones((5, 5)), 2), pyconv.InvalidConfigError,
     "not a whole number"),
    (lambda: pyconv.max_pool2d(np.ones((1, 4)), 2, padding=1, dilation=2, strict=False),
     ValueError, "no tap inside the input"),
    (lambda: pyconv.max_pool2d(np.ones((4, 4)), 0), ValueError, "size must be positive"),
    (lambda: pyconv.max_pool2d(np.ones((4, 4)), 2.0), TypeError, "size must be an int"),
    (lambda: pyconv.avg_pool2d(np.ones((4, 4)), (2, 2, 2)), ValueError, "an \\(h, w\\) pair"),
    (lambda: pyconv.max_pool2d(np.ones((4, 4)), 2, num_threads=0), ValueError, "num_threads=0"),
    (lambda: pyconv.max_pool2d_backward(np.ones((3, 3)), np.ones((4, 4)), 2), ValueError,
     r"dout must have the forward output's shape \(2, 2\), got \(3, 3\)"),
    (lambda: pyconv.max_pool2d_backward(np.ones((2, 2)), np.ones((4, 4)), 2,
                                        indices=np.zeros((2, 2))), TypeError,
     "indices must be integers"),
    (lambda: pyconv.max_pool2d_backward(np.ones((2, 2)), np.ones((4, 4)), 2,
                                        indices=np.zeros((1, 2, 2), int)), ValueError,
     r"indices must have the forward output's shape \(2, 2\)"),
    (lambda: pyconv.max_pool2d_backward(np.ones((2, 2)), np.ones((4, 4)), 2,
                                        indices=np.array([[0, 5], [16, 2]])), ValueError,
     r"indices must lie in \[0, H\*W\) = \[0, 16\).*from 0 to 16"),
    (lambda: pyconv.max_pool2d_backward(np.ones((2, 2)), np.ones((4, 4)), 2,
                                        indices=np.array([[0, -1], [3, 2]])), ValueError,
     "from -1 to 3"),
    (lambda: pyconv.avg_pool2d_backward(np.ones((2, 2)), (4,), 2), ValueError, "x_shape must"),
    (lambda: pyconv.avg_pool2d_backward(np.ones((2, 2)), (4, -4), 2), ValueError,
     "x_shape entries must be >= 0"),
    (lambda: pyconv.avg_pool2d_backward(np.ones((2, 3)), (4, 4), 2), ValueError,
     "dout must have the forward output's shape"),
])
def test_bad_input_gets_a_clear_error(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_valid_indices_from_elsewhere_are_accepted():
    # indices need not be the maxima: any flat position in the plane is a valid target
    idx = np.array([[[[15, 15], [0, 15]]]])
    dx = pyconv.max_pool2d_backward(np.ones((1, 1, 2, 2)), np.zeros((1, 1, 4, 4)), 2, indices=idx)
    assert dx[0, 0, 3, 3] == 3 and dx[0, 0, 0, 0] == 1 and dx.sum() == 4


# geometries of the vector kernels (no padding or dilation, window <= 3x3, column stride 1 or
# 2): (size, stride)
VECTOR_GEOMETRIES = [((2, 2), (2, 2)), ((3, 3), (2, 2)), ((3, 3), (1, 1)), ((1, 3), (3, 2)),
                     ((2, 1), (1, 1)), ((3, 2), (2, 1))]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size, stride", VECTOR_GEOMETRIES)
def test_vector_kernels_every_tail_length_bitwise(cpu_level, size, stride, dtype):
    # output widths 1..17, 32 and 33: every remainder of 16 (AVX-512 float) and 8, 4 lanes,
    # alone and after whole vectors; plane k has a NaN at column k (body and tail lanes)
    rng = np.random.default_rng(7)
    (fh, fw), (sh, sw) = size, stride
    for ow in list(range(1, 18)) + [32, 33]:
        w = (ow - 1) * sw + fw + rng.integers(0, sw)
        h = 2 * sh + fh
        x = _grid(rng, (2, w, h, w), dtype)
        x[:, np.arange(w), 0, np.arange(w)] = np.nan
        opts = dict(stride=stride, strict=False)
        ref, ref_idx = max_pool2d_naive(x, size, return_indices=True, **opts)
        np.testing.assert_array_equal(pyconv.max_pool2d(x, size, **opts), ref)
        out, idx = pyconv.max_pool2d(x, size, return_indices=True, **opts)
        np.testing.assert_array_equal(out, ref)
        np.testing.assert_array_equal(idx, ref_idx)  # ties and NaNs: the first
        assert np.isnan(ref).any() and not np.isnan(ref).all()
        dout = rng.standard_normal(ref.shape).astype(dtype)
        opts = dict(stride=stride)
        expected = max_pool2d_backward_naive(dout, x, size, **opts)
        np.testing.assert_array_equal(
            pyconv.max_pool2d_backward(dout, x, size, indices=ref_idx, **opts), expected)
        np.testing.assert_array_equal(pyconv.max_pool2d_backward(dout, x, size, **opts),
                                      expected)
        # indices outside their windows (the scatter takes any index in the plane)
        elsewhere = rng.integers(0, h * w, ref_idx.shape)
        np.testing.assert_array_equal(
            pyconv.max_pool2d_backward(dout, x, size, indices=elsewhere, **opts),
            max_pool2d_backward_naive(dout, x, size, indices=elsewhere, **opts))
        x = rng.standard_normal(x.shape).astype(dtype)
        # sums in the oracle's order: equal bit for bit, not just close
        np.testing.assert_array_equal(pyconv.avg_pool2d(x, size, strict=False, **opts),
                                      avg_pool2d_naive(x, size, strict=False, **opts))
        np.testing.assert_array_equal(pyconv.avg_pool2d_backward(dout, x.shape, size, **opts),
                                      avg_pool2d_backward_naive(dout, x.shape, size, **opts))



@pytest.mark.parametrize("dtype", DTYPES)
def test_a_single_plane_split_into_bands_of_rows(dtype):
    # fewer planes than threads: the vector forward kernels and the max-pooling gradients
    # cut each plane into row bands
    rng = np.random.default_rng(8)
    x = _grid(rng, (1, 2, 37, 41), dtype)
    x[rng.random(x.shape) < 0.05] = np.nan
    ref, ref_idx = max_pool2d_naive(x, 3, stride=2, return_indices=True)
    dout = rng.standard_normal(ref.shape).astype(dtype)
    elsewhere = rng.integers(0, 37 * 41, ref.shape)  # gradients land in any band
    for n in (1, 2, 3, 5, -1):
        np.testing.assert_array_equal(pyconv.max_pool2d(x, 3, stride=2, num_threads=n), ref)
        out, idx = pyconv.max_pool2d(x, 3, stride=2, return_indices=True, num_threads=n)
        np.testing.assert_array_equal(out, ref)
        np.testing.assert_array_equal(idx, ref_idx)
        for size, stride in (((2, 3), 1), (3, 2)):
            np.testing.assert_array_equal(
                pyconv.avg_pool2d(x[:1, :1], size, stride=stride, num_threads=n),
                avg_pool2d_naive(x[:1, :1], size, stride=stride))
        for indices in (None, ref_idx, elsewhere):
            np.testing.assert_array_equal(
                pyconv.max_pool2d_backward(dout, x, 3, stride=2, indices=indices,
                                           num_threads=n),
                max_pool2d_backward_naive(dout, x, 3, stride=2, indices=indices))


# average pooling's vector kernels: windows that overlap down the columns (FH > SH) walk
# bands of output rows (PV_BAND_BYTES of input rows each); the others go row by row.
# (size, stride): overlapping, non-square, stride > window, and 2x2 stride 2
AVG_VECTOR_GEOMETRIES = [((3, 3), (2, 2)), ((3, 3), (1, 1)), ((2, 2), (1, 1)),
                         ((3, 2), (1, 2)), ((2, 3), (1, 2)), ((3, 1), (2, 1)),
                         ((2, 2), (2, 2)), ((3, 3), (3, 2)), ((2, 2), (3, 2)), ((1, 3), (4, 1))]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size, stride", AVG_VECTOR_GEOMETRIES)
def test_avg_vector_kernels_across_bands_bitwise(cpu_level, size, stride, dtype):
    # widths 61 and 301 cut the output rows into bands of several rows and of one row
    # (with the vector body and an odd tail in each output row); 1 and 3 threads, 3 planes:
    # whole planes and bands of rows per thread
    rng = np.random.default_rng(9)
    for w in (61, 301):
        x = rng.standard_normal((1, 3, 41, w)).astype(dtype)
        ref = avg_pool2d_naive(x, size, stride=stride, strict=False)
        for n in (1, 3, 5):
            # sums in the oracle's order: equal bit for bit, not just close
            np.testing.assert_array_equal(
                pyconv.avg_pool2d(x, size, stride=stride, strict=False, num_threads=n), ref)


def _special_sums(dtype, rng):
    """Window sums for the vector kernels' quotient: a sweep over the bit patterns,
    subnormals, the largest and smallest normals, infinities, NaN and signed zeros."""
    info = np.finfo(dtype)
    if dtype == np.float32:
        sweep = np.arange(0, 2**32, 65537 * 3, dtype=np.uint64).astype(np.uint32).view(dtype)
        subnormal = rng.integers(1, 2**23, 3000, dtype=np.uint32).view(dtype)
    else:
        sweep = rng.integers(0, 2**64, 60000, dtype=np.uint64).view(dtype)
        subnormal = rng.integers(1, 2**52, 3000, dtype=np.uint64).view(dtype)
    edges = np.array([0.0, info.smallest_subnormal, info.smallest_normal, info.max,
                      info.smallest_normal * 3, info.max / 9, np.inf, np.nan], dtype)
    values = np.concatenate([sweep, subnormal, edges])
    return np.concatenate([values, -values])


@pytest.mark.parametrize("dtype", DTYPES)
def test_avg_vector_kernels_divide_exactly(cpu_level, dtype):
    # the vector kernels divide by 3 and 9 with a multiply and FMAs: every quotient must be
    # the division's; each window holds at most one nonzero, so its sum is that value
    rng = np.random.default_rng(10)
    values = _special_sums(dtype, rng)
    planes = -(-values.size // 121)
    x = np.zeros((planes, 41, 41), dtype)
    x[:, ::4, ::4] = np.resize(values, (planes, 11, 11))
    for size, stride in [((3, 3), (2, 2)), ((3, 1), (2, 1)), ((1, 3), (1, 2)),
                         ((3, 3), (1, 1)), ((2, 3), (1, 1)), ((3, 3), (3, 2))]:
        with np.errstate(invalid="ignore"):  # signalling NaNs among the bit patterns
            ref = avg_pool2d_naive(x, size, stride=stride, strict=False)
        out = pyconv.avg_pool2d(x, size, stride=stride, strict=False)
        np.testing.assert_array_equal(out, ref)
        assert np.array_equal(np.signbit(out), np.signbit(ref))  # zeros keep their sign


def test_checked_geometry_is_remembered_only_for_plain_ints():
    x = np.arange(16.0).reshape(4, 4)
    expected = pyconv.avg_pool2d(x, 2)  # remembered
    with pytest.raises(TypeError, match="size must be an int, got 2.0"):
        pyconv.avg_pool2d(x, 2.0)
    with pytest.raises(TypeError, match="size must be an int, got True"):
        pyconv.max_pool2d(x, True)
    with pytest.raises(ValueError, match="at most half the pool window"):
        pyconv.avg_pool2d(x, 2, padding=2)
    for size in ([2, 2], np.int64(2), (2, np.int32(2))):
        np.testing.assert_array_equal(pyconv.avg_pool2d(x, size), expected)
