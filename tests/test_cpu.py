"""pyconv.cpu: one CPU level for every kernel, lowered by PYCONV_DISABLE_CPU_FEATURES."""

import numpy as np
import pytest

import pyconv
from pyconv import cpu

from _helpers import run_python


def test_cpu_features():
    info = pyconv.cpu_features()
    assert info["detected"][0] == "portable"
    assert info["detected"] == list(cpu.LEVELS[:len(info["detected"])])
    assert info["used"] == cpu.available()[-1]


def test_use_level_sets_every_kernel_and_restores(cpu_level):
    assert pyconv.cpu_features()["used"] == cpu_level
    assert cpu.LEVELS[cpu.level()] == cpu_level
    with cpu.use_level("portable"):
        assert cpu.level() == 0
    assert cpu.LEVELS[cpu.level()] == cpu_level


@pytest.mark.parametrize("name, message", [
    ("sse9", "'sse9', which is not a CPU level"),
    ("baseline", "'baseline', which is not a CPU level"),
])
def test_use_level_refuses_what_is_not_a_level(name, message):
    with pytest.raises(ValueError, match=message):
        with cpu.use_level(name):
            pass


def test_use_level_refuses_a_level_the_cpu_lacks():
    lacking = [name for name in cpu.LEVELS if name not in cpu.available()]
    if not lacking:
        pytest.skip("this CPU has every level")
    with pytest.raises(ValueError, match="level must be one of"):
        with cpu.use_level(lacking[0]):
            pass


def _in_child(disabled, code, tmp_path):
    """Run code in a new Python with the environment variable set."""
    return run_python(code, tmp_path, PYCONV_DISABLE_CPU_FEATURES=disabled)


@pytest.mark.parametrize("disabled, used", [
    ("AVX512F", "avx2"), ("avx512vl", "avx2"), ("AVX512F,AVX2", "portable"),
    ("FMA3", "portable"), ("AVX2 AVX512DQ", "portable"), ("", None),
])
def test_disable_cpu_features(disabled, used, tmp_path):
    detected = pyconv.cpu_features()["detected"]
    want = detected[-1] if used is None else min(used, detected[-1], key=cpu.LEVELS.index)
    child = _in_child(disabled, "import pyconv; print(pyconv.cpu_features()['used'])", tmp_path)
    assert child.stdout.strip() == want


def test_disable_cpu_features_warns_of_unknown_names(tmp_path):
    child = _in_child("AVX512F,SSE9", "import pyconv; print(pyconv.cpu_features()['used'])",
                      tmp_path)
    assert "ignoring 'SSE9'" in child.stderr and "RuntimeWarning" in child.stderr


def test_a_disabled_level_cannot_be_forced(tmp_path):
    code = ("import pyconv.cpu as c\n"
            "try:\n    c.use_level('avx2').__enter__()\nexcept ValueError as e:\n    print(e)")
    child = _in_child("AVX2", code, tmp_path)
    assert "level must be one of ('portable',)" in child.stdout


def test_kernels_agree_at_every_level(cpu_level):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 13, 11)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    with cpu.use_level("portable"):
        want = (pyconv.conv2d(x, w, method="direct"), pyconv.max_pool2d(x, 3, stride=2,
                                                                         strict=False),
                pyconv.l1_distances(x.reshape(6, -1)))
    got = (pyconv.conv2d(x, w, method="direct"), pyconv.max_pool2d(x, 3, stride=2, strict=False),
           pyconv.l1_distances(x.reshape(6, -1)))
    np.testing.assert_allclose(got[0], want[0], rtol=2e-5, atol=2e-5)
    np.testing.assert_array_equal(got[1], want[1])
    np.testing.assert_array_equal(got[2], want[2])
