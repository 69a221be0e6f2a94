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
