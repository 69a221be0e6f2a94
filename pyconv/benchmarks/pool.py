"""Benchmark of pooling, forward and backward, on the pools of real networks.

pyconv runs on NCHW arrays and, in the ``pyconv nhwc`` rows, on
channels-last ones (``layout="NHWC"``). Oracles: ``pyconv.reference``'s
``*_naive`` pools (Python loops over output positions, NumPy over N and C). Peers: PyTorch on NCHW tensors and on
channels-last ones (its fast path), the backward by the ATen kernels autograd
calls. The max-pool backward of every contender is given the indices of its
own forward, as a training step would.
"""
import numpy as np

import pyconv
from pyconv import reference

from .peers import load
from .spec import Case, Contender, Op, error_ratio

SHAPES = (
    ("tiny", dict(n=2, c=3, h=13, w=13, size=3, stride=2, padding=1), True),
    ("alexnet_pool1", dict(n=8, c=96, h=55, w=55, size=3, stride=2, padding=0), False),
    ("vgg_pool", dict(n=8, c=64, h=112, w=112, size=2, stride=2, padding=0), False),
)
OPS_TIMED = ("max_pool2d", "avg_pool2d", "max_pool2d_backward", "avg_pool2d_backward")


def _out_hw(p):
    return tuple(pyconv.pool_output_size(p[a], p["size"], stride=p["stride"],
                                         padding=p["padding"]) for a in ("h", "w"))


def make_inputs(p, dtype, rng):
    """x (N, C, H, W) and dout (N, C, OH, OW), standard normal (no ties in max pooling)."""
    x = rng.standard_normal((p["n"], p["c"], p["h"], p["w"])).astype(dtype)
    dout = rng.standard_normal((p["n"], p["c"]) + _out_hw(p)).astype(dtype)
    return dict(x=x, dout=dout)


def work(p, dtype):
    """GB: the input's size, N·C·H·W·itemsize, forward and backward alike."""
    return p["n"] * p["c"] * p["h"] * p["w"] * dtype.itemsize / 1e9


def traffic(op):
    """Bytes one call of pyconv's ``op`` reads plus writes: forward x and out;
    backward dout (and a max pool's int64 indices) and dx."""
    def count(p, dtype):
        oh, ow = _out_hw(p)
        x, out = p["n"] * p["c"] * p["h"] * p["w"], p["n"] * p["c"] * oh * ow
        indices = out * 8 if op == "max_pool2d_backward" else 0
        return (x + out) * dtype.itemsize + indices
    return count


def quick(p):
    """Batch 1."""
    return dict(p, n=1)


def describe(p):
    """``N×C×H×W FxF/s`` (and ``pP`` when padded)."""
    pad = f" p{p['padding']}" if p["padding"] else ""
    return f"{p['n']}×{p['c']}×{p['h']}×{p['w']} {p['size']}×{p['size']}/{p['stride']}{pad}"


def check(actual, expected, inputs, dtype):
    """Error against the oracle (the value only: a forward's indices are not timed)."""
    return error_ratio(actual, expected, dtype)


def _args(case):
    p = case.params
    return p["size"], dict(stride=p["stride"], padding=p["padding"])


def _pyconv(op):
    def bind(case, inp, threads):
        size, kw = _args(case)
        fn = getattr(pyconv, op)
        if op == "max_pool2d_backward":
            idx = pyconv.max_pool2d(inp["x"], size, return_indices=True, **kw)[1]
            return lambda: fn(inp["dout"], inp["x"], size, indices=idx, num_threads=threads, **kw)
        if op == "avg_pool2d_backward":
            return lambda: fn(inp["dout"], inp["x"].shape, size, num_threads=threads, **kw)
        return lambda: fn(inp["x"], size, num_threads=threads, **kw)
    return bind


def _pyconv_nhwc(op):
    """pyconv on channels-last copies of the inputs (made before timing); the result comes
    back as an NCHW view (no copy) for the check."""
    def bind(case, inp, threads):
        size, kw = _args(case)
        kw = dict(kw, layout="NHWC", num_threads=threads)
        fn = getattr(pyconv, op)
        x, dout = (np.ascontiguousarray(np.moveaxis(inp[a], 1, -1)) for a in ("x", "dout"))
        if op == "max_pool2d_backward":
            idx = pyconv.max_pool2d(x, size, return_indices=True, **kw)[1]
            return lambda: np.moveaxis(fn(dout, x, size, indices=idx, **kw), -1, 1)
        if op == "avg_pool2d_backward":
            return lambda: np.moveaxis(fn(dout, x.shape, size, **kw), -1, 1)
        return lambda: np.moveaxis(fn(x, size, **kw), -1, 1)
    return bind


def _oracle(op):
    def bind(case, inp, threads):
        size, kw = _args(case)
        fn = getattr(reference, op + "_naive")
        if op == "max_pool2d_backward":
            idx = reference.max_pool2d_naive(inp["x"], size, return_indices=True, **kw)[1]
            return lambda: fn(inp["dout"], inp["x"], size, indices=idx, **kw)
        if op == "avg_pool2d_backward":
            return lambda: fn(inp["dout"], inp["x"].shape, size, **kw)
        return lambda: fn(inp["x"], size, **kw)
    return bind


def _torch(op, channels_last):
    def bind(case, inp, threads):
        torch = load("torch")
        p = case.params
        k, s, pad = [p["size"]] * 2, [p["stride"]] * 2, [p["padding"]] * 2
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        x = torch.from_numpy(inp["x"]).contiguous(memory_format=fmt)
        dout = torch.from_numpy(inp["dout"]).contiguous(memory_format=fmt)
        aten = torch.ops.aten
        if op == "max_pool2d":
            return lambda: torch.nn.functional.max_pool2d(x, k, s, pad)
        if op == "avg_pool2d":
            return lambda: torch.nn.functional.avg_pool2d(x, k, s, pad)
        if op == "max_pool2d_backward":
            idx = aten.max_pool2d_with_indices(x, k, s, pad)[1]
            return lambda: aten.max_pool2d_with_indices_backward(dout, x, k, s, pad, [1, 1],
                                                                 False, idx)
        return lambda: aten.avg_pool2d_backward(dout, x, k, s, pad, False, True, None)
    return bind


_TORCH_CALL = {
    "max_pool2d": "torch.nn.functional.max_pool2d",
    "avg_pool2d": "torch.nn.functional.avg_pool2d",
    "max_pool2d_backward": "torch.ops.aten.max_pool2d_with_indices_backward",
    "avg_pool2d_backward": "torch.ops.aten.avg_pool2d_backward",
}


def _contenders(op):
    call = (f"pyconv.{op}(dout, x, size, stride=, padding=, indices=, num_threads=)"
            if op == "max_pool2d_backward" else f"pyconv.{op}(..., num_threads=threads)")
    return (
        Contender("pyconv", "pyconv", call, _pyconv(op)),
        Contender("pyconv nhwc", "pyconv", f"pyconv.{op}(..., layout='NHWC') on channels-last "
                  "arrays", _pyconv_nhwc(op)),
        Contender("oracle", "oracle", f"pyconv.reference.{op}_naive", _oracle(op)),
        Contender("torch", "peer", f"{_TORCH_CALL[op]} on NCHW tensors", _torch(op, False),
                  peer="torch"),
        Contender("torch-cl", "peer", f"{_TORCH_CALL[op]} on channels-last tensors",
                  _torch(op, True), peer="torch"),
    )


def _op(name):
    cases = tuple(Case(name, case, params, tiny=tiny) for case, params, tiny in SHAPES)
    return Op(name, "pool", "GB/s", work, "N·C·H·W·itemsize (input) / s", make_inputs, quick,
              describe, check, cases, _contenders(name), traffic=traffic(name))


OPS = tuple(_op(name) for name in OPS_TIMED)
