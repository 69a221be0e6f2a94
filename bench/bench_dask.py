"""L1 top-k on a local Dask cluster beside the in-memory call: throughput and peak memory.

Run as a script (it starts its own ``distributed.LocalCluster``)::

    python bench/bench_dask.py                       # 200,000 x 50,000, d=128, k=10
    python bench/bench_dask.py --n-x 20000           # a tenth of the queries
    python bench/bench_dask.py --threads-only        # only the thread-placement table
    python bench/bench_dask.py --no-threads          # only the cluster-versus-memory table
    python bench/bench_dask.py --quick               # 20,000 x 10,000: a minute, not ten

It prints two tables. The first runs ``pyconv.dask.l1_topk`` on a cluster of
``--workers`` single-threaded worker processes (data generated on the
workers, blocks of ``--x-chunk`` x ``--y-chunk`` rows) and
``pyconv.l1_topk`` on the same data in this process, checks that they agree
exactly, and reports pairs per second and peak resident memory (per worker:
``ru_maxrss`` of each worker process; in memory: this process, data
included). The second compares where the threads go for the same search on a
smaller query set: the threaded scheduler with one kernel thread per Dask
thread (pyconv.dask's default) or every core per task (oversubscribed), and
clusters of single-threaded workers with one OpenMP thread each or one
worker holding every core's OpenMP threads.
"""
import argparse
import os
import resource

import dask
import dask.array as da
import distributed
import numpy as np

import pyconv
import pyconv.dask as pdask
from pyconv.benchmarks.timing import timed


def peak_rss_mib():
    """Peak resident memory of the calling process so far, in MiB (Linux: ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def random_rows(n, d, chunk, seed):
    """A lazy (n, d) float32 Dask array generated block by block where it is computed."""
    return da.random.default_rng(seed).standard_normal((n, d), chunks=(chunk, d),
                                                        dtype=np.float32)


def cluster_versus_memory(args):
    X = random_rows(args.n_x, args.d, args.x_chunk, 0)
    Y = random_rows(args.n_y, args.d, args.y_chunk, 1)
    pairs = args.n_x * args.n_y
    with distributed.LocalCluster(n_workers=args.workers, threads_per_worker=1,
                                  processes=True, dashboard_address=":0") as cluster, \
            distributed.Client(cluster) as client:
        client.run(lambda: None)  # workers up
        seconds, (dist, ind) = timed(lambda: dask.compute(*pdask.l1_topk(X, Y, args.k)))
        worker_peaks = client.run(peak_rss_mib).values()
        Xn, Yn = dask.compute(X, Y)  # the same numbers, for the in-memory call
    memory_seconds, (dist_m, ind_m) = timed(lambda: pyconv.l1_topk(Xn, Yn, args.k))
    if not (np.array_equal(ind, ind_m) and np.array_equal(dist, dist_m)):
        raise SystemExit("pyconv.dask.l1_topk and pyconv.l1_topk disagree")
    print(f"\nl1_topk ({args.n_x:,} x {args.n_y:,}, d={args.d}, k={args.k}), float32; "
          f"cluster: {args.workers} worker processes x 1 thread, blocks "
          f"{args.x_chunk:,} x {args.y_chunk:,} rows; results identical to the in-memory call")
    print(f"{'run':<34}{'seconds':>10}{'Mpairs/s':>10}{'peak RSS MiB':>14}")
    print(f"{'pyconv.dask.l1_topk (cluster)':<34}{seconds:>10.1f}{pairs / seconds / 1e6:>10.1f}"
          f"{max(worker_peaks):>10.0f} per worker")
    print(f"{'pyconv.l1_topk (in memory)':<34}{memory_seconds:>10.1f}"
          f"{pairs / memory_seconds / 1e6:>10.1f}{peak_rss_mib():>10.0f} this process")
    input_mib = (args.n_x + args.n_y) * args.d * 4 / 2**20
    print(f"(X and Y hold {input_mib:.0f} MiB; the distance matrix would hold "
          f"{pairs * 4 / 2**20:,.0f} MiB)")


def thread_placement(args):
    X_lazy = random_rows(args.threads_n_x, args.d, args.threads_x_chunk, 2)
    Y_lazy = random_rows(args.n_y, args.d, args.y_chunk, 3)
    pairs = args.threads_n_x * args.n_y
    cores = pyconv.get_num_threads()
    rows = []

    def run(name, scheduler, num_threads=None):
        X, Y = dask.persist(X_lazy, Y_lazy, scheduler=scheduler)  # data in place, not timed
        lazy = pdask.l1_topk(X, Y, args.k, num_threads=num_threads)
        seconds = min(timed(lambda: dask.compute(*lazy, scheduler=scheduler))[0]
                      for _ in range(args.repeats))
        rows.append((name, seconds))

    run(f"threads: {cores} Dask x 1 OpenMP (default)", "threads")
    run(f"threads: {cores} Dask x {cores} OpenMP", "threads", -1)
    for workers, omp in [(cores, 1), (1, cores)]:
        with distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                      dashboard_address=":0") as cluster, \
                distributed.Client(cluster, set_as_default=False) as client:
            client.run(pyconv.set_num_threads, omp)
            run(f"cluster: {workers} proc x 1 Dask x {omp} OpenMP", client)
    print(f"\nthread placement: l1_topk ({args.threads_n_x:,} x {args.n_y:,}, d={args.d}, "
          f"k={args.k}), blocks {args.threads_x_chunk:,} x {args.y_chunk:,} rows, {cores} cores, "
          f"best of {args.repeats}")
    print(f"{'configuration':<40}{'seconds':>10}{'Mpairs/s':>10}")
    for name, seconds in rows:
        print(f"{name:<40}{seconds:>10.2f}{pairs / seconds / 1e6:>10.1f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-x", type=int, default=200_000)
    parser.add_argument("--n-y", type=int, default=50_000)
    parser.add_argument("--d", type=int, default=128)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--x-chunk", type=int, default=10_000)
    parser.add_argument("--y-chunk", type=int, default=25_000)
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    parser.add_argument("--threads-n-x", type=int, default=2_000)
    parser.add_argument("--threads-x-chunk", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads-only", action="store_true", help="only the second table")
    parser.add_argument("--no-threads", action="store_true", help="only the first table")
    parser.add_argument("--quick", action="store_true",
                        help="a smaller search: 20,000 x 10,000 rows in 5,000-row blocks")
    args = parser.parse_args()
    if args.quick:
        args.n_x, args.n_y, args.x_chunk, args.y_chunk = 20_000, 10_000, 5_000, 5_000
        args.threads_n_x, args.threads_x_chunk = 1_000, 250
    if not args.threads_only:
        cluster_versus_memory(args)
    if not args.no_threads:
        thread_placement(args)


if __name__ == "__main__":
    main()
