"""Any array a user has gives the same result as a C-contiguous float copy of it.

Read-only arrays, broadcast views, memory-mapped files, non-contiguous
slices, Fortran order, negative strides, byte-swapped, float16 and integer
inputs, for every kernel; and no copy is made of an input that is already
C-contiguous in the dtype the kernel computes in.

To add a kernel: one entry in ``KERNELS`` (a call and the shapes of its array
arguments) and, for the no-copy check, one in ``NO_COPY``.
"""
import tracemalloc

import numpy as np
import pytest

import pyconv
from pyconv._validation import float_dtype

# kernel -> (call taking the array arguments by name, {argument: shape})
KERNELS = {
    "l1_distances": (lambda X, Y: pyconv.l1_distances(X, Y), dict(X=(7, 5), Y=(6, 5))),
    "l1_topk": (lambda X, Y: pyconv.l1_topk(X, Y, 3), dict(X=(7, 5), Y=(6, 5))),
    "max_pool2d": (lambda x: pyconv.max_pool2d(x, 3, stride=2, padding=1, return_indices=True),
                   dict(x=(2, 3, 7, 7))),
    "avg_pool2d": (lambda x: pyconv.avg_pool2d(x, 2, stride=1, padding=1,
                                               count_include_pad=False), dict(x=(2, 3, 6, 5))),
    "max_pool2d_backward": (lambda dout, x: pyconv.max_pool2d_backward(dout, x, 2),
                            dict(dout=(2, 3, 3, 3), x=(2, 3, 6, 6))),
    "max_pool2d_backward(indices)": (
        lambda dout, indices: pyconv.max_pool2d_backward(dout, np.zeros((2, 3, 6, 6)), 2,
                                                         indices=indices),
        dict(dout=(2, 3, 3, 3), indices=(2, 3, 3, 3))),
    "avg_pool2d_backward": (lambda dout: pyconv.avg_pool2d_backward(dout, (2, 3, 6, 6), 2),
                            dict(dout=(2, 3, 3, 3))),
    **{f"conv2d({m})": (lambda x, w, b, m=m: pyconv.conv2d(x, w, b, stride=2, padding=1, method=m),
                        dict(x=(2, 3, 7, 7), w=(4, 3, 3, 3), b=(4,)))
       for m in ("direct", "im2col")},
    **{f"conv2d grouped({m})": (lambda x, w, m=m: pyconv.conv2d(x, w, groups=2, method=m),
                                dict(x=(2, 4, 5, 6), w=(6, 2, 2, 3)))
       for m in ("direct", "im2col")},
    **{f"conv2d_backward({m})": (
        lambda dout, x, w, m=m: pyconv.conv2d_backward(dout, x, w, padding=1, method=m),
        dict(dout=(2, 4, 5, 5), x=(2, 3, 5, 5), w=(4, 3, 3, 3))) for m in ("direct", "im2col")},
    "KNearestNeighbor": (
        lambda X, Xq: pyconv.KNearestNeighbor(2).fit(X, np.arange(6) % 3).kneighbors(Xq),
        dict(X=(6, 5), Xq=(4, 5))),
}


def _memmap(a, tmp_path):
    path = tmp_path / "array.dat"
    a.tofile(path)
    return np.memmap(path, dtype=a.dtype, mode="r", shape=a.shape)


def _readonly(a, tmp_path):
    a = a.copy()
    a.flags.writeable = False
    return a


# layout -> how to make it from a C-contiguous float64 (int64 for indices) array of small
# integers
LAYOUTS = {
    "read-only": _readonly,
    "broadcast_to": lambda a, tmp_path: np.broadcast_to(a[:1], a.shape),
    "memmap": _memmap,
    "slice": lambda a, tmp_path: np.repeat(a, 2, axis=-1)[..., 1::2],
    "fortran": lambda a, tmp_path: np.asfortranarray(a),
    "negative strides": lambda a, tmp_path: np.flip(np.flip(a).copy()),
    "byte-swapped": lambda a, tmp_path: a.astype(a.dtype.newbyteorder(">")),
    "float16": lambda a, tmp_path: a.astype(np.float16),
    "float32 fortran": lambda a, tmp_path: np.asfortranarray(a, dtype=np.float32),
    "int32": lambda a, tmp_path: a.astype(np.int32),
    "uint8 slice": lambda a, tmp_path: np.abs(a).astype(np.uint8)[..., ::-1],
}


def _values(name, shape, rng):
    if name == "indices":  # flat positions in 6x6 planes
        return rng.integers(0, 36, shape)
    return rng.integers(-3, 4, shape).astype(np.float64)  # small integers: exact in float16


def _as_tuple(result):
    return result if isinstance(result, tuple) else (result,)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("kernel", KERNELS)
def test_any_layout_equals_a_contiguous_float_copy(kernel, layout, tmp_path):
    call, shapes = KERNELS[kernel]
    rng = np.random.default_rng(0)
    base = {name: _values(name, shape, rng) for name, shape in shapes.items()}
    for changed in shapes:  # one argument at a time in the odd layout
        if changed == "indices" and layout in ("float16", "float32 fortran"):
            continue  # indices must be integers
        args = dict(base)
        args[changed] = LAYOUTS[layout](base[changed], tmp_path)
        expected_args = {name: np.ascontiguousarray(a, dtype=float_dtype(a))
                         if name != "indices" else np.ascontiguousarray(a, dtype=np.int64)
                         for name, a in args.items()}
        got, expected = _as_tuple(call(**args)), _as_tuple(call(**expected_args))
        for g, e in zip(got, expected):
            assert g.dtype == e.dtype and g.flags.c_contiguous
            np.testing.assert_array_equal(g, e)


@pytest.mark.parametrize("dtype, computes_in", [(np.float16, np.float32), (np.int32, np.float64),
                                                (np.uint8, np.float64), (">f4", np.float32),
                                                (">f8", np.float64)])
def test_result_dtypes(dtype, computes_in):
    X = np.arange(16).reshape(4, 4).astype(dtype)
    assert pyconv.l1_distances(X).dtype == computes_in
    assert pyconv.l1_topk(X, X, 2)[0].dtype == computes_in
    assert pyconv.max_pool2d(X, 2).dtype == computes_in
    assert pyconv.avg_pool2d(X, 2).dtype == computes_in
    assert pyconv.avg_pool2d_backward(X, (8, 8), 2).dtype == computes_in


def test_out_is_filled_in_place():
    X = np.ones((50, 8), np.float32)
    out = np.full((50, 50), np.nan, np.float32)
    D = pyconv.l1_distances(X, X[::-1].copy(), out=out)
    assert D is out and np.shares_memory(D, out)
    np.testing.assert_array_equal(out, 0)


def _peak_bytes(call):
    """Largest memory traced while ``call()`` runs, less what its results hold.

    NumPy reports its buffers to tracemalloc, so a copy of an input shows.
    """
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        results = _as_tuple(call())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return peak - sum(r.nbytes for r in results if not np.shares_memory(r, _D))


# kernel -> call on a large input already in the right layout; the input itself
rng = np.random.default_rng(0)
_X = rng.standard_normal((4000, 256)).astype(np.float32)            # 4 MB
_IMAGES = rng.standard_normal((4, 16, 128, 128)).astype(np.float32)   # 4 MB
_D = np.empty((4000, 10), np.float32)
NO_COPY = {
    "l1_distances": (lambda x: pyconv.l1_distances(x, x[:10], out=_D), _X),
    "l1_topk": (lambda x: pyconv.l1_topk(x, x[:10], 1), _X),
    "max_pool2d": (lambda x: pyconv.max_pool2d(x, 8), _IMAGES),
    "avg_pool2d": (lambda x: pyconv.avg_pool2d(x, 8), _IMAGES),
    "max_pool2d_backward": (
        lambda x: pyconv.max_pool2d_backward(np.ones((4, 16, 1, 1), np.float32), x, 128), _IMAGES),
    "conv2d(direct)": (lambda x: pyconv.conv2d(x, np.ones((1, 16, 8, 8), np.float32), stride=8,
                                               method="direct"), _IMAGES),
    # (a 1x1 layer: im2col multiplies x in place, with no column buffer)
    "conv2d(im2col)": (lambda x: pyconv.conv2d(x, np.ones((1, 16, 1, 1), np.float32),
                                               method="im2col"), _IMAGES),
}


@pytest.mark.parametrize("kernel", NO_COPY)
def test_no_copy_of_an_input_already_right(kernel):
    call, x = NO_COPY[kernel]
    assert _peak_bytes(lambda: call(x)) < x.nbytes // 4
    # the same input in Fortran order is copied, and the measure sees the copy
    assert _peak_bytes(lambda: call(np.asfortranarray(x))) >= x.nbytes
