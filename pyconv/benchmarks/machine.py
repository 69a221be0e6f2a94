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
    """The first processor's fields of /proc/cpuinfo; empty where there is none."""
    fields = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if not line.strip():
                    break  # the first processor is enough
                key, _, value = line.partition(":")
                fields[key.strip()] = value.strip()
    except OSError:
        pass
    return fields


def cpu_model():
    """The CPU's model name as the OS reports it, with its x86 family and model numbers."""
    info = _cpuinfo()
    name = info.get("model name") or info.get("Model") or platform.processor() \
        or platform.machine() or "unknown"
    if "cpu family" in info and "model" in info:
        name += f" (family {info['cpu family']}, model {info['model']})"
    return name


def _threadpools():
    from threadpoolctl import threadpool_info

    keep = ("user_api", "internal_api", "version", "num_threads", "architecture", "prefix")
    return [{k: pool.get(k) for k in keep} for pool in threadpool_info()]


def load_average():
    """The 1-minute load average (runnable processes), None where the OS has none."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def busy_warning(usable_cores):
    """A line saying that timings will be noisy, when other processes keep the cores busy."""
    load = load_average()
    if load is not None and load > 0.5 * usable_cores:
        return (f"warning: load average {load} on {usable_cores} cores: other processes are "
                f"running, timings will be noisy (ratios within one run are fairer)")
    return None


def machine_info(threads):
    """Facts about this machine and this run, for ``--json``.

    Parameters
    ----------
    threads : int
        The thread count every contender was given.

    Returns
    -------
    dict
        ``cpu``, ``hypervisor`` (whether it is a virtual machine), ``cores``
        (logical, and usable by this process), ``simd``
        (the SIMD flags the CPU reports), ``threads``, ``pyconv`` (what
        :func:`pyconv.config.config` reports: build flags, OpenMP, NumPy's
        BLAS), ``peers`` (versions, None where missing), ``threadpools`` (the
        BLAS and OpenMP libraries loaded, by threadpoolctl), ``env`` (set
        variables that change the numbers), ``load_average`` (1 minute, at
        the start) and ``date`` (UTC).
    """
    info = _cpuinfo()
    flags = (info.get("flags") or info.get("Features") or "").split()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu": cpu_model(),
        "hypervisor": "hypervisor" in flags,
        "cores": {"logical": os.cpu_count(), "usable": usable},
        "simd": [f for f in SIMD_FLAGS if f in flags],
        "threads": threads,
        "pyconv": config(),
        "peers": versions(),
        "threadpools": _threadpools(),
        "env": {k: os.environ[k] for k in ENV_VARS if k in os.environ},
        "load_average": load_average(),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }
