"""Peak memory of ``pyconv.l1_topk`` beside ``pyconv.l1_distances`` as n_y grows.

Run from the repository root after ``python setup.py build_ext --inplace``::

    PYTHONPATH=$PWD python bench/l1_memory.py [--n-x 2000] [--d 32] [--k 10]

Each call runs in a fresh process, on float32 inputs generated there; it
prints the peak resident memory above the inputs (``ru_maxrss``), next to the
size of the (n_x, n_y) distance matrix that ``l1_topk`` never builds. Needs
psutil. Speed is ``pyconv bench --only l1``'s.
"""
import argparse
import os
import subprocess
import sys

MEMORY_CHILD = """
import resource, sys, numpy as np, psutil, pyconv
n_x, n_y, d, k = map(int, sys.argv[1:5])
what = sys.argv[5]
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
    parser.add_argument("--n-x", type=int, default=2000)
    parser.add_argument("--d", type=int, default=32)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--n-y", type=int, nargs="+", default=[10_000, 40_000, 160_000, 640_000])
    args = parser.parse_args()
    run_memory(args.n_x, args.d, args.k, args.n_y)


if __name__ == "__main__":
    main()
