"""Input checks shared by every public function.

Kernels run with bounds checks off, so everything they rely on is checked
here, once per public call, with messages that name the argument, what was
given and what was expected.
"""
import math
import numbers
import os

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
    try:
        arr = np.asarray(a)
    except (ValueError, TypeError) as exc:  # ragged nested lists, objects NumPy cannot read
        raise ValueError(f"{name} must be a rectangular array of numbers, got a "
                         f"{type(a).__name__} NumPy cannot convert: {exc}") from None
    kind = arr.dtype.kind
    if kind not in "iuf":
        raise TypeError(
            f"{name} must hold real numbers (float or integer), got dtype {arr.dtype}"
        )
    if kind == "f" and arr.dtype.itemsize > 8:
        raise TypeError(f"{name} has dtype {arr.dtype}, wider than the float64 pyconv computes "
                        f"in: pass {name}.astype(np.float64)")
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if arr.ndim not in allowed:
            expected = " or ".join(str(d) for d in allowed)
            raise ValueError(f"{name} must have {expected} dimensions, got shape {arr.shape}")
    return arr


def check_rows(X, Y):
    """Check X (n_x, d) and Y (n_y, d; None means X) for a pairwise distance.

    Returns
    -------
    X, Y : ndarray
        As given (no conversion).
    dtype : numpy.dtype
        The dtype the distances are computed in (:func:`float_dtype`).
    """
    X = as_array(X, "X", ndim=2)
    Y = X if Y is None else as_array(Y, "Y", ndim=2)
    if X.shape[1] != Y.shape[1]:
        raise ValueError(f"X and Y must have the same number of columns (features), got "
                         f"X {X.shape} and Y {Y.shape}")
    if X.shape[1] == 0:
        raise ValueError(f"X and Y must have at least one column (feature), got "
                         f"X {X.shape} and Y {Y.shape}")
    return X, Y, float_dtype(X, Y)


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


def as_kernel_input(arr, dtype, name="input"):
    """C-contiguous, native-order ``dtype`` view of ``arr``: a copy only when needed.

    A copy that could not fit in memory is refused before it is made.
    """
    if not (arr.flags.c_contiguous and arr.dtype == dtype):
        check_fits(arr.shape, dtype, f"a contiguous {np.dtype(dtype)} copy of {name}")
    return np.ascontiguousarray(arr, dtype=dtype)


SMALL_ALLOCATION = 1 << 28  # bytes: smaller arrays are allocated unchecked


def _memory_limit():
    """Bytes an allocation may take: available RAM plus free swap (physical RAM off Linux)."""
    try:
        with open("/proc/meminfo") as f:
            info = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in f}
        return info["MemAvailable"] + info.get("SwapFree", 0)
    except (OSError, KeyError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def check_fits(shape, dtype, what):
    """Refuse, before allocating, an array of ``shape`` and ``dtype`` that cannot fit in memory.

    NumPy's own refusal comes only past the machine's overcommit limit; below
    it the allocation succeeds and the process is killed when the kernel
    writes. Sizes are multiplied in Python integers, so nothing overflows.
    """
    nbytes = np.dtype(dtype).itemsize
    for s in shape:
        nbytes *= int(s)
    if nbytes <= SMALL_ALLOCATION:
        return  # not worth reading /proc/meminfo (hundreds of microseconds on a busy machine)
    limit = _memory_limit()
    if nbytes > np.iinfo(np.intp).max or (limit is not None and nbytes > limit):
        have = "the address space" if limit is None else f"the {limit / 2**30:.1f} GiB available"
        raise MemoryError(f"{what} of shape {tuple(shape)} ({np.dtype(dtype)}) would need "
                          f"{nbytes / 2**30:.3g} GiB, more than {have}: use smaller inputs "
                          f"or process them in batches")


def empty(shape, dtype, name="out", align=None):
    """``np.empty(shape, dtype)`` after :func:`check_fits` (``name`` says what it is for).

    With ``align``, the data starts on an ``align``-byte boundary (so a kernel
    may use aligned streaming stores).
    """
    check_fits(shape, dtype, name)
    if align is None:
        return np.empty(shape, dtype)
    dtype = np.dtype(dtype)
    nbytes = math.prod(shape) * dtype.itemsize  # (np.prod and .ctypes took 5 us of a call)
    raw = np.empty(nbytes + align, np.uint8)
    start = -raw.__array_interface__["data"][0] % align
    return raw[start:start + nbytes].view(dtype).reshape(shape)


def check_shape(arr, expected, name, what="shape"):
    """Refuse ``arr`` unless its shape is ``expected``."""
    expected = tuple(expected)
    if arr.shape != expected:
        raise ValueError(f"{name} must have {what} {expected}, got {arr.shape}")
    return arr


def check_out(out, shape, dtype, inputs=(), name="out"):
    """Check a caller's output array: right shape and dtype, C-contiguous, writeable, and
    sharing no memory with the ``inputs`` (a kernel would read what it already wrote)."""
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{name} must be a NumPy array, got {type(out).__name__}")
    shape, dtype = tuple(shape), np.dtype(dtype)
    if out.shape != shape or out.dtype != dtype or not out.flags.c_contiguous \
            or not out.flags.writeable:
        raise ValueError(
            f"{name} must be a writeable C-contiguous {dtype} array of shape {shape}, got "
            f"{out.dtype} {out.shape} (C-contiguous={out.flags.c_contiguous}, "
            f"writeable={out.flags.writeable})"
        )
    for arr in inputs:
        if np.may_share_memory(out, arr):
            raise ValueError(f"{name} must not share memory with the inputs: pass a separate "
                             f"array (or out=None)")
    return out


def check_bool(value, name):
    """Return ``value`` as a bool, refusing anything but True and False."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r} of type "
                        f"{type(value).__name__}")
    return bool(value)


def check_int(value, name, minimum=None):
    """Return ``value`` as an int, checking its type and lower bound."""
    if type(value) is not int and (isinstance(value, bool)
                                   or not isinstance(value, numbers.Integral)):
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


LAYOUTS = ("NCHW", "NHWC")


def check_layout(layout):
    """Return ``layout`` ("NCHW" or "NHWC"), refusing any other value."""
    if not isinstance(layout, str) or layout not in LAYOUTS:
        raise ValueError(f"layout must be 'NCHW' or 'NHWC', got {layout!r}")
    return layout


GRADIENTS = ("dx", "dw", "db")


def check_need(need):
    """The gradients a backward call is asked for (a name or a sequence of "dx", "dw",
    "db"), as a frozenset, refusing anything else."""
    if isinstance(need, str):
        need = (need,)
    try:
        need = tuple(need)
    except TypeError:
        raise TypeError(f"need must be a sequence of 'dx', 'dw', 'db', got {need!r}") from None
    for name in need:
        if name not in GRADIENTS:
            raise ValueError(f"need entries must be 'dx', 'dw' or 'db', got {name!r} in {need!r}")
    return frozenset(need)


def channel_axis(layout):
    """The channel axis of a 3- or 4-D array in ``layout``, counted from the end."""
    return -3 if layout == "NCHW" else -1


def to_nchw(a, layout):
    """A view of ``a`` (3- or 4-D, in ``layout``) with the channels at axis -3; a 2-D ``a``
    (one single-channel image) as it is. (A transpose with the axes spelt out: np.moveaxis
    took 4 us, a quarter of a small pooling call.) Any other number of axes is left for
    the caller to refuse."""
    if layout == "NCHW" or a.ndim not in (3, 4):
        return a
    return a.transpose((0, 3, 1, 2) if a.ndim == 4 else (2, 0, 1))


def from_nchw(a, layout):
    """The inverse of :func:`to_nchw`: a view of ``a`` (channels at axis -3) in ``layout``."""
    if layout == "NCHW" or a.ndim not in (3, 4):
        return a
    return a.transpose((0, 2, 3, 1) if a.ndim == 4 else (1, 2, 0))


def channel_mismatch(c, cg, groups, layout):
    """The error for x's ``c`` channels (read in ``layout``) against filters of ``cg`` input
    channels each in ``groups`` groups."""
    return ValueError(f"x has {c} channels in layout {layout!r} (axis {channel_axis(layout)}) "
                      f"but w expects {cg * groups} (C/groups={cg}, groups={groups}): for this x, "
                      f"w.shape[1] must be {c // groups}")
