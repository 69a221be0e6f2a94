import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pyconv
from pyconv.reference import l1_two_loops

from _helpers import run_python


def brute_force(X_train, y_train, X_test, k, metric):
    """Full distance matrix, stable argsort, then a vote whose ties go to the smallest label."""
    if metric == "l1":
        D = l1_two_loops(X_test, X_train)
    else:
        diff = np.asarray(X_test, np.float64)[:, None, :] - np.asarray(X_train, np.float64)[None]
        D = np.sum(diff * diff, axis=2)
    ind = np.argsort(D, axis=1, kind="stable")[:, :k]
    labels = np.asarray(y_train)[ind]
    pred = []
    for row in labels:
        values, counts = np.unique(row, return_counts=True)  # values sorted
        pred.append(values[np.argmax(counts)])
    return np.take_along_axis(D, ind, 1), ind, np.array(pred)


@settings(max_examples=30, deadline=None)
@given(n_train=st.integers(1, 30), n_test=st.integers(1, 10), d=st.integers(1, 9),
       data=st.data(), seed=st.integers(0, 2**32 - 1), metric=st.sampled_from(["l1", "l2"]),
       dtype=st.sampled_from([np.float32, np.float64, np.int64]))
def test_knn_matches_brute_force(n_train, n_test, d, data, seed, metric, dtype):
    rng = np.random.default_rng(seed)
    k = data.draw(st.integers(1, n_train))
    X = rng.integers(-3, 4, (n_train, d)).astype(dtype)  # small integers: exact, many ties
    y = rng.integers(0, 3, n_train)
    T = rng.integers(-3, 4, (n_test, d)).astype(dtype)
    knn = pyconv.KNearestNeighbor(k=k, metric=metric)
    assert knn.fit(X, y) is knn
    want_d, want_i, want_pred = brute_force(X, y, T, k, metric)
    dist, ind = knn.kneighbors(T)
    np.testing.assert_array_equal(ind, want_i)
    np.testing.assert_array_equal(dist, want_d)
    np.testing.assert_array_equal(knn.predict(T), want_pred)


def test_vote_tie_goes_to_smallest_label():
    X = np.array([[0.0], [1.0], [-1.0], [3.0]])
    knn = pyconv.KNearestNeighbor(k=2).fit(X, ["b", "a", "c", "a"])
    # neighbours of 0.4: rows 0 (b) and 1 (a): one vote each, "a" wins
    np.testing.assert_array_equal(knn.predict([[0.4]]), ["a"])
    knn = pyconv.KNearestNeighbor(k=1).fit(X, [7, 5, 5, 9])
    np.testing.assert_array_equal(knn.predict([[0.1], [2.9]]), [7, 9])


@pytest.mark.parametrize("metric", ["l1", "l2"])
def test_knn_blocks_against_brute_force(metric, monkeypatch):
    monkeypatch.setattr(pyconv.neighbors, "_L2_ROWS_X", 7)
    monkeypatch.setattr(pyconv.neighbors, "_L2_ROWS_Y", 13)
    rng = np.random.default_rng(3)
    X = rng.integers(0, 4, (100, 5)).astype(np.float32)
    y = rng.integers(0, 4, 100)
    T = rng.integers(0, 4, (30, 5)).astype(np.float32)
    knn = pyconv.KNearestNeighbor(k=6, metric=metric).fit(X, y)
    want_d, want_i, want_pred = brute_force(X, y, T, 6, metric)
    np.testing.assert_array_equal(knn.kneighbors(T)[1], want_i)
    np.testing.assert_array_equal(knn.predict(T), want_pred)


@pytest.mark.parametrize("metric", ["l1", "l2"])
def test_knn_nan_rows_are_never_nearest(metric):
    X = np.array([[np.nan, 0.0], [5.0, 5.0], [1.0, 1.0], [np.inf, 0.0]])
    knn = pyconv.KNearestNeighbor(k=4, metric=metric).fit(X, [0, 1, 2, 3])
    dist, ind = knn.kneighbors([[0.0, 0.0]])
    assert list(ind[0, :2]) == [2, 1]
    assert np.isnan(dist[0, -1])  # the NaN row sorts last
    assert set(ind[0]) == {0, 1, 2, 3}


@pytest.mark.parametrize("kwargs, error, message", [
    ({"k": 0}, ValueError, "k must be positive, got 0"),
    ({"k": 1.0}, TypeError, "k must be an int"),
    ({"metric": "cosine"}, ValueError, r"metric must be one of \('l1', 'l2'\), got 'cosine'"),
])
def test_knn_bad_parameters(kwargs, error, message):
    with pytest.raises(error, match=message):
        pyconv.KNearestNeighbor(**kwargs)


def test_knn_bad_fit_and_predict():
    knn = pyconv.KNearestNeighbor(k=3)
    with pytest.raises(ValueError, match="not fitted yet"):
        knn.predict([[1.0]])
    with pytest.raises(ValueError, match=r"y must have shape \(2,\)"):
        knn.fit(np.ones((2, 1)), [1, 2, 3])
    with pytest.raises(ValueError, match="k=3 neighbours need at least 3 training rows, got 2"):
        knn.fit(np.ones((2, 1)), [1, 2])
    knn.fit(np.ones((3, 2)), [1, 2, 3])
    with pytest.raises(ValueError, match="same number of columns"):
        knn.predict(np.ones((1, 3)))


def test_pyconv_imports_without_scikit_learn(tmp_path):
    """Only KNeighborsClassifier needs scikit-learn; without it, it says how to install it."""
    code = (
        "import sys; sys.modules['sklearn'] = None\n"
        "import pyconv\n"
        "assert 'KNeighborsClassifier' not in pyconv.__all__\n"
        "from pyconv import *\n"
        "try:\n"
        "    pyconv.KNeighborsClassifier\n"
        "except ImportError as exc:\n"
        "    assert 'needs scikit-learn >= 1.6' in str(exc), exc\n"
        "else:\n"
        "    raise AssertionError('no ImportError')\n"
    )
    run_python(code, tmp_path)
