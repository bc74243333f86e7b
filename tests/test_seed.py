"""The seed examples of the issue, with their hand-computed answers."""

import math

import numpy as np
import pytest

import chainrule as cr
from chainrule.ir import topo_order

from conftest import numeric_grad, run_both


def test_sum_times(backend):
    x, y, z = cr.placeholder("x"), cr.placeholder("y"), cr.placeholder("z")
    f = (x + y) * z
    f_ = cr.function([x, y, z], [f] + cr.grad(f, [x, y, z]), backend=backend)
    out = f_(-2.0, 5.0, -4.0)
    assert [float(v) for v in out] == [-12.0, -4.0, -4.0, 3.0]


def test_product(backend):
    x, y = cr.placeholder("x"), cr.placeholder("y")
    f = cr.function([x, y], cr.grad(x * y, [x, y]), backend=backend)
    dx, dy = f(2.0, -6.0)
    assert float(dx) == -6.0 and float(dy) == 2.0


def _sig(t):
    return 1 / (1 + math.exp(-t))


@pytest.mark.parametrize("w0,x0,b0,y0", [(0.5, 2.0, -0.3, 1.0), (-1.5, 0.7, 2.0, 0.0),
                                         (3.0, -2.0, 0.1, 0.25)])
def test_logistic_neuron(backend, w0, x0, b0, y0):
    w, x, b, y = (cr.placeholder(n) for n in "wxby")
    z = w * x + b
    yhat = cr.sigmoid(z)
    L = 0.5 * (y - yhat) ** 2
    f = cr.function([w, x, b, y], [L, yhat] + cr.grad(L, [w, b, x]), backend=backend)
    loss, yh, dw, db, dx = (float(v) for v in f(w0, x0, b0, y0))
    zz = w0 * x0 + b0
    s = _sig(zz)
    assert yh == pytest.approx(s, rel=1e-14)
    assert loss == pytest.approx(0.5 * (y0 - s) ** 2, rel=1e-13)
    dsig = s * (1 - s)
    assert dw == pytest.approx((s - y0) * dsig * x0, rel=1e-12)
    assert db == pytest.approx((s - y0) * dsig, rel=1e-12)
    assert dx == pytest.approx((s - y0) * dsig * w0, rel=1e-12)


def test_vjp_of_exp_builds_no_jacobian(backend):
    n = 50
    x = cr.placeholder("x", (n,))
    g = cr.placeholder("g", (n,))
    y = cr.exp(x)
    gx = cr.vjp(y, x, g)
    assert gx.shape == (n,)
    for node in topo_order([gx]):
        assert node.shape != (n, n), f"a Jacobian-sized node was built: {node!r}"
    rng = np.random.default_rng(0)
    xv, gv = rng.normal(size=n), rng.normal(size=n)
    out = cr.function([x, g], gx, backend=backend)(xv, gv)
    np.testing.assert_allclose(out, gv * np.exp(xv), rtol=1e-14)


def test_vjp_with_array_cotangent(backend):
    x = cr.placeholder("x", (3,))
    ct = np.array([1.0, -2.0, 0.5])
    gx = cr.vjp(cr.sin(x), x, ct)
    xv = np.array([0.1, 0.2, 0.3])
    np.testing.assert_allclose(cr.function([x], gx, backend=backend)(xv),
                               ct * np.cos(xv), rtol=1e-14)


def test_vjp_structure_and_multiple_outputs(backend):
    x, y = cr.placeholder("x", (2,)), cr.placeholder("y", (2,))
    outs = {"s": x * y, "t": cr.sin(x)}
    res = cr.vjp(outs, {"a": x, "b": y}, {"s": np.ones(2), "t": np.full(2, 2.0)})
    assert set(res) == {"a", "b"}
    xv, yv = np.array([0.3, -1.0]), np.array([2.0, 5.0])
    f = cr.function([x, y], res, backend=backend)
    got = f(xv, yv)
    np.testing.assert_allclose(got["a"], yv + 2 * np.cos(xv), rtol=1e-14)
    np.testing.assert_allclose(got["b"], xv, rtol=1e-14)


def test_neuron_gradient_matches_finite_differences():
    # the same neuron with vectors, cross-checked numerically
    rng = np.random.default_rng(3)
    w, x = cr.placeholder("w", (4,)), cr.placeholder("x", (4,))
    b, y = cr.placeholder("b"), cr.placeholder("y")
    L = 0.5 * (y - cr.sigmoid(cr.dot(w, x) + b)) ** 2
    wv, xv = rng.normal(size=4), rng.normal(size=4)
    got = run_both([w, x, b, y], cr.grad(L, [w, x, b]), wv, xv, 0.2, 0.3)

    def ref(wv, xv, bv):
        return 0.5 * (0.3 - 1 / (1 + np.exp(-(wv @ xv + bv)))) ** 2

    want = numeric_grad(ref, [wv, xv, 0.2])
    for g, exp in zip(got, want):
        np.testing.assert_allclose(g, exp, rtol=1e-6, atol=1e-9)


def test_grad_structures_and_intermediates(backend):
    x = cr.placeholder("x", (3,))
    h = cr.tanh(x)
    cost = cr.sum(h * h)
    res = cr.grad(cost, {"x": x, "h": h})
    assert set(res) == {"x", "h"}
    tup = cr.grad(cost, (x,))
    assert isinstance(tup, tuple) and len(tup) == 1
    xv = np.array([0.3, -0.2, 1.0])
    got = cr.function([x], res, backend=backend)(xv)
    t = np.tanh(xv)
    np.testing.assert_allclose(got["h"], 2 * t, rtol=1e-14)
    np.testing.assert_allclose(got["x"], 2 * t * (1 - t ** 2), rtol=1e-13)


def test_gradient_is_a_graph_that_differentiates_again(backend):
    x = cr.placeholder("x")
    y = cr.sin(x) * x
    derivs = [y]
    for _ in range(4):
        derivs.append(cr.grad(derivs[-1], x))
    got = [float(v) for v in cr.function([x], derivs, backend=backend)(0.7)]
    s, c, a = np.sin(0.7), np.cos(0.7), 0.7
    want = [a * s, s + a * c, 2 * c - a * s, -3 * s - a * c, -4 * c + a * s]
    np.testing.assert_allclose(got, want, rtol=1e-13)
