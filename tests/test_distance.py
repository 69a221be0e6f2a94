import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pyconv
from pyconv.reference import l1_no_loops, l1_one_loop, l1_two_loops

from _helpers import DTYPES, assert_close


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_x, n_y, d", [(1, 1, 1), (3, 5, 7), (17, 4, 33), (2, 9, 3072)])
def test_l1_matches_oracles(dtype, n_x, n_y, d):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n_x, d)).astype(dtype)
    Y = rng.standard_normal((n_y, d)).astype(dtype)
    D = pyconv.l1_distances(X, Y)
    assert D.dtype == dtype
    assert_close(D, l1_two_loops(X.astype(np.float64), Y.astype(np.float64)), dtype)
    assert_close(D, l1_one_loop(X, Y), dtype)


@settings(max_examples=40, deadline=None)
@given(n_x=st.integers(1, 12), n_y=st.integers(1, 12), d=st.integers(1, 40),
       seed=st.integers(0, 2**32 - 1), dtype=st.sampled_from(DTYPES))
def test_l1_hypothesis(n_x, n_y, d, seed, dtype):
    rng = np.random.default_rng(seed)
    X = rng.integers(-5, 6, (n_x, d)).astype(dtype)
    Y = rng.integers(-5, 6, (n_y, d)).astype(dtype)
    assert_close(pyconv.l1_distances(X, Y), l1_no_loops(X, Y), dtype)


def test_l1_against_itself_and_integers():
    X = np.arange(12).reshape(4, 3)
    D = pyconv.l1_distances(X)
    assert D.dtype == np.float64
    np.testing.assert_array_equal(D, l1_two_loops(X))
    assert np.all(np.diag(D) == 0)


def test_l1_out_is_filled_in_place():
    X = np.ones((3, 2), np.float32)
    out = np.empty((3, 3), np.float32)
    assert pyconv.l1_distances(X, out=out) is out
    with pytest.raises(ValueError, match="out must be a writeable C-contiguous float32"):
        pyconv.l1_distances(X, out=np.empty((3, 3)))


def test_l1_results_do_not_depend_on_thread_count():
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((50, 37)), rng.standard_normal((40, 37))
    one = pyconv.l1_distances(X, Y, num_threads=1)
    np.testing.assert_array_equal(one, pyconv.l1_distances(X, Y, num_threads=-1))
    np.testing.assert_array_equal(one, pyconv.l1_distances(X, Y, num_threads=3))


@pytest.mark.parametrize("X, Y, error, message", [
    (np.ones(3), None, ValueError, r"X must have 2 dimensions, got shape \(3,\)"),
    (np.ones((2, 3)), np.ones((2, 4)), ValueError, "same number of columns"),
    (np.ones((2, 3), complex), None, TypeError, "X must hold real numbers"),
    (None, None, TypeError, "X must be an array"),
])
def test_l1_bad_input(X, Y, error, message):
    with pytest.raises(error, match=message):
        pyconv.l1_distances(X, Y)
