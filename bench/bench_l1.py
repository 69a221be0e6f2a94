"""Pairwise L1 distance and L1 top-k: pyconv beside SciPy, scikit-learn, PyTorch and faiss.

Run from the repository root after ``python setup.py build_ext --inplace``::

    PYTHONPATH=$PWD python bench/bench_l1.py              # all shapes, both dtypes
    PYTHONPATH=$PWD python bench/bench_l1.py --quick      # smaller shapes
    PYTHONPATH=$PWD python bench/bench_l1.py --memory     # peak memory of l1_topk as n_y grows
    PYTHONPATH=$PWD python bench/bench_l1.py --threads 1 --cpu-time  # on a busy machine

Prints, per shape and dtype, the median time of each library over the repeats and its speed in
G pairs/s (n_x * n_y * d / time / 1e9), and pyconv's speed-up over each peer measured in the
same run (the machine may be shared: compare ratios, not lone times). Every library runs with
the same thread count (``--threads``, default all cores). ``--cpu-time`` times the calling
thread's CPU time instead of the wall clock: with ``--threads 1`` it barely moves when other
processes load the machine. Square shapes also time ``l1_distances(X)``, X against itself,
which computes one triangle and mirrors it.
"""
import argparse
import os
import subprocess
import sys
import time

import numpy as np

import pyconv

SHAPES = [(500, 5000, 3072), (2000, 2000, 128), (10000, 10000, 32)]
QUICK_SHAPES = [(200, 2000, 3072), (1000, 1000, 128), (4000, 4000, 32)]


def peers(threads):
    """name -> (function of (X, Y), dtypes it computes in natively)."""
    found = {}
    try:
        from scipy.spatial.distance import cdist
        found["scipy cdist"] = (lambda X, Y: cdist(X, Y, "cityblock"), ("float64",))
    except ImportError:
        pass
    try:
        from sklearn.metrics import pairwise_distances
        found["sklearn"] = (lambda X, Y: pairwise_distances(X, Y, metric="manhattan",
                                                            n_jobs=threads), ("float32", "float64"))
    except ImportError:
        pass
    try:
        import torch
        torch.set_num_threads(threads)
        found["torch.cdist"] = (lambda X, Y: torch.cdist(torch.from_numpy(X), torch.from_numpy(Y),
                                                         p=1).numpy(), ("float32", "float64"))
    except ImportError:
        pass
    try:
        import faiss
        faiss.omp_set_num_threads(threads)
        found["faiss"] = (lambda X, Y: faiss.pairwise_distances(X, Y, metric=faiss.METRIC_L1),
                          ("float32",))
    except ImportError:
        pass
    return found


def faiss_topk(threads):
    try:
        import faiss
    except ImportError:
        return None
    faiss.omp_set_num_threads(threads)

    def search(X, Y, k):
        index = faiss.IndexFlat(Y.shape[1], faiss.METRIC_L1)
        index.add(Y)
        return index.search(X, k)
    return search


def median_time(fn, repeats, clock=time.perf_counter):
    times = []
    for _ in range(repeats):
        start = clock()
        fn()
        times.append(clock() - start)
    return float(np.median(times))


def run_speed(shapes, dtypes, repeats, threads, k, clock=time.perf_counter):
    found = peers(threads)
    ftopk = faiss_topk(threads)
    rng = np.random.default_rng(0)
    print(f"threads={threads}  repeats={repeats} (medians)  clock: {clock.__name__}  "
          f"pyconv CPU level: {pyconv.cpu_features()['used']}")
    print(f"{'shape (n_x, n_y, d)':>22} {'dtype':>8} {'library':>22} {'time s':>9} "
          f"{'Gpairs/s':>9} {'pyconv x':>9}")
    for n_x, n_y, d in shapes:
        for dtype in dtypes:
            X = rng.standard_normal((n_x, d)).astype(dtype)
            Y = rng.standard_normal((n_y, d)).astype(dtype)
            pairs = n_x * n_y * d / 1e9
            # every library allocates its result on each call, pyconv too
            ours = median_time(lambda: pyconv.l1_distances(X, Y, num_threads=threads), repeats,
                               clock)
            rows = [("pyconv l1_distances", ours, ours)]
            own = None
            if n_x == n_y:
                own = median_time(lambda: pyconv.l1_distances(X, num_threads=threads), repeats,
                                  clock)
                rows.append(("pyconv l1_distances(X)", own, own))
            for name, (fn, native) in found.items():
                if np.dtype(dtype).name not in native and name != "scipy cdist":
                    continue
                rows.append((name + ("" if np.dtype(dtype).name in native else " (f64)"),
                             median_time(lambda: fn(X, Y), repeats, clock), ours))
            topk = median_time(lambda: pyconv.l1_topk(X, Y, k, num_threads=threads), repeats,
                               clock)
            rows.append((f"pyconv l1_topk k={k}", topk, topk))
            if ftopk is not None and dtype == np.float32:
                rows.append((f"faiss IndexFlat k={k}", median_time(lambda: ftopk(X, Y, k),
                                                                   repeats, clock), topk))
            for name, t, ref in rows:
                print(f"{str((n_x, n_y, d)):>22} {np.dtype(dtype).name:>8} {name:>22} {t:9.4f} "
                      f"{pairs / t:9.2f} {t / ref:9.2f}")
            print(f"{'':>22} {'':>8} {'l1_topk / l1_distances':>22} {topk / ours:9.2f}",
                  flush=True)
            if own is not None:
                print(f"{'':>22} {'':>8} {'(X, Y) / (X) speed-up':>22} {ours / own:9.2f}",
                      flush=True)


MEMORY_CHILD = """
import resource, sys, numpy as np, psutil, pyconv
n_x, n_y, d, k, what = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
rng = np.random.default_rng(0)
X = rng.standard_normal((n_x, d), dtype=np.float32)  # no float64 temporary to raise the peak
Y = rng.standard_normal((n_y, d), dtype=np.float32)
before = psutil.Process().memory_info().rss
assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 <= before + 2**20
if what == "topk":
    pyconv.l1_topk(X, Y, k)
else:
    pyconv.l1_distances(X, Y)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print((peak - before) / 2**20)
"""


def run_memory(n_x, d, k, sizes):
    print(f"peak RSS above the inputs, MiB (n_x={n_x}, d={d}, k={k}, float32; fresh process each)")
    print(f"{'n_y':>9} {'l1_topk':>9} {'l1_distances':>13} {'(n_x, n_y) matrix':>18}")
    for n_y in sizes:
        got = []
        for what in ("topk", "full"):
            res = subprocess.run([sys.executable, "-c", MEMORY_CHILD, str(n_x), str(n_y), str(d),
                                  str(k), what], capture_output=True, text=True, check=True,
                                 env=os.environ)
            got.append(float(res.stdout))
        print(f"{n_y:9d} {got[0]:9.1f} {got[1]:13.1f} {n_x * n_y * 4 / 2**20:18.1f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller shapes")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=pyconv.get_num_threads())
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--dtype", choices=["float32", "float64", "both"], default="both")
    parser.add_argument("--memory", action="store_true", help="only the memory of l1_topk")
    parser.add_argument("--cpu-time", action="store_true",
                        help="time the calling thread's CPU time (use with --threads 1)")
    args = parser.parse_args()
    if args.memory:
        run_memory(2000, 32, args.k, [10_000, 40_000, 160_000, 640_000])
        return
    dtypes = [np.float32, np.float64] if args.dtype == "both" else [np.dtype(args.dtype).type]
    run_speed(QUICK_SHAPES if args.quick else SHAPES, dtypes, args.repeats, args.threads, args.k,
              time.thread_time if args.cpu_time else time.perf_counter)


if __name__ == "__main__":
    main()
