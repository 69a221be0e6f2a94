import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyconv import gradcheck, numerical_gradient, squared_norm, squared_norm_backward

W = np.array([[0.1, 0.5], [-0.3, 0.8]])
x = np.array([0.2, 0.4])


def test_handout_forward_and_backward():  # handout section 4
    assert squared_norm(W, x) == pytest.approx(0.116)
    dW, dx = squared_norm_backward(W, x)
    np.testing.assert_allclose(dW, [[0.088, 0.176], [0.104, 0.208]])
    np.testing.assert_allclose(dx, [-0.112, 0.636])


@settings(max_examples=25, deadline=None)
@given(m=st.integers(1, 6), n=st.integers(1, 6), seed=st.integers(0, 2**32 - 1),
       dout=st.floats(-3, 3, allow_subnormal=False))
def test_backward_passes_gradcheck(m, n, seed, dout):
    rng = np.random.default_rng(seed)
    W_, x_ = rng.standard_normal((m, n)), rng.standard_normal(n)
    gradcheck(squared_norm, [W_, x_], squared_norm_backward(W_, x_, dout), dout)


def test_gradcheck_catches_a_wrong_gradient():
    dW, dx = squared_norm_backward(W, x)
    with pytest.raises(AssertionError, match="input 0"):
        gradcheck(squared_norm, [W, x], [dW.T, dx])


def test_numerical_gradient_of_a_transposed_view():
    # a copy of a transposed view keeps its strides: the steps must still reach f's input
    x_ = np.arange(6.0).reshape(2, 3).T
    np.testing.assert_allclose(numerical_gradient(lambda v: np.sum(v ** 2 * [1, 2]), x_),
                               2 * x_ * [1, 2], rtol=1e-6)


def test_numerical_gradient_does_not_modify_its_input():
    point = np.array([1.0, 2.0])
    numerical_gradient(lambda v: v @ v, point)
    np.testing.assert_array_equal(point, [1.0, 2.0])


def test_shape_mismatch_is_a_clear_error():
    with pytest.raises(ValueError, match=r"W has 2 columns but x has 3 entries"):
        squared_norm(W, [1.0, 2.0, 3.0])
