"""Run the table: check every contender against the oracle, then time it."""
import numpy as np

from .peers import limit_threads, load
from .timing import ROUNDS, WARM_UP_SECONDS, repeats_for, time_block, timed


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


def run_case(op, case, dtype, threads, budget, progress=None):
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

    Returns
    -------
    dict
        The case, its work and one entry per contender, in the order they ran
        (the oracle first: the others are checked against its result).
        ``status`` is ``"ok"`` (timed), ``"mismatch"`` or ``"error"``
        (reported, not timed) or ``"skipped"`` (with the reason); timed
        entries carry ``times``, ``median`` (seconds) and ``throughput``;
        checked ones ``first`` (seconds of the checked call, set-up included)
        and ``error_ratio`` (the error over the tolerance).
    """
    inputs = op.make_inputs(case.params, np.dtype(dtype), np.random.default_rng(0))
    work = op.work(case.params, np.dtype(dtype))
    entries, expected, checked = [], None, []
    for contender in _oracle_first(op.contenders):
        entry = dict(label=contender.label, role=contender.role, call=contender.call)
        entries.append(entry)
        reason = contender.skip(case, dtype)
        if reason is None and contender.peer and load(contender.peer) is None:
            reason = f"{contender.peer} is not installed"
        if reason is not None:
            entry.update(status="skipped", detail=reason)
            continue
        if progress is not None:
            progress.set_postfix_str(f"{op.name} {case.name} {dtype}: {contender.label}")
        try:
            call = contender.bind(case, inputs, threads)
            first, result = timed(call)
            result = as_numpy(result)
            if expected is None and contender.role in ("oracle", "loops"):
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
        entry.update(status="ok", times=[] if repeats_for(first, budget) else [first])
        checked.append((entry, call))
    # the timed calls in ROUNDS turns of one block per contender, so that a noisy
    # spell of the machine falls on every contender's samples, not on one's; each
    # block warms up first (the checked call counts in the first turn), except after
    # calls as long as the warm-up itself
    for turn in range(ROUNDS):
        for entry, call in checked:
            first = entry["first"]
            share = -(-repeats_for(first, budget) // ROUNDS)  # at least one call a turn
            warm_up = min(WARM_UP_SECONDS, budget) - (first if turn == 0 else 0)
            if progress is not None:
                progress.set_postfix_str(f"{op.name} {case.name} {dtype}: {entry['label']}")
            if share:
                entry["times"] += time_block(call, share,
                                             warm_up if first < WARM_UP_SECONDS else 0)
    for entry, _ in checked:
        median = float(np.median(entry["times"]))
        entry.update(median=median, throughput=work / median)
    return dict(op=op.name, family=op.family, case=case.name, tiny=case.tiny, dtype=dtype,
                params=case.params, shape=op.describe(case.params), unit=op.unit,
                work=work, work_doc=op.work_doc, contenders=entries)


def run(selected, dtypes, threads, budget, progress=None):
    """Run ``run_case`` over every selected (op, case) and dtype, all libraries on ``threads``."""
    records = []
    with limit_threads(threads):
        for op, case in selected:
            for dtype in dtypes:
                records.append(run_case(op, case, dtype, threads, budget, progress))
                if progress is not None:
                    progress.update()
    return records
