"""The NumPy backend writes into dead buffers (``out=``) and updates
parameters in place. These tests make sure speed never costs a wrong answer:
every case is compared with hand-written NumPy and with the interpreter
(which never reuses memory), over several calls, with arrays large enough
for reuse to happen."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import chainrule as cr
from chainrule.backends.buffers import MIN_ELEMENTS
from conftest import mlp_step_reference

N = 96  # N * N >= MIN_ELEMENTS: large enough to be reused
assert N * N >= MIN_ELEMENTS


def rng(seed=0):
    return np.random.default_rng(seed)


def test_reuse_happens_where_expected():
    x = cr.placeholder("x", (N, N))
    W = cr.parameter(rng().standard_normal((N, N)), "W")
    h = cr.tanh(x @ W + 1.0)
    f = cr.function([x], h * 2.0, updates={W: W - 0.1 * h})
    src = f.source
    assert "out=" in src                                  # an elementwise op reuses
    assert "np.subtract(W, " in src and "out=W)" in src   # W is updated in place


def test_no_reuse_for_small_arrays():
    x = cr.placeholder("x", (3, 3))
    f = cr.function([x], cr.tanh(x + 1.0) * 2.0)
    assert "out=" not in f.source


def test_output_that_is_an_input_is_not_overwritten():
    x = cr.placeholder("x", (N, N))
    f = cr.function([x], [x, cr.exp(x) + x, x * 2.0])
    xv = rng().standard_normal((N, N))
    keep = xv.copy()
    same, e, d = f(xv)
    np.testing.assert_array_equal(xv, keep)  # the caller's array is never written
    np.testing.assert_array_equal(same, keep)
    np.testing.assert_allclose(e, np.exp(keep) + keep)
    np.testing.assert_allclose(d, 2 * keep)


@pytest.mark.parametrize("backend", ["numpy", "interpreter"])
def test_updates_read_old_values_with_large_arrays(backend):
    a0, b0 = rng(1).standard_normal((N, N)), rng(2).standard_normal((N, N))
    A, B = cr.parameter(a0, "A"), cr.parameter(b0, "B")
    f = cr.function([], [A * B], updates={A: A * 2.0 + B, B: A - B}, backend=backend)
    a, b = a0.copy(), b0.copy()
    for _ in range(3):
        out, = f()
        np.testing.assert_allclose(out, a * b)
        a, b = a * 2.0 + b, a - b
        np.testing.assert_allclose(A.value, a)
        np.testing.assert_allclose(B.value, b)


def test_swap_of_large_parameters():
    a0, b0 = rng(1).standard_normal((N, N)), rng(2).standard_normal((N, N))
    A, B = cr.parameter(a0, "A"), cr.parameter(b0, "B")
    f = cr.function([], [], updates={A: B, B: A})
    f()
    np.testing.assert_array_equal(A.value, b0)
    np.testing.assert_array_equal(B.value, a0)
    f()
    np.testing.assert_array_equal(A.value, a0)
    np.testing.assert_array_equal(B.value, b0)


def test_output_view_of_a_parameter_updated_in_place():
    w0 = rng().standard_normal((N, N))
    W = cr.parameter(w0, "W")
    f = cr.function([], [W.T, W[1:, :], W], updates={W: W - 1.0})
    t1, s1, w1 = f()
    np.testing.assert_array_equal(t1, w0.T)
    np.testing.assert_array_equal(s1, w0[1:, :])
    f()  # a second in-place update must not reach the arrays returned before
    np.testing.assert_array_equal(t1, w0.T)
    np.testing.assert_array_equal(s1, w0[1:, :])
    np.testing.assert_array_equal(w1, w0)
    np.testing.assert_allclose(W.value, w0 - 2.0)


def test_output_that_is_a_new_parameter_value():
    w0 = rng().standard_normal((N, N))
    W = cr.parameter(w0, "W")
    new = W * 0.5 + 1.0
    f = cr.function([], new, updates={W: new})
    first = f()
    np.testing.assert_allclose(first, w0 * 0.5 + 1.0)
    f()
    np.testing.assert_allclose(first, w0 * 0.5 + 1.0)  # unchanged by the next call
    np.testing.assert_allclose(W.value, (w0 * 0.5 + 1.0) * 0.5 + 1.0)


def test_one_value_for_two_parameters():
    a0 = rng().standard_normal((N, N))
    A, B = cr.parameter(a0, "A"), cr.parameter(np.zeros((N, N)), "B")
    u = A * 2.0
    f = cr.function([], [], updates={A: u, B: u})
    f()
    f()  # A is updated in place; B must not be the same array
    np.testing.assert_allclose(A.value, a0 * 4.0)
    np.testing.assert_allclose(B.value, a0 * 4.0)


def test_value_read_after_views_of_it_die():
    x = cr.placeholder("x", (N, N))
    h = cr.tanh(x)
    t = h.T
    y = (t * 2.0).sum() + (h + 1.0).sum()   # h is read after its view t dies
    z = cr.exp(h) * h
    f = cr.function([x], [y, z])
    xv = rng().standard_normal((N, N))
    hv = np.tanh(xv)
    gy, gz = f(xv)
    np.testing.assert_allclose(gy, (hv.T * 2).sum() + (hv + 1).sum())
    np.testing.assert_allclose(gz, np.exp(hv) * hv)


def test_mlp_train_steps_match_numpy():
    r = rng(3)
    x = cr.placeholder("x", (128, N))
    y = cr.placeholder("y", (128, 10))
    W1 = cr.parameter(r.standard_normal((N, N)) * 0.1, "W1")
    W2 = cr.parameter(r.standard_normal((N, 10)) * 0.1, "W2")
    h = cr.tanh(x @ W1)
    loss = -(cr.log_softmax(h @ W2) * y).sum(axis=1).mean()
    g1, g2 = cr.grad(loss, [W1, W2])
    f = cr.function([x, y], loss, updates={W1: W1 - 0.1 * g1, W2: W2 - 0.1 * g2})
    w1, w2 = W1.value, W2.value
    xv = r.standard_normal((128, N))
    yv = np.eye(10)[r.integers(0, 10, 128)]
    for _ in range(3):
        want, w1, w2 = mlp_step_reference(xv, yv, w1, w2)
        np.testing.assert_allclose(f(xv, yv), want, rtol=1e-12)
        np.testing.assert_allclose(W1.value, w1, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(W2.value, w2, rtol=1e-10, atol=1e-12)


_UNARY = [cr.tanh, cr.exp, cr.sin, cr.negative, cr.square, cr.sigmoid, lambda v: v.T,
          lambda v: v[::-1], lambda v: v * 2.0, lambda v: 1.0 - v,
          # small consumers (moved up to just after their operand) beside large ones
          lambda v: v + v.sum(axis=0), lambda v: v * v.mean(axis=1, keepdims=True)]
_BINARY = [cr.add, cr.subtract, cr.multiply, cr.maximum, lambda a, b: a @ b,
           lambda a, b: a + b.T]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, len(_UNARY) - 1), st.integers(0, 5),
                          st.integers(0, 50), st.integers(0, 50)), min_size=1, max_size=12),
       st.integers(0, 3))
def test_random_large_graphs_agree_with_the_interpreter(steps, n_out):
    """Random chains of large elementwise/matmul/view ops, several outputs
    and an in-place-able update: the numpy backend (which reuses buffers)
    gives the interpreter's numbers, call after call."""
    x = cr.placeholder("x", (N, N))
    P = cr.parameter(rng(5).standard_normal((N, N)) * 0.1, "P")
    nodes = [x, P]
    for unary, ui, bi, i, j in steps:
        a = nodes[i % len(nodes)]
        b = nodes[j % len(nodes)]
        nodes.append(_UNARY[ui](a) if unary else _BINARY[bi](a, b * 0.01))
    outs = nodes[-1 - n_out:] if n_out else [nodes[-1]]
    upd = {P: P * 0.5 + nodes[-1] * 0.001}
    f = cr.function([x], outs, updates=upd)
    ref_nodes = cr.function([x], outs, updates=upd, backend="interpreter")
    xv = rng(6).standard_normal((N, N))
    state0 = P.value
    raw1 = f(xv)
    got1 = [np.array(o) for o in raw1]
    state1 = P.value
    P.set_value(state0)
    want1 = [np.array(o) for o in ref_nodes(xv)]
    for g, w in zip(got1, want1):
        np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12, equal_nan=True)
    np.testing.assert_allclose(state1, P.value, rtol=1e-10, atol=1e-12, equal_nan=True)
    # a second call starts from the updated state on both backends
    got2 = [np.array(o) for o in f(xv)]
    P.set_value(state1)
    want2 = [np.array(o) for o in ref_nodes(xv)]
    for g, w in zip(got2, want2):
        np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12, equal_nan=True)
    for g, w in zip(raw1, want1):  # arrays returned earlier are untouched
        np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12, equal_nan=True)


# -- regressions found in review ---------------------------------------------------

@pytest.mark.parametrize("backend", ["numpy", "interpreter"])
def test_output_view_of_a_new_parameter_value(backend):
    p = cr.parameter(np.zeros((N, N)), "p")
    f = cr.function([], (p + 1.0).T, updates={p: p + 1.0}, backend=backend)
    o1 = f()
    o2 = f()
    assert o1[0, 0] == 1.0 and o2[0, 0] == 2.0
    o2[:] = 42.0  # writing into a result never reaches the parameter
    assert p.value[0, 0] == 2.0


def test_new_value_that_is_a_view_of_an_output():
    p = cr.parameter(np.zeros((N, N)), "p")
    a = cr.exp(cr.placeholder("x", (N, N)))
    f = cr.function([a.inputs[0]], a, updates={p: a.T})
    out = f(np.zeros((N, N)))
    out[:] = 7.0
    np.testing.assert_array_equal(p.value, np.ones((N, N)))


def test_one_update_node_for_two_parameters_stays_separate():
    p1, p2 = cr.parameter(np.zeros((N, N)), "p1"), cr.parameter(np.zeros((N, N)), "p2")
    new = p2 + 1.0
    f = cr.function([], p1, updates={p1: new, p2: new})
    f()
    assert f()[0, 0] == 1.0
    assert p1.value[0, 0] == 2.0 and p2.value[0, 0] == 2.0


def test_parameter_state_is_never_a_read_only_view():
    p = cr.parameter(np.zeros((N, N)), "p")
    x = cr.placeholder("x", (N,))
    cr.function([x], [], updates={p: cr.broadcast_to(cr.exp(x), (N, N))})(np.zeros(N))
    cr.function([], [], updates={p: p * 2.0})()  # in place: needs a writable state
    np.testing.assert_array_equal(p.value, np.full((N, N), 2.0))


@pytest.mark.parametrize("optimize", [True, False])
def test_views_of_constants_are_never_written(optimize):
    c = cr.constant(np.full((N, N), 2.0))
    W = cr.constant(rng(7).standard_normal((N, N)))
    x = cr.placeholder("x", (N, N))
    f = cr.function([x], [(c.T + x) * 3.0, cr.tanh(cr.tanh(x @ W.T) @ x)], optimize=optimize)
    xv = np.ones((N, N))
    first = [np.array(o) for o in f(xv)]
    for _ in range(2):
        for a, b in zip(f(xv), first):
            np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(first[0], np.full((N, N), 9.0))


def test_same_node_twice_in_the_outputs_gives_two_arrays():
    x = cr.placeholder("x", (N, N))
    y = cr.exp(x)
    a, b = cr.function([x], [y, y])(np.zeros((N, N)))
    a[:] = 5.0
    np.testing.assert_array_equal(b, np.ones((N, N)))


def test_placeholder_named_self_by_keyword():
    s, y = cr.placeholder("self"), cr.placeholder("y")
    assert float(cr.function([s, y], s + y)(self=1.0, y=2.0)) == 3.0


def test_printing_non_finite_constants():
    x = cr.placeholder("x")
    assert cr.pprint(x * np.inf) == "x * inf"
    assert "nan" in cr.pprint(x + np.nan)
    assert "= -inf" in cr.debugprint(x * -np.inf)


# -- a call that fails leaves every parameter as it was -------------------------

@pytest.mark.parametrize("blas", [None, "scipy"])
def test_failed_call_changes_no_parameter(blas):
    """A later statement fails on the sizes given (unknown dims): the
    update computed before it must not have been written into W's state."""
    if blas:
        pytest.importorskip("scipy.linalg.blas")
    W = cr.parameter(np.ones((N, N)), "W")
    x = cr.placeholder("x", (N, N))
    a, b = cr.placeholder("a", (None,)), cr.placeholder("b", (None,))
    new = W - 0.1 * (x.T @ x) if blas else W - 0.1 * x
    f = cr.function([x, a, b], [new.sum(), a + b], updates={W: new}, blas=blas)
    with pytest.raises(cr.InputError, match="add"):
        f(np.ones((N, N)), np.ones(3), np.ones(4))
    np.testing.assert_array_equal(W.value, np.ones((N, N)))
    f(np.ones((N, N)), np.ones(3), np.ones(3))  # and a good call still updates
    want = 1 - 0.1 * (np.ones((N, N)).T @ np.ones((N, N)) if blas else np.ones((N, N)))
    np.testing.assert_allclose(W.value, want)


def test_check_finite_failure_changes_no_parameter():
    W = cr.parameter(np.ones((N, N)), "W")
    x = cr.placeholder("x", (N, N))
    new = W - 0.1 * x
    f = cr.function([x], cr.log(new).sum(), updates={W: new}, check_finite=True)
    with pytest.raises(cr.NonFiniteError), np.errstate(all="ignore"):
        f(np.full((N, N), 20.0))
    np.testing.assert_array_equal(W.value, np.ones((N, N)))


def test_failing_update_statement_changes_no_parameter():
    """The update itself may be the statement that fails: check_finite tests
    V * s after computing it, and NumPy's integer power raises part-way
    through writing its out= array. Neither may be written in place."""
    V = cr.parameter(np.full((N, N), 1e300), "V")
    s = cr.placeholder("s")
    f = cr.function([s], cr.sum(s * 2.0), updates={V: V * s}, check_finite=True)
    with pytest.raises(cr.NonFiniteError), np.errstate(all="ignore"):
        f(1e10)
    np.testing.assert_array_equal(V.value, np.full((N, N), 1e300))
    f(0.5)
    np.testing.assert_array_equal(V.value, np.full((N, N), 0.5e300))
    P = cr.parameter(np.full((N, N), 3, np.int64), "P")
    e = cr.placeholder("e", (N, N), "int64")
    g = cr.function([e], [], updates={P: P ** e})
    bad = np.full((N, N), 2, np.int64)
    bad[-1, -1] = -1  # integers to negative powers are not allowed
    with pytest.raises(cr.InputError):
        g(bad)
    np.testing.assert_array_equal(P.value, np.full((N, N), 3))
    g(np.full((N, N), 2, np.int64))
    np.testing.assert_array_equal(P.value, np.full((N, N), 9))


def test_index_error_after_the_update_changes_no_parameter():
    """take raises on an index out of range even with every shape known."""
    W = cr.parameter(np.ones((N, N)), "W")
    x = cr.placeholder("x", (N, N))
    idx = cr.placeholder("idx", (3,), "int64")
    new = W - 0.1 * x
    f = cr.function([x, idx], [new.sum(), cr.take(x, idx)], updates={W: new})
    with pytest.raises(cr.InputError, match="take"):
        f(np.ones((N, N)), np.array([0, 1, 10 ** 6]))
    np.testing.assert_array_equal(W.value, np.ones((N, N)))


def test_static_shapes_still_update_in_place():
    """With every shape known and nothing that may raise, the update is
    still written into the parameter's state (the speed this is for)."""
    W = cr.parameter(np.ones((N, N)), "W")
    x = cr.placeholder("x", (N, N))
    f = cr.function([x], [cr.sum(x)], updates={W: W - 0.1 * cr.tanh(x)})
    assert "out=W)" in f.source, f.source


def test_bias_gradient_sum_comes_right_after_its_operand():
    """The hidden gradient g is read by the bias gradient's sum and by
    lr * g (the weight gradient's small operand). The sum is moved up to
    just after g, so g dies into lr * g in place; the buffer planned for
    lr * g is released instead of staying bound through the big matmul."""
    x = cr.placeholder("x", (N, 2 * N))
    W = cr.parameter(rng(1).standard_normal((2 * N, N)) * 0.1, "W")
    b = cr.parameter(np.zeros(N), "b")
    V = cr.parameter(rng(2).standard_normal((N, N)) * 0.1, "V")
    h = cr.tanh(x @ W + b)
    loss = ((h @ V) ** 2).sum()
    gW, gb, gV = cr.grad(loss, [W, b, V])
    upd = {W: W - 0.1 * gW, b: b - 0.1 * gb, V: V - 0.1 * gV}
    f = cr.function([x], loss, updates=upd)
    lines = [ln.strip() for ln in f.source.splitlines()]
    s = next(k for k, ln in enumerate(lines) if ln.startswith("grad_b = "))
    # the bias gradient sums g over the batch: g.sum(axis=0), or _onesK @ g
    g = re.fullmatch(r"grad_b = (?:(\w+)\.sum\(axis=0\)|\(_ones\d+ @ (\w+) if .*)", lines[s])
    assert g, f.source
    g = g.group(1) or g.group(2)
    made = next(k for k, ln in enumerate(lines) if ln.startswith(f"{g} = "))
    assert s > made and all(ln.startswith("del ") for ln in lines[made + 1:s]), f.source
    scaled = next(ln for ln in lines if f"np.multiply(0.1, {g}" in ln)
    assert scaled.endswith(f"out={g})"), f.source
    ref = cr.function([x], loss, updates=upd, backend="interpreter")
    xv = rng(3).standard_normal((N, 2 * N))
    state = [p.value for p in (W, b, V)]
    got = f(xv)
    new = [p.value for p in (W, b, V)]
    for p, v in zip((W, b, V), state):
        p.set_value(v)
    np.testing.assert_allclose(got, ref(xv), rtol=1e-12)
    for p, v in zip((W, b, V), new):
        np.testing.assert_allclose(v, p.value, rtol=1e-12, atol=1e-14)


def test_unknown_batch_dims_reuse_buffers_only_where_shapes_must_match():
    """With a batch size known at run time only, an elementwise op writes
    into a dying operand when the other operands cannot enlarge it (a bias
    of known size); two operands that both have the unknown dim may be 1 and
    n at run time, so neither is written into."""
    x = cr.placeholder("x", (None, 40))
    z = cr.placeholder("z", (None, 40))
    W = cr.parameter(np.linspace(-1, 1, 40 * 200).reshape(40, 200), "W")
    b = cr.parameter(np.linspace(0, 1, 200), "b")
    h = cr.tanh(x @ W + b)            # may be written in place: b cannot enlarge x @ W
    k = cr.tanh(z @ W)
    out = h * k + h                   # h and k: 1 and n rows at run time, or n and 1
    outs = [out] + cr.grad(cr.sum(out), [x, z, W, b])
    f = cr.function([x, z], outs)
    src = f.source
    assert "np.add(b, t1, out=t1)" in src and "np.tanh(t2, out=t2)" in src
    ref = cr.function([x, z], outs, backend="interpreter", optimize=False)
    rng = np.random.default_rng(0)
    for nx, nz in ((5, 5), (1, 5), (5, 1), (0, 1)):
        xv, zv = rng.standard_normal((nx, 40)), rng.standard_normal((nz, 40))
        got, want = f(xv, zv), ref(xv, zv)
        for a, c in zip(got, want):
            assert a.shape == c.shape
            np.testing.assert_allclose(a, c, rtol=1e-10, atol=1e-12)


def test_unknown_batch_gradients_undo_broadcasting_only_where_it_can_happen():
    """A bias add, a tanh and matrix products cannot broadcast an unknown
    batch dim: their gradients need no run-time sum back to shape. A product
    of two arrays that both have it can (1 and n rows), and keeps one."""
    from chainrule.ir import topo_order
    x, y = cr.placeholder("x", (None, 8)), cr.placeholder("y", (None, 3))
    W = cr.parameter(np.ones((8, 3)) * 0.1, "W")
    b = cr.parameter(np.zeros(3), "b")
    z = cr.tanh(x @ W + b)
    grads = cr.grad(cr.sum(z * y), [W, b])
    ops = [n.op.name for n in topo_order(grads)]
    assert ops.count("sum_to_like") == 1  # the z * y, nothing else
    xv = np.linspace(-1, 1, 16).reshape(2, 8)
    for yv in (np.ones((2, 3)), np.ones((1, 3))):  # y broadcast over the batch, or not
        gW, gb = cr.function([x, y], grads)(xv, yv)
        zv = np.tanh(xv @ np.full((8, 3), 0.1))
        dz = np.broadcast_to(yv, zv.shape) * (1 - zv ** 2)
        np.testing.assert_allclose(gW, xv.T @ dz, rtol=1e-13)
        np.testing.assert_allclose(gb, dz.sum(axis=0), rtol=1e-13)


def test_operands_that_may_broadcast_are_written_into_only_when_they_do_not():
    """h * k with both (None, 200): at run time 1 and n rows, or n and n.
    The product writes into the dying operand only when the shapes are
    equal (checked in the generated line), and is right either way."""
    a, c = cr.placeholder("a", (None, 40)), cr.placeholder("c", (None, 40))
    W = cr.parameter(np.linspace(-1, 1, 40 * 200).reshape(40, 200), "W")
    h, k = cr.tanh(a @ W), cr.sin(c @ W)
    f = cr.function([a, c], h * k)
    assert ".shape == " in f.source and "else None)" in f.source
    rng = np.random.default_rng(1)
    Wv = W.value
    for na, nc in ((4, 4), (1, 4), (4, 1)):
        av, cv = rng.standard_normal((na, 40)), rng.standard_normal((nc, 40))
        np.testing.assert_allclose(f(av, cv), np.tanh(av @ Wv) * np.sin(cv @ Wv), rtol=1e-13)
