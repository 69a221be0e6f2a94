"""Run a block with every BLAS library of the process on a chosen number of threads.

The im2col backward calls SciPy's BLAS (``cython_blas``) from inside its
OpenMP threads, so while it runs each BLAS must stay on one thread, or the two
thread pools would oversubscribe the cores. threadpoolctl changes the BLAS
thread count of the running process (OpenBLAS, MKL or BLIS alike, NumPy's and
SciPy's copies both), which neither library offers an API for.
"""
import contextlib
import sys
import threading

from threadpoolctl import ThreadpoolController

_blas = None
_blas_scanned_at = -1


def _blas_controller():
    """The process's BLAS libraries, scanned again whenever a module was imported since.

    A scan walks every loaded shared library (milliseconds), too slow for each
    call; but a module imported later may bring a BLAS of its own (faiss ships
    its own OpenBLAS), which must be held to one thread too.
    """
    global _blas, _blas_scanned_at
    if _blas is None or _blas_scanned_at != len(sys.modules):
        _blas_scanned_at = len(sys.modules)
        _blas = ThreadpoolController().select(user_api="blas")
    return _blas


# BLAS thread counts are process-wide, so the blocks of concurrent Python threads
# share one saved state: the first block in saves it, the last one out restores it
# (a thread-local save let two overlapping blocks restore each other's limit and
# leave the BLAS on a conv's thread count for good). While blocks overlap,
# the BLAS runs on the latest caller's count.
_lock = threading.Lock()
_active = 0
_saved = None


@contextlib.contextmanager
def blas_threads(n):
    """Run the block with every BLAS on ``n`` threads, restoring the counts afterwards."""
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
