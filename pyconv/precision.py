"""The float32 convolution precision setting, as ``torch.set_float32_matmul_precision``.

``"highest"`` (the default): ``method="auto"`` computes float32 convolutions only by
methods whose rounding is that of a sum of products (im2col, direct). ``"high"``: it may
also take Winograd's algorithm where that is faster, trading a bounded extra rounding
error for fewer multiplications (see :func:`pyconv.conv2d`). An explicit ``method=``
is never overridden, and float64 is not affected.
"""
import contextlib

PRECISIONS = ("highest", "high")
_precision = "highest"


def _check_precision(precision):
    if not isinstance(precision, str) or precision not in PRECISIONS:
        raise ValueError(f"precision must be 'highest' or 'high', got {precision!r}")
    return precision


def get_float32_conv_precision():
    """The float32 convolution precision ``method="auto"`` works to.

    Returns
    -------
    {"highest", "high"}

    Examples
    --------
    >>> import pyconv
    >>> pyconv.get_float32_conv_precision()
    'highest'
    """
    return _precision


def set_float32_conv_precision(precision):
    """Set the float32 convolution precision of ``method="auto"``, for the whole process.

    Parameters
    ----------
    precision : {"highest", "high"}
        ``"highest"`` (the default): ``auto`` picks im2col or direct, as it always has.
        ``"high"``: ``auto`` may pick Winograd's algorithm for float32 3x3 stride-1
        layers where it is faster; its error stays within the bound stated in
        :func:`pyconv.conv2d`'s Notes.

    Raises
    ------
    ValueError
        If ``precision`` is not one of the two names.

    Notes
    -----
    The setting is one value for the process, read when a call starts: every thread
    sees a change, as with ``torch.set_float32_matmul_precision``. Threads that need
    different settings at the same time should pass ``method=`` instead.
    """
    global _precision
    _precision = _check_precision(precision)


@contextlib.contextmanager
def float32_conv_precision(precision):
    """Set the float32 convolution precision inside a ``with`` block, then restore it.

    Parameters
    ----------
    precision : {"highest", "high"}

    Notes
    -----
    Like :func:`set_float32_conv_precision`, this changes the process-wide setting:
    other threads see it while the block runs.

    Examples
    --------
    >>> import pyconv
    >>> with pyconv.float32_conv_precision("high"):
    ...     pyconv.get_float32_conv_precision()
    'high'
    >>> pyconv.get_float32_conv_precision()
    'highest'
    """
    global _precision
    previous, _precision = _precision, _check_precision(precision)
    try:
        yield
    finally:
        _precision = previous
