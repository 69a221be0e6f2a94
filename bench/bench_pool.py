"""Pooling speed on real layer shapes: pyconv beside PyTorch and NumPy.

Run from the repository root after building::

    python bench/bench_pool.py [--pool max|avg] [--repeats 30] [--threads N] [--clock wall|thread]

For each pooling, layer, dtype and pass it prints the median time and GB/s of
input (bytes of x / time) of pyconv on NCHW input (for max pooling also with
``return_indices=True``, which PyTorch's forward always computes, and the
gradient without the indices), PyTorch's ``max_pool2d`` or
``avg_pool2d`` on NCHW and on channels-last input (backward: autograd, from
the saved indices for max pooling), and a NumPy strided-slicing max (forward
only), and pyconv's speed-up over each.
Timings are interleaved, one round of every contender at a time, so load on
a shared machine hits them alike. On a machine shared with other jobs,
``--clock thread`` measures the CPU time of the calling thread on one thread
(pyconv and PyTorch both run their kernels there), which time-slicing by
other processes does not inflate.
"""
import argparse
import time

import numpy as np

import pyconv

from _timing import median_times

LAYERS = {
    # name: (N, C, H, W, size, stride)
    "alexnet_pool1": (8, 96, 55, 55, 3, 2),
    "vgg_pool": (8, 64, 112, 112, 2, 2),
}


def numpy_strided_max(x, size, stride):
    """Max pooling by one np.maximum per window tap over strided slices (no padding)."""
    n, c, h, w = x.shape
    oh, ow = (h - size) // stride + 1, (w - size) // stride + 1
    out = None
    for u in range(size):
        for v in range(size):
            tap = x[:, :, u:u + stride * (oh - 1) + 1:stride, v:v + stride * (ow - 1) + 1:stride]
            out = tap.copy() if out is None else np.maximum(out, tap, out=out)
    return out


def torch_pair(torch_pool, t, size, stride):
    """(forward, backward) of a PyTorch pooling on tensor t; backward by autograd."""
    import torch
    leaf = t.clone().requires_grad_(True)
    y = torch_pool(leaf, size, stride)
    g = torch.ones_like(y)
    return (lambda: torch_pool(t, size, stride),
            lambda: torch.autograd.grad(y, leaf, g, retain_graph=True))


def torch_tensors(x, threads):
    import torch
    torch.set_num_threads(threads)
    t_nchw = torch.from_numpy(x)
    return torch, t_nchw, t_nchw.contiguous(memory_format=torch.channels_last)


def avg_contenders(x, size, stride, threads):
    """name -> (forward callable, backward callable) for one input, average pooling."""
    torch, t_nchw, t_cl = torch_tensors(x, threads)
    dout = np.ones_like(pyconv.avg_pool2d(x, size, stride=stride))
    pool = torch.nn.functional.avg_pool2d
    return {
        "pyconv": (lambda: pyconv.avg_pool2d(x, size, stride=stride, num_threads=threads),
                   lambda: pyconv.avg_pool2d_backward(dout, x.shape, size, stride=stride,
                                                      num_threads=threads)),
        "torch_nchw": torch_pair(pool, t_nchw, size, stride),
        "torch_channels_last": torch_pair(pool, t_cl, size, stride),
    }


def max_contenders(x, size, stride, threads):
    """name -> (forward callable, backward callable or None) for one input, max pooling."""
    torch, t_nchw, t_cl = torch_tensors(x, threads)
    out, idx = pyconv.max_pool2d(x, size, stride=stride, return_indices=True)
    dout = np.ones_like(out)
    pool = torch.nn.functional.max_pool2d
    return {
        "pyconv": (lambda: pyconv.max_pool2d(x, size, stride=stride, num_threads=threads),
                   lambda: pyconv.max_pool2d_backward(dout, x, size, stride=stride, indices=idx,
                                                      num_threads=threads)),
        "pyconv_indices": (lambda: pyconv.max_pool2d(x, size, stride=stride, return_indices=True,
                                                     num_threads=threads), None),
        "pyconv_recompute": (None, lambda: pyconv.max_pool2d_backward(
            dout, x, size, stride=stride, num_threads=threads)),
        "torch_nchw": torch_pair(pool, t_nchw, size, stride),
        "torch_channels_last": torch_pair(pool, t_cl, size, stride),
        "numpy_strided": (lambda: numpy_strided_max(x, size, stride), None),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", choices=["max", "avg"], default="max")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=pyconv.get_num_threads())
    parser.add_argument("--clock", choices=["wall", "thread"], default="wall",
                        help="thread: CPU time of this thread, on one thread")
    args = parser.parse_args()
    clock = time.perf_counter
    if args.clock == "thread":
        clock, args.threads = time.thread_time, 1
    contenders = max_contenders if args.pool == "max" else avg_contenders
    print(f"{args.pool} pooling: threads={args.threads} clock={args.clock} repeats={args.repeats}; "
          f"GB/s = bytes of x / median time")
    print(f"{'layer':14} {'dtype':7} {'pass':8} {'contender':20} {'ms':>8} {'GB/s':>7} "
          f"{'pyconv x':>9}")
    rng = np.random.default_rng(0)
    for name, (n, c, h, w, size, stride) in LAYERS.items():
        for dtype in (np.float32, np.float64):
            x = rng.standard_normal((n, c, h, w)).astype(dtype)
            table = contenders(x, size, stride, args.threads)
            for p, label in ((0, "forward"), (1, "backward")):
                calls = {k: v[p] for k, v in table.items() if v[p] is not None}
                t = median_times(calls, args.repeats, clock)
                ours = t["pyconv"]
                for k, sec in t.items():
                    print(f"{name:14} {np.dtype(dtype).name:7} {label:8} {k:20} "
                          f"{sec * 1e3:8.3f} {x.nbytes / sec / 1e9:7.2f} {sec / ours:9.2f}")


if __name__ == "__main__":
    main()
