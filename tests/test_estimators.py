"""pyconv.KNeighborsClassifier: a scikit-learn estimator on pyconv's top-k searches."""
import numpy as np
import pytest

import pyconv

sklearn = pytest.importorskip("sklearn", reason="scikit-learn is not installed: "
                                                "KNeighborsClassifier needs it")
from sklearn.model_selection import GridSearchCV, cross_val_score  # noqa: E402
from sklearn.neighbors import KNeighborsClassifier as SklearnKNN  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import check_estimator  # noqa: E402

KNN = pyconv.KNeighborsClassifier


@pytest.mark.parametrize("estimator", [KNN(), KNN(n_neighbors=3, weights="distance"),
                                       KNN(metric="sqeuclidean")])
def test_passes_scikit_learns_estimator_checks(estimator):
    check_estimator(estimator)


def _data(seed=0, n=120, d=6, classes=3):
    rng = np.random.default_rng(seed)
    X = rng.integers(-8, 9, (n, d)).astype(np.float64) + rng.random((n, d)) * 1e-3
    y = rng.integers(0, classes, n)
    return X, y, rng.integers(-8, 9, (40, d)).astype(np.float64)


@pytest.mark.parametrize("metric, theirs", [("l1", "manhattan"), ("manhattan", "manhattan"),
                                            ("sqeuclidean", "sqeuclidean")])
@pytest.mark.parametrize("weights", ["uniform", "distance"])
@pytest.mark.parametrize("k", [1, 4, 7])
def test_matches_scikit_learn(metric, theirs, weights, k):
    X, y, T = _data()
    ours = KNN(n_neighbors=k, metric=metric, weights=weights).fit(X, y)
    ref = SklearnKNN(n_neighbors=k, metric=theirs, weights=weights, algorithm="brute").fit(X, y)
    dist, ind = ours.kneighbors(T)
    ref_dist, ref_ind = ref.kneighbors(T)
    np.testing.assert_allclose(dist, ref_dist, rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(ind, ref_ind)  # no ties: the data are jittered
    np.testing.assert_allclose(ours.predict_proba(T), ref.predict_proba(T), rtol=1e-12)
    np.testing.assert_array_equal(ours.predict(T), ref.predict(T))
    assert ours.score(X, y) == ref.score(X, y)
    np.testing.assert_array_equal(ours.kneighbors(n_neighbors=k)[1], ref.kneighbors()[1])


def test_distance_weights_with_exact_matches():
    X = np.array([[0.0], [0.0], [1.0], [3.0]])
    knn = KNN(n_neighbors=3, weights="distance").fit(X, ["a", "b", "b", "b"])
    # two neighbours at distance 0: they alone vote, one each; the tie goes to "a"
    np.testing.assert_array_equal(knn.predict_proba([[0.0]]), [[0.5, 0.5]])
    assert knn.predict([[0.0]])[0] == "a"


def test_works_in_pipelines_and_searches():
    X, y, _ = _data(1, n=90, classes=2)
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    scores = cross_val_score(make_pipeline(StandardScaler(), KNN(n_neighbors=3)), X, y, cv=3)
    assert scores.shape == (3,) and scores.min() > 0.7
    search = GridSearchCV(KNN(), {"n_neighbors": [1, 5], "weights": ["uniform", "distance"]},
                          cv=3).fit(X, y)
    assert search.best_params_["n_neighbors"] in (1, 5)
    assert KNN(n_neighbors=2).get_params() == {"n_neighbors": 2, "weights": "uniform",
                                              "metric": "l1", "num_threads": None}


def test_the_handout_classifier_votes_the_same():
    X, y, T = _data(2)
    handout = pyconv.KNearestNeighbor(k=5).fit(X, y)
    np.testing.assert_array_equal(KNN(n_neighbors=5).fit(X, y).predict(T), handout.predict(T))


@pytest.mark.parametrize("params, error, message", [
    (dict(n_neighbors=0), ValueError, r"^n_neighbors must be positive, got 0"),
    (dict(n_neighbors=2.5), TypeError, r"^n_neighbors must be an int, got 2.5 of type float"),
    (dict(weights="inverse"), ValueError,
     r"^weights must be one of \('uniform', 'distance'\), got 'inverse'"),
    (dict(metric="cosine"), ValueError,
     r"^metric must be one of \('l1', 'manhattan', 'sqeuclidean'\), got 'cosine'"),
])
def test_bad_parameters_are_named_at_fit(params, error, message):
    with pytest.raises(error, match=message):
        KNN(**params).fit([[0.0], [1.0]], [0, 1])


def test_too_many_neighbours_and_sparse_input():
    scipy_sparse = pytest.importorskip("scipy.sparse")
    knn = KNN(n_neighbors=3).fit([[0.0], [1.0]], [0, 1])
    with pytest.raises(ValueError, match="Expected n_neighbors <= n_samples_fit"):
        knn.predict([[0.5]])
    with pytest.raises(TypeError, match="does not take sparse input"):
        KNN().fit(scipy_sparse.csr_matrix(np.eye(6)), np.arange(6))
