"""The benchmark table: every operation's cases, and the selection a run makes."""
from dataclasses import replace

from . import conv, l1, pool, topk

OPS = {op.name: op for op in conv.OPS + pool.OPS + l1.OPS + topk.OPS}
FAMILIES = sorted({op.family for op in OPS.values()})


def select(only=None, names=None, quick=False):
    """The (op, case) pairs a run times, and a line for each operation left out.

    Parameters
    ----------
    only : str, optional
        A family (``"conv"``, ``"pool"`` or ``"l1"``); None means all.
    names : list of str, optional
        Keep the cases whose name contains one of these.
    quick : bool
        Scale every case down (tiny cases stay as they are).

    Returns
    -------
    selected : list of (Op, Case)
    left_out : list of str
        Operations this build of pyconv does not have.
    """
    selected, left_out = [], []
    for op in OPS.values():
        if only is not None and op.family != only:
            continue
        if not op.available():
            left_out.append(f"{op.name}: pyconv.{op.timed_function} is not in this build, not timed")
            continue
        for case in op.cases:
            if names and not any(n in case.name for n in names):
                continue
            if quick and not case.tiny:
                case = replace(case, params=op.quick(case.params))
            selected.append((op, case))
    return selected, left_out
