"""Sizes that overflow: refused before any allocation; indices past 2**31 elements work.

The 64-bit check reads a memory-mapped sparse file of (2**30 + 1) x 3 float32
(12 GiB of address space, 8 KiB on disk) with windows that touch a handful of
pages, so it costs milliseconds; results and max-pool indices past 2**31 must
be exact. To add a kernel: one entry in ``FAR_CALLS``.
"""
import os
import sys

import numpy as np
import pytest

import pyconv
from pyconv import reference as R

HEIGHT = 2**30 + 1  # rows of three: 3,221,225,475 elements
STEP = 2**30        # windows at rows 0 and 2**30


@pytest.fixture(scope="module")
def far_input(tmp_path_factory):
    """(1, 1, HEIGHT, 3) float32, zero except at a few positions, some past 2**31 elements."""
    if sys.maxsize < 2**32:
        pytest.skip("needs a 64-bit address space")
    path = tmp_path_factory.mktemp("far") / "x.dat"
    x = np.memmap(path, np.float32, "w+", shape=(1, 1, HEIGHT, 3))
    x[0, 0, 0, 1] = 7
    x[0, 0, STEP, 0] = -2      # element 3 * 2**30 = 3,221,225,472
    x[0, 0, STEP, 2] = 5       # element 3 * 2**30 + 2
    x.flush()
    del x
    if os.stat(path).st_blocks * 512 > 2**20:
        pytest.skip("the file system does not keep sparse files")
    return np.memmap(path, np.float32, "r", shape=(1, 1, HEIGHT, 3))


EXPECTED = np.array([[0, 7, 0], [-2, 0, 5]], np.float32)
FAR_CALLS = {
    "max_pool2d": lambda x: pyconv.max_pool2d(x, 1, stride=(STEP, 1)),
    "avg_pool2d": lambda x: pyconv.avg_pool2d(x, 1, stride=(STEP, 1)),
    **{f"conv2d({m})": lambda x, m=m: pyconv.conv2d(x, np.ones((1, 1, 1, 1), np.float32),
                                                    stride=(STEP, 1), method=m)
       for m in ("direct", "im2col")},
}


@pytest.mark.parametrize("kernel", FAR_CALLS)
def test_elements_past_2_31_are_read(far_input, kernel):
    np.testing.assert_array_equal(FAR_CALLS[kernel](far_input)[0, 0], EXPECTED)


def test_max_pool_indices_past_2_31(far_input):
    out, idx = pyconv.max_pool2d(far_input, 1, stride=(STEP, 1), return_indices=True)
    np.testing.assert_array_equal(idx[0, 0], [[0, 1, 2], [3 * STEP, 3 * STEP + 1, 3 * STEP + 2]])
    assert idx.dtype == np.int64 and idx.max() > 2**31


def test_too_large_workspace_fails_before_allocating(far_input):
    # strided windows take a plane's worth of scratch per thread: 64 x 12 GiB here
    with pytest.raises(MemoryError, match=r"the pooling workspace \(per thread\) of shape "
                                          r"\(64, 3221225475\) \(float32\) would need"):
        pyconv.max_pool2d(far_input, 1, stride=(1, 3), strict=False, num_threads=64)


def test_too_large_outputs_fail_before_allocating():
    # 10**6 x 10**6 float32 distances need 3.6 TiB: refused with the size, not attempted
    X = np.broadcast_to(np.ones(3, np.float32), (10**6, 3))
    with pytest.raises(MemoryError, match=r"the distances of shape \(1000000, 1000000\) "
                                          r"\(float32\) would need 3.73e\+03 GiB"):
        pyconv.l1_distances(X, X)
    with pytest.raises(MemoryError, match=r"the pooled output of shape .* would need"):
        pyconv.max_pool2d(np.broadcast_to(np.float32(1), (10**5, 10**5, 4, 4)), 1)
    with pytest.raises(MemoryError, match=r"copy of dout of shape \(100000, 100000, 1, 1\)"):
        pyconv.avg_pool2d_backward(np.broadcast_to(1.0, (10**5, 10**5, 1, 1)),
                                   (10**5, 10**5, 4, 4), 4)
    # a broadcast input whose contiguous copy could not fit
    with pytest.raises(MemoryError, match=r"a contiguous float64 copy of X of shape "
                                          r"\(1000000000000, 3\)"):
        pyconv.l1_topk(np.broadcast_to(np.ones(3), (10**12, 3)), np.ones((2, 3)), 1)


def test_kernel_ints_refused_before_overflow():
    # a size past 2**31 - 1 would wrap in the kernels' C ints: refused by name
    with pytest.raises(ValueError, match=r"^the padded input \(2147483653, 5\) is too large"):
        R.conv2d_naive(np.ones((1, 1, 3, 3)), np.ones((1, 1, 3, 3)), padding="same",
                       dilation=(2**30 + 1, 1))
