"""Geometry of a convolution or pooling call: checked sizes, strides and paddings.

Shared by the public functions and the oracles, so that both accept and refuse
exactly the same calls.
"""
import dataclasses
import functools

from ._validation import channel_mismatch, check_bool, check_int, pair
from .shapes import InvalidConfigError, conv_output_size, pool_output_size

INT_MAX = 2**31 - 1


@dataclasses.dataclass(frozen=True)
class Geometry:
    """Sizes of one NCHW convolution or pooling call.

    ``pad`` is (top, bottom, left, right); the kernel is (fh, fw) and has
    ``k`` outputs channels (``k == c`` for pooling).
    """

    n: int
    c: int
    h: int
    w: int
    k: int
    fh: int
    fw: int
    oh: int
    ow: int
    stride: tuple
    pad: tuple
    dilation: tuple
    groups: int = 1

    def __post_init__(self):
        values = (self.n, self.c, self.h, self.w, self.k, self.fh, self.fw, self.oh, self.ow,
                  *self.stride, *self.pad, *self.dilation, self.groups)
        if max(values) <= INT_MAX and max(self.h + self.pad[0] + self.pad[1],
                                          self.w + self.pad[2] + self.pad[3]) <= INT_MAX:
            return
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            for v in value if isinstance(value, tuple) else (value,):
                if v > INT_MAX:
                    raise ValueError(f"{field.name}={value} is too large: kernels take sizes, "
                                     f"strides, paddings and dilations up to 2**31 - 1")
        padded = (self.h + self.pad[0] + self.pad[1], self.w + self.pad[2] + self.pad[3])
        if max(padded) > INT_MAX:
            raise ValueError(f"the padded input {padded} is too large: kernels index rows and "
                             f"columns up to 2**31 - 1 (padding {self.pad}, dilation "
                             f"{self.dilation})")

    @property
    def out_shape(self):
        return (self.n, self.k, self.oh, self.ow)


def batch_views(x, w=None):
    """View ``x`` (and ``w``) as 4-D, and return a function that undoes it on results.

    ``x`` may be (N, C, H, W); (C, H, W), giving (K, OH, OW); or (H, W) with
    ``w`` (FH, FW) (or ``w`` None, for pooling), giving (OH, OW).
    """
    if x.ndim not in (2, 3, 4):
        raise ValueError(f"x must have shape (N, C, H, W), (C, H, W) or (H, W), got {x.shape}")
    if w is not None:
        if x.ndim == 2 and w.ndim != 2:
            raise ValueError(f"with a 2-D x, w must be 2-D (FH, FW), got shape {w.shape}")
        if x.ndim > 2 and w.ndim != 4:
            raise ValueError(f"w must have shape (K, C/groups, FH, FW), got {w.shape}")
    lead = 4 - x.ndim
    x4 = x.reshape((1,) * lead + x.shape)
    w4 = None if w is None else w.reshape((1,) * (4 - w.ndim) + w.shape)

    def restore(out):
        return out.reshape(out.shape[lead:])

    return x4, w4, restore


def _along(axis, size_of, n, f, **options):
    """``size_of(n, f, **options)``, with the axis named in the message of an invalid one."""
    try:
        return size_of(n, f, **options)
    except InvalidConfigError as exc:
        raise InvalidConfigError(f"along {axis} (input {n}, window {f}): {exc}") from None


PADDING_FORMS = ("an int, an (h, w) pair, ((top, bottom), (left, right)), 'valid' or "
                 "'same'")


def parse_padding(padding):
    """``padding`` as ``"same"`` or a checked (top, bottom, left, right) tuple.

    Accepted: an int (every side), an (h, w) pair (both sides of each axis),
    ``((top, bottom), (left, right))`` (either half may also be one int),
    ``"valid"`` (no padding) and ``"same"``.
    """
    if isinstance(padding, str):
        if padding == "same":
            return "same"
        if padding == "valid":
            return (0, 0, 0, 0)
        raise ValueError(f"padding must be {PADDING_FORMS}, got {padding!r}")
    if isinstance(padding, (tuple, list)):
        if len(padding) != 2:
            raise ValueError(f"padding must be {PADDING_FORMS}, got {padding!r}")
        sides = []
        for axis in padding:
            if isinstance(axis, (tuple, list)):
                if len(axis) != 2:
                    raise ValueError(f"padding must be {PADDING_FORMS}, got {padding!r}: "
                                     f"each axis is an int or a (before, after) pair")
                sides += [check_int(a, "padding", 0) for a in axis]
            else:
                sides += [check_int(axis, "padding", 0)] * 2
        return tuple(sides)
    p = check_int(padding, "padding", 0)
    return (p, p, p, p)


def same_padding(n, f, stride, dilation):
    """TensorFlow's "same" along one axis: (output size, before, after).

    The output size is ceil(n / stride); the total padding, max((out - 1)*stride
    + (f - 1)*dilation + 1 - n, 0), is split with the odd one after.
    """
    out = -(-n // stride)
    total = max((out - 1) * stride + (f - 1) * dilation + 1 - n, 0)
    return out, total // 2, total - total // 2


def conv_geometry(x_shape, w_shape, stride=1, padding=0, dilation=1, groups=1, strict=True,
                  layout="NCHW"):
    """Check a 4-D convolution call and return its :class:`Geometry`.

    ``x_shape`` is (N, C, H, W) whatever the ``layout`` the caller read x in
    (named in the messages). ``padding`` is any form :func:`parse_padding`
    takes; ``"same"`` follows TensorFlow at any stride and dilation
    (:func:`same_padding`).
    """
    n, c, h, w = x_shape
    k, cg, fh, fw = w_shape
    strict = check_bool(strict, "strict")
    sh, sw = pair(stride, "stride", 1)
    dh, dw = pair(dilation, "dilation", 1)
    groups = check_int(groups, "groups", 1)
    if c % groups or k % groups:
        raise ValueError(f"groups={groups} must divide the input channels ({c}) and the "
                         f"filters ({k})")
    if cg * groups != c:
        raise channel_mismatch(c, cg, groups, layout)
    if min(c, k, fh, fw, h, w) < 1:
        raise ValueError(f"x and w must have non-empty channel and spatial dimensions, got "
                         f"x {x_shape}, w {w_shape}")
    pad = parse_padding(padding)
    if pad == "same":
        oh, top, bottom = same_padding(h, fh, sh, dh)
        ow, left, right = same_padding(w, fw, sw, dw)
        pad = (top, bottom, left, right)
    else:
        oh = _along("H", conv_output_size, h, fh, stride=sh, padding=pad[:2], dilation=dh,
                    strict=strict)
        ow = _along("W", conv_output_size, w, fw, stride=sw, padding=pad[2:], dilation=dw,
                    strict=strict)
    return Geometry(n, c, h, w, k, fh, fw, oh, ow, (sh, sw), pad, (dh, dw), groups)


def _check_windows_reach_input(n, f, s, p, d, count, axis):
    """Refuse a dilated window whose taps all fall in padding (possible only when n < d)."""
    if n >= d:
        return
    for i in range(count):
        if not any(0 <= i * s - p + u * d < n for u in range(f)):
            raise ValueError(
                f"pooling window {i} along {axis} has no tap inside the input (size {f}, "
                f"dilation {d}, padding {p}, stride {s}, input {axis}={n}): every window must "
                f"hold at least one input element; use less padding or dilation")


def pool_geometry(x_shape, size, stride=None, padding=0, dilation=1, strict=True,
                  ceil_mode=False):
    """Check a 4-D pooling call and return its :class:`Geometry` (``k == c``).

    ``padding`` is any form :func:`parse_padding` takes; an explicit one is at
    most half the window on each side (PyTorch's rule), ``"same"`` follows
    TensorFlow (:func:`same_padding`) and takes no ``ceil_mode``.
    """
    n, c, h, w = x_shape
    if min(c, h, w) < 1:
        raise ValueError(f"x must have non-empty channel and spatial dimensions (C, H, W >= 1), "
                         f"got shape {x_shape}")
    strict = check_bool(strict, "strict")
    ceil_mode = check_bool(ceil_mode, "ceil_mode")
    fh, fw = pair(size, "size", 1)
    sh, sw = (fh, fw) if stride is None else pair(stride, "stride", 1)
    dh, dw = pair(dilation, "dilation", 1)
    pad = parse_padding(padding)
    if pad == "same":
        if ceil_mode:
            raise ValueError("ceil_mode=True cannot be combined with padding='same', whose "
                             "output size is already ceil(input / stride): pass "
                             "ceil_mode=False or an explicit padding")
        oh, top, bottom = same_padding(h, fh, sh, dh)
        ow, left, right = same_padding(w, fw, sw, dw)
        pad = (top, bottom, left, right)
    else:
        options = dict(dilation=dh, strict=strict, ceil_mode=ceil_mode)
        oh = _along("H", pool_output_size, h, fh, stride=sh, padding=pad[:2], **options)
        options["dilation"] = dw
        ow = _along("W", pool_output_size, w, fw, stride=sw, padding=pad[2:], **options)
    _check_windows_reach_input(h, fh, sh, pad[0], dh, oh, "H")
    _check_windows_reach_input(w, fw, sw, pad[2], dw, ow, "W")
    return Geometry(n, c, h, w, c, fh, fw, oh, ow, (sh, sw), pad, (dh, dw))


def _plain(arg):
    """Whether ``arg`` is None, a bool, an int, a str or a tuple of ints or of such tuples
    (exactly those types): arguments that equal each other are then the same argument."""
    return arg is None or type(arg) in (bool, int, str) or (
        type(arg) is tuple and all(type(a) is int or (type(a) is tuple and _plain(a))
                                   for a in arg))


def remembered(geometry):
    """``geometry`` (:func:`conv_geometry` or :func:`pool_geometry`), remembering the results
    of calls whose arguments are all plain: a network makes the same calls again and again,
    and checking them costs more than a small kernel (20 of the 53 us of a 1-image MNIST
    convolution). Other types (floats, NumPy integers, lists) are checked on every call,
    and ``typed`` keeps ``1`` and ``True`` apart, so a remembered call never stands in for
    one that must be refused; refused calls are never remembered."""
    cached = functools.lru_cache(maxsize=128, typed=True)(geometry)

    @functools.wraps(geometry)
    def call(*args):
        return cached(*args) if all(map(_plain, args)) else geometry(*args)

    return call
