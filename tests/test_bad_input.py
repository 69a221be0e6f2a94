"""Malformed calls of every public function, table by table.

Each call must fail with a ValueError or TypeError (MemoryError for sizes that
cannot fit) whose message names the argument, says what was given and what
was expected; never a crash or a NumPy error from deep inside. Empty batches
(N = 0, n_x = 0) are not malformed: they give correctly shaped empty results.
The oracles in ``pyconv.reference`` share the kernels' validation, so they
are held to the same table.

To add a function: give it a good call in ``GOOD_CALLS`` (its array
arguments then get every bad array of ``BAD_ARRAYS``) and its own malformed
calls in ``CASES``.
"""
import collections
import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pyconv
from pyconv import reference as R

rng = np.random.default_rng(0)
X4 = rng.standard_normal((2, 3, 6, 6))
W4 = rng.standard_normal((4, 3, 3, 3))
X2 = rng.standard_normal((5, 3))
Y2 = rng.standard_normal((4, 3))


def _square(a):
    return float(np.sum(np.asarray(a) ** 2))


def _knn_fit(X, y=(0, 1, 1, 0, 1), k=1, metric="l1"):
    return pyconv.KNearestNeighbor(k, metric).fit(X, y)


_KNN = pyconv.KNearestNeighbor(2).fit(X2, [0, 1, 1, 0, 1])
_KNN_L2 = pyconv.KNearestNeighbor(2, "l2").fit(X2, [0, 1, 1, 0, 1])


def _knn_predict(X):
    return _KNN.predict(X)


def _knn_l2_kneighbors(X):
    return _KNN_L2.kneighbors(X)


# A good call of every public function that takes arrays: (function, kwargs, array
# arguments); "Y?" is an array argument for which None is a valid value.
GOOD_CALLS = [
    (pyconv.l1_distances, dict(X=X2, Y=Y2), ["X", "Y?"]),
    (pyconv.l1_topk, dict(X=X2, Y=Y2, k=2), ["X", "Y?"]),
    (R.l1_two_loops, dict(X=X2, Y=Y2), ["X", "Y?"]),
    (R.l1_one_loop, dict(X=X2, Y=Y2), ["X", "Y?"]),
    (R.l1_no_loops, dict(X=X2, Y=Y2), ["X", "Y?"]),
    (pyconv.max_pool2d, dict(x=X4, size=2), ["x"]),
    (pyconv.avg_pool2d, dict(x=X4, size=2), ["x"]),
    (R.max_pool2d_naive, dict(x=X4, size=2), ["x"]),
    (R.avg_pool2d_naive, dict(x=X4, size=2), ["x"]),
    (pyconv.max_pool2d_backward, dict(dout=np.ones((2, 3, 3, 3)), x=X4, size=2), ["dout", "x"]),
    (R.max_pool2d_backward_naive, dict(dout=np.ones((2, 3, 3, 3)), x=X4, size=2),
     ["dout", "x"]),
    (pyconv.avg_pool2d_backward, dict(dout=np.ones((2, 3, 3, 3)), x_shape=X4.shape, size=2),
     ["dout"]),
    (R.avg_pool2d_backward_naive, dict(dout=np.ones((2, 3, 3, 3)), x_shape=X4.shape, size=2),
     ["dout"]),
    (pyconv.conv2d, dict(x=X4, w=W4, b=np.ones(4)), ["x", "w", "b?"]),
    (pyconv.conv2d_backward, dict(dout=np.ones((2, 4, 4, 4)), x=X4, w=W4), ["dout", "x", "w"]),
    (R.conv2d_naive, dict(x=X4, w=W4, b=np.ones(4)), ["x", "w", "b?"]),
    (R.conv2d_im2col, dict(x=X4, w=W4, b=np.ones(4)), ["x", "w", "b?"]),
    (R.conv2d_backward_naive, dict(dout=np.ones((2, 4, 4, 4)), x=X4, w=W4), ["dout", "x", "w"]),
    (_knn_fit, dict(X=X2), ["X"]),
    (_knn_predict, dict(X=Y2), ["X"]),
    (_knn_l2_kneighbors, dict(X=Y2), ["X"]),
    (pyconv.squared_norm, dict(W=np.ones((2, 3)), x=np.ones(3)), ["W", "x"]),
    (pyconv.squared_norm_backward, dict(W=np.ones((2, 3)), x=np.ones(3)), ["W", "x"]),
    (pyconv.numerical_gradient, dict(f=_square, x=np.ones(3)), ["x"]),
    (pyconv.relative_error, dict(a=np.ones(3), b=np.ones(3)), ["a", "b"]),
]

# Values no array argument accepts: (id, value, error, message with {name} for the argument).
BAD_ARRAYS = [
    ("None", None, TypeError, r"^{name} must be an array, got None"),
    ("complex", np.ones((2, 3), complex),
     TypeError, r"^{name} must hold real numbers \(float or integer\), got dtype complex128"),
    ("object", np.array([[1, "a"], [2, None]], dtype=object),
     TypeError, r"^{name} must hold real numbers .*got dtype object"),
    ("string", np.array([["a", "b"]]), TypeError, r"^{name} must hold real numbers .*got dtype <U1"),
    ("str", "abc", TypeError, r"^{name} must hold real numbers .*got dtype <U3"),
    ("bool", np.ones((2, 3), bool), TypeError, r"^{name} must hold real numbers .*got dtype bool"),
    ("datetime", np.zeros(3, "M8[s]"), TypeError, r"^{name} must hold real numbers .*datetime64"),
    ("longdouble", np.ones((2, 3), np.longdouble),
     TypeError, r"^{name} has dtype float128, wider than the float64 pyconv computes in"),
    ("ragged list", [[1.0, 2.0], [3.0]],
     ValueError, r"^{name} must be a rectangular array of numbers, got a list"),
]
if np.dtype(np.longdouble).itemsize <= 8:  # longdouble is float64 on some platforms
    BAD_ARRAYS = [case for case in BAD_ARRAYS if case[0] != "longdouble"]


def _call_id(func):
    return f"{func.__module__.rsplit('.', 1)[-1]}.{func.__name__}"


@pytest.mark.parametrize("bad_id, bad, error, message", BAD_ARRAYS, ids=[c[0] for c in BAD_ARRAYS])
@pytest.mark.parametrize("func, good, arrays", GOOD_CALLS, ids=[_call_id(c[0]) for c in GOOD_CALLS])
def test_bad_arrays_are_refused_by_name(func, good, arrays, bad_id, bad, error, message):
    func(**good)  # the good call works
    for name in arrays:
        name, optional = name.rstrip("?"), name.endswith("?")
        if optional and bad is None:
            continue
        with pytest.raises(error, match=message.format(name=name)):
            func(**dict(good, **{name: bad}))


def _geometry_cases(func, x, extra=None, forward=True):
    """Malformed geometry shared by the pooling functions (``x`` keyword and ``size``).

    A backward pass has no ``strict`` (its output size is floored).
    """
    extra = extra or {}
    cases = [
        (func, dict(x=np.ones((2, 2, 3, 3, 1)), size=2, **extra), ValueError,
         r"x must have shape \(N, C, H, W\), \(C, H, W\) or \(H, W\), got \(2, 2, 3, 3, 1\)"),
        (func, dict(x=np.ones(5), size=2, **extra), ValueError, r"x must have shape .*got \(5,\)"),
        (func, dict(x=np.ones((1, 1, 0, 4)), size=2, **extra), ValueError,
         r"x must have non-empty channel and spatial dimensions .*got shape \(1, 1, 0, 4\)"),
        (func, dict(x=np.ones((1, 0, 4, 4)), size=2, **extra), ValueError,
         r"x must have non-empty .*got shape \(1, 0, 4, 4\)"),
        (func, dict(x=x, size=0, **extra), ValueError, r"^size must be positive, got 0"),
        (func, dict(x=x, size=(2, 2, 2), **extra), ValueError,
         r"^size must be an int or an \(h, w\) pair, got \(2, 2, 2\)"),
        (func, dict(x=x, size=2.0, **extra), TypeError, r"^size must be an int, got 2.0 of type float"),
        (func, dict(x=x, size=None, **extra), TypeError, r"^size must be an int, got None"),
        (func, dict(x=x, size=7, **extra), ValueError,
         r"along H \(input 6, window 7\): kernel larger than the padded input"),
        (func, dict(x=x, size=2, stride=0, **extra), ValueError, r"^stride must be positive, got 0"),
        (func, dict(x=x, size=2, stride=-1, **extra), ValueError, r"^stride must be positive, got -1"),
        (func, dict(x=x, size=2, padding=-1, **extra), ValueError, r"^padding must be >= 0, got -1"),
        (func, dict(x=x, size=3, padding=2, **extra), ValueError,
         r"padding must be at most half the pool window \(size // 2 = 1\) on each side, "
         r"got padding=2 for size=3"),
        (func, dict(x=x, size=(2, 3), padding=(1, 2), **extra), ValueError,
         r"padding must be at most half .*got padding=2 for size=3"),
        (func, dict(x=x, size=3, padding=((0, 2), (1, 1)), **extra), ValueError,
         r"padding must be at most half the pool window \(size // 2 = 1\) on each side, "
         r"got padding=\(0, 2\) for size=3"),
        (func, dict(x=x, size=2, padding="full", **extra), ValueError,
         r"padding must be an int, an \(h, w\) pair, .*'valid' or 'same', got 'full'"),
        (func, dict(x=x, size=2, ceil_mode=1, **extra), TypeError,
         r"^ceil_mode must be True or False, got 1 of type int"),
        (func, dict(x=x, size=2, ceil_mode=True, padding="same", **extra), ValueError,
         r"^ceil_mode=True cannot be combined with padding='same'"),
        (func, dict(x=x, size=2, dilation=0, **extra), ValueError,
         r"^dilation must be positive, got 0"),
    ]
    if not forward:
        return cases + [(func, dict(x=x, size=2, stride=2**31, **extra), ValueError,
                         r"^stride=\(2147483648, 2147483648\) is too large")]
    return cases + [
        (func, dict(x=x, size=4, stride=3, **extra), ValueError,
         r"along H .*\(6 - 4 \+ 2\*0\)/3 \+ 1 = 1.66667 is not a whole number"),
        (func, dict(x=x, size=2, strict="yes", **extra), TypeError,
         r"^strict must be True or False, got 'yes' of type str"),
        (func, dict(x=x, size=2, stride=2**31, strict=False, **extra), ValueError,
         r"^stride=\(2147483648, 2147483648\) is too large"),
    ]


def _conv_cases(func, extra=None, forward=True):
    """Malformed convolutions; a backward pass (``forward=False``) has no ``b`` or ``strict``."""
    extra = extra or {}
    cases = [
        (func, dict(x=np.ones((1, 2, 3, 3, 3)), w=W4), ValueError,
         r"x must have shape \(N, C, H, W\), \(C, H, W\) or \(H, W\), got \(1, 2, 3, 3, 3\)"),
        (func, dict(x=np.ones((6, 6)), w=W4), ValueError,
         r"with a 2-D x, w must be 2-D \(FH, FW\), got shape \(4, 3, 3, 3\)"),
        (func, dict(x=X4, w=np.ones((3, 3))), ValueError,
         r"w must have shape \(K, C/groups, FH, FW\), got \(3, 3\)"),
        (func, dict(x=X4, w=np.ones((4, 2, 3, 3))), ValueError,
         r"x has 3 channels in layout 'NCHW' \(axis -3\) but w expects 2 "
         r"\(C/groups=2, groups=1\)"),
        (func, dict(x=X4, w=np.ones((4, 1, 3, 3)), groups=2), ValueError,
         r"groups=2 must divide the input channels \(3\) and the filters \(4\)"),
        (func, dict(x=np.ones((1, 4, 5, 5)), w=np.ones((3, 2, 3, 3)), groups=2), ValueError,
         r"groups=2 must divide the input channels \(4\) and the filters \(3\)"),
        (func, dict(x=X4, w=W4, groups=0), ValueError, r"^groups must be positive, got 0"),
        (func, dict(x=np.ones((1, 0, 5, 5)), w=np.ones((2, 0, 3, 3))), ValueError,
         r"x and w must have non-empty channel and spatial dimensions"),
        (func, dict(x=np.ones((1, 3, 0, 5)), w=W4), ValueError, r"non-empty .*x \(1, 3, 0, 5\)"),
        (func, dict(x=X4, w=np.ones((0, 3, 3, 3))), ValueError, r"non-empty .*w \(0, 3, 3, 3\)"),
        (func, dict(x=X4, w=np.ones((4, 3, 7, 3))), ValueError,
         r"along H \(input 6, window 7\): kernel larger than the padded input"),
        (func, dict(x=X4, w=np.ones((4, 3, 3, 9)), padding=1), ValueError,
         r"along W \(input 6, window 9\): kernel larger than the padded input"),
        (func, dict(x=X4, w=W4, dilation=3), ValueError,
         r"along H .*kernel larger than the padded input"),
        (func, dict(x=X4, w=W4, padding="valid", dilation=3), ValueError,
         r"along H .*kernel larger than the padded input"),
        (func, dict(x=X4, w=W4, stride=0), ValueError, r"^stride must be positive, got 0"),
        (func, dict(x=X4, w=W4, stride=(1, -2)), ValueError, r"^stride must be positive, got -2"),
        (func, dict(x=X4, w=W4, dilation=0), ValueError, r"^dilation must be positive, got 0"),
        (func, dict(x=X4, w=W4, padding=-1), ValueError, r"^padding must be >= 0, got -1"),
        (func, dict(x=X4, w=W4, padding="full"), ValueError,
         r"padding must be an int, an \(h, w\) pair, \(\(top, bottom\), \(left, right\)\), "
         r"'valid' or 'same', got 'full'"),
        (func, dict(x=X4, w=W4, padding=(1, 2, 3)), ValueError,
         r"padding must be an int, an \(h, w\) pair, .*got \(1, 2, 3\)"),
        (func, dict(x=X4, w=W4, padding=((1, 2, 3), 1)), ValueError,
         r"padding must be .*got \(\(1, 2, 3\), 1\): each axis is an int or a \(before, after\)"),
        (func, dict(x=X4, w=W4, padding=((1, -1), (0, 0))), ValueError,
         r"^padding must be >= 0, got -1"),
        (func, dict(x=X4, w=W4, padding=((1, 0.5), (0, 0))), TypeError,
         r"^padding must be an int, got 0.5 of type float"),
        (func, dict(x=X4, w=W4, padding=((0, 2), (1, 1)), stride=2), ValueError,
         r"along H .*: invalid configuration: \(6 - 3 \+ 0 \+ 2\)/2 \+ 1 = 3.5 is not a whole "
         r"number; an after-padding of 3 fits \(gives 4\)"),
        (func, dict(x=X4, w=W4, stride=2), ValueError,
         r"along H .*\(6 - 3 \+ 2\*0\)/2 \+ 1 = 2.5 is not a whole number"),
        (func, dict(x=X4, w=W4, strict=1), TypeError, r"^strict must be True or False, got 1"),
        (func, dict(x=X4, w=W4, stride=1.0), TypeError, r"^stride must be an int, got 1.0"),
        (func, dict(x=X4, w=W4, b=np.ones(3)), ValueError, r"b must have shape \(4,\), got \(3,\)"),
        (func, dict(x=X4, w=W4, b=np.ones((4, 1))), ValueError,
         r"b must have 1 dimensions, got shape \(4, 1\)"),
        (func, dict(x=X4, w=W4, padding=2**31), ValueError, r"too large"),
    ]
    cases = [(f, dict(kwargs, **extra), error, message) for f, kwargs, error, message in cases]
    if forward:
        return cases
    return [case for case in cases if not {"b", "strict"} & set(case[1])
            and "not a whole number" not in case[3]]


CASES = [
    # pairwise L1 and top-k
    *[(f, dict(X=np.ones(3)), ValueError, r"^X must have 2 dimensions, got shape \(3,\)")
      for f in (pyconv.l1_distances, R.l1_two_loops)],
    (pyconv.l1_distances, dict(X=X2, Y=np.ones((2, 2, 3))), ValueError,
     r"^Y must have 2 dimensions, got shape \(2, 2, 3\)"),
    (pyconv.l1_distances, dict(X=X2, Y=np.ones((2, 4))), ValueError,
     r"X and Y must have the same number of columns \(features\), got X \(5, 3\) and Y \(2, 4\)"),
    (pyconv.l1_distances, dict(X=X2, Y=Y2, out=np.empty((4, 5))), ValueError,
     r"^out must be a writeable C-contiguous float64 array of shape \(5, 4\), got float64 \(4, 5\)"),
    (pyconv.l1_distances, dict(X=X2, Y=Y2, out=np.empty((5, 4), np.float32)), ValueError,
     r"^out must be .*float64 array of shape \(5, 4\), got float32 \(5, 4\)"),
    (pyconv.l1_distances, dict(X=X2, Y=Y2, out=np.empty((4, 5)).T), ValueError,
     r"^out must be .*got float64 \(5, 4\) \(C-contiguous=False"),
    (pyconv.l1_distances, dict(X=X2, Y=Y2, out=np.empty((5, 8))[:, ::2]), ValueError,
     r"^out must be .*C-contiguous=False"),
    (pyconv.l1_distances, dict(X=X2, Y=Y2, out=np.broadcast_to(np.empty(4), (5, 4))), ValueError,
     r"^out must be .*C-contiguous=False, writeable=False"),
    (pyconv.l1_distances, dict(X=X2, Y=Y2, out=[[0.0] * 4] * 5), TypeError,
     r"^out must be a NumPy array, got list"),
    (pyconv.l1_topk, dict(X=X2, Y=Y2, k=0), ValueError,
     r"^k must be between 1 and the number of rows of Y \(4\), got 0"),
    (pyconv.l1_topk, dict(X=X2, Y=Y2, k=5), ValueError,
     r"^k must be between 1 and the number of rows of Y \(4\), got 5"),
    (pyconv.l1_topk, dict(X=X2, Y=Y2, k=-1), ValueError, r"^k must be between 1 and .*got -1"),
    (pyconv.l1_topk, dict(X=X2, Y=Y2, k=2.0), TypeError, r"^k must be an int, got 2.0"),
    (pyconv.l1_topk, dict(X=X2, Y=Y2, k=None), TypeError, r"^k must be an int, got None"),
    (pyconv.l1_topk, dict(X=X2, Y=np.ones((0, 3)), k=1), ValueError,
     r"^k must be between 1 and the number of rows of Y \(0\), got 1"),
    (R.l1_no_loops, dict(X=np.ones((100, 3)), Y=np.ones((100, 3)), max_bytes=1000), MemoryError,
     r"l1_no_loops would allocate a 100 x 100 x 3 intermediate of 240,000 bytes"),
    # thread counts, wherever they are taken
    (pyconv.l1_distances, dict(X=X2, num_threads=0), ValueError,
     r"^num_threads=0 is not a thread count"),
    (pyconv.l1_distances, dict(X=X2, num_threads=1.5), TypeError,
     r"^num_threads must be an int or None, got 1.5 of type float"),
    (pyconv.l1_distances, dict(X=X2, num_threads="2"), TypeError,
     r"^num_threads must be an int or None, got '2' of type str"),
    (pyconv.l1_distances, dict(X=X2, num_threads=100_000), ValueError,
     r"^num_threads=100000 is more threads than pyconv allows \(1024\)"),
    (pyconv.l1_distances, dict(X=X2, num_threads=2**64), ValueError, r"^num_threads=\d+ is more"),
    (pyconv.l1_topk, dict(X=X2, Y=Y2, k=1, num_threads=True), TypeError,
     r"^num_threads must be an int or None, got True"),
    (pyconv.max_pool2d, dict(x=X4, size=2, num_threads=0), ValueError, r"^num_threads=0"),
    (pyconv.avg_pool2d, dict(x=X4, size=2, num_threads=10**9), ValueError, r"^num_threads=\d+ is more"),
    (pyconv.set_num_threads, dict(n=0), ValueError, r"^n=0 is not a thread count"),
    (pyconv.set_num_threads, dict(n="4"), TypeError, r"^n must be an int or None, got '4'"),
    (pyconv.resolve_num_threads, dict(n=2000), ValueError, r"^num_threads=2000 is more threads"),
    # pooling
    *[case for f in (pyconv.max_pool2d, pyconv.avg_pool2d, R.max_pool2d_naive, R.avg_pool2d_naive)
      for case in _geometry_cases(f, X4)],
    *_geometry_cases(pyconv.max_pool2d_backward, X4, dict(dout=np.ones((2, 3, 3, 3))), False),
    (pyconv.max_pool2d, dict(x=np.ones((1, 1, 4, 4)), size=3, dilation=(1, 0)), ValueError,
     r"^dilation must be positive, got 0"),
    (pyconv.max_pool2d, dict(x=np.ones((1, 1, 2, 2)), size=2, dilation=3, padding=1,
                             strict=False), ValueError, r"along H has no tap inside the input"),
    (pyconv.max_pool2d_backward, dict(dout=np.ones((2, 3, 2, 2)), x=X4, size=2), ValueError,
     r"^dout must have the forward output's shape \(2, 3, 3, 3\), got \(2, 3, 2, 2\)"),
    (R.max_pool2d_backward_naive, dict(dout=np.ones((2, 3, 2, 2)), x=X4, size=2), ValueError,
     r"^dout must have the forward output's shape \(2, 3, 3, 3\), got \(2, 3, 2, 2\)"),
    (pyconv.max_pool2d_backward, dict(dout=np.ones((3, 3)), x=X4[0, 0], size=2,
                                      indices=np.zeros((3, 3))), TypeError,
     r"^indices must be integers .*got dtype float64"),
    (pyconv.max_pool2d_backward, dict(dout=np.ones((3, 3)), x=X4[0, 0], size=2,
                                      indices=np.zeros((2, 3), int)), ValueError,
     r"^indices must have the forward output's shape \(3, 3\), got \(2, 3\)"),
    (R.max_pool2d_backward_naive, dict(dout=np.ones((3, 3)), x=X4[0, 0], size=2,
                                       indices=np.zeros((2, 3), int)), ValueError,
     r"^indices must have the forward output's shape \(3, 3\), got \(2, 3\)"),
    (pyconv.max_pool2d_backward, dict(dout=np.ones((3, 3)), x=X4[0, 0], size=2,
                                      indices=np.full((3, 3), 36)), ValueError,
     r"^indices must lie in \[0, H\*W\) = \[0, 36\) .*got values from 36 to 36"),
    (pyconv.max_pool2d_backward, dict(dout=np.ones((3, 3)), x=X4[0, 0], size=2,
                                      indices=np.full((3, 3), -1)), ValueError,
     r"^indices must lie in \[0, H\*W\)"),
    (pyconv.avg_pool2d_backward, dict(dout=np.ones((2, 3, 3, 3)), x_shape=(2, 3, 6), size=2),
     ValueError, r"^dout must have the forward output's shape \(2, 1, 3\), got \(2, 3, 3, 3\)"),
    (pyconv.avg_pool2d_backward, dict(dout=np.ones((2, 3, 3, 3)), x_shape=None, size=2),
     ValueError, r"^x_shape must be the forward input's shape.*got None"),
    (pyconv.avg_pool2d_backward, dict(dout=np.ones((2, 3, 3, 3)), x_shape=(2, 3, 6, 6, 1),
                                      size=2), ValueError, r"^x_shape must be the forward input"),
    (pyconv.avg_pool2d_backward, dict(dout=np.ones((2, 3, 3, 3)), x_shape=(2, 3, -6, 6), size=2),
     ValueError, r"^x_shape entries must be >= 0, got -6"),
    (pyconv.avg_pool2d_backward, dict(dout=np.ones((2, 3, 3, 3)), x_shape=(2, 3, 6.0, 6), size=2),
     TypeError, r"^x_shape entries must be an int, got 6.0"),
    (pyconv.avg_pool2d_backward, dict(dout=np.ones((2, 3, 3, 3)), x_shape=X4.shape, size=2,
                                      padding=3), ValueError,
     r"padding must be at most half the pool window"),
    (R.avg_pool2d_backward_naive, dict(dout=np.ones((2, 3, 3, 3)), x_shape=None, size=2),
     TypeError, r"^x_shape must be a tuple of ints, got None"),
    (R.avg_pool2d_backward_naive, dict(dout=np.ones((2, 3, 2, 3)), x_shape=X4.shape, size=2),
     ValueError, r"^dout must have the forward output's shape \(2, 3, 3, 3\), got \(2, 3, 2, 3\)"),
    # convolution
    *[case for f in (pyconv.conv2d, R.conv2d_naive, R.conv2d_im2col) for case in _conv_cases(f)],
    (R.conv2d_backward_naive, dict(dout=np.ones((2, 4, 3, 3)), x=X4, w=W4), ValueError,
     r"^dout must have the forward output's shape \(2, 4, 4, 4\), got \(2, 4, 3, 3\)"),
    *_conv_cases(pyconv.conv2d_backward, dict(dout=np.ones((2, 4, 4, 4))), forward=False),
    *[(f, dict(x=X4, w=W4, method="fast", **extra), ValueError,
       r"^method must be one of 'auto', 'direct', 'im2col', 'winograd', got 'fast'")
      for f, extra in ((pyconv.conv2d, {}), (pyconv.conv2d_backward, dict(dout=np.ones((2, 4, 4, 4)))))],
    *[(pyconv.conv2d_backward, dict(dout=np.ones((2, 4, 3, 3)), x=X4, w=W4, method=m), ValueError,
       r"^dout must have shape \(2, 4, 4, 4\)|dout must have the forward output's shape")
      for m in ("direct", "im2col", "winograd")],
    *[(f, dict(x=X4, w=W4, method="winograd", **extra), ValueError,
       r"^method='winograd' needs stride 1, got stride=\(2, 2\)")
      for f, extra in ((pyconv.conv2d, dict(stride=2, strict=False)),
                       (pyconv.conv2d_backward, dict(dout=np.ones((2, 4, 2, 2)), stride=2)))],
    (pyconv.conv2d, dict(x=X4, w=W4[:, :, :2], method="winograd"), ValueError,
     r"^method='winograd' needs 3x3 filters, got 2x3"),
    (pyconv.conv2d, dict(x=X4, w=W4, dilation=(1, 2), method="winograd"), ValueError,
     r"^method='winograd' needs dilation 1, got dilation=\(1, 2\)"),
    (pyconv.conv2d, dict(x=np.ones((2, 4, 6, 6)), w=np.ones((4, 2, 3, 3)), groups=2,
                         method="winograd"), ValueError,
     r"^method='winograd' needs groups=1, got groups=2"),
    (pyconv.set_float32_conv_precision, dict(precision="medium"), ValueError,
     r"^precision must be 'highest' or 'high', got 'medium'"),
    (pyconv.conv2d_backward, dict(dout=np.ones((2, 4, 4, 4)), x=X4, w=W4, need=("dz",)),
     ValueError, r"^need entries must be 'dx', 'dw' or 'db', got 'dz'"),
    (pyconv.conv2d_backward, dict(dout=np.ones((2, 4, 4, 4)), x=X4, w=W4, need=None),
     TypeError, r"^need must be a sequence of 'dx', 'dw', 'db', got None"),
    (pyconv.conv2d, dict(x=X4, w=W4, method=None), ValueError, r"^method must be one of .*None"),
    (pyconv.conv2d, dict(x=X4, w=W4, num_threads=0), ValueError, r"^num_threads=0"),
    (pyconv.set_workspace_limit, dict(nbytes=0), ValueError,
     r"the workspace limit must be a positive number of bytes, got 0"),
    (pyconv.set_workspace_limit, dict(nbytes="64MB"), TypeError,
     r"the workspace limit must be an int number of bytes or None, got '64MB'"),
    # nearest neighbours
    (_knn_fit, dict(X=X2, k=0), ValueError, r"^k must be positive, got 0"),
    (_knn_fit, dict(X=X2, k=6), ValueError, r"^k=6 neighbours need at least 6 training rows, got 5"),
    (_knn_fit, dict(X=X2, k=2.0), TypeError, r"^k must be an int, got 2.0"),
    (_knn_fit, dict(X=X2, metric="cosine"), ValueError,
     r"^metric must be one of \('l1', 'l2'\), got 'cosine'"),
    (_knn_fit, dict(X=X2, y=[0, 1]), ValueError,
     r"^y must have shape \(5,\) to label the rows of X, got shape \(2,\)"),
    (_knn_fit, dict(X=X2, y=None), ValueError, r"^y must have shape \(5,\) .*got shape \(\)"),
    (_knn_predict, dict(X=np.ones((2, 4))), ValueError,
     r"X and Y must have the same number of columns \(features\), got X \(2, 4\) and Y \(5, 3\)"),
    (pyconv.KNearestNeighbor().predict, dict(X=X2), ValueError,
     r"^this KNearestNeighbor is not fitted yet: call fit\(X, y\) first"),
    # shape arithmetic
    (pyconv.conv_output_size, dict(n=0, f=1), ValueError, r"^n must be positive, got 0"),
    (pyconv.conv_output_size, dict(n=5, f=3, stride=True), TypeError,
     r"^stride must be an int, got True of type bool"),
    (pyconv.conv_output_size, dict(n=5, f=3, strict="no"), TypeError,
     r"^strict must be True or False, got 'no'"),
    (pyconv.conv_output_size, dict(n=10, f=3, stride=10**30), ValueError,
     r"no padding makes stride 10+ fit; strides that fit with padding 0: 1, 7; or pass strict"),
    (pyconv.conv_output_size, dict(n=10**30, f=1, stride=2), ValueError,
     r"no padding makes stride 2 fit; strides that fit with padding 0: the divisors of "),
    (pyconv.pool_output_size, dict(n=5, size=2, padding=2), ValueError,
     r"padding must be at most half the pool window"),
    (pyconv.pool_output_size, dict(n=5, size=None), TypeError, r"^size must be an int, got None"),
    (pyconv.conv_param_count, dict(k=0, f=3, c=3), ValueError, r"^k must be positive, got 0"),
    (pyconv.conv_param_count, dict(k=4, f=(3,), c=3), ValueError,
     r"^f must be an int or an \(h, w\) pair, got \(3,\)"),
    (pyconv.conv_param_count, dict(k=4, f=3, c=3, groups=2), ValueError,
     r"groups=2 must divide both the input channels c=3 and the filters k=4"),
    (pyconv.summary, dict(input_shape=(5, 5), layers=[]), ValueError,
     r"^input_shape must be \(H, W, C\) or a string 'HxWxC', got \(5, 5\)"),
    (pyconv.summary, dict(input_shape=None, layers=[]), ValueError, r"^input_shape must be .*None"),
    (pyconv.summary, dict(input_shape=(5, 5, 0), layers=[]), ValueError,
     r"^input_shape entries must be positive, got 0"),
    (pyconv.summary, dict(input_shape="5x5", layers=[]), ValueError,
     r"^input shape must be written HxWxC with positive sizes, got '5x5'"),
    (pyconv.summary, dict(input_shape=(5, 5, 3), layers="conv:k=2,f=3"), TypeError,
     r"^layers must be a list of layer strings .*got str 'conv:k=2,f=3'"),
    (pyconv.summary, dict(input_shape=(5, 5, 3), layers=None), TypeError,
     r"^layers must be a list of layer strings .*got NoneType None"),
    (pyconv.summary, dict(input_shape=(5, 5, 3), layers=[None]), TypeError,
     r"^layers must hold strings, got None of type NoneType"),
    (pyconv.summary, dict(input_shape=(5, 5, 3), layers=["conv:k=2"]), ValueError,
     r"layer 'conv:k=2': missing f"),
    (pyconv.summary, dict(input_shape=(5, 5, 3), layers=["fc:n=0"]), ValueError,
     r"^n must be positive, got 0"),
    (pyconv.summary, dict(input_shape=(5, 5, 3), layers=["conv:k=2,f=2,s=2"]), ValueError,
     r"layer 1 \(conv:k=2,f=2,s=2\) on input \(5, 5, 3\): .*\(5 - 2 \+ 2\*0\)/2 \+ 1 = 2.5"),
    # back-propagation and gradient checking
    (pyconv.squared_norm, dict(W=np.ones((2, 3)), x=np.ones(2)), ValueError,
     r"W has 3 columns but x has 2 entries: expected x.shape == \(3,\)"),
    (pyconv.squared_norm, dict(W=np.ones(3), x=np.ones(3)), ValueError,
     r"^W must have 2 dimensions, got shape \(3,\)"),
    (pyconv.squared_norm_backward, dict(W=np.ones((2, 3)), x=np.ones(3), dout=None), TypeError,
     r"^dout must be a real number .*got None of type NoneType"),
    (pyconv.squared_norm_backward, dict(W=np.ones((2, 3)), x=np.ones(3), dout=np.ones(2)),
     TypeError, r"^dout must be a real number .*of type ndarray"),
    (pyconv.numerical_gradient, dict(f=None, x=np.ones(3)), TypeError,
     r"^f must be a callable, got None of type NoneType"),
    (pyconv.numerical_gradient, dict(f=_square, x=np.ones(3), eps=0), ValueError,
     r"^eps must be a positive number, got 0"),
    (pyconv.numerical_gradient, dict(f=lambda v: v * 2, x=np.ones(3), dout=np.ones(4)), ValueError,
     r"^dout must have the shape of f's output \(3,\) \(or broadcast to it\), got \(4,\)"),
    (pyconv.relative_error, dict(a=np.ones(3), b=np.ones(4)), ValueError,
     r"^a and b must have the same shape, got a \(3,\) and b \(4,\)"),
    (pyconv.gradcheck, dict(f=_square, inputs=None, grads=[None]), TypeError,
     r"^inputs must be a list or tuple, got NoneType"),
    (pyconv.gradcheck, dict(f=_square, inputs=[np.ones(2)], grads="a"), TypeError,
     r"^grads must be a list or tuple, got str"),
    (pyconv.gradcheck, dict(f=_square, inputs=[np.ones(2)], grads=[None, None]), ValueError,
     r"^grads must hold one gradient \(or None\) per input: got 2 for 1 inputs"),
    (pyconv.gradcheck, dict(f=_square, inputs=[np.ones(2, complex)], grads=[None]), TypeError,
     r"^inputs\[0\] must hold real numbers"),
    (pyconv.gradcheck, dict(f=_square, inputs=[np.ones(2)], grads=[None], rtol=-1), ValueError,
     r"^rtol must be a positive number, got -1"),
]


@pytest.mark.parametrize("func, kwargs, error, message", CASES,
                         ids=[f"{_call_id(c[0])}-{i}" for i, c in enumerate(CASES)])
def test_malformed_call_is_a_clear_error(func, kwargs, error, message):
    with pytest.raises(error, match=message):
        func(**kwargs)


def test_out_sharing_memory_with_an_input_is_refused():
    X = np.ones((4, 4))
    with pytest.raises(ValueError, match="^out must not share memory with the inputs"):
        pyconv.l1_distances(X, out=X)
    Y = np.ones((8, 4))
    with pytest.raises(ValueError, match="^out must not share memory"):
        pyconv.l1_distances(Y[:4], Y[4:], out=Y[4:])


EMPTY_CALLS = [
    (pyconv.l1_distances, dict(X=np.ones((0, 3)), Y=Y2), (0, 4)),
    (pyconv.l1_distances, dict(X=X2, Y=np.ones((0, 3))), (5, 0)),
    (pyconv.l1_distances, dict(X=np.ones((0, 3))), (0, 0)),
    (R.l1_two_loops, dict(X=np.ones((0, 3)), Y=Y2), (0, 4)),
    (pyconv.l1_topk, dict(X=np.ones((0, 3)), Y=Y2, k=2), ((0, 2), (0, 2))),
    (pyconv.max_pool2d, dict(x=np.ones((0, 3, 6, 6)), size=2), (0, 3, 3, 3)),
    (pyconv.max_pool2d, dict(x=np.ones((0, 3, 6, 6)), size=2, return_indices=True),
     ((0, 3, 3, 3), (0, 3, 3, 3))),
    (R.max_pool2d_naive, dict(x=np.ones((0, 3, 6, 6)), size=2), (0, 3, 3, 3)),
    (pyconv.avg_pool2d, dict(x=np.ones((0, 3, 6, 6)), size=3, stride=1, padding=1), (0, 3, 6, 6)),
    (R.avg_pool2d_naive, dict(x=np.ones((0, 3, 6, 6)), size=3, stride=1, padding=1), (0, 3, 6, 6)),
    (pyconv.max_pool2d_backward, dict(dout=np.ones((0, 3, 3, 3)), x=np.ones((0, 3, 6, 6)),
                                      size=2), (0, 3, 6, 6)),
    (pyconv.max_pool2d_backward, dict(dout=np.ones((0, 3, 3, 3)), x=np.ones((0, 3, 6, 6)),
                                      size=2, indices=np.zeros((0, 3, 3, 3), int)), (0, 3, 6, 6)),
    (pyconv.avg_pool2d_backward, dict(dout=np.ones((0, 3, 3, 3)), x_shape=(0, 3, 6, 6), size=2),
     (0, 3, 6, 6)),
    (R.conv2d_naive, dict(x=np.ones((0, 3, 6, 6)), w=W4), (0, 4, 4, 4)),
    (R.conv2d_im2col, dict(x=np.ones((0, 3, 6, 6)), w=W4, padding="same"), (0, 4, 6, 6)),
    (R.conv2d_backward_naive, dict(dout=np.ones((0, 4, 4, 4)), x=np.ones((0, 3, 6, 6)), w=W4),
     ((0, 3, 6, 6), (4, 3, 3, 3), (4,))),
    *[(pyconv.conv2d, dict(x=np.ones((0, 3, 6, 6)), w=W4, b=np.ones(4), method=m), (0, 4, 4, 4))
      for m in ("direct", "im2col", "winograd")],
    *[(pyconv.conv2d, dict(x=np.ones((0, 4, 6, 6)), w=np.ones((4, 1, 1, 1)), groups=4, method=m),
       (0, 4, 6, 6)) for m in ("direct", "im2col")],
    *[(pyconv.conv2d_backward, dict(dout=np.ones((0, 4, 4, 4)), x=np.ones((0, 3, 6, 6)), w=W4,
                                    method=m), ((0, 3, 6, 6), (4, 3, 3, 3), (4,)))
      for m in ("direct", "im2col", "winograd")],
    (_knn_predict, dict(X=np.ones((0, 3))), (0,)),
]


@pytest.mark.parametrize("func, kwargs, shape", EMPTY_CALLS,
                         ids=[f"{_call_id(c[0])}-{i}" for i, c in enumerate(EMPTY_CALLS)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_empty_batches_give_empty_results(func, kwargs, shape, dtype):
    kwargs = {k: v.astype(dtype) if isinstance(v, np.ndarray) and v.dtype.kind == "f" else v
              for k, v in kwargs.items()}
    result = func(**kwargs)
    if isinstance(shape[0], tuple):
        assert tuple(r.shape for r in result) == shape
        results = result
    else:
        assert result.shape == shape
        results = [result]
    for r in results:
        if r.dtype.kind == "f":
            assert r.dtype == dtype
    if func in (R.conv2d_backward_naive, pyconv.conv2d_backward):  # no images: zero dw, db
        np.testing.assert_array_equal(result[1], 0)
        np.testing.assert_array_equal(result[2], 0)


# ---------------------------------------------------------------------------
# Fuzz: arbitrary argument combinations, run in a worker process that a crash
# would take down (tests/_fuzz_worker.py); each call must give a result or a
# ValueError / TypeError / MemoryError.

# mostly what the kernels accept, so that many calls get through to them
_DTYPES = ["f4", "f8"] * 4 + ["f2", ">f8", "i4", "i8", "u1", "?", "c16", "O", "U2", "g"]
_LAYOUTS = ["C", "C", "F", "reversed", "strided", "readonly", "broadcast"]
_JUNK = [None, 3, 2.5, "abc", True, [[1, 2], [3]], [[1.0, 2.0], [3.0, 4.0]], []]


def _arrays(min_dims=0, max_dims=5):
    recipe = st.fixed_dictionaries({
        "shape": st.lists(st.integers(0, 5) | st.integers(1, 5), min_size=min_dims,
                          max_size=max_dims),
        "dtype": st.sampled_from(_DTYPES), "layout": st.sampled_from(_LAYOUTS),
        "seed": st.integers(0, 2**16)})
    return st.one_of(recipe, recipe, recipe, st.sampled_from(_JUNK))


_SIZES = st.one_of(st.integers(1, 3), st.integers(-2, 7),
                   st.lists(st.integers(-1, 6), min_size=1, max_size=3),
                   st.sampled_from([0, 2**31, 2**63, 10**6, None, 1.5, "same", "valid", True]))
_FLAGS = st.sampled_from([True, False, 0, 1, "yes", None])
_THREADS = st.sampled_from([None, 1, 2, -1, -5, 0, 3, 5000, 2**40, "2", 1.5, True])
_SHAPES = st.one_of(st.lists(st.integers(0, 6), min_size=0, max_size=5),
                    st.sampled_from([None, 3, "abc", [2, 3, 10**6, 10**6], [1, 1, 2.5, 3]]))
# paddings: every form of _SIZES, and per-side pairs ((top, bottom), (left, right))
_PADDINGS = st.one_of(_SIZES, st.lists(st.one_of(st.integers(-1, 4),
                                                 st.lists(st.integers(-1, 4), min_size=1,
                                                          max_size=3)),
                                       min_size=2, max_size=2))
_CONV = dict(stride=_SIZES, padding=_PADDINGS, dilation=_SIZES, groups=_SIZES, strict=_FLAGS)
_POOL = dict(size=_SIZES, stride=_SIZES, padding=_PADDINGS, dilation=_SIZES, ceil_mode=_FLAGS)
_METHODS = st.sampled_from(["auto", "direct", "im2col", "winograd", "fast", None])
_NEED = st.sampled_from([["dx"], ["dw", "db"], ["dx", "dw", "db"], [], "dx", ["dz"], None])

# function name -> (required arguments, optional arguments), each argument's strategy
FUZZ = {
    "l1_distances": (dict(X=_arrays(1, 3)), dict(Y=_arrays(1, 3), out=_arrays(1, 3),
                                                  num_threads=_THREADS)),
    "l1_topk": (dict(X=_arrays(1, 3), Y=_arrays(1, 3), k=_SIZES), dict(num_threads=_THREADS)),
    "l1_two_loops": (dict(X=_arrays(1, 3)), dict(Y=_arrays(1, 3))),
    "max_pool2d": (dict(x=_arrays(), size=_SIZES),
                   dict(_POOL, strict=_FLAGS, return_indices=_FLAGS,
                        num_threads=_THREADS)),
    "avg_pool2d": (dict(x=_arrays(), size=_SIZES),
                   dict(_POOL, count_include_pad=_FLAGS, strict=_FLAGS, num_threads=_THREADS)),
    "max_pool2d_backward": (dict(dout=_arrays(), x=_arrays(), size=_SIZES),
                            dict(_POOL, indices=_arrays(),
                                 num_threads=_THREADS)),
    "avg_pool2d_backward": (dict(dout=_arrays(), x_shape=_SHAPES, size=_SIZES),
                            dict(_POOL, count_include_pad=_FLAGS, num_threads=_THREADS)),
    "max_pool2d_naive": (dict(x=_arrays(), size=_SIZES), dict(_POOL, strict=_FLAGS)),
    "conv2d": (dict(x=_arrays(), w=_arrays()),
               dict(_CONV, b=_arrays(0, 2), method=_METHODS, num_threads=_THREADS)),
    "conv2d_backward": (dict(dout=_arrays(), x=_arrays(), w=_arrays()),
                        dict({k: v for k, v in _CONV.items() if k != "strict"}, method=_METHODS,
                             need=_NEED, num_threads=_THREADS)),
    "conv2d_naive": (dict(x=_arrays(), w=_arrays()), dict(_CONV, b=_arrays(0, 2))),
    "conv2d_im2col": (dict(x=_arrays(), w=_arrays()), dict(_CONV, b=_arrays(0, 2))),
    "conv2d_backward_naive": (dict(dout=_arrays(), x=_arrays(), w=_arrays()),
                              {k: v for k, v in _CONV.items() if k != "strict"}),
    "conv_output_size": (dict(n=_SIZES, f=_SIZES),
                         dict(stride=_SIZES, padding=_PADDINGS, dilation=_SIZES, strict=_FLAGS)),
    "pool_output_size": (dict(n=_SIZES, size=_SIZES),
                         dict(stride=_SIZES, padding=_PADDINGS, dilation=_SIZES,
                              ceil_mode=_FLAGS)),
    "conv_param_count": (dict(k=_SIZES, f=_SIZES, c=_SIZES), dict(bias=_FLAGS, groups=_SIZES)),
    "squared_norm": (dict(W=_arrays(1, 3), x=_arrays(0, 2)), {}),
    "squared_norm_backward": (dict(W=_arrays(1, 3), x=_arrays(0, 2)),
                              dict(dout=st.sampled_from([1.0, -2, None, "a", [1.0]]))),
    "relative_error": (dict(a=_arrays(), b=_arrays()), {}),
    "set_num_threads": (dict(n=_THREADS), {}),
}


@st.composite
def _calls(draw):
    name = draw(st.sampled_from(sorted(FUZZ)))
    required, optional = FUZZ[name]
    kwargs = {arg: draw(strategy) for arg, strategy in required.items()}
    for arg in draw(st.lists(st.sampled_from(sorted(optional)), unique=True)) if optional else []:
        kwargs[arg] = draw(optional[arg])
    return {"func": name, "kwargs": kwargs}


class _Worker:
    """A long-lived worker process; restarted (and the call reported) if a call kills it."""

    def __init__(self, cwd):
        self.cwd = cwd
        self.proc = None
        self.counts = collections.Counter()

    def start(self):
        script = pathlib.Path(__file__).with_name("_fuzz_worker.py")
        self.proc = subprocess.Popen([sys.executable, "-u", str(script)], cwd=self.cwd,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)

    def run(self, call):
        if self.proc is None or self.proc.poll() is not None:
            self.start()
        self.proc.stdin.write(json.dumps(call) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            code = self.proc.wait()
            stderr = self.proc.stderr.read()[-2000:]
            self.proc = None
            self.counts["crash"] += 1
            raise AssertionError(f"the call {call} killed the worker (exit code {code}):\n"
                                 f"{stderr}")
        answer = json.loads(line)
        self.counts[answer["outcome"]] += 1
        return answer

    def close(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(timeout=60)


@pytest.fixture(scope="module")
def fuzz_worker(tmp_path_factory):
    # run outside the checkout, so the worker imports the pyconv under test, not ./pyconv
    worker = _Worker(tmp_path_factory.mktemp("fuzz"))
    yield worker
    worker.close()
    print(f"\nfuzz: {sum(worker.counts.values())} calls: {dict(worker.counts)}")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(calls=st.lists(_calls(), min_size=1, max_size=6))
def test_fuzzed_calls_give_a_result_or_a_clean_error(fuzz_worker, calls):
    for call in calls:
        answer = fuzz_worker.run(call)
        assert answer["outcome"] != "unclean", (
            f"{call['func']}(**{call['kwargs']}) raised {answer['error']}: {answer['message']}")
