"""Facts about the OpenMP runtime pyconv was built with."""
from _openmp_helpers cimport PYCONV_OPENMP_ENABLED, omp_get_max_threads, omp_get_num_procs


def openmp_enabled():
    """True when the kernels were compiled with OpenMP."""
    return bool(PYCONV_OPENMP_ENABLED)


def max_threads():
    """Threads an OpenMP region would use now (honours OMP_NUM_THREADS and threadpoolctl)."""
    return omp_get_max_threads()


def num_procs():
    """Processors available to OpenMP."""
    return omp_get_num_procs()
