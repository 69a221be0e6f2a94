"""How many OpenMP threads pyconv's kernels use, and how to limit them.

Resolution order for a kernel call: its ``num_threads`` argument, then the
innermost :func:`num_threads` context, then :func:`set_num_threads`, then all
the threads OpenMP offers now (which honours ``OMP_NUM_THREADS`` and
``threadpoolctl.threadpool_limits``).
"""
import contextlib
import contextvars
import numbers

from . import _openmp

_global_num_threads = None
# OpenMP aborts or crashes when it cannot create the threads asked for (100,000
# segfaulted here), so larger requests are refused.
MAX_THREADS = 1024
_context_num_threads = contextvars.ContextVar("pyconv_num_threads", default=None)


def openmp_enabled():
    """Whether pyconv's kernels were compiled with OpenMP.

    Returns
    -------
    bool
        False means every kernel runs on one thread whatever is asked.
    """
    return _openmp.openmp_enabled()


def _check_request(n, name="num_threads"):
    if n is None:
        return None
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise TypeError(f"{name} must be an int or None, got {n!r} of type {type(n).__name__}")
    if n == 0:
        raise ValueError(
            f"{name}=0 is not a thread count: use None for all cores, a positive count, "
            f"or a negative one to count back from all cores (-1 = all, -2 = all but one)"
        )
    if n > max(MAX_THREADS, _openmp.num_procs()):
        raise ValueError(f"{name}={n} is more threads than pyconv allows "
                         f"({max(MAX_THREADS, _openmp.num_procs())}); this machine has "
                         f"{_openmp.num_procs()} processors")
    return int(n)


def resolve_num_threads(n=None):
    """Turn a ``num_threads`` request into the thread count a kernel will use.

    Parameters
    ----------
    n : int or None
        None defers to the context, the global setting, then all available
        threads; a negative value counts back from all available threads
        (-1 is all, -2 all but one); 0 is an error.

    Returns
    -------
    int
        At least 1; always 1 when pyconv was built without OpenMP.
    """
    n = _check_request(n)
    if n is None:
        n = _context_num_threads.get()
    if n is None:
        n = _global_num_threads
    if not _openmp.openmp_enabled():
        return 1
    available = _openmp.max_threads()
    if n is None:
        return available
    if n < 0:
        return max(1, available + 1 + n)
    return n


def get_num_threads():
    """Threads a kernel called now without ``num_threads`` would use.

    Returns
    -------
    int

    Examples
    --------
    >>> import pyconv
    >>> pyconv.get_num_threads() >= 1
    True
    """
    return resolve_num_threads(None)


def set_num_threads(n):
    """Set the default thread count of every kernel in this process.

    Parameters
    ----------
    n : int or None
        As for ``num_threads`` in any kernel; None restores "all available".

    Raises
    ------
    ValueError
        If ``n`` is 0.
    TypeError
        If ``n`` is not an int or None.
    """
    global _global_num_threads
    _global_num_threads = _check_request(n, "n")


@contextlib.contextmanager
def num_threads(n):
    """Limit the kernels called inside a ``with`` block to ``n`` threads.

    The limit is per thread of Python execution (a context variable), so
    concurrent threads may use different limits.

    Parameters
    ----------
    n : int or None
        As for ``num_threads`` in any kernel.

    Examples
    --------
    >>> import pyconv
    >>> with pyconv.num_threads(1):
    ...     pyconv.get_num_threads()
    1
    """
    token = _context_num_threads.set(_check_request(n, "n"))
    try:
        yield
    finally:
        _context_num_threads.reset(token)
