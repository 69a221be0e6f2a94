"""10,000 calls of each kernel leave the process's memory flat (tracemalloc and RSS).

Tiny inputs keep it quick; a leak of even one small array (or C buffer) per
call would add a megabyte over the loop. Per-thread scratch is allocated
inside the parallel region whatever the thread count; one call in a hundred
runs on two threads (not more: on a busy machine a two-thread region waits
milliseconds for a core).

To add a kernel: one entry in ``CALLS``.
"""
import gc
import os
import sys
import tracemalloc

import numpy as np
import pytest

import pyconv

rng = np.random.default_rng(0)
X = rng.standard_normal((5, 3))
IMAGE = rng.standard_normal((1, 2, 6, 6)).astype(np.float32)
DOUT = np.ones((1, 2, 3, 3), np.float32)
INDICES = pyconv.max_pool2d(IMAGE, 2, return_indices=True)[1]
D = np.empty((5, 5))
W = rng.standard_normal((3, 2, 3, 3)).astype(np.float32)
B = np.ones(3, np.float32)
CONV_DOUT = np.ones((1, 3, 6, 6), np.float32)
KNN = pyconv.KNearestNeighbor(2).fit(X, [0, 1, 0, 1, 1])

CALLS = {
    "l1_distances": lambda t: pyconv.l1_distances(X, num_threads=t),
    "l1_distances(out)": lambda t: pyconv.l1_distances(X, X, out=D, num_threads=t),
    "l1_topk": lambda t: pyconv.l1_topk(X, X, 2, num_threads=t),
    "max_pool2d": lambda t: pyconv.max_pool2d(IMAGE, 2, return_indices=True, num_threads=t),
    "avg_pool2d": lambda t: pyconv.avg_pool2d(IMAGE, 3, stride=1, padding=1, num_threads=t),
    "max_pool2d_backward": lambda t: pyconv.max_pool2d_backward(DOUT, IMAGE, 2, num_threads=t),
    "max_pool2d_backward(indices)": lambda t: pyconv.max_pool2d_backward(
        DOUT, IMAGE, 2, indices=INDICES, num_threads=t),
    "avg_pool2d_backward": lambda t: pyconv.avg_pool2d_backward(DOUT, IMAGE.shape, 2,
                                                                num_threads=t),
    **{f"conv2d({m})": lambda t, m=m: pyconv.conv2d(IMAGE, W, B, padding=1, method=m,
                                                    num_threads=t) for m in ("direct", "im2col")},
    **{f"conv2d_backward({m})": lambda t, m=m: pyconv.conv2d_backward(
        CONV_DOUT, IMAGE, W, padding=1, method=m, num_threads=t) for m in ("direct", "im2col")},
    "KNearestNeighbor.predict": lambda t: KNN.predict(X),
    "malformed call": lambda t: _refused(t),
}


def _refused(t):
    try:
        pyconv.max_pool2d(IMAGE, 4, padding=3, num_threads=t)
    except ValueError:
        return


def _rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")
@pytest.mark.parametrize("kernel", CALLS)
def test_ten_thousand_calls_leave_memory_flat(kernel):
    call = CALLS[kernel]
    for i in range(100):  # warm up: thread pools, allocator arenas, caches
        call(1 + i % 2)
    # a full collection also empties CPython's free lists, which fill up to a bound
    gc.collect()
    rss_before = _rss()
    tracemalloc.start()
    try:
        traced_before = tracemalloc.get_traced_memory()[0]
        for i in range(10_000):
            call(2 if i % 100 == 0 else 1)
        gc.collect()
        traced_growth = tracemalloc.get_traced_memory()[0] - traced_before
    finally:
        tracemalloc.stop()
    rss_growth = _rss() - rss_before
    assert traced_growth < 64 * 1024, f"Python/NumPy memory grew by {traced_growth} bytes"
    assert rss_growth < 2 * 2**20, f"RSS grew by {rss_growth} bytes"
