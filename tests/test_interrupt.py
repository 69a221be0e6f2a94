"""Ctrl-C stops a long kernel call: KeyboardInterrupt within 0.5 s of SIGINT.

Each test runs ``_interrupt_worker.py`` in a child process, waits until it has started
the long call (a few seconds uninterrupted on two cores), sends SIGINT and reads what the
child reports: how the call ended, then whether a small call of the same kernel in the
same process still equals its oracle.
"""
import os
import signal
import subprocess
import sys
import time

import pytest

from _interrupt_worker import CASES

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="no SIGINT to send")

WORKER = os.path.join(os.path.dirname(__file__), "_interrupt_worker.py")
LATENCY = 0.5  # seconds from the signal to the KeyboardInterrupt
RUNNING = 0.3  # seconds the call runs before the signal


def _interrupt(case, mode):
    """Start the child, SIGINT it RUNNING seconds into the call; (its first report,
    seconds from the signal to that report, its remaining reports, return code)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    child = subprocess.Popen([sys.executable, WORKER, case, mode], stdout=subprocess.PIPE,
                             text=True, env=env)
    try:
        assert child.stdout.readline().strip() == "ready"
        time.sleep(RUNNING)
        sent = time.perf_counter()
        child.send_signal(signal.SIGINT)
        first = child.stdout.readline().strip()
        latency = time.perf_counter() - sent
        rest = child.stdout.read().split("\n")
        return first, latency, [line for line in rest if line], child.wait(timeout=60)
    finally:
        child.kill()
        child.wait()


@pytest.mark.parametrize("case", sorted(CASES))
def test_sigint_raises_keyboard_interrupt_promptly(case):
    first, latency, rest, code = _interrupt(case, "main")
    assert (first, rest, code) == ("interrupted", ["ok"], 0)  # and the next call is correct
    assert latency < LATENCY


@pytest.mark.parametrize("case", ["l1_topk", "conv2d_im2col", "max_pool2d"])
def test_user_handler_that_returns_gets_the_full_result(case):
    # the handler runs once; the call then starts over and returns its result
    first, _, rest, code = _interrupt(case, "handler")
    assert (first, rest, code) == ("handled 1", ["ok"], 0)


@pytest.mark.parametrize("case", ["l1_distances", "conv2d_backward_im2col"])
def test_call_in_another_thread_completes(case):
    # signals go to the main thread: it raises in join(), the worker thread's call returns
    first, latency, rest, code = _interrupt(case, "thread")
    assert (first, rest, code) == ("main interrupted", ["returned", "ok"], 0)
    assert latency < LATENCY


def test_default_action_still_kills():
    # with SIGINT's default action (no Python handler) nothing is installed over it
    first, _, _, code = _interrupt("l1_topk", "default")
    assert first == "" and code == -signal.SIGINT
