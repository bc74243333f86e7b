"""Stabilising rewrites and NaN/inf safety of the optimizer (issue 4).

Stabilisation: each naive expression overflows (or loses all precision) at
the inputs used here; after ``cr.optimize`` (the default in ``cr.function``)
it is finite and matches a closed form computed with NumPy's own stable
functions (``logaddexp``, ``log1p``, ``expm1``) or a Taylor series.

NaN safety: rewrites that drop an operand (``x * 0``, ``x - x``, ``x / x``)
fire only when the operand is known finite; for a placeholder, inf and NaN
still come out as NumPy gives them.
"""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
from chainrule.ir import topo_order

BACKENDS = ("interpreter", "numpy")
BIG = np.array([-1000.0, -40.0, -1.0, 0.0, 1.0, 40.0, 1000.0])


def ops_of(out):
    return [n.op.name for n in topo_order([out])]


def run(x, out, xv, optimize=True):
    """Values of ``out`` at ``xv`` on both backends (checked equal)."""
    results = []
    with np.errstate(all="ignore"):
        for backend in BACKENDS:
            f = cr.function([x], out, backend=backend, optimize=optimize)
            results.append(f(xv))
    np.testing.assert_array_equal(results[0], results[1])
    return results[1]


def check_stabilised(x, naive, xv, want, rtol=1e-14, stable_op=None):
    """The optimized graph is finite and right where the naive one is not."""
    with np.errstate(all="ignore"):
        raw = run(x, naive, xv, optimize=False)
    assert not np.all(np.isfinite(raw)), "the naive graph should overflow here"
    got = run(x, naive, xv)
    assert np.all(np.isfinite(got)), got
    np.testing.assert_allclose(got, want, rtol=rtol, atol=0)
    opt = cr.optimize(naive)
    if stable_op:
        assert stable_op in ops_of(opt), cr.pprint(opt)
    np.testing.assert_allclose(cr.evaluate(opt, {x: xv}), want, rtol=rtol, atol=0)
    return opt


# -- stabilisation --------------------------------------------------------------

def test_log_sigmoid_becomes_minus_softplus_of_minus_x():
    x = cr.placeholder("x", BIG.shape)
    # log(sigmoid(x)) = -log(1 + exp(-x)), NumPy's logaddexp is stable
    want = -np.logaddexp(0.0, -BIG)
    opt = check_stabilised(x, cr.log(cr.sigmoid(x)), BIG, want, stable_op="softplus")
    assert cr.pprint(opt) == "-softplus(-x)"
    assert want[-2] == pytest.approx(-np.exp(-40.0), rel=1e-15)  # tiny, yet exact


def test_log_one_minus_sigmoid_becomes_minus_softplus():
    x = cr.placeholder("x", BIG.shape)
    want = -np.logaddexp(0.0, BIG)  # log(1 - sigmoid(x)) = -log(1 + exp(x))
    opt = check_stabilised(x, cr.log(1.0 - cr.sigmoid(x)), BIG, want, stable_op="softplus")
    assert "sigmoid" not in ops_of(opt) and "log" not in ops_of(opt)


def test_log_one_plus_x_becomes_log1p():
    x = cr.placeholder("x", (4,))
    xv = np.array([1e-12, -3e-13, 1e-17, 0.5])
    want = xv - xv ** 2 / 2 + xv ** 3 / 3  # Taylor series; exact at these sizes
    want[-1] = np.log(1.5)
    naive = cr.log(1.0 + x)
    raw = run(x, naive, xv, optimize=False)
    assert abs(raw[0] / want[0] - 1) > 1e-6  # the naive form loses the digits
    assert raw[2] == 0.0  # and all of them below eps
    got = run(x, naive, xv)
    np.testing.assert_allclose(got, want, rtol=1e-15)
    assert ops_of(cr.optimize(naive)) == ["placeholder", "log1p"]


def test_exp_minus_one_becomes_expm1():
    x = cr.placeholder("x", (4,))
    xv = np.array([1e-12, -3e-13, 1e-17, 0.5])
    want = xv + xv ** 2 / 2 + xv ** 3 / 6
    want[-1] = np.exp(0.5) - 1
    naive = cr.exp(x) - 1.0
    raw = run(x, naive, xv, optimize=False)
    assert abs(raw[0] / want[0] - 1) > 1e-6
    got = run(x, naive, xv)
    np.testing.assert_allclose(got, want, rtol=1e-15)
    assert ops_of(cr.optimize(naive)) == ["placeholder", "expm1"]


def test_log_softmax_is_stabilised():
    x = cr.placeholder("x", (2, 3))
    xv = np.array([[0.0, 1000.0, -1000.0], [1.0, 2.0, 3.0]])
    # log softmax = x - max - log(sum(exp(x - max))), by hand
    m = xv.max(axis=1, keepdims=True)
    want = xv - m - np.log(np.exp(xv - m).sum(axis=1, keepdims=True))
    assert want[0].tolist() == [-1000.0, 0.0, -2000.0]
    opt = check_stabilised(x, cr.log(cr.softmax(x)), xv, want, stable_op="log_softmax")
    assert "softmax" not in ops_of(opt)


def test_log_sum_exp_becomes_logsumexp():
    x = cr.placeholder("x", (2, 2))
    xv = np.array([[1000.0, 999.0], [-1000.0, -1001.0]])
    # closed forms: log(e^a + e^(a-1)) = a + log(1 + e^-1)
    want = np.array([1000.0, -1000.0]) + np.log1p(np.exp(-1.0))
    opt = check_stabilised(x, cr.log(cr.sum(cr.exp(x), axis=1)), xv, want,
                           stable_op="logsumexp")
    assert "exp" not in ops_of(opt)
    # over all axes, and keeping dims
    total = cr.log(cr.sum(cr.exp(x), axis=None, keepdims=True))
    got = run(x, total, xv)
    assert got.shape == (1, 1)
    np.testing.assert_allclose(got, [[1000.0 + np.log1p(np.exp(-1.0))]], rtol=1e-15)


def test_log1p_exp_and_log_exp():
    x = cr.placeholder("x", BIG.shape)
    check_stabilised(x, cr.log1p(cr.exp(x)), BIG, np.logaddexp(0.0, BIG), stable_op="softplus")
    check_stabilised(x, cr.log(1.0 + cr.exp(x)), BIG, np.logaddexp(0.0, BIG),
                     stable_op="softplus")
    opt = check_stabilised(x, cr.log(cr.exp(x)), BIG, BIG)
    assert opt is x


def test_stabilised_loss_has_finite_gradients():
    # binary cross-entropy written naively; differentiating the optimized
    # graph gives sigmoid(z) - y, finite at |z| = 1000
    z = cr.placeholder("z", (4,))
    y = np.array([1.0, 0.0, 1.0, 0.0])
    loss = -cr.sum(y * cr.log(cr.sigmoid(z)) + (1.0 - y) * cr.log(1.0 - cr.sigmoid(z)))
    zv = np.array([-1000.0, 1000.0, 3.0, -2.0])
    want_loss = np.sum(y * np.logaddexp(0.0, -zv) + (1 - y) * np.logaddexp(0.0, zv))
    with np.errstate(over="ignore"):  # exp(1000) is inf and 1 / inf is the 0 we want
        want_grad = 1 / (1 + np.exp(-zv)) - y
    stable = cr.optimize(loss)
    grad = cr.grad(stable, z)
    for backend in BACKENDS:
        f = cr.function([z], [loss, grad], backend=backend)
        got_loss, got_grad = f(zv)
        np.testing.assert_allclose(got_loss, want_loss, rtol=1e-14)
        np.testing.assert_allclose(got_grad, want_grad, rtol=1e-14, atol=1e-300)
    with np.errstate(all="ignore"):
        raw = cr.function([z], loss, optimize=False)(zv)
    assert np.isinf(raw)


def _stable_sigmoid(v):
    return np.exp(-np.logaddexp(0.0, -v))


@pytest.mark.parametrize("optimize", [True, False])
def test_gradients_of_naive_graphs_are_the_stable_gradients(optimize):
    """grad, jvp and hvp differentiate the stabilised form, so gradients
    built straight from a naive loss are finite where the naive derivative
    is inf * 0 = NaN (softmax or sigmoid underflowing), with or without the
    optimizer afterwards; closed forms with NumPy's stable functions."""
    z = cr.placeholder("z", (3,))
    y = np.array([1.0, 0.0, 0.0])
    ce = -cr.sum(y * cr.log(cr.softmax(z)))
    zv = np.array([0.0, 800.0, -5.0])
    sm = np.exp(zv - zv.max()) / np.exp(zv - zv.max()).sum()
    got = cr.function([z], cr.grad(ce, z), optimize=optimize)(zv)
    np.testing.assert_allclose(got, sm - y, rtol=1e-14, atol=1e-300)

    x = cr.placeholder("x", (7,))
    cases = [  # (naive expression, its derivative, its second derivative)
        (cr.log(cr.sigmoid(x)), lambda v: _stable_sigmoid(-v),
         lambda v: -_stable_sigmoid(v) * _stable_sigmoid(-v)),
        (cr.log(1.0 - cr.sigmoid(x)), lambda v: -_stable_sigmoid(v),
         lambda v: -_stable_sigmoid(v) * _stable_sigmoid(-v)),
        (cr.log1p(cr.exp(x)), _stable_sigmoid,
         lambda v: _stable_sigmoid(v) * _stable_sigmoid(-v)),
        # two rules in a row: log(1 + e) -> log1p(e) -> softplus(x)
        (cr.log(1.0 + cr.exp(x)), _stable_sigmoid,
         lambda v: _stable_sigmoid(v) * _stable_sigmoid(-v)),
    ]
    for naive, d1, d2 in cases:
        g = cr.grad(cr.sum(naive), x)
        t = cr.jvp(naive, x, np.ones(7))
        h = cr.hvp(cr.sum(naive), x, np.ones(7))
        for backend in BACKENDS:
            f = cr.function([x], [g, t, h], backend=backend, optimize=optimize)
            got_g, got_t, got_h = f(BIG)
            np.testing.assert_allclose(got_g, d1(BIG), rtol=1e-14, atol=1e-300)
            np.testing.assert_allclose(got_t, d1(BIG), rtol=1e-14, atol=1e-300)
            # sigmoid' = s (1 - s) as in JAX and PyTorch: absolute accuracy
            # (1 - s rounds to 0 once s is within 1e-17 of 1, at x = 40)
            np.testing.assert_allclose(got_h, d2(BIG), rtol=1e-13, atol=1e-16)
            assert np.all(np.isfinite(got_h))


def test_naive_gradients_used_to_be_nan_here():
    """The inputs above do make the naive derivative NaN: the same chain
    rule written out by hand in NumPy."""
    with np.errstate(all="ignore"):
        s = 1 / (1 + np.exp(-BIG))
        naive = (1 / s) * s * (1 - s)  # d/dx log(sigmoid(x)) term by term
    assert np.isnan(naive).any()


def test_derivative_with_respect_to_an_inner_node_is_not_rewritten_away():
    """A wrt node inside a stabilisable pattern stays the node differentiated
    against: d/dh sum(log(h)) with h = softmax(z) is 1 / h."""
    z = cr.placeholder("z", (3,))
    h = cr.softmax(z)
    g = cr.grad(cr.sum(cr.log(h)), h)
    zv = np.array([0.5, -1.0, 2.0])
    hv = np.exp(zv) / np.exp(zv).sum()
    np.testing.assert_allclose(cr.evaluate(g, {z: zv}), 1 / hv, rtol=1e-14)


def test_stable_derivatives_respect_every_wrt_node():
    """The stable form bypasses the pattern's inner nodes; a wrt node among
    them is differentiated as written, and other wrt nodes keep the stable
    derivative."""
    x = cr.placeholder("x")
    s = 1 / (1 + np.exp(-0.3))
    feed = {x: 0.3}
    # an inner wrt node inside the pattern: d/ds (log(s) + s) = 1/s + 1
    sig = cr.sigmoid(x)
    assert np.isclose(cr.evaluate(cr.grad(cr.log(sig) + sig, sig), feed), 1 / s + 1)
    # an inner wrt node elsewhere does not turn the stable form off for z
    z = cr.placeholder("z", (3,))
    ce = -cr.log(cr.softmax(z))[0]
    gz, gh = cr.grad(ce, [z, z * 2.0])
    with np.errstate(divide="ignore"):  # the unoptimized graph still runs log(0)
        got_z, got_h = cr.evaluate([gz, gh], {z: [0.0, 800.0, -5.0]})
    np.testing.assert_array_equal(got_z, [-1.0, 1.0, 0.0])
    assert got_h.tolist() == [0.0, 0.0, 0.0]
    # the replacement's -x is a node built elsewhere (hash-consing): still right
    m = -x
    out = cr.log(cr.sigmoid(x)) + 3.0 * m
    got = cr.evaluate(cr.grad(out, [x, m]), feed)
    np.testing.assert_allclose(got, [(1 - s) - 3.0, 3.0], rtol=1e-14)


def test_grad_names_only_the_gradient_and_leaves_the_forward_graph_alone():
    """Differentiating through a stable form builds the replacement on the
    side: no forward node is renamed and the forward graph is untouched."""
    x = cr.placeholder("x", (3,))
    k = cr.placeholder("k", (3,))
    ls = cr.log(cr.sigmoid(k))
    cost = (x * ls).sum()
    before = cr.function([x, k], [cost, ls]).source
    g = cr.grad(cost, x)
    assert g is ls and ls.name is None  # d/dx sum(x * ls) is ls itself
    assert cr.function([x, k], [cost, ls]).source == before
    a = cr.log1p(k * k)
    b = cr.log(1 + k * k)
    b.name = "b"
    cr.grad(b.sum(), k)
    assert a.name is None


# -- NaN / inf safety -------------------------------------------------------------

SPECIAL = np.array([np.inf, -np.inf, np.nan, 0.0, -0.0, 1.5, -2.0])


@pytest.mark.parametrize("name, build, want", [
    ("x * 0", lambda x: x * 0.0, lambda v: v * 0.0),
    ("0 * x", lambda x: 0.0 * x, lambda v: 0.0 * v),
    ("x - x", lambda x: x - x, lambda v: v - v),
    ("x / x", lambda x: x / x, lambda v: v / v),
    ("x * 0 + 1", lambda x: x * 0.0 + 1.0, lambda v: v * 0.0 + 1.0),
    ("(x + 1) - (x + 1)", lambda x: (x + 1.0) - (x + 1.0), lambda v: (v + 1) - (v + 1)),
    ("x - 2 x", lambda x: x - 2.0 * x, lambda v: v - 2 * v),
    ("2 x - x - x", lambda x: 2.0 * x - x - x, lambda v: 2 * v - v - v),
    ("tanh(x) + x - x", lambda x: cr.tanh(x) + x - x, lambda v: np.tanh(v) + v - v),
    ("exp(x) * 0", lambda x: cr.exp(x) * 0.0, lambda v: np.exp(v) * 0.0),
    ("exp(log(x))", lambda x: cr.exp(cr.log(x)), lambda v: np.exp(np.log(v))),
    ("sqrt(x) ** 2", lambda x: cr.sqrt(x) ** 2.0, lambda v: np.sqrt(v) ** 2),
    ("x * x / x", lambda x: x * x / x, lambda v: v * v / v),
    ("x / (x * x)", lambda x: x / (x * x), lambda v: v / (v * v)),
    ("(x - x) * 3", lambda x: (x - x) * 3.0, lambda v: (v - v) * 3),
    ("x + 0 / cast(x > 0) - x", lambda x: x + 0.0 / cr.cast(cr.greater(x, 0.0), "float64") - x,
     lambda v: v + 0.0 / (v > 0) - v),
])
def test_operand_that_may_be_inf_or_nan_is_not_dropped(name, build, want):
    x = cr.placeholder("x", SPECIAL.shape)
    expr = build(x)
    with np.errstate(all="ignore"):
        expected = want(SPECIAL)
    assert np.isnan(expected).any()  # the case is about a NaN the math produces
    got = run(x, expr, SPECIAL)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected), err_msg=name)
    np.testing.assert_allclose(got, expected, rtol=1e-15, equal_nan=True, err_msg=name)
    assert "placeholder" in ops_of(cr.optimize(expr)), name


def test_x_times_zero_x_minus_x_fold_when_x_is_known_finite():
    x = cr.placeholder("x", (3,))
    flag = cr.cast(cr.greater(x, 0.0), "float64")  # 0.0 or 1.0: always finite
    xv = np.array([np.nan, np.inf, -1.0])
    for expr in (flag * 0.0, flag - flag, 0.0 * cr.sigmoid(flag)):
        opt = cr.optimize(expr)
        assert opt.op.name == "constant", cr.pprint(opt)
        np.testing.assert_array_equal(cr.evaluate(opt, {}), [0.0, 0.0, 0.0])
        np.testing.assert_array_equal(run(x, expr, xv), [0.0, 0.0, 0.0])
    # x / x also needs x != 0: sigmoid of a finite value is in (0, 1)
    s = cr.sigmoid(flag)
    opt = cr.optimize(s / s)
    assert opt.op.name == "constant"
    np.testing.assert_array_equal(run(x, s / s, xv), [1.0, 1.0, 1.0])
    # ... while flag / flag is 0/0 = NaN where the flag is 0, and stays
    with np.errstate(all="ignore"):
        got = run(x, flag / flag, xv)
    np.testing.assert_array_equal(np.isnan(got), [True, False, True])


def test_constants_fold_including_times_zero():
    # a 300-entry constant is not folded when built; the optimizer folds it,
    # and c * 0 for a finite constant c is 0
    c = cr.constant(np.linspace(-5.0, 5.0, 300))
    for expr in (c * 0.0, c - c):
        opt = cr.optimize(expr)
        assert opt.op.name == "constant"
        np.testing.assert_array_equal(cr.evaluate(opt, {}), np.zeros(300))
    # a constant holding inf is not finite: inf * 0 is NaN, as NumPy says
    with np.errstate(invalid="ignore"):
        inf_c = cr.constant(np.full(300, np.inf))
        got = cr.evaluate(cr.optimize(inf_c * 0.0), {})
    assert np.isnan(got).all()


def test_exp_log_is_not_folded_for_an_arbitrary_x():
    x = cr.placeholder("x", (4,))
    expr = cr.exp(cr.log(x))
    opt = cr.optimize(expr)
    assert ops_of(opt) == ["placeholder", "log", "exp"]
    xv = np.array([-1.0, 0.0, 2.0, np.nan])
    got = run(x, expr, xv)
    np.testing.assert_array_equal(np.isnan(got), [True, False, False, True])
    np.testing.assert_allclose(got[1:3], [0.0, 2.0], rtol=1e-15)
    # for a known positive argument it is folded
    y = cr.placeholder("y", (4,))
    pos = cr.exp(cr.log(1.0 + cr.square(y)))
    assert "exp" not in ops_of(cr.optimize(pos))


def test_nan_reaches_the_result_through_every_rewritten_expression():
    # each expression simplifies; a NaN in any input must still give NaN
    x, y = cr.placeholder("x", (2,)), cr.placeholder("y", (2,))
    exprs = [cr.log(cr.exp(x)) * 1.0 + y * 0.0, -(-x) + (y - y), cr.sqrt(cr.square(x)) / y,
             cr.maximum(x, x) + cr.where(cr.greater(y, 0.0), y, y), x ** 2.0 + y ** 0.5]
    xv, yv = np.array([np.nan, 1.0]), np.array([2.0, np.nan])
    for expr in exprs:
        for backend in BACKENDS:
            got = cr.function([x, y], expr, backend=backend)(xv, yv)
            assert np.isnan(got).all(), (cr.pprint(expr), got)


def test_known_finite_terms_cancel_with_an_unknown_dim():
    # the terms left after x * 0 -> 0 no longer carry the batch dim
    x = cr.placeholder("x", (None, 3))
    y = cr.placeholder("y", (3,))
    flag = cr.cast(cr.greater(x, 0.0), "float64")
    exprs = [(flag + y) - flag, flag * 2.0 + y - 2.0 * flag, flag * 0.0 + y, flag - flag]
    yv = np.array([1.0, -2.0, 0.5])
    for expr in exprs:
        for n in (1, 4):
            xv = np.linspace(-1, 1, 3 * n).reshape(n, 3)
            want = np.broadcast_to(yv, (n, 3)) if expr is not exprs[-1] else np.zeros((n, 3))
            for backend in BACKENDS:
                got = cr.function([x, y], expr, backend=backend)(xv, yv)
                np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("name, build", [
    ("1 + x**2", lambda x: 1.0 + cr.square(x)),
    ("1 + exp(x)", lambda x: 1.0 + cr.exp(x)),
    ("1 + abs(x)", lambda x: 1.0 + cr.abs(x)),
])
def test_collect_cancels_a_never_zero_divisor_keeping_inf_over_inf_nan(name, build):
    # f**2 / f -> f is exact where f is finite; where f is inf the original
    # is inf / inf = NaN, and so must the collected form be (a guard term)
    x = cr.placeholder("x", SPECIAL.shape)
    f = build(x)
    expr = cr.square(f) * x / f + x + x
    out = cr.optimize(expr, passes=["collect"])
    with np.errstate(all="ignore"):
        fv = {"1 + x**2": 1 + SPECIAL ** 2, "1 + exp(x)": 1 + np.exp(SPECIAL),
              "1 + abs(x)": 1 + np.abs(SPECIAL)}[name]
        want = fv ** 2 * SPECIAL / fv + SPECIAL + SPECIAL
        got = cr.evaluate(out, {x: SPECIAL})
    assert "divide" not in ops_of(out), cr.pprint(out)  # f / f did cancel
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want), err_msg=cr.pprint(out))
    np.testing.assert_allclose(got, want, rtol=1e-14, equal_nan=True)
