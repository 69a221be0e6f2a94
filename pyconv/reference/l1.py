"""L1 (Manhattan) distance oracles: the handout's three versions, done right.

``D[i, j] = sum_k |X[i, k] - Y[j, k]|``. (The handout's "vectorized" snippet
sums the differences without taking their absolute value; these do not.)
"""
import numpy as np

from .._validation import check_rows


def _prepare(X, Y):
    X, Y, dtype = check_rows(X, Y)
    return X.astype(dtype, copy=False), Y.astype(dtype, copy=False)


def l1_two_loops(X, Y=None):
    """Pairwise L1 distances, one pair at a time.

    Parameters
    ----------
    X : ndarray, shape (n_x, d)
    Y : ndarray, shape (n_y, d), optional
        None means ``X``.

    Returns
    -------
    ndarray, shape (n_x, n_y)

    Examples
    --------
    >>> l1_two_loops([[0, 0], [1, 2]], [[1, 1]])
    array([[2.],
           [1.]])
    """
    X, Y = _prepare(X, Y)
    D = np.empty((X.shape[0], Y.shape[0]), dtype=X.dtype)
    for i in range(X.shape[0]):
        for j in range(Y.shape[0]):
            D[i, j] = np.sum(np.abs(X[i] - Y[j]))
    return D


def l1_one_loop(X, Y=None):
    """Pairwise L1 distances, one row of ``X`` against all of ``Y`` at a time.

    Same parameters and result as :func:`l1_two_loops`.
    """
    X, Y = _prepare(X, Y)
    D = np.empty((X.shape[0], Y.shape[0]), dtype=X.dtype)
    for i in range(X.shape[0]):
        D[i] = np.sum(np.abs(X[i] - Y), axis=1)
    return D


def l1_no_loops(X, Y=None, *, max_bytes=1 << 30):
    """Pairwise L1 distances by one broadcast: ``|X[:, None, :] - Y[None, :, :]|``.

    Parameters
    ----------
    X, Y
        As in :func:`l1_two_loops`.
    max_bytes : int, default 1 GiB
        Refuse a call whose (n_x, n_y, d) intermediate would exceed this.

    Returns
    -------
    ndarray, shape (n_x, n_y)

    Raises
    ------
    MemoryError
        If the broadcast intermediate would exceed ``max_bytes``.
    """
    X, Y = _prepare(X, Y)
    need = X.shape[0] * Y.shape[0] * X.shape[1] * X.dtype.itemsize
    if need > max_bytes:
        raise MemoryError(
            f"l1_no_loops would allocate a {X.shape[0]} x {Y.shape[0]} x {X.shape[1]} "
            f"intermediate of {need:,} bytes, more than max_bytes={max_bytes:,}; use "
            f"l1_one_loop or pyconv.l1_distances"
        )
    return np.sum(np.abs(X[:, None, :] - Y[None, :, :]), axis=2)
