"""scikit-learn estimators on pyconv's kernels (needs scikit-learn >= 1.6).

The estimators subclass scikit-learn's ``BaseEstimator`` and mixins and check
their input with ``sklearn.utils.validation``, so they follow its conventions
(parameters, fitted attributes, errors, tags) exactly and work in a
``Pipeline``, ``GridSearchCV`` or ``cross_val_score``. ``import pyconv`` does
not need scikit-learn: this module is imported the first time
``pyconv.KNeighborsClassifier`` is used.
"""
import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from .distance import l1_topk
from .neighbors import _sqeuclidean_topk, neighbor_weights, vote

_SEARCHES = {"l1": l1_topk, "manhattan": l1_topk,
             "sqeuclidean": lambda X, Y, k, num_threads: _sqeuclidean_topk(X, Y, k)}
_WEIGHTS = ("uniform", "distance")


def _refuse_sparse(X):
    if sparse.issparse(X):
        raise TypeError("KNeighborsClassifier does not take sparse input (pyconv's kernels "
                        "read dense rows): pass X.toarray()")


class KNeighborsClassifier(ClassifierMixin, BaseEstimator):
    """k-nearest-neighbour classifier on pyconv's exact top-k searches.

    scikit-learn's ``KNeighborsClassifier`` with its parameter names, for the
    metrics pyconv computes: the L1 search is :func:`pyconv.l1_topk` (SIMD,
    never the full distance matrix), the squared-L2 one a blockwise GEMM.

    Parameters
    ----------
    n_neighbors : int, default 5
        Neighbours that vote.
    weights : {"uniform", "distance"}, default "uniform"
        One vote per neighbour, or 1/distance (where some neighbours are at
        distance 0, those alone vote), as in scikit-learn.
    metric : {"l1", "manhattan", "sqeuclidean"}, default "l1"
        "l1" and "manhattan" are the same; "sqeuclidean" is the squared
        Euclidean distance, ``||x||^2 + ||y||^2 - 2 x.y`` per block.
    num_threads : int, optional
        OpenMP threads of the L1 search; see :func:`pyconv.resolve_num_threads`.

    Attributes
    ----------
    classes_ : ndarray, shape (n_classes,)
        The distinct training labels, sorted.
    n_features_in_ : int
        Columns of the training data.
    n_samples_fit_ : int
        Training rows.

    Notes
    -----
    Neighbours are ordered by distance, ties to the smaller training index.
    The predicted label has the largest vote total, a tie going to the
    smallest label; :class:`pyconv.KNearestNeighbor` (the handout's
    interface) shares the searches and the vote. Inputs are checked by
    scikit-learn: NaN, inf, sparse and complex data are refused.

    Examples
    --------
    >>> import pyconv
    >>> knn = pyconv.KNeighborsClassifier(n_neighbors=3)
    >>> knn.fit([[0, 0], [0, 1], [5, 5], [6, 5]], ["a", "a", "b", "b"]).predict([[0, 2], [5, 4]])
    array(['a', 'b'], dtype='<U1')
    >>> knn.predict_proba([[0, 2]])
    array([[0.66666667, 0.33333333]])
    >>> from sklearn.model_selection import cross_val_score
    >>> X = [[0, 0], [0, 1], [1, 0], [5, 5], [6, 5], [5, 6]]
    >>> cross_val_score(pyconv.KNeighborsClassifier(n_neighbors=1), X, [0, 0, 0, 1, 1, 1], cv=3)
    array([1., 1., 1.])
    """

    def __init__(self, n_neighbors=5, *, weights="uniform", metric="l1", num_threads=None):
        self.n_neighbors = n_neighbors
        self.weights = weights
        self.metric = metric
        self.num_threads = num_threads

    def _check_params(self):
        if isinstance(self.n_neighbors, (bool, np.bool_)) or not isinstance(
                self.n_neighbors, (int, np.integer)):
            raise TypeError(f"n_neighbors must be an int, got {self.n_neighbors!r} of type "
                            f"{type(self.n_neighbors).__name__}")
        if self.n_neighbors < 1:
            raise ValueError(f"n_neighbors must be positive, got {self.n_neighbors}")
        if self.weights not in _WEIGHTS:
            raise ValueError(f"weights must be one of {_WEIGHTS}, got {self.weights!r}")
        if self.metric not in _SEARCHES:
            raise ValueError(f"metric must be one of {tuple(_SEARCHES)}, got {self.metric!r}")

    def fit(self, X, y):
        """Remember the training rows and their labels.

        Parameters
        ----------
        X : array_like, shape (n_samples, n_features)
        y : array_like, shape (n_samples,)
            Class labels.

        Returns
        -------
        KNeighborsClassifier
            self.

        Raises
        ------
        ValueError
            On a bad parameter, non-finite or mismatched data, or continuous ``y``.
        TypeError
            On sparse ``X`` or a non-integer ``n_neighbors``.
        """
        self._check_params()
        _refuse_sparse(X)
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32])
        check_classification_targets(y)
        self.classes_, self._y = np.unique(y, return_inverse=True)
        self._fit_X = X
        self.n_samples_fit_ = X.shape[0]
        return self

    def kneighbors(self, X=None, n_neighbors=None, return_distance=True):
        """The nearest training rows of each row of X.

        Parameters
        ----------
        X : array_like, shape (n_queries, n_features), optional
            None queries the training rows, each without itself.
        n_neighbors : int, optional
            Defaults to the ``n_neighbors`` parameter.
        return_distance : bool, default True

        Returns
        -------
        distances : ndarray, shape (n_queries, n_neighbors), only if ``return_distance``
            In the metric (squared for "sqeuclidean"), ascending.
        indices : ndarray of intp, shape (n_queries, n_neighbors)
            Rows of the training data.

        Raises
        ------
        ValueError
            If n_neighbors exceeds the training rows (less one for X None).
        """
        check_is_fitted(self)
        k = self.n_neighbors if n_neighbors is None else n_neighbors
        query = X is None
        if query:
            X, k = self._fit_X, k + 1
        else:
            _refuse_sparse(X)
            X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        if k > self.n_samples_fit_:
            raise ValueError(f"Expected n_neighbors <= n_samples_fit, but n_neighbors = {k}, "
                             f"n_samples_fit = {self.n_samples_fit_}, n_samples = {X.shape[0]}")
        distances, indices = _SEARCHES[self.metric](X, self._fit_X, k,
                                                    num_threads=self.num_threads)
        if query:  # drop each row itself, or its farthest neighbour when a tie hid it
            self_hit = indices == np.arange(X.shape[0])[:, None]
            self_hit[~self_hit.any(axis=1), -1] = True
            keep = (X.shape[0], k - 1)
            distances, indices = distances[~self_hit].reshape(keep), indices[~self_hit].reshape(keep)
        return (distances, indices) if return_distance else indices

    def _votes(self, X):
        check_is_fitted(self)
        distances, indices = self.kneighbors(X)
        return vote(indices, self._y, len(self.classes_),
                    neighbor_weights(distances, self.weights), totals=True)

    def predict_proba(self, X):
        """Each class's share of the vote among the nearest training rows.

        Parameters
        ----------
        X : array_like, shape (n_queries, n_features)

        Returns
        -------
        ndarray, shape (n_queries, n_classes)
            Columns in the order of ``classes_``; rows sum to 1.
        """
        votes = self._votes(X).astype(np.float64)
        return votes / votes.sum(axis=1, keepdims=True)

    def predict(self, X):
        """The label with the largest vote (ties: the smallest label).

        Parameters
        ----------
        X : array_like, shape (n_queries, n_features)

        Returns
        -------
        ndarray, shape (n_queries,)
            Labels, of the training labels' dtype.
        """
        votes = self._votes(X)
        return self.classes_[np.argmax(votes, axis=1)]
