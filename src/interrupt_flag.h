/* The stop flag that kernels poll between work items (set by interrupt.h's SIGINT
 * handler); plain C, for kernel units compiled without Python.h. */
#ifndef PYCONV_INTERRUPT_FLAG_H
#define PYCONV_INTERRUPT_FLAG_H

#include <signal.h>

/* What kernels poll: nonzero once a SIGINT asked the call to stop. */
typedef volatile sig_atomic_t pc_stop_flag;

/* Whether the call should skip its remaining work items (one relaxed load). */
static inline int pc_stopped(const pc_stop_flag *stop)
{
#if defined(__GNUC__) || defined(__clang__)
    return __atomic_load_n(stop, __ATOMIC_RELAXED) != 0;
#else
    return *stop != 0;
#endif
}

#endif
