"""The CPU's level, detected here once per process for every kernel (see src/cpu_features.h).

pyconv.cpu turns it into the level the kernels run at.
"""

cdef extern from "cpu_features.h":
    pass


cdef extern from *:
    """
    /* The best CPU level (cpu_features.h) this CPU and the build have. */
    static int cpu_detect(void)
    {
    #if CPU_X86
        __builtin_cpu_init();
        if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma"))
            return CPU_PORTABLE;
        if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")
                && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
            return CPU_AVX512;
        return CPU_AVX2;
    #else
        return CPU_PORTABLE;
    #endif
    }
    """
    int cpu_detect()


LEVELS = ("portable", "avx2", "avx512")
DETECTED = LEVELS[:cpu_detect() + 1]
