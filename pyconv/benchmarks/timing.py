"""The one timer of the benchmarks: warm-up, then blocks of repeated calls, in turns.

Contenders are timed a block at a time, not call by call in turns: libraries
with their own OpenMP runtimes (torch, faiss, pyconv) leave worker threads
spinning for tens of milliseconds after a call, which would steal the cores
from the next library's first calls. The warm-up outlasts that. A case's
blocks come in ``ROUNDS`` turns over its contenders, so that a spell of load
on a shared machine is shared out among them rather than landing on one.
"""
import gc
import math
import time

WARM_UP_SECONDS = 0.1
ROUNDS = 3
SLOW_SECONDS = 1.0
# "wall": elapsed time; "thread": CPU time of the calling thread, which other
# processes' load barely moves (meaningful on one thread only: the CPU time of
# other threads is not counted)
CLOCKS = {"wall": time.perf_counter, "thread": time.thread_time}


def repeats_for(first_seconds, budget):
    """How many timed calls to make after a first call that took ``first_seconds``.

    Enough to fill ``budget`` seconds, at least 3, at most 100; none after a
    call of over ``SLOW_SECONDS``: that first call is then the one sample (a
    warm-up changes nothing measurable in a call that long, and the slowest
    oracles take a minute).

    >>> repeats_for(0.01, 0.1), repeats_for(0.5, 0.1), repeats_for(2.0, 1.0)
    (10, 3, 0)
    """
    if first_seconds >= SLOW_SECONDS:
        return 0
    return int(min(100, max(3, math.ceil(budget / max(first_seconds, 1e-9)))))


def timed(call, clock=time.perf_counter):
    """Run ``call`` once; return (seconds by ``clock``, result)."""
    start = clock()
    result = call()
    return clock() - start, result


def time_block(call, repeats, warm_up=WARM_UP_SECONDS, clock=time.perf_counter):
    """Call ``call`` for ``warm_up`` seconds untimed, then ``repeats`` times timed.

    Returns
    -------
    list of float
        Seconds (by ``clock``) of each timed call.
    """
    end = time.perf_counter() + warm_up
    while time.perf_counter() < end:
        call()
    enabled = gc.isenabled()
    gc.disable()  # as timeit does: a collection inside one call is noise
    try:
        return [timed(call, clock)[0] for _ in range(repeats)]
    finally:
        if enabled:
            gc.enable()


def time_in_turns(calls, firsts, budget, clock=time.perf_counter, before=None):
    """Time every call in ``ROUNDS`` turns of one block each; the samples of each call.

    Parameters
    ----------
    calls : list of callable
        Zero-argument calls, each already run once (checked) and taking
        ``firsts[i]`` seconds then.
    firsts : list of float
        Seconds of each call's first run; it counts as the first turn's
        warm-up, and as the one sample of a call over ``SLOW_SECONDS``.
    budget : float
        Seconds of timed calls to aim for per call (see :func:`repeats_for`).
    clock : callable
        The timer (one of ``CLOCKS``).
    before : callable, optional
        Called with a call's index before each of its blocks (progress).

    Returns
    -------
    list of list of float
        Each call's timed seconds: about ``repeats_for(first, budget)`` of them
        (at least one a turn), or ``[first]`` for a call over ``SLOW_SECONDS``.
    """
    times = [[] if repeats_for(first, budget) else [first] for first in firsts]
    for turn in range(ROUNDS):
        for i, (call, first) in enumerate(zip(calls, firsts)):
            share = -(-repeats_for(first, budget) // ROUNDS)  # at least one call a turn
            if not share:
                continue
            if before is not None:
                before(i)
            # each block warms up first (the checked call counts in the first turn),
            # except after calls as long as the warm-up itself
            warm_up = min(WARM_UP_SECONDS, budget) - (first if turn == 0 else 0)
            times[i] += time_block(call, share, warm_up if first < WARM_UP_SECONDS else 0, clock)
    return times
