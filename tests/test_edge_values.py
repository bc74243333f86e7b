"""Regressions from a bug hunt: values at the edges of the float range,
integer wrap-around, signed zeros and unknown dims that broadcast at run
time. Each expected value is plain NumPy on the same inputs."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr


def _both(expr, feed):
    """The optimized graph on the interpreter and the compiled function."""
    opt = cr.evaluate(cr.optimize(expr), feed)
    inputs = list(cr.inputs_of(expr).values())
    f = cr.function(inputs, expr)
    return opt, f(**{v.name: feed[v.name] for v in inputs})


x = cr.placeholder("x")


@pytest.mark.parametrize("expr,value,want", [
    (1e200 * (1e200 * x), 0.0, 0.0),                 # not x * inf
    (1e200 * (1e200 * x), 1e-300, 1e100),
    ((1e308 * x) + (1e308 * x), 1e-10, 2e298),       # not x * inf
    (1e308 + (1e308 + x), -1e308, 1e308),            # not x + inf
    (x / 5e-324, 0.0, 0.0),                          # 1 / 5e-324 overflows
    (x / 1e-308 + x / 1e-308, 0.0, 0.0),             # collect: not x * inf
])
def test_folded_constants_that_would_overflow_are_not_folded(expr, value, want):
    for got in _both(expr, {"x": value}):
        np.testing.assert_allclose(got, want, rtol=1e-12)


def test_float16_division_by_a_tiny_power_of_two():
    h = cr.placeholder("h", (1,), "float16")
    e = h / np.float16(2.0 ** -16)                   # 1 / c = 65536 > float16 max
    want = np.array([1e-3], np.float16) / np.float16(2.0 ** -16)
    for got in _both(e, {"h": np.array([1e-3], np.float16)}):
        np.testing.assert_array_equal(got, want)


def test_integer_coefficients_out_of_range_do_not_crash():
    i = cr.placeholder("i", (), "int64")
    with np.errstate(over="ignore"):  # the wrap-around is the point
        for e in ((i * 2 ** 40) * 2 ** 40, (i + 2 ** 62) + 2 ** 62):
            want = cr.evaluate(e, {"i": 3})
            for got in _both(e, {"i": 3}):
                assert got == want


def test_constant_with_both_zeros_keeps_their_signs():
    v = cr.placeholder("v", (2,))
    e = v / cr.constant([0.0, -0.0])
    want = np.array([np.inf, -np.inf])
    with np.errstate(divide="ignore"):
        for got in _both(e, {"v": np.ones(2)}):
            np.testing.assert_array_equal(got, want)
        f = cr.function([v], e, optimize=False)  # the constant as generated code
        np.testing.assert_array_equal(f(np.ones(2)), want)


def test_int_to_float16_cast_is_not_known_finite():
    i = cr.placeholder("i", (), "int64")
    h = cr.cast(i, "float16")                        # 70000 is inf in float16
    with np.errstate(all="ignore"):
        for e in (h - h, h * np.float16(0)):
            for got in _both(e, {"i": 70000}):
                assert np.isnan(got)


@pytest.mark.parametrize("dtype,values", [("int8", [-128, -1]), ("uint8", [1, 2]),
                                          ("int64", [np.iinfo(np.int64).min, 1])])
def test_sum_of_negated_integers(dtype, values):
    p = cr.placeholder("p", (2,), dtype)
    a = np.array(values, dtype)
    with np.errstate(all="ignore"):
        for e, want in ((cr.sum(-p), np.sum(-a)), (cr.mean(-p), np.mean(-a))):
            for got in _both(e, {"p": a}):
                assert got == want and got.dtype == want.dtype


def test_abs_of_negated_unsigned():
    u = cr.placeholder("u", (2,), "uint8")
    a = np.array([1, 2], "uint8")
    for got in _both(cr.abs(-u), {"u": a}):
        np.testing.assert_array_equal(got, np.abs(-a))


def test_stabilising_rules_leave_integer_and_empty_inputs_alone():
    k = cr.placeholder("k", (), "int16")
    e = cr.log1p(cr.exp(k))                          # float32 from int16: no softplus
    for got in _both(e, {"k": np.int16(1)}):
        np.testing.assert_allclose(got, np.log1p(np.exp(np.int16(1))), rtol=1e-6)
    z = cr.placeholder("z", (0,))
    with np.errstate(divide="ignore"):               # log(0) = -inf, on purpose
        for got in _both(cr.log(cr.sum(cr.exp(z))), {"z": np.zeros(0)}):
            assert got == -np.inf                    # logsumexp of nothing would raise


# -- unknown dims that broadcast at run time ------------------------------------

def test_forward_mode_broadcasts_tangents_of_unknown_dims():
    a, b, t = (cr.placeholder(n, (None,)) for n in "abt")
    feed = {"a": np.array([1.0]), "b": np.array([1.0, 2.0, 3.0]), "t": np.array([1.0])}
    np.testing.assert_array_equal(cr.evaluate(cr.jvp(a + b, a, t), feed), [1.0, 1.0, 1.0])
    assert cr.evaluate(cr.jvp(cr.sum(a + b), a, t), feed) == 3.0
    cost = cr.square(cr.sum(a + b))                  # d2/da2 = 2 * 3 * 3 = 18
    np.testing.assert_allclose(cr.evaluate(cr.hvp(cost, a, t), feed), [18.0])
    c = cr.placeholder("c", (None,), "bool")
    got = cr.evaluate(cr.jvp(cr.where(c, a, b), a, t), {"c": np.array([True]), **feed})
    np.testing.assert_array_equal(got, [1.0, 1.0, 1.0])


def test_optimizer_keeps_run_time_broadcasting_of_unknown_dims():
    v = cr.placeholder("v", (None,))
    k = cr.placeholder("k", (None,), "int64")
    c = cr.placeholder("c", (None,), "bool")
    kf = cr.cast(k, "float64")
    args = (np.array([5.0]), np.array([1, 2, 3]), np.array([True, False, True]))
    for e in (cr.where(c, v, v), (v + kf) - kf):
        for optimize in (True, False):
            f = cr.function([v, k, c], e, optimize=optimize)
            np.testing.assert_array_equal(f(*args), [5.0, 5.0, 5.0])


def test_clip_gradient_with_crossed_bounds():
    """np.clip gives a_max everywhere when a_min > a_max: so does the gradient."""
    s, lo, hi = cr.placeholder("s"), cr.placeholder("lo"), cr.placeholder("hi")
    out = cr.clip(s, lo, hi)
    grads = cr.grad(out, [s, lo, hi])
    for sv in (-5.0, 0.0, 5.0):
        feed = {"s": sv, "lo": 1.0, "hi": -1.0}
        assert cr.evaluate(out, feed) == -1.0
        np.testing.assert_array_equal([float(g) for g in cr.evaluate(grads, feed)], [0, 0, 1])
        tangent = cr.evaluate(cr.jvp(out, [s, lo, hi], [1.0, 10.0, 100.0]), feed)
        assert tangent == 100.0
    # ordered bounds keep the usual masks (x on ties)
    feed = {"s": 1.0, "lo": 1.0, "hi": 2.0}
    np.testing.assert_array_equal([float(g) for g in cr.evaluate(grads, feed)], [1, 0, 0])


def test_derivative_of_x_to_the_zero_is_zero_at_zero():
    s = cr.placeholder("s")
    assert cr.evaluate(cr.grad(s ** 0.0, s), {"s": 0.0}) == 0.0
    assert cr.evaluate(cr.jvp(s ** 0.0, s, 1.0), {"s": 0.0}) == 0.0
    assert cr.evaluate(cr.grad(s ** 2.0, s), {"s": 3.0}) == 6.0  # the usual rule


def test_derivative_in_the_base_with_a_run_time_zero_exponent():
    """x**y is 1 everywhere when y = 0, so d/dx is 0, also at x = 0 (not
    0 * 0**-1 = NaN), when y is only known at run time or is a constant array
    with zeros; higher derivatives of x**n at 0 follow n!/(n-k)! x**(n-k)."""
    x, y = cr.placeholder("x"), cr.placeholder("y")
    for got in _both(cr.grad(x ** y, x), {"x": 0.0, "y": 0.0}):
        assert got == 0.0
    assert cr.evaluate(cr.jvp(x ** y, [x], [1.0]), {"x": 0.0, "y": 0.0}) == 0.0
    v = cr.placeholder("v", (2,))
    g = cr.grad(cr.sum(v ** cr.constant([0.0, 2.0])), v)
    for got in _both(g, {"v": np.array([0.0, 3.0])}):
        np.testing.assert_array_equal(got, [0.0, 6.0])
    p = cr.parameter(3.0, "p")
    for exponent, env in ((y, {"y": 3.0}), (p, {})):
        d = x ** exponent
        for k, want_at_0, want_at_2 in ((1, 0.0, 12.0), (2, 0.0, 12.0), (3, 6.0, 6.0),
                                        (4, 0.0, 0.0)):
            d = cr.grad(d, x)
            assert cr.evaluate(d, {"x": 0.0, **env}) == want_at_0, k
            assert cr.evaluate(d, {"x": 2.0, **env}) == want_at_2, k
    # a constant exponent without zeros keeps the plain rule (no guard nodes)
    assert "where" not in cr.debugprint(cr.grad(x ** 3.0, x))
    # the guard leaves everything else alone: x = inf (0 * inf ** -1 = 0) and
    # the derivative in y, d2/dxdy x**y = x**(y-1) (1 + y log x) = 1/x at y = 0
    assert cr.evaluate(cr.grad(x ** y, x), {"x": np.inf, "y": 0.0}) == 0.0
    g = cr.grad(cr.sum(v ** cr.constant([0.0, 2.0])), v)
    np.testing.assert_array_equal(cr.evaluate(g, {"v": np.array([np.inf, 3.0])}), [0.0, 6.0])
    assert cr.evaluate(cr.grad(cr.grad(x ** y, x), y), {"x": 2.0, "y": 0.0}) == 0.5
    assert cr.evaluate(cr.jvp(cr.grad(x ** y, x), [y], [1.0]), {"x": 2.0, "y": 0.0}) == 0.5
    w = cr.placeholder("w", (2,))
    h = cr.evaluate(cr.hessian(w[0] ** w[1], w), {"w": np.array([2.0, 0.0])})
    np.testing.assert_allclose(h, [[0.0, 0.5], [0.5, np.log(2.0) ** 2]], rtol=1e-14)


def test_log_of_exp_is_differentiated_as_x():
    """log(exp(x)) is x; where exp overflows (x = 800) or underflows
    (x = -800) the naive chain rule gives inf/inf or 0/0 = NaN."""
    x = cr.placeholder("x")
    f = cr.log(cr.exp(x))
    for v in (800.0, -800.0, 0.5):
        assert cr.evaluate(cr.grad(f, x), {"x": v}) == 1.0
        assert cr.evaluate(cr.jvp(f, [x], [1.0]), {"x": v}) == 1.0
        assert cr.evaluate(cr.hessian(f * x, x), {"x": v}) == 2.0
        for got in _both(cr.grad(f * f, x), {"x": v}):
            assert got == 2 * v


def test_derivative_in_the_exponent_at_a_zero_base():
    """d/dy x**y = x**y log(x) is 0 at x = 0 for y >= 0 (x**y is flat in y
    there: 0, or 1 at y = 0), as in JAX and PyTorch, not 0 * log(0) = NaN.
    Elsewhere the closed form, in both modes and on both backends; the next
    derivative d/dx (x**y log x) = x**(y-1) (y log x + 1) stays finite."""
    b, e = cr.placeholder("b", (5,)), cr.placeholder("e", (5,))
    bv = np.array([0.0, 0.0, 0.0, 2.0, 0.5])
    ev = np.array([2.0, 0.0, 0.5, 3.0, -1.5])
    want = np.where(bv == 0, 0.0, bv ** ev * np.log(np.where(bv == 0, 1, bv)))
    dy = cr.grad(cr.sum(b ** e), e)
    for got in _both(dy, {"b": bv, "e": ev}):
        np.testing.assert_allclose(got, want, rtol=1e-14)
    fwd = cr.jvp(b ** e, e, np.ones(5))
    np.testing.assert_allclose(cr.evaluate(fwd, {"b": bv, "e": ev}), want, rtol=1e-14)
    # second derivative at b = 0, e = 2 and 3: the limit of x**(y-1) (y log x + 1)
    d2 = cr.grad(cr.sum(dy), b)
    got = cr.evaluate(d2, {"b": np.array([0.0, 0.0, 2.0, 1.0, 3.0]),
                           "e": np.array([2.0, 3.0, 3.0, 2.0, 2.0])})
    xs, ys = np.array([2.0, 1.0, 3.0]), np.array([3.0, 2.0, 2.0])
    np.testing.assert_allclose(got, np.r_[0.0, 0.0, xs ** (ys - 1) * (ys * np.log(xs) + 1)],
                               rtol=1e-14)
    # a constant base without zeros keeps the plain rule (no guard nodes)
    assert "where" not in cr.debugprint(cr.grad(2.0 ** e[0], e))


@pytest.mark.parametrize("dtype,values", [("uint8", [0, 3, 200, 255]),
                                          ("int8", [-128, -3, 0, 127]),
                                          ("uint64", [0, 1, 2 ** 63, 2 ** 64 - 1])])
def test_sigmoid_of_integers_does_not_wrap(dtype, values):
    """sigmoid computes -|x| for a stable exp: in an unsigned (or int8 at
    -128) dtype that wraps; integers become floats first."""
    u = cr.placeholder("u", (4,), dtype)
    arr = np.array(values, dtype)
    want = 1 / (1 + np.exp(-arr.astype(np.float64)))
    for got in _both(cr.sigmoid(u), {"u": arr}):
        np.testing.assert_allclose(got, want, rtol=1e-15)
        assert got.dtype == cr.sigmoid(u).dtype


def test_bad_shape_arguments_fail_when_the_node_is_built():
    v = cr.placeholder("v", (3,))
    with pytest.raises(cr.ShapeError, match="sizes must be >= 0"):
        v.reshape(-3, -1)
    with pytest.raises(cr.ShapeError, match="repeated axis"):
        cr.expand_dims(v, (0, 0))
    u = cr.placeholder("u", (2,), "uint8")
    with pytest.raises(cr.DTypeError, match="300 does not fit in uint8"):
        u + 300


def test_axis_and_contraction_arguments_are_checked_at_build():
    m = cr.placeholder("m", (3, 3))
    with pytest.raises(TypeError, match="axis must be None, an int or a tuple of ints"):
        cr.sum(m, axis=0.0)
    with pytest.raises(cr.ShapeError, match="repeated axis"):
        cr.tensordot(m, m, ([0, 0], [0, 1]))


def test_scaling_a_matmul_operand_never_overflows_it():
    """c * (a @ b) is computed as (c * a) @ b only for |c| <= 1: 2 * a
    overflows a float32 3e38 to inf, and inf * 0 = NaN where the product
    is 0. A learning rate (0.1) or 1 / batch still moves to the operand."""
    a = cr.placeholder("a", (2, 3), "float32")
    b = cr.placeholder("b", (3, 40), "float32")
    av = np.full((2, 3), 3e38, np.float32)
    bv = np.zeros((3, 40), np.float32)
    for c in (2.0, -3.0):
        f = cr.function([a, b], c * (a @ b))
        np.testing.assert_array_equal(f(av, bv), np.zeros((2, 40), np.float32))
    f = cr.function([a, b], 0.1 * (a @ b))
    assert "= a * 0.1" in f.source, f.source  # the small operand is scaled
    np.testing.assert_array_equal(f(av, bv), np.zeros((2, 40), np.float32))
