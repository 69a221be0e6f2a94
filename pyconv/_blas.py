"""Run NumPy's BLAS on a chosen number of threads, between OpenMP regions.

The im2col path alternates OpenMP loops (im2col, col2im) with NumPy matrix
products; the two never run at once, and both use the thread count the
caller asked for. threadpoolctl changes the BLAS thread count of the running
process (OpenBLAS, MKL or BLIS alike), which NumPy offers no API for.
"""
import contextlib

from threadpoolctl import ThreadpoolController

_blas = None


def _blas_controller():
    global _blas
    if _blas is None:
        _blas = ThreadpoolController().select(user_api="blas")
    return _blas


@contextlib.contextmanager
def blas_threads(n):
    """Run the block with NumPy's BLAS on ``n`` threads (a no-op when it already uses ``n``)."""
    controller = _blas_controller()
    if all(lib.num_threads == n for lib in controller.lib_controllers):
        yield
        return
    with controller.limit(limits=n):
        yield
