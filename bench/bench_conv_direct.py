"""Direct convolution kernels beside PyTorch and the NumPy im2col oracle, side by side.

Run: ``PYTHONPATH=. python bench/bench_conv_direct.py [--repeat 7] [--layers mnist,depthwise]``

Prints the median time (peers called in interleaved rounds) and GFLOP/s of each kernel on the issue's layer table,
float32 and float64, forward and backward (input and weight gradients; the
bias gradient is one sum, left to the caller), and the ratios to PyTorch
(NCHW and channels-last) and to the oracle. GFLOP/s counts
2 * N * K * OH * OW * (C / groups) * FH * FW per pass (twice that for the
backward pass, which computes two gradients).
"""
import argparse
import os

import numpy as np

from pyconv import _conv_direct, cpu_features, get_num_threads
from pyconv._geometry import conv_geometry
from pyconv.reference import conv2d_im2col

from _timing import median_times

# name: (x shape, w shape, options)
LAYERS = {
    "alexnet1": ((8, 3, 227, 227), (96, 3, 11, 11), dict(stride=4)),
    "vgg": ((8, 64, 56, 56), (64, 64, 3, 3), dict(padding=1)),
    "resnet_late": ((8, 256, 14, 14), (256, 256, 3, 3), dict(padding=1)),
    "mnist": ((64, 1, 28, 28), (8, 1, 5, 5), {}),
    "1x1": ((8, 256, 28, 28), (128, 256, 1, 1), {}),
    "depthwise": ((8, 128, 56, 56), (128, 1, 3, 3), dict(padding=1, groups=128)),
}


def direct_calls(x, w, b, g, threads):
    args = (*g.stride, g.pad[0], g.pad[2], *g.dilation, g.groups, threads)
    out = np.empty(g.out_shape, x.dtype)
    dout = np.ones(g.out_shape, x.dtype)
    dx, dw = np.empty_like(x), np.empty_like(w)

    def forward():
        _conv_direct.forward(x, w, b, out, *args)

    def backward():
        _conv_direct.backward_input(dout, w, dx, *args)
        _conv_direct.backward_weight(dout, x, dw, *args)

    return forward, backward


def torch_calls(x, w, b, options, channels_last):
    import torch
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    tx = torch.from_numpy(x).contiguous(memory_format=fmt).requires_grad_(True)
    tw = torch.from_numpy(w).contiguous(memory_format=fmt).requires_grad_(True)
    tb = torch.from_numpy(b).requires_grad_(True)
    kw = dict(stride=options.get("stride", 1), padding=options.get("padding", 0),
              groups=options.get("groups", 1))

    def forward():
        with torch.no_grad():
            torch.nn.functional.conv2d(tx, tw, tb, **kw)

    out = torch.nn.functional.conv2d(tx, tw, tb, **kw)
    dout = torch.ones_like(out)

    def backward():
        torch.autograd.grad(out, (tx, tw, tb), dout, retain_graph=True)

    return forward, backward


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--layers", default=",".join(LAYERS))
    parser.add_argument("--dtypes", default="float32,float64")
    parser.add_argument("--no-oracle", action="store_true", help="skip the slow NumPy oracle")
    args = parser.parse_args()
    threads = get_num_threads()
    try:
        import torch
        torch.set_num_threads(threads)
        torch_version = torch.__version__
    except ImportError:
        torch = None
        torch_version = "absent"
    print(f"threads={threads} level={cpu_features()['used']} torch={torch_version} "
          f"repeat={args.repeat} OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '')} "
          f"(median ms, GFLOP/s; xPEER = PEER time / direct time)")
    header = (f"{'layer':12} {'dtype':7} {'pass':4} {'direct':>15} {'torch NCHW':>15} "
              f"{'torch CL':>15} {'oracle':>15} {'xNCHW':>6} {'xCL':>6} {'xOrc':>6}")
    print(header)
    rng = np.random.default_rng(0)
    for name in args.layers.split(","):
        x_shape, w_shape, options = LAYERS[name]
        g = conv_geometry(x_shape, w_shape, **options)
        flop = 2 * g.n * g.k * g.oh * g.ow * (g.c // g.groups) * g.fh * g.fw
        for dtype in args.dtypes.split(","):
            x = rng.standard_normal(x_shape).astype(dtype)
            w = rng.standard_normal(w_shape).astype(dtype)
            b = rng.standard_normal(w_shape[0]).astype(dtype)
            fwd, bwd = direct_calls(x, w, b, g, threads)
            peers = {"direct": (fwd, bwd)}
            if torch is not None:
                peers["torch NCHW"] = torch_calls(x, w, b, options, False)
                peers["torch CL"] = torch_calls(x, w, b, options, True)
            if not args.no_oracle:
                peers["oracle"] = (lambda: conv2d_im2col(x, w, b, **options), None)
            for pass_, index, flops in (("fwd", 0, flop), ("bwd", 1, 2 * flop)):
                times = median_times({k: v[index] for k, v in peers.items()
                                      if v[index] is not None}, args.repeat)
                cells = []
                for k in ("direct", "torch NCHW", "torch CL", "oracle"):
                    t = times.get(k)
                    cells.append(f"{t * 1e3:8.2f} {flops / t / 1e9:6.1f}" if t else f"{'-':>15}")
                ratios = [f"{times[k] / times['direct']:6.2f}" if k in times else f"{'-':>6}"
                          for k in ("torch NCHW", "torch CL", "oracle")]
                print(f"{name:12} {dtype:7} {pass_:4} {' '.join(cells)} {' '.join(ratios)}",
                      flush=True)


if __name__ == "__main__":
    main()
