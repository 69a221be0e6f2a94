"""k-nearest-neighbour classification on top of pyconv's top-k searches."""
import numpy as np

from ._validation import as_array, as_kernel_input, check_int, check_rows
from .distance import _check_k, l1_topk

METRICS = ("l1", "l2")
# Rows of X and of Y per block of the squared-L2 search: the working block is
# at most _L2_ROWS_X x _L2_ROWS_Y distances, whatever the sizes of X and Y.
_L2_ROWS_X = 256
_L2_ROWS_Y = 4096


def _sqeuclidean_topk(X, Y, k):
    """The k nearest rows of Y in squared L2 distance, per row of X, block by block.

    Same contract as :func:`pyconv.l1_topk` (ascending, ties to the smaller
    index, NaN last), with ``||x||^2 + ||y||^2 - 2 x.y`` (one matrix product
    per block, clipped at 0) in place of the L1 distance.
    """
    X, Y, dtype = check_rows(X, Y)
    n_x, n_y = X.shape[0], Y.shape[0]
    k = _check_k(k, n_y)
    X = as_kernel_input(X, dtype)
    Y = as_kernel_input(Y, dtype)
    x2 = np.einsum("ij,ij->i", X, X)
    y2 = np.einsum("ij,ij->i", Y, Y)
    distances = np.empty((n_x, k), dtype)
    indices = np.empty((n_x, k), np.intp)
    for x0 in range(0, n_x, _L2_ROWS_X):
        xs = slice(x0, x0 + _L2_ROWS_X)
        best_d = np.empty((len(x2[xs]), 0), dtype)
        best_i = np.empty(best_d.shape, np.intp)
        for y0 in range(0, n_y, _L2_ROWS_Y):
            ys = slice(y0, y0 + _L2_ROWS_Y)
            with np.errstate(invalid="ignore"):  # inf rows give inf - inf = NaN: sorted last
                tile = x2[xs, None] + y2[None, ys] - 2 * (X[xs] @ Y[ys].T)
            np.maximum(tile, 0, out=tile)  # rounding can make a 0 slightly negative
            # Earlier winners have smaller indices and come first, so a stable
            # sort keeps ties in index order; NumPy sorts NaN last.
            cand_d = np.hstack([best_d, tile])
            cand_i = np.hstack([best_i, np.broadcast_to(np.arange(y0, y0 + tile.shape[1]),
                                                        tile.shape)])
            order = np.argsort(cand_d, axis=1, kind="stable")[:, :k]
            best_d = np.take_along_axis(cand_d, order, 1)
            best_i = np.take_along_axis(cand_i, order, 1)
        distances[xs] = best_d
        indices[xs] = best_i
    return distances, indices


def neighbor_weights(distances, weights):
    """Each neighbour's vote: 1 (``"uniform"``), or 1/distance (``"distance"``), where a
    row with neighbours at distance 0 gives those 1 and the others 0, as scikit-learn
    does; None for uniform votes."""
    if weights == "uniform":
        return None
    with np.errstate(divide="ignore"):
        w = 1.0 / distances.astype(np.float64)
    exact = np.isinf(w)
    rows = exact.any(axis=1)
    w[rows] = exact[rows]
    return w


def vote(indices, labels, n_classes, weights=None, totals=False):
    """The vote among each row's neighbours: the winning label code (the largest total,
    ties to the smallest code), or with ``totals`` the (n, n_classes) vote totals.

    ``indices`` (n, k) are training rows, ``labels`` their label codes in
    [0, n_classes); ``weights`` (n, k) each neighbour's vote, None for one each.
    """
    dtype = np.intp if weights is None else np.float64
    votes = np.zeros((indices.shape[0], n_classes), dtype)
    rows = np.arange(indices.shape[0])[:, None]
    np.add.at(votes, (rows, labels[indices]), 1 if weights is None else weights)
    return votes if totals else np.argmax(votes, axis=1)  # argmax: first, so smallest


class KNearestNeighbor:
    """k-nearest-neighbour classifier with L1 or squared-L2 distance (the handout's interface).

    :class:`pyconv.KNeighborsClassifier` is the scikit-learn estimator over the
    same searches and vote.

    Parameters
    ----------
    k : int, default 1
        Neighbours that vote.
    metric : {"l1", "l2"}, default "l1"
        "l1" searches with :func:`pyconv.l1_topk` (exact, SIMD kernel); "l2"
        with a blockwise top-k on squared Euclidean distance computed by the
        GEMM identity ``||x||^2 + ||y||^2 - 2 x.y`` (one matrix product per
        block; its rounding differs slightly from a direct sum of squares).
    num_threads : int, optional
        OpenMP threads of the L1 search; see :func:`pyconv.resolve_num_threads`.

    Attributes
    ----------
    classes_ : ndarray, shape (n_classes,)
        The distinct training labels, sorted.

    Raises
    ------
    ValueError
        If k is not positive or metric is unknown.
    TypeError
        If k is not an int.

    Notes
    -----
    Neither search builds the n_test x n_train distance matrix: memory is
    O(n_test * k) plus a fixed working block. Neighbours are ordered by
    distance, ties to the smaller training index, NaN distances last (a row
    with NaN; for "l2" also a row with inf, since ``inf - inf`` is NaN). The
    vote is a plain majority among the k neighbours; a tie goes to the
    smallest label.

    Examples
    --------
    >>> import pyconv
    >>> knn = pyconv.KNearestNeighbor(k=3).fit([[0, 0], [0, 1], [5, 5], [6, 5]], [0, 0, 1, 1])
    >>> knn.predict([[0, 2], [5, 4]])
    array([0, 1])
    >>> dist, ind = knn.kneighbors([[0, 2]])
    >>> dist, ind
    (array([[1., 2., 8.]]), array([[1, 0, 2]]))
    """

    def __init__(self, k=1, metric="l1", *, num_threads=None):
        self.k = check_int(k, "k", minimum=1)
        if metric not in METRICS:
            raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
        self.metric = metric
        self.num_threads = num_threads

    def fit(self, X, y):
        """Remember the training rows and their labels.

        Parameters
        ----------
        X : array_like, shape (n_train, d)
        y : array_like, shape (n_train,)
            Labels of any sortable dtype.

        Returns
        -------
        KNearestNeighbor
            self.

        Raises
        ------
        ValueError
            If the shapes do not fit, or k exceeds n_train.
        """
        X = as_array(X, "X", ndim=2)
        y = np.asarray(y)
        if y.ndim != 1 or y.shape[0] != X.shape[0]:
            raise ValueError(f"y must have shape ({X.shape[0]},) to label the rows of X, "
                             f"got shape {y.shape}")
        if self.k > X.shape[0]:
            raise ValueError(f"k={self.k} neighbours need at least {self.k} training rows, "
                             f"got {X.shape[0]}")
        self.X_ = X
        self.classes_, self.y_ = np.unique(y, return_inverse=True)
        return self

    def _check_fitted(self):
        if not hasattr(self, "X_"):
            raise ValueError("this KNearestNeighbor is not fitted yet: call fit(X, y) first")

    def kneighbors(self, X):
        """The k nearest training rows of every row of X.

        Parameters
        ----------
        X : array_like, shape (n_test, d)

        Returns
        -------
        distances : ndarray, shape (n_test, k)
            L1 distances, or squared L2 distances for ``metric="l2"``; ascending.
        indices : ndarray of intp, shape (n_test, k)
            Rows of the training data.

        Raises
        ------
        ValueError
            If the model is not fitted or X has another number of columns.
        """
        self._check_fitted()
        if self.metric == "l1":
            return l1_topk(X, self.X_, self.k, num_threads=self.num_threads)
        return _sqeuclidean_topk(X, self.X_, self.k)

    def predict(self, X):
        """The majority label among the k nearest training rows (ties: smallest label).

        Parameters
        ----------
        X : array_like, shape (n_test, d)

        Returns
        -------
        ndarray, shape (n_test,)
            Labels, of the training labels' dtype.

        Raises
        ------
        KeyboardInterrupt
            On Ctrl-C during the L1 search, as :func:`pyconv.l1_topk`.
        """
        _, indices = self.kneighbors(X)
        return self.classes_[vote(indices, self.y_, len(self.classes_))]
