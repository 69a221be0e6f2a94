"""Pairwise L1 (Manhattan) distances."""
import numpy as np

from . import _distance
from ._validation import as_kernel_input, check_out, check_rows, empty
from .threads import resolve_num_threads


def l1_distances(X, Y=None, *, out=None, num_threads=None):
    """Pairwise L1 (Manhattan) distances between the rows of X and Y.

    Parameters
    ----------
    X : array_like, shape (n_x, d)
    Y : array_like, shape (n_y, d), optional
        None means ``X`` against itself.
    out : ndarray, shape (n_x, n_y), optional
        C-contiguous, writeable, of the result dtype; filled in place and returned.
    num_threads : int, optional
        OpenMP threads; see :func:`pyconv.resolve_num_threads`.

    Returns
    -------
    ndarray, shape (n_x, n_y)
        ``D[i, j] = sum_k |X[i, k] - Y[j, k]|``. float32 inputs give float32,
        float64 gives float64, integers compute in float64.

    Raises
    ------
    ValueError
        If X or Y is not 2-D, their widths differ, or ``out`` does not fit.
    TypeError
        If an input is not real-valued.
    KeyboardInterrupt
        On Ctrl-C during the call (README: "Interrupting a call").

    Notes
    -----
    Each distance is summed in feature order, exactly as the loop
    ``acc = acc + abs(X[i, k] - Y[j, k])`` for k = 0, 1, ..., d - 1: the SIMD
    lanes hold different pairs, never different features of one pair. So the
    result is bitwise the same whatever the thread count and whichever
    instruction set (AVX-512, AVX2 or portable, picked at run time) runs,
    without ``-ffast-math``. A row holding NaN gives NaN distances; one holding
    ``inf`` gives ``inf``, or NaN against a row with ``inf`` in the same column.

    The result is written past the cache (streaming stores), at any alignment
    of ``out``: at small d, writing it is much of the work. A fresh result's
    pages are zeroed by the operating system on first touch, which costs about
    as much again at d = 32; passing ``out`` avoids that on repeated calls.

    ``Y=None`` (or ``Y`` the very array ``X``) with at least 64 columns computes
    only the blocks on and above the diagonal and copies the rest from the
    transposed side, nearly halving the work: ``|x - y|`` and ``|y - x|`` are the
    same bits and both sums run in feature order, so the result is bitwise the
    one ``l1_distances(X, X.copy())`` gives. Below 64 columns the copy costs
    more than it saves, and everything is computed.

    Examples
    --------
    >>> import pyconv
    >>> pyconv.l1_distances([[0, 0], [1, 2]], [[1, 1]])
    array([[2.],
           [1.]])
    """
    X, Y, dtype = check_rows(X, Y)
    shape = (X.shape[0], Y.shape[0])
    Xc = as_kernel_input(X, dtype, "X")
    Yc = Xc if Y is X else as_kernel_input(Y, dtype, "Y")
    D = empty(shape, dtype, "the distances", align=64) if out is None else check_out(
        out, shape, dtype, (Xc, Yc))
    _distance.l1_distances(Xc, Yc, D, Yc is Xc, resolve_num_threads(num_threads))
    return D


def _check_k(k, n_y):
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise TypeError(f"k must be an int, got {k!r} of type {type(k).__name__}")
    if not 1 <= k <= n_y:
        raise ValueError(f"k must be between 1 and the number of rows of Y ({n_y}), got {k}")
    return int(k)


def l1_topk(X, Y, k, *, num_threads=None):
    """The k nearest rows of Y, in L1 distance, for every row of X.

    Parameters
    ----------
    X : array_like, shape (n_x, d)
    Y : array_like, shape (n_y, d)
        None means ``X`` against itself (each row is then its own nearest).
    k : int
        Neighbours per row, ``1 <= k <= n_y``.
    num_threads : int, optional
        OpenMP threads; see :func:`pyconv.resolve_num_threads`.

    Returns
    -------
    distances : ndarray, shape (n_x, k)
        Ascending along each row; dtype as for :func:`l1_distances`.
    indices : ndarray of intp, shape (n_x, k)
        Rows of ``Y``: ``distances[i, r] == l1_distances(X, Y)[i, indices[i, r]]``.

    Raises
    ------
    ValueError
        If X or Y is not 2-D, their widths differ, or k is out of range.
    TypeError
        If an input is not real-valued or k is not an int.
    KeyboardInterrupt
        On Ctrl-C during the call (README: "Interrupting a call").

    Notes
    -----
    Row i's result is exactly ``np.argsort(l1_distances(X, Y)[i], kind="stable")[:k]``:
    ties go to the smaller index, and NaN distances (a row holding NaN, or
    ``inf - inf``) sort after every number, ``inf`` included. The distances are
    bitwise those of :func:`l1_distances`. Memory is O(n_x * k) plus a fixed
    working block: the n_x x n_y matrix is never built.

    Each row keeps its k best so far, sorted. A block of distances (one row of X
    against up to 2048 rows of Y) is filtered with SIMD compares against the
    k-th kept (or, while fewer than k are kept, against the k-th smallest of the
    block's per-lane minima, an upper bound of the block's k-th); the few
    survivors, ties at the threshold included, are sorted and merged in. With
    enough rows of X and d < 512 the threads share blocks of X rows; with few
    rows, or d >= 512 (where the distances dominate, and top-k then runs in the
    blocks of :func:`l1_distances`), they share chunks of Y and merge their
    lists. Either way the result is the k first of all pairs in one total
    order, so it does not depend on the thread count.

    Examples
    --------
    >>> import pyconv
    >>> d, i = pyconv.l1_topk([[0, 0]], [[3, 0], [1, 0], [0, 1], [5, 5]], k=3)
    >>> d
    array([[1., 1., 3.]])
    >>> i
    array([[1, 2, 0]])
    """
    X, Y, dtype = check_rows(X, Y)
    n_x, n_y = X.shape[0], Y.shape[0]
    k = _check_k(k, n_y)
    Xc = as_kernel_input(X, dtype, "X")
    Yc = Xc if Y is X else as_kernel_input(Y, dtype, "Y")
    distances = empty((n_x, k), dtype, "the distances")
    indices = empty((n_x, k), np.intp, "the indices")
    _distance.l1_topk(Xc, Yc, distances, indices, resolve_num_threads(num_threads))
    return distances, indices
