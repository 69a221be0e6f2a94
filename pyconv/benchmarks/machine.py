"""What a benchmark ran on: CPU, cores, SIMD flags, threads, libraries, environment."""
import datetime
import os
import platform

from ..config import config
from .peers import versions

SIMD_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
              "avx512_bf16", "avx512_fp16", "amx_tile", "neon", "asimd", "sve")
# environment variables that change the numbers (threads, OpenBLAS's core and cache choices)
ENV_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_CORETYPE",
            "OPENBLAS_L2_SIZE", "OMP_PROC_BIND", "OMP_PLACES")


def _cpuinfo():
    """``(model, flags)`` from /proc/cpuinfo; ``(None, [])`` where there is none."""
    model, flags = None, []
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key in ("model name", "Model", "cpu model") and model is None:
                    model = value.strip()
                elif key in ("flags", "Features") and not flags:
                    flags = value.split()
    except OSError:
        pass
    return model, flags


def cpu_model():
    """The CPU's model name, as the OS reports it."""
    return _cpuinfo()[0] or platform.processor() or platform.machine() or "unknown"


def _threadpools():
    from threadpoolctl import threadpool_info

    keep = ("user_api", "internal_api", "version", "num_threads", "architecture", "prefix")
    return [{k: pool.get(k) for k in keep} for pool in threadpool_info()]


def machine_info(threads):
    """Facts about this machine and this run, for ``--json``.

    Parameters
    ----------
    threads : int
        The thread count every contender was given.

    Returns
    -------
    dict
        ``cpu``, ``cores`` (logical, and usable by this process), ``simd``
        (the SIMD flags the CPU reports), ``threads``, ``pyconv`` (what
        :func:`pyconv.config.config` reports: build flags, OpenMP, NumPy's
        BLAS), ``peers`` (versions, None where missing), ``threadpools`` (the
        BLAS and OpenMP libraries loaded, by threadpoolctl), ``env`` (set
        variables that change the numbers) and ``date`` (UTC).
    """
    flags = _cpuinfo()[1]
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu": cpu_model(),
        "cores": {"logical": os.cpu_count(), "usable": usable},
        "simd": [f for f in SIMD_FLAGS if f in flags],
        "threads": threads,
        "pyconv": config(),
        "peers": versions(),
        "threadpools": _threadpools(),
        "env": {k: os.environ[k] for k in ENV_VARS if k in os.environ},
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }
