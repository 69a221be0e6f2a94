import importlib.util
import pathlib
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from pyconv import gradcheck, graph

ROOT = pathlib.Path(__file__).resolve().parent.parent
SVG = "{http://www.w3.org/2000/svg}"


def handout_graph():
    """The handout's section 4: f(W, x) = ||Wx||^2, forward and backward done."""
    W = graph.param([[0.1, 0.5], [-0.3, 0.8]], name="W")
    x = graph.param([0.2, 0.4], name="x")
    q = graph.matmul(W, x, name="q")
    f = graph.squared_norm(q, name="f")
    f.backward()
    return W, x, q, f


def texts(svg, css):
    """The text of every SVG <text> element of CSS class ``css``, its parts joined by a space."""
    return [" ".join(t.itertext()) for t in ET.fromstring(svg).iter(f"{SVG}text")
            if t.get("class") == css]


def check_op(op, *inputs, **options):
    """Gradcheck ``op``'s backward (float64) for every input, against a random upstream gradient."""
    nodes = [graph.param(a) for a in inputs]
    out = op(*nodes, **options)
    dout = np.random.default_rng(1).standard_normal(out.shape)
    out.backward(dout)
    gradcheck(lambda *arrays: op(*arrays, **options).value, list(inputs),
              [node.grad for node in nodes], dout)


rng = np.random.default_rng(0)


def randn(*shape):
    return rng.standard_normal(shape)


# ------------------------------------------------------------- the handout


def test_handout_forward_and_backward():
    W, x, q, f = handout_graph()
    np.testing.assert_allclose(q.value, [0.22, 0.26])
    np.testing.assert_allclose(f.value, 0.116)
    np.testing.assert_allclose(q.grad, [0.44, 0.52])
    np.testing.assert_allclose(W.grad, [[0.088, 0.176], [0.104, 0.208]])
    np.testing.assert_allclose(x.grad, [-0.112, 0.636])
    assert f.grad == 1.0


def test_handout_numbers_are_drawn_in_their_colours():
    svg = handout_graph()[3].to_svg()
    values, grads = " ".join(texts(svg, "value")), " ".join(texts(svg, "grad"))
    tokens = {css: set(text.replace("[", " ").replace("]", " ").replace(",", " ").split())
              for css, text in (("value", values), ("grad", grads))}
    assert {"0.1", "0.5", "-0.3", "0.8", "0.2", "0.4", "0.22", "0.26", "0.116"} <= tokens["value"]
    assert {"0.088", "0.176", "0.104", "0.208", "-0.112", "0.636", "0.44", "0.52",
            "1"} <= tokens["grad"]
    assert "value [0.22, 0.26]" in values and "value 0.116" in values
    assert "grad [-0.112, 0.636]" in grads and "grad [0.088, 0.176] [0.104, 0.208]" in grads
    assert "value [ 0.1, 0.5] [-0.3, 0.8]" in values  # a matrix's columns aligned
    titles = texts(svg, "title")
    assert {"W (param)", "x (param)", "q = matmul", "f = squared_norm"} <= set(titles)


def test_committed_handout_picture_is_current():
    committed = (ROOT / "docs" / "handout_graph.svg").read_text(encoding="utf-8")
    assert committed == handout_graph()[3].to_svg(), (
        "docs/handout_graph.svg is stale: regenerate it with python -c \"import sys; "
        "sys.path.insert(0, 'tests'); from test_graph import handout_graph; "
        "handout_graph()[3].to_svg('docs/handout_graph.svg')\"")


# ---------------------------------------------------- every op gradchecked


@pytest.mark.parametrize("a_shape, b_shape", [((3, 4), (4, 2)), ((3, 4), (4,)), ((4,), (4, 2)),
                                              ((4,), (4,)), ((1, 1), (1, 5))])
def test_matmul_gradients(a_shape, b_shape):
    check_op(graph.matmul, randn(*a_shape), randn(*b_shape))


@pytest.mark.parametrize("a_shape, b_shape", [((3, 4), (3, 4)), ((3, 4), (4,)), ((3, 1), (1, 4)),
                                              ((), (2, 3)), ((2, 1, 3), (4, 1))])
def test_add_gradients(a_shape, b_shape):
    check_op(graph.add, randn(*a_shape), randn(*b_shape))


def test_relu_gradients():
    x = randn(3, 5)
    x[np.abs(x) < 0.1] = 0.5  # away from the kink, where central differences straddle it
    check_op(graph.relu, x)


@pytest.mark.parametrize("options", [{}, {"stride": 2, "padding": 1}, {"padding": "same"},
                                     {"dilation": 2, "padding": 2}, {"groups": 2, "padding": 1},
                                     {"method": "im2col", "stride": (1, 2)}])
def test_conv2d_gradients(options):
    x, w, b = randn(2, 4, 7, 5), randn(6, 4 // options.get("groups", 1), 3, 3), randn(6)
    check_op(graph.conv2d, x, w, b, **options)
    check_op(graph.conv2d, x, w, **options)


def test_conv2d_gradients_of_one_image():
    check_op(graph.conv2d, randn(5, 6), randn(2, 3), padding=1)


@pytest.mark.parametrize("size, options", [(2, {}), (3, {"stride": 2, "padding": 1}),
                                           ((2, 3), {"stride": 1}), (2, {"dilation": 2})])
def test_max_pool2d_gradients(size, options):
    check_op(lambda x: graph.max_pool2d(x, size, **options),
             randn(2, 3, 7, 7) if options else randn(2, 3, 6, 6))


@pytest.mark.parametrize("size, options", [(2, {}), (3, {"stride": 2, "padding": 1}),
                                           (3, {"stride": 2, "padding": 1,
                                                "count_include_pad": False})])
def test_avg_pool2d_gradients(size, options):
    check_op(lambda x: graph.avg_pool2d(x, size, **options),
             randn(2, 3, 7, 7) if options else randn(1, 2, 6, 4))


def test_flatten_sum_and_squared_norm_gradients():
    check_op(graph.flatten, randn(2, 3, 2, 2))
    check_op(graph.sum, randn(3, 4))
    check_op(graph.squared_norm, randn(3, 4))  # ||W||^2 of any array
    check_op(graph.squared_norm, randn(3, 4), randn(4))


def test_softmax_cross_entropy_gradients_and_value():
    scores, labels = randn(6, 4), np.array([0, 3, 1, 1, 2, 0])
    check_op(lambda s: graph.softmax_cross_entropy(s, labels), scores)
    p = np.exp(scores) / np.exp(scores).sum(axis=1, keepdims=True)
    expected = -np.mean(np.log(p[np.arange(6), labels]))
    np.testing.assert_allclose(graph.softmax_cross_entropy(scores, labels).value, expected,
                               rtol=1e-12)
    huge = graph.softmax_cross_entropy([[1000.0, 0.0]], [1])  # shifted: no overflow
    np.testing.assert_allclose(huge.value, 1000.0)


def test_a_small_conv_net_gradchecks_end_to_end():
    def net(x, w1, b1, w2, b2, w3):
        h = graph.max_pool2d(graph.relu(graph.conv2d(x, w1, b1, padding=1)), 2)
        h = graph.avg_pool2d(graph.relu(graph.conv2d(h, w2, b2, padding=1)), 2)
        scores = graph.matmul(graph.flatten(h), w3)
        return graph.softmax_cross_entropy(scores, [1, 0, 2])

    inputs = [randn(3, 2, 8, 8), randn(3, 2, 3, 3), randn(3), randn(4, 3, 3, 3), randn(4),
              randn(16, 3)]
    check_op(net, *inputs)


# ------------------------------------------------------------- backward


def test_a_node_used_twice_gets_both_gradients():
    x = graph.param([1.0, -2.0, 3.0])
    y = graph.matmul(x, x)  # x . x: gradient 2x through both arguments
    y.backward()
    np.testing.assert_array_equal(x.grad, [2.0, -4.0, 6.0])
    z = graph.sum(graph.add(graph.relu(x), x))  # a diamond
    z.backward()
    np.testing.assert_array_equal(x.grad, [2.0, 1.0, 2.0])


def test_backward_twice_gives_the_same_gradients():
    W, x, q, f = handout_graph()
    f.backward()
    np.testing.assert_allclose(W.grad, [[0.088, 0.176], [0.104, 0.208]])


def test_constants_get_no_gradient_and_conv_skips_their_dx():
    x = graph.constant(randn(2, 1, 5, 5), name="images")
    w = graph.param(randn(3, 1, 3, 3))
    out = graph.sum(graph.relu(graph.conv2d(x, w)))
    out.backward()
    assert x.grad is None and w.grad.shape == w.shape and not x.requires_grad
    assert out.requires_grad and out.parents[0].grad is not None


def test_upstream_gradient_and_its_shape():
    x = graph.param([1.0, 2.0])
    y = graph.relu(x)
    y.backward([3.0, 4.0])
    np.testing.assert_array_equal(x.grad, [3.0, 4.0])
    with pytest.raises(ValueError, match=r"grad must have the shape .*\(2,\), got \(3,\)"):
        y.backward([1.0, 2.0, 3.0])


def test_long_chains_do_not_recurse():
    x = graph.param([1.0])
    y = x
    for _ in range(5000):
        y = graph.add(y, 1.0)
    y.backward()
    np.testing.assert_array_equal(x.grad, [1.0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtypes_are_kept(dtype):
    x = graph.param(randn(2, 3, 6, 6).astype(dtype))
    w = graph.param(randn(4, 3, 3, 3).astype(dtype))
    loss = graph.softmax_cross_entropy(
        graph.flatten(graph.max_pool2d(graph.relu(graph.conv2d(x, w)), 2)), [0, 1])
    loss.backward()
    assert loss.value.dtype == dtype and x.grad.dtype == dtype and w.grad.dtype == dtype


def test_inputs_are_converted_and_params_copied():
    array = np.array([[-1, 2]])
    p = graph.param(array)
    assert p.value.dtype == np.float64 and p.value is not array
    p.value[0, 0] = 5
    assert array[0, 0] == -1
    np.testing.assert_array_equal(graph.relu([[-1, 2]]).value, [[0, 2]])
    assert graph.relu([[-1, 2]]).parents[0].op == "constant"


# --------------------------------------------------------------- errors


@pytest.mark.parametrize("build, pattern", [
    (lambda: graph.matmul(np.ones((2, 3)), np.ones(2)), r"matmul: a \(2, 3\) and b \(2,\)"),
    (lambda: graph.matmul(np.ones((2, 3, 4)), np.ones(4)), r"matmul: a \(2, 3, 4\) and b \(4,\)"),
    (lambda: graph.add(np.ones((2, 3)), np.ones(4)), r"add: a \(2, 3\) and b \(4,\)"),
    (lambda: graph.conv2d(np.ones((1, 3, 5, 5)), np.ones((4, 2, 3, 3))),
     r"conv2d with x \(1, 3, 5, 5\), w \(4, 2, 3, 3\): .*channel"),
    (lambda: graph.conv2d(np.ones((1, 3, 5, 5)), np.ones((4, 3, 3, 3)), np.ones(5)),
     r"conv2d with x \(1, 3, 5, 5\), w \(4, 3, 3, 3\), b \(5,\)"),
    (lambda: graph.max_pool2d(np.ones((1, 1, 5, 5)), 2), r"max_pool2d with x \(1, 1, 5, 5\)"),
    (lambda: graph.avg_pool2d(np.ones((1, 1, 2, 2)), 3), r"avg_pool2d with x \(1, 1, 2, 2\)"),
    (lambda: graph.squared_norm(np.ones((2, 2)), np.ones(3)),
     r"squared_norm with W \(2, 2\), x \(3,\)"),
    (lambda: graph.softmax_cross_entropy(np.ones((3, 4)), [0, 1]),
     r"softmax_cross_entropy: scores \(3, 4\) and labels \(2,\)"),
    (lambda: graph.softmax_cross_entropy(np.ones((2, 4)), [0, 4]), r"labels must be in \[0, 4\)"),
    (lambda: graph.flatten(3.0), r"flatten: x \(\) is a scalar"),
])
def test_shape_mismatches_name_the_op_and_the_shapes(build, pattern):
    with pytest.raises(ValueError, match=pattern):
        build()


@pytest.mark.parametrize("build, pattern", [
    (lambda: graph.param("abc"), r"param's array must hold real numbers"),
    (lambda: graph.param(None), r"param's array must be an array, got None"),
    (lambda: graph.relu(["a", "b"]), r"relu's x must hold real numbers"),
    (lambda: graph.matmul(np.ones((2, 2)), {"a": 1}), r"matmul's b must hold real numbers"),
    (lambda: graph.param([1.0], name=3), r"name must be a str or None, got 3"),
    (lambda: graph.softmax_cross_entropy(np.ones((2, 4)), [0.0, 1.0]),
     r"labels must be integers"),
    (lambda: graph.conv2d(np.ones((1, 1, 5, 5)), np.ones((1, 1, 3, 3)), stride="2"), r"stride"),
    (lambda: graph.max_pool2d(np.ones((1, 1, 4, 4)), 2, bogus=1), r"bogus"),
])
def test_wrong_types_are_clear_errors(build, pattern):
    with pytest.raises(TypeError, match=pattern):
        build()


# -------------------------------------------------------------- drawing


def test_svg_before_and_after_backward():
    x = graph.param(randn(4, 8), name="x")
    y = graph.sum(graph.relu(x), name="y")
    before = y.to_svg()
    assert texts(before, "grad") == []
    assert "shape (4, 8) float64" in texts(before, "shape")
    summary = [t for t in texts(before, "value") if "mean" in t]  # x, then relu(x)
    assert len(summary) == 2
    assert summary[0] == f"value mean {x.value.mean():.4g}, norm {np.linalg.norm(x.value):.4g}"
    y.backward()
    after = y.to_svg()
    assert "grad 1" in texts(after, "grad") and "y = sum" in texts(after, "title")
    assert len(texts(after, "grad")) == 3


def test_svg_escapes_text_and_is_written_to_a_path(tmp_path):
    x = graph.param([1.0], name='<x> & "y" \x01')
    svg = x.to_svg(tmp_path / "x.svg")
    assert (tmp_path / "x.svg").read_text(encoding="utf-8") == svg == x._repr_svg_()
    assert texts(svg, "title") == ['<x> & "y" \ufffd (param)']


def test_svg_layout_runs_left_to_right():
    W, x, q, f = handout_graph()
    root = ET.fromstring(f.to_svg())
    centre = {}
    for group in root.iter(f"{SVG}g"):
        title = [t.text for t in group.iter(f"{SVG}text") if t.get("class") == "title"][0]
        rect = group.find(f"{SVG}rect")
        centre[title] = float(rect.get("x")) + float(rect.get("width")) / 2
    assert centre["W (param)"] == pytest.approx(centre["x (param)"], abs=0.1)  # one column
    assert centre["x (param)"] < centre["q = matmul"] < centre["f = squared_norm"]
    assert len(list(root.iter(f"{SVG}path"))) == 1 + 3  # the arrow head and three edges


# ------------------------------------------------------ training, end to end


def test_train_digits_smoke():
    pytest.importorskip("sklearn")
    spec = importlib.util.spec_from_file_location("train_digits",
                                                  ROOT / "bench" / "train_digits.py")
    train_digits = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train_digits)
    history = train_digits.train(epochs=2, seed=0, n_train=300, with_torch=False,
                                 log=lambda *a: None)[0]
    assert history[1]["loss"] < history[0]["loss"]
    assert history[-1]["accuracy"] > 0.5  # chance is 0.1
