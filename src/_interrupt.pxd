# Ctrl-C for nogil kernels (see interrupt.h). A kernel call becomes
#
#     cdef pc_guard guard = pc_guard_new()
#     while pc_again(&guard):
#         with nogil:
#             for item in prange(...):
#                 if pc_stopped(guard.stop):
#                     continue
#                 ...
#
# so that a SIGINT during the call skips the items left and raises what Python's
# SIGINT handler raises (KeyboardInterrupt by default); if that handler returns,
# the call runs again. Nothing in the loop body may raise.
cdef extern from "interrupt.h":
    ctypedef int pc_stop_flag
    ctypedef struct pc_guard:
        const pc_stop_flag *stop
        int installed
        int started
    bint pc_stopped(const pc_stop_flag *stop) noexcept nogil
    int pc_again(pc_guard *g) except -1


cdef inline pc_guard pc_guard_new() noexcept:
    """A guard that has run nothing yet."""
    cdef pc_guard g
    g.stop = NULL
    g.installed = 0
    g.started = 0
    return g
