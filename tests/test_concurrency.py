"""Kernels under Python threads: the GIL is released, concurrent calls are correct, and
thread pools and threadpoolctl limits compose with pyconv's OpenMP.

To add a kernel: one entry in ``KERNELS``, a function of a size that returns a
zero-argument call whose work grows with the size.
"""
import concurrent.futures
import textwrap
import threading
import time

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

import pyconv

from _helpers import run_python


_BASE = np.random.default_rng(0).standard_normal((16, 4, 64, 64)).astype(np.float32)


def _data(shape):
    """Random-looking data of any shape, quickly (the base values repeated)."""
    return np.resize(_BASE, shape)


def _l1(n):
    X = _data((32 * n, 64))
    return lambda num_threads=1: pyconv.l1_distances(X, X[:256], num_threads=num_threads)


def _topk(n):
    X = _data((32 * n, 64))
    return lambda num_threads=1: pyconv.l1_topk(X, X[:256], 5, num_threads=num_threads)


def _images(n):
    return _data((n, 4, 64, 64))


def _max_pool(n):
    x = _images(n)
    return lambda num_threads=1: pyconv.max_pool2d(x, 3, stride=1, padding=1,
                                                   return_indices=True, num_threads=num_threads)


def _avg_pool(n):
    x = _images(n)
    return lambda num_threads=1: pyconv.avg_pool2d(x, 3, stride=1, padding=1,
                                                   num_threads=num_threads)


def _max_pool_backward(n):
    x = _images(n)
    return lambda num_threads=1: pyconv.max_pool2d_backward(np.ones_like(x), x, 3, stride=1,
                                                            padding=1, num_threads=num_threads)


def _avg_pool_backward(n):
    d = _images(n)
    return lambda num_threads=1: pyconv.avg_pool2d_backward(d, d.shape, 3, stride=1, padding=1,
                                                            num_threads=num_threads)


def _conv(method):
    def make(n):
        x = _data((n, 4, 32, 32))
        w = _data((8, 4, 3, 3))
        return lambda num_threads=1: pyconv.conv2d(x, w, padding=1, method=method,
                                                   num_threads=num_threads)
    return make


def _conv_backward(method):
    def make(n):
        x = _data((n, 4, 32, 32))
        w = _data((8, 4, 3, 3))
        d = _data((n, 8, 32, 32))
        return lambda num_threads=1: pyconv.conv2d_backward(d, x, w, padding=1, method=method,
                                                            num_threads=num_threads)
    return make


KERNELS = {
    "l1_distances": _l1, "l1_topk": _topk,
    "max_pool2d": _max_pool, "avg_pool2d": _avg_pool,
    "max_pool2d_backward": _max_pool_backward, "avg_pool2d_backward": _avg_pool_backward,
    "conv2d(direct)": _conv("direct"), "conv2d(im2col)": _conv("im2col"),
    "conv2d_backward(direct)": _conv_backward("direct"),
    "conv2d_backward(im2col)": _conv_backward("im2col"),
}


def _calibrated(make, seconds):
    """A call of ``make``'s kernel grown until it takes at least ``seconds`` on one thread."""
    n = 1
    while True:
        call = make(n)
        start = time.perf_counter()
        call()
        once = time.perf_counter() - start
        if once >= seconds or n >= 1024:
            return call
        n = min(1024, max(2 * n, int(1.5 * n * seconds / max(once, 1e-4))))


def _longest_stall(call):
    """Run ``call`` in a second thread while this one counts; return (duration, longest stall).

    The stall is the longest time this thread could not run while the other
    was busy: about the whole call if the call holds the GIL.
    """
    duration = []

    def work():
        start = time.perf_counter()
        call()
        duration.append(time.perf_counter() - start)

    worker = threading.Thread(target=work)
    last = time.perf_counter()
    longest = 0.0
    worker.start()
    while worker.is_alive():
        now = time.perf_counter()
        longest = max(longest, now - last)
        last = now
    worker.join()
    return duration[0], longest


def test_stall_measure_sees_a_call_that_holds_the_gil():
    numbers = np.random.default_rng(0).random(500_000).tolist()
    duration, stall = _longest_stall(lambda: sorted(numbers))  # list.sort keeps the GIL
    assert stall > 0.8 * duration


@pytest.mark.parametrize("kernel", KERNELS)
def test_kernel_releases_the_gil(kernel):
    call = _calibrated(KERNELS[kernel], 0.2)
    duration, stall = _longest_stall(call)
    assert stall < 0.5 * duration, (duration, stall)


def _same(a, b):
    for x, y in zip(a if isinstance(a, tuple) else (a,), b if isinstance(b, tuple) else (b,)):
        np.testing.assert_array_equal(x, y)


def test_eight_python_threads_calling_kernels_at_once():
    calls = [(name, size, KERNELS[name](size)) for name in KERNELS for size in (1, 2)]
    expected = [call(num_threads=1) for _, _, call in calls]
    barrier = threading.Barrier(8)

    def task(i):
        if i < 8:
            barrier.wait()  # the first eight start together
        name, size, call = calls[i % len(calls)]
        return i, call(num_threads=2)

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        for i, result in pool.map(task, range(4 * len(calls))):
            _same(result, expected[i % len(calls)])


def test_inside_a_thread_pool_with_per_thread_limits():
    call = KERNELS["max_pool2d"](2)
    expected = call(num_threads=1)

    def task(n):
        with pyconv.num_threads(n):  # a context variable: each thread its own limit
            assert pyconv.get_num_threads() == n
            return call(num_threads=None)

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        for result in pool.map(task, [1, 2, 3, 1, 2, 3]):
            _same(result, expected)


def _openmp_threads():
    return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "openmp"]


def test_under_threadpool_limits_one():
    calls = {name: make(1) for name, make in KERNELS.items()}
    expected = {name: call(num_threads=-1) for name, call in calls.items()}
    with threadpool_limits(1):
        assert pyconv.get_num_threads() == 1
        assert set(_openmp_threads()) == {1}
        for name, call in calls.items():
            _same(call(num_threads=None), expected[name])
        with concurrent.futures.ThreadPoolExecutor(2) as pool:  # and nested in a pool
            for name, result in zip(calls, pool.map(lambda c: c(num_threads=None),
                                                    calls.values())):
                _same(result, expected[name])
    assert pyconv.get_num_threads() == pyconv.resolve_num_threads(-1)


def _blas_threads():
    return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]


def test_im2col_backward_runs_single_threaded_blas_inside_its_threads():
    """No oversubscription: the im2col backward calls BLAS from each of its OpenMP threads,
    so every BLAS library is limited to one thread while it runs (the forward has its own
    GEMM and calls no BLAS).

    The BLAS thread counts are read with threadpoolctl at the kernels' entry (spying on
    ``_conv_im2col`` as pyconv.conv sees it), along with the OpenMP threads they get.
    """
    import pyconv.conv as conv_module
    seen = []
    real_kernels = conv_module._conv_im2col

    class SpyKernels:
        def __getattr__(self, name):
            kernel = getattr(real_kernels, name)

            def spy(*args):
                seen.append((name, _blas_threads(), args[-1]))
                return kernel(*args)
            return spy

    before = _blas_threads()
    x, w = _data((4, 16, 20, 20)), _data((8, 16, 3, 3))
    conv_module._conv_im2col = SpyKernels()
    try:
        for n in (1, 2):
            seen.clear()
            pyconv.conv2d_backward(_data((4, 8, 18, 18)), x, w, method="im2col", num_threads=n,
                                   need=("dx", "dw"))
            # (dx of this stride-1 layer is a forward convolution: no BLAS)
            assert [entry for entry in seen if entry[0] == "backward"] == [
                ("backward", [1] * len(before), n)]
    finally:
        conv_module._conv_im2col = real_kernels
    assert _blas_threads() == before  # restored afterwards


def test_blas_threads_restored_after_concurrent_convolutions():
    before = _blas_threads()
    x, w = _data((2, 16, 20, 20)), _data((8, 16, 3, 3))
    expected = pyconv.conv2d(x, w, method="im2col", num_threads=1)

    def task(i):
        return pyconv.conv2d(x, w, method="im2col", num_threads=1 + i % 3)

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        for result in pool.map(task, range(48)):
            np.testing.assert_array_equal(result, expected)
    assert _blas_threads() == before


def test_im2col_backward_limits_a_blas_loaded_after_its_first_call(tmp_path):
    """A module imported later may bring its own BLAS (faiss ships an OpenBLAS): the
    backward must hold that one to one thread too, not only the BLAS it saw first."""
    pytest.importorskip("faiss")
    script = textwrap.dedent("""
        import numpy as np, pyconv, pyconv._blas as blas
        x = np.ones((2, 4, 8, 8), np.float32)
        w = np.ones((4, 4, 3, 3), np.float32)
        dout = np.ones((2, 4, 6, 6), np.float32)
        pyconv.conv2d_backward(dout, x, w, method="im2col", need=("dw",))
        before = len(blas._blas_controller().lib_controllers)
        import faiss  # noqa: F401  (loads its own BLAS)
        with blas.blas_threads(1):
            libs = blas._blas_controller().lib_controllers
            assert len(libs) > before, (before, len(libs))
            assert all(lib.num_threads == 1 for lib in libs), [lib.info() for lib in libs]
    """)
    run_python(script, tmp_path)
