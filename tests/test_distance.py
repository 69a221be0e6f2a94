import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pyconv
from pyconv import cpu
from pyconv.reference import l1_no_loops, l1_one_loop, l1_two_loops

from _helpers import DTYPES, assert_close


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_x, n_y, d", [(1, 1, 1), (3, 5, 7), (17, 4, 33), (2, 9, 3072)])
def test_l1_matches_oracles(dtype, n_x, n_y, d):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n_x, d)).astype(dtype)
    Y = rng.standard_normal((n_y, d)).astype(dtype)
    D = pyconv.l1_distances(X, Y)
    assert D.dtype == dtype
    assert_close(D, l1_two_loops(X.astype(np.float64), Y.astype(np.float64)), dtype)
    assert_close(D, l1_one_loop(X, Y), dtype)


@settings(max_examples=40, deadline=None)
@given(n_x=st.integers(1, 12), n_y=st.integers(1, 12), d=st.integers(1, 40),
       seed=st.integers(0, 2**32 - 1), dtype=st.sampled_from(DTYPES))
def test_l1_hypothesis(n_x, n_y, d, seed, dtype):
    rng = np.random.default_rng(seed)
    X = rng.integers(-5, 6, (n_x, d)).astype(dtype)
    Y = rng.integers(-5, 6, (n_y, d)).astype(dtype)
    assert_close(pyconv.l1_distances(X, Y), l1_no_loops(X, Y), dtype)


def test_l1_against_itself_and_integers():
    X = np.arange(12).reshape(4, 3)
    D = pyconv.l1_distances(X)
    assert D.dtype == np.float64
    np.testing.assert_array_equal(D, l1_two_loops(X))
    assert np.all(np.diag(D) == 0)


def test_l1_out_is_filled_in_place():
    X = np.ones((3, 2), np.float32)
    out = np.empty((3, 3), np.float32)
    assert pyconv.l1_distances(X, out=out) is out
    with pytest.raises(ValueError, match="out must be a writeable C-contiguous float32"):
        pyconv.l1_distances(X, out=np.empty((3, 3)))


def test_l1_results_do_not_depend_on_thread_count():
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((50, 37)), rng.standard_normal((40, 37))
    one = pyconv.l1_distances(X, Y, num_threads=1)
    np.testing.assert_array_equal(one, pyconv.l1_distances(X, Y, num_threads=-1))
    np.testing.assert_array_equal(one, pyconv.l1_distances(X, Y, num_threads=3))


@pytest.mark.parametrize("X, Y, error, message", [
    (np.ones(3), None, ValueError, r"X must have 2 dimensions, got shape \(3,\)"),
    (np.ones((2, 3)), np.ones((2, 4)), ValueError, "same number of columns"),
    (np.ones((2, 3), complex), None, TypeError, "X must hold real numbers"),
    (None, None, TypeError, "X must be an array"),
])
def test_l1_bad_input(X, Y, error, message):
    with pytest.raises(error, match=message):
        pyconv.l1_distances(X, Y)


def topk_oracle(X, Y, k):
    """The k smallest of each row of the full oracle matrix, ties to the smaller index."""
    D = l1_two_loops(X, Y)
    order = np.argsort(D, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(D, order, 1), order


@settings(max_examples=40, deadline=None)
@given(n_x=st.integers(1, 20), n_y=st.integers(1, 40), d=st.integers(1, 40),
       data=st.data(), seed=st.integers(0, 2**32 - 1), dtype=st.sampled_from(DTYPES))
def test_topk_matches_stable_argsort_with_ties(n_x, n_y, d, data, seed, dtype):
    rng = np.random.default_rng(seed)
    k = data.draw(st.integers(1, n_y))
    X = rng.integers(-2, 3, (n_x, d)).astype(dtype)  # small integers: many exact ties
    Y = rng.integers(-2, 3, (n_y, d)).astype(dtype)
    Y[rng.integers(0, n_y, n_y // 3)] = Y[0]  # duplicate rows
    dist, idx = pyconv.l1_topk(X, Y, k)
    want_d, want_i = topk_oracle(X, Y, k)
    assert dist.dtype == dtype and idx.dtype == np.intp
    np.testing.assert_array_equal(idx, want_i)
    np.testing.assert_array_equal(dist, want_d)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_x, n_y, d, k", [(1, 1, 1, 1), (7, 300, 19, 10), (300, 5000, 3, 5),
                                           (200, 4100, 17, 4100)])  # k = n_y: heaps in several super-blocks
def test_topk_matches_own_matrix(dtype, n_x, n_y, d, k):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((n_x, d)).astype(dtype)
    Y = rng.standard_normal((n_y, d)).astype(dtype)
    D = pyconv.l1_distances(X, Y)
    dist, idx = pyconv.l1_topk(X, Y, k)
    want = np.argsort(D, axis=1, kind="stable")[:, :k]
    np.testing.assert_array_equal(idx, want)
    np.testing.assert_array_equal(dist, np.take_along_axis(D, want, 1))


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # the oracle's inf - inf
def test_topk_nan_and_inf_sort_last():
    X = np.array([[0.0, 0.0], [np.inf, 0.0], [np.nan, 1.0]])
    Y = np.array([[np.nan, 0.0], [np.inf, 0.0], [1.0, 1.0], [0.0, 0.0], [2.0, 2.0]])
    dist, idx = pyconv.l1_topk(X, Y, 5)
    want_d, want_i = topk_oracle(X, Y, 5)
    np.testing.assert_array_equal(idx, want_i)
    np.testing.assert_array_equal(dist, want_d)
    np.testing.assert_array_equal(idx[0], [3, 2, 4, 1, 0])  # finite, then inf, then NaN
    np.testing.assert_array_equal(idx[1], [2, 3, 4, 0, 1])  # inf, then NaN (inf - inf)
    np.testing.assert_array_equal(idx[2], [0, 1, 2, 3, 4])  # all NaN: index order


def test_topk_against_itself():
    X = np.arange(10).reshape(5, 2)
    dist, idx = pyconv.l1_topk(X, None, 2)
    np.testing.assert_array_equal(idx, [[0, 1], [1, 0], [2, 1], [3, 2], [4, 3]])
    np.testing.assert_array_equal(dist[:, 0], 0)


def test_topk_does_not_depend_on_thread_count():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((70, 37)).astype(np.float32)
    Y = rng.standard_normal((900, 37)).astype(np.float32)
    one = pyconv.l1_topk(X, Y, 7, num_threads=1)
    for n in (2, 3, -1):
        other = pyconv.l1_topk(X, Y, 7, num_threads=n)
        np.testing.assert_array_equal(one[0], other[0])
        np.testing.assert_array_equal(one[1], other[1])


@pytest.mark.parametrize("k, error, message", [
    (0, ValueError, r"k must be between 1 and the number of rows of Y \(3\), got 0"),
    (-1, ValueError, "got -1"),
    (4, ValueError, r"k must be between 1 and the number of rows of Y \(3\), got 4"),
    (1.5, TypeError, "k must be an int"),
    (True, TypeError, "k must be an int"),
])
def test_topk_bad_k(k, error, message):
    with pytest.raises(error, match=message):
        pyconv.l1_topk(np.ones((2, 2)), np.ones((3, 2)), k)


def test_topk_bad_input():
    with pytest.raises(ValueError, match="same number of columns"):
        pyconv.l1_topk(np.ones((2, 3)), np.ones((2, 4)), 1)
    with pytest.raises(TypeError, match="Y must hold real numbers"):
        pyconv.l1_topk(np.ones((2, 3)), np.ones((2, 3), complex), 1)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_x, n_y, d", [(1, 1, 1), (9, 33, 17), (17, 70, 300), (130, 50, 7)])
def test_every_level_gives_the_same_bits(cpu_level, dtype, n_x, n_y, d):
    rng = np.random.default_rng(2)
    X = rng.standard_normal((n_x, d)).astype(dtype)
    Y = rng.standard_normal((n_y, d)).astype(dtype)
    # a plain loop summing k in order: what every CPU level must reproduce
    want = np.zeros((n_x, n_y), dtype)
    for k in range(d):
        want = want + np.abs(X[:, None, k] - Y[None, :, k])
    k = min(5, n_y)
    np.testing.assert_array_equal(pyconv.l1_distances(X, Y), want)
    dist, idx = pyconv.l1_topk(X, Y, k)
    np.testing.assert_array_equal(idx, np.argsort(want, axis=1, kind="stable")[:, :k])


@settings(max_examples=40, deadline=None)
@given(n_x=st.integers(1, 20), n_y=st.integers(1, 70), d=st.integers(1, 70),
       seed=st.integers(0, 2**32 - 1), dtype=st.sampled_from(DTYPES),
       special=st.sampled_from([np.nan, np.inf, -np.inf]))
@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")
def test_l1_nan_inf_rows_match_oracle(n_x, n_y, d, seed, dtype, special):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_x, d)).astype(dtype)
    Y = rng.standard_normal((n_y, d)).astype(dtype)
    X[rng.integers(0, n_x), rng.integers(0, d)] = special
    Y[rng.integers(0, n_y), rng.integers(0, d)] = special
    D = pyconv.l1_distances(X, Y)
    want = l1_two_loops(X.astype(np.float64), Y.astype(np.float64))
    np.testing.assert_array_equal(np.isnan(D), np.isnan(want))
    np.testing.assert_array_equal(np.isinf(D), np.isinf(want))
    finite = np.isfinite(want)
    assert_close(D[finite], want[finite], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_float32_against_float64_oracle_large_d(dtype):
    rng = np.random.default_rng(4)
    X = rng.standard_normal((5, 3072)).astype(dtype)
    Y = rng.standard_normal((40, 3072)).astype(dtype)
    D = pyconv.l1_distances(X, Y)
    assert D.dtype == dtype
    assert_close(D, l1_two_loops(X.astype(np.float64), Y.astype(np.float64)), dtype)


def test_l1_and_topk_bitwise_across_threads_many_chunks():
    rng = np.random.default_rng(5)
    X = rng.standard_normal((300, 45)).astype(np.float32)
    Y = rng.standard_normal((3000, 45)).astype(np.float32)
    Y[::7] = Y[3]  # ties across chunks
    one = pyconv.l1_distances(X, Y, num_threads=1)
    top = pyconv.l1_topk(X, Y, 9, num_threads=1)
    for n in (2, 3, 5):
        np.testing.assert_array_equal(pyconv.l1_distances(X, Y, num_threads=n), one)
        other = pyconv.l1_topk(X, Y, 9, num_threads=n)
        np.testing.assert_array_equal(other[0], top[0])
        np.testing.assert_array_equal(other[1], top[1])
    np.testing.assert_array_equal(top[1], np.argsort(one, axis=1, kind="stable")[:, :9])


def test_any_layout_and_unaligned_out():
    rng = np.random.default_rng(6)
    X = rng.standard_normal((40, 33))
    Y = rng.standard_normal((70, 33))
    want = pyconv.l1_distances(X, Y)
    Xs = X.astype(">f8")  # byte-swapped
    Yf = np.asfortranarray(Y)
    Yf.flags.writeable = False
    np.testing.assert_array_equal(pyconv.l1_distances(Xs, Yf), want)
    np.testing.assert_array_equal(pyconv.l1_distances(np.repeat(X, 2, 0)[::2], Y), want)
    raw = np.empty(40 * 70 + 1)
    out = raw[1:].reshape(40, 70)  # 8 bytes off a 64-byte boundary: no streaming stores
    pyconv.l1_distances(X, Y, out=out)
    np.testing.assert_array_equal(out, want)


def test_empty_inputs_and_zero_width():
    assert pyconv.l1_distances(np.ones((0, 4)), np.ones((2, 4))).shape == (0, 2)
    assert pyconv.l1_distances(np.ones((3, 4)), np.ones((0, 4))).shape == (3, 0)
    assert pyconv.l1_topk(np.ones((0, 4)), np.ones((2, 4)), 1)[1].shape == (0, 1)
    with pytest.raises(ValueError, match="at least one column"):
        pyconv.l1_topk(np.ones((2, 0)), np.ones((4, 0)), 3)

def own_topk(X, Y, k):
    """Stable argsort of pyconv's own matrix: l1_topk's distances are bitwise those."""
    D = pyconv.l1_distances(X, Y, num_threads=1)
    order = np.argsort(D, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(D, order, 1), order


def assert_topk(X, Y, k, num_threads):
    dist, idx = pyconv.l1_topk(X, Y, k, num_threads=num_threads)
    want_d, want_i = own_topk(X, Y, k)
    np.testing.assert_array_equal(idx, want_i)
    np.testing.assert_array_equal(dist, want_d)


# n_x = 5 shares the work over chunks of Y (private lists, merged) when there are several
# threads; n_x = 300 over blocks of X rows. 4100 rows of Y: several chunks (2048 rows at most).
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_x", [5, 300])
@pytest.mark.parametrize("num_threads", [1, 2, 3])
@pytest.mark.parametrize("k", [1, 10, 70])  # 70: above the lane-minima bound (k <= 4 lanes)
def test_topk_ties_at_the_threshold_across_chunks(dtype, n_x, num_threads, k):
    rng = np.random.default_rng(7)
    X = rng.integers(0, 2, (n_x, 3)).astype(dtype)
    Y = rng.integers(0, 3, (4100, 3)).astype(dtype)  # distances 0..6: huge tie groups
    assert_topk(X, Y, k, num_threads)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_x", [5, 300])
@pytest.mark.parametrize("num_threads", [1, 2])
def test_topk_exact_ties_at_kth_keep_smallest_indices(dtype, n_x, num_threads):
    # every row of Y at distance 1 or 2 from every row of X: the k-th is inside a tie group
    # of 1000 that spans chunks; the smallest indices of the group must win
    X = np.zeros((n_x, 2), dtype)
    Y = np.zeros((3000, 2), dtype)
    Y[:, 0] = 2
    Y[1000:2000, 0] = 1
    Y[[2500, 2999], 0] = 1
    dist, idx = pyconv.l1_topk(X, Y, 5, num_threads=num_threads)
    np.testing.assert_array_equal(idx, np.tile(np.arange(1000, 1005), (n_x, 1)))
    np.testing.assert_array_equal(dist, 1)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_x", [5, 300])
@pytest.mark.parametrize("num_threads", [1, 2])
@pytest.mark.parametrize("k", [1, 7, 2500])
@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")
def test_topk_nan_and_inf_across_chunks(dtype, n_x, num_threads, k):
    rng = np.random.default_rng(8)
    X = rng.standard_normal((n_x, 4)).astype(dtype)
    Y = rng.standard_normal((2500, 4)).astype(dtype)
    Y[rng.integers(0, 2500, 600), 1] = np.nan  # NaN distances, many
    Y[rng.integers(0, 2500, 600), 2] = np.inf
    X[0] = np.nan  # all NaN: index order
    X[1, 2] = np.inf  # inf - inf: NaN against the inf rows, inf against the others
    assert_topk(X, Y, k, num_threads)
    dist, idx = pyconv.l1_topk(X, Y, k, num_threads=num_threads)
    want_d, want_i = topk_oracle(X[:2].astype(np.float64), Y.astype(np.float64), k)
    np.testing.assert_array_equal(idx[:2], want_i)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_x, n_y, d, k", [
    (1, 1, 1, 1), (129, 33, 5, 33), (130, 2049, 2, 1), (127, 2047, 31, 16), (64, 300, 64, 17),
    (250, 4200, 500, 4),  # several shared super-chunks of Y (8 MiB)
    (250, 1500, 3072, 4),  # d >= 512: threads share chunks of Y, as l1_distances does
    (300, 2600, 512, 2500),  # and several super-blocks of X rows (4 MiB of k-best lists)
])
def test_topk_block_and_chunk_boundaries(dtype, n_x, n_y, d, k):
    rng = np.random.default_rng(9)
    X = rng.standard_normal((n_x, d)).astype(dtype)
    Y = rng.standard_normal((n_y, d)).astype(dtype)
    one = pyconv.l1_topk(X, Y, k, num_threads=1)
    want_d, want_i = own_topk(X, Y, k)
    np.testing.assert_array_equal(one[1], want_i)
    np.testing.assert_array_equal(one[0], want_d)
    for n in (2, 3, -1):
        other = pyconv.l1_topk(X, Y, k, num_threads=n)
        np.testing.assert_array_equal(other[0], one[0])
        np.testing.assert_array_equal(other[1], one[1])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_x", [5, 200])
def test_topk_every_level_bitwise(cpu_level, dtype, n_x):
    rng = np.random.default_rng(10)
    X = rng.integers(-3, 4, (n_x, 19)).astype(dtype)
    Y = rng.integers(-3, 4, (2100, 19)).astype(dtype)
    Y[5, 3] = np.nan
    want = own_topk(X, Y, 9)
    for n in (1, 2):
        dist, idx = pyconv.l1_topk(X, Y, 9, num_threads=n)
        np.testing.assert_array_equal(idx, want[1])
        np.testing.assert_array_equal(dist, want[0])


@settings(max_examples=30, deadline=None)
@given(n_x=st.integers(1, 150), n_y=st.integers(1, 300), d=st.integers(1, 9),
       data=st.data(), seed=st.integers(0, 2**32 - 1), dtype=st.sampled_from(DTYPES),
       num_threads=st.sampled_from([1, 2, 3]))
def test_topk_hypothesis_threads_and_ties(n_x, n_y, d, data, seed, dtype, num_threads):
    rng = np.random.default_rng(seed)
    k = data.draw(st.sampled_from(sorted({1, min(3, n_y), min(16, n_y), n_y})))
    X = rng.integers(-1, 2, (n_x, d)).astype(dtype)
    Y = rng.integers(-1, 2, (n_y, d)).astype(dtype)
    assert_topk(X, Y, k, num_threads)


def same_bits(a, b):
    assert a.dtype == b.dtype and a.shape == b.shape
    np.testing.assert_array_equal(a.view(np.uint8), b.view(np.uint8))


# d >= 64 computes half of l1_distances(X) and copies the rest; d < 64 computes it all.
# n = 300 crosses the blocks of 128 rows of X and many chunks of Y.
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n, d", [(1, 64), (129, 64), (300, 65), (300, 63), (40, 3072)])
def test_l1_against_itself_is_bitwise_the_full_computation(dtype, n, d):
    rng = np.random.default_rng(11)
    X = rng.standard_normal((n, d)).astype(dtype)
    X[rng.integers(0, n), rng.integers(0, d)] = np.inf  # inf stays inf, inf - inf in no pair
    full = pyconv.l1_distances(X, X.copy(), num_threads=1)
    for n_threads in (1, 2, 3, -1):
        same_bits(pyconv.l1_distances(X, num_threads=n_threads), full)
        same_bits(pyconv.l1_distances(X, X, num_threads=n_threads), full)
    out = np.empty_like(full)
    assert pyconv.l1_distances(X, out=out) is out
    same_bits(out, full)


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")
def test_l1_against_itself_with_nan_rows():
    rng = np.random.default_rng(12)
    X = rng.standard_normal((200, 70))
    X[17, 3] = np.nan
    X[150] = np.inf
    D = pyconv.l1_distances(X)
    want = l1_two_loops(X, X)
    np.testing.assert_array_equal(np.isnan(D), np.isnan(want))
    np.testing.assert_array_equal(D, D.T)
    finite = np.isfinite(want)
    assert_close(D[finite], want[finite], np.float64)


def offset_out(shape, dtype, offset):
    """An uninitialised C-contiguous array starting ``offset`` elements past a 64-byte line."""
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape)) * dtype.itemsize
    raw = np.empty(nbytes + 128, np.uint8)
    start = -raw.ctypes.data % 64 + offset * dtype.itemsize
    return raw[start:start + nbytes].view(dtype).reshape(shape)


# Rows of out all starting at one offset in a 64-byte line (n_y a multiple of 16) are written
# with streaming stores from a shifted first column; other layouts go through a buffer.
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_y", [160, 37])
@pytest.mark.parametrize("symmetric", [False, True])
def test_out_at_any_offset_is_bitwise_the_same(cpu_level, dtype, n_y, symmetric):
    rng = np.random.default_rng(13)
    X = rng.standard_normal((n_y if symmetric else 150, 70)).astype(dtype)
    Y = None if symmetric else rng.standard_normal((n_y, 70)).astype(dtype)
    with cpu.use_level("portable"):
        want = pyconv.l1_distances(X, X.copy() if symmetric else Y, num_threads=1)
    for offset in range(64 // np.dtype(dtype).itemsize):
        for n_threads in (1, 3):
            out = offset_out(want.shape, dtype, offset)
            assert pyconv.l1_distances(X, Y, out=out, num_threads=n_threads) is out
            same_bits(out, want)


def test_out_offset_against_itself_with_many_columns_per_chunk():
    # one thread: chunks of 256 columns, so the buffered tiles hold fewer than 128 rows and
    # the copied half of l1_distances(X) is cut in those smaller blocks
    rng = np.random.default_rng(14)
    X = rng.standard_normal((2100, 64))
    want = pyconv.l1_distances(X, X.copy(), num_threads=1)
    out = offset_out(want.shape, np.float64, 1)
    same_bits(pyconv.l1_distances(X, out=out, num_threads=1), want)
