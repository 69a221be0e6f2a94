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


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 2), c=st.integers(1, 3), h=st.integers(1, 24), w=st.integers(1, 40),
       fh=st.integers(1, 4), fw=st.integers(1, 4), sh=st.integers(1, 4), sw=st.integers(1, 4),
       dh=st.integers(1, 2), dw=st.integers(1, 2), ceil_mode=st.booleans(), data=st.data(),
       dtype=st.sampled_from(DTYPES), seed=st.integers(0, 2**32 - 1))
def test_pooling_hypothesis(n, c, h, w, fh, fw, sh, sw, dh, dw, ceil_mode, data, dtype, seed):
    """Unequal paddings on each side, strides, dilations and ceil mode, forward and backward."""
    if data.draw(st.booleans()):
        padding = data.draw(st.sampled_from(["same", "valid"]))
        ceil_mode = ceil_mode and padding == "valid"
    else:
        padding = tuple((data.draw(st.integers(0, f // 2)), data.draw(st.integers(0, f // 2)))
                        for f in (fh, fw))
    rng = np.random.default_rng(seed)
    x = _grid(rng, (n, c, h, w), dtype)
    x[rng.random(x.shape) < 0.05] = np.nan
    geometry = dict(stride=(sh, sw), padding=padding, dilation=(dh, dw), ceil_mode=ceil_mode)
    try:
        ref, ref_idx = max_pool2d_naive(x, (fh, fw), strict=False, return_indices=True,
                                        **geometry)
    except ValueError:  # the window does not fit; both sides must refuse it
        with pytest.raises(ValueError):
            pyconv.max_pool2d(x, (fh, fw), strict=False, **geometry)
        return
    out, idx = pyconv.max_pool2d(x, (fh, fw), strict=False, return_indices=True, **geometry)
    np.testing.assert_array_equal(out, ref)
    np.testing.assert_array_equal(idx, ref_idx)
    dout = rng.standard_normal(out.shape).astype(dtype)
    np.testing.assert_array_equal(pyconv.max_pool2d_backward(dout, x, (fh, fw), **geometry),
                                  max_pool2d_backward_naive(dout, x, (fh, fw), **geometry))
    x = np.nan_to_num(x)
    for count_include_pad in (True, False):
        opts = dict(geometry, count_include_pad=count_include_pad)
        ref = avg_pool2d_naive(x, (fh, fw), strict=False, **opts)
        np.testing.assert_array_equal(pyconv.avg_pool2d(x, (fh, fw), strict=False, **opts), ref)
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


@pytest.mark.parametrize("options", [
    dict(padding=((0, 1), (1, 0)), stride=2), dict(ceil_mode=True, stride=2),
    dict(ceil_mode=True, stride=(2, 3), padding=((1, 0), (0, 1)), dilation=(1, 2)),
    dict(padding="same", stride=2),
])
def test_conventions_pass_gradcheck(options):
    rng = np.random.default_rng(13)
    x = rng.permutation(2 * 7 * 8).reshape(1, 2, 7, 8) / 10.0  # distinct: no ties
    out = pyconv.max_pool2d(x, 3, strict=False, **options)
    dout = rng.standard_normal(out.shape)
    pyconv.gradcheck(lambda x_: pyconv.max_pool2d(x_, 3, strict=False, **options), [x],
                     [pyconv.max_pool2d_backward(dout, x, 3, **options)], dout)
    for count_include_pad in (True, False):
        avg = dict(options, count_include_pad=count_include_pad)
        pyconv.gradcheck(lambda x_: pyconv.avg_pool2d(x_, 3, strict=False, **avg), [x],
                         [pyconv.avg_pool2d_backward(dout, x.shape, 3, **avg)], dout)


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


# (size, stride, padding, dilation, ceil_mode): unequal paddings (TensorFlow's and ONNX's
# explicit ones), ceil mode with and without padding, dilated averages; some keep the
# vector kernels' geometry (no top/left padding, every window inside), the rest the planes
CONVENTIONS = [
    (2, 2, ((0, 1), (0, 1)), 1, False), (3, 2, ((0, 1), (1, 0)), 1, False),
    (3, 1, ((1, 0), (0, 1)), 1, False), ((2, 3), (1, 2), ((1, 0), (0, 1)), 1, False),
    (2, 2, 0, 1, True), (3, 2, 0, 1, True), (3, 2, 1, 1, True), (3, 3, ((0, 1), (1, 1)), 1, True),
    ((3, 2), (2, 3), ((1, 1), (0, 1)), 1, True), (2, 2, "same", 1, False),
    (3, 2, "same", 1, False), (3, 1, "same", 2, False), (2, 3, "valid", 1, True),
    (2, 1, 0, 2, False), ((2, 3), (2, 1), ((1, 0), (1, 1)), (2, 2), True),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES + [(1, 2, 6, 70)])  # 6x70: some keep the vector kernels
@pytest.mark.parametrize("size, stride, padding, dilation, ceil_mode", CONVENTIONS)
def test_conventions_match_oracle_at_every_cpu_level(size, stride, padding, dilation,
                                                     ceil_mode, shape, dtype, cpu_level):
    rng = np.random.default_rng(7)
    x = _grid(rng, shape, dtype)
    opts = dict(stride=stride, padding=padding, dilation=dilation, ceil_mode=ceil_mode)
    out, idx = pyconv.max_pool2d(x, size, return_indices=True, strict=False, **opts)
    ref, ref_idx = max_pool2d_naive(x, size, return_indices=True, strict=False, **opts)
    np.testing.assert_array_equal(out, ref)
    np.testing.assert_array_equal(idx, ref_idx)
    dout = rng.standard_normal(out.shape).astype(dtype)
    np.testing.assert_array_equal(pyconv.max_pool2d_backward(dout, x, size, **opts),
                                  max_pool2d_backward_naive(dout, x, size, **opts))
    x = rng.standard_normal(shape).astype(dtype)
    for count_include_pad in (True, False):
        avg = dict(opts, count_include_pad=count_include_pad)
        out = pyconv.avg_pool2d(x, size, strict=False, **avg)
        np.testing.assert_array_equal(out, avg_pool2d_naive(x, size, strict=False, **avg))
        assert_close(pyconv.avg_pool2d_backward(dout, shape, size, **avg),
                     avg_pool2d_backward_naive(dout, shape, size, **avg), dtype)


def _torch():
    return pytest.importorskip("torch", reason="PyTorch is not installed")


@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("h, w, size, stride, padding, dilation", [
    (7, 7, 2, 2, 0, 1), (6, 6, 3, 2, 0, 1), (6, 7, 3, 2, 1, 1), (5, 9, 3, 3, 1, 1),
    (8, 5, (3, 2), (2, 3), (1, 1), 1), (10, 10, 3, 4, 1, 1), (9, 8, 2, 3, 1, 1),
    (11, 12, 3, 2, 1, 2), (4, 4, 2, 2, 1, 1), (5, 5, 4, 3, 2, 1),
])
def test_ceil_mode_matches_pytorch(h, w, size, stride, padding, dilation, count_include_pad):
    """Sizes, maxima, indices, and the average's divisor (PyTorch's: the window part past
    the padding never counts, even with count_include_pad) forward and backward."""
    torch = _torch()
    F = torch.nn.functional
    rng = np.random.default_rng(8)
    x = rng.standard_normal((2, 3, h, w))
    xt = torch.from_numpy(x).requires_grad_()
    opts = dict(stride=stride, padding=padding, ceil_mode=True)
    want, want_idx = F.max_pool2d(xt, size, dilation=dilation, return_indices=True, **opts)
    out, idx = pyconv.max_pool2d(x, size, dilation=dilation, return_indices=True, **opts)
    np.testing.assert_array_equal(out, want.detach().numpy())
    np.testing.assert_array_equal(idx, want_idx.numpy())
    dout = rng.standard_normal(out.shape)
    want.backward(torch.from_numpy(dout))
    np.testing.assert_array_equal(pyconv.max_pool2d_backward(dout, x, size, dilation=dilation,
                                                             **opts), xt.grad.numpy())
    assert out.shape == tuple(want.shape)
    if dilation != 1:
        return  # PyTorch's avg_pool2d has no dilation
    xt.grad = None
    want = F.avg_pool2d(xt, size, count_include_pad=count_include_pad, **opts)
    out = pyconv.avg_pool2d(x, size, count_include_pad=count_include_pad, **opts)
    assert_close(out, want.detach().numpy(), np.float64)
    want.backward(torch.from_numpy(dout))
    assert_close(pyconv.avg_pool2d_backward(dout, x.shape, size,
                                            count_include_pad=count_include_pad, **opts),
                 xt.grad.numpy(), np.float64)


@pytest.mark.parametrize("pads", [(0, 1, 0, 1), (1, 0, 2, 0), (0, 2, 1, 1), (2, 1, 0, 2)])
@pytest.mark.parametrize("stride", [1, 2, (3, 2)])
def test_unequal_paddings_match_pytorch_on_the_padded_input(pads, stride):
    """Max pooling of an input padded with -inf, and averages of one padded with zeros (the
    divisor with count_include_pad=False: the same pooling of the padded mask of ones)."""
    torch = _torch()
    F = torch.nn.functional
    rng = np.random.default_rng(9)
    x = rng.standard_normal((2, 2, 9, 10))
    top, bottom, left, right = pads
    padding = ((top, bottom), (left, right))
    xt = torch.from_numpy(x)
    spread = (left, right, top, bottom)
    want = F.max_pool2d(F.pad(xt, spread, value=-np.inf), 4, stride=stride)
    np.testing.assert_array_equal(pyconv.max_pool2d(x, 4, stride=stride, padding=padding,
                                                    strict=False), want.numpy())
    sums = F.avg_pool2d(F.pad(xt, spread), 4, stride=stride)
    np.testing.assert_allclose(pyconv.avg_pool2d(x, 4, stride=stride, padding=padding,
                                                 strict=False), sums.numpy(), rtol=1e-12)
    counts = F.avg_pool2d(F.pad(torch.ones_like(xt), spread), 4, stride=stride)
    np.testing.assert_allclose(pyconv.avg_pool2d(x, 4, stride=stride, padding=padding,
                                                 count_include_pad=False, strict=False),
                               (sums / counts).numpy(), rtol=1e-12)


@pytest.mark.parametrize("h, size, stride", [(7, 2, 2), (8, 3, 2), (9, 3, 3), (5, 4, 1),
                                             (6, 1, 4), (10, 3, 1)])
def test_same_padding_is_tensorflows_at_any_stride(h, size, stride):
    """OH = ceil(H / stride), the odd padding at the bottom and right: the same as the
    explicit padding, and as PyTorch on the input padded with -inf."""
    torch = _torch()
    F = torch.nn.functional
    x = np.random.default_rng(10).standard_normal((1, 2, h, h + 1))
    out = pyconv.max_pool2d(x, size, stride=stride, padding="same")
    sides = []
    for n in (h, h + 1):
        o = -(-n // stride)
        total = max((o - 1) * stride + size - n, 0)
        sides.append((total // 2, total - total // 2))
    assert out.shape[2:] == (-(-h // stride), -(-(h + 1) // stride))
    np.testing.assert_array_equal(out, pyconv.max_pool2d(x, size, stride=stride,
                                                         padding=tuple(sides), strict=False))
    (t, b), (lft, r) = sides
    want = F.max_pool2d(F.pad(torch.from_numpy(x), (lft, r, t, b), value=-np.inf), size,
                        stride=stride)
    np.testing.assert_array_equal(out, want.numpy())
    np.testing.assert_array_equal(pyconv.avg_pool2d(x, size, stride=stride, padding="same"),
                                  avg_pool2d_naive(x, size, stride=stride, padding="same"))


def test_onnx_dilated_average_pool():
    """ONNX's averagepool_2d_dilations test: 2x2 windows, dilation 2, ceil mode, and the
    divisor of ONNX's reference (the taps inside the padded input) with padding."""
    x = np.arange(1, 17, dtype=np.float32).reshape(1, 1, 4, 4)
    np.testing.assert_array_equal(
        pyconv.avg_pool2d(x, 2, stride=1, dilation=2, ceil_mode=True)[0, 0],
        [[6, 7], [10, 11]])
    # one padded row and column on each side: with count_include_pad the window at
    # (0, 0) has taps (-1, -1), (-1, 1), (1, -1), (1, 1): one real, three padded zeros
    out = pyconv.avg_pool2d(x, 2, stride=1, dilation=2, padding=1)
    np.testing.assert_array_equal(out[0, 0, 0, 0], 6 / 4)
    out = pyconv.avg_pool2d(x, 2, stride=1, dilation=2, padding=1, count_include_pad=False)
    np.testing.assert_array_equal(out[0, 0, 0, 0], 6)


@pytest.mark.parametrize("dtype", DTYPES)
def test_conventions_do_not_depend_on_thread_count(dtype):
    rng = np.random.default_rng(11)
    x = rng.standard_normal((3, 5, 23, 29)).astype(dtype)
    opts = dict(stride=2, padding=((0, 1), (1, 0)), ceil_mode=True)
    out = pyconv.max_pool2d(x, 3, **opts)
    dout = rng.standard_normal(out.shape).astype(dtype)
    calls = [
        lambda n: pyconv.max_pool2d(x, 3, return_indices=True, num_threads=n, **opts),
        lambda n: pyconv.avg_pool2d(x, 3, dilation=(1, 2), num_threads=n, **opts),
        lambda n: pyconv.max_pool2d_backward(dout, x, 3, num_threads=n, **opts),
        lambda n: pyconv.avg_pool2d_backward(dout, x.shape, 3, num_threads=n, **opts),
        lambda n: pyconv.max_pool2d(x, 3, stride=2, padding="same", num_threads=n),
    ]
    for call in calls:
        want = call(1)
        want = want if isinstance(want, tuple) else (want,)
        for n in (2, 3):
            got = call(n)
            for a, b in zip(want, got if isinstance(got, tuple) else (got,)):
                np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape, size, stride, padding", [
    ((1, 2, 2, 3), (3, 1), (2, 1), "same"),            # a window past the bottom row
    ((1, 1, 1, 1), (1, 2), 2, "same"),                 # past the right column
    ((2, 3, 2, 2), 3, 2, ((0, 1), (0, 1))),            # both, with explicit padding
    ((1, 2, 2, 9), (3, 2), (2, 2), ((0, 1), (0, 0))),
])
def test_windows_past_the_input_with_only_bottom_right_padding(shape, size, stride, padding,
                                                                dtype, cpu_level):
    """Top-left unpadded and one window: not the vector kernels' geometry (they read only
    inside the input), though the output size alone would match theirs."""
    rng = np.random.default_rng(14)
    x = rng.standard_normal(shape).astype(dtype)
    x[..., 0, 0] = np.nan
    opts = dict(stride=stride, padding=padding, strict=False)
    out, idx = pyconv.max_pool2d(x, size, return_indices=True, **opts)
    ref, ref_idx = max_pool2d_naive(x, size, return_indices=True, **opts)
    np.testing.assert_array_equal(out, ref)
    np.testing.assert_array_equal(idx, ref_idx)
    x = np.nan_to_num(x)
    for count_include_pad in (True, False):
        avg = dict(opts, count_include_pad=count_include_pad)
        np.testing.assert_array_equal(pyconv.avg_pool2d(x, size, **avg),
                                      avg_pool2d_naive(x, size, **avg))
        dout = rng.standard_normal(out.shape).astype(dtype)
        del avg["strict"]
        assert_close(pyconv.avg_pool2d_backward(dout, shape, size, **avg),
                     avg_pool2d_backward_naive(dout, shape, size, **avg), dtype)
