"""Numerical gradients by central differences, to test every backward pass."""
import numbers

import numpy as np

from ._validation import as_array


def _check_callable(f):
    if not callable(f):
        raise TypeError(f"f must be a callable, got {f!r} of type {type(f).__name__}")


def _check_positive(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value > 0:
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    return float(value)


def _check_sequence(value, name):
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        raise TypeError(f"{name} must be a list or tuple, got {type(value).__name__}")
    return value


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
    _check_callable(f)
    eps = _check_positive(eps, "eps")
    # C order: a copy of a transposed view keeps its strides, and reshape(-1) would then
    # perturb a copy of x instead of x itself
    x = np.array(as_array(x, "x"), dtype=np.float64, order="C")
    weights = 1.0 if dout is None else as_array(dout, "dout").astype(np.float64)
    if dout is not None:
        shape = np.shape(f(x))
        try:
            fits = np.broadcast_shapes(weights.shape, shape) == shape
        except ValueError:
            fits = False
        if not fits:
            raise ValueError(f"dout must have the shape of f's output {shape} (or broadcast "
                             f"to it), got {weights.shape}")
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
    a = as_array(a, "a").astype(np.float64)
    b = as_array(b, "b").astype(np.float64)
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape, got a {a.shape} and b {b.shape}")
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
    _check_callable(f)
    _check_positive(rtol, "rtol")
    inputs = [as_array(a, f"inputs[{i}]").astype(np.float64)
              for i, a in enumerate(_check_sequence(inputs, "inputs"))]
    if len(_check_sequence(grads, "grads")) != len(inputs):
        raise ValueError(f"grads must hold one gradient (or None) per input: got {len(grads)} "
                         f"for {len(inputs)} inputs")
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
