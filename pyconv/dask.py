"""pyconv's kernels on Dask arrays, for data past one machine's memory or cores.

Every function here builds a lazy Dask graph whose tasks call pyconv's
in-memory kernels on blocks, and returns Dask arrays; ``.compute()`` runs it
on whatever scheduler is active (the local threaded one, or a
``distributed`` cluster). pyconv writes no scheduler of its own. Install with
``pip install "pyconv[dask]"``; :mod:`dask.array` is imported only here.

Threads
-------
A kernel inside a task uses ``num_threads`` if given, otherwise pyconv's
thread budget of the process it runs in (:func:`pyconv.get_num_threads`
there) shared among that process's Dask threads:
``max(1, budget // dask_threads)``, where ``dask_threads`` is the worker's
``nthreads`` on a ``distributed`` worker and the threaded scheduler's pool
size otherwise (``dask.config.set(num_workers=n)``, else Dask's CPU count; a
``num_workers=`` passed to ``compute`` is not seen inside tasks). So
the local threaded scheduler runs one OpenMP thread per Dask thread, and a
``distributed`` worker started by a nanny (which sets ``OMP_NUM_THREADS=1``)
runs one too. For one Dask thread per worker process with pyconv's OpenMP
inside, start workers with ``threads_per_worker=1`` and raise the budget on
them, e.g. ``client.run(pyconv.set_num_threads, 8)``. With the synchronous
scheduler pass ``num_threads=-1`` to use every core.
"""
import functools

import dask
import dask.array as da
import numpy as np
from dask.system import CPU_COUNT

from .conv import conv2d as _conv2d
from .conv import conv2d_backward as _conv2d_backward
from ._validation import check_layout, check_rows
from .distance import _check_k
from .distance import l1_distances as _l1_distances
from .distance import l1_topk as _l1_topk
from .neighbors import KNearestNeighbor as _KNearestNeighbor
from .neighbors import _sqeuclidean_topk, vote
from .pool import avg_pool2d as _avg_pool2d
from .pool import avg_pool2d_backward as _avg_pool2d_backward
from .pool import max_pool2d as _max_pool2d
from .pool import max_pool2d_backward as _max_pool2d_backward
from .threads import _check_request, resolve_num_threads

__all__ = ["l1_distances", "l1_topk", "conv2d", "conv2d_backward", "max_pool2d", "avg_pool2d",
           "max_pool2d_backward", "avg_pool2d_backward", "KNearestNeighbor", "task_num_threads"]


# --------------------------------------------------------------------------- threads

def _dask_threads_here():
    """Dask threads running tasks in this process."""
    try:
        from distributed import get_worker
        return get_worker().state.nthreads
    except (ImportError, ValueError):
        pass
    return dask.config.get("num_workers", None) or CPU_COUNT


def task_num_threads(num_threads=None):
    """OpenMP threads a pyconv kernel uses inside a Dask task running here.

    Parameters
    ----------
    num_threads : int, optional
        An explicit request, resolved as :func:`pyconv.resolve_num_threads`
        does. None shares this process's budget (:func:`pyconv.get_num_threads`)
        among the Dask threads that run tasks in it.

    Returns
    -------
    int
        ``max(1, get_num_threads() // dask_threads)`` for None, where
        ``dask_threads`` is the ``distributed`` worker's ``nthreads`` when
        called inside a worker, else the threaded scheduler's pool size.

    Examples
    --------
    >>> import pyconv, pyconv.dask
    >>> pyconv.dask.task_num_threads(1)
    1
    >>> 1 <= pyconv.dask.task_num_threads() <= pyconv.get_num_threads()
    True
    """
    if num_threads is not None:
        return resolve_num_threads(num_threads)
    return max(1, resolve_num_threads(None) // _dask_threads_here())


# --------------------------------------------------------------------------- inputs

def _as_dask(a, name, ndim):
    """``a`` as a Dask array of ``ndim`` dimensions with known chunk sizes."""
    if a is None:
        raise TypeError(f"{name} must be an array, got None")
    arr = a if isinstance(a, da.Array) else da.asarray(a)
    if arr.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {arr.shape}")
    if any(np.isnan(c) for chunks in arr.chunks for c in chunks):
        raise ValueError(f"{name} has unknown chunk sizes {arr.chunks}; call "
                         f"{name}.compute_chunk_sizes() first")
    return arr


def _stand_in(arr):
    """A zero-stride NumPy array of ``arr``'s shape and dtype, for validation only."""
    return np.broadcast_to(np.zeros((), arr.dtype), arr.shape)


def _check_batch_chunks(x, name, layout="NCHW"):
    if any(len(c) > 1 for c in x.chunks[1:]):
        axes = "N, C, H, W" if layout == "NCHW" else "N, H, W, C"
        raise ValueError(
            f"{name} must be chunked along the batch axis (N) only, got "
            f"{tuple(len(c) for c in x.chunks)} blocks along ({axes}): each task takes whole "
            f"images, as windows cross H and W block edges and convolution sums over C. "
            f"Rechunk with {name}.rechunk({{1: -1, 2: -1, 3: -1}})")


# --------------------------------------------------------------------------- distances

def _distance_block(x_blocks, y_blocks, num_threads):
    """D block of one X row block and one Y row block, summed over their d blocks."""
    n = task_num_threads(num_threads)
    D = _l1_distances(x_blocks[0], y_blocks[0], num_threads=n)
    for xb, yb in zip(x_blocks[1:], y_blocks[1:]):
        D += _l1_distances(xb, yb, num_threads=n)
    return D


def l1_distances(X, Y=None, *, num_threads=None):
    """Pairwise L1 distances between the rows of two Dask arrays.

    Parameters
    ----------
    X : dask.array.Array, shape (n_x, d)
        Chunked along rows, and along d if wanted. A NumPy array is taken as
        one block.
    Y : dask.array.Array, shape (n_y, d), optional
        As ``X``; None means ``X`` against itself.
    num_threads : int, optional
        OpenMP threads per task; see :func:`task_num_threads`.

    Returns
    -------
    dask.array.Array, shape (n_x, n_y)
        Block (i, j) is ``pyconv.l1_distances`` of X's row block i and Y's
        row block j, dtype as there.

    Raises
    ------
    ValueError
        If X or Y is not 2-D, their widths differ, or a chunk size is unknown.
    TypeError
        If an input is not real-valued.

    Notes
    -----
    When d is one block, results equal the in-memory :func:`pyconv.l1_distances`
    bit for bit. When d is split (X's and Y's d chunks are unified first), each
    task adds the partial distances of its d blocks in order, so results
    agree to rounding. Build only what fits: the result is n_x x n_y; for
    nearest neighbours use :func:`l1_topk`, which never builds it.

    Examples
    --------
    >>> import dask.array as da, pyconv.dask
    >>> X = da.from_array([[0, 0], [1, 2], [3, 3]], chunks=(2, 1))
    >>> pyconv.dask.l1_distances(X, [[1, 1]]).compute()
    array([[2.],
           [1.],
           [4.]])
    """
    X = _as_dask(X, "X", 2)
    Y = X if Y is None else _as_dask(Y, "Y", 2)
    _check_request(num_threads)
    *_, dtype = check_rows(_stand_in(X), _stand_in(Y))
    return da.blockwise(_distance_block, "ij", X, "ik", Y, "jk", concatenate=False,
                        dtype=dtype, meta=np.empty((0, 0), dtype), num_threads=num_threads)


def _candidate_dtype(dtype):
    return np.dtype([("distance", dtype), ("index", np.intp)])


def _l1_search(x, y, k, num_threads):
    return _l1_topk(x, y, k, num_threads=task_num_threads(num_threads))


def _sqeuclidean_search(x, y, k, num_threads):
    return _sqeuclidean_topk(x, y, k)


def _topk_block(x, y, offset, search, k, dtype, num_threads):
    """Top-k candidates of one X row block among one Y row block, with global indices."""
    out = np.empty((x.shape[0], min(k, y.shape[0])), _candidate_dtype(dtype))
    if out.shape[1]:
        d, i = search(x, y, out.shape[1], num_threads)
        out["distance"] = d
        out["index"] = i + offset[0]
    return out


def _keep(candidates, axis, keepdims):
    return candidates


def _merge(candidates, axis, keepdims, k):
    """The k best candidates of each row: ascending distance, NaN last, ties to the smaller index."""
    order = np.lexsort((candidates["index"], candidates["distance"]), axis=1)[:, :k]
    return np.take_along_axis(candidates, order, axis=1)


def l1_topk(X, Y, k, *, split_every=None, num_threads=None):
    """The k nearest rows of Y, in L1 distance, for every row of X, on Dask arrays.

    Parameters
    ----------
    X : dask.array.Array, shape (n_x, d)
        Chunked along rows (d chunks are merged: a task needs whole rows). A
        NumPy array is taken as one block.
    Y : dask.array.Array, shape (n_y, d)
        As ``X``; None means ``X`` against itself.
    k : int
        Neighbours per row, ``1 <= k <= n_y``.
    split_every : int, optional
        How many candidate lists a merge task takes; Dask's default if None.
    num_threads : int, optional
        OpenMP threads per task; see :func:`task_num_threads`.

    Returns
    -------
    distances : dask.array.Array, shape (n_x, k)
        Chunked as X's rows, ascending along each row.
    indices : dask.array.Array of intp, shape (n_x, k)
        Global rows of ``Y``.

    Raises
    ------
    ValueError
        If X or Y is not 2-D, their widths differ, k is out of range, or a
        chunk size is unknown.
    TypeError
        If an input is not real-valued or k is not an int.

    Notes
    -----
    Each (X block, Y block) task runs :func:`pyconv.l1_topk` for its
    ``min(k, rows)`` best candidates, offsets their indices to rows of the
    whole Y, and a tree reduction (``split_every`` lists at a time) merges
    the lists by (distance, index) with NaN last. Every candidate list is
    ordered that way, so the union of the blocks' top-k holds the global
    top-k: results equal the in-memory :func:`pyconv.l1_topk` exactly,
    indices and tie-breaking included. No task builds more than its blocks
    and an (X block rows, k * split_every) candidate list; the n_x x n_y
    distance matrix is never built.

    Examples
    --------
    >>> import dask.array as da, pyconv.dask
    >>> Y = da.from_array([[3, 0], [1, 0], [0, 1], [5, 5]], chunks=1)
    >>> d, i = pyconv.dask.l1_topk([[0, 0]], Y, k=3)
    >>> d.compute()
    array([[1., 1., 3.]])
    >>> i.compute()
    array([[1, 2, 0]])
    """
    X = _as_dask(X, "X", 2)
    Y = X if Y is None else _as_dask(Y, "Y", 2)
    return _topk(X, Y, k, _l1_search, split_every, num_threads)


def _topk(X, Y, k, search, split_every, num_threads):
    """Per-block ``search`` candidates of the Dask arrays X and Y, tree-merged to the top k."""
    *_, dtype = check_rows(_stand_in(X), _stand_in(Y))
    k = _check_k(k, Y.shape[0])
    _check_request(num_threads)
    X = X.rechunk({1: -1})
    Y = Y.rechunk({1: -1})
    rows = Y.chunks[0]
    offsets = da.from_array(np.cumsum((0,) + rows[:-1], dtype=np.intp), chunks=1)
    kind = _candidate_dtype(dtype)
    candidates = da.blockwise(
        functools.partial(_topk_block, search=search, k=k, dtype=dtype, num_threads=num_threads),
        "ij", X, "ik", Y, "jk", offsets, "j", concatenate=True, align_arrays=False,
        adjust_chunks={"j": tuple(min(k, r) for r in rows)}, dtype=kind,
        meta=np.empty((0, 0), kind))
    merge = functools.partial(_merge, k=k)
    best = da.reduction(candidates, chunk=_keep, combine=merge, aggregate=merge, axis=1,
                        keepdims=True, dtype=kind, split_every=split_every, concatenate=True,
                        output_size=k, meta=np.empty((0, 0), kind))
    return best["distance"], best["index"]


# --------------------------------------------------------------------------- batches

def _probe(a):
    """An empty batch of ``a``'s trailing shape and dtype: validation without work."""
    return np.empty((0,) + a.shape[1:], a.dtype)


def _apply(fn, names, options, num_threads, *blocks):
    """``fn`` on one batch block; several outputs are packed into one record array."""
    result = fn(*blocks, **options, num_threads=task_num_threads(num_threads))
    if names is None:
        return result
    out = np.empty(result[0].shape, [(name, r.dtype) for name, r in zip(names, result)])
    for name, r in zip(names, result):
        out[name] = r
    return out


def _per_batch(fn, batched, shared, options, num_threads, names=None):
    """Map ``fn`` over the batch blocks of the 4-D ``batched`` arrays.

    ``shared`` arrays (weights) go whole to every task, from one graph node.
    ``fn`` is first called on empty batches, so bad arguments raise here with
    pyconv's own messages and the output's shape and dtype are known. With
    ``names``, ``fn`` returns several outputs of one shape, split into one
    Dask array each.
    """
    layout = check_layout(options.get("layout", "NCHW"))
    for name, a in batched.items():
        _check_batch_chunks(a, name, layout)
    _check_request(num_threads)
    probe = fn(*(_probe(a) for a in batched.values()), *(_stand_in(s) for s in shared),
               **options)
    outputs = (probe,) if names is None else probe
    kind = probe.dtype if names is None else np.dtype(
        [(name, out.dtype) for name, out in zip(names, outputs)])
    args = []
    for j, a in enumerate(batched.values()):
        args += [a, ("n",) + tuple(f"in{j}_{ax}" for ax in range(1, a.ndim))]
    for j, s in enumerate(shared):
        args += [s.rechunk(-1), tuple(f"shared{j}_{ax}" for ax in range(s.ndim))]
    tail = outputs[0].shape[1:]
    out_index = ("n",) + tuple(f"out{ax}" for ax in range(1, 1 + len(tail)))
    result = da.blockwise(
        functools.partial(_apply, fn, names, options, num_threads),
        out_index, *args, new_axes=dict(zip(out_index[1:], tail)), concatenate=True,
        dtype=kind, meta=np.empty((0,) * len(out_index), kind))
    return result if names is None else tuple(result[name] for name in names)


def conv2d(x, w, b=None, *, num_threads=None, **options):
    """2-D convolution of a Dask array of images chunked along the batch axis.

    Parameters
    ----------
    x : dask.array.Array, shape (N, C, H, W), or (N, H, W, C) with ``layout="NHWC"``
        Chunked along N only; one block along C, H and W. A NumPy array is
        taken as one block.
    w : array_like or dask.array.Array, shape (K, C/groups, FH, FW)
        Filters, sent whole to every task (one graph node, fetched once per
        worker).
    b : array_like or dask.array.Array, shape (K,), optional
        Bias.
    num_threads : int, optional
        OpenMP and BLAS threads per task; see :func:`task_num_threads`.
    **options
        ``stride``, ``padding``, ``dilation``, ``groups``, ``method``,
        ``strict``, ``layout``: as in :func:`pyconv.conv2d`.

    Returns
    -------
    dask.array.Array, shape (N, K, OH, OW), or (N, OH, OW, K) with ``layout="NHWC"``
        Chunked as ``x`` along N.

    Raises
    ------
    ValueError
        If ``x`` is not 4-D or is chunked along C, H or W (a window would
        cross a block edge, and C is summed over: rechunk them to one
        block), or as :func:`pyconv.conv2d`.
    TypeError
        As :func:`pyconv.conv2d`.

    Notes
    -----
    Each task is :func:`pyconv.conv2d` on one batch block: every image's
    output is computed as in memory, but the im2col method's matrix product
    may group images differently (BLAS rounding), so results equal the
    in-memory call to rounding; ``method="direct"`` gives them bit for bit.
    Bad arguments raise when the graph is built: pyconv.conv2d is first
    called on an empty batch.

    Examples
    --------
    >>> import numpy as np, dask.array as da, pyconv.dask
    >>> x = da.ones((4, 3, 5, 5), chunks=(3, 3, 5, 5))
    >>> y = pyconv.dask.conv2d(x, np.ones((2, 3, 3, 3)), padding=1)
    >>> y.chunks
    ((3, 1), (2,), (5,), (5,))
    >>> y[0, 0].compute()
    array([[12., 18., 18., 18., 12.],
           [18., 27., 27., 27., 18.],
           [18., 27., 27., 27., 18.],
           [18., 27., 27., 27., 18.],
           [12., 18., 18., 18., 12.]])
    """
    shared = [da.asarray(w)] + ([] if b is None else [da.asarray(b)])
    return _per_batch(_conv2d, {"x": _as_dask(x, "x", 4)}, shared, options, num_threads)


def _conv2d_dx(dout, x, w, **options):
    return _conv2d_backward(dout, x, w, need=("dx",), **options)[0]


def _conv2d_dw_part(dout, x, w, *, num_threads, **options):
    """dw of one batch block, with a leading axis of 1 for the blocks to be summed over."""
    dw = _conv2d_backward(dout, x, w, need=("dw",), num_threads=task_num_threads(num_threads),
                          **options)[1]
    return dw[None]


def conv2d_backward(dout, x, w, *, stride=1, padding=0, dilation=1, groups=1, method="auto",
                    need=("dx", "dw", "db"), layout="NCHW", num_threads=None):
    """Gradients of :func:`conv2d` on Dask arrays chunked along the batch axis.

    Parameters
    ----------
    dout : dask.array.Array, shape (N, K, OH, OW) (or (N, OH, OW, K), see ``layout``)
        Gradient of the loss with respect to the convolution's output,
        chunked along N only.
    x : dask.array.Array, shape (N, C, H, W) (or (N, H, W, C), see ``layout``)
        The forward input, chunked along N only (``dout`` and ``x`` are
        rechunked to common N blocks where theirs differ).
    w : array_like or dask.array.Array, shape (K, C/groups, FH, FW)
        Filters, sent whole to every task.
    stride, padding, dilation, groups, method, need, layout
        As in :func:`pyconv.conv2d_backward`.
    num_threads : int, optional
        OpenMP and BLAS threads per task; see :func:`task_num_threads`.

    Returns
    -------
    dx : dask.array.Array, the shape of ``x``, or None
        In the N blocks ``dout`` and ``x`` share: one
        :func:`pyconv.conv2d_backward` per block.
    dw : dask.array.Array, the shape of ``w``, or None
        The blocks' filter gradients summed.
    db : dask.array.Array, shape (K,), or None
        ``dout`` summed over N, OH and OW in double precision. All three are
        in the dtype the in-memory call computes in; None for what ``need``
        leaves out.

    Raises
    ------
    ValueError
        If ``dout`` or ``x`` is not 4-D, is chunked along another axis than
        N, their batch sizes differ, or as :func:`pyconv.conv2d_backward`.
    TypeError
        As :func:`pyconv.conv2d_backward`.

    Notes
    -----
    dx of an image depends on that image only, so each block's dx is the
    in-memory one (to BLAS rounding with im2col; bit for bit with
    ``method="direct"``). dw and db sum over the batch: each block's dw
    comes from :func:`pyconv.conv2d_backward` and Dask's ``sum`` adds them
    in float64, in an order fixed by the graph (not by which task finishes
    first), rounding to the result's dtype once; db is Dask's float64 sum
    of ``dout``. So dw and db agree with the in-memory call to rounding,
    and repeated runs give the same bits.

    Examples
    --------
    >>> import numpy as np, dask.array as da, pyconv.dask
    >>> x = da.ones((4, 1, 3, 3), chunks=(3, 1, 3, 3))
    >>> dx, dw, db = pyconv.dask.conv2d_backward(da.ones((4, 2, 2, 2), chunks=3), x,
    ...                                          np.ones((2, 1, 2, 2)))
    >>> dx.chunks[0]
    (3, 1)
    >>> dw.compute()[0]
    array([[[16., 16.],
            [16., 16.]]])
    >>> db.compute()
    array([16., 16.])
    """
    batched = {"dout": _as_dask(dout, "dout", 4), "x": _as_dask(x, "x", 4)}
    _check_batch_size(batched)
    layout = check_layout(layout)
    for name, a in batched.items():
        _check_batch_chunks(a, name, layout)
    _check_request(num_threads)
    w = da.asarray(w)
    options = dict(stride=stride, padding=padding, dilation=dilation, groups=groups,
                   method=method, layout=layout)
    # pyconv's own validation (shapes, options, need) and the result dtype, on empty batches
    probe = _conv2d_backward(_probe(batched["dout"]), _probe(batched["x"]), _stand_in(w),
                             need=need, **options)
    dtype = next(g.dtype for g in probe if g is not None)
    dx = dw = db = None
    if probe[0] is not None:
        dx = _per_batch(_conv2d_dx, batched, [w], options, num_threads)
    if probe[1] is not None:
        dout_d, x_d = batched.values()
        parts = da.blockwise(
            functools.partial(_conv2d_dw_part, num_threads=num_threads, **options),
            "nkcuv", dout_d, "nabe", x_d, "nfgh", w.rechunk(-1), "kcuv", concatenate=True,
            adjust_chunks={"n": 1}, dtype=dtype, meta=np.empty((0,) * 5, dtype))
        dw = parts.sum(axis=0, dtype=np.float64).astype(dtype)
    if probe[2] is not None:
        spatial = (0, 2, 3) if layout == "NCHW" else (0, 1, 2)
        db = batched["dout"].sum(axis=spatial, dtype=np.float64).astype(dtype)
    return dx, dw, db


def max_pool2d(x, size, *, stride=None, padding=0, dilation=1, ceil_mode=False, strict=True,
               return_indices=False, layout="NCHW", num_threads=None):
    """Max pooling of a Dask array chunked along the batch axis.

    Parameters
    ----------
    x : dask.array.Array, shape (N, C, H, W), or (N, H, W, C) with ``layout="NHWC"``
        Chunked along N only; one block along C, H and W.
    size, stride, padding, dilation, ceil_mode, strict, return_indices, layout
        As in :func:`pyconv.max_pool2d`.
    num_threads : int, optional
        OpenMP threads per task; see :func:`task_num_threads`.

    Returns
    -------
    out : dask.array.Array, shape (N, C, OH, OW) (or (N, OH, OW, C), see ``layout``)
        Chunked as ``x`` along N; equal to :func:`pyconv.max_pool2d` bit for bit.
    indices : dask.array.Array of int64, the shape of ``out``, only if ``return_indices``

    Raises
    ------
    ValueError
        If ``x`` is not 4-D, is chunked along C, H or W (a window would cross
        a block edge: rechunk them to one block), or the windows do not fit.
    TypeError
        As :func:`pyconv.max_pool2d`.

    Examples
    --------
    >>> import numpy as np, dask.array as da, pyconv.dask
    >>> x = da.from_array(np.arange(32.).reshape(2, 1, 4, 4), chunks=(1, 1, 4, 4))
    >>> pyconv.dask.max_pool2d(x, 2).compute()[1, 0]
    array([[21., 23.],
           [29., 31.]])
    """
    options = dict(size=size, stride=stride, padding=padding, dilation=dilation,
                   ceil_mode=ceil_mode, strict=strict, return_indices=return_indices,
                   layout=layout)
    return _per_batch(_max_pool2d, {"x": _as_dask(x, "x", 4)}, (), options, num_threads,
                      ("out", "indices") if return_indices else None)


def avg_pool2d(x, size, *, stride=None, padding=0, dilation=1, ceil_mode=False,
               count_include_pad=True, strict=True, layout="NCHW", num_threads=None):
    """Average pooling of a Dask array chunked along the batch axis.

    Parameters
    ----------
    x : dask.array.Array, shape (N, C, H, W), or (N, H, W, C) with ``layout="NHWC"``
        Chunked along N only; one block along C, H and W.
    size, stride, padding, dilation, ceil_mode, count_include_pad, strict, layout
        As in :func:`pyconv.avg_pool2d`.
    num_threads : int, optional
        OpenMP threads per task; see :func:`task_num_threads`.

    Returns
    -------
    dask.array.Array, shape (N, C, OH, OW) (or (N, OH, OW, C), see ``layout``)
        Chunked as ``x`` along N; equal to :func:`pyconv.avg_pool2d` bit for bit.

    Raises
    ------
    ValueError, TypeError
        As :func:`max_pool2d`.

    Examples
    --------
    >>> import numpy as np, dask.array as da, pyconv.dask
    >>> x = da.from_array(np.arange(32.).reshape(2, 1, 4, 4), chunks=(1, 1, 4, 4))
    >>> pyconv.dask.avg_pool2d(x, 4).compute().ravel()
    array([ 7.5, 23.5])
    """
    options = dict(size=size, stride=stride, padding=padding, dilation=dilation,
                   ceil_mode=ceil_mode, count_include_pad=count_include_pad, strict=strict,
                   layout=layout)
    return _per_batch(_avg_pool2d, {"x": _as_dask(x, "x", 4)}, (), options, num_threads)


def max_pool2d_backward(dout, x, size, *, stride=None, padding=0, dilation=1, ceil_mode=False,
                        indices=None, layout="NCHW", num_threads=None):
    """Gradient of :func:`max_pool2d`, on Dask arrays chunked along the batch axis.

    Parameters
    ----------
    dout : dask.array.Array, shape (N, C, OH, OW) (or (N, OH, OW, C), see ``layout``)
        Upstream gradient, chunked along N only.
    x : dask.array.Array, shape (N, C, H, W) (or (N, H, W, C), see ``layout``)
        The forward input, chunked along N only (rechunked to ``dout``'s N
        blocks where they differ).
    size, stride, padding, dilation, ceil_mode, layout
        As in :func:`pyconv.max_pool2d_backward`.
    indices : dask.array.Array of int, the shape of ``dout``, optional
        The forward call's indices; None recomputes the maxima from ``x``.
    num_threads : int, optional
        OpenMP threads per task; see :func:`task_num_threads`.

    Returns
    -------
    dask.array.Array, the shape of ``x``
        Equal to :func:`pyconv.max_pool2d_backward` bit for bit.

    Raises
    ------
    ValueError, TypeError
        As :func:`max_pool2d` and :func:`pyconv.max_pool2d_backward`.

    Examples
    --------
    >>> import dask.array as da, pyconv.dask
    >>> x = da.from_array([[[[1, 5], [7, 3]]]], chunks=(1, 1, 2, 2))
    >>> pyconv.dask.max_pool2d_backward(da.ones((1, 1, 1, 1)), x, 2).compute()
    array([[[[0., 0.],
             [1., 0.]]]])
    """
    batched = {"dout": _as_dask(dout, "dout", 4), "x": _as_dask(x, "x", 4)}
    _check_batch_size(batched)
    options = dict(size=size, stride=stride, padding=padding, dilation=dilation,
                   ceil_mode=ceil_mode, layout=layout)
    if indices is None:
        return _per_batch(_max_pool2d_backward, batched, (), options, num_threads)
    batched["indices"] = _as_dask(indices, "indices", 4)
    _check_batch_size(batched)
    return _per_batch(_max_pool2d_backward_with_indices, batched, (), options, num_threads)


def _max_pool2d_backward_with_indices(dout, x, indices, **options):
    return _max_pool2d_backward(dout, x, indices=indices, **options)


def _check_batch_size(batched):
    sizes = {name: a.shape[0] for name, a in batched.items()}
    if len(set(sizes.values())) > 1:
        raise ValueError(f"the arrays must have the same batch size N, got {sizes}")


def _avg_pool2d_backward_block(dout, *, x_tail, **options):
    return _avg_pool2d_backward(dout, (dout.shape[0],) + x_tail, **options)


def avg_pool2d_backward(dout, x_shape, size, *, stride=None, padding=0, dilation=1,
                        ceil_mode=False, count_include_pad=True, layout="NCHW", num_threads=None):
    """Gradient of :func:`avg_pool2d`, on a Dask array chunked along the batch axis.

    Parameters
    ----------
    dout : dask.array.Array, shape (N, C, OH, OW) (or (N, OH, OW, C), see ``layout``)
        Upstream gradient, chunked along N only.
    x_shape : tuple of int
        The forward input's shape (N, C, H, W), or (N, H, W, C) with ``layout="NHWC"``.
    size, stride, padding, dilation, ceil_mode, count_include_pad, layout
        As in :func:`pyconv.avg_pool2d_backward`.
    num_threads : int, optional
        OpenMP threads per task; see :func:`task_num_threads`.

    Returns
    -------
    dask.array.Array of shape ``x_shape``
        Chunked as ``dout`` along N; equal to :func:`pyconv.avg_pool2d_backward`.

    Raises
    ------
    ValueError, TypeError
        As :func:`max_pool2d` and :func:`pyconv.avg_pool2d_backward`, or if
        ``x_shape`` is not 4-D or its N differs from ``dout``'s.

    Examples
    --------
    >>> import dask.array as da, pyconv.dask
    >>> pyconv.dask.avg_pool2d_backward(da.ones((1, 1, 1, 1)), (1, 1, 2, 2), 2).compute()
    array([[[[0.25, 0.25],
             [0.25, 0.25]]]])
    """
    dout = _as_dask(dout, "dout", 4)
    if not isinstance(x_shape, (tuple, list)) or len(x_shape) != 4 or x_shape[0] != dout.shape[0]:
        raise ValueError(f"x_shape must be the forward input's 4-D shape (N, C, H, W), or "
                         f"(N, H, W, C) with layout='NHWC', with dout's N = {dout.shape[0]}, "
                         f"got {x_shape!r}")
    options = dict(size=size, stride=stride, padding=padding, dilation=dilation,
                   ceil_mode=ceil_mode, count_include_pad=count_include_pad,
                   x_tail=tuple(x_shape[1:]), layout=layout)
    return _per_batch(_avg_pool2d_backward_block, {"dout": dout}, (), options, num_threads)


# --------------------------------------------------------------------------- neighbours

_SEARCHES = {"l1": _l1_search, "l2": _sqeuclidean_search}


class KNearestNeighbor(_KNearestNeighbor):
    """:class:`pyconv.KNearestNeighbor` on Dask arrays: lazy, blockwise, exact.

    Parameters
    ----------
    k : int, default 1
        Neighbours that vote.
    metric : {"l1", "l2"}, default "l1"
        As in :class:`pyconv.KNearestNeighbor`.
    split_every : int, optional
        Candidate lists per merge task; see :func:`l1_topk`.
    num_threads : int, optional
        OpenMP threads per task; see :func:`task_num_threads`.

    Attributes
    ----------
    classes_ : ndarray, shape (n_classes,)
        The distinct training labels, sorted.

    Raises
    ------
    ValueError
        If k is not positive or metric is unknown.
    TypeError
        If k is not an int.

    Notes
    -----
    ``fit`` keeps X lazy (a Dask array) and computes the labels ``y``, which
    are small: one per training row. ``kneighbors`` is :func:`l1_topk` (or,
    for "l2", the same tree of per-block squared-L2 searches); ``predict``
    votes per block of test rows, with the labels one graph node. For "l1"
    results equal the in-memory classifier exactly; for "l2" each block's
    matrix product may round differently from the in-memory blocks.

    Examples
    --------
    >>> import dask.array as da, pyconv.dask
    >>> X = da.from_array([[0, 0], [0, 1], [5, 5], [6, 5]], chunks=2)
    >>> knn = pyconv.dask.KNearestNeighbor(k=3).fit(X, [0, 0, 1, 1])
    >>> knn.predict(da.from_array([[0, 2], [5, 4]], chunks=1)).compute()
    array([0, 1])
    """

    def __init__(self, k=1, metric="l1", *, split_every=None, num_threads=None):
        super().__init__(k, metric, num_threads=_check_request(num_threads))
        self.split_every = split_every

    def fit(self, X, y):
        """Remember the training rows (lazily) and their labels.

        Parameters
        ----------
        X : dask.array.Array, shape (n_train, d)
        y : array_like or dask.array.Array, shape (n_train,)
            Labels of any sortable dtype; computed here.

        Returns
        -------
        KNearestNeighbor
            self.

        Raises
        ------
        ValueError
            If the shapes do not fit, or k exceeds n_train.
        """
        X = _as_dask(X, "X", 2)
        y = y.compute() if isinstance(y, da.Array) else y
        super().fit(_stand_in(X), y)
        self.X_ = X
        self._labels = da.from_array(self.y_, chunks=-1)
        return self

    def kneighbors(self, X):
        """The k nearest training rows of every row of X, as Dask arrays.

        Parameters
        ----------
        X : dask.array.Array, shape (n_test, d)

        Returns
        -------
        distances : dask.array.Array, shape (n_test, k)
            L1 distances, or squared L2 distances for ``metric="l2"``; ascending.
        indices : dask.array.Array of intp, shape (n_test, k)
            Rows of the training data.

        Raises
        ------
        ValueError
            If the model is not fitted or X has another number of columns.
        """
        self._check_fitted()
        return _topk(_as_dask(X, "X", 2), self.X_, self.k, _SEARCHES[self.metric],
                     self.split_every, self.num_threads)

    def predict(self, X):
        """The majority label among the k nearest training rows (ties: smallest label).

        Parameters
        ----------
        X : dask.array.Array, shape (n_test, d)

        Returns
        -------
        dask.array.Array, shape (n_test,)
            Labels, of the training labels' dtype, chunked as X's rows.
        """
        _, indices = self.kneighbors(X)
        codes = da.blockwise(functools.partial(vote, n_classes=len(self.classes_)), "i",
                             indices, "ij", self._labels, "l", concatenate=True,
                             dtype=np.intp, meta=np.empty((0,), np.intp))
        return codes.map_blocks(self.classes_.take, dtype=self.classes_.dtype,
                                meta=self.classes_[:0])
