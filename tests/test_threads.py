import os
import subprocess
import sys

import pytest
from threadpoolctl import threadpool_limits

import pyconv


@pytest.fixture(autouse=True)
def restore_global_threads():
    yield
    pyconv.set_num_threads(None)


def test_openmp_is_on():
    """Fails when the build silently lost OpenMP (scikit-learn #29694, scikit-image #7800).

    Set PYCONV_DISABLE_OPENMP=1 for a build without OpenMP on purpose.
    """
    if os.environ.get("PYCONV_DISABLE_OPENMP"):
        pytest.skip("built without OpenMP on purpose (PYCONV_DISABLE_OPENMP)")
    assert pyconv.openmp_enabled()
    assert pyconv.build_info()["openmp"] is True


def test_resolution_order():
    all_threads = pyconv.get_num_threads()
    assert all_threads >= 1
    pyconv.set_num_threads(3)
    assert pyconv.get_num_threads() == 3
    with pyconv.num_threads(2):
        assert pyconv.get_num_threads() == 2
        assert pyconv.resolve_num_threads(5) == 5
    assert pyconv.get_num_threads() == 3
    pyconv.set_num_threads(None)
    assert pyconv.get_num_threads() == all_threads


def test_negative_counts_back_from_all():
    all_threads = pyconv.get_num_threads()
    assert pyconv.resolve_num_threads(-1) == all_threads
    assert pyconv.resolve_num_threads(-all_threads - 5) == 1


@pytest.mark.parametrize("bad, error", [(0, ValueError), (1.5, TypeError), (True, TypeError)])
def test_bad_thread_counts(bad, error):
    with pytest.raises(error, match="num_threads"):
        pyconv.resolve_num_threads(bad)
    with pytest.raises(error):
        pyconv.set_num_threads(bad)


def test_threadpoolctl_limits_pyconv():
    with threadpool_limits(1, user_api="openmp"):
        assert pyconv.get_num_threads() == 1


def test_omp_num_threads_is_honoured(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", "import pyconv; print(pyconv.get_num_threads())"],
                         env=env, capture_output=True, text=True, check=True, cwd=tmp_path)
    assert out.stdout.strip() == "1"
