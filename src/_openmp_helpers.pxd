# OpenMP runtime calls that also compile without OpenMP: then they report one
# thread, and every prange in pyconv runs serially. Kernels cimport these
# instead of `cimport openmp`, so the package builds with any compiler.
cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    #define PYCONV_OPENMP_ENABLED 1
    #else
    #define PYCONV_OPENMP_ENABLED 0
    static inline int omp_get_max_threads(void) { return 1; }
    static inline int omp_get_thread_num(void) { return 0; }
    static inline int omp_get_num_procs(void) { return 1; }
    #endif
    """
    bint PYCONV_OPENMP_ENABLED
    int omp_get_max_threads() nogil
    int omp_get_thread_num() nogil
    int omp_get_num_procs() nogil
