"""pyconv.conv2d and conv2d_backward, every method, against the NumPy oracles."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pyconv
from pyconv.reference import conv2d_backward_naive, conv2d_im2col, conv2d_naive

from _helpers import DTYPES, assert_close

METHODS = ["im2col", "direct", "auto"]

I = np.array([[1, 2, 3, 4], [4, 3, 2, 1], [-1, 0, 1, 2], [0, -2, 4, 0]])
F = np.array([[1, -1], [0, 2]])

# (N, C, K, H, W, FH, FW, options)
GRID = [
    (1, 1, 1, 5, 5, 3, 3, {}),                                        # batch 1, channel 1
    (2, 3, 4, 7, 9, 3, 2, {}),                                        # FH != FW
    (2, 3, 4, 9, 7, 2, 5, {"padding": (1, 2)}),
    (3, 2, 5, 6, 6, 1, 1, {}),                                        # 1x1, stride 1
    (2, 3, 4, 16, 17, 1, 1, {}),                                      # 1x1, in place
    (2, 4, 3, 7, 8, 1, 1, {"stride": 2, "strict": False}),            # 1x1, stride 2
    (2, 2, 3, 9, 9, 2, 2, {"stride": 5, "padding": 3, "strict": False}),  # stride > kernel
    (2, 3, 2, 8, 7, 4, 2, {"padding": "same"}),                       # even kernel, "same"
    (1, 2, 2, 6, 7, 3, 4, {"padding": "same", "dilation": 2}),
    (2, 2, 2, 6, 6, 3, 3, {"padding": "valid"}),
    (2, 3, 3, 9, 10, 3, 2, {"dilation": (2, 3), "padding": 1}),
    (2, 4, 6, 7, 7, 3, 3, {"groups": 2, "stride": (2, 1), "padding": 1, "strict": False}),
    (2, 4, 4, 6, 5, 3, 3, {"groups": 4, "padding": 1}),              # depthwise
    (1, 3, 6, 5, 5, 2, 3, {"groups": 3, "padding": (0, 1)}),         # depthwise, multiplier 2
    (2, 2, 3, 40, 36, 3, 3, {"padding": 1}),                          # wide output rows
    (2, 3, 2, 4, 4, 5, 5, {"padding": 2}),                            # kernel larger than x
    (2, 3, 4, 9, 8, 3, 3, {"padding": ((0, 2), (1, 0)), "stride": 2, "strict": False}),
    (2, 2, 3, 7, 7, 3, 2, {"padding": "same", "stride": 2}),         # TensorFlow's "same"
]


def _case(n, c, k, h, w, fh, fw, options, dtype, seed=0):
    rng = np.random.default_rng(seed)
    groups = options.get("groups", 1)
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    wt = rng.standard_normal((k, c // groups, fh, fw)).astype(dtype)
    b = rng.standard_normal(k).astype(dtype)
    return x, wt, b


def _backward_options(options):
    return {key: value for key, value in options.items() if key != "strict"}


@pytest.mark.parametrize("method", METHODS)
def test_handout_2a_and_2b_in_one_call(method):
    np.testing.assert_array_equal(pyconv.conv2d(I, F, method=method),
                                  [[5, 3, 1], [1, 3, 5], [-5, 7, -1]])
    np.testing.assert_array_equal(pyconv.conv2d(I, F, stride=2, padding=1, method=method),
                                  [[2, 6, 0], [-6, 3, 1], [0, -6, 0]])


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n, c, k, h, w, fh, fw, options", GRID)
def test_forward_matches_oracles(n, c, k, h, w, fh, fw, options, dtype, method):
    x, wt, b = _case(n, c, k, h, w, fh, fw, options, dtype)
    out = pyconv.conv2d(x, wt, b, method=method, **options)
    assert out.dtype == dtype and out.flags.c_contiguous
    assert_close(out, conv2d_naive(x.astype(np.float64), wt.astype(np.float64), b, **options),
                 dtype)
    assert_close(pyconv.conv2d(x, wt, method=method, **options),
                 conv2d_im2col(x, wt, **options), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k, w, options", [
    (8, 16, {}),                              # whole tiles of 8 filters (AVX-512)
    (13, 51, {"padding": 1}),                 # filters and positions past a tile's edge
    (3, 40, {"stride": (2, 3), "padding": (1, 2)}),  # 1, 2 and 3-vector edge panels
    (20, 70, {"stride": 2, "dilation": (2, 1)}),     # phases of a dilated, strided kernel
    (6, 9, {"stride": 5}),                    # stride > kernel: fewer phases than stride
    (13, 51, {"padding": "same"}),            # OW == W: the unpadded planes, masked
    (9, 5, {"padding": "same", "dilation": (2, 3)}),  # masks of dilated taps, narrow rows
    (4, 1, {"padding": "same"}),              # one panel across both images' planes
])
def test_im2col_forward_gemm_tile_at_every_cpu_level(k, w, options, dtype, cpu_level):
    """The GEMM tile of each CPU level, its edge tiles, the phase-split input and
    the masked reads of unpadded planes."""
    x, wt, b = _case(2, 5, k, 11, w, 3, 4, options, dtype)
    out = pyconv.conv2d(x, wt, b, method="im2col", strict=False, **options)
    assert_close(out, conv2d_naive(x.astype(np.float64), wt.astype(np.float64), b, strict=False,
                                   **options), dtype)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n, c, k, h, w, fh, fw, options", GRID)
def test_backward_matches_oracle(n, c, k, h, w, fh, fw, options, dtype, method):
    options = _backward_options(options)
    x, wt, _ = _case(n, c, k, h, w, fh, fw, options, dtype)
    dout = np.random.default_rng(1).standard_normal(
        conv2d_im2col(x, wt, strict=False, **options).shape).astype(dtype)
    dx, dw, db = pyconv.conv2d_backward(dout, x, wt, method=method, **options)
    expected = conv2d_backward_naive(dout.astype(np.float64), x.astype(np.float64),
                                     wt.astype(np.float64), **options)
    for got, want in zip((dx, dw, db), expected):
        assert got.dtype == dtype
        assert_close(got, want, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("stride", [1, 2])  # dx as a forward conv; dx through col2im
def test_im2col_backward_in_blocks_of_channels(stride, dtype):
    """More column rows (C*FH*FW) than one backward block holds: the channels go in
    blocks, each with its own products and its own rows of dw."""
    from pyconv.conv import _BACKWARD_ROWS
    c = _BACKWARD_ROWS // 9 + 2  # two blocks of 3x3 channels, the second one narrower
    x, wt, _ = _case(2, c, 3, 6, 5, 3, 3, {}, dtype)
    dout = np.random.default_rng(7).standard_normal(
        conv2d_im2col(x, wt, stride=stride, padding=1, strict=False).shape).astype(dtype)
    got = pyconv.conv2d_backward(dout, x, wt, stride=stride, padding=1, method="im2col")
    expected = conv2d_backward_naive(dout.astype(np.float64), x.astype(np.float64),
                                     wt.astype(np.float64), stride=stride, padding=1)
    for g, want in zip(got, expected):
        assert_close(g, want, dtype)


@pytest.mark.parametrize("method", ["im2col", "direct"])  # "auto" runs one of them
@pytest.mark.parametrize("n, c, k, h, w, fh, fw, options", [
    (2, 2, 2, 5, 4, 3, 2, {"padding": 1, "stride": (2, 1), "strict": False}),
    (1, 2, 2, 4, 5, 3, 3, {"groups": 2, "padding": "same", "dilation": 2}),
    (1, 4, 2, 4, 4, 2, 2, {"groups": 2, "padding": "same"}),
])
def test_backward_passes_gradcheck(n, c, k, h, w, fh, fw, options, method):
    options = _backward_options(options)
    x, wt, b = _case(n, c, k, h, w, fh, fw, options, np.float64)

    def f(x, wt, b):
        return pyconv.conv2d(x, wt, b, method=method, strict=False, **options)

    dout = np.random.default_rng(2).standard_normal(f(x, wt, b).shape)
    grads = pyconv.conv2d_backward(dout, x, wt, method=method, **options)
    pyconv.gradcheck(f, (x, wt, b), grads, dout)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("need", [("dx",), ("dw",), ("db",), ("dx", "db"), ("dw", "db"),
                                  ("dx", "dw"), "dw", ()])
def test_backward_need_subsets(need, method):
    x, wt, _ = _case(2, 4, 6, 7, 6, 3, 2, {"groups": 2}, np.float64)
    dout = np.random.default_rng(3).standard_normal((2, 6, 5, 5))
    full = pyconv.conv2d_backward(dout, x, wt, groups=2, method=method)
    part = pyconv.conv2d_backward(dout, x, wt, groups=2, method=method, need=need)
    wanted = (need,) if isinstance(need, str) else need
    for name, got, want in zip(("dx", "dw", "db"), part, full):
        if name in wanted:
            np.testing.assert_array_equal(got, want)
        else:
            assert got is None


@st.composite
def conv_cases(draw):
    groups = draw(st.integers(1, 3))
    c = groups * draw(st.integers(1, 3))
    k = groups * draw(st.integers(1, 3))
    fh, fw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    dh, dw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    sh, sw = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    kind = draw(st.sampled_from(["same", "valid", "pair", "sides"]))
    top = bottom = left = right = 0
    if kind in ("same", "valid"):
        padding = kind  # "same" at any stride and dilation, TensorFlow's rule
    elif kind == "pair":
        top = bottom = draw(st.integers(0, 3))
        left = right = draw(st.integers(0, 3))
        padding = (top, left)
    else:
        top, bottom, left, right = (draw(st.integers(0, 3)) for _ in range(4))
        padding = ((top, bottom), (left, right))
    h = draw(st.integers(max(1, dh * (fh - 1) + 1 - top - bottom), 12))
    w = draw(st.integers(max(1, dw * (fw - 1) + 1 - left - right), 40))
    n = draw(st.integers(1, 3))
    dtype = draw(st.sampled_from(DTYPES))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    wt = rng.standard_normal((k, c // groups, fh, fw)).astype(dtype)
    options = dict(stride=(sh, sw), padding=padding, dilation=(dh, dw), groups=groups)
    return x, wt, rng.standard_normal(k).astype(dtype), options


@pytest.mark.parametrize("method", METHODS)
@settings(max_examples=30, deadline=None)
@given(case=conv_cases())
def test_hypothesis_forward_and_backward(case, method):
    x, wt, b, options = case
    dtype = x.dtype
    out = pyconv.conv2d(x, wt, b, method=method, strict=False, **options)
    assert_close(out, conv2d_im2col(x, wt, b, strict=False, **options), dtype)
    dout = np.random.default_rng(4).standard_normal(out.shape).astype(dtype)
    got = pyconv.conv2d_backward(dout, x, wt, method=method, **options)
    want = conv2d_backward_naive(dout, x, wt, **options)
    for g, e in zip(got, want):
        assert_close(g, e, dtype)


@pytest.mark.parametrize("method", METHODS)
def test_convenience_shapes(method):
    x, wt, b = _case(1, 3, 4, 6, 5, 3, 2, {}, np.float64)
    out4 = pyconv.conv2d(x, wt, b, method=method)
    np.testing.assert_array_equal(pyconv.conv2d(x[0], wt, b, method=method), out4[0])
    dout = np.ones(out4.shape)
    dx, dw, db = pyconv.conv2d_backward(dout[0], x[0], wt, method=method)
    dx4, dw4, db4 = pyconv.conv2d_backward(dout, x, wt, method=method)
    assert dx.shape == x[0].shape
    np.testing.assert_array_equal(dx, dx4[0])
    np.testing.assert_array_equal(dw, dw4)
    dx, dw, db = pyconv.conv2d_backward(np.ones((3, 3)), I, F, method=method)
    assert dx.shape == (4, 4) and dw.shape == (2, 2) and db.shape == (1,)
    assert_close(dw, conv2d_backward_naive(np.ones((3, 3)), I, F)[1])


@pytest.mark.parametrize("method", METHODS)
def test_dtypes(method):
    x, wt = I.astype(np.int32), F.astype(np.int64)
    assert pyconv.conv2d(x, wt, method=method).dtype == np.float64
    assert pyconv.conv2d(x.astype(np.float16), wt.astype(np.float16),
                         method=method).dtype == np.float32
    assert pyconv.conv2d(x.astype(np.float32), wt, method=method).dtype == np.float64
    assert pyconv.conv2d(x.astype(np.float32), wt.astype(np.float32),
                         method=method).dtype == np.float32
    dx, dw, db = pyconv.conv2d_backward(np.ones((3, 3), np.float32), x.astype(np.float32),
                                        wt.astype(np.float32), method=method)
    assert dx.dtype == dw.dtype == db.dtype == np.float32


@pytest.mark.parametrize("method", METHODS)
def test_any_memory_layout(method):
    x, wt, b = _case(2, 3, 4, 9, 8, 3, 2, {}, np.float64)
    expected = pyconv.conv2d(x, wt, b, method=method)
    fortran = np.asfortranarray(x)
    swapped = x.astype(x.dtype.newbyteorder())  # same values, non-native byte order
    strided = np.repeat(x, 2, axis=3)[..., ::2]
    readonly = x.copy()
    readonly.flags.writeable = False
    for variant in (fortran, swapped, strided, readonly):
        np.testing.assert_array_equal(pyconv.conv2d(variant, wt, b, method=method), expected)
    dout = np.ones(expected.shape)
    dout.flags.writeable = False
    got = pyconv.conv2d_backward(dout, readonly, np.asfortranarray(wt), method=method)
    for g, e in zip(got, pyconv.conv2d_backward(np.ones(expected.shape), x, wt, method=method)):
        np.testing.assert_array_equal(g, e)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_results_do_not_depend_on_thread_count(dtype, method):
    # large enough that every thread gets work (tiny calls run on fewer threads)
    x, wt, b = _case(6, 8, 8, 30, 27, 3, 3, {"groups": 2}, dtype)
    one = pyconv.conv2d(x, wt, b, groups=2, padding=1, method=method, num_threads=1)
    np.testing.assert_array_equal(
        one, pyconv.conv2d(x, wt, b, groups=2, padding=1, method=method, num_threads=-1))
    dout = np.random.default_rng(5).standard_normal(one.shape).astype(dtype)
    grads_one = pyconv.conv2d_backward(dout, x, wt, groups=2, padding=1, method=method,
                                       num_threads=1)
    grads_all = pyconv.conv2d_backward(dout, x, wt, groups=2, padding=1, method=method,
                                       num_threads=-1)
    for g1, ga in zip(grads_one, grads_all):
        np.testing.assert_array_equal(g1, ga)


def test_small_calls_use_fewer_threads():
    from pyconv.conv import _threads_for
    from pyconv._geometry import conv_geometry
    small = conv_geometry((1, 1, 4, 4), (1, 1, 2, 2))
    large = conv_geometry((6, 8, 30, 27), (8, 4, 3, 3), padding=1, groups=2)
    assert _threads_for(small, 8) == 1
    assert _threads_for(large, 2) == 2


def test_checked_geometry_is_remembered_only_for_plain_arguments():
    x, wt, _ = _case(1, 2, 3, 5, 5, 3, 3, {}, np.float64)
    expected = pyconv.conv2d(x, wt, stride=2, padding=1)  # remembered
    for bad, error in [(dict(stride=2.0, padding=1), "stride must be an int, got 2.0"),
                       (dict(stride=True, padding=1), "stride must be an int, got True"),
                       (dict(stride=(2, 2.0), padding=1), "stride must be an int"),
                       (dict(stride=2, padding=1, strict=1), "strict must be True or False"),
                       (dict(stride=2, padding=1, groups=True), "groups must be an int")]:
        with pytest.raises(TypeError, match=error):
            pyconv.conv2d(x, wt, **bad)
    with pytest.raises(ValueError, match="got 'bogus'"):
        pyconv.conv2d(x, wt, padding="bogus")
    for stride in ([2, 2], np.int64(2), (2, np.int32(2))):
        np.testing.assert_array_equal(pyconv.conv2d(x, wt, stride=stride, padding=1), expected)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("h, padding", [(7, 1), (40, 1)])  # images side by side, image-major
def test_workspace_limit_chunks_the_batch(h, padding, dtype):
    x, wt, b = _case(5, 3, 4, h, h, 3, 3, {}, dtype)
    dout = np.random.default_rng(6).standard_normal((5, 4, h, h)).astype(dtype)
    whole = pyconv.conv2d(x, wt, b, padding=padding, method="im2col")
    grads = pyconv.conv2d_backward(dout, x, wt, padding=padding, method="im2col")
    one_image = 3 * 9 * h * h * np.dtype(dtype).itemsize
    for limit in (1, 2 * one_image):  # 1 image per chunk (the floor); 2 images, 3 chunks
        with pyconv.workspace_limit(limit):
            assert pyconv.get_workspace_limit() == limit
            # BLAS may round a narrower product's edge differently: close, not bitwise
            assert_close(pyconv.conv2d(x, wt, b, padding=padding, method="im2col"), whole)
            for got, want in zip(pyconv.conv2d_backward(dout, x, wt, padding=padding,
                                                        method="im2col"), grads):
                assert_close(got, want, dtype)
    assert pyconv.get_workspace_limit() == 64 * 2**20


def test_workspace_limit_setting():
    try:
        pyconv.set_workspace_limit(1000)
        assert pyconv.get_workspace_limit() == 1000
        with pyconv.workspace_limit(None):
            assert pyconv.get_workspace_limit() == 1000
    finally:
        pyconv.set_workspace_limit(None)
    assert pyconv.get_workspace_limit() == 64 * 2**20
    with pytest.raises(ValueError, match="positive number of bytes, got 0"):
        pyconv.set_workspace_limit(0)
    with pytest.raises(TypeError, match="int number of bytes or None, got 1.5"):
        with pyconv.workspace_limit(1.5):
            pass


def test_empty_batch():
    for method in METHODS:
        out = pyconv.conv2d(np.ones((0, 2, 5, 5)), np.ones((3, 2, 3, 3)), method=method)
        assert out.shape == (0, 3, 3, 3)
        dx, dw, db = pyconv.conv2d_backward(np.ones((0, 3, 3, 3)), np.ones((0, 2, 5, 5)),
                                            np.ones((3, 2, 3, 3)), method=method)
        assert dx.shape == (0, 2, 5, 5)
        np.testing.assert_array_equal(dw, np.zeros((3, 2, 3, 3)))
        np.testing.assert_array_equal(db, np.zeros(3))


X4, W4 = np.ones((2, 4, 6, 6)), np.ones((6, 2, 3, 3))


@pytest.mark.parametrize("call, error, message", [
    (lambda: pyconv.conv2d(X4, W4, groups=2, method="fft"), ValueError,
     r"method must be one of 'auto', 'direct', 'im2col', 'winograd', got 'fft'"),
    (lambda: pyconv.conv2d(X4, W4, np.ones(5), groups=2), ValueError,
     r"b must have shape \(6,\), got \(5,\)"),
    (lambda: pyconv.conv2d(X4, W4, np.ones((6, 1)), groups=2), ValueError,
     r"b must have 1 dimensions, got shape \(6, 1\)"),
    (lambda: pyconv.conv2d(X4, W4), ValueError, r"for this x, w.shape\[1\] must be 4"),
    (lambda: pyconv.conv2d(X4, W4, groups=3), ValueError, "groups=3 must divide"),
    (lambda: pyconv.conv2d(X4, np.ones((6, 2, 3))), ValueError,
     r"w must have shape \(K, C/groups, FH, FW\)"),
    (lambda: pyconv.conv2d(np.ones(5), np.ones(3)), ValueError, "x must have shape"),
    (lambda: pyconv.conv2d(X4, W4, groups=2, stride=2), pyconv.InvalidConfigError,
     r"\(6 - 3 \+ 2\*0\)/2 \+ 1 = 2.5 is not a whole number"),
    (lambda: pyconv.conv2d(X4, W4, groups=2, padding="full"), ValueError,
     "padding must be an int, an .h, w. pair, ..top, bottom., .left, right.., 'valid' or "
     "'same', got 'full'"),
    (lambda: pyconv.conv2d(X4, W4, groups=2, padding=((0, 1), 2, 3)), ValueError,
     r"padding must be .*got \(\(0, 1\), 2, 3\)"),
    (lambda: pyconv.conv2d(X4, W4, groups=2, stride=0), ValueError, "stride must be positive"),
    (lambda: pyconv.conv2d(X4, W4, groups=2, dilation=1.5), TypeError, "dilation must be an int"),
    (lambda: pyconv.conv2d(X4, np.ones((6, 2, 9, 9)), groups=2), ValueError, "larger than"),
    (lambda: pyconv.conv2d(X4.astype(complex), W4, groups=2), TypeError,
     "x must hold real numbers"),
    (lambda: pyconv.conv2d(X4, None, groups=2), TypeError, "w must be an array, got None"),
    (lambda: pyconv.conv2d(X4, W4, groups=2, num_threads=0), ValueError, "num_threads=0"),
    (lambda: pyconv.conv2d_backward(np.ones((2, 6, 3, 3)), X4, W4, groups=2), ValueError,
     r"dout must have the forward output's shape \(2, 6, 4, 4\), got \(2, 6, 3, 3\)"),
    (lambda: pyconv.conv2d_backward(np.ones((2, 6, 4, 4)), X4, W4, groups=2, need=("dz",)),
     ValueError, "need entries must be 'dx', 'dw' or 'db', got 'dz'"),
    (lambda: pyconv.conv2d_backward(np.ones((2, 6, 4, 4)), X4, W4, groups=2, need=3),
     TypeError, "need must be a sequence"),
    (lambda: pyconv.conv2d_backward(np.ones((2, 6, 4, 4)), X4, W4, groups=2, method="x"),
     ValueError, "method must be one of"),
    (lambda: pyconv.conv2d_backward(None, X4, W4, groups=2), TypeError, "dout must be an array"),
])
def test_bad_input(call, error, message):
    with pytest.raises(error, match=message):
        call()


# unequal paddings through every kernel path: stride 1 with OW == W (im2col's masked
# unpadded planes), stride 1 otherwise (x itself, dx as a forward convolution), strides
# and dilations (phase-split planes; the packed backward), and depthwise (direct)
ASYMMETRIC = [
    (4, {"padding": ((0, 2), (2, 0))}),                   # OW == W, all the padding on one side
    (4, {"padding": ((2, 0), (0, 2))}),
    (4, {"padding": ((1, 3), (0, 1))}),                   # stride 1, OW != W
    (4, {"padding": ((0, 1), (3, 0)), "stride": 2}),
    (4, {"padding": ((2, 1), (0, 3)), "stride": (2, 3), "dilation": (2, 1)}),
    (4, {"padding": "same", "stride": 2}),                # TensorFlow: the odd one after
    (4, {"padding": "same", "stride": (3, 2), "dilation": 2}),
    (1, {"padding": ((0, 2), (1, 0)), "groups": 4}),      # depthwise
    (2, {"padding": ((2, 0), (0, 1)), "groups": 4, "stride": 2}),
]


def _torch_conv(x, w, b, stride, padding, dilation, groups):
    """PyTorch's conv2d with the padding applied by F.pad (left, right, top, bottom)."""
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    top, bottom, left, right = padding
    xt = torch.nn.functional.pad(torch.from_numpy(x), (left, right, top, bottom))
    return torch.nn.functional.conv2d(xt, torch.from_numpy(w), torch.from_numpy(b),
                                      stride=stride, dilation=dilation, groups=groups).numpy()


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("multiplier, options", ASYMMETRIC)
def test_unequal_paddings_on_every_path(multiplier, options, dtype, cpu_level, method):
    groups = options.get("groups", 1)
    x, wt, b = _case(2, 4, 4 * multiplier if groups > 1 else 5, 9, 11, 3, 3, options, dtype)
    out = pyconv.conv2d(x, wt, b, method=method, strict=False, **options)
    dout = np.random.default_rng(3).standard_normal(out.shape).astype(dtype)
    grads = pyconv.conv2d_backward(dout, x, wt, method=method, **options)
    x64, w64 = x.astype(np.float64), wt.astype(np.float64)
    assert_close(out, conv2d_naive(x64, w64, b, strict=False, **options), dtype)
    for got, want in zip(grads, conv2d_backward_naive(dout.astype(np.float64), x64, w64,
                                                       **options)):
        assert_close(got, want, dtype)


@pytest.mark.parametrize("h, w, f, stride, dilation", [
    (9, 11, 3, 2, 1), (10, 10, 2, 2, 1), (7, 8, 3, 3, 2), (5, 6, 4, 1, 1), (6, 7, 1, 4, 1),
    (8, 8, 5, 2, 1), (3, 3, 3, 5, 1),
])
def test_same_padding_is_tensorflows_at_any_stride(h, w, f, stride, dilation):
    """OH = ceil(H / stride); the total padding max((OH-1)*s + (F-1)*d + 1 - H, 0) with the
    odd one at the bottom and right, checked against PyTorch on the explicitly padded input."""
    x, wt, b = _case(2, 3, 4, h, w, f, f, {}, np.float64)
    out = pyconv.conv2d(x, wt, b, stride=stride, padding="same", dilation=dilation)
    oh, ow = -(-h // stride), -(-w // stride)
    assert out.shape == (2, 4, oh, ow)
    th = max((oh - 1) * stride + (f - 1) * dilation + 1 - h, 0)
    tw = max((ow - 1) * stride + (f - 1) * dilation + 1 - w, 0)
    pads = (th // 2, th - th // 2, tw // 2, tw - tw // 2)
    assert_close(out, _torch_conv(x, wt, b, stride, pads, dilation, 1), np.float64)
    np.testing.assert_array_equal(
        out, pyconv.conv2d(x, wt, b, stride=stride, padding=((pads[0], pads[1]),
                                                              (pads[2], pads[3])),
                           dilation=dilation, strict=False))


@pytest.mark.parametrize("method", METHODS)
def test_unequal_paddings_match_pytorch(method):
    x, wt, b = _case(2, 3, 4, 8, 9, 3, 2, {}, np.float64)
    for pads in [(0, 2, 1, 0), (3, 0, 0, 2), (1, 2, 2, 1)]:
        for stride in [1, 2, (3, 1)]:
            options = dict(stride=stride, padding=((pads[0], pads[1]), (pads[2], pads[3])),
                           strict=False)
            assert_close(pyconv.conv2d(x, wt, b, method=method, **options),
                         _torch_conv(x, wt, b, stride, pads, 1, 1), np.float64)


def test_symmetric_padding_forms_are_one_call():
    x, wt, b = _case(1, 2, 3, 7, 7, 3, 3, {}, np.float32)
    want = pyconv.conv2d(x, wt, b, padding=1)
    for form in [(1, 1), ((1, 1), (1, 1)), ((1, 1), 1), [1, [1, 1]]]:
        np.testing.assert_array_equal(pyconv.conv2d(x, wt, b, padding=form), want)
    np.testing.assert_array_equal(pyconv.conv2d(x, wt, b, padding="same"), want)
