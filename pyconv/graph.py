"""A small reverse-mode computation graph over NumPy arrays, drawn as SVG.

Leaves are :func:`param` (to differentiate by) and :func:`constant` (data,
labels). Every op computes its value as soon as it is built, so
``node.value`` is always there; ``node.backward()`` then walks the graph
back, parents after children, and fills ``.grad`` on every node a param
feeds, adding up the gradients of a node used twice. ``node.to_svg()``
draws the graph, left to right, forward values in green and gradients in
red, as the CS231n section-3 handout draws ``f(W, x) = ||Wx||^2``.

Convolution, pooling and the squared norm run through pyconv's kernels,
forward and backward; the other ops are a line or two of NumPy each.

Examples
--------
The handout's section 4:

>>> from pyconv import graph
>>> W = graph.param([[0.1, 0.5], [-0.3, 0.8]], name="W")
>>> x = graph.param([0.2, 0.4], name="x")
>>> q = graph.matmul(W, x, name="q")
>>> f = graph.squared_norm(q, name="f")
>>> q.value.round(3), round(float(f.value), 3)
(array([0.22, 0.26]), 0.116)
>>> f.backward()
>>> W.grad.round(3)
array([[0.088, 0.176],
       [0.104, 0.208]])
>>> x.grad.round(3)
array([-0.112,  0.636])
>>> svg = f.to_svg()  # or f.to_svg("graph.svg"); Jupyter shows f as this picture
"""
import contextlib
import pathlib
import re
from xml.sax.saxutils import escape

import numpy as np

from ._validation import as_array, float_dtype
from .backprop import squared_norm as _squared_norm, squared_norm_backward as _squared_norm_backward
from .conv import conv2d as _conv2d, conv2d_backward as _conv2d_backward
from .pool import (avg_pool2d as _avg_pool2d, avg_pool2d_backward as _avg_pool2d_backward,
                   max_pool2d as _max_pool2d, max_pool2d_backward as _max_pool2d_backward)

__all__ = ["Node", "param", "constant", "matmul", "add", "relu", "conv2d", "max_pool2d",
           "avg_pool2d", "flatten", "squared_norm", "softmax_cross_entropy", "sum"]


class Node:
    """One value of a computation graph: a leaf, or the result of an op.

    Build nodes with :func:`param`, :func:`constant` and the ops, not
    directly.

    Attributes
    ----------
    value : ndarray
        The forward result, computed when the node was built.
    grad : ndarray or None
        The gradient of the node :meth:`backward` was called on with respect
        to ``value``, the shape of ``value``; None before, and for nodes no
        param feeds.
    op : str
        ``"param"``, ``"constant"`` or the op's name.
    name : str or None
        A label for drawings.
    parents : tuple of Node
        The op's inputs, in argument order.
    requires_grad : bool
        True for a param and for every node that depends on one.
    """

    def __init__(self, value, op, parents=(), backward=None, name=None):
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a str or None, got {name!r} of type "
                            f"{type(name).__name__}")
        self.value = value
        self.op = op
        self.parents = tuple(parents)
        self.name = name
        self.grad = None
        self.requires_grad = op == "param" or any(p.requires_grad for p in self.parents)
        self._backward = backward  # gradient of value -> one gradient (or None) per parent

    @property
    def shape(self):
        """The shape of ``value``."""
        return self.value.shape

    def __repr__(self):
        name = "" if self.name is None else f", name={self.name!r}"
        return f"Node(op={self.op!r}, shape={self.shape}{name})"

    def backward(self, grad=None):
        """Fill ``.grad`` on this node and on every node it depends on that a param feeds.

        Parameters
        ----------
        grad : array_like, optional
            The gradient arriving at this node, its shape; None means ones
            (1.0 for a scalar loss).

        Raises
        ------
        ValueError
            If ``grad`` does not have this node's shape.

        Notes
        -----
        Every node's ``grad`` is reset first, so calling it again gives the
        same gradients, not twice them. A node used by two ops gets the sum
        of the gradients both send back.

        Examples
        --------
        >>> x = param([1.0, -2.0, 3.0])
        >>> y = relu(x)
        >>> add(y, y).backward()  # y is used twice: its gradient is 2, twice 1
        >>> y.grad, x.grad
        (array([2., 2., 2.]), array([2., 0., 2.]))
        """
        order = _topological_order(self)
        for node in order:
            node.grad = None
        dtype = float_dtype(self.value)
        if grad is None:
            self.grad = np.ones(self.shape, dtype)
        else:
            self.grad = as_array(grad, "grad").astype(dtype)
            if self.grad.shape != self.shape:
                raise ValueError(f"grad must have the shape of the node's value {self.shape}, "
                                 f"got {self.grad.shape}")
        for node in reversed(order):
            if node.grad is None or node._backward is None or not node.requires_grad:
                continue
            for parent, parent_grad in zip(node.parents, node._backward(node.grad)):
                if parent_grad is not None and parent.requires_grad:
                    parent.grad = (parent_grad if parent.grad is None
                                   else parent.grad + parent_grad)

    def to_svg(self, path=None):
        """Draw the graph that ends at this node, as SVG text.

        Each node is a box with its name and op, its shape and dtype, its
        value in green and, once :meth:`backward` has run, its gradient in
        red. Arrays of up to 16 entries (at most 2-D, rows of at most 8) are
        shown in full, larger ones by their mean and norm. Leaves stand just
        left of the op that uses them; each op stands one column right of its
        furthest input.

        Parameters
        ----------
        path : str or path-like, optional
            Also write the SVG to this file (UTF-8).

        Returns
        -------
        str
            The SVG document.

        Examples
        --------
        >>> import xml.etree.ElementTree as ET
        >>> x = param([1.0, -2.0], name="x")
        >>> y = sum(relu(x))
        >>> y.backward()
        >>> svg = y.to_svg()
        >>> ET.fromstring(svg).tag
        '{http://www.w3.org/2000/svg}svg'
        >>> "[1, 0]</tspan>" in svg
        True
        """
        svg = _draw(self)
        if path is not None:
            pathlib.Path(path).write_text(svg, encoding="utf-8")
        return svg

    def _repr_svg_(self):
        return self.to_svg()


def _topological_order(root):
    """Every node ``root`` depends on, each after its parents, ``root`` last."""
    order, seen, stack = [], {root}, [(root, iter(root.parents))]
    while stack:
        node, parents = stack[-1]
        for parent in parents:
            if parent not in seen:
                seen.add(parent)
                stack.append((parent, iter(parent.parents)))
                break
        else:
            order.append(stack.pop()[0])
    return order


# ---------------------------------------------------------------- leaves


def param(array, name=None):
    """A leaf to differentiate by: a weight, or any input whose gradient you want.

    Parameters
    ----------
    array : array_like
        Real numbers; copied, as float32 if float32 (or float16), else float64.
    name : str, optional
        A label for drawings.

    Returns
    -------
    Node

    Raises
    ------
    TypeError
        If ``array`` does not hold real numbers, or ``name`` is not a str.

    Examples
    --------
    >>> param([1, 2], name="w")
    Node(op='param', shape=(2,), name='w')
    """
    value = as_array(array, "param's array")
    return Node(np.array(value, dtype=float_dtype(value)), "param", name=name)


def constant(array, name=None):
    """A leaf not to differentiate by: images, labels; its ``grad`` stays None.

    Ops convert any input that is not a node with this.

    Parameters
    ----------
    array : array_like
        Real numbers, kept in their dtype (integer labels stay integers).
    name : str, optional
        A label for drawings.

    Returns
    -------
    Node

    Raises
    ------
    TypeError
        If ``array`` does not hold real numbers, or ``name`` is not a str.

    Examples
    --------
    >>> constant([[3, 1]]).value
    array([[3, 1]])
    """
    return Node(as_array(array, "constant's array"), "constant", name=name)


def _as_node(value, argument, op):
    if isinstance(value, Node):
        return value
    return Node(as_array(value, f"{op}'s {argument}"), "constant")


@contextlib.contextmanager
def _shapes_in_errors(op, **nodes):
    """Re-raise a ValueError of pyconv's checks with the op and its inputs' shapes."""
    try:
        yield
    except ValueError as exc:
        shapes = ", ".join(f"{arg} {node.shape}" for arg, node in nodes.items() if node is not None)
        raise ValueError(f"{op} with {shapes}: {exc}") from None


# ------------------------------------------------------------------- ops


def matmul(a, b, *, name=None):
    """Matrix product ``a @ b`` of 1-D or 2-D arrays.

    Parameters
    ----------
    a : Node or array_like, shape (m, n) or (n,)
    b : Node or array_like, shape (n, k) or (n,)
    name : str, optional

    Returns
    -------
    Node
        ``a @ b``; backward: ``grad_a = g b^T``, ``grad_b = a^T g``.

    Raises
    ------
    ValueError
        If ``a``'s last axis does not match ``b``'s first, or an input is
        not 1-D or 2-D.

    Examples
    --------
    >>> matmul([[1.0, 2.0]], [[3.0], [4.0]]).value
    array([[11.]])
    """
    a, b = _as_node(a, "a", "matmul"), _as_node(b, "b", "matmul")
    if a.value.ndim not in (1, 2) or b.value.ndim not in (1, 2) or a.shape[-1] != b.shape[0]:
        raise ValueError(f"matmul: a {a.shape} and b {b.shape} do not fit: expected 1-D or 2-D "
                         f"arrays with a's last axis equal to b's first")

    def backward(grad):
        a2, b2 = np.atleast_2d(a.value), b.value.reshape(b.shape[0], -1)  # (m, n) and (n, k)
        grad = grad.reshape(a2.shape[0], b2.shape[1])
        return (grad @ b2.T).reshape(a.shape), (a2.T @ grad).reshape(b.shape)

    return Node(np.asarray(a.value @ b.value), "matmul", (a, b), backward, name)


def _unbroadcast(grad, shape):
    """Sum ``grad`` over the axes broadcasting added or stretched to get back ``shape``."""
    grad = np.sum(grad, axis=tuple(range(grad.ndim - len(shape))))
    return np.sum(grad, axis=tuple(i for i, n in enumerate(shape) if n == 1),
                  keepdims=True).reshape(shape)


def add(a, b, *, name=None):
    """Elementwise ``a + b``, broadcasting as NumPy does (a bias ``(K,)`` onto ``(N, K)``).

    Parameters
    ----------
    a, b : Node or array_like
    name : str, optional

    Returns
    -------
    Node
        ``a + b``; backward: the gradient, summed over the broadcast axes.

    Raises
    ------
    ValueError
        If the shapes do not broadcast together.

    Examples
    --------
    >>> add([[1.0, 2.0], [3.0, 4.0]], [10.0, 20.0]).value
    array([[11., 22.],
           [13., 24.]])
    """
    a, b = _as_node(a, "a", "add"), _as_node(b, "b", "add")
    try:
        np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ValueError(f"add: a {a.shape} and b {b.shape} do not broadcast together") from None
    return Node(np.asarray(a.value + b.value), "add", (a, b),
                lambda grad: (_unbroadcast(grad, a.shape), _unbroadcast(grad, b.shape)), name)


def relu(x, *, name=None):
    """Rectified linear unit, ``max(x, 0)`` elementwise.

    Parameters
    ----------
    x : Node or array_like
    name : str, optional

    Returns
    -------
    Node
        ``max(x, 0)``; backward: the gradient where ``x > 0``, else 0.

    Examples
    --------
    >>> relu([-1.0, 0.0, 2.0]).value
    array([0., 0., 2.])
    """
    x = _as_node(x, "x", "relu")
    return Node(np.maximum(x.value, 0), "relu", (x,), lambda grad: (grad * (x.value > 0),), name)


def conv2d(x, w, b=None, *, name=None, **options):
    """Convolution by :func:`pyconv.conv2d`; backward by :func:`pyconv.conv2d_backward`.

    Parameters
    ----------
    x : Node or array_like, shape (N, C, H, W), (C, H, W) or (H, W)
    w : Node or array_like, shape (K, C/groups, FH, FW), or (FH, FW) with a 2-D ``x``
    b : Node or array_like, shape (K,), optional
    name : str, optional
    **options
        :func:`pyconv.conv2d`'s keywords (``stride``, ``padding``,
        ``dilation``, ``groups``, ``method``, ``strict``, ``num_threads``);
        the backward gets the same but ``strict``.

    Returns
    -------
    Node
        The convolution; the backward computes only the gradients some
        param needs (no ``dx`` for input images).

    Raises
    ------
    ValueError
        As :func:`pyconv.conv2d` does, with the op and every input's shape.

    Examples
    --------
    >>> I = [[1, 2, 3, 4], [4, 3, 2, 1], [-1, 0, 1, 2], [0, -2, 4, 0]]
    >>> out = conv2d(I, param([[1, -1], [0, 2]]), stride=2, padding=1)
    >>> out.value
    array([[ 2.,  6.,  0.],
           [-6.,  3.,  1.],
           [ 0., -6.,  0.]])
    """
    x, w = _as_node(x, "x", "conv2d"), _as_node(w, "w", "conv2d")
    b = None if b is None else _as_node(b, "b", "conv2d")
    with _shapes_in_errors("conv2d", x=x, w=w, b=b):
        out = _conv2d(x.value, w.value, None if b is None else b.value, **options)
    parents = (x, w) if b is None else (x, w, b)
    options.pop("strict", None)

    def backward(grad):
        need = [g for g, node in zip(("dx", "dw", "db"), parents) if node.requires_grad]
        return _conv2d_backward(grad, x.value, w.value, need=need, **options)[:len(parents)]

    return Node(out, "conv2d", parents, backward, name)


def max_pool2d(x, size, *, name=None, **options):
    """Max pooling by :func:`pyconv.max_pool2d`; backward by :func:`pyconv.max_pool2d_backward`.

    Parameters
    ----------
    x : Node or array_like, shape (N, C, H, W), (C, H, W) or (H, W)
    size : int or (int, int)
        The window.
    name : str, optional
    **options
        :func:`pyconv.max_pool2d`'s keywords (``stride``, ``padding``,
        ``dilation``, ``strict``, ``num_threads``); the backward gets the
        same but ``strict``, and the forward's indices of the maxima.

    Returns
    -------
    Node
        The maxima; backward: the gradient goes to each window's (first)
        maximum.

    Raises
    ------
    ValueError
        As :func:`pyconv.max_pool2d` does, with the op and the input's shape.

    Examples
    --------
    >>> x = param([[1.0, 3.0], [4.0, 2.0]])
    >>> y = max_pool2d(x, 2)
    >>> y.backward()
    >>> y.value, x.grad
    (array([[4.]]), array([[0., 0.],
           [1., 0.]]))
    """
    x = _as_node(x, "x", "max_pool2d")
    with _shapes_in_errors("max_pool2d", x=x):
        out, indices = _max_pool2d(x.value, size, return_indices=True, **options)
    options.pop("strict", None)
    return Node(out, "max_pool2d", (x,),
                lambda grad: (_max_pool2d_backward(grad, x.value, size, indices=indices,
                                                   **options),), name)


def avg_pool2d(x, size, *, name=None, **options):
    """Average pooling by :func:`pyconv.avg_pool2d`; backward by :func:`pyconv.avg_pool2d_backward`.

    Parameters
    ----------
    x : Node or array_like, shape (N, C, H, W), (C, H, W) or (H, W)
    size : int or (int, int)
        The window.
    name : str, optional
    **options
        :func:`pyconv.avg_pool2d`'s keywords (``stride``, ``padding``,
        ``count_include_pad``, ``strict``, ``num_threads``); the backward
        gets the same but ``strict``.

    Returns
    -------
    Node
        The averages; backward: each window's gradient shared out evenly.

    Raises
    ------
    ValueError
        As :func:`pyconv.avg_pool2d` does, with the op and the input's shape.

    Examples
    --------
    >>> avg_pool2d([[1.0, 3.0], [4.0, 2.0]], 2).value
    array([[2.5]])
    """
    x = _as_node(x, "x", "avg_pool2d")
    with _shapes_in_errors("avg_pool2d", x=x):
        out = _avg_pool2d(x.value, size, **options)
    options.pop("strict", None)
    return Node(out, "avg_pool2d", (x,),
                lambda grad: (_avg_pool2d_backward(grad, x.shape, size, **options),), name)


def flatten(x, *, name=None):
    """Reshape ``(N, ...)`` to ``(N, D)``, one row per example, before a linear layer.

    Parameters
    ----------
    x : Node or array_like, at least 1-D
    name : str, optional

    Returns
    -------
    Node, shape (N, D)

    Raises
    ------
    ValueError
        If ``x`` is a scalar.

    Examples
    --------
    >>> flatten(np.zeros((2, 3, 4, 4))).shape
    (2, 48)
    """
    x = _as_node(x, "x", "flatten")
    if x.value.ndim == 0:
        raise ValueError(f"flatten: x {x.shape} is a scalar: expected (N, ...) with N examples")
    out = x.value.reshape(x.shape[0], int(np.prod(x.shape[1:])))
    return Node(out, "flatten", (x,), lambda grad: (grad.reshape(x.shape),), name)


def squared_norm(W, x=None, *, name=None):
    """``||W x||^2`` by :func:`pyconv.squared_norm`; ``||W||^2`` when ``x`` is omitted.

    Parameters
    ----------
    W : Node or array_like, shape (m, n), or any shape when ``x`` is omitted
    x : Node or array_like, shape (n,), optional
    name : str, optional

    Returns
    -------
    Node, a scalar
        Backward by :func:`pyconv.squared_norm_backward`. Without ``x``,
        ``W`` is the one column of a matrix and ``x`` is ``[1]``:
        ``||W||^2 = ||W [1]||^2``, so its gradient ``2 W`` is that matrix's.

    Raises
    ------
    ValueError
        As :func:`pyconv.squared_norm` does, with the op and the shapes.

    Examples
    --------
    >>> squared_norm([3.0, 4.0]).value
    array(25.)
    >>> squared_norm([[1.0, 0.0], [0.0, 2.0]], [3.0, 4.0]).value
    array(73.)
    """
    W = _as_node(W, "W", "squared_norm")
    if x is None:
        column, one = W.value.reshape(-1, 1), np.ones(1, dtype=W.value.dtype)
        parents = (W,)
        value = _squared_norm(column, one)

        def backward(grad):
            return (_squared_norm_backward(column, one, float(grad))[0].reshape(W.shape),)
    else:
        x = _as_node(x, "x", "squared_norm")
        parents = (W, x)
        with _shapes_in_errors("squared_norm", W=W, x=x):
            value = _squared_norm(W.value, x.value)

        def backward(grad):
            return _squared_norm_backward(W.value, x.value, float(grad))

    dtype = float_dtype(*(p.value for p in parents))
    return Node(np.asarray(value, dtype=dtype), "squared_norm", parents, backward, name)


def softmax_cross_entropy(scores, labels, *, name=None):
    """Mean over the batch of ``-log softmax(scores)[label]``, the classifier's loss.

    Parameters
    ----------
    scores : Node or array_like, shape (N, K)
        One row of class scores per example.
    labels : Node or array_like of int, shape (N,)
        The right class of each example, in [0, K).
    name : str, optional

    Returns
    -------
    Node, a scalar
        Backward: ``(softmax(scores) - onehot(labels)) / N`` for ``scores``.

    Raises
    ------
    ValueError
        If the shapes do not fit (naming both) or a label is outside [0, K).
    TypeError
        If the labels are not integers.

    Examples
    --------
    Two examples, right with probabilities 1/2 and 3/4: the loss is
    ``-(log(1/2) + log(3/4)) / 2``.

    >>> loss = softmax_cross_entropy([[0.0, 0.0], [0.0, np.log(3.0)]], [0, 1])
    >>> round(float(loss.value), 4)
    0.4904
    """
    scores = _as_node(scores, "scores", "softmax_cross_entropy")
    labels = _as_node(labels, "labels", "softmax_cross_entropy")
    if scores.value.ndim != 2 or labels.shape != scores.shape[:1] or not scores.shape[0]:
        raise ValueError(f"softmax_cross_entropy: scores {scores.shape} and labels {labels.shape} "
                         f"do not fit: expected scores (N, K) and labels (N,) with N >= 1")
    if labels.value.dtype.kind not in "iu":
        raise TypeError(f"softmax_cross_entropy: labels must be integers (class indices), got "
                        f"dtype {labels.value.dtype}")
    n, k = scores.shape
    if labels.value.min() < 0 or labels.value.max() >= k:
        raise ValueError(f"softmax_cross_entropy: labels must be in [0, {k}) for {k} classes, "
                         f"got values from {labels.value.min()} to {labels.value.max()}")
    shifted = scores.value - scores.value.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    rows = np.arange(n)

    def backward(grad):
        dscores = np.exp(log_p)
        dscores[rows, labels.value] -= 1
        return dscores * (grad / n), None

    return Node(np.asarray(-log_p[rows, labels.value].mean()), "softmax_cross_entropy",
                (scores, labels), backward, name)


def sum(x, *, name=None):  # named as NumPy's; inside this module, sum is this op
    """The sum of all entries, a scalar: makes any node a loss to call backward on.

    Parameters
    ----------
    x : Node or array_like
    name : str, optional

    Returns
    -------
    Node, a scalar
        Backward: the gradient, copied to every entry.

    Examples
    --------
    >>> sum([[1.0, 2.0], [3.0, 4.0]]).value
    array(10.)
    """
    x = _as_node(x, "x", "sum")
    return Node(np.asarray(x.value.sum()), "sum", (x,),
                lambda grad: (np.full(x.shape, grad),), name)


# --------------------------------------------------------------- drawing
# (in this module sum is the op: totals below use np.sum)

_CHAR, _LINE, _PAD, _GAP_X, _GAP_Y, _MARGIN = 7.3, 16, 7, 56, 18, 12
_STYLE = ("text{font-family:DejaVu Sans Mono,Menlo,Consolas,monospace;font-size:12px}"
          ".title{font-weight:bold} .shape{fill:#555} .value{fill:#1a7f37} .grad{fill:#c62828}"
          " rect{fill:#f7f7f7;stroke:#666} rect.param{fill:#eef4ff} .edge{fill:none;stroke:#888}")
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _number(v):
    return f"{float(v):.4g}"


def _array_lines(a):
    """Text lines showing ``a``: up to 16 entries in full (a matrix's columns aligned), more by
    mean and norm."""
    if a.ndim == 0:
        return [_number(a)]
    if a.size == 0:
        return ["[]"]
    if a.size <= 16 and a.ndim <= 2 and a.shape[-1] <= 8:
        rows = [[_number(v) for v in row] for row in a.reshape(-1, a.shape[-1])]
        widths = [max(len(v) for v in column) for column in zip(*rows)]
        return ["[" + ", ".join(v.rjust(n) for v, n in zip(row, widths)) + "]" for row in rows]
    return [f"mean {_number(a.mean())}, norm {_number(np.linalg.norm(a))}"]


def _box_lines(node):
    """(label, indent in characters, text, CSS class) for each line of a node's box."""
    if node.op in ("param", "constant"):
        title = node.op if node.name is None else f"{node.name} ({node.op})"
    else:
        title = node.op if node.name is None else f"{node.name} = {node.op}"
    shape = "scalar" if node.value.ndim == 0 else f"shape {node.shape}"
    lines = [("", 0, title, "title"), ("", 0, f"{shape} {node.value.dtype}", "shape")]
    for label, array in (("value", node.value), ("grad", node.grad)):
        if array is not None:
            rows = _array_lines(np.asarray(array))
            lines.extend((label if i == 0 else "", 6, row, label) for i, row in enumerate(rows))
    return lines


def _layers(order):
    """Column of each node: an op one right of its furthest input, a leaf just left of its user."""
    column, users = {}, {}
    for node in order:
        column[node] = 1 + max((column[p] for p in node.parents), default=-1)
        for parent in node.parents:
            users.setdefault(parent, []).append(node)
    for node in order:
        if not node.parents and node in users:
            column[node] = min(column[user] for user in users[node]) - 1
    return column


def _place(order, size):
    """(x, y, width, height) of each node's box, columns left to right, each centred vertically;
    and the picture's width and height."""
    column = _layers(order)
    columns = [[] for _ in range(max(column.values()) + 1)]
    for node in order:
        columns[column[node]].append(node)
    widths = [max(size[node][0] for node in nodes) for nodes in columns]
    heights = [np.sum([size[node][1] + _GAP_Y for node in nodes]) - _GAP_Y for nodes in columns]
    top = _MARGIN + 2 * _LINE  # below the legend
    box, x = {}, _MARGIN
    for nodes, column_width, column_height in zip(columns, widths, heights):
        y = top + (max(heights) - column_height) / 2
        for node in nodes:
            w, h = size[node]
            box[node] = (x + (column_width - w) / 2, y, w, h)
            y += h + _GAP_Y
        x += column_width + _GAP_X
    return box, x - _GAP_X + _MARGIN, top + max(heights) + _MARGIN


def _text(s):
    return escape(_NOT_XML.sub("\ufffd", s))


def _draw(root):
    order = _topological_order(root)
    lines = {node: _box_lines(node) for node in order}
    size = {node: (2 * _PAD + _CHAR * max(indent + len(text) for _, indent, text, _ in lines[node]),
                   2 * _PAD + _LINE * len(lines[node])) for node in order}
    box, width, height = _place(order, size)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
           f'viewBox="0 0 {width:.0f} {height:.0f}">',
           f"<style>{_STYLE}</style>",
           '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
           'markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#888"/>'
           '</marker></defs>',
           f'<text x="{_MARGIN}" y="{_MARGIN + _LINE:.0f}">'
           '<tspan class="value">forward values in green</tspan>; '
           '<tspan class="grad">gradients in red</tspan></text>']
    for node in order:
        x2, y2, _, h2 = box[node]
        for parent in node.parents:
            x1, y1, w1, h1 = box[parent]
            x1, y1, y2m = x1 + w1, y1 + h1 / 2, y2 + h2 / 2
            bend = (x2 - x1) / 2
            out.append(f'<path d="M{x1:.1f},{y1:.1f} C{x1 + bend:.1f},{y1:.1f} '
                       f'{x2 - bend:.1f},{y2m:.1f} {x2:.1f},{y2m:.1f}" class="edge" '
                       'marker-end="url(#arrow)"/>')
    for node in order:
        x, y, w, h = box[node]
        out.append(f'<g><rect class="{node.op}" x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" '
                   f'height="{h:.1f}" rx="6"/>')
        for i, (label, indent, text, css) in enumerate(lines[node]):
            x_text, y_text = x + _PAD + indent * _CHAR, y + _PAD + _LINE * (i + 1) - 4
            text = f'<tspan x="{x_text:.1f}">{_text(text)}</tspan>' if label else _text(text)
            out.append(f'<text class="{css}" x="{x + _PAD if label else x_text:.1f}" '
                       f'y="{y_text:.1f}">{label}{text}</text>')
        out.append("</g>")
    out.append("</svg>")
    return "\n".join(out) + "\n"
