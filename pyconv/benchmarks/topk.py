"""Benchmark of ``pyconv.l1_topk``: the shapes of ``l1_distances`` at k = 10.

The oracle sorts the full matrix of ``l1_one_loop`` (stable, so ties go to the
smaller index). Peers: ``faiss.knn(METRIC_L1)`` (float32 only),
``torch.topk`` of ``torch.cdist(p=1)``, and scikit-learn's brute-force
``NearestNeighbors(metric='manhattan', n_jobs=threads)``, fitted before timing.
"""
import numpy as np

import pyconv
from pyconv import reference

from .l1 import CASES as L1_CASES, describe as l1_describe, make_inputs, quick, work
from .peers import load
from .spec import Case, Contender, Op, error_ratio, float32_only, tiny_only

CASES = tuple(Case("l1_topk", c.name, dict(c.params, k=5 if c.tiny else 10), tiny=c.tiny)
              for c in L1_CASES)


def describe(p):
    """``n_x×n_y d=D k=K``."""
    return f"{l1_describe(p)} k={p['k']}"


def _smallest(D, k):
    """The k smallest of each row, sorted, ties to the smaller index."""
    idx = np.argsort(D, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(D, idx, axis=1), idx


def check(actual, expected, inputs, dtype):
    """The k distances against the oracle's, and each index's recomputed distance too.

    Indices may differ from the oracle's only where distances tie, so each
    returned index is checked by its own distance rather than by value.
    """
    distances, indices = actual
    want = expected[0]
    X, Y = inputs["X"].astype(np.float64), inputs["Y"].astype(np.float64)
    rows = np.arange(X.shape[0])[:, None]
    own = np.abs(X[rows] - Y[np.asarray(indices, dtype=np.int64)]).sum(axis=2)
    return max(error_ratio(distances, want, dtype), error_ratio(own, want, dtype))


def _torch(case, inp, threads):
    torch = load("torch")
    X, Y, k = torch.from_numpy(inp["X"]), torch.from_numpy(inp["Y"]), case.params["k"]
    return lambda: torch.topk(torch.cdist(X, Y, p=1), k, dim=1, largest=False, sorted=True)


def _sklearn(case, inp, threads):
    from sklearn.neighbors import NearestNeighbors

    nn = NearestNeighbors(n_neighbors=case.params["k"], algorithm="brute", metric="manhattan",
                          n_jobs=threads).fit(inp["Y"])
    return lambda: nn.kneighbors(inp["X"])


def _faiss(case, inp, threads):
    faiss = load("faiss")
    return lambda: faiss.knn(inp["X"], inp["Y"], case.params["k"], metric=faiss.METRIC_L1)


CONTENDERS = (
    Contender("pyconv", "pyconv", "pyconv.l1_topk(X, Y, k, num_threads=threads)",
              lambda case, inp, threads: lambda: pyconv.l1_topk(
                  inp["X"], inp["Y"], case.params["k"], num_threads=threads)),
    Contender("oracle", "oracle", "stable argsort of pyconv.reference.l1_one_loop(X, Y)",
              lambda case, inp, threads: lambda: _smallest(
                  reference.l1_one_loop(inp["X"], inp["Y"]), case.params["k"])),
    Contender("loops", "loops", "stable argsort of pyconv.reference.l1_two_loops(X, Y)",
              lambda case, inp, threads: lambda: _smallest(
                  reference.l1_two_loops(inp["X"], inp["Y"]), case.params["k"]),
              skip=tiny_only),
    Contender("torch", "peer", "torch.topk(torch.cdist(X, Y, p=1), k, largest=False)", _torch,
              peer="torch"),
    Contender("sklearn", "peer", "sklearn.neighbors.NearestNeighbors(n_neighbors=k, "
              "algorithm='brute', metric='manhattan', n_jobs=threads).fit(Y).kneighbors(X)",
              _sklearn, peer="sklearn"),
    Contender("faiss", "peer", "faiss.knn(X, Y, k, metric=faiss.METRIC_L1)", _faiss,
              peer="faiss", skip=float32_only),
)

OPS = (
    Op("l1_topk", "l1", "G pairs/s", work, "n_x·n_y·d / s", make_inputs, quick, describe, check,
       CASES, CONTENDERS),
)
