"""Benchmark of convolution, forward and backward, on the layers of real networks.

Three passes are timed: the forward, the whole backward (dx, dw and db) and,
on the 3×3 layers, ``dx`` alone (``conv2d_backward(..., need=("dx",))``, what
the layer below needs; Winograd computes it, not dw). pyconv runs with each method of ``METHODS``, one row each, and on channels-last
arrays (``layout="NHWC"``, method "auto") in the ``pyconv nhwc`` row. Oracles:
``conv2d_im2col`` and ``conv2d_backward_im2col`` (NumPy windows and BLAS), and
the per-element loops on the tiny case. Peers: PyTorch on NCHW tensors and on
channels-last ones, the backward by ``aten.convolution_backward`` (the kernel
autograd calls, without autograd's forward); SciPy's N-D ``correlate``, one
filter at a time, where that is practical (stride 1, no groups, C·K ≤ 64).
"""
import numpy as np

import pyconv
from pyconv import reference

from .peers import load
from .spec import Case, Contender, Op, error_ratio, tiny_only

FORWARD, BACKWARD, DX = "forward", "backward", "dx"  # the passes timed

LAYERS = (  # name, (N, C, H, W, K, F, stride, padding, groups), tiny, passes timed besides forward
    ("tiny", (2, 3, 12, 12, 4, 3, 1, 1, 1), True, (BACKWARD, DX)),
    ("alexnet_conv1", (8, 3, 227, 227, 96, 11, 4, 0, 1), False, (BACKWARD,)),
    ("vgg_3x3", (8, 64, 56, 56, 64, 3, 1, 1, 1), False, (BACKWARD, DX)),
    ("resnet_late", (8, 256, 14, 14, 256, 3, 1, 1, 1), False, (BACKWARD, DX)),
    ("mnist_like", (64, 1, 28, 28, 8, 5, 1, 0, 1), False, ()),
    ("conv1x1", (8, 256, 28, 28, 128, 1, 1, 0, 1), False, ()),
    ("depthwise", (8, 128, 56, 56, 128, 3, 1, 1, 128), False, (BACKWARD,)),
    # one image, as in inference
    ("vgg_3x3_n1", (1, 64, 56, 56, 64, 3, 1, 1, 1), False, ()),
    ("resnet_late_n1", (1, 256, 14, 14, 256, 3, 1, 1, 1), False, ()),
)
# pyconv's methods, each timed as its own row: (method, skip rule or None). A skip
# rule takes (case, dtype, pass) and returns why the method does not run the
# case, or None; a method this build of pyconv lacks is skipped with a line saying so.
def _winograd_applies(case, dtype, pass_):
    p = case.params
    if (p["f"], p["stride"], p["groups"]) != (3, 1, 1):
        return "needs 3x3 filters, stride 1 and no groups"
    return None


METHODS = (  # name, rule (case, dtype, pass) -> why it is skipped, or None
    ("auto", None),
    ("direct", None),
    ("im2col", None),
    ("winograd", _winograd_applies),
)


def _params(layer):
    n, c, h, w, k, f, s, p, g = layer
    return dict(n=n, c=c, h=h, w=w, k=k, f=f, stride=s, padding=p, groups=g)


def _out_hw(p):
    return tuple(pyconv.conv_output_size(p[a], p["f"], stride=p["stride"], padding=p["padding"])
                 for a in ("h", "w"))


def make_inputs(p, dtype, rng):
    """x (N, C, H, W), w (K, C/groups, F, F), b (K,), dout (N, K, OH, OW): standard normal."""
    return dict(x=rng.standard_normal((p["n"], p["c"], p["h"], p["w"])).astype(dtype),
                w=rng.standard_normal((p["k"], p["c"] // p["groups"], p["f"], p["f"])).astype(dtype),
                b=rng.standard_normal(p["k"]).astype(dtype),
                dout=rng.standard_normal((p["n"], p["k"]) + _out_hw(p)).astype(dtype))


def forward_work(p, dtype):
    """GFLOP: 2·N·K·OH·OW·(C/groups)·F² (a multiply and an add per tap)."""
    oh, ow = _out_hw(p)
    return 2 * p["n"] * p["k"] * oh * ow * (p["c"] // p["groups"]) * p["f"] ** 2 / 1e9


def backward_work(p, dtype):
    """GFLOP: twice the forward's (dx and dw each cost a forward; db is negligible)."""
    return 2 * forward_work(p, dtype)


def dx_work(p, dtype):
    """GFLOP: the forward's (dx is a convolution of dout with the filters)."""
    return forward_work(p, dtype)


def quick(p):
    """An eighth of the batch; a one-image case a third of its height and width (at least the
    filter's)."""
    if p["n"] >= 8:
        return dict(p, n=p["n"] // 8)
    return dict(p, h=max(p["f"], p["h"] // 3), w=max(p["f"], p["w"] // 3))


def describe(p):
    """``N×C×H×W K×F×F/s`` (``pP``, ``gG`` when there is padding or groups)."""
    extra = (f" p{p['padding']}" if p["padding"] else "") + \
        (f" g{p['groups']}" if p["groups"] > 1 else "")
    return f"{p['n']}×{p['c']}×{p['h']}×{p['w']} {p['k']}×{p['f']}×{p['f']}/{p['stride']}{extra}"


def depthwise_traffic(backward):
    """Bytes a depthwise call reads plus writes (None for other layers): x, w, b, out;
    backward dout, x, w, dx, dw, db."""
    def traffic(p, dtype):
        if p["groups"] == 1 or p["c"] != p["groups"]:
            return None
        oh, ow = _out_hw(p)
        x, out = p["n"] * p["c"] * p["h"] * p["w"], p["n"] * p["k"] * oh * ow
        w = p["k"] * p["f"] ** 2
        elements = 2 * (x + w) + p["k"] + out if backward else x + w + p["k"] + out
        return elements * dtype.itemsize
    return traffic


def check(actual, expected, inputs, dtype):
    """Error against the oracle (for the backward, the worst of dx, dw and db)."""
    return error_ratio(actual, expected, dtype)


def _options(case):
    p = case.params
    return dict(stride=p["stride"], padding=p["padding"], groups=p["groups"])


def _method_skip(method, rule, pass_):
    def skip(case, dtype):
        if method not in pyconv.conv.METHODS:
            return f"method {method!r} is not in this build"
        return rule(case, dtype, pass_) if rule else None
    return skip


def _pyconv(pass_, method):
    def bind(case, inp, threads):
        kw = dict(_options(case), method=method, num_threads=threads)
        if pass_ == DX:
            return lambda: pyconv.conv2d_backward(inp["dout"], inp["x"], inp["w"], need=("dx",),
                                                  **kw)[0]
        if pass_ == BACKWARD:
            return lambda: pyconv.conv2d_backward(inp["dout"], inp["x"], inp["w"], **kw)
        return lambda: pyconv.conv2d(inp["x"], inp["w"], inp["b"], **kw)
    return bind


def _pyconv_kept_winograd(case, inp, threads):
    """pyconv's Winograd forward with the filters' transform kept (pyconv.WinogradFilters,
    made and used once before timing), as an inference loop runs it."""
    filters = pyconv.WinogradFilters(inp["w"])
    kw = dict(_options(case), method="winograd", num_threads=threads)
    pyconv.conv2d(inp["x"], filters, inp["b"], **kw)
    return lambda: pyconv.conv2d(inp["x"], filters, inp["b"], **kw)


def _pyconv_nhwc(pass_):
    """pyconv on channels-last copies of x and dout (made before timing), method "auto";
    the result's images come back as NCHW views (no copy) for the check."""
    def bind(case, inp, threads):
        kw = dict(_options(case), layout="NHWC", num_threads=threads)
        x, dout = (np.ascontiguousarray(np.moveaxis(inp[a], 1, -1)) for a in ("x", "dout"))
        if pass_ == DX:
            return lambda: np.moveaxis(
                pyconv.conv2d_backward(dout, x, inp["w"], need=("dx",), **kw)[0], -1, 1)
        if pass_ == BACKWARD:
            def call():
                dx, dw, db = pyconv.conv2d_backward(dout, x, inp["w"], **kw)
                return np.moveaxis(dx, -1, 1), dw, db
            return call
        return lambda: np.moveaxis(pyconv.conv2d(x, inp["w"], inp["b"], **kw), -1, 1)
    return bind


def _oracle(pass_, loops):
    def bind(case, inp, threads):
        kw = _options(case)
        if pass_ != FORWARD:
            fn = reference.conv2d_backward_naive if loops else reference.conv2d_backward_im2col
            if pass_ == DX:
                return lambda: fn(inp["dout"], inp["x"], inp["w"], need=("dx",), **kw)[0]
            return lambda: fn(inp["dout"], inp["x"], inp["w"], **kw)
        fn = reference.conv2d_naive if loops else reference.conv2d_im2col
        return lambda: fn(inp["x"], inp["w"], inp["b"], **kw)
    return bind


def _torch(pass_, channels_last):
    def bind(case, inp, threads):
        torch = load("torch")
        p = case.params
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        x, w, dout = (torch.from_numpy(inp[a]).contiguous(memory_format=fmt)
                      for a in ("x", "w", "dout"))
        b = torch.from_numpy(inp["b"])
        s, pad = [p["stride"]] * 2, [p["padding"]] * 2
        if pass_ == FORWARD:
            return lambda: torch.nn.functional.conv2d(x, w, b, s, pad, 1, p["groups"])
        mask = [True, pass_ == BACKWARD, pass_ == BACKWARD]

        def gradients():
            grads = torch.ops.aten.convolution_backward(
                dout, x, w, [p["k"]], s, pad, [1, 1], False, [0, 0], p["groups"], mask)
            return grads[0] if pass_ == DX else grads
        return gradients
    return bind


def _scipy_applies(case, dtype):
    p = case.params
    if p["stride"] != 1 or p["groups"] != 1 or p["c"] * p["k"] > 64:
        return "needs stride 1, no groups and C·K <= 64 (one N-D correlate per filter)"
    return None


def _scipy(case, inp, threads):
    from scipy.signal import correlate

    p = case.params
    pad = p["padding"]
    xp = np.pad(inp["x"], ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    w, b = inp["w"], inp["b"]
    # correlating (N, C, H, W) with (1, C, F, F) in "valid" mode sums over C
    return lambda: np.concatenate(
        [correlate(xp, w[k][None], mode="valid") + b[k] for k in range(p["k"])], axis=1)


def _contenders(pass_):
    backward = pass_ != FORWARD
    name = "conv2d_backward" if backward else "conv2d"
    args = {FORWARD: "x, w, b", BACKWARD: "dout, x, w", DX: "dout, x, w, need=('dx',)"}[pass_]
    oracle = "conv2d_backward_im2col" if backward else "conv2d_im2col"
    loops = "conv2d_backward_naive" if backward else "conv2d_naive"
    if pass_ == DX:
        oracle, loops = (f"{fn}(..., need=('dx',))" for fn in (oracle, loops))
    torch_call = {FORWARD: "torch.nn.functional.conv2d",
                  BACKWARD: "torch.ops.aten.convolution_backward (dx, dw, db)",
                  DX: "torch.ops.aten.convolution_backward (dx only)"}[pass_]
    out = tuple(Contender(f"pyconv {m}", "pyconv",
                          f"pyconv.{name}({args}, method={m!r}, num_threads=threads)",
                          _pyconv(pass_, m), skip=_method_skip(m, rule, pass_))
                for m, rule in METHODS)
    out += (
        Contender("pyconv nhwc", "pyconv",
                  f"pyconv.{name}({args}, layout='NHWC', num_threads=threads) on channels-last "
                  "x" + (" and dout" if backward else ""), _pyconv_nhwc(pass_)),
        Contender("oracle", "oracle", f"pyconv.reference.{oracle}", _oracle(pass_, False)),
        Contender("loops", "loops", f"pyconv.reference.{loops}", _oracle(pass_, True),
                  skip=tiny_only),
        Contender("torch", "peer", f"{torch_call} on NCHW tensors", _torch(pass_, False),
                  peer="torch"),
        Contender("torch-cl", "peer", f"{torch_call} on channels-last tensors",
                  _torch(pass_, True), peer="torch"),
    )
    if not backward:
        out = out[:len(METHODS)] + (
            Contender("pyconv winograd-kept", "pyconv",
                      "pyconv.conv2d(x, pyconv.WinogradFilters(w), b, method='winograd', "
                      "num_threads=threads), the filters' transform kept from call to call",
                      _pyconv_kept_winograd,
                      skip=_method_skip("winograd", _winograd_applies, FORWARD)),
        ) + out[len(METHODS):]
        out += (Contender("scipy", "peer", "scipy.signal.correlate(x_padded, w[k][None], "
                          "'valid') for each filter k", _scipy, peer="scipy",
                          skip=_scipy_applies),)
    return out


def _cases(op, pass_):
    return tuple(Case(op, name, _params(layer), tiny=tiny)
                 for name, layer, tiny, passes in LAYERS if pass_ == FORWARD or pass_ in passes)


OPS = (
    Op("conv2d", "conv", "GFLOP/s", forward_work, "2·N·K·OH·OW·(C/groups)·F² / s", make_inputs,
       quick, describe, check, _cases("conv2d", FORWARD), _contenders(FORWARD), gemm=True,
       traffic=depthwise_traffic(False)),
    Op("conv2d_backward", "conv", "GFLOP/s", backward_work, "2 × the forward's flop / s",
       make_inputs, quick, describe, check, _cases("conv2d_backward", BACKWARD),
       _contenders(BACKWARD), gemm=True, traffic=depthwise_traffic(True)),
    Op("conv2d_backward_dx", "conv", "GFLOP/s", dx_work,
       "the forward's flop / s (dx alone: conv2d_backward(..., need=('dx',)))",
       make_inputs, quick, describe, check, _cases("conv2d_backward_dx", DX), _contenders(DX),
       gemm=True, function="conv2d_backward"),
)
