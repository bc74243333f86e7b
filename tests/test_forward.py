"""Forward mode (``cr.jvp``) for every op, driven from the op table of
``test_ops``: the JVP agrees with a central finite difference of the NumPy
reference and with the VJP (``<vjp(u), t> == <u, jvp(t)>``), on both
backends. Also: every registered op declares both rules, and ``register``
refuses an op that does not.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import pytest

import chainrule as cr
from chainrule.ir import NOT_DIFFERENTIABLE, REGISTRY, Op, register, topo_order

from conftest import BACKENDS, numeric_directional
from test_ops import CASES, case_values

GRAD_CASES = [c for c in CASES if c.grad]


@dataclass
class Sweep:
    vars: dict
    wrt: list
    out: cr.Var
    tangents: list
    jvp: cr.Var
    cotangent: cr.Var
    vjp: list


@functools.lru_cache(maxsize=None)
def sweep(case_id) -> Sweep:
    case = next(c for c in CASES if c.id == case_id)
    vs = {n: cr.placeholder(n, s.shape, s.dtype) for n, s in case.inputs.items()}
    out = case.build(*vs.values())
    wrt = [v for n, v in vs.items() if case.inputs[n].is_float]
    ts = [cr.placeholder("t_" + v.name, v.shape, v.dtype) for v in wrt]
    u = cr.placeholder("u_out", out.shape, out.dtype)
    return Sweep(vs, wrt, out, ts, cr.jvp(out, wrt, ts), u, cr.vjp(out, wrt, u))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", GRAD_CASES, ids=[c.id for c in GRAD_CASES])
def test_jvp_against_finite_differences_and_vjp(case, backend):
    s = sweep(case.id)
    vals, rng = case_values(case)
    names = list(s.vars)
    wname = [v.name for v in s.wrt]
    out_val = np.asarray(case.reference(**vals))
    tans = [rng.normal(size=vals[n].shape) for n in wname]
    u = rng.normal(size=out_val.shape)

    f = cr.function(list(s.vars.values()) + s.tangents + [s.cotangent],
                    [s.jvp] + s.vjp, backend=backend)
    got = f(*[vals[n] for n in names], *tans, u)
    jv, vj = np.asarray(got[0]), got[1:]
    assert jv.shape == out_val.shape and jv.dtype == s.out.dtype

    want = numeric_directional(
        lambda *fl: case.reference(**dict(vals, **dict(zip(wname, fl)))),
        [vals[n] for n in wname], tans, eps=case.eps)
    np.testing.assert_allclose(jv, want, rtol=max(case.rtol, 1e-6),
                               atol=max(case.rtol, 1e-6) * 1e-2, err_msg="jvp vs fd")

    lhs = sum(float(np.sum(g * t)) for g, t in zip(vj, tans))
    rhs = float(np.sum(u * jv))
    assert lhs == pytest.approx(rhs, rel=1e-9, abs=1e-10), "<vjp(u), t> != <u, jvp(t)>"


def test_every_jvp_rule_runs_in_a_checked_graph(monkeypatch):
    """Each differentiable op's JVP rule runs while building a graph whose
    values some test checks against finite differences or closed forms:
    the forward sweeps above (primal ops), the forward-over-reverse
    Hessians of each table case in test_hessian (the ops gradients are
    made of), and Jacobians of forward-mode Jacobians in test_jacobian
    (the banded ops)."""
    seen = set()
    for name, op in REGISTRY.items():
        if callable(op.jvp):
            def spy(out, ts, name=name, rule=op.jvp):
                seen.add(name)
                return rule(out, ts)
            monkeypatch.setattr(op, "jvp", spy)
    for case in GRAD_CASES:
        s = sweep(case.id)
        cr.jvp(s.out, s.wrt, s.tangents)
        cost = cr.sum(s.out * s.cotangent)
        for x in s.wrt:
            if None not in x.shape:
                cr.jacobian(cr.grad(cost, x), x, mode="forward")
    x = cr.placeholder("x", (3,))
    cr.jacobian(cr.jacobian(cr.sin(x) * x[0], x, mode="forward"), x, mode="forward")
    cr.jacobian(cr.grad(cr.sum(cr.jacobian(cr.sin(x) * x[0], x, mode="forward") ** 2), x),
                x, mode="forward")
    X, w = cr.placeholder("X", (None, None)), cr.placeholder("w", (2,))
    cr.hessian(cr.sum(cr.reshape(X * (w[0] + w[1] ** 2), (-1,)) ** 2), w)
    wanted = {n for n, op in REGISTRY.items()
              if op.differentiable and n not in ("placeholder", "constant", "parameter")}
    # no tangent ever reaches these: stop_gradient and the shape-only ops
    # (count, full_like) have a zero JVP, eye has no inputs; prod_of_others
    # (prod's partials over an axis of unknown size) refuses to be
    # differentiated, which test_ops checks
    never = {"stop_gradient", "count", "full_like", "eye", "prod_of_others"}
    missing = wanted - seen - never
    assert not missing, f"differentiable ops whose JVP is never checked: {sorted(missing)}"


@pytest.mark.parametrize("backend", BACKENDS)
def test_jvp_of_derivative_ops(backend):
    """The JVP rules of the ops only derivative graphs contain
    (getitem_grad, take_grad, sum_to_like, broadcast_like, reshape_like):
    jvp of a vjp, which is linear in the cotangent, equals the vjp of the
    tangent, and the jvp wrt x is checked against finite differences."""
    x = cr.placeholder("x", (None, 4))
    b = cr.placeholder("b", (4,))
    y = cr.sum(cr.take(x[:, 1:] * b[1:], [0, 2, 2], axis=1), axis=1)  # (None,)
    y = cr.reshape(y, (-1,)) * x[:, 0] + cr.sum(x * b)
    u = cr.placeholder("u", (None,))
    gx, gb = cr.vjp(y, [x, b], u)
    tu = cr.placeholder("tu", (None,))
    tx = cr.placeholder("tx", (None, 4))
    # d(vjp)/du . tu = vjp(tu); d(vjp)/dx . tx by finite differences
    jg_u = cr.jvp([gx, gb], u, tu)
    jg_x = cr.jvp([gx, gb], x, tx)
    vjp_tu = cr.vjp(y, [x, b], tu)
    names = {n.op.name for n in topo_order(list(jg_u) + list(jg_x))}
    assert {"getitem_grad", "take_grad", "sum_to_like"} <= names, names

    rng = np.random.default_rng(0)
    xv, bv = rng.normal(size=(3, 4)), rng.normal(size=4)
    uv, tuv, txv = rng.normal(size=3), rng.normal(size=3), rng.normal(size=(3, 4))
    ins = [x, b, u, tu, tx]
    f = cr.function(ins, list(jg_u) + list(jg_x) + list(vjp_tu), backend=backend)
    r = f(xv, bv, uv, tuv, txv)
    np.testing.assert_allclose(r[0], r[4], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(r[1], r[5], rtol=1e-12, atol=1e-12)
    g = cr.function([x, b, u], [gx, gb], backend="interpreter")
    for k in range(2):
        want = numeric_directional(lambda xx: g(xx, bv, uv)[k], [xv], [txv])
        np.testing.assert_allclose(r[2 + k], want, rtol=1e-6, atol=1e-8)


# -- the registry ------------------------------------------------------------------

def test_every_registered_op_has_both_rules():
    for name, op in REGISTRY.items():
        assert op.vjp is not None and op.jvp is not None, name
        if op.differentiable:
            assert callable(op.vjp) and callable(op.jvp), name
        else:
            assert op.jvp is NOT_DIFFERENTIABLE or callable(op.jvp), name


def _dummy(name, vjp, jvp):
    return Op(name, infer=lambda attrs, x: (x.shape, x.dtype), impl=lambda attrs, x: x,
              vjp=vjp, jvp=jvp, emit=lambda attrs, x: x)


@pytest.mark.parametrize("missing", ["vjp", "jvp", "both"])
def test_register_refuses_an_op_without_both_rules(missing):
    rule = lambda *a: None  # noqa: E731
    vjp = None if missing in ("vjp", "both") else rule
    jvp = None if missing in ("jvp", "both") else rule
    name = f"_test_missing_{missing}"
    with pytest.raises(ValueError, match="VJP and a JVP"):
        register(_dummy(name, vjp, jvp))
    assert name not in REGISTRY


def test_register_refuses_a_duplicate_name():
    with pytest.raises(ValueError, match="declared twice"):
        register(_dummy("tanh", lambda *a: None, lambda *a: None))
    assert REGISTRY["tanh"].name == "tanh" and REGISTRY["tanh"].elementwise


# -- the jvp API ----------------------------------------------------------------------

def test_jvp_structures_and_array_tangents(backend):
    x, y = cr.placeholder("x", (3,)), cr.placeholder("y", ())
    outs = {"a": x * y, "b": cr.sum(cr.sin(x))}
    res = cr.jvp(outs, {"x": x, "y": y}, {"x": np.array([1.0, 0.0, -1.0]), "y": 2.0})
    assert isinstance(res, dict) and list(res) == ["a", "b"]
    f = cr.function([x, y], res, backend=backend)
    xv = np.array([0.5, 1.0, 2.0])
    got = f(xv, 3.0)
    t = np.array([1.0, 0.0, -1.0])
    np.testing.assert_allclose(got["a"], t * 3.0 + xv * 2.0)
    np.testing.assert_allclose(got["b"], np.sum(np.cos(xv) * t))
    res_list = cr.jvp([x * y], [x, y], [t, 0.0])
    assert isinstance(res_list, list) and len(res_list) == 1


def test_jvp_disconnected_outputs_get_zeros(backend):
    x, z = cr.placeholder("x", (2,)), cr.placeholder("z", (2, 2))
    out = cr.jvp([z * 2.0, cr.sum(x)], x, np.ones(2))
    f = cr.function([x, z], out, backend=backend)
    got = f(np.ones(2), np.ones((2, 2)))
    np.testing.assert_array_equal(got[0], np.zeros((2, 2)))
    assert float(got[1]) == 2.0


def test_jvp_through_stop_gradient_is_zero(backend):
    x = cr.placeholder("x", (3,))
    out = cr.jvp(x * cr.stop_gradient(x), x, np.ones(3))
    got = cr.function([x], out, backend=backend)(np.array([1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(got, [1.0, 2.0, 3.0])


def test_jvp_through_a_comparison_is_zero():
    x = cr.placeholder("x", (3,))
    # a float result that depends on x only through a comparison
    y = cr.cast(cr.greater(x, 0.0), "float64") * 1.0
    res = cr.jvp(y, x, np.ones(3))  # the bool result carries no tangent: zeros
    np.testing.assert_array_equal(cr.evaluate(res, {"x": np.ones(3)}), np.zeros(3))


def test_jvp_wrong_tangent_shape_raises():
    x = cr.placeholder("x", (3,))
    with pytest.raises(cr.ShapeError, match="x"):
        cr.jvp(x * x, x, np.ones(4))
    with pytest.raises(ValueError, match="tangents"):
        cr.jvp(x * x, [x], [np.ones(3), np.ones(3)])


def test_jvp_is_differentiable_again(backend):
    """jvp returns graph Vars: d/dx <grad f, t> is H t."""
    x = cr.placeholder("x", (2,))
    f = x[0] ** 3 * x[1] + cr.sin(x[1])
    t = np.array([1.0, -2.0])
    jt = cr.jvp(f, x, t)  # scalar
    h_t = cr.grad(jt, x)
    xv = np.array([0.7, 1.3])
    got = cr.function([x], h_t, backend=backend)(xv)
    a, b = xv
    H = np.array([[6 * a * b, 3 * a ** 2], [3 * a ** 2, -np.sin(b)]])
    np.testing.assert_allclose(got, H @ t, rtol=1e-12)


def test_jvp_tangent_dtype_follows_float32_output(backend):
    x = cr.placeholder("x", (3,), "float32")
    res = cr.jvp(cr.exp(x), x, np.ones(3))  # float64 array tangents cast down
    assert res.dtype == np.float32
    got = cr.function([x], res, backend=backend)(np.zeros(3, np.float32))
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, np.ones(3))


def test_integer_and_bool_inputs_carry_no_tangent(backend):
    """As in reverse mode: a tangent given for an int or bool input is a
    zero (it used to flow on, through casts and products, into float
    outputs, breaking <vjp(u), t> == <u, jvp(t)>)."""
    x = cr.placeholder("x", (3,))
    i = cr.placeholder("i", (3,), "int64")
    c = cr.placeholder("c", (3,), "bool")
    y = x * i + cr.cast(c, "float64") * x
    ones = np.ones(3)
    outs = [cr.jvp(y, i, np.ones(3, dtype=np.int64)), cr.jvp(y, c, np.ones(3, dtype=bool)),
            cr.jvp(y, [x, i, c], [ones, np.ones(3, dtype=np.int64), np.ones(3, dtype=bool)]),
            *cr.vjp(y, [i, c], ones)]
    got = cr.function([x, i, c], outs, backend=backend)(
        np.array([1.0, 2.0, 3.0]), np.array([2, 0, 1]), np.array([True, False, True]))
    np.testing.assert_array_equal(got[0], np.zeros(3))
    np.testing.assert_array_equal(got[1], np.zeros(3))
    np.testing.assert_array_equal(got[2], [3.0, 0.0, 2.0])  # d/dx only: i + c
    assert not got[3].any() and not got[4].any()
