"""Run the table: check every contender against the oracle, then time it."""
import contextlib
import time

import numpy as np

from . import baselines
from .peers import limit_threads, load
from .timing import time_in_turns, timed


def as_numpy(result):
    """A result as NumPy arrays: tensors converted, tuples kept as tuples."""
    if isinstance(result, (tuple, list)):
        return tuple(as_numpy(r) for r in result)
    if hasattr(result, "detach"):  # a torch tensor
        return result.detach().numpy()
    return np.asarray(result)


def _oracle_first(contenders):
    order = {"oracle": 0, "loops": 1}
    return sorted(contenders, key=lambda c: order.get(c.role, 2))


def chosen(label, names):
    """Whether ``--contenders names`` keeps the contender ``label``: all if None.

    A name keeps the contender of that label or with that word in its label:
    ``auto`` keeps ``pyconv auto``, ``pyconv`` every pyconv kernel.

    >>> chosen("pyconv auto", ["auto", "torch"]), chosen("torch-cl", ["auto", "torch"])
    (True, False)
    """
    return names is None or any(n == label or n in label.split() for n in names)


def run_case(op, case, dtype, threads, budget, progress=None, clock=time.perf_counter,
             gemm=None, names=None):
    """Check and time every contender on one case.

    Parameters
    ----------
    op : Op
    case : Case
    dtype : str
        ``"float32"`` or ``"float64"``.
    threads : int
        Threads every contender may use.
    budget : float
        Seconds of timed calls to aim for per contender (see ``repeats_for``).
    progress : tqdm-like, optional
        Its postfix names the contender running.
    clock : callable
        The timer, one of ``timing.CLOCKS``.
    gemm : dict, optional
        The matmul of this dtype (:func:`baselines.matmul`), for ``% GEMM``
        when ``op.gemm``.
    names : list of str, optional
        Time only the contenders :func:`chosen` keeps; the oracle still runs
        once, as the check.

    Returns
    -------
    dict
        The case, its work and one entry per contender, in the order they ran
        (the oracle first: the others are checked against its result).
        ``status`` is ``"ok"`` (timed), ``"mismatch"`` or ``"error"``
        (reported, not timed) or ``"skipped"`` (with the reason); timed
        entries carry ``times``, ``median`` (seconds) and ``throughput``;
        checked ones ``first`` (seconds of the checked call, set-up included)
        and ``error_ratio`` (the error over the tolerance). ``baselines``
        holds the matmul and copy the kernel is measured against (see
        :mod:`baselines`), and each timed pyconv entry its ``share`` of each
        (its rate over the baseline's).
    """
    inputs = op.make_inputs(case.params, np.dtype(dtype), np.random.default_rng(0))
    work = op.work(case.params, np.dtype(dtype))
    entries, expected, checked = [], None, []

    def show(label):
        if progress is not None:
            progress.set_postfix_str(f"{op.name} {case.name} {dtype}: {label}")

    for contender in _oracle_first(op.contenders):
        entry = dict(label=contender.label, role=contender.role, call=contender.call)
        entries.append(entry)
        is_oracle = contender.role in ("oracle", "loops") and expected is None
        reason = contender.skip(case, dtype)
        if reason is None and not chosen(contender.label, names) and not is_oracle:
            reason = "not chosen (--contenders)"  # and its module not even imported
        if reason is None and contender.peer and load(contender.peer) is None:
            reason = f"{contender.peer} is not installed"
        if reason is not None:
            entry.update(status="skipped", detail=reason)
            continue
        show(contender.label)
        try:
            call = contender.bind(case, inputs, threads)
            first, result = timed(call, clock)
            result = as_numpy(result)
            if is_oracle:
                expected, err = result, 0.0
            else:
                err = op.check(result, expected, inputs, np.dtype(dtype))
        except Exception as exc:  # reported in the table, never raised: one bad call is one cell
            entry.update(status="error", detail=f"{type(exc).__name__}: {exc}")
            continue
        entry.update(first=first, error_ratio=err)
        if not err <= 1.0:
            entry.update(status="mismatch",
                         detail=f"error {err:.3g}× the tolerance against the oracle")
            continue
        del result
        if not chosen(contender.label, names):
            entry.update(status="skipped", detail="the check only, not timed (--contenders)")
            continue
        entry.update(status="ok")
        checked.append((entry, call))
    record_baselines = {}
    if op.gemm and gemm is not None:
        record_baselines["gemm"] = {k: gemm[k] for k in ("call", "throughput")}
    traffic = op.traffic(case.params, np.dtype(dtype)) if op.traffic else None
    calls = [call for _, call in checked]
    labels = [entry["label"] for entry, _ in checked]
    firsts = [entry["first"] for entry, _ in checked]
    # the copy is timed in turns with the contenders, so that it sees the same machine
    with baselines.copy_call(traffic, threads) if traffic else contextlib.nullcontext() as copy:
        if traffic:
            calls.append(copy)
            labels.append("copy")
            firsts.append(timed(copy, clock)[0])
        times = time_in_turns(calls, firsts, budget, clock, before=lambda i: show(labels[i]))
    for (entry, _), samples in zip(checked, times):
        median = float(np.median(samples))
        entry.update(times=samples, median=median, throughput=work / median)
    if traffic:
        median = float(np.median(times[-1]))
        record_baselines["copy"] = dict(
            call=f"np.copyto of {traffic // 2} bytes on {threads} thread(s)", bytes=traffic,
            times=times[-1], median=median, throughput=traffic / median / 1e9)
    for entry, _ in checked:
        if entry["role"] != "pyconv":
            continue
        rates = dict(gemm=entry["throughput"], copy=traffic and traffic / entry["median"] / 1e9)
        entry["share"] = {name: rates[name] / base["throughput"]
                          for name, base in record_baselines.items()}
    return dict(op=op.name, family=op.family, case=case.name, tiny=case.tiny, dtype=dtype,
                params=case.params, shape=op.describe(case.params), unit=op.unit,
                work=work, work_doc=op.work_doc, contenders=entries,
                baselines=record_baselines)


def run(selected, dtypes, threads, budget, progress=None, clock=time.perf_counter,
        matmul_size=baselines.MATMUL_SIZE, names=None):
    """Run ``run_case`` over every selected (op, case) and dtype, all libraries on ``threads``.

    Returns
    -------
    records : list of dict
        One per case and dtype (see :func:`run_case`).
    matmul : dict
        ``{dtype: baselines.matmul(...)}`` for the dtypes of cases that show
        ``% GEMM``, measured first, on the same threads.
    """
    records, matmul = [], {}
    with limit_threads(threads):
        for dtype in dtypes:
            if any(op.gemm for op, _ in selected):
                if progress is not None:
                    progress.set_postfix_str(f"matmul {dtype}")
                matmul[dtype] = baselines.matmul(dtype, budget, matmul_size, clock)
        for op, case in selected:
            for dtype in dtypes:
                records.append(run_case(op, case, dtype, threads, budget, progress, clock,
                                        matmul.get(dtype), names))
                if progress is not None:
                    progress.update()
    return records, matmul
