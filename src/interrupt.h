/* Ctrl-C for kernels that run with the GIL released.
 *
 * Python's SIGINT handler only marks the signal pending; the KeyboardInterrupt is
 * raised when the interpreter next runs, which a nogil kernel delays until it
 * returns. Around a kernel called from the main thread, pc_guard_enter installs
 * (with sigaction) a handler that sets the call's stop flag and then chains to the
 * handler that was there (Python's, which marks the signal pending as before).
 * Kernels poll the flag between work items (loop iterations, blocks, tiles: never
 * per element) and skip the items left. pc_guard_leave restores the previous
 * handler and says whether a SIGINT arrived; the caller, holding the GIL again,
 * then calls PyErr_CheckSignals, which runs the Python-level handler: its
 * exception (KeyboardInterrupt by default) propagates, and if it returns instead,
 * the kernel runs again from the start (kernels write every output, so a rerun
 * gives the full result).
 *
 * Only the main thread installs the handler: Python runs signal handlers there
 * alone, so a kernel called from another thread is never stopped (its flag is a
 * constant zero) and the main thread gets the KeyboardInterrupt as usual. The main
 * thread runs one kernel at a time, so no refcount is needed; a handler left
 * installed by an exception between enter and leave is recognised and not chained
 * to itself. The handler is installed only over a C-level handler (Python's, or one
 * a library set): where SIGINT is ignored or kills the process, nothing changes.
 * Where sigaction is missing (Windows), kernels are not interruptible: the flag is
 * the constant zero.
 *
 * Header-only: each extension module that includes it has its own copy of the
 * statics, which is all a call needs (the handler it installs sets its own flag).
 * Functions marked "with the GIL" call the Python C API.
 */
#ifndef PYCONV_INTERRUPT_H
#define PYCONV_INTERRUPT_H

#include <Python.h>
#include <pythread.h>
#include <signal.h>
#include <string.h>

#include "interrupt_flag.h"

#if defined(__unix__) || defined(__APPLE__)
#include <unistd.h>
#endif
#if defined(_POSIX_VERSION) && defined(SA_SIGINFO)
#define PC_HAVE_SIGACTION 1
#else
#define PC_HAVE_SIGACTION 0
#endif

static const pc_stop_flag pc_never_stop = 0; /* the flag of calls nothing can stop */

typedef struct {
    const pc_stop_flag *stop; /* the flag to poll during the call */
    int installed;            /* this guard installed the handler */
    int started;              /* pc_again ran the call at least once */
} pc_guard;

#if PC_HAVE_SIGACTION
static pc_stop_flag pc_sigint_flag;
static struct sigaction pc_previous;
static volatile sig_atomic_t pc_previous_ready; /* pc_previous is what ours replaced */
static volatile sig_atomic_t pc_missed;         /* a SIGINT came before it was */

static void pc_on_sigint(int sig, siginfo_t *info, void *context)
{
    pc_sigint_flag = 1;
    if (!pc_previous_ready)
        pc_missed = 1; /* pc_guard_leave raises it again for the restored handler */
    else if (pc_previous.sa_flags & SA_SIGINFO)
        pc_previous.sa_sigaction(sig, info, context);
    else
        pc_previous.sa_handler(sig);
}

/* The main thread's ident, looked up once through the threading module; with the GIL. */
static unsigned long pc_main_thread(void)
{
    static unsigned long ident = 0;
    if (ident == 0) {
        PyObject *threading = PyImport_ImportModule("threading");
        PyObject *main = threading ? PyObject_CallMethod(threading, "main_thread", NULL) : NULL;
        PyObject *id = main ? PyObject_GetAttrString(main, "ident") : NULL;
        if (id) ident = PyLong_AsUnsignedLong(id);
        Py_XDECREF(id);
        Py_XDECREF(main);
        Py_XDECREF(threading);
        PyErr_Clear(); /* on failure the call is just not interruptible */
    }
    return ident;
}
#endif

/* After a kernel, with the GIL: restore the handler; 1 if a SIGINT arrived meanwhile. */
static int pc_guard_leave(pc_guard *g)
{
#if PC_HAVE_SIGACTION
    if (g->installed) {
        sigaction(SIGINT, &pc_previous, NULL);
        g->installed = 0;
        pc_previous_ready = 0;
        if (pc_missed) { /* came while ours could not chain: deliver it to the handler now */
            pc_missed = 0;
            raise(SIGINT);
        }
    }
#endif
    return pc_stopped(g->stop);
}

/* Before a kernel, with the GIL: clear the flag and, on the main thread, install the
 * handler; g->stop is then what the kernel polls. */
static void pc_guard_enter(pc_guard *g)
{
    g->stop = &pc_never_stop;
    g->installed = 0;
#if PC_HAVE_SIGACTION
    struct sigaction previous, mine;
    if (PyThread_get_thread_ident() != pc_main_thread()) return;
    pc_sigint_flag = 0;
    /* one syscall installs ours and reads what was there (the usual path); the rare
     * handlers ours must not replace are put back, or ours remade to match */
    memset(&mine, 0, sizeof mine);
    sigemptyset(&mine.sa_mask);
    mine.sa_flags = SA_SIGINFO | SA_ONSTACK; /* as Python installs its own */
    mine.sa_sigaction = pc_on_sigint;
    if (sigaction(SIGINT, &mine, &previous) != 0) return;
    g->installed = 1;
    if ((previous.sa_flags & SA_SIGINFO) && previous.sa_sigaction == pc_on_sigint) {
        g->stop = &pc_sigint_flag; /* still ours (an exception skipped pc_guard_leave) */
        return;
    }
    pc_previous = previous;
    if ((!(previous.sa_flags & SA_SIGINFO) &&
         (previous.sa_handler == SIG_DFL || previous.sa_handler == SIG_IGN)) ||
        (previous.sa_flags & SA_RESETHAND)) {
        /* SIGINT kills, is ignored, or has a one-shot handler: leave it so (one that came
         * meanwhile is raised again once it is back) */
        pc_guard_leave(g);
        return;
    }
#if defined(__GNUC__) || defined(__clang__)
    __atomic_thread_fence(__ATOMIC_RELEASE); /* pc_previous is written before it is used */
#endif
    pc_previous_ready = 1;
    if ((previous.sa_flags & ~SA_SIGINFO) != (mine.sa_flags & ~SA_SIGINFO) ||
        memcmp(&previous.sa_mask, &mine.sa_mask, sizeof mine.sa_mask) != 0) {
        mine.sa_mask = previous.sa_mask; /* keep its mask and flags (SA_RESTART...) */
        mine.sa_flags = previous.sa_flags | SA_SIGINFO;
        sigaction(SIGINT, &mine, NULL);
    }
    g->stop = &pc_sigint_flag;
#endif
}

/* The loop around a kernel call, with the GIL: `while (pc_again(&g)) run the kernel`,
 * g zero-initialised. The first call enters and returns 1; a later one leaves and
 * returns 0 if the kernel ran undisturbed, -1 with the exception set if the SIGINT
 * handler raised, or 1 (entering again) if the handler returned: run it again. */
static int pc_again(pc_guard *g)
{
    if (g->started) {
        if (!pc_guard_leave(g)) return 0;
        if (PyErr_CheckSignals() != 0) return -1;
    }
    g->started = 1;
    pc_guard_enter(g);
    return 1;
}

#endif
