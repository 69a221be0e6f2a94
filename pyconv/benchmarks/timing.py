"""Timing: warm-up calls, then a block of repeated calls, one contender at a time.

Contenders are timed a block at a time, not call by call in turns: libraries
with their own OpenMP runtimes (torch, faiss, pyconv) leave worker threads
spinning for tens of milliseconds after a call, which would steal the cores
from the next library's first calls. The warm-up outlasts that. A case's
blocks come in ROUNDS turns over its contenders, so that a spell of load on a
shared machine (on a 2-core guest, one contender's time once grew 2.4x for a
whole block) is shared out among them rather than landing on one.
"""
import gc
import math
import time

WARM_UP_SECONDS = 0.1
ROUNDS = 3


SLOW_SECONDS = 1.0


def repeats_for(first_seconds, budget):
    """How many timed calls to make after a first call that took ``first_seconds``.

    Enough to fill ``budget`` seconds, at least 3, at most 100; none after a
    call of over ``SLOW_SECONDS``: that first call is then the one sample (a
    warm-up changes nothing measurable in a call that long, and the slowest
    oracles take a minute).
    """
    if first_seconds >= SLOW_SECONDS:
        return 0
    return int(min(100, max(3, math.ceil(budget / max(first_seconds, 1e-9)))))


def timed(call):
    """Run ``call`` once; return (seconds, result)."""
    start = time.perf_counter()
    result = call()
    return time.perf_counter() - start, result


def time_block(call, repeats, warm_up=WARM_UP_SECONDS):
    """Call ``call`` for ``warm_up`` seconds untimed, then ``repeats`` times timed.

    Returns
    -------
    list of float
        Seconds of each timed call.
    """
    end = time.perf_counter() + warm_up
    while time.perf_counter() < end:
        call()
    enabled = gc.isenabled()
    gc.disable()  # as timeit does: a collection inside one call is noise
    try:
        return [timed(call)[0] for _ in range(repeats)]
    finally:
        if enabled:
            gc.enable()
