"""How this copy of pyconv was built, and what it runs on."""
import json
import os
import platform
import sys

import numpy as np

from . import _openmp
from .cpu import cpu_features
from .threads import get_num_threads, openmp_enabled

__version__ = "0.1.0"


def build_info():
    """The compiler, flags and OpenMP state recorded when the kernels were built.

    Returns
    -------
    dict
        Keys ``openmp``, ``compiler``, ``extra_compile_args``,
        ``extra_link_args`` and ``debug``; empty if the record is missing.
    """
    path = os.path.join(os.path.dirname(_openmp.__file__), "_build_info.json")
    try:
        with open(path) as f:
            return json.load(f)
    except OSError:
        return {}


def _numpy_blas():
    try:
        deps = np.show_config(mode="dicts")["Build Dependencies"]
        blas = deps["blas"]
        return f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
    except Exception:  # NumPy < 2 has no dict mode; the BLAS is then unknown here
        return "unknown"


def config():
    """Version, build and runtime facts as a dict (what :func:`show_config` prints)."""
    info = build_info()
    features = cpu_features()
    return {
        "pyconv": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "numpy": np.__version__,
        "numpy BLAS": _numpy_blas(),
        "OpenMP": "on" if openmp_enabled() else "OFF (kernels run on one thread)",
        "threads": get_num_threads(),
        "processors": _openmp.num_procs(),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "(unset)"),
        "compiler": info.get("compiler", "unknown"),
        "compile flags": " ".join(info.get("extra_compile_args", [])) or "unknown",
        "debug build": info.get("debug", "unknown"),
        "CPU levels": ", ".join(features["detected"]),
        "CPU level used": features["used"],
        "CPU features off": os.environ.get("PYCONV_DISABLE_CPU_FEATURES", "(none)"),
    }


def show_config():
    """Print pyconv's version, build flags, OpenMP state, threads, CPU levels and NumPy's BLAS.

    The CPU levels are those of :func:`pyconv.cpu_features`: the ones this
    CPU has and the one the kernels run at.

    Examples
    --------
    >>> import pyconv
    >>> pyconv.show_config()  # doctest: +ELLIPSIS
    pyconv:           ...
    CPU levels:       portable...
    CPU level used:   ...
    """
    for key, value in config().items():
        print(f"{key + ':':<18}{value}")
