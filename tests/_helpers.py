"""Tolerances and comparisons shared by the tests, stated once."""
import numpy as np

# Largest accepted error, relative to the largest magnitude in the expected
# result: kernels may sum in another order than the oracles.
RTOL = {np.dtype(np.float32): 2e-5, np.dtype(np.float64): 1e-12}
DTYPES = [np.float32, np.float64]


def assert_close(actual, expected, dtype=None):
    """Assert ``actual`` matches ``expected`` within the tolerance of ``dtype``."""
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    rtol = RTOL[np.dtype(dtype or actual.dtype)]
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    scale = max(np.max(np.abs(expected), initial=0.0), 1.0)
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * scale)


def run_python(code, cwd, **env):
    """Run ``code`` in a new Python, with ``env`` added to the environment, importing the
    pyconv this process imported (an installed one, or a build in place), never the
    source tree of the working directory: ``cwd`` should be a temporary folder."""
    import os
    import subprocess
    import sys

    import pyconv

    here = os.path.dirname(os.path.dirname(pyconv.__file__))
    path = os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-c", code], env=dict(os.environ, PYTHONPATH=path, **env),
                          capture_output=True, text=True, check=True, cwd=cwd, timeout=300)
