"""What the machine itself does, measured in the same run: a matrix product and a copy.

A kernel's throughput over these is its share of the machine: a
convolution's GFLOP/s over NumPy's matmul GFLOP/s (``% GEMM``), a pooling's or
a depthwise convolution's bytes moved per second over ``np.copyto``'s
(``% copy``), both on the run's thread count.
"""
import contextlib
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .timing import time_in_turns, timed

MATMUL_SIZE = 2048
# column title of each baseline's share, in the order the columns are shown
TITLES = {"gemm": "% GEMM", "copy": "% copy"}


def matmul(dtype, budget, n=MATMUL_SIZE, clock=time.perf_counter):
    """NumPy's ``a @ b`` of two ``n``×``n`` matrices of ``dtype``, timed.

    NumPy's BLAS runs on as many threads as it may: call this inside
    :func:`pyconv.benchmarks.peers.limit_threads` to give it the run's count.

    Returns
    -------
    dict
        ``call``, ``n``, ``times`` and ``median`` (seconds), and ``throughput``
        in GFLOP/s (2·n³ flop a product).
    """
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((n, n)).astype(dtype) for _ in range(2))
    out = np.empty((n, n), dtype)

    def call():
        np.matmul(a, b, out=out)

    first, _ = timed(call, clock)
    times = time_in_turns([call], [first], budget, clock)[0]
    median = float(np.median(times))
    return dict(call=f"NumPy {n}×{n} a @ b, {np.dtype(dtype).name}", n=n, times=times,
                median=median, throughput=2 * n ** 3 / median / 1e9)


@contextlib.contextmanager
def copy_call(nbytes, threads):
    """Yield a call of ``np.copyto`` that moves ``nbytes``: reads half, writes half.

    A kernel that reads and writes ``nbytes`` in all is measured against it.
    On several threads the arrays are split into one contiguous part per
    thread, the first copied in the calling thread, the others in a thread
    pool's (NumPy releases the GIL while it copies), so that the copy uses
    the cores the kernel does.
    """
    half = max(1, nbytes // 2)
    src, dst = np.ones(half, np.uint8), np.empty(half, np.uint8)
    if threads == 1:
        yield lambda: np.copyto(dst, src)
        return
    bounds = np.linspace(0, half, threads + 1).astype(np.intp)
    parts = [(dst[lo:hi], src[lo:hi]) for lo, hi in zip(bounds[:-1], bounds[1:])]
    with ThreadPoolExecutor(threads - 1) as pool:
        def call():  # the first part in this thread, the others in the pool's
            futures = [pool.submit(np.copyto, d, s) for d, s in parts[1:]]
            np.copyto(*parts[0])
            for future in futures:
                future.result()
        yield call
