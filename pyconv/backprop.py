"""Back-propagation through a matrix-vector product: f(W, x) = ||Wx||^2.

With ``q = Wx``: ``df/dq = 2q``, ``grad_W f = 2 q x^T`` and
``grad_x f = 2 W^T q``.
"""
import numbers

import numpy as np

from ._validation import as_array, float_dtype


def _prepare(W, x):
    W = as_array(W, "W", ndim=2)
    x = as_array(x, "x", ndim=1)
    if W.shape[1] != x.shape[0]:
        raise ValueError(f"W has {W.shape[1]} columns but x has {x.shape[0]} entries: "
                         f"expected x.shape == ({W.shape[1]},)")
    dtype = float_dtype(W, x)
    return W.astype(dtype, copy=False), x.astype(dtype, copy=False)


def squared_norm(W, x):
    """Forward pass of ``f(W, x) = ||W x||^2``.

    Parameters
    ----------
    W : ndarray, shape (m, n)
    x : ndarray, shape (n,)

    Returns
    -------
    float

    Examples
    --------
    >>> W = [[0.1, 0.5], [-0.3, 0.8]]
    >>> round(squared_norm(W, [0.2, 0.4]), 6)
    0.116
    """
    W, x = _prepare(W, x)
    q = W @ x
    return float(q @ q)


def squared_norm_backward(W, x, dout=1.0):
    """Backward pass of :func:`squared_norm`.

    Parameters
    ----------
    W : ndarray, shape (m, n)
    x : ndarray, shape (n,)
    dout : float, default 1.0
        Gradient of the loss with respect to ``f``.

    Returns
    -------
    dW : ndarray, shape (m, n)
        ``2 * dout * q x^T`` with ``q = W x``.
    dx : ndarray, shape (n,)
        ``2 * dout * W^T q``.

    Examples
    --------
    >>> dW, dx = squared_norm_backward([[0.1, 0.5], [-0.3, 0.8]], [0.2, 0.4])
    >>> dW.round(3)
    array([[0.088, 0.176],
           [0.104, 0.208]])
    >>> dx.round(3)
    array([-0.112,  0.636])
    """
    if isinstance(dout, bool) or not isinstance(dout, numbers.Real):
        raise TypeError(f"dout must be a real number (the loss's gradient with respect to f), "
                        f"got {dout!r} of type {type(dout).__name__}")
    W, x = _prepare(W, x)
    dq = 2.0 * dout * (W @ x)
    return np.outer(dq, x), W.T @ dq
