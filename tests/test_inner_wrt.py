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
def test_second_derivatives_do_not_differentiate_what_a_rule_rebuilt(case):
    """The gradient of A @ W with A = W.T needs W.T; the gradient of
    (h z) ** y with h = y - 1 needs y - 1. Those are rebuilt by the rules
    from W (and y), and do not vary with A (or h). The differentiation
    functions build their nodes in a hash-consing table of their own, so
    the rules' W.T is not the user's A, and every way of taking the second
    derivative gives the one with A independent (they gave 14.76 for 8.85
    when the two were one node). Expected values: closed forms, and central
    differences of the gradient with A fed as a placeholder."""
    if case == "tied weights":
        W = cr.placeholder("W", (2, 3))
        A = W.T
        cost = cr.sin(A @ W).sum()
        Wv = np.arange(6.0).reshape(2, 3) / 7
        Av = Wv.T
        feed, V = {W: Wv}, np.linspace(-1.0, 1.0, 6).reshape(3, 2)
        want_g = np.cos(Av @ Wv) @ Wv.T  # d/dA sum(sin(A W)), W fixed
        want_hv = (-np.sin(Av @ Wv) * (V @ Wv)) @ Wv.T
        A_free = cr.placeholder("A_free", (3, 2))
        g_free = cr.grad(cr.sin(A_free @ W).sum(), A_free)
        g_at = cr.function([A_free, W], g_free)
        fd = (g_at(Av + 1e-6 * V, Wv) - g_at(Av - 1e-6 * V, Wv)) / 2e-6
        np.testing.assert_allclose(fd, want_hv, rtol=1e-6, atol=1e-9)
    else:
        y, z = cr.placeholder("y"), cr.placeholder("z")
        A = y - 1.0
        cost = (A * z) ** y
        feed, V = {y: 2.5, z: 1.3}, 1.0
        want_g = 2.5 * (1.5 * 1.3) ** 1.5 * 1.3
        want_hv = 2.5 * 1.5 * (1.5 * 1.3) ** 0.5 * 1.3 ** 2
    g = cr.grad(cost, A)
    np.testing.assert_allclose(cr.evaluate(g, feed), want_g)
    n = int(np.prod(A.shape))
    Vt = cr.constant(np.asarray(V, float))
    ways = {
        "hvp": cr.hvp(cost, A, V),
        "jvp of grad": cr.jvp(g, A, V),
        "grad of grad": cr.grad((g * Vt).sum(), A),
        "hessian": cr.reshape(cr.reshape(cr.hessian(cost, A), (n, n)) @ cr.reshape(Vt, (n,)),
                              A.shape),
    }
    for mode in ("forward", "reverse"):
        J = cr.reshape(cr.jacobian(g, A, mode=mode), (n, n))
        ways[f"jacobian {mode}"] = cr.reshape(J @ cr.reshape(Vt, (n,)), A.shape)
    for way, expr in ways.items():
        np.testing.assert_allclose(cr.evaluate(expr, feed), want_hv, rtol=1e-12, err_msg=way)
        got = cr.function(list(feed), expr)(*feed.values())  # optimized and compiled
        np.testing.assert_allclose(got, want_hv, rtol=1e-12, err_msg=way)


def test_a_node_built_after_a_gradient_is_the_users_own():
    """A = W.T built after a gradient whose rules made a W.T is a node of
    its own: a derivative with respect to A does not pass through the
    gradient's W.T. Compiled, the two are one array again (cr.optimize
    merges equal nodes of both tables)."""
    M = cr.placeholder("M", (3, 3))
    W = cr.placeholder("W", (3, 3))
    gM = cr.grad(cr.tanh(M @ W).sum(), M)  # the rule computes g @ W.T
    A = W.T
    cost = (gM * gM).sum() + (A * A).sum()
    rng = np.random.default_rng(0)
    Mv, Wv = rng.normal(size=(3, 3)), rng.normal(size=(3, 3))
    np.testing.assert_allclose(cr.evaluate(cr.grad(cost, A), {M: Mv, W: Wv}), 2 * Wv.T)
    f = cr.function([M, W], [gM, A])
    assert f.source.count(".T") + f.source.count("transpose") <= 2, f.source
    np.testing.assert_allclose(f(Mv, Wv)[1], Wv.T)


def test_repeated_wrt_leaf_sums_its_tangents():
    """jvp(y, [x, x], [t1, t2]) pushes t1 + t2, as the vjp pairing requires
    (grad gives x's full cotangent for each entry)."""
    x = cr.placeholder("x", (2,))
    got = cr.evaluate(cr.jvp(x * x, [x, x], [[1.0, 0.0], [0.0, 1.0]]), {x: [0.3, 0.7]})
    np.testing.assert_allclose(got, [0.6, 1.4])


def test_a_node_an_earlier_call_returned_is_its_own_wrt():
    """g = grad(sum(sin x), x) is cos(x); the next gradient's rule for sin
    rebuilds cos(x) too, as a node of its own: d/dg of d/dx sum(g sin x)
    = d/dg (g cos x) = cos x, not 2 cos x."""
    x = cr.placeholder("x", (3,))
    xv = np.array([0.1, 0.5, 2.0])
    g = cr.grad(cr.sin(x).sum(), x)
    h = cr.grad((g * cr.sin(x)).sum(), x)
    v = np.array([1.0, -2.0, 0.5])
    for expr in (cr.jvp(h, g, v), cr.vjp(h, g, v)):  # the Jacobian is diagonal
        np.testing.assert_allclose(cr.evaluate(expr, {x: xv}), v * np.cos(xv))
        np.testing.assert_allclose(cr.function([x], expr)(xv), v * np.cos(xv))


def test_compiling_a_gradient_does_not_rename_the_users_nodes():
    """The gradient of sum(sin z) is a cos(z) of its own, named grad_z;
    compiled, it merges with the user's unnamed cos(z), which keeps no name."""
    z = cr.placeholder("z", (3,))
    c = cr.cos(z)
    g = cr.grad(cr.sin(z).sum(), z)
    f = cr.function([z], [c * 2.0, g])
    assert c.name is None
    np.testing.assert_allclose(f(np.zeros(3))[1], np.ones(3))
