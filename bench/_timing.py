"""Interleaved timing shared by the benchmark scripts in this folder."""
import time

import numpy as np


def median_times(calls, repeats, clock=time.perf_counter):
    """Median seconds of each callable in ``calls`` (a dict), after one warm-up call each.

    The callables take turns, one call each per round for ``repeats`` rounds, so
    that a shared machine's changing load falls on all of them alike. ``clock``
    is the timer (``time.thread_time`` measures the calling thread's CPU time).
    """
    for f in calls.values():
        f()  # warm up: allocations, thread pools
    times = {name: [] for name in calls}
    for _ in range(repeats):
        for name, f in calls.items():
            start = clock()
            f()
            times[name].append(clock() - start)
    return {name: float(np.median(t)) for name, t in times.items()}
