"""Shape arithmetic of a conv net: output sizes, parameter counts, layer summaries.

A conv or pool layer with input size ``n``, kernel ``f``, stride ``s``, padding
``p`` and dilation ``d`` produces ``(n - d*(f - 1) - 1 + 2p)/s + 1`` outputs
along that axis (with ``d = 1``: ``(n - f + 2p)/s + 1``). When that is not a
whole number the configuration is *invalid*: the kernel does not tile the
padded input.
"""
import dataclasses
import math

from ._validation import check_bool, check_int, pair


class InvalidConfigError(ValueError):
    """A layer configuration whose output size is not a positive whole number."""


def _formula(n, f, stride, before, after, dilation):
    pads = f"2*{before}" if before == after else f"{before} + {after}"
    if dilation == 1:
        return f"({n} - {f} + {pads})/{stride} + 1"
    return f"({n} - {dilation}*({f} - 1) - 1 + {pads})/{stride} + 1"


def _axis_padding(padding):
    """One axis's padding as (before, after), or "same"."""
    if isinstance(padding, str):
        if padding in ("same", "valid"):
            return "same" if padding == "same" else (0, 0)
        raise ValueError(f"padding must be an int, a (before, after) pair, 'valid' or 'same', "
                         f"got {padding!r}")
    if isinstance(padding, (tuple, list)):
        if len(padding) != 2:
            raise ValueError(f"padding must be an int, a (before, after) pair, 'valid' or "
                             f"'same', got {padding!r}")
        return tuple(check_int(p, "padding", 0) for p in padding)
    p = check_int(padding, "padding", 0)
    return (p, p)


def _working_paddings(n, extent, stride, padding):
    """The paddings nearest to ``padding`` (one below, one above) that make the size whole.

    ``n - extent + 2p`` must be a non-negative multiple of ``stride``: solved
    as a congruence, so a huge stride or size costs nothing.
    """
    base = n - extent
    step = stride // math.gcd(2, stride)       # the solutions p are spaced by this
    if stride % 2 == 0 and base % 2:
        return []                               # 2p + odd is never a multiple of an even stride
    if stride % 2:
        first = (-base * pow(2, -1, stride)) % stride
    else:
        first = (-base // 2) % step
    lowest = max(0, -(base // 2))               # p with n - extent + 2p >= 0
    below = padding - 1 - (padding - 1 - first) % step
    above = padding + 1 + (first - padding - 1) % step
    return ([below] if below >= lowest else []) + [above]


def _divisors(span, limit=10**6):
    """Divisors of ``span`` in increasing order, or None when ``span`` is too large to factor."""
    if span > limit:
        return None
    small = [d for d in range(1, math.isqrt(span) + 1) if span % d == 0]
    return small + [span // d for d in reversed(small) if d * d != span]


def _output_size(n, f, stride, padding, dilation, strict, ceil_mode):
    """The checked output size along one axis (see :func:`conv_output_size`)."""
    n = check_int(n, "n", 1)
    f = check_int(f, "f", 1)
    stride = check_int(stride, "stride", 1)
    dilation = check_int(dilation, "dilation", 1)
    strict = check_bool(strict, "strict")
    ceil_mode = check_bool(ceil_mode, "ceil_mode")
    padding = _axis_padding(padding)
    extent = dilation * (f - 1) + 1
    if padding == "same":
        if ceil_mode:
            raise ValueError("ceil_mode=True cannot be combined with padding='same', whose "
                             "output size is already ceil(n / stride)")
        return -(-n // stride)
    before, after = padding
    span = n - extent + before + after
    formula = _formula(n, f, stride, before, after, dilation)
    if span < 0:
        raise InvalidConfigError(
            f"kernel larger than the padded input: {formula} = {span / stride + 1:g} < 1 "
            f"(kernel extent {extent} > input {n} + padding {before} + {after})"
        )
    if ceil_mode:
        out = -(-span // stride) + 1
        # a last window that would start in the after-padding is dropped (PyTorch, ONNX)
        return out - 1 if (out - 1) * stride >= n + before else out
    if strict and span % stride:
        if before != after:
            fits = after + (-span) % stride
            hint = f"an after-padding of {fits} fits (gives {(span + fits - after) // stride + 1})"
        else:
            fixes = _working_paddings(n, extent, stride, before)
            if fixes:
                hint = "paddings that fit: " + ", ".join(
                    f"{p} (gives {(n - extent + 2 * p) // stride + 1})" for p in fixes)
            else:
                strides = _divisors(span)
                listed = (f"the divisors of {span}" if strides is None
                          else ", ".join(map(str, strides)))
                hint = (f"no padding makes stride {stride} fit; strides that fit with padding "
                        f"{before}: {listed}")
        raise InvalidConfigError(
            f"invalid configuration: {formula} = {span / stride + 1:g} is not a whole number; "
            f"{hint}; or pass strict=False to floor it"
        )
    return span // stride + 1


def conv_output_size(n, f, *, stride=1, padding=0, dilation=1, strict=True):
    """Output size of a convolution along one axis.

    Parameters
    ----------
    n : int
        Input size (W or H), at least 1.
    f : int
        Kernel size, at least 1.
    stride : int, default 1
        Positive step between windows.
    padding : int, (int, int), "valid" or "same", default 0
        Zeros added on each side, or (before, after) on the two sides, at
        least 0. ``"same"`` is TensorFlow's: ``ceil(n / stride)`` outputs.
    dilation : int, default 1
        Spacing between kernel taps, at least 1.
    strict : bool, default True
        If True, a configuration whose size is not a whole number is an
        error; if False, the size is floored (PyTorch's semantics).

    Returns
    -------
    int
        ``(n - dilation*(f - 1) - 1 + before + after) / stride + 1``.

    Raises
    ------
    InvalidConfigError
        If the kernel is larger than the padded input, or, with ``strict``,
        if the size is not a whole number. The message shows the formula
        with the numbers and the nearest paddings that would work.
    ValueError, TypeError
        If an argument is out of range or not an int.

    Examples
    --------
    The handout's 32x32 input with a 5x5 filter:

    >>> conv_output_size(32, 5, stride=3)
    10
    >>> conv_output_size(32, 5, stride=3, padding=3)
    12
    >>> conv_output_size(32, 5, stride=2, strict=False)
    14
    >>> conv_output_size(32, 5, stride=3, padding=(1, 2)), conv_output_size(32, 5, stride=3, padding="same")
    (11, 11)
    """
    return _output_size(n, f, stride, padding, dilation, strict, False)


def pool_output_size(n, size, *, stride=None, padding=0, dilation=1, strict=True,
                     ceil_mode=False):
    """Output size of a pooling window along one axis.

    Parameters
    ----------
    n : int
        Input size, at least 1.
    size : int
        Window size, at least 1.
    stride : int or None, default None
        Step between windows; None means ``size`` (non-overlapping windows).
    padding : int, (int, int), "valid" or "same", default 0
        Padding on each side, or (before, after), each at most ``size // 2``
        (PyTorch's rule). ``"same"`` is TensorFlow's, ``ceil(n / stride)``
        outputs, with no such limit.
    dilation : int, default 1
    strict : bool, default True
        As in :func:`conv_output_size`; no effect with ``ceil_mode``.
    ceil_mode : bool, default False
        Round the size up instead of down, as PyTorch and ONNX do, dropping
        a last window that would start in the after-padding:
        ``ceil((n + before + after - dilation*(size - 1) - 1) / stride) + 1``,
        less one if ``(that - 1) * stride >= n + before``.

    Returns
    -------
    int
        The same formula as :func:`conv_output_size`, or the ceil-mode one.

    Raises
    ------
    InvalidConfigError
        As :func:`conv_output_size`.
    ValueError
        If a padding exceeds half the window.

    Examples
    --------
    AlexNet's first pool, 3x3 at stride 2 on a 55x55 map, and a 2x2 pool of
    a 5-wide input in ceil mode:

    >>> pool_output_size(55, 3, stride=2)
    27
    >>> pool_output_size(5, 2, ceil_mode=True)
    3
    """
    size = check_int(size, "size", 1)
    stride = size if stride is None else stride
    pads = _axis_padding(padding)
    if pads != "same" and max(pads) > size // 2:
        given = pads[0] if pads[0] == pads[1] else pads
        raise ValueError(
            f"padding must be at most half the pool window (size // 2 = {size // 2}) on each "
            f"side, got padding={given} for size={size}"
        )
    return _output_size(n, size, stride, pads, dilation, strict, ceil_mode)


def conv_param_count(k, f, c, *, bias=True, groups=1):
    """Trainable parameters of a conv layer: ``K * (FH*FW*C/groups + 1)``.

    Parameters
    ----------
    k : int
        Number of filters (output channels).
    f : int or (int, int)
        Kernel size, square or (FH, FW).
    c : int
        Input channels.
    bias : bool, default True
        Whether each filter has a bias term.
    groups : int, default 1
        Channel groups; ``c`` and ``k`` must be multiples of it.

    Returns
    -------
    int

    Examples
    --------
    >>> conv_param_count(96, 11, 3)   # AlexNet conv1
    34944
    >>> conv_param_count(25, 3, 5)
    1150
    """
    k = check_int(k, "k", 1)
    fh, fw = pair(f, "f", 1)
    c = check_int(c, "c", 1)
    groups = check_int(groups, "groups", 1)
    if c % groups or k % groups:
        raise ValueError(
            f"groups={groups} must divide both the input channels c={c} and the filters k={k}"
        )
    return k * (fh * fw * (c // groups) + int(bool(bias)))


# ---------------------------------------------------------------------------
# Layer summaries

LAYER_SYNTAX = """\
Layers are written TYPE:KEY=VALUE,... with these types and keys:

  conv:k=K,f=F[,s=S][,p=P][,d=D][,g=G][,bias=0]
        K filters of size F (or FHxFW), stride S (1), padding P (0),
        dilation D (1), groups G (1); bias=0 drops the biases.
  maxpool:f=F[,s=S][,p=P][,d=D][,ceil=1]
        window F, stride S (default F), padding P (0), dilation D (1);
        ceil=1 rounds the output size up (PyTorch's ceil_mode)
  avgpool:f=F[,s=S][,p=P][,d=D][,ceil=1]     the same, averaging
  fc:n=N[,bias=0]             fully connected to N outputs (flattens its input)

A padding P is one number for every side, PHxPW for the two sides of each
axis, T/BxL/R for (top, bottom) and (left, right) apart (as 0/1x0/1), or
same (TensorFlow's: the output is ceil(input / stride)) or valid.
Input shapes are written HxWxC, as in 227x227x3.
"""

_KEYS = {
    "conv": {"k", "f", "s", "p", "d", "g", "bias"},
    "maxpool": {"f", "s", "p", "d", "ceil"},
    "avgpool": {"f", "s", "p", "d", "ceil"},
    "fc": {"n", "bias"},
}
_REQUIRED = {"conv": {"k", "f"}, "maxpool": {"f"}, "avgpool": {"f"}, "fc": {"n"}}


def _parse_padding(value):
    """A layer's padding: "same", "valid", P, PHxPW or T/BxL/R (ints, or pairs of ints)."""
    if value in ("same", "valid"):
        return value
    axes = [tuple(int(v) for v in axis.split("/")) for axis in value.split("x")]
    if len(axes) == 1 and len(axes[0]) == 1:
        return axes[0][0]
    if len(axes) != 2 or any(len(a) not in (1, 2) for a in axes):
        raise ValueError(value)
    return tuple(a[0] if len(a) == 1 else a for a in axes)


@dataclasses.dataclass(frozen=True)
class LayerRow:
    """One line of a :class:`Summary`: a layer, its output shape and its parameter count."""

    layer: str
    output_shape: tuple
    params: int


@dataclasses.dataclass(frozen=True)
class Summary:
    """Per-layer output shapes and parameter counts of a stack of layers."""

    input_shape: tuple
    rows: tuple

    @property
    def total_params(self):
        """Trainable parameters of all layers."""
        return sum(row.params for row in self.rows)

    @property
    def output_shape(self):
        """Shape after the last layer."""
        return self.rows[-1].output_shape if self.rows else self.input_shape

    def __str__(self):
        table = [("layer", "output shape", "parameters"),
                 ("input", str(self.input_shape), "0")]
        table += [(r.layer, str(r.output_shape), f"{r.params:,}") for r in self.rows]
        table.append(("total", str(self.output_shape), f"{self.total_params:,}"))
        widths = [max(len(line[i]) for line in table) for i in range(3)]
        return "\n".join(
            f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c:>{widths[2]}}" for a, b, c in table
        )


def parse_shape(text):
    """Parse an input shape written ``HxWxC`` (as ``227x227x3``) into a tuple."""
    try:
        shape = tuple(int(part) for part in text.lower().split("x"))
    except ValueError:
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"input shape must be written HxWxC with positive sizes, got {text!r}")
    return shape


def parse_layer(spec):
    """Parse a layer written ``TYPE:KEY=VALUE,...`` into ``(type, {key: value})``.

    See ``LAYER_SYNTAX`` for the types and keys.
    """
    kind, _, rest = spec.partition(":")
    if kind not in _KEYS:
        raise ValueError(f"layer {spec!r}: unknown type {kind!r}, expected one of "
                         f"{', '.join(_KEYS)}")
    options = {}
    for item in filter(None, rest.split(",")):
        key, eq, value = item.partition("=")
        if not eq or key not in _KEYS[kind]:
            raise ValueError(f"layer {spec!r}: unknown option {item!r}; {kind} takes "
                             f"{', '.join(sorted(_KEYS[kind]))}")
        try:
            if key == "p":
                options[key] = _parse_padding(value)
            elif key == "f" and "x" in value:
                options[key] = tuple(int(v) for v in value.split("x"))
            else:
                options[key] = int(value)
        except ValueError:
            form = ("P, PHxPW, T/BxL/R, same or valid" if key == "p"
                    else "a whole number")
            raise ValueError(f"layer {spec!r}: {key} must be {form}, got {value!r}") from None
    missing = _REQUIRED[kind] - options.keys()
    if missing:
        raise ValueError(f"layer {spec!r}: missing {', '.join(sorted(missing))}")
    return kind, options


def _layer_output(kind, o, shape, strict):
    """Output shape and parameter count of one parsed layer on an (H, W, C) or (N,) input."""
    if kind == "fc":
        check_int(o["n"], "n", 1)
        features = math.prod(shape)
        return (o["n"],), o["n"] * (features + int(bool(o.get("bias", 1))))
    if len(shape) != 3:
        raise ValueError(f"{kind} needs an HxWxC input, got {shape} (after a fully connected layer)")
    h, w, c = shape
    fh, fw = pair(o["f"], "f", 1)
    ph, pw = _split_padding(o.get("p", 0))
    if kind == "conv":
        s, d = o.get("s", 1), o.get("d", 1)
        oh = conv_output_size(h, fh, stride=s, padding=ph, dilation=d, strict=strict)
        ow = conv_output_size(w, fw, stride=s, padding=pw, dilation=d, strict=strict)
        params = conv_param_count(o["k"], (fh, fw), c, bias=bool(o.get("bias", 1)),
                                  groups=o.get("g", 1))
        return (oh, ow, o["k"]), params
    sh, sw = (fh, fw) if o.get("s") is None else (o["s"], o["s"])
    options = dict(dilation=o.get("d", 1), strict=strict, ceil_mode=bool(o.get("ceil", 0)))
    oh = pool_output_size(h, fh, stride=sh, padding=ph, **options)
    ow = pool_output_size(w, fw, stride=sw, padding=pw, **options)
    return (oh, ow, c), 0


def _split_padding(p):
    """A layer's padding as one padding per axis (H, W)."""
    if isinstance(p, tuple):
        return p
    return p, p


def summary(input_shape, layers, *, strict=True):
    """Output shape and trainable parameters of each layer of a conv net.

    Parameters
    ----------
    input_shape : (int, int, int)
        The input as (H, W, C), or a string ``"HxWxC"``.
    layers : sequence of str
        Layers in the syntax of ``LAYER_SYNTAX``, e.g. ``"conv:k=96,f=11,s=4"``.
    strict : bool, default True
        Whether a non-integer output size is an error (see
        :func:`conv_output_size`).

    Returns
    -------
    Summary
        ``str()`` of it is a table; ``rows`` and ``total_params`` hold the numbers.

    Raises
    ------
    InvalidConfigError
        Naming the layer and showing the formula with its numbers.
    ValueError
        For a layer written wrongly.

    Examples
    --------
    >>> s = summary((227, 227, 3), ["conv:k=96,f=11,s=4", "maxpool:f=3,s=2"])
    >>> [(r.output_shape, r.params) for r in s.rows]
    [((55, 55, 96), 34944), ((27, 27, 96), 0)]
    """
    if isinstance(input_shape, str):
        start = parse_shape(input_shape)
    elif isinstance(input_shape, (tuple, list)) and len(input_shape) == 3:
        start = tuple(check_int(s, "input_shape entries", 1) for s in input_shape)
    else:
        raise ValueError(f"input_shape must be (H, W, C) or a string 'HxWxC', got {input_shape!r}")
    if isinstance(layers, str) or not isinstance(layers, (list, tuple)):
        raise TypeError(f"layers must be a list of layer strings such as ['conv:k=96,f=11,s=4'], "
                        f"got {type(layers).__name__} {layers!r}")
    for spec in layers:
        if not isinstance(spec, str):
            raise TypeError(f"layers must hold strings, got {spec!r} of type "
                            f"{type(spec).__name__}")
    shape = start
    rows = []
    for i, spec in enumerate(layers, 1):
        kind, options = parse_layer(spec)
        try:
            shape, params = _layer_output(kind, options, shape, strict)
        except InvalidConfigError as exc:
            raise InvalidConfigError(f"layer {i} ({spec}) on input {shape}: {exc}") from None
        rows.append(LayerRow(spec, shape, params))
    return Summary(start, tuple(rows))
