"""Benchmark of ``pyconv.l1_distances`` on the shapes of a k-NN search.

Peers: ``torch.cdist(p=1)``, SciPy's ``cdist('cityblock')`` (float64 inside),
scikit-learn's ``pairwise_distances(metric='manhattan', n_jobs=threads)`` and
faiss's ``pairwise_distances(METRIC_L1)`` (float32 only).
"""
import numpy as np

import pyconv
from pyconv import reference

from .peers import load
from .spec import Case, Contender, Op, error_ratio, float32_only, tiny_only

CASES = (
    Case("l1_distances", "tiny", dict(n_x=40, n_y=120, d=33), tiny=True),
    Case("l1_distances", "cifar10_knn", dict(n_x=500, n_y=5000, d=3072)),
    Case("l1_distances", "square_d128", dict(n_x=2000, n_y=2000, d=128)),
    Case("l1_distances", "large_d32", dict(n_x=10000, n_y=10000, d=32)),
)


def make_inputs(p, dtype, rng):
    """X (n_x, d) and Y (n_y, d), standard normal."""
    return dict(X=rng.standard_normal((p["n_x"], p["d"])).astype(dtype),
                Y=rng.standard_normal((p["n_y"], p["d"])).astype(dtype))


def work(p, dtype):
    """G pairs: n_x·n_y·d (one absolute difference a pair and dimension)."""
    return p["n_x"] * p["n_y"] * p["d"] / 1e9


def quick(p):
    """A tenth of the rows of X and of Y (a hundredth of the work)."""
    return dict(p, n_x=max(1, p["n_x"] // 10), n_y=max(1, p["n_y"] // 10))


def describe(p):
    """``n_x×n_y d=D``."""
    return f"{p['n_x']}×{p['n_y']} d={p['d']}"


def check(actual, expected, inputs, dtype):
    """Error against the oracle's matrix."""
    return error_ratio(actual, expected, dtype)


def _torch(case, inp, threads):
    torch = load("torch")
    X, Y = torch.from_numpy(inp["X"]), torch.from_numpy(inp["Y"])
    return lambda: torch.cdist(X, Y, p=1)


def _scipy(case, inp, threads):
    from scipy.spatial.distance import cdist

    return lambda: cdist(inp["X"], inp["Y"], "cityblock")


def _sklearn(case, inp, threads):
    from sklearn.metrics import pairwise_distances

    return lambda: pairwise_distances(inp["X"], inp["Y"], metric="manhattan", n_jobs=threads)


def _faiss(case, inp, threads):
    faiss = load("faiss")
    return lambda: faiss.pairwise_distances(inp["X"], inp["Y"], faiss.METRIC_L1)


CONTENDERS = (
    Contender("pyconv", "pyconv", "pyconv.l1_distances(X, Y, num_threads=threads)",
              lambda case, inp, threads: lambda: pyconv.l1_distances(
                  inp["X"], inp["Y"], num_threads=threads)),
    Contender("oracle", "oracle", "pyconv.reference.l1_one_loop(X, Y)",
              lambda case, inp, threads: lambda: reference.l1_one_loop(inp["X"], inp["Y"])),
    Contender("loops", "loops", "pyconv.reference.l1_two_loops(X, Y)",
              lambda case, inp, threads: lambda: reference.l1_two_loops(inp["X"], inp["Y"]),
              skip=tiny_only),
    Contender("torch", "peer", "torch.cdist(X, Y, p=1)", _torch, peer="torch"),
    Contender("scipy", "peer", "scipy.spatial.distance.cdist(X, Y, 'cityblock')", _scipy,
              peer="scipy"),
    Contender("sklearn", "peer",
              "sklearn.metrics.pairwise_distances(X, Y, metric='manhattan', n_jobs=threads)",
              _sklearn, peer="sklearn"),
    Contender("faiss", "peer", "faiss.pairwise_distances(X, Y, faiss.METRIC_L1)", _faiss,
              peer="faiss", skip=float32_only),
)

OPS = (
    Op("l1_distances", "l1", "G pairs/s", work, "n_x·n_y·d / s", make_inputs, quick, describe,
       check, CASES, CONTENDERS),
)
