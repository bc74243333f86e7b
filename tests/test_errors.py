"""Errors are raised where the mistake is made and name the user's variables."""

import numpy as np
import pytest

import chainrule as cr


def _msg(excinfo):
    return str(excinfo.value)


def _has_all(text, *parts):
    missing = [p for p in parts if p not in text]
    assert not missing, f"{missing} not in message: {text}"


# -- shape and dtype errors at build time -----------------------------------------------

def test_matmul_shape_error_names_everything():
    x, W = cr.placeholder("x", (2, 3)), cr.placeholder("W", (4, 5))
    with pytest.raises(cr.ShapeError) as e:
        x @ W
    _has_all(_msg(e), "matmul", "x", "W", "(2, 3)", "(4, 5)")


def test_broadcast_error_names_operands():
    a, b = cr.placeholder("a", (3,)), cr.placeholder("bias", (4,))
    with pytest.raises(cr.ShapeError) as e:
        a + b
    _has_all(_msg(e), "add", "a", "bias", "(3,)", "(4,)")


def test_broadcast_error_names_intermediates_by_user_name():
    x = cr.placeholder("x", (5, 3))
    hidden = cr.tanh(x)
    hidden.name = "hidden"
    w = cr.placeholder("w", (5,))
    with pytest.raises(cr.ShapeError) as e:
        hidden * w
    _has_all(_msg(e), "multiply", "hidden", "w", "(5, 3)", "(5,)")


def test_shape_errors_are_value_errors():
    a, b = cr.placeholder("a", (3,)), cr.placeholder("b", (4,))
    with pytest.raises(ValueError):
        cr.maximum(a, b)
    assert issubclass(cr.ShapeError, cr.ChainruleError)


@pytest.mark.parametrize("build,parts", [
    (lambda x, v: x.reshape(4, 2), ["reshape", "x", "(2, 3)", "(4, 2)"]),
    (lambda x, v: x.sum(axis=2), ["sum", "axis 2", "x"]),
    (lambda x, v: cr.softmax(x, axis=-3), ["softmax", "x"]),
    (lambda x, v: x[2], ["index", "x", "(2, 3)"]),
    (lambda x, v: x[0, 0, 0], ["index", "x"]),
    (lambda x, v: cr.concatenate([x, v]), ["concatenate", "x", "v"]),
    (lambda x, v: cr.stack([x, x.T]), ["stack", "x"]),
    (lambda x, v: cr.tensordot(x, v, 1), ["tensordot", "x", "v"]),
    (lambda x, v: cr.transpose(x, (0, 0)), ["transpose", "x"]),
    (lambda x, v: cr.broadcast_to(x, (3, 3)), ["broadcast_to", "x", "(2, 3)"]),
    (lambda x, v: cr.broadcast_to(x, (None, 3)), ["broadcast_to", "(None, 3)", "unknown"]),
    (lambda x, v: x.reshape(5.9), ["reshape", "x", "integers", "5.9"]),  # was truncated to 5
    (lambda x, v: x.reshape(True, 6), ["reshape", "x", "integers"]),
    (lambda x, v: cr.reshape(x, "ab"), ["reshape", "x", "integers"]),
    (lambda x, v: cr.broadcast_to(x, (-2, 3)), ["broadcast_to", "(-2, 3)", "non-negative"]),
    (lambda x, v: cr.where(x > 0, x, v), ["where", "x", "v", "(4,)"]),
    (lambda x, v: cr.take(v, [4]), ["take", "v"]),
    (lambda x, v: cr.dot(v, x), ["matmul", "v", "x"]),
])
def test_other_shape_errors(build, parts):
    x, v = cr.placeholder("x", (2, 3)), cr.placeholder("v", (4,))
    with pytest.raises(cr.ShapeError) as e:
        build(x, v)
    _has_all(_msg(e), *parts)


def test_dtype_errors():
    flags = cr.placeholder("flags", (3,), "bool")
    with pytest.raises(cr.DTypeError) as e:
        flags - flags
    _has_all(_msg(e), "subtract", "flags", "bool")
    with pytest.raises(cr.DTypeError) as e:
        cr.placeholder("z", (2,), "complex128")
    _has_all(_msg(e), "z", "complex128")
    x = cr.placeholder("x", (3,))
    with pytest.raises(cr.DTypeError) as e:
        cr.take(x, [0.5])
    _has_all(_msg(e), "take", "integer")
    with pytest.raises(cr.DTypeError):
        x.astype("U3")
    with pytest.raises(cr.DTypeError):
        cr.exp("text")
    assert issubclass(cr.DTypeError, TypeError)


# -- differentiation errors ---------------------------------------------------------------

def test_grad_of_non_scalar_points_to_vjp_and_jacobian():
    x = cr.placeholder("x", (2, 3))
    y = x * 2
    y.name = "doubled"
    with pytest.raises(cr.ShapeError) as e:
        cr.grad(y, x)
    _has_all(_msg(e), "doubled", "(2, 3)", "vjp", "jacobian")


def test_disconnected():
    a, b = cr.placeholder("a", (3,)), cr.placeholder("b", (2, 2))
    cost = cr.sum(a * a)
    with pytest.raises(cr.DisconnectedError) as e:
        cr.grad(cost, [a, b], disconnected="raise")
    assert "b" in _msg(e)
    ga, gb = cr.grad(cost, [a, b])
    assert gb.shape == (2, 2)
    out = cr.function([a], [ga, gb])(np.array([1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(out[1], np.zeros((2, 2)))
    with pytest.raises(ValueError):
        cr.grad(cost, a, disconnected="ignore")


def test_no_derivative_with_respect_to_a_constant():
    # Equal constants are one node and rewrites fold them away as the graph
    # is built: c * x with c = 1.0 is x, and the 1.0 of x + 1.0 is c. A
    # derivative with respect to c would silently be 1 here instead of x, so
    # every entry point refuses it and says what to use instead.
    x = cr.placeholder("x")
    c = cr.constant(1.0, name="c")
    f = c * x + (x + 1.0)
    v = cr.placeholder("v", (2,))
    k = cr.constant([1.0, 2.0], name="k")
    calls = [
        ("grad", lambda: cr.grad(f, c)),
        ("grad", lambda: cr.grad(f, [x, c])),
        ("grad", lambda: cr.grad(f, {"c": c})),
        ("vjp", lambda: cr.vjp(f, c, 1.0)),
        ("jvp", lambda: cr.jvp(f, c, 1.0)),
        ("jacobian", lambda: cr.jacobian(v * k, k)),
        ("hessian", lambda: cr.hessian((v * k).sum(), k)),
        ("hvp", lambda: cr.hvp((v * k).sum(), k, [1.0, 0.0])),
    ]
    for api, call in calls:
        with pytest.raises(cr.NotDifferentiableError) as e:
            call()
        _has_all(_msg(e), f"{api}:", "constant", "cr.placeholder(", "cr.parameter(")
    assert "'c'" in _msg(e) or "k" in _msg(e)
    # the same function of a placeholder is differentiated as written
    p = cr.placeholder("c")
    assert cr.evaluate(cr.grad(p * x + (x + 1.0), p), {x: 3.0, p: 1.0}) == 3.0


def test_stop_gradient_is_connected_but_zero():
    # the cost uses a (through stop_gradient): not "disconnected", just zero
    a = cr.placeholder("a", (3,))
    g = cr.grad(cr.sum(cr.stop_gradient(a) * 2.0), a, disconnected="raise")
    np.testing.assert_array_equal(cr.evaluate(g, {"a": np.ones(3)}), np.zeros(3))


def test_vjp_through_a_comparison_is_not_differentiable():
    a = cr.placeholder("a", (3,))
    small = a < 1.0
    small.name = "small"
    with pytest.raises(cr.NotDifferentiableError) as e:
        cr.vjp(small, a, np.ones(3))
    _has_all(_msg(e), "small", "less", "bool", "no derivative")
    with pytest.raises(cr.NotDifferentiableError) as e:
        cr.vjp(cr.equal(a, 0.0), a, np.ones(3))
    _has_all(_msg(e), "equal")


def test_grad_of_bool_or_int_cost_is_not_differentiable():
    a = cr.placeholder("a", (3,))
    with pytest.raises(cr.NotDifferentiableError) as e:
        cr.grad(cr.equal(cr.sum(a), 1.0), a)
    _has_all(_msg(e), "equal", "bool")
    with pytest.raises(cr.NotDifferentiableError) as e:
        cr.grad(cr.sum(a.astype("int32")), a)
    _has_all(_msg(e), "int")


def test_comparisons_inside_a_float_graph_are_fine(backend):
    # the condition of a where, or a cast mask, needs no derivative
    a = cr.placeholder("a", (3,))
    cost = cr.sum(cr.where(cr.equal(a, 1.0), a, a * a) + cr.cast(a > 0, "float64") * a)
    g = cr.grad(cost, a)
    av = np.array([1.0, -2.0, 3.0])
    got = cr.function([a], g, backend=backend)(av)
    np.testing.assert_allclose(got, np.where(av == 1.0, 1.0, 2 * av) + (av > 0))


def test_vjp_cotangent_shape_checked():
    a = cr.placeholder("a", (3,))
    with pytest.raises(cr.ShapeError) as e:
        cr.vjp(cr.sin(a), a, np.ones(4))
    _has_all(_msg(e), "(3,)", "(4,)")


# -- input checking at call time ---------------------------------------------------------

@pytest.fixture(params=["interpreter", "numpy"])
def fn(request):
    x = cr.placeholder("x", (None, 3))
    n = cr.placeholder("n", (), "int32")
    mask = cr.placeholder("mask", (3,), "bool")
    out = cr.sum(x) * n + cr.sum(cr.cast(mask, "float64"))
    return cr.function([x, n, mask], out, backend=request.param)


def _call_error(fn, *args, **kwargs):
    with pytest.raises(cr.InputError) as e:
        fn(*args, **kwargs)
    return _msg(e)


def test_good_calls(fn):
    m = np.array([True, False, True])
    assert float(fn(np.ones((2, 3)), 2, m)) == 14.0
    assert float(fn(np.ones((1, 3)), n=3, mask=m)) == 11.0
    assert float(fn(x=np.ones((7, 3)), n=1, mask=m)) == 23.0
    assert float(fn(np.ones((0, 3)), 5, m)) == 2.0           # None dims accept any size
    assert float(fn([[1, 2, 3]], np.int64(1), [True, True, True])) == 9.0  # Python data


def test_wrong_rank(fn):
    _has_all(_call_error(fn, np.ones(3), 2, np.ones(3, bool)), "'x'", "(None, 3)", "(3,)")
    _has_all(_call_error(fn, np.ones((2, 3)), [2], np.ones(3, bool)), "'n'")


def test_wrong_known_dim(fn):
    _has_all(_call_error(fn, np.ones((2, 4)), 2, np.ones(3, bool)), "'x'", "(2, 4)", "3")
    _has_all(_call_error(fn, np.ones((2, 3)), 2, np.ones(2, bool)), "'mask'")


def test_wrong_dtype_kind(fn):
    _has_all(_call_error(fn, np.ones((2, 3), int), 2, np.ones(3, bool)), "'x'", "float64")
    _has_all(_call_error(fn, np.ones((2, 3)), 2.5, np.ones(3, bool)), "'n'", "int32")
    _has_all(_call_error(fn, np.ones((2, 3)), 2, np.ones(3)), "'mask'", "bool")
    _has_all(_call_error(fn, np.ones((2, 3), complex), 2, np.ones(3, bool)), "'x'")
    _has_all(_call_error(fn, "abc", 2, np.ones(3, bool)), "'x'")


def test_integer_out_of_range(fn):
    # casting would wrap 2**40 around to 0 without a word
    _has_all(_call_error(fn, np.ones((2, 3)), 2 ** 40, np.ones(3, bool)), "'n'", "int32")
    _has_all(_call_error(fn, np.ones((2, 3)), np.int64(-2 ** 35), np.ones(3, bool)), "'n'")


def test_missing_unknown_and_duplicate_inputs(fn):
    _has_all(_call_error(fn, np.ones((2, 3)), 2), "missing", "'mask'")
    _has_all(_call_error(fn, np.ones((2, 3)), 2, np.ones(3, bool), z=1), "'z'")
    _has_all(_call_error(fn, np.ones((2, 3)), 2, np.ones(3, bool), 4), "3")
    _has_all(_call_error(fn, np.ones((2, 3)), 2, mask=np.ones(3, bool), n=1), "'n'")


def test_feeding_a_var_is_an_input_error(fn):
    _has_all(_call_error(fn, cr.placeholder("q", (2, 3)), 2, np.ones(3, bool)), "'x'")


def test_evaluate_missing_input():
    x = cr.placeholder("x", (2,))
    with pytest.raises(cr.InputError) as e:
        cr.evaluate(cr.sum(x), {})
    assert "'x'" in _msg(e)


def test_function_with_an_unlisted_placeholder():
    x, y = cr.placeholder("x"), cr.placeholder("yy")
    with pytest.raises(cr.InputError) as e:
        cr.function([x], x * y)
    assert "yy" in _msg(e)


def test_no_truth_value_and_no_equality_overload():
    x = cr.placeholder("x")
    with pytest.raises(TypeError):
        if x > 0:
            pass
    y = cr.placeholder("x")
    assert (x == y) is False and {x: 1, y: 2}[y] == 2


# -- run-time failures name the node and the inputs ---------------------------------------

def test_unknown_dims_that_do_not_broadcast(backend):
    x, y = cr.placeholder("x", (None,)), cr.placeholder("y", (None,))
    total = x + y
    total.name = "total"
    f = cr.function([x, y], cr.sum(total * 2), backend=backend)
    assert float(f(np.ones(3), np.ones(3))) == 12.0
    with pytest.raises(cr.InputError) as e:
        f(np.ones(3), np.ones(4))
    _has_all(_msg(e), "total", "add", "x (3,)", "y (4,)")


def test_index_out_of_range_at_run_time(backend):
    x, i = cr.placeholder("x", (3,)), cr.placeholder("i", (2,), "int64")
    f = cr.function([x, i], cr.take(x, i), backend=backend)
    with pytest.raises(cr.InputError) as e:
        f(np.ones(3), np.array([0, 5]))
    _has_all(_msg(e), "take", "x", "i", "5")


@pytest.mark.parametrize("optimize", [True, False])
def test_constant_ops_that_numpy_refuses_fail_when_run(backend, optimize):
    """Built from constants alone, an op NumPy refuses is not folded (folding
    would raise NumPy's bare error while the graph is built): it raises a
    chainrule error naming the op when it runs, as it would with inputs."""
    cases = [
        (lambda: cr.constant(2) ** cr.constant(-1), "power"),
        (lambda: cr.max(cr.constant(np.zeros((2, 0))), axis=1), "max"),
    ]
    for build, op in cases:
        out = build()
        with pytest.raises(cr.InputError, match=op):
            cr.function([], out, backend=backend, optimize=optimize)()
        with pytest.raises(cr.InputError, match=op):
            cr.evaluate(out)


def test_cotangent_of_unknown_size_must_have_the_outputs_run_time_shape(backend):
    """A cotangent with unknown dims must have the output's run-time shape,
    as it must when the sizes are known: a (1, 3) or (5, 3) one for a (4, 3)
    output is an error naming it (a (1, 3) one used to be broadcast, a
    silent stretch of a wrong seed); a (4, 3) one gives the vjp. Tangents
    likewise."""
    x, y = cr.placeholder("x", (None, 3)), cr.placeholder("y", (3,))
    ct = cr.placeholder("ct", (None, 3))
    gx, gy = cr.vjp(x * y, [x, y], ct)
    f = cr.function([x, y, ct], [gx, gy], backend=backend)
    ctv = np.arange(12.0).reshape(4, 3)
    got_x, got_y = f(np.ones((4, 3)), np.arange(3.0), ctv)
    np.testing.assert_array_equal(got_x, ctv * np.arange(3.0))
    np.testing.assert_array_equal(got_y, ctv.sum(axis=0))
    for bad in (np.full((1, 3), 2.0), np.ones((5, 3))):
        with pytest.raises(cr.InputError, match="ct.*shape \\(4, 3\\) is needed"):
            f(np.ones((4, 3)), np.arange(3.0), bad)
    t = cr.placeholder("t", (None, 3))
    g = cr.function([x, y, t], cr.jvp(x * y, x, t), backend=backend)
    with pytest.raises(cr.InputError, match="shape \\(4, 3\\) is needed"):
        g(np.ones((4, 3)), np.arange(3.0), np.ones((1, 3)))


def test_comparing_a_var_with_a_value_points_to_cr_equal():
    """v == 0 used to be a silent False (cr.where(v == 0, ...) then took the
    other branch everywhere); Var == Var stays identity, for dict keys."""
    v = cr.placeholder("v", (3,))
    for bad in (lambda: v == 0, lambda: v != 0.5, lambda: v == np.zeros(3)):
        with pytest.raises(TypeError, match="cr.equal"):
            bad()
    # NumPy on the left calls np.equal, which builds cr.equal: symbolic, not False
    assert isinstance(np.zeros(3) == v, cr.Var)
    w = cr.placeholder("v", (3,))
    assert (v == v) is True and (v == w) is False and (v != w) is True
    assert {v: 1, w: 2}[w] == 2 and v in [w, v] and (v == "v") is False
    got = cr.evaluate(cr.where(cr.equal(v, 0.0), 1.0, v), {v: np.array([0.0, 2.0, 3.0])})
    np.testing.assert_array_equal(got, [1.0, 2.0, 3.0])


def test_numpy_functions_on_vars_build_the_graph_or_say_what_to_use():
    v = cr.placeholder("v", (3,))
    vals = {v: np.array([0.5, 2.0, 3.0])}
    for got, want in ((np.exp(v), np.exp(vals[v])), (np.ones(3) - v, 1 - vals[v]),
                      (np.float64(2.0) * v, 2 * vals[v]), (np.maximum(v, 1.0), [1, 2, 3]),
                      (np.absolute(-v), vals[v]), (np.ones(3) / v, 1 / vals[v])):
        assert isinstance(got, cr.Var)
        np.testing.assert_allclose(cr.evaluate(got, vals), want, rtol=1e-15)
    # NumPy functions with a chainrule twin build it (api.md)
    x = vals[v]
    for got, want in ((np.concatenate([v, v]), np.concatenate([x, x])),
                      (np.sum(v), x.sum()), (np.dot(v, v), x @ x),
                      (np.sum(np.outer(v, v), axis=0, keepdims=True),
                       np.outer(x, x).sum(axis=0, keepdims=True)),
                      (np.clip(v, min=1.0, max=2.5), np.clip(x, 1.0, 2.5)),
                      (np.where(np.greater(v, 1.0), v, -v), np.where(x > 1, x, -x)),
                      (np.reshape(v, (3, 1)), x.reshape(3, 1)), (np.amax(v), x.max()),
                      (np.tensordot(v, v, axes=1), np.tensordot(x, x, axes=1))):
        assert isinstance(got, cr.Var)
        np.testing.assert_allclose(cr.evaluate(got, vals), want, rtol=1e-15)
    for bad, hint in ((lambda: np.asarray(v), "cr.evaluate"),
                      (lambda: np.cumsum(v), "cr"), (lambda: np.sum(v, dtype=np.float32),
                                                     "no dtype argument; cr.sum"),
                      (lambda: np.take(v, [0], mode="clip"), "no mode argument"),
                      (lambda: np.where(np.greater(v, 0.0)), "needs x, y"),
                      (lambda: np.add(v, 1.0, out=np.zeros(3)), "cr")):
        with pytest.raises(cr.ArgumentError, match=hint):
            bad()


@pytest.mark.parametrize("value", [None, "1", 1j, [cr.constant(1.0)]])
def test_seeds_that_are_not_numbers_are_dtype_errors(value):
    """None became NaN, "1" became 1.0."""
    s = cr.placeholder("s")
    for build in (lambda: cr.vjp(s * 2.0, s, value), lambda: cr.jvp(s * 2.0, s, value),
                  lambda: cr.hvp(s * s, s, value)):
        with pytest.raises(cr.DTypeError, match="expected a number"):
            build()


def test_evaluate_refuses_feeds_it_would_ignore():
    x = cr.placeholder("x", (3,))
    w = cr.parameter(np.ones(3), "w")
    with pytest.raises(cr.InputError, match="parameter.*set_value"):
        cr.evaluate(w * x, {w: np.zeros(3), x: np.ones(3)})
    with pytest.raises(cr.InputError, match="not a placeholder"):
        cr.evaluate(x * 2, {x * 2: np.ones(3)})
    with pytest.raises(cr.InputError, match="fed twice"):
        cr.evaluate(x * 2, {x: np.ones(3), "x": np.zeros(3)})


def test_optimize_names_unknown_passes_and_checks_what_passes_return():
    a, b = cr.placeholder("a"), cr.placeholder("b")
    for passes, msg in ((["cse", "fold"], "unknown pass 'fold'.*constant_fold"),
                        ("cse", "must be a list"), ([None], "a name or a callable"),
                        ([lambda o: o[:1]], "list of 2 Vars"),
                        ([lambda o: [np.ones(1), o[1]]], "keep each output's shape")):
        with pytest.raises(cr.ChainruleError, match=msg):
            cr.optimize([a * 2.0, b], passes=passes)
    assert cr.optimize([a * 1.0, b], passes=["simplify", lambda o: o]) == [a, b]


def test_set_value_refuses_values_that_would_wrap_or_overflow():
    """Placeholders already refused them; parameters wrapped 2**40 + 5 to 5
    in int32 and turned 1e300 into inf in float32."""
    wi = cr.parameter(np.zeros(2, np.int32), "wi")
    wf = cr.parameter(np.zeros(2, np.float32), "wf")
    x = cr.placeholder("x", (2,))
    for call, msg in ((lambda: wi.set_value(np.array([2 ** 40 + 5, -1])), "do not fit in int32"),
                      (lambda: wf.set_value([1e300, 1.0]), "does not fit in float32"),
                      (lambda: wf.set_value(x), "chainrule Var x"),
                      (lambda: wf.set_value("ab"), "takes numbers"),
                      (lambda: wf.set_value(None), "takes numbers")):
        with pytest.raises(cr.InputError, match=msg):
            call()
    assert np.array_equal(wi.value, [0, 0]) and np.array_equal(wf.value, [0, 0])
    wi.set_value([3, -4])
    wf.set_value(np.array([1, 2]))  # ints into a float parameter are fine
    assert wi.value.dtype == np.int32 and wi.value.tolist() == [3, -4]
    assert wf.value.dtype == np.float32 and wf.value.tolist() == [1.0, 2.0]


def test_a_vars_shape_and_dtype_cannot_be_assigned():
    """v.shape = (2,) (NumPy's in-place reshape) was accepted and made the
    graph describe another array."""
    v = cr.placeholder("v", (3,))
    with pytest.raises(AttributeError, match="reshape"):
        v.shape = (3, 1)
    with pytest.raises(AttributeError, match="astype"):
        v.dtype = np.float32
    assert v.shape == (3,) and v.dtype == np.float64
    v.name = "w"  # names are the user's to change
    assert v.name == "w"


def test_boolean_mask_index_points_to_where():
    a = cr.placeholder("a", (2, 3))
    with pytest.raises(cr.DTypeError, match="cr.where"):
        a[cr.greater(a, 2.0)]


def test_calling_a_function_with_a_feed_dict_says_how_to_call_it(backend):
    x = cr.placeholder("x", (2,))
    f = cr.function([x], x * 2.0, backend=backend)
    with pytest.raises(cr.InputError, match="got a dict.*by placeholder name"):
        f({x: np.ones(2)})
    np.testing.assert_array_equal(f(**{"x": np.ones(2)}), [2.0, 2.0])


def test_a_wider_integer_update_must_be_cast_explicitly():
    """int64 values stored into an int32 parameter wrapped (2**40 -> 0)."""
    w = cr.parameter(np.zeros(2, np.int32), "w")
    k = cr.placeholder("k", (2,), "int64")
    with pytest.raises(cr.InputError, match="wider than the parameter's int32.*astype"):
        cr.function([k], k * 1, updates={w: k})
    f = cr.function([k], k * 1, updates={w: w + 1})  # a Python int keeps int32
    f(np.array([5, 6]))
    assert w.value.tolist() == [1, 1] and w.value.dtype == np.int32


def test_copying_a_deep_graph_and_pickling():
    """deepcopy of a 3,000-op chain hit Python's recursion limit; a Var is
    immutable, so a copy is the Var itself. Pickling says what to use."""
    import copy
    import pickle
    x = cr.placeholder("x")
    y = x
    for _ in range(3000):
        y = cr.sin(y)
    assert copy.deepcopy(y) is y and copy.copy(y) is y
    assert copy.deepcopy({"loss": [y]})["loss"][0] is y
    with pytest.raises(TypeError, match="cr.save"):
        pickle.dumps(y)


@pytest.mark.parametrize("call, error", [
    (lambda x: x[::0], cr.ShapeError),
    (lambda x: cr.concatenate([]), cr.InputError),
    (lambda x: cr.stack([]), cr.InputError),
    (lambda x: cr.clip(x, None, None), cr.InputError),
    (lambda x: cr.jacobian(x * 2.0, x, mode="fwd"), cr.InputError),
    (lambda x: cr.grad(x.sum(), x, disconnected="ignore"), cr.InputError),
    (lambda x: cr.function([x], x, backend="numba"), cr.InputError),
    (lambda x: cr.vjp([x * 2.0, x], x, np.ones(3)), cr.InputError),
])
def test_bad_arguments_are_chainrule_errors(call, error):
    """They were bare ValueErrors (still ValueErrors: every chainrule error
    derives from the builtin a user would catch)."""
    x = cr.placeholder("x", (3,))
    with pytest.raises(error):
        call(x)
    assert issubclass(error, ValueError)


@pytest.mark.parametrize("make", [
    lambda x: x[1.5], lambda x: x["a"], lambda x: x[0, 1.0], lambda x: x[1:2.5],
    lambda x: cr.sum(x, axis="0"), lambda x: cr.sum(x, axis=1.0), lambda x: len(cr.placeholder("u", (None,))),
    lambda x: cr.placeholder(""), lambda x: cr.grad(x.sum(), [np.ones(3)]),
    lambda x: np.asarray(x), lambda x: x == 1.0,
])
def test_wrong_kinds_of_arguments_are_chainrule_errors(make):
    """An index, axis or name of the wrong kind, a NumPy function given a Var:
    an ArgumentError (a ChainruleError and a TypeError), with the message."""
    x = cr.placeholder("x", (3, 4))
    with pytest.raises(cr.ArgumentError) as e:
        make(x)
    assert isinstance(e.value, cr.ChainruleError) and isinstance(e.value, TypeError)
    assert len(str(e.value)) > 20


def test_python_ints_past_int64_are_clear_input_errors_or_floats():
    """np.asarray(2**70) is an object array: an integer placeholder says the
    value fits no NumPy integer; a float one takes it as a float (as it takes
    Python ints), and one too large for any float is an InputError."""
    n = cr.placeholder("n", (), "int64")
    f = cr.function([n], n + 1)
    with pytest.raises(cr.InputError, match=r"input 'n': a Python int too large .*int64"):
        f(2 ** 70)
    q = cr.placeholder("q", (2,))
    g = cr.function([q], q * 2)
    np.testing.assert_array_equal(g([1, 2 ** 80]), [2.0, 2.0 ** 81])
    with pytest.raises(cr.InputError, match="input 'q'"):
        g([1, 10 ** 400])
    s = cr.placeholder("s", (), "float32")
    with pytest.raises(cr.InputError, match=r"input 's': a value of magnitude .* float32"):
        cr.function([s], s + 1)(2 ** 200)


@pytest.mark.parametrize("call,match", [
    (lambda x, w: cr.function([x], x, updates=[w]), "each update is a .parameter, new value. pair"),
    (lambda x, w: cr.function([x], x, updates=[(w, x, x)]), "each update is a"),
    (lambda x, w: cr.function([x], x, updates=3), "updates must be a dict"),
    (lambda x, w: cr.function(None, x), "inputs must be a list"),
    (lambda x, w: cr.evaluate(x * 2, [np.ones(3)]), "feed must be a dict"),
    (lambda x, w: cr.vjp({"a": x * 2}, x, [np.ones(3)]), "cotangents must be a dict with "
                                                          "the same keys; got a list"),
    (lambda x, w: cr.vjp({"a": x * 2}, x, {"b": np.ones(3)}), "keys 'a'.*got keys 'b'"),
    (lambda x, w: cr.jvp(x * 2, {"p": x}, {"q": np.ones(3)}), "tangents must be a dict"),
    (lambda x, w: cr.vjp([x * 2, x], x, np.ones(3)), "cotangents must be a list or tuple "
                                                      "of 2; got a ndarray"),
])
def test_misshapen_arguments_are_input_errors(call, match):
    """Updates that are not pairs, inputs that are not a list, a feed that is
    not a dict, seeds whose structure is not the outputs' (or wrt's): an
    InputError saying what is expected, not an unpacking ValueError, a
    KeyError or a TypeError from inside."""
    x = cr.placeholder("x", (3,))
    w = cr.parameter(np.ones(3), "w")
    with pytest.raises(cr.InputError, match=match):
        call(x, w)


def test_reshape_takes_numpys_shape_keyword():
    x = cr.placeholder("x", (3,))
    assert cr.reshape(x, shape=(3, 1)).shape == (3, 1)
    assert cr.reshape(x, newshape=(1, 3)).shape == (1, 3)  # NumPy's old name
    with pytest.raises(cr.ArgumentError):
        cr.reshape(x)


def test_np_clip_with_one_bound_on_a_var():
    v = cr.placeholder("v", (3,))
    x = np.array([0.5, 2.0, -3.0])
    for got, want in ((np.clip(v, max=1.0), np.clip(x, None, 1.0)),
                      (np.clip(v, min=0.0), np.clip(x, 0.0, None))):
        np.testing.assert_array_equal(cr.evaluate(got, {v: x}), want)
