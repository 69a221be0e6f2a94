"""Numerical gradients by central differences, to test every backward pass."""
import numpy as np


def numerical_gradient(f, x, dout=None, *, eps=1e-6):
    """Central-difference gradient of ``sum(f(x) * dout)`` with respect to ``x``.

    Parameters
    ----------
    f : callable
        Takes an array shaped like ``x``; returns a scalar or an array.
    x : array_like
        The point; it is copied to float64 and not modified.
    dout : array_like, optional
        Weights of ``f``'s outputs (the upstream gradient); None means ones.
    eps : float, default 1e-6
        The step.

    Returns
    -------
    ndarray of float64, the shape of ``x``

    Examples
    --------
    >>> g = numerical_gradient(lambda v: np.sum(v ** 2), [1.0, -2.0])
    >>> np.allclose(g, [2.0, -4.0])
    True
    """
    x = np.array(x, dtype=np.float64)
    weights = 1.0 if dout is None else np.asarray(dout, dtype=np.float64)
    grad = np.empty_like(x)
    flat, gflat = x.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        up = np.sum(np.asarray(f(x), dtype=np.float64) * weights)
        flat[i] = old - eps
        down = np.sum(np.asarray(f(x), dtype=np.float64) * weights)
        flat[i] = old
        gflat[i] = (up - down) / (2 * eps)
    return grad


def relative_error(a, b):
    """``max|a - b| / max(max|a|, max|b|)``: 0 for equal arrays, about 1 for unrelated ones."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    scale = max(np.max(np.abs(a), initial=0.0), np.max(np.abs(b), initial=0.0))
    if scale == 0.0:
        return 0.0
    return float(np.max(np.abs(a - b)) / scale)


def gradcheck(f, inputs, grads, dout=None, *, eps=1e-6, rtol=1e-6):
    """Compare analytic gradients with central differences, input by input.

    Parameters
    ----------
    f : callable
        ``f(*inputs)`` returns a scalar or an array.
    inputs : sequence of array_like
        The point at which to check.
    grads : sequence of array_like or None
        The analytic gradient of ``sum(f(*inputs) * dout)`` with respect to
        each input; None skips that input.
    dout : array_like, optional
        Upstream gradient (weights of ``f``'s outputs); None means ones.
    eps : float, default 1e-6
        Finite-difference step (use float64 inputs).
    rtol : float, default 1e-6
        Largest accepted :func:`relative_error`.

    Returns
    -------
    tuple of float
        The relative error for each input (0.0 for skipped ones).

    Raises
    ------
    AssertionError
        If any error exceeds ``rtol``; the message lists them all.

    Examples
    --------
    >>> from pyconv import squared_norm, squared_norm_backward
    >>> W, x = np.array([[0.1, 0.5], [-0.3, 0.8]]), np.array([0.2, 0.4])
    >>> errors = gradcheck(squared_norm, [W, x], squared_norm_backward(W, x))
    >>> max(errors) < 1e-6
    True
    """
    inputs = [np.asarray(a, dtype=np.float64) for a in inputs]
    errors = []
    for i, analytic in enumerate(grads):
        if analytic is None:
            errors.append(0.0)
            continue

        def f_i(xi, i=i):
            return f(*inputs[:i], xi, *inputs[i + 1:])

        numeric = numerical_gradient(f_i, inputs[i], dout, eps=eps)
        if np.shape(analytic) != numeric.shape:
            raise AssertionError(f"gradient {i} has shape {np.shape(analytic)}, "
                                 f"expected {numeric.shape}")
        errors.append(relative_error(analytic, numeric))
    if max(errors, default=0.0) > rtol:
        report = ", ".join(f"input {i}: {e:.3g}" for i, e in enumerate(errors))
        raise AssertionError(f"gradient check failed (rtol={rtol:g}): {report}")
    return tuple(errors)
