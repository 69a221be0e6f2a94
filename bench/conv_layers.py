"""Side-by-side speed of pyconv.conv2d on the issue's layer table (not a test).

Run: ``PYTHONPATH=. python bench/conv_layers.py [--repeat 7] [--dtype float32 float64]
[--layers vgg depthwise] [--backward]``. Prints the median time of each implementation and its
GFLOP/s (2*N*K*OH*OW*C/groups*FH*FW flops per forward; twice that for dx + dw), then
pyconv's ratio to PyTorch (>1 is faster), and for grouped layers to PyTorch on channels-last
input too. The implementations take turns, one call each per
round, so that a shared machine's changing load falls on all of them alike.
"""
import argparse
import time

import numpy as np

import pyconv
from pyconv.reference import conv2d_im2col

from _timing import median_times

LAYERS = {  # name: (N, C, H, W, K, FH, FW, stride, padding, groups)
    "alexnet1": (8, 3, 227, 227, 96, 11, 11, 4, 0, 1),
    "vgg": (8, 64, 56, 56, 64, 3, 3, 1, 1, 1),
    "resnet_late": (8, 256, 14, 14, 256, 3, 3, 1, 1, 1),
    "mnist": (64, 1, 28, 28, 8, 5, 5, 1, 0, 1),
    "pointwise": (8, 256, 28, 28, 128, 1, 1, 1, 0, 1),
    "depthwise": (8, 128, 56, 56, 128, 3, 3, 1, 1, 128),
}


def flops(layer):
    n, c, h, w, k, fh, fw, s, p, g = layer
    oh, ow = (h + 2 * p - fh) // s + 1, (w + 2 * p - fw) // s + 1
    return 2.0 * n * k * oh * ow * (c // g) * fh * fw


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--dtype", nargs="+", default=["float32", "float64"])
    parser.add_argument("--layers", nargs="+", default=list(LAYERS))
    parser.add_argument("--methods", nargs="+", default=["im2col", "direct", "auto"])
    parser.add_argument("--backward", action="store_true", help="dx + dw + db instead of forward")
    parser.add_argument("--no-oracle", action="store_true")
    parser.add_argument("--threads", type=int, default=None, help="default: all cores")
    parser.add_argument("--cpu-time", action="store_true",
                        help="with --threads 1: time the CPU this thread used, not the wall "
                             "clock, so that other processes' load counts less")
    args = parser.parse_args()
    if args.cpu_time and args.threads != 1:
        parser.error("--cpu-time needs --threads 1 (other threads' CPU time is not counted)")
    clock = time.thread_time if args.cpu_time else time.perf_counter
    import torch
    from threadpoolctl import threadpool_limits
    pyconv.set_num_threads(args.threads)
    torch.set_num_threads(pyconv.get_num_threads())
    # NumPy's BLAS (the oracle's products) on the same thread count
    threadpool_limits(pyconv.get_num_threads(), user_api="blas")
    rng = np.random.default_rng(0)
    for dtype in args.dtype:
        for name in args.layers:
            layer = LAYERS[name]
            n, c, h, w, k, fh, fw, s, p, g = layer
            x = rng.standard_normal((n, c, h, w)).astype(dtype)
            wt = rng.standard_normal((k, c // g, fh, fw)).astype(dtype)
            kw = dict(stride=s, padding=p, groups=g)
            tx, tw = torch.from_numpy(x), torch.from_numpy(wt)
            work = flops(layer) * (2 if args.backward else 1)
            funcs = {}
            if args.backward:
                dout = rng.standard_normal(pyconv.conv2d(x, wt, **kw).shape).astype(dtype)
                tdout = torch.from_numpy(dout)
                txg, twg = tx.clone().requires_grad_(), tw.clone().requires_grad_()
                tb = torch.zeros(k, dtype=tx.dtype, requires_grad=True)

                def torch_backward():
                    out = torch.nn.functional.conv2d(txg, twg, tb, **kw)
                    torch.autograd.grad(out, (txg, twg, tb), tdout)

                funcs["torch"] = torch_backward
                # autograd needs a forward: time it alone and subtract it
                funcs["torch_fwd"] = lambda: torch.nn.functional.conv2d(txg, twg, tb, **kw)
                for m in args.methods:
                    funcs[m] = (lambda m=m: pyconv.conv2d_backward(dout, x, wt, method=m, **kw))
            else:
                funcs["torch"] = lambda: torch.nn.functional.conv2d(tx, tw, **kw)
                if g > 1:
                    txl = tx.contiguous(memory_format=torch.channels_last)
                    funcs["torch_cl"] = lambda: torch.nn.functional.conv2d(txl, tw, **kw)
                if not args.no_oracle:
                    funcs["oracle"] = lambda: conv2d_im2col(x, wt, **kw)
                for m in args.methods:
                    funcs[m] = (lambda m=m: pyconv.conv2d(x, wt, method=m, **kw))
            results = median_times(funcs, args.repeat, clock)
            if args.backward:
                results["torch"] -= results.pop("torch_fwd")
            line = "  ".join(f"{m} {1e3 * t:7.2f}ms {work / t / 1e9:6.1f}GF/s"
                             for m, t in results.items())
            ratios = "  ".join(f"{m}/torch {results['torch'] / results[m]:.2f}"
                               for m in args.methods)
            if "torch_cl" in results:
                ratios += "  " + "  ".join(f"{m}/torch_cl {results['torch_cl'] / results[m]:.2f}"
                                           for m in args.methods)
            kind = "bwd" if args.backward else "fwd"
            print(f"{dtype} {kind} {name:12s} {line}\n    {ratios}", flush=True)


if __name__ == "__main__":
    main()
