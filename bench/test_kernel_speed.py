"""pyconv's kernels beside their oracles and peers, on the shared table of cases.

``pytest bench/ --benchmark-only`` (add ``--bench-quick`` for the scaled-down
table, ``-k conv2d`` for one operation). Each case, dtype and operation is one
pytest-benchmark group, so pyconv sits beside its oracle and every installed
peer. Each result is checked against the oracle before it is timed.
"""
import numpy as np
import pytest

from pyconv import resolve_num_threads
from pyconv.benchmarks.peers import limit_threads, load
from pyconv.benchmarks.runner import as_numpy
from pyconv.benchmarks.table import OPS, select
from pyconv.benchmarks.timing import repeats_for, timed

DTYPES = ("float32", "float64")
BUDGET = 1.0  # seconds of timed calls per contender


def _entries(quick):
    """``(op, case, dtype, contender)`` for every run the table asks for."""
    selected, _ = select(quick=quick)
    params = []
    for op, case in selected:
        for dtype in DTYPES:
            for c in op.contenders:
                if c.skip(case, dtype) is None:
                    params.append(pytest.param(
                        (op, case, dtype, c), id=f"{op.name}-{case.name}-{dtype}-{c.label}"))
    params += [pytest.param(None, id=f"{op.name}-not-built", marks=pytest.mark.skip(
        reason=f"pyconv.{op.timed_function} is not in this build")) for op in OPS.values()
        if not op.available()]
    return params


def pytest_generate_tests(metafunc):
    if "entry" in metafunc.fixturenames:
        metafunc.parametrize("entry", _entries(metafunc.config.getoption("--bench-quick")))


_last_group = {}  # the inputs and oracle result of the group being run: its tests share them


def _inputs_and_expected(op, case, dtype, threads):
    """The inputs of a case and its oracle's result, computed once per group."""
    key = (op.name, case.name, dtype)
    if key not in _last_group:
        _last_group.clear()
        inputs = op.make_inputs(case.params, np.dtype(dtype), np.random.default_rng(0))
        oracles = [c for c in op.contenders
                   if c.role in ("oracle", "loops") and c.skip(case, dtype) is None]
        expected = as_numpy(oracles[0].bind(case, inputs, threads)()) if oracles else None
        _last_group[key] = inputs, expected
    return _last_group[key]


@pytest.fixture(scope="session")
def threads():
    n = resolve_num_threads(None)
    with limit_threads(n):
        yield n


def test_speed(entry, benchmark, threads):
    op, case, dtype, contender = entry
    if contender.peer and load(contender.peer) is None:
        pytest.skip(f"{contender.peer} is not installed")
    inputs, expected = _inputs_and_expected(op, case, dtype, threads)
    call = contender.bind(case, inputs, threads)
    first, result = timed(call)
    if expected is not None or contender.role not in ("oracle", "loops"):
        err = op.check(as_numpy(result), expected, inputs, np.dtype(dtype))
        assert err <= 1.0, f"{contender.label} mismatches the oracle: {err:.3g}× the tolerance"
    del result
    benchmark.group = f"{op.name} {case.name} {dtype} ({op.unit}: {op.work_doc})"
    benchmark.extra_info.update(work=op.work(case.params, np.dtype(dtype)), unit=op.unit, call=contender.call)
    benchmark.pedantic(call, rounds=max(1, repeats_for(first, BUDGET)), warmup_rounds=1)
