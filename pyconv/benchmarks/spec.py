"""What a benchmark case is: an operation, its cases, the contenders that run it."""
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

import pyconv

# Largest accepted error, relative to the largest magnitude of the expected
# result. Looser than the test suite's: this check catches a wrong result
# before it is timed; the tests pin the last bits.
TOLERANCE = {np.dtype(np.float32): 1e-4, np.dtype(np.float64): 1e-10}


@dataclass(frozen=True)
class Case:
    """One benchmark case: a named shape of one operation.

    ``params`` holds the shapes and options (JSON-able); ``tiny`` cases are
    small enough for the plain-Python loop oracles.
    """

    op: str
    name: str
    params: dict
    tiny: bool = False


@dataclass(frozen=True)
class Contender:
    """One implementation of an operation.

    ``bind(case, inputs, threads)`` does the set-up (conversions, layouts) and
    returns the zero-argument call that is timed. ``skip(case, dtype)`` says
    why the contender does not run a case, or returns None. ``peer`` is the
    module a peer needs (``"torch"``, ``"scipy"``, ``"sklearn"``, ``"faiss"``).
    ``role`` is ``"pyconv"``, ``"oracle"`` (vectorised NumPy), ``"loops"``
    (plain-Python loops, tiny cases only) or ``"peer"``.
    """

    label: str
    role: str
    call: str
    bind: Callable
    peer: Optional[str] = None
    skip: Callable = field(default=lambda case, dtype: None)


def tiny_only(case, dtype):
    """Skip rule of the plain-Python loop oracles."""
    return None if case.tiny else "plain-Python loops: tiny cases only"


def float32_only(case, dtype):
    """Skip rule of peers without float64 kernels."""
    return None if np.dtype(dtype) == np.float32 else "float32 only"


@dataclass(frozen=True)
class Op:
    """An operation pyconv times: its cases, how to build inputs, measure and check it.

    ``name`` names the operation in tables and saved results; ``function`` is the
    pyconv function it times (``pyconv.<function>``), ``name`` unless given
    (``conv2d_backward_dx`` times ``conv2d_backward``). ``work(params, dtype)``
    is the amount of work of one call in the unit's numerator (GFLOP, GB or
    G pairs), so throughput is ``work / seconds``; ``work_doc`` says how it is
    counted. ``make_inputs(params, dtype, rng)`` returns a dict of arrays;
    ``quick(params)`` the scaled-down params of ``--quick``; ``describe(params)``
    a short shape for tables.
    ``check(actual, expected, inputs, dtype)`` returns the error relative to
    ``TOLERANCE[dtype]`` (> 1 is a mismatch); ``expected`` is the oracle's
    result, None when no oracle runs the case.
    ``gemm``: the unit is GFLOP/s, shown as a share of NumPy's matmul too
    (``% GEMM``). ``traffic(params, dtype)``: the bytes one call of pyconv's
    kernel reads plus those it writes, shown as a share of a copy's
    bandwidth (``% copy``); None (or returning None) where that share is not
    shown.
    """

    name: str
    family: str
    unit: str
    work: Callable
    work_doc: str
    make_inputs: Callable
    quick: Callable
    describe: Callable
    check: Callable
    cases: tuple
    contenders: tuple
    gemm: bool = False
    traffic: Optional[Callable] = None
    function: Optional[str] = None

    @property
    def timed_function(self):
        """The name of the pyconv function this operation times."""
        return self.function or self.name

    def available(self):
        """Whether this build of pyconv has the function this operation times."""
        return hasattr(pyconv, self.timed_function)


def _max_abs(a):
    return float(np.max(np.abs(a), initial=0.0)) if np.size(a) else 0.0


def error_ratio(actual, expected, dtype):
    """Max error of ``actual`` against ``expected`` over the tolerance of ``dtype``.

    Tuples are compared item by item (the worst counts). NaN or a shape
    difference counts as infinitely wrong; no expected result (None) is an
    error, so an unchecked result is never timed.
    """
    if expected is None:
        raise ValueError("no oracle result to check against: not timed")
    if isinstance(expected, tuple):
        return max(error_ratio(a, e, dtype) for a, e in zip(actual, expected))
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    if actual.shape != expected.shape:
        return float("inf")
    diff = np.abs(actual - expected)
    if np.isnan(diff).any():
        return float("inf")
    scale = max(_max_abs(expected), 1.0)
    return _max_abs(diff) / (scale * TOLERANCE[np.dtype(dtype)])
