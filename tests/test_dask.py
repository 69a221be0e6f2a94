"""pyconv.dask: the Dask versions equal the in-memory functions, on threads and on a cluster."""
import contextlib
import os
import pathlib
import signal
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")
import dask  # noqa: E402
from dask.callbacks import Callback  # noqa: E402

import pyconv  # noqa: E402
import pyconv.dask as pdask  # noqa: E402

from _dask_tasks import hold  # noqa: E402
from _helpers import DTYPES, assert_close  # noqa: E402

# Row chunkings of X (29 rows) and Y (31 rows): one block, uneven blocks ending in a block of
# one row, one row per block.
ROWS = [(29,), (10, 12, 6, 1), (7, 7, 7, 7, 1)]
Y_ROWS = [(31,), (3, 17, 10, 1), (1,) * 31]


# Seconds any wait on the cluster may take before the test fails instead of hanging.
TIMEOUT = 60


@contextlib.contextmanager
def _local_cluster():
    """A client of a fresh LocalCluster: two worker processes, nannies restart them."""
    cluster = distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                       dashboard_address=":0")
    try:
        with distributed.Client(cluster, set_as_default=False, timeout=TIMEOUT) as client:
            client.wait_for_workers(2, timeout=TIMEOUT)
            yield client
    finally:
        cluster.close(timeout=TIMEOUT)


@pytest.fixture(scope="module")
def client():
    with _local_cluster() as c:
        yield c


def _threads(*arrays):
    return dask.compute(*arrays, scheduler="threads")


def _tied_rows(rng, n, d, dtype):
    """Small integers (many tied distances), a NaN row and an inf entry."""
    A = rng.integers(-2, 3, (n, d)).astype(dtype)
    A[n // 3, d - 1] = np.nan
    A[n // 2, 0] = np.inf
    return A


def _distances_case(dtype, x_rows, y_rows, d_chunks):
    """(lazy result, expected, whether equal bit for bit)."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((29, 8)).astype(dtype)
    Y = rng.standard_normal((31, 8)).astype(dtype)
    D = pdask.l1_distances(da.from_array(X, chunks=(x_rows, d_chunks)),
                           da.from_array(Y, chunks=(y_rows, d_chunks)))
    assert D.dtype == dtype and D.chunks == (x_rows, y_rows)
    return D, pyconv.l1_distances(X, Y), len(d_chunks) == 1


def _check_distances(result, expected, exact):
    if exact:
        np.testing.assert_array_equal(result, expected)
    else:  # partial sums over the d blocks: equal to rounding
        assert_close(result, expected)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("x_rows, y_rows", list(zip(ROWS, reversed(Y_ROWS))))
@pytest.mark.parametrize("d_chunks", [(8,), (3, 4, 1)])
def test_l1_distances_equal_in_memory(dtype, x_rows, y_rows, d_chunks):
    D, expected, exact = _distances_case(dtype, x_rows, y_rows, d_chunks)
    _check_distances(*_threads(D), expected, exact)


def test_l1_distances_of_x_against_itself_and_integers():
    X = np.arange(30).reshape(10, 3) % 7
    D = pdask.l1_distances(da.from_array(X, chunks=(4, 2))).compute(scheduler="threads")
    assert D.dtype == np.float64
    np.testing.assert_array_equal(D, pyconv.l1_distances(X))


def _topk_case(dtype, x_rows, y_rows, k):
    """(lazy distances, lazy indices, expected distances, expected indices)."""
    rng = np.random.default_rng(1)
    X, Y = _tied_rows(rng, 29, 6, dtype), _tied_rows(rng, 31, 6, dtype)
    d, i = pdask.l1_topk(da.from_array(X, chunks=(x_rows, (4, 2))),
                         da.from_array(Y, chunks=(y_rows, 6)), k, split_every=2)
    assert d.dtype == dtype and i.dtype == np.intp and d.chunks == (x_rows, (k,))
    return (d, i, *pyconv.l1_topk(X, Y, k))


def _check_topk(d, i, expected_d, expected_i):
    np.testing.assert_array_equal(i, expected_i)
    np.testing.assert_array_equal(d, expected_d)  # NaN equal to NaN


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("x_rows", ROWS)
@pytest.mark.parametrize("y_rows", Y_ROWS)
@pytest.mark.parametrize("k", [1, 4, 31])
def test_l1_topk_equals_in_memory_exactly(dtype, x_rows, y_rows, k):
    d, i, *expected = _topk_case(dtype, x_rows, y_rows, k)
    _check_topk(*_threads(d, i), *expected)


def _splits(draw, n):
    """A random chunking of n rows."""
    cuts = sorted(draw(st.sets(st.integers(1, n - 1), max_size=min(n - 1, 6)))) if n > 1 else []
    edges = [0, *cuts, n]
    return tuple(b - a for a, b in zip(edges, edges[1:]))


@settings(max_examples=30, deadline=None)
@given(data=st.data(), n_x=st.integers(1, 20), n_y=st.integers(1, 25), d=st.integers(1, 5),
       split_every=st.sampled_from([None, 2, 3]), dtype=st.sampled_from(DTYPES))
def test_l1_topk_hypothesis(data, n_x, n_y, d, split_every, dtype):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    X = rng.integers(-2, 3, (n_x, d)).astype(dtype)
    Y = rng.integers(-2, 3, (n_y, d)).astype(dtype)
    k = data.draw(st.integers(1, n_y))
    x_rows, y_rows = _splits(data.draw, n_x), _splits(data.draw, n_y)
    result = pdask.l1_topk(da.from_array(X, chunks=(x_rows, d)), da.from_array(Y, chunks=(y_rows, d)),
                           k, split_every=split_every)
    d_, i = dask.compute(*result, scheduler="threads")
    expected_d, expected_i = pyconv.l1_topk(X, Y, k)
    np.testing.assert_array_equal(i, expected_i)
    np.testing.assert_array_equal(d_, expected_d)


def test_l1_topk_of_x_against_itself_finds_each_row_first():
    X = np.random.default_rng(2).standard_normal((23, 4))
    d, i = dask.compute(*pdask.l1_topk(da.from_array(X, chunks=5), None, 3), scheduler="threads")
    np.testing.assert_array_equal(i[:, 0], np.arange(23))
    np.testing.assert_array_equal(i, pyconv.l1_topk(X, None, 3)[1])


class _ResultSizes(Callback):
    def __init__(self):
        super().__init__()
        self.nbytes = []

    def _posttask(self, key, result, dsk, state, worker_id):
        self.nbytes.append(getattr(result, "nbytes", 0))


def test_l1_topk_never_builds_a_distance_block():
    rng = np.random.default_rng(3)
    X, Y = rng.standard_normal((60, 4)), rng.standard_normal((200, 4))
    # a 20 x 200 block of distances would be 32 kB; the inputs are at most 6.4 kB
    result = pdask.l1_topk(da.from_array(X, chunks=20), da.from_array(Y, chunks=200), 3)
    with _ResultSizes() as sizes:
        dask.compute(*result, scheduler="threads")
    assert max(sizes.nbytes) <= max(X.nbytes, Y.nbytes)


def test_everything_equals_in_memory_on_a_cluster(client):
    """One round trip to the two-process cluster for a case of every function."""
    lazy, expected, checks = [], [], []

    def add(results, wanted, check):
        lazy.extend(results)
        expected.extend(wanted)
        checks.extend([check] * len(results))

    for dtype, d_chunks in [(np.float32, (8,)), (np.float64, (3, 4, 1))]:
        D, want, exact = _distances_case(dtype, ROWS[1], Y_ROWS[1], d_chunks)
        add([D], [want], np.testing.assert_array_equal if exact else assert_close)
    for dtype, rows, k in [(np.float32, 1, 4), (np.float64, 2, 31)]:
        d, i, *want = _topk_case(dtype, ROWS[rows], Y_ROWS[1], k)
        add([d, i], want, np.testing.assert_array_equal)
    add(*_pooling_case(np.float32, (3, 3, 1)), np.testing.assert_array_equal)
    D, want = _conv_case(np.float64, (3, 3, 1), "direct", True, 1)
    add([D], [want], np.testing.assert_array_equal)
    grads, want, _ = _conv_backward_case(np.float32, (3, 3, 1), "im2col", 2)
    add(grads, want, assert_close)
    add(*_knn_case("l1", 4, Y_ROWS[1], ROWS[1]), np.testing.assert_array_equal)
    results = dask.compute(*lazy, scheduler=client)
    for result, want, check in zip(results, expected, checks, strict=True):
        assert result.dtype == want.dtype
        check(result, want)


def _runs(folder):
    """Worker pids of the runs of ``hold`` so far, one per run."""
    return [int(p.name.split("-")[1]) for p in pathlib.Path(folder).glob("run-*")]


def test_l1_topk_survives_a_killed_worker(tmp_path):
    """SIGKILL a worker while it runs a task of the top-k graph: the nanny restarts it, the
    scheduler reruns its tasks, and the result is still the in-memory one."""
    rng = np.random.default_rng(4)
    X, Y = _tied_rows(rng, 29, 6, np.float64), _tied_rows(rng, 31, 6, np.float64)
    X_held = da.from_array(X, chunks=(ROWS[1], 6)).map_blocks(hold, folder=str(tmp_path),
                                                               timeout=TIMEOUT, meta=X[:0])
    lazy = pdask.l1_topk(X_held, da.from_array(Y, chunks=(Y_ROWS[1], 6)), 5, split_every=2)
    with _local_cluster() as client:
        futures = client.compute(list(lazy))
        deadline = time.monotonic() + TIMEOUT
        while not _runs(tmp_path):  # wait for a held task to be running on a worker
            assert time.monotonic() < deadline, "no task started"
            time.sleep(0.01)
        victim = _runs(tmp_path)[0]
        assert victim in client.run(os.getpid).values()
        os.kill(victim, signal.SIGKILL)
        (tmp_path / "go").touch()
        d, i = (future.result(timeout=TIMEOUT) for future in futures)
        client.wait_for_workers(2, timeout=TIMEOUT)  # the nanny restarted it
        assert victim not in client.run(os.getpid).values()
    # one run more than there are X blocks at least: the killed task ran again
    assert len(_runs(tmp_path)) > len(ROWS[1])
    expected_d, expected_i = pyconv.l1_topk(X, Y, 5)
    np.testing.assert_array_equal(i, expected_i)
    np.testing.assert_array_equal(d, expected_d)


def _pooling_case(dtype, batch):
    """(lazy results, expected results) of every pooling function."""
    rng = np.random.default_rng(5)
    x = rng.integers(-3, 4, (7, 3, 9, 8)).astype(dtype)
    xd = da.from_array(x, chunks=(batch, 3, 9, 8))
    max_kw = dict(size=3, stride=2, padding=1, strict=False)
    avg_kw = dict(size=(2, 3), stride=(3, 2), padding=1, count_include_pad=False, strict=False)
    out, idx = pyconv.max_pool2d(x, return_indices=True, **max_kw)
    dout = rng.standard_normal(out.shape).astype(dtype)
    dout_d = da.from_array(dout, chunks=((2, 5),) + out.shape[1:])
    lazy = (pdask.max_pool2d(xd, **max_kw), *pdask.max_pool2d(xd, return_indices=True, **max_kw),
            pdask.avg_pool2d(xd, **avg_kw),
            pdask.max_pool2d_backward(dout_d, xd, 3, stride=2, padding=1),
            pdask.max_pool2d_backward(dout_d, xd, 3, stride=2, padding=1, indices=idx),
            pdask.avg_pool2d_backward(dout_d, x.shape, 3, stride=2, padding=1))
    assert lazy[0].chunks[0] == batch
    expected = (out, out, idx, pyconv.avg_pool2d(x, **avg_kw),
                pyconv.max_pool2d_backward(dout, x, 3, stride=2, padding=1),
                pyconv.max_pool2d_backward(dout, x, 3, stride=2, padding=1, indices=idx),
                pyconv.avg_pool2d_backward(dout, x.shape, 3, stride=2, padding=1))
    return lazy, expected


def _check_equal(results, expected):
    for result, want in zip(results, expected, strict=True):
        assert result.dtype == want.dtype
        np.testing.assert_array_equal(result, want)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch", [(7,), (3, 3, 1), (1,) * 7])
def test_pooling_equals_in_memory(dtype, batch):
    lazy, expected = _pooling_case(dtype, batch)
    _check_equal(_threads(*lazy), expected)


@pytest.mark.parametrize("dtype", DTYPES)
def test_padding_forms_ceil_mode_and_dilated_averages_equal_in_memory(dtype):
    """The options every framework needs, through the Dask wrappers: bit for bit."""
    rng = np.random.default_rng(12)
    x = rng.standard_normal((5, 3, 9, 10)).astype(dtype)
    lazy_x = da.from_array(x, chunks=(2, 3, 9, 10))
    pool = dict(stride=2, padding=((0, 1), (1, 0)), ceil_mode=True)
    out, idx = pyconv.max_pool2d(x, 3, return_indices=True, **pool)
    dout = rng.standard_normal(out.shape).astype(dtype)
    lazy_dout = da.from_array(dout, chunks=(2, 3, *out.shape[2:]))
    avg = dict(pool, dilation=(1, 2), count_include_pad=False)
    mean = pyconv.avg_pool2d(x, 3, **avg)
    dmean = rng.standard_normal(mean.shape).astype(dtype)
    conv = dict(stride=2, padding="same", method="direct")
    w = rng.standard_normal((4, 3, 3, 3)).astype(dtype)
    lazy = [*pdask.max_pool2d(lazy_x, 3, return_indices=True, **pool),
            pdask.max_pool2d_backward(lazy_dout, lazy_x, 3, **pool),
            pdask.avg_pool2d(lazy_x, 3, **avg),
            pdask.avg_pool2d_backward(da.from_array(dmean, chunks=(2, 3, *mean.shape[2:])),
                                      x.shape, 3, **avg),
            pdask.conv2d(lazy_x, w, **conv)]
    expected = [out, idx, pyconv.max_pool2d_backward(dout, x, 3, **pool), mean,
                pyconv.avg_pool2d_backward(dmean, x.shape, 3, **avg), pyconv.conv2d(x, w, **conv)]
    _check_equal(dask.compute(*lazy, scheduler="threads"), expected)


def _conv_case(dtype, batch, method, with_bias, groups):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((7, 4, 9, 8)).astype(dtype)
    w = rng.standard_normal((6, 4 // groups, 3, 2)).astype(dtype)
    b = rng.standard_normal(6).astype(dtype) if with_bias else None
    options = dict(stride=(2, 1), padding=1, groups=groups, method=method, strict=False)
    lazy = pdask.conv2d(da.from_array(x, chunks=(batch, 4, 9, 8)),
                        da.from_array(w, chunks=(2, 1, 3, 2)), b, **options)
    assert lazy.chunks[0] == batch
    return lazy, pyconv.conv2d(x, w, b, **options)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch", [(3, 3, 1), (1,) * 7])
@pytest.mark.parametrize("method", ["direct", "im2col", "auto"])
@pytest.mark.parametrize("with_bias, groups", [(True, 1), (False, 2)])
def test_conv2d_equals_in_memory(dtype, batch, method, with_bias, groups):
    lazy, expected = _conv_case(dtype, batch, method, with_bias, groups)
    (result,) = _threads(lazy)
    assert result.dtype == expected.dtype
    if method == "direct":
        np.testing.assert_array_equal(result, expected)
    else:  # BLAS may round a product of another width differently
        assert_close(result, expected)


def _conv_backward_case(dtype, batch, method, groups, need=("dx", "dw", "db")):
    """(lazy gradients, expected gradients, inputs); dout and x in different N blocks."""
    rng = np.random.default_rng(8)
    x = rng.standard_normal((7, 4, 9, 8)).astype(dtype)
    w = rng.standard_normal((6, 4 // groups, 3, 2)).astype(dtype)
    options = dict(stride=(2, 1), padding=1, groups=groups, method=method)
    dout = rng.standard_normal(pyconv.conv2d(x, w, strict=False, **options).shape).astype(dtype)
    lazy = pdask.conv2d_backward(da.from_array(dout, chunks=(batch, -1, -1, -1)),
                                 da.from_array(x, chunks=((2, 5), 4, 9, 8)), w, need=need,
                                 **options)
    return lazy, pyconv.conv2d_backward(dout, x, w, need=need, **options), (dout, x, w, options)


def _check_conv_backward(results, expected, method):
    dx, dw, db = results
    assert dx.dtype == dw.dtype == db.dtype == expected[0].dtype
    if method == "direct":  # dx of an image is computed as in memory
        np.testing.assert_array_equal(dx, expected[0])
    else:  # BLAS may round a product of another width differently
        assert_close(dx, expected[0])
    assert_close(dw, expected[1])  # summed over the blocks: equal to rounding
    assert_close(db, expected[2])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch", [(7,), (3, 3, 1), (1,) * 7])
@pytest.mark.parametrize("method", ["direct", "im2col"])
@pytest.mark.parametrize("groups", [1, 2])
def test_conv2d_backward_equals_in_memory(dtype, batch, method, groups):
    lazy, expected, _ = _conv_backward_case(dtype, batch, method, groups)
    results = _threads(*lazy)
    _check_conv_backward(results, expected, method)
    for again, first in zip(_threads(*lazy), results):  # the blocks are summed in a fixed order
        np.testing.assert_array_equal(again, first)


def test_conv2d_backward_computes_only_what_is_needed():
    (dx, dw, db), expected, _ = _conv_backward_case(np.float32, (3, 3, 1), "auto", 1, ("dw",))
    assert dx is None and db is None and expected[0] is None and expected[2] is None
    assert_close(dw.compute(scheduler="threads"), expected[1])


def test_conv2d_backward_passes_gradcheck():
    (dx, dw, db), _, (dout, x, w, options) = _conv_backward_case(np.float64, (3, 3, 1), "auto", 2)
    b = np.zeros(w.shape[0])
    pyconv.gradcheck(lambda x, w, b: pyconv.conv2d(x, w, b, strict=False, **options), [x, w, b],
                     _threads(dx, dw, db), dout)


def _knn_case(metric, k, train_rows, test_rows):
    """Small integer data (many ties; squared L2 exact in floating point), string labels."""
    rng = np.random.default_rng(7)
    X = rng.integers(0, 4, (31, 5)).astype(np.float32)
    y = np.array(["ant", "bee", "cat", "dog"])[rng.integers(0, 4, 31)]
    T = rng.integers(0, 4, (29, 5)).astype(np.float32)
    model = pdask.KNearestNeighbor(k, metric, split_every=2).fit(
        da.from_array(X, chunks=(train_rows, 5)), da.from_array(y, chunks=10))
    reference = pyconv.KNearestNeighbor(k, metric).fit(X, y)
    Td = da.from_array(T, chunks=(test_rows, 5))
    return (model.predict(Td), *model.kneighbors(Td)), (reference.predict(T),
                                                        *reference.kneighbors(T))


@pytest.mark.parametrize("metric", ["l1", "l2"])
@pytest.mark.parametrize("k", [1, 4, 31])
@pytest.mark.parametrize("rows", [0, 1])
def test_knearest_neighbor_equals_in_memory(metric, k, rows):
    lazy, expected = _knn_case(metric, k, Y_ROWS[rows], ROWS[rows])
    _check_equal(_threads(*lazy), expected)


def test_task_threads_share_the_process_budget(client):
    with dask.config.set(num_workers=2), pyconv.num_threads(4):
        assert dask.delayed(pdask.task_num_threads)().compute(scheduler="threads") == 2
    assert dask.delayed(pdask.task_num_threads)(3).compute(scheduler="threads") == 3
    # a nanny starts workers with OMP_NUM_THREADS=1; one Dask thread each
    on_worker = client.submit(pdask.task_num_threads, pure=False).result()
    budget = client.submit(pyconv.get_num_threads, pure=False).result()
    assert on_worker == budget == 1


X4 = da.ones((4, 3, 8, 8), chunks=(2, 3, 8, 8))


@pytest.mark.parametrize("call, error, message", [
    (lambda: pdask.l1_distances(da.ones(3), da.ones((2, 3))), ValueError,
     r"X must have 2 dimensions, got shape \(3,\)"),
    (lambda: pdask.l1_distances(da.ones((2, 3)), da.ones((2, 4))), ValueError,
     r"same number of columns .* got X \(2, 3\) and Y \(2, 4\)"),
    (lambda: pdask.l1_distances(da.ones((2, 3), dtype=complex)), TypeError, "real numbers"),
    (lambda: pdask.l1_topk(da.ones((2, 3)), da.ones((4, 3)), 5), ValueError,
     r"k must be between 1 and the number of rows of Y \(4\), got 5"),
    (lambda: pdask.l1_topk(da.ones((2, 3)), da.ones((4, 3)), 1.0), TypeError, "k must be an int"),
    (lambda: pdask.l1_topk(da.ones((2, 3)), None, 1, num_threads=0), ValueError,
     "num_threads=0"),
    (lambda: pdask.l1_topk(da.ones((2, 3))[da.ones(2) > 0], None, 1), ValueError,
     "unknown chunk sizes"),
    (lambda: pdask.max_pool2d(da.ones((3, 8, 8)), 2), ValueError, "x must have 4 dimensions"),
    (lambda: pdask.conv2d(X4.rechunk((4, 1, 8, 8)), np.ones((2, 3, 3, 3))), ValueError,
     r"got \(1, 3, 1, 1\) blocks along \(N, C, H, W\)"),
    (lambda: pdask.conv2d(X4, np.ones((2, 4, 3, 3))), ValueError, "w"),
    (lambda: pdask.KNearestNeighbor(2).predict(da.ones((2, 3))), ValueError, "not fitted"),
    (lambda: pdask.KNearestNeighbor(3).fit(da.ones((2, 3)), [0, 1]), ValueError,
     "need at least 3 training rows"),
    (lambda: pdask.KNearestNeighbor(1).fit(da.ones((2, 3)), [0, 1, 2]), ValueError,
     r"y must have shape \(2,\)"),
    (lambda: pdask.max_pool2d(X4.rechunk((2, 1, 8, 8)), 2), ValueError,
     r"chunked along the batch axis \(N\) only, got \(2, 3, 1, 1\) blocks"),
    (lambda: pdask.avg_pool2d(X4.rechunk((2, 3, 4, 8)), 2), ValueError, "x.rechunk"),
    (lambda: pdask.max_pool2d(X4, 3), pyconv.InvalidConfigError, "not a whole number"),
    (lambda: pdask.max_pool2d_backward(da.ones((3, 3, 4, 4)), X4, 2), ValueError,
     "same batch size"),
    (lambda: pdask.avg_pool2d_backward(da.ones((4, 3, 4, 4)), (3, 3, 8, 8), 2), ValueError,
     "x_shape must be the forward input's 4-D shape"),
    (lambda: pdask.conv2d_backward(da.ones((4, 2, 6, 6), chunks=(2, 1, 6, 6)), X4,
                                   np.ones((2, 3, 3, 3))), ValueError,
     r"dout must be chunked along the batch axis \(N\) only"),
    (lambda: pdask.conv2d_backward(da.ones((4, 2, 6, 6)), X4.rechunk((4, 3, 8, 2)),
                                   np.ones((2, 3, 3, 3))), ValueError, "x.rechunk"),
    (lambda: pdask.conv2d_backward(da.ones((3, 2, 6, 6)), X4, np.ones((2, 3, 3, 3))), ValueError,
     "same batch size"),
    (lambda: pdask.conv2d_backward(da.ones((4, 2, 5, 6)), X4, np.ones((2, 3, 3, 3))), ValueError,
     "dout must have the forward output's shape"),
    (lambda: pdask.conv2d_backward(da.ones((4, 2, 6, 6)), X4, np.ones((2, 3, 3, 3)),
                                   need=("dz",)), ValueError, "dz"),
])
def test_bad_input_is_refused_when_the_graph_is_built(call, error, message):
    with pytest.raises(error, match=message):
        call()
