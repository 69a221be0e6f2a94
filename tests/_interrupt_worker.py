"""Child process of test_interrupt.py: runs one long kernel call until a SIGINT stops it.

``python _interrupt_worker.py CASE MODE`` builds the case's arrays, prints ``ready``,
makes the long call and prints what happened: ``interrupted`` (KeyboardInterrupt),
``handled N`` (a user handler ran N times and the call returned the right result) or
``returned``. It then prints ``ok`` if a small call of the same kernel still equals
its oracle. MODE is ``main`` (the call in the main thread), ``handler`` (a
``signal.signal`` handler that counts and returns) or ``thread`` (the call in another
thread while the main thread waits for it) or ``default`` (SIGINT's default
action: the process dies).
"""
import signal
import sys
import threading
import time

import numpy as np

import pyconv
from pyconv import reference


def _data(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _conv(method, backward, n=64, need=("dx", "dw", "db")):
    x = _data((n, 256, 28, 28))
    w = _data((256, 256, 3, 3), 1)
    dout = _data((n, 256, 28, 28), 2)
    xs, ws, ds = x[:2, :8, :9, :9], w[:4, :8], dout[:2, :4, :9, :9]
    if backward:
        def call(a, b, d):
            return pyconv.conv2d_backward(d, a, b, padding=1, method=method, need=need)

        def check():
            got = call(xs, ws, ds)
            want = reference.conv2d_backward_naive(ds, xs, ws, padding=1)
            want = [e for e, name in zip(want, ("dx", "dw", "db")) if name in need]
            return all(np.allclose(g, e, rtol=1e-4, atol=1e-4) for g, e in zip(got, want))
        return lambda: call(x, w, dout), check

    def check():
        return np.allclose(pyconv.conv2d(xs, ws, padding=1, method=method),
                           reference.conv2d_naive(xs, ws, padding=1), rtol=1e-4, atol=1e-4)
    return lambda: pyconv.conv2d(x, w, padding=1, method=method), check


def _pool(kind, backward):
    # a wide window with dilation: the portable plane kernels, slow per byte
    x = _data((32, 32, 256, 256))
    args = {"max": dict(size=13, stride=1, dilation=2), "avg": dict(size=25, stride=1)}[kind]
    forward = pyconv.max_pool2d if kind == "max" else pyconv.avg_pool2d
    oracle = reference.max_pool2d_naive if kind == "max" else reference.avg_pool2d_naive
    small = x[:1, :2, :40, :40]
    if backward:
        bwd = pyconv.max_pool2d_backward if kind == "max" else pyconv.avg_pool2d_backward
        ref = (reference.max_pool2d_backward_naive if kind == "max"
               else reference.avg_pool2d_backward_naive)
        dout = forward(x, **args)
        arg = x if kind == "max" else x.shape

        def check():
            d = forward(small, **args)
            a = small if kind == "max" else small.shape
            return np.allclose(bwd(d, a, **args), ref(d, a, **args), rtol=1e-5, atol=1e-5)
        return lambda: bwd(dout, arg, **args), check

    def check():
        return np.allclose(forward(small, **args), oracle(small, **args), rtol=1e-5, atol=1e-5)
    return lambda: forward(x, **args), check


def _l1():
    X, Y = _data((6000, 1024)), _data((6000, 1024), 1)
    return (lambda: pyconv.l1_distances(X, Y),
            lambda: np.allclose(pyconv.l1_distances(X[:30, :50], Y[:40, :50]),
                                reference.l1_no_loops(X[:30, :50], Y[:40, :50]), rtol=1e-5))


def _topk():
    X = _data((12000, 256))
    small = X[:300, :40]

    def check():
        dist, _ = pyconv.l1_topk(small, small, 3)
        want = np.sort(reference.l1_no_loops(small, small), axis=1)[:, :3]
        return np.allclose(dist, want, rtol=1e-5)
    return lambda: pyconv.l1_topk(X, X, 10), check


def _knn():
    X = _data((12000, 256))
    knn = pyconv.KNearestNeighbor(k=3).fit(X, np.arange(len(X)) % 7)
    small = pyconv.KNearestNeighbor(k=1).fit(X[:50], np.arange(50))
    return lambda: knn.predict(X), lambda: (small.predict(X[:50]) == np.arange(50)).all()


CASES = {"l1_distances": _l1, "l1_topk": _topk, "knn_predict": _knn}
for _m in ("direct", "im2col", "auto"):
    CASES[f"conv2d_{_m}"] = lambda m=_m: _conv(m, False)
    CASES[f"conv2d_backward_{_m}"] = lambda m=_m: _conv(m, True)
# Winograd runs this layer several times faster: more images, and only its dx
# (dw is im2col's)
CASES["conv2d_winograd"] = lambda: _conv("winograd", False, n=256)
CASES["conv2d_backward_winograd"] = lambda: _conv("winograd", True, n=256, need=("dx",))
for _k in ("max", "avg"):
    CASES[f"{_k}_pool2d"] = lambda k=_k: _pool(k, False)
    CASES[f"{_k}_pool2d_backward"] = lambda k=_k: _pool(k, True)


def _arrays(result):
    """A call's arrays as a tuple."""
    return result if isinstance(result, tuple) else (result,)


def main(case, mode):
    # Start as an interactive Python would: SIGINT unblocked and raising KeyboardInterrupt.
    # A child inherits its parent's signal mask and an ignored SIGINT, and the test
    # process may have either from an earlier test's library.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    signal.signal(signal.SIGINT, signal.default_int_handler)
    long_call, check = CASES[case]()
    calls = []
    want = long_call() if mode == "handler" else None  # the result to get back
    if mode == "handler":
        signal.signal(signal.SIGINT, lambda signum, frame: calls.append(signum))
    elif mode == "default":
        signal.signal(signal.SIGINT, signal.SIG_DFL)
    outcome = []

    def run():
        try:
            got = long_call()
            if mode == "handler":
                same = all(np.array_equal(a, b) for a, b in zip(_arrays(got), _arrays(want)))
                outcome.append(f"handled {len(calls)}" if same else "different result")
            else:
                outcome.append("returned")
        except KeyboardInterrupt:
            outcome.append("interrupted")

    print("ready", flush=True)
    if mode == "thread":
        # polls rather than join(): a join interrupted by KeyboardInterrupt may not wait again
        worker = threading.Thread(target=run)
        worker.start()
        try:
            while worker.is_alive():
                time.sleep(0.01)
        except KeyboardInterrupt:
            print("main interrupted", flush=True)
            while worker.is_alive():
                time.sleep(0.01)
    else:
        run()
    print(outcome[0], flush=True)
    print("ok" if check() else "wrong", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
