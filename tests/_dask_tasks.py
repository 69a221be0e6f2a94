"""Functions that tests run inside Dask tasks on a ``distributed`` cluster.

They live in their own top-level module because a worker unpickles a task's
function by importing its module: the test modules themselves are not
importable there when the suite runs against an installed pyconv, but this
directory is on ``sys.path`` (pytest's ``pythonpath``), which worker
processes inherit when they are spawned.
"""
import os
import tempfile
import time


def hold(block, folder, timeout):
    """Identity, once ``folder/go`` exists; first records this run as ``folder/run-<pid>-*``.

    Raises TimeoutError if ``go`` has not appeared after ``timeout`` seconds.
    """
    tempfile.mkstemp(prefix=f"run-{os.getpid()}-", dir=folder)
    deadline = time.monotonic() + timeout
    while not os.path.exists(os.path.join(folder, "go")):
        if time.monotonic() > deadline:
            raise TimeoutError("the test never released the held tasks")
        time.sleep(0.01)
    return block
