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


def _formula(n, f, stride, padding, dilation):
    if dilation == 1:
        return f"({n} - {f} + 2*{padding})/{stride} + 1"
    return f"({n} - {dilation}*({f} - 1) - 1 + 2*{padding})/{stride} + 1"


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
    padding : int, default 0
        Zeros added on each side, at least 0.
    dilation : int, default 1
        Spacing between kernel taps, at least 1.
    strict : bool, default True
        If True, a configuration whose size is not a whole number is an
        error; if False, the size is floored (PyTorch's semantics).

    Returns
    -------
    int
        ``(n - dilation*(f - 1) - 1 + 2*padding) / stride + 1``.

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
    """
    n = check_int(n, "n", 1)
    f = check_int(f, "f", 1)
    stride = check_int(stride, "stride", 1)
    padding = check_int(padding, "padding", 0)
    dilation = check_int(dilation, "dilation", 1)
    strict = check_bool(strict, "strict")
    extent = dilation * (f - 1) + 1
    span = n - extent + 2 * padding
    formula = _formula(n, f, stride, padding, dilation)
    if span < 0:
        raise InvalidConfigError(
            f"kernel larger than the padded input: {formula} = {span / stride + 1:g} < 1 "
            f"(kernel extent {extent} > input {n} + 2*padding {padding})"
        )
    if strict and span % stride:
        fixes = _working_paddings(n, extent, stride, padding)
        if fixes:
            hint = "paddings that fit: " + ", ".join(
                f"{p} (gives {(n - extent + 2 * p) // stride + 1})" for p in fixes)
        else:
            strides = _divisors(span)
            listed = f"the divisors of {span}" if strides is None else ", ".join(map(str, strides))
            hint = (f"no padding makes stride {stride} fit; strides that fit with padding "
                    f"{padding}: {listed}")
        raise InvalidConfigError(
            f"invalid configuration: {formula} = {span / stride + 1:g} is not a whole number; "
            f"{hint}; or pass strict=False to floor it"
        )
    return span // stride + 1


def pool_output_size(n, size, *, stride=None, padding=0, dilation=1, strict=True):
    """Output size of a pooling window along one axis.

    Parameters
    ----------
    n : int
        Input size, at least 1.
    size : int
        Window size, at least 1.
    stride : int or None, default None
        Step between windows; None means ``size`` (non-overlapping windows).
    padding : int, default 0
        Padding on each side, at most ``size // 2`` (so that every window
        holds at least one real element).
    dilation : int, default 1
    strict : bool, default True
        As in :func:`conv_output_size`.

    Returns
    -------
    int
        The same formula as :func:`conv_output_size`.

    Raises
    ------
    InvalidConfigError
        As :func:`conv_output_size`.
    ValueError
        If ``padding`` exceeds half the window.

    Examples
    --------
    AlexNet's first pool, 3x3 at stride 2 on a 55x55 map:

    >>> pool_output_size(55, 3, stride=2)
    27
    """
    size = check_int(size, "size", 1)
    stride = size if stride is None else stride
    padding = check_int(padding, "padding", 0)
    if padding > size // 2:
        raise ValueError(
            f"padding must be at most half the pool window (size // 2 = {size // 2}), "
            f"got padding={padding} for size={size}"
        )
    return conv_output_size(n, size, stride=stride, padding=padding, dilation=dilation,
                            strict=strict)


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
  maxpool:f=F[,s=S][,p=P]     window F, stride S (default F), padding P (0)
  avgpool:f=F[,s=S][,p=P]     the same, averaging
  fc:n=N[,bias=0]             fully connected to N outputs (flattens its input)

Input shapes are written HxWxC, as in 227x227x3.
"""

_KEYS = {
    "conv": {"k", "f", "s", "p", "d", "g", "bias"},
    "maxpool": {"f", "s", "p"},
    "avgpool": {"f", "s", "p"},
    "fc": {"n", "bias"},
}
_REQUIRED = {"conv": {"k", "f"}, "maxpool": {"f"}, "avgpool": {"f"}, "fc": {"n"}}


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
            if key == "f" and "x" in value:
                options[key] = tuple(int(v) for v in value.split("x"))
            else:
                options[key] = int(value)
        except ValueError:
            raise ValueError(f"layer {spec!r}: {key} must be a whole number, got {value!r}") from None
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
    if kind == "conv":
        s, p, d = o.get("s", 1), o.get("p", 0), o.get("d", 1)
        oh = conv_output_size(h, fh, stride=s, padding=p, dilation=d, strict=strict)
        ow = conv_output_size(w, fw, stride=s, padding=p, dilation=d, strict=strict)
        params = conv_param_count(o["k"], (fh, fw), c, bias=bool(o.get("bias", 1)),
                                  groups=o.get("g", 1))
        return (oh, ow, o["k"]), params
    s, p = o.get("s"), o.get("p", 0)
    oh = pool_output_size(h, fh, stride=s, padding=p, strict=strict)
    ow = pool_output_size(w, fw, stride=s, padding=p, strict=strict)
    return (oh, ow, c), 0


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
