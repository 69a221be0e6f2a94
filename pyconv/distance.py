"""Pairwise L1 (Manhattan) distances."""
import numpy as np

from . import _distance
from ._validation import as_array, as_kernel_input, float_dtype
from .threads import resolve_num_threads


def _check_out(out, shape, dtype):
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a NumPy array, got {type(out).__name__}")
    if out.shape != shape or out.dtype != dtype or not out.flags.c_contiguous \
            or not out.flags.writeable:
        raise ValueError(
            f"out must be a writeable C-contiguous {dtype} array of shape {shape}, got "
            f"{out.dtype} {out.shape} (C-contiguous={out.flags.c_contiguous}, "
            f"writeable={out.flags.writeable})"
        )
    return out


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

    Examples
    --------
    >>> import pyconv
    >>> pyconv.l1_distances([[0, 0], [1, 2]], [[1, 1]])
    array([[2.],
           [1.]])
    """
    X = as_array(X, "X", ndim=2)
    Y = X if Y is None else as_array(Y, "Y", ndim=2)
    if X.shape[1] != Y.shape[1]:
        raise ValueError(f"X and Y must have the same number of columns (features), got "
                         f"X {X.shape} and Y {Y.shape}")
    dtype = float_dtype(X, Y)
    shape = (X.shape[0], Y.shape[0])
    D = np.empty(shape, dtype) if out is None else _check_out(out, shape, dtype)
    Xc = as_kernel_input(X, dtype)
    Yc = Xc if Y is X else as_kernel_input(Y, dtype)
    _distance.l1_distances(Xc, Yc, D, resolve_num_threads(num_threads))
    return D
