"""conv2d and conv2d_backward with method="winograd", and the float32 precision setting."""
import concurrent.futures

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pyconv
from pyconv import conv
from pyconv.reference import conv2d_backward_naive, conv2d_im2col

from _helpers import DTYPES, assert_close

# The bound conv2d's Notes state: max|y - y64| <= BOUND * max|y64|, y64 the float64 oracle.
BOUND = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-12}


def assert_within_bound(got, want64, dtype):
    got = np.asarray(got, np.float64)
    scale = max(np.max(np.abs(want64), initial=0.0), np.finfo(np.float64).tiny)
    assert got.shape == want64.shape
    error = np.max(np.abs(got - want64), initial=0.0) / scale
    assert error <= BOUND[np.dtype(dtype)], error


@pytest.fixture(params=[2, 4])
def tile(request, monkeypatch):
    """Run the test with F(2x2, 3x3) and with F(4x4, 3x3), whatever the shape."""
    monkeypatch.setattr(conv, "_winograd_tile", lambda g, itemsize: (request.param, 0))
    return request.param


@pytest.fixture(params=["at once", "by items"])
def filter_transform(request, monkeypatch):
    """Run the test with the per-call filter transform made both ways, whatever the shape:
    all at once before the products, and by each item for its own filters."""
    monkeypatch.setattr(conv, "_WINOGRAD_ITEM_TRANSFORM_COST",
                        10**9 if request.param == "at once" else 0)
    return request.param


def _case(n, c, k, h, w, dtype, seed=0, scaled=False):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, w))
    wt = rng.standard_normal((k, c, 3, 3)) * (np.sqrt(2 / (c * 9)) if scaled else 1)
    b = rng.standard_normal(k)
    return x.astype(dtype), wt.astype(dtype), b.astype(dtype)


# (N, C, K, H, W, padding): odd and tiny sizes, partial tiles, paddings up to past the
# kernel's reach, more tiles and filters than one item takes
GRID = [
    (1, 1, 1, 5, 5, 0),
    (1, 1, 1, 3, 3, 0),             # one output
    (2, 3, 4, 7, 9, 1),
    (2, 3, 2, 8, 7, "same"),
    (2, 2, 2, 6, 6, "valid"),
    (1, 2, 3, 4, 11, (2, 0)),
    (2, 5, 7, 11, 13, 3),           # padding past the reach: dx through im2col
    (2, 2, 3, 40, 36, 1),           # wide output rows
    (3, 9, 17, 10, 9, 1),           # filters past a GEMM panel, tiles across images
    (1, 4, 33, 29, 31, 2),          # many tiles and filter chunks
    (2, 3, 4, 9, 11, ((0, 2), (1, 0))),   # per-side paddings (TensorFlow, ONNX)
    (1, 2, 3, 8, 10, ((2, 0), (0, 3))),   # one side past the reach: dx through im2col
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n, c, k, h, w, padding", GRID)
def test_forward_and_backward_within_the_bound(n, c, k, h, w, padding, dtype, tile,
                                               filter_transform, cpu_level):
    x, wt, b = _case(n, c, k, h, w, dtype)
    x64, w64, b64 = (a.astype(np.float64) for a in (x, wt, b))
    out = pyconv.conv2d(x, wt, b, padding=padding, method="winograd")
    assert out.dtype == dtype and out.flags.c_contiguous
    assert_within_bound(out, conv2d_im2col(x64, w64, b64, padding=padding), dtype)
    dout = np.random.default_rng(1).standard_normal(out.shape).astype(dtype)
    got = pyconv.conv2d_backward(dout, x, wt, padding=padding, method="winograd")
    want = conv2d_backward_naive(dout.astype(np.float64), x64, w64, padding=padding)
    for g, e in zip(got, want):
        assert g.dtype == dtype
        assert_within_bound(g, e, dtype)


@st.composite
def winograd_cases(draw):
    if draw(st.booleans()):
        padding = draw(st.sampled_from(["same", "valid"]))
        ph = pw = 1 if padding == "same" else 0
    elif draw(st.booleans()):
        ph, pw = draw(st.integers(0, 3)), draw(st.integers(0, 3))
        padding = (ph, pw)
    else:  # per side: ((top, bottom), (left, right))
        top, bottom, left, right = (draw(st.integers(0, 3)) for _ in range(4))
        padding = ((top, bottom), (left, right))
        ph, pw = (top + bottom) // 2, (left + right) // 2
    h = draw(st.integers(max(1, 3 - 2 * ph), 14))
    w = draw(st.integers(max(1, 3 - 2 * pw), 40))
    c, k, n = draw(st.integers(1, 9)), draw(st.integers(1, 20)), draw(st.integers(1, 3))
    dtype = draw(st.sampled_from(DTYPES))
    x, wt, b = _case(n, c, k, h, w, dtype, seed=draw(st.integers(0, 2**32 - 1)))
    return x, wt, b, padding


@settings(max_examples=40, deadline=None)
@given(case=winograd_cases())
def test_hypothesis_shapes_within_the_bound(case):
    x, wt, b, padding = case
    dtype = x.dtype
    x64, w64, b64 = (a.astype(np.float64) for a in (x, wt, b))
    out = pyconv.conv2d(x, wt, b, padding=padding, method="winograd")
    assert_within_bound(out, conv2d_im2col(x64, w64, b64, padding=padding), dtype)
    dout = np.random.default_rng(4).standard_normal(out.shape).astype(dtype)
    got = pyconv.conv2d_backward(dout, x, wt, padding=padding, method="winograd")
    for g, e in zip(got, conv2d_backward_naive(dout.astype(np.float64), x64, w64,
                                               padding=padding)):
        assert_within_bound(g, e, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("c, k, hw", [(64, 64, 56), (256, 256, 14)])  # VGG, ResNet-late
def test_benchmark_layers_within_the_bound_and_ten_times_im2col(c, k, hw, dtype, tile):
    """The README's accuracy table, on one image of each benchmark layer, with either tile
    size: standard-normal inputs, filters scaled by sqrt(2 / (C*9))."""
    x, wt, b = _case(1, c, k, hw, hw, dtype, scaled=True)
    want = conv2d_im2col(x.astype(np.float64), wt.astype(np.float64), b.astype(np.float64),
                         padding=1)
    scale = np.abs(want).max()
    errors = {}
    for method in ("winograd", "im2col"):
        got = pyconv.conv2d(x, wt, b, padding=1, method=method)
        errors[method] = np.abs(got - want).max() / scale
    assert errors["winograd"] <= max(BOUND[np.dtype(dtype)], 10 * errors["im2col"]), errors


def test_backward_passes_gradcheck():
    x, wt, b = _case(2, 3, 4, 6, 7, np.float64)

    def f(x, wt, b):
        return pyconv.conv2d(x, wt, b, padding=1, method="winograd")

    dout = np.random.default_rng(2).standard_normal(f(x, wt, b).shape)
    pyconv.gradcheck(f, (x, wt, b),
                     pyconv.conv2d_backward(dout, x, wt, padding=1, method="winograd"), dout)


@pytest.mark.parametrize("dtype", DTYPES)
def test_results_do_not_depend_on_thread_count(dtype, tile, filter_transform):
    x, wt, b = _case(3, 8, 20, 30, 27, dtype)
    one = pyconv.conv2d(x, wt, b, padding=1, method="winograd", num_threads=1)
    np.testing.assert_array_equal(
        one, pyconv.conv2d(x, wt, b, padding=1, method="winograd", num_threads=-1))
    dout = np.random.default_rng(5).standard_normal(one.shape).astype(dtype)
    dx1 = pyconv.conv2d_backward(dout, x, wt, padding=1, method="winograd", need="dx",
                                 num_threads=1)[0]
    dxa = pyconv.conv2d_backward(dout, x, wt, padding=1, method="winograd", need="dx",
                                 num_threads=-1)[0]
    np.testing.assert_array_equal(dx1, dxa)


@pytest.mark.parametrize("num_threads", [2, 3, 4, 7])
def test_few_tiles_split_over_filter_chunks_give_the_same_result(num_threads,
                                                                 filter_transform):
    # one image of 2 blocks of tiles: the filters (6 GEMM panels at AVX-512) go in as many
    # chunks as the thread count needs (1, 3, 2, 6; some uneven), never changing a value
    x, wt, b = _case(1, 6, 45, 14, 13, np.float32)
    one = pyconv.conv2d(x, wt, b, padding=1, method="winograd", num_threads=1)
    np.testing.assert_array_equal(
        one, pyconv.conv2d(x, wt, b, padding=1, method="winograd", num_threads=num_threads))


def test_any_memory_layout():
    x, wt, b = _case(2, 3, 4, 9, 8, np.float64)
    expected = pyconv.conv2d(x, wt, b, padding=1, method="winograd")
    readonly = x.copy()
    readonly.flags.writeable = False
    for variant in (np.asfortranarray(x), x.astype(x.dtype.newbyteorder()),
                    np.repeat(x, 2, axis=3)[..., ::2], readonly):
        np.testing.assert_array_equal(
            pyconv.conv2d(variant, np.asfortranarray(wt), b, padding=1, method="winograd"),
            expected)
    # integers compute in float64, 2-D x and w are one single-channel image and filter
    ints = np.arange(30).reshape(5, 6)
    np.testing.assert_allclose(pyconv.conv2d(ints, np.ones((3, 3), int), method="winograd"),
                               pyconv.conv2d(ints, np.ones((3, 3), int), method="im2col"),
                               rtol=1e-13)


def test_precision_setting_and_auto():
    assert pyconv.get_float32_conv_precision() == "highest"
    x, wt, b = _case(8, 16, 16, 12, 12, np.float32)
    direct = pyconv.conv2d(x, wt, b, padding=1, method="direct")  # auto's choice otherwise
    winograd = pyconv.conv2d(x, wt, b, padding=1, method="winograd")
    np.testing.assert_array_equal(pyconv.conv2d(x, wt, b, padding=1), direct)
    few = pyconv.conv2d(x[:, :3], wt[:, :3], padding=1)  # fewer channels than auto's rule
    # one 6x6 image: too few output positions for the filters' transform to pay
    one = pyconv.conv2d(x[:1, :, :6, :6], wt, padding=1)
    with pyconv.float32_conv_precision("high"):
        assert pyconv.get_float32_conv_precision() == "high"
        np.testing.assert_array_equal(pyconv.conv2d(x, wt, b, padding=1), winograd)
        # float64, stride 2 and too few channels keep the "highest" choice
        x64, w64 = x.astype(np.float64), wt.astype(np.float64)
        np.testing.assert_array_equal(pyconv.conv2d(x64, w64, padding=1),
                                      pyconv.conv2d(x64, w64, padding=1, method="direct"))
        np.testing.assert_array_equal(
            pyconv.conv2d(x, wt, padding=1, stride=2, strict=False),
            pyconv.conv2d(x, wt, padding=1, stride=2, strict=False, method="direct"))
        np.testing.assert_array_equal(pyconv.conv2d(x[:, :3], wt[:, :3], padding=1), few)
        np.testing.assert_array_equal(pyconv.conv2d(x[:1, :, :6, :6], wt, padding=1), one)
        dout = np.ones_like(winograd)
        np.testing.assert_array_equal(
            pyconv.conv2d_backward(dout, x, wt, padding=1, need="dx")[0],
            pyconv.conv2d_backward(dout, x, wt, padding=1, need="dx", method="winograd")[0])
    assert pyconv.get_float32_conv_precision() == "highest"
    try:
        pyconv.set_float32_conv_precision("high")
        assert pyconv.get_float32_conv_precision() == "high"
        with pytest.raises(ValueError, match="got 'low'"):
            with pyconv.float32_conv_precision("low"):
                pass
        assert pyconv.get_float32_conv_precision() == "high"
    finally:
        pyconv.set_float32_conv_precision("highest")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n, c, k, h, w, padding", GRID)
def test_winograd_filters_give_the_same_result_bit_for_bit(cpu_level, n, c, k, h, w, padding,
                                                           dtype, tile, filter_transform):
    x, wt, b = _case(n, c, k, h, w, dtype, seed=3)
    filters = pyconv.WinogradFilters(wt)
    expected = pyconv.conv2d(x, wt, b, padding=padding, method="winograd", strict=False)
    for _ in range(2):  # the transform made by the first call, reused by the second
        got = pyconv.conv2d(x, filters, b, padding=padding, method="winograd", strict=False)
        np.testing.assert_array_equal(got, expected)
    got = pyconv.conv2d(x.transpose(0, 2, 3, 1), filters, b, padding=padding,
                        method="winograd", strict=False, layout="NHWC")
    np.testing.assert_array_equal(got, expected.transpose(0, 2, 3, 1))


def test_winograd_filters_copy_the_filters_and_keep_one_transform_per_kind():
    x, wt, _ = _case(2, 3, 4, 8, 8, np.float32, seed=4)
    filters = pyconv.WinogradFilters(wt)
    expected = pyconv.conv2d(x, wt, padding=1, method="winograd")
    wt[...] = 0  # the caller's array changes; the object's copy does not
    np.testing.assert_array_equal(pyconv.conv2d(x, filters, padding=1, method="winograd"),
                                  expected)
    assert filters.dtype == np.float32 and filters.shape == (4, 3, 3, 3)
    assert not filters.filters.flags.writeable
    # float64 input computes in float64 from the float32 filters: a second transform
    wide = pyconv.conv2d(x.astype(np.float64), filters, padding=1, method="winograd")
    assert wide.dtype == np.float64
    assert_within_bound(wide, conv2d_im2col(x.astype(np.float64),
                                            filters.filters.astype(np.float64), padding=1),
                        np.float64)
    assert "transforms held=2" in repr(filters)


def test_winograd_filters_refuse_other_methods_and_shapes():
    filters = pyconv.WinogradFilters(np.ones((2, 3, 3, 3)))
    x = np.ones((1, 3, 6, 6))
    for method in ("auto", "direct", "im2col"):
        with pytest.raises(ValueError, match=f"method must be 'winograd', got '{method}'"):
            pyconv.conv2d(x, filters, method=method)
    with pytest.raises(ValueError, match="needs stride 1"):
        pyconv.conv2d(x, filters, stride=3, method="winograd")
    with pytest.raises(ValueError, match="channels"):
        pyconv.conv2d(np.ones((1, 4, 6, 6)), filters, method="winograd")
    with pytest.raises(ValueError, match=r"3x3 filters of shape \(K, C, 3, 3\), got shape"):
        pyconv.WinogradFilters(np.ones((2, 3, 5, 5)))
    with pytest.raises(TypeError):
        pyconv.WinogradFilters(np.ones((2, 3, 3, 3), complex))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k", [8, 21])
def test_filters_transformed_in_chunks_give_the_same_result(monkeypatch, dtype, k):
    monkeypatch.setattr(conv, "_WINOGRAD_ITEM_TRANSFORM_COST", 10**9)  # all at once
    x, wt, b = _case(2, 5, k, 9, 11, dtype)
    dout = np.random.default_rng(1).standard_normal((2, k, 9, 11)).astype(dtype)
    whole = pyconv.conv2d(x, wt, b, padding=1, method="winograd")
    dx = pyconv.conv2d_backward(dout, x, wt, padding=1, need="dx", method="winograd")[0]
    monkeypatch.setattr(conv, "_WINOGRAD_FILTER_BYTES", 1)  # one panel of filters a chunk
    np.testing.assert_array_equal(pyconv.conv2d(x, wt, b, padding=1, method="winograd"), whole)
    np.testing.assert_array_equal(
        pyconv.conv2d_backward(dout, x, wt, padding=1, need="dx", method="winograd")[0], dx)


@pytest.mark.parametrize("n, c, size, tile", [
    (8, 64, 56, 4),   # VGG: 4x4 tiles need 0.56 times the products of 2x2
    (8, 256, 14, 4),  # ResNet-late: 0.73 times, well worth its transforms
    (1, 512, 7, 2),   # 4 tiles of 4x4 against 16 of 2x2 share one GEMM column block,
                      # and 4x4 tiles transform 36/16 times the filter values
])
def test_tile_choice_counts_the_filter_transform(n, c, size, tile):
    g = conv.Geometry(n, c, size, size, c, 3, 3, size, size, (1, 1), (1, 1, 1, 1), (1, 1), 1)
    assert conv._winograd_tile(g, 4)[0] == tile


def test_per_call_transform_by_items_where_few_blocks_meet_each_filter():
    # one block (one ResNet-late image): the items transform their own filters, in cache;
    # a batch of VGG's 56x56 images (33 blocks) transforms them once, for all blocks
    assert conv._winograd_transform_cost(1)[1]
    assert not conv._winograd_transform_cost(33)[1]
    # a cost that grows with the blocks either way, and never above the at-once way's
    costs = [conv._winograd_transform_cost(blocks)[0] for blocks in range(1, 40)]
    assert costs == sorted(costs)
    assert all(cost <= conv._WINOGRAD_TRANSFORM_COST + conv._WINOGRAD_READ_COST * blocks
               for blocks, cost in enumerate(costs, 1))


def test_calls_of_any_size_and_thread_share_no_buffers(filter_transform):
    """Each Python thread keeps one scratch buffer for the per-call transforms: calls that
    grow it, calls that fit in it and calls from other threads at the same time all
    give the result of a call on its own."""
    cases = [_case(n, c, k, h, h, np.float32, seed=n + c) for n, c, k, h in
             ((2, 8, 24, 9), (1, 40, 48, 14), (3, 8, 8, 5), (2, 40, 48, 14))]
    alone = [pyconv.conv2d(x, wt, b, padding=1, method="winograd") for x, wt, b in cases]
    for (x, wt, b), expected in zip(cases * 2, alone * 2):
        np.testing.assert_array_equal(pyconv.conv2d(x, wt, b, padding=1, method="winograd"),
                                      expected)
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(pyconv.conv2d, x, wt, b, padding=1, method="winograd",
                               num_threads=1) for x, wt, b in cases * 4]
        for future, expected in zip(futures, alone * 4):
            np.testing.assert_array_equal(future.result(), expected)
