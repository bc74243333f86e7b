"""``cr.check_grad``: passes on correct graphs (first and second order),
and fails, naming the input and the index, on wrong ones.

Wrong derivatives are built from ``stop_gradient``: ``x * stop_gradient(x)``
has the value x^2 but the symbolic gradient x; and the "straight-through"
form ``sg(f(x)) + (x - sg(x)) * sg(f'(x))`` has the value f and the right
gradient f', but a second derivative of zero.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

import chainrule as cr

import test_ops

sg = cr.stop_gradient


# -- correct graphs pass ------------------------------------------------------------

@pytest.mark.parametrize("order", [1, 2])
@pytest.mark.parametrize("case", test_ops.GRAD_CASES, ids=[c.id for c in test_ops.GRAD_CASES])
def test_passes_on_every_op_of_the_table(case, order):
    b = test_ops.build(case.id)
    vals, rng = test_ops.case_values(case)
    feed = dict(vals, w_out=rng.normal(size=np.shape(case.reference(**vals))))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if order == 2 and not case.second:  # refused: see test_ops.Case.second
            with pytest.raises(cr.NotDifferentiableError):
                cr.check_grad(cr.sum(b.out * b.weight), b.wrt, feed, order=order)
            return
        assert cr.check_grad(cr.sum(b.out * b.weight), b.wrt, feed, order=order) is None


@pytest.mark.parametrize("order", [1, 2])
def test_passes_on_an_mlp_with_parameters_and_restores_them(order):
    X, t = cr.placeholder("X", (None, 3)), cr.placeholder("t", (None, 2))
    W1 = cr.parameter(np.random.default_rng(0).normal(size=(3, 4)), "W1")
    b1 = cr.parameter(np.zeros(4), "b1")
    W2 = cr.parameter(np.random.default_rng(1).normal(size=(4, 2)), "W2")
    out = cr.tanh(X @ W1 + b1) @ W2
    loss = cr.mean(cr.sum((out - t) ** 2, axis=1)) + cr.mean(cr.log_softmax(out)[:, 0])
    before = [p.value for p in (W1, b1, W2)]
    rng = np.random.default_rng(2)
    cr.check_grad(loss, [W1, b1, W2], {"X": rng.normal(size=(5, 3)),
                                       t: rng.normal(size=(5, 2))}, order=order)
    for p, v in zip((W1, b1, W2), before):
        np.testing.assert_array_equal(p.value, v)


def test_passes_with_unknown_dims_at_both_orders():
    x = cr.placeholder("x", (None, 2))
    cost = cr.sum(cr.softplus(x) * x[::-1]) + cr.mean(x) ** 2
    xv = np.array([[0.5, -1.0], [2.0, 0.3], [-0.2, 0.1]])
    cr.check_grad(cost, x, {"x": xv})
    cr.check_grad(cost, x, {x: xv}, order=2)


def test_passes_on_float32_graphs():
    """float32 anywhere in the graph selects the looser defaults, even with
    float64 inputs (rounding in float32 swamps a 1e-6 step)."""
    x = cr.placeholder("x", (3,))
    xv = np.array([0.3, -1.2, 2.0])
    cr.check_grad(cr.sum(cr.cast(x, "float32") ** 2), x, {"x": xv})
    cr.check_grad(cr.sum(cr.cast(cr.exp(cr.cast(x, "float32")), "float64")), x, {"x": xv},
                  order=2)
    f = cr.placeholder("f", (3,), "float32")
    cr.check_grad(cr.sum(cr.tanh(f) ** 2 * 10), f, {"f": xv.astype(np.float32)}, order=2)


def test_values_for_unused_and_by_name_or_var():
    x, y, z = cr.placeholder("x", (2,)), cr.placeholder("y", ()), cr.placeholder("z", (4,))
    cost = cr.sum(x * y) ** 2
    # z is unused: wrt it checks zeros; "other" names nothing in the graph
    cr.check_grad(cost, [x, y, z], {x: [1.0, 2.0], "y": 0.5, "other": 1.0})
    cr.check_grad(cost, [x, y], {"x": np.array([1.0, 2.0]), y: np.float64(0.5)}, order=2)
    w = cr.placeholder("w", (None,))
    cr.check_grad(cost, [x, w], {"x": [1.0, 2.0], "y": 0.5})  # unused, unknown size


def test_a_parameter_value_given_in_values_is_used_then_restored():
    p = cr.parameter(np.array([1.0, 2.0]), "p")
    x = cr.placeholder("x", (2,))
    cost = cr.sum(x * p * p)
    cr.check_grad(cost, [x, p], {"x": [3.0, -1.0], p: np.array([0.5, 4.0])}, order=2)
    cr.check_grad(cost, [x], {"x": [3.0, -1.0], "p": np.array([0.5, 4.0])})
    np.testing.assert_array_equal(p.value, [1.0, 2.0])


# -- wrong graphs fail, naming the input and the index ------------------------------

def _reported(msg):
    """The (symbolic, numeric) values an AssertionError message reports."""
    m = re.search(r"symbolic (\S+), numeric (\S+),", msg)
    return float(m.group(1)), float(m.group(2))


def test_stop_gradient_makes_the_first_derivative_wrong():
    x = cr.placeholder("x", (3,))
    cost = cr.sum(x * sg(x))  # value sum(x^2), symbolic gradient x
    with pytest.raises(AssertionError) as e:
        cr.check_grad(cost, x, {"x": np.array([0.5, -1.0, 3.0])})
    msg = str(e.value)
    assert "d cost / d x" in msg
    assert "index (2,)" in msg  # the worst entry: |x| largest
    assert _reported(msg) == pytest.approx((3.0, 6.0), rel=1e-6), msg


def test_the_failing_index_of_a_matrix_input():
    W = cr.placeholder("W", (2, 3))
    v = cr.placeholder("v", (3,))
    cost = cr.sum(W @ v) + W[1, 2] * sg(W[1, 2])  # wrong only at W[1, 2]
    with pytest.raises(AssertionError, match=r"d cost / d W .*index \(1, 2\) \(shape \(2, 3\)\)"):
        cr.check_grad(cost, [v, W], {"W": np.ones((2, 3)), "v": np.ones(3)})
    # v alone is right
    cr.check_grad(cost, v, {"W": np.ones((2, 3)), "v": np.ones(3)})


def test_a_small_wrong_gradient_is_not_hidden_by_an_absolute_floor():
    """Gradients of size 1e-8 that are off by a factor of two fail: the
    tolerance is relative to the block's scale (plus rounding noise), not
    to 1."""
    x = cr.placeholder("x", (3,))
    with pytest.raises(AssertionError, match="d cost / d x"):
        cr.check_grad(1e-8 * cr.sum(x * sg(x)), x, {"x": [0.5, -1.0, 3.0]})
    cr.check_grad(1e-8 * cr.sum(x * x), x, {"x": [0.5, -1.0, 3.0]})


def test_second_order_detects_a_wrong_second_derivative():
    x = cr.placeholder("x", (3,))
    # value sum(x^3), gradient 3 x^2 (right), Hessian 0 (wrong: 6 diag(x))
    cost = sg(cr.sum(x ** 3)) + cr.sum((x - sg(x)) * sg(3 * x ** 2))
    xv = np.array([0.5, -1.0, 2.0])
    cr.check_grad(cost, x, {"x": xv}, order=1)  # first order cannot tell
    with pytest.raises(AssertionError) as e:
        cr.check_grad(cost, x, {"x": xv}, order=2)
    msg = str(e.value)
    assert "d2 cost / d x d x" in msg and "index (2, 2)" in msg, msg
    assert _reported(msg) == pytest.approx((0.0, 12.0), rel=1e-6), msg


def test_second_order_names_both_inputs_of_a_wrong_cross_derivative():
    x, y = cr.placeholder("x", (2,)), cr.placeholder("y", ())
    # value sum(x) * y with right gradients (y, sum(x)) but no cross term
    cost = sg(cr.sum(x) * y) + cr.sum(x - sg(x)) * sg(y) + (y - sg(y)) * sg(cr.sum(x))
    vals = {"x": [1.0, 2.0], "y": 3.0}
    cr.check_grad(cost, [x, y], vals)
    cr.check_grad(cost + cr.sum(x * x), x, vals, order=2)  # the x, x block is right
    with pytest.raises(AssertionError, match=r"d2 cost / d (x d y|y d x)"):
        cr.check_grad(cost, [x, y], vals, order=2)


def test_rtol_is_honoured():
    x = cr.placeholder("x", (3,))
    cost = cr.sum(x * sg(x))  # off by a factor of two
    xv = {"x": [0.5, -1.0, 3.0]}
    cr.check_grad(cost, x, xv, rtol=0.6)  # |3 - 6| <= 0.6 * 6
    with pytest.raises(AssertionError, match="rtol=0.4"):
        cr.check_grad(cost, x, xv, rtol=0.4)


def test_nan_against_a_number_fails():
    x = cr.placeholder("x", (2,))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(AssertionError, match="index \\(0,\\)"):
            cr.check_grad(cr.sum(cr.sqrt(x)), x, {"x": [0.0, 1.0]})  # inf vs nan


# -- bad calls ------------------------------------------------------------------------

def test_bad_calls():
    x = cr.placeholder("x", (2,))
    i = cr.placeholder("i", (2,), "int64")
    cost = cr.sum(x * i)
    with pytest.raises(ValueError, match="order"):
        cr.check_grad(cost, x, {"x": [1.0, 2.0], "i": [1, 2]}, order=3)
    with pytest.raises(cr.InputError, match="'i'"):
        cr.check_grad(cost, x, {"x": [1.0, 2.0]})
    with pytest.raises(cr.InputError, match="placeholder or a parameter"):
        cr.check_grad(cost, x * 2, {"x": [1.0, 2.0], "i": [1, 2]})
    with pytest.raises(cr.InputError, match="i is int64"):
        cr.check_grad(cost, [x, i], {"x": [1.0, 2.0], "i": [1, 2]})
    with pytest.raises(cr.InputError, match="keys"):
        cr.check_grad(cost, x, {1: [1.0, 2.0]})


@pytest.mark.parametrize("kwargs, values, msg", [
    ({"rtol": -1}, {"x": [0.1, 0.2, 0.3]}, "rtol must be a positive"),
    ({"eps": 0}, {"x": [0.1, 0.2, 0.3]}, "eps must be a positive"),
    ({"rtol": "1e-3"}, {"x": [0.1, 0.2, 0.3]}, "rtol must be a positive"),
    ({"order": 3}, {"x": [0.1, 0.2, 0.3]}, "order must be 1 or 2"),
    ({}, [[0.1, 0.2, 0.3]], "values must be a dict"),
    ({}, {"x": [np.nan, 0.2, 0.3]}, "NaN or inf"),
])
def test_bad_arguments_are_named_not_blamed_on_the_derivative(kwargs, values, msg):
    """A negative rtol or a NaN point made a correct gradient 'disagree'."""
    x = cr.placeholder("x", (3,))
    with pytest.raises(cr.InputError, match=msg):
        cr.check_grad(cr.sum(cr.sin(x) * x), x, values, **kwargs)
