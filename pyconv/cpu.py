"""The CPU level pyconv's kernels run at: one for every kernel, chosen once per process.

Levels, slowest first: ``"portable"`` (plain C), ``"avx2"`` (AVX2 and FMA) and
``"avx512"`` (AVX-512 F, BW, DQ and VL). Every kernel family is compiled at
each level; the kernels run at the best level the CPU has, lowered by the
environment variable ``PYCONV_DISABLE_CPU_FEATURES`` (NumPy's
``NPY_DISABLE_CPU_FEATURES`` convention: a comma- or space-separated list of
features, e.g. ``AVX512F`` or ``AVX512F,AVX2``), read when pyconv is imported.
"""
import contextlib
import os
import re
import warnings

from . import _cpu

LEVELS = _cpu.LEVELS

# What each level needs, by the feature names PYCONV_DISABLE_CPU_FEATURES takes (NumPy's).
_NEEDS = {
    "portable": set(),
    "avx2": {"AVX2", "FMA3"},
    "avx512": {"AVX2", "FMA3", "AVX512F", "AVX512BW", "AVX512DQ", "AVX512VL", "AVX512_SKX"},
}
_FEATURES = set().union(*_NEEDS.values())


def _allowed(disabled):
    """The levels of this CPU that the comma- or space-separated feature list leaves."""
    names = [name.upper() for name in re.split(r"[\s,]+", disabled) if name]
    unknown = [name for name in names if name not in _FEATURES]
    if unknown:
        warnings.warn(
            f"PYCONV_DISABLE_CPU_FEATURES: ignoring {', '.join(map(repr, unknown))}: not a CPU "
            f"feature pyconv's kernels use (those are {', '.join(sorted(_FEATURES))})",
            RuntimeWarning, stacklevel=3)
    off = set(names)
    return tuple(level for level in _cpu.DETECTED if not _NEEDS[level] & off)


_AVAILABLE = _allowed(os.environ.get("PYCONV_DISABLE_CPU_FEATURES", ""))
_level = LEVELS.index(_AVAILABLE[-1])


def level():
    """The level the kernels run at now, as its index in ``LEVELS`` (what kernels are passed)."""
    return _level


def available():
    """The levels the kernels may run at here: the CPU's, less those disabled by
    ``PYCONV_DISABLE_CPU_FEATURES``, slowest first."""
    return _AVAILABLE


def cpu_features():
    """The CPU levels this machine has and the one pyconv's kernels run at.

    Returns
    -------
    dict
        ``"detected"``: the levels this CPU (and this build) has, slowest
        first, ``"portable"`` always among them; ``"used"``: the level every
        kernel runs at, the best detected unless ``PYCONV_DISABLE_CPU_FEATURES``
        lowered it.

    Notes
    -----
    Levels: ``"portable"`` (plain C), ``"avx2"`` (AVX2 and FMA), ``"avx512"``
    (AVX-512 F, BW, DQ and VL). Results are bitwise the same at every level
    wherever they are bitwise independent of the thread count.

    Examples
    --------
    >>> import pyconv
    >>> info = pyconv.cpu_features()
    >>> sorted(info)
    ['detected', 'used']
    >>> info["detected"][0], info["used"] in info["detected"]
    ('portable', True)
    """
    return {"detected": list(_cpu.DETECTED), "used": LEVELS[_level]}


@contextlib.contextmanager
def use_level(name):
    """Run every kernel at level ``name`` inside the block (for tests and bug reports).

    Raises ValueError for a level that is not in :func:`available`. Not thread-safe: it sets
    the level of the whole process.
    """
    global _level
    if name not in _AVAILABLE:
        lacking = "is disabled by PYCONV_DISABLE_CPU_FEATURES" if name in _cpu.DETECTED else \
            "is not a level this CPU has" if name in LEVELS else "is not a CPU level"
        raise ValueError(f"level must be one of {_AVAILABLE}, got {name!r}, which {lacking}")
    previous, _level = _level, LEVELS.index(name)
    try:
        yield
    finally:
        _level = previous
