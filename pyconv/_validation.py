"""Input checks shared by every public function.

Kernels run with bounds checks off, so everything they rely on is checked
here, once per public call, with messages that name the argument, what was
given and what was expected.
"""
import numbers

import numpy as np


def as_array(a, name, ndim=None):
    """Return ``a`` as an ndarray of a numeric, non-complex dtype.

    Parameters
    ----------
    a : array_like
    name : str
        The argument's name, for messages.
    ndim : int or tuple of int, optional
        The allowed numbers of dimensions.
    """
    if a is None:
        raise TypeError(f"{name} must be an array, got None")
    arr = np.asarray(a)
    kind = arr.dtype.kind
    if kind not in "iuf":
        raise TypeError(
            f"{name} must hold real numbers (float or integer), got dtype {arr.dtype}"
        )
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if arr.ndim not in allowed:
            expected = " or ".join(str(d) for d in allowed)
            raise ValueError(f"{name} must have {expected} dimensions, got shape {arr.shape}")
    return arr


def float_dtype(*arrays):
    """The dtype a kernel computes in: float32 stays float32, integers compute in float64.

    Mixed inputs promote as NumPy does (float32 with float64 gives float64);
    float16 computes in float32.
    """
    dtype = np.result_type(*[a.dtype for a in arrays])
    if dtype.kind in "iu":
        return np.dtype(np.float64)
    if dtype == np.float16:
        return np.dtype(np.float32)
    return np.dtype(dtype.type)  # native byte order


def as_kernel_input(arr, dtype):
    """C-contiguous, native-order ``dtype`` view of ``arr``: a copy only when needed."""
    return np.ascontiguousarray(arr, dtype=dtype)


def check_int(value, name, minimum=None):
    """Return ``value`` as an int, checking its type and lower bound."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {value!r} of type {type(value).__name__}")
    value = int(value)
    if minimum is not None and value < minimum:
        bound = "positive" if minimum == 1 else f">= {minimum}"
        raise ValueError(f"{name} must be {bound}, got {value}")
    return value


def pair(value, name, minimum=None):
    """Return an int or an (h, w) pair of ints as a checked (h, w) tuple."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name} must be an int or an (h, w) pair, got {value!r}")
        return tuple(check_int(v, name, minimum) for v in value)
    v = check_int(value, name, minimum)
    return (v, v)
