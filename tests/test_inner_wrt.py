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


# -- property: any inner node, any composition ---------------------------------

from hypothesis import given, settings, strategies as st  # noqa: E402

_INNER = [lambda v: v.T, lambda v: v - 1.0, cr.exp, cr.sin, cr.square, cr.tanh, cr.sigmoid,
          lambda v: -v, lambda v: v * 0.5]
# (x enters the outer terms as x itself or as cos(x).T, never as an
# expression that h may be: x.T written twice is one node, h itself)
_OUTER = [lambda h, x: h @ x, lambda h, x: cr.cos(x).T @ h.T,
          lambda h, x: cr.sin(h) * cr.cos(x).T, lambda h, x: cr.tanh(h @ x),
          lambda h, x: cr.exp(h - 1.0) * cr.cos(x).T,
          lambda h, x: cr.log(cr.sigmoid(h)) + cr.cos(x).T,
          lambda h, x: cr.square(h) * cr.cos(x).T, lambda h, x: (h @ x) ** 3.0]


def _check_inner(inner, outer, ways=range(4)):
    x = cr.placeholder("x", (2, 3))
    h = x
    for k in inner:
        h = _INNER[k](h)
    if h.shape != (3, 2):
        h = h.T

    def cost_of(hh):
        return sum(cr.sum(_OUTER[k](hh, x)) for k in outer)

    P = cr.placeholder("P", (3, 2))
    xv = np.linspace(-0.9, 0.8, 6).reshape(2, 3)
    pv = cr.evaluate(h, {x: xv})
    v = np.linspace(0.3, -0.6, 6).reshape(3, 2)

    def second(cost, wrt, way):
        g = cr.grad(cost, wrt)
        vt = cr.constant(v)
        return [lambda: cr.hvp(cost, wrt, v), lambda: cr.jvp(g, wrt, v),
                lambda: cr.grad(cr.sum(g * vt), wrt),
                lambda: cr.reshape(cr.reshape(cr.hessian(cost, wrt), (6, 6))
                                   @ cr.reshape(vt, (6,)), (3, 2))][way]()

    for way in ways:
        want = cr.evaluate(second(cost_of(P), P, way), {x: xv, P: pv})
        got = second(cost_of(h), h, way)
        np.testing.assert_allclose(cr.evaluate(got, {x: xv}), want, rtol=1e-9, atol=1e-12,
                                   err_msg=f"way {way}")
        np.testing.assert_allclose(cr.function([x], got)(xv), want, rtol=1e-9, atol=1e-12,
                                   err_msg=f"way {way}, compiled")


@pytest.mark.parametrize("outer", range(len(_OUTER)))
@pytest.mark.parametrize("inner", range(len(_INNER)))
def test_second_derivatives_wrt_each_inner_op(inner, outer):
    """h = one op of x (transposed to 3x2 if needed); cost = sum(outer(h, x)).
    hvp, jvp of grad, grad of grad and hessian with respect to h equal the
    ones with h fed as an independent placeholder P (at P = h's value): the
    rules' rebuilt copies of h's expression (x.T in the gradient of
    x.T @ x, x - 1 in a power rule, ...) must not count."""
    _check_inner([inner], [outer])


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(0, len(_INNER) - 1), min_size=2, max_size=3),
       st.lists(st.integers(0, len(_OUTER) - 1), min_size=1, max_size=2),
       st.integers(0, 3))
def test_second_derivatives_wrt_inner_nodes_match_an_independent_input(inner, outer, way):
    """The same with chains of inner ops and sums of outer terms."""
    _check_inner(inner, outer, [way])
