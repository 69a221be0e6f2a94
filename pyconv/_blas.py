"""Run NumPy's BLAS on a chosen number of threads, between OpenMP regions.

The im2col path alternates OpenMP loops (im2col, col2im) with NumPy matrix
products; the two never run at once, and both use the thread count the
caller asked for. threadpoolctl changes the BLAS thread count of the running
process (OpenBLAS, MKL or BLIS alike), which NumPy offers no API for.
"""
import contextlib
import threading

from threadpoolctl import ThreadpoolController

_blas = None


def _blas_controller():
    global _blas
    if _blas is None:
        _blas = ThreadpoolController().select(user_api="blas")
    return _blas


# BLAS thread counts are process-wide, so the blocks of concurrent Python threads
# share one saved state: the first block in saves it, the last one out restores it
# (a thread-local save let two overlapping blocks restore each other's limit and
# leave NumPy's BLAS on a conv's thread count for good). While blocks overlap,
# the BLAS runs on the latest caller's count.
_lock = threading.Lock()
_active = 0
_saved = None


@contextlib.contextmanager
def blas_threads(n):
    """Run the block with NumPy's BLAS on ``n`` threads, restoring the count afterwards."""
    global _active, _saved
    libs = _blas_controller().lib_controllers
    with _lock:
        if _active == 0:
            _saved = [lib.num_threads for lib in libs]
        _active += 1
        for lib in libs:
            if lib.num_threads != n:
                lib.set_num_threads(n)
    try:
        yield
    finally:
        with _lock:
            _active -= 1
            if _active == 0:
                for lib, count in zip(libs, _saved):
                    if lib.num_threads != count:
                        lib.set_num_threads(count)
