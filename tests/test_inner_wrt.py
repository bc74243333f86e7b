"""Derivatives with respect to inner nodes (any Var may be a wrt, as in
TensorFlow's ``tf.gradients(loss, hidden)``): each wrt node is a cut point
where a perturbation is added to its value. Expected values come from
closed forms and from finite differences with the inner node replaced by an
independent input."""

import numpy as np
import pytest

import chainrule as cr


def test_jvp_and_vjp_agree_when_one_wrt_node_depends_on_another():
    """grad's cotangent for x counts the path through the wrt node h; the
    tangent of h is its seed plus what flows into it from x, so that
    <c, jvp(t)> = <vjp(c), t> for every seed."""
    x = cr.placeholder("x")
    h = cr.sin(x)
    y = h * x
    xv = 0.7
    gx, gh = cr.evaluate(cr.grad(y, [x, h]), {x: xv})
    assert np.isclose(gx, np.sin(xv) + xv * np.cos(xv)) and np.isclose(gh, xv)
    for tx, th in [(1.0, 0.0), (0.0, 1.0), (0.3, -2.0)]:
        got = cr.evaluate(cr.jvp(y, [x, h], [tx, th]), {x: xv})
        assert np.isclose(got, gx * tx + gh * th)
    # the same seed given for the node twice counts twice
    assert np.isclose(cr.evaluate(cr.jvp(y, [h, h], [1.0, 1.0]), {x: xv}), 2 * xv)


def test_second_derivative_with_respect_to_an_inner_node():
    """hvp, hessian and grad of grad with respect to h = tanh(x) * 2:
    closed form d2/dh2 sum(h**3) = 6 h, and finite differences with h fed
    as a placeholder."""
    x = cr.placeholder("x", (3,))
    h = cr.tanh(x) * 2.0
    cost = (h ** 3).sum() + (h * x).sum()
    xv = np.array([0.3, -0.5, 1.2])
    hv = np.tanh(xv) * 2
    v = np.array([1.0, -2.0, 0.5])
    np.testing.assert_allclose(cr.evaluate(cr.hvp(cost, h, v), {x: xv}), 6 * hv * v)
    np.testing.assert_allclose(cr.evaluate(cr.hessian(cost, h), {x: xv}), np.diag(6 * hv))
    g = cr.grad(cost, h)
    np.testing.assert_allclose(cr.evaluate(cr.grad(g.sum(), h), {x: xv}), 6 * hv)


@pytest.mark.parametrize("case", ["tied weights", "power"])
def test_an_inner_node_a_derivative_rule_rebuilt_is_refused_not_miscounted(case):
    """The gradient of A @ W with A = W.T rebuilds W.T, which is A itself
    (equal expressions are one node); the gradient of (h z) ** y with
    h = y - 1 rebuilds y - 1. A second derivative with respect to A (or h)
    would count the rebuilt uses too (a wrong Hessian: the reviewer's
    example gave 14.76 for 8.85), so it is refused with a clear error. The
    first derivative is right."""
    if case == "tied weights":
        W = cr.placeholder("W", (2, 3))
        A = W.T
        cost = cr.sin(A @ W).sum()
        Wv = np.arange(6.0).reshape(2, 3) / 7
        Av = Wv.T
        want = np.cos(Av @ Wv) @ Wv.T  # d/dA sum(sin(A W)), W fixed
        feed, wrt, V = {W: Wv}, A, np.ones((3, 2))
    else:
        y, z = cr.placeholder("y"), cr.placeholder("z")
        A = y - 1.0
        cost = (A * z) ** y
        feed, wrt, V = {y: 2.5, z: 1.3}, A, 1.0
        want = 2.5 * (1.5 * 1.3) ** 1.5 * 1.3
    np.testing.assert_allclose(cr.evaluate(cr.grad(cost, wrt), feed), want)
    for second in (lambda: cr.hvp(cost, wrt, V), lambda: cr.hessian(cost, wrt),
                   lambda: cr.grad(cr.grad(cost, wrt).sum(), wrt),
                   lambda: cr.jvp(cr.grad(cost, wrt), wrt, V)):
        with pytest.raises(cr.NotDifferentiableError, match="rebuilt the same expression"):
            second()
    # with respect to the leaves it is made from, nothing is ambiguous
    leaf = W if case == "tied weights" else y
    assert cr.evaluate(cr.hessian(cost, leaf), feed).shape == leaf.shape + leaf.shape
