"""fuse="numba": chains of elementwise ops and their sums as compiled loops.

Expected values come from the same graph compiled without fusion (NumPy's
own loops, tested elsewhere against closed forms and finite differences)
and from hand-written NumPy. Elementwise arithmetic must match NumPy bit for
bit (the loops do the same IEEE operations); a fused sum adds in another
order, so sums are compared on integer-valued data, where every order is
exact, or with a tolerance.
"""

import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import chainrule as cr
from chainrule.errors import ChainruleError

numba = pytest.importorskip("numba")


def _both(inputs, outputs, **kw):
    """The function compiled with and without fusion."""
    return (cr.function(inputs, outputs, fuse="numba", **kw),
            cr.function(inputs, outputs, **kw))


def _same_bits(a, b):
    """Equal bit for bit, signed zeros included; NaN where the other has NaN
    (a NaN's sign bit is left open by IEEE arithmetic, and LLVM may turn
    -(a * b) into (-a) * b)."""
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape
    nan = np.isnan(a)
    assert np.array_equal(nan, np.isnan(b)), (a, b)
    assert a[~nan].tobytes() == b[~nan].tobytes(), (a, b)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_chain_with_broadcast_operands_matches_numpy_bit_for_bit(dtype):
    rng = np.random.default_rng(0)
    x = cr.placeholder("x", (5, 7), dtype)
    row = cr.placeholder("row", (7,), dtype)
    col = cr.placeholder("col", (5, 1), dtype)
    s = cr.placeholder("s", (), dtype)
    y = ((1 - x * x) * row + s) / col - (-x) * 0.25
    fused, plain = _both([x, row, col, s], [y, cr.sqrt(y * y + 1.0), -(y * y) + y])
    assert "_fused" in fused.source and "@numba.njit" in fused.source
    assert "_fused" not in plain.source
    special = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e30, -1e-30], dtype)
    args = [rng.standard_normal((5, 7)).astype(dtype), special.copy(),
            rng.standard_normal((5, 1)).astype(dtype), np.asarray(0.5, dtype)]
    args[0][0] = special  # NaN, inf and signed zeros through every op
    args[2][1, 0] = 0.0   # a division by zero: inf and nan, no exception
    with np.errstate(all="ignore"):
        want = plain(*args)
    got = fused(*args)
    for g, w in zip(got, want):
        _same_bits(g, w)
    # and NumPy written by hand agrees with both
    a0, r, c, sv = args
    with np.errstate(all="ignore"):
        hand = ((1 - a0 * a0) * r + sv) / c - (-a0) * np.asarray(0.25, dtype)
    _same_bits(got[0], hand)


@pytest.mark.parametrize("axis", [0, 1])
@pytest.mark.parametrize("keepdims", [False, True])
def test_sums_over_one_axis_fuse_with_their_operand(axis, keepdims):
    x = cr.placeholder("x", (6, 4))
    y = cr.placeholder("y", (6, 4))
    g = (x - y) * x
    out = [g.sum(axis=axis, keepdims=keepdims), 2.0 * g]
    fused, plain = _both([x, y], out)
    assert fused.source.count("_fused1(") == 2  # definition and one call: one loop
    rng = np.random.default_rng(1)
    a = rng.integers(-3, 4, (6, 4)).astype(float)  # integer values: every order is exact
    b = rng.integers(-3, 4, (6, 4)).astype(float)
    got, want = fused(a, b), plain(a, b)
    for g_, w in zip(got, want):
        _same_bits(g_, w)
    _same_bits(got[0], ((a - b) * a).sum(axis=axis, keepdims=keepdims))


def test_a_sum_of_negative_zeros_is_positive_zero_as_in_numpy():
    x = cr.placeholder("x", (3, 2))
    f = cr.function([x], (x + x).sum(axis=0), fuse="numba")
    assert "_fused" in f.source
    got = f(-np.zeros((3, 2)))
    _same_bits(got, np.sum(-np.zeros((3, 2)), axis=0))
    assert not np.signbit(got).any()


def test_a_value_read_between_members_is_computed_before_it():
    # exp (not fused) reads c, and e reads both: the loop computing c must
    # run before exp; e cannot join it (its loop would need exp's result)
    x = cr.placeholder("x", (4, 3))
    c = x * x + 1.0
    d = cr.exp(c)
    e = c * d - x
    fused, plain = _both([x], [e, c.sum(axis=1)])
    a = np.linspace(-1, 1, 12).reshape(4, 3)
    for g, w in zip(fused(a), plain(a)):
        np.testing.assert_allclose(g, w, rtol=1e-15)
    np.testing.assert_allclose(fused(a)[0], (a * a + 1) * np.exp(a * a + 1) - a, rtol=1e-14)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("which", ["softmax", "log_softmax"])
def test_softmax_row_loops_match_numpy(dtype, which):
    fn = getattr(cr, which)
    x = cr.placeholder("x", (6, 5), dtype)
    f = cr.function([x], [fn(x), fn(x, axis=0), fn(x.T)], fuse="numba")
    assert f"def _{which}_rows(" in f.source and "@numba.njit" in f.source
    rng = np.random.default_rng(4)
    a = (rng.standard_normal((6, 5)) * 30).astype(dtype)
    a[1, 2] = np.nan            # NaN wins the max: a row of NaN, as in NumPy
    a[2, :] = -np.inf           # all -inf: NaN
    a[3, 1] = np.inf            # an inf: NaN
    a[4, :] = 1e30              # a huge row: no overflow (shifted by its max)
    a[5, :] = [-1e30, 0.0, 1.0, 2.0, -3.0]
    with np.errstate(all="ignore"):  # the axis-0 and transposed ones are NumPy's
        got = f(a)

    def ref(v, axis):  # by hand, in float64, then rounded
        v = v.astype(np.float64)
        with np.errstate(all="ignore"):
            s = v - v.max(axis=axis, keepdims=True)
            ls = np.log(np.exp(s).sum(axis=axis, keepdims=True))
        return (np.exp(s - ls) if which == "softmax" else s - ls).astype(dtype)

    tol = dict(rtol=2e-6, atol=1e-6) if dtype == "float32" else dict(rtol=1e-14, atol=1e-15)
    for g, w in zip(got, [ref(a, 1), ref(a, 0), ref(a.T, 1)]):
        assert g.dtype == np.dtype(dtype)
        np.testing.assert_allclose(g, w, equal_nan=True, **tol)


def test_softmax_row_loop_takes_ints_and_falls_back_for_other_shapes():
    x = cr.placeholder("x", (2, 3), "int64")
    v = cr.placeholder("v", (4,))
    c = cr.placeholder("c", (2, 2, 3))
    f = cr.function([x, v, c], [cr.log_softmax(x), cr.softmax(v), cr.softmax(c)],
                    fuse="numba")
    a = np.array([[1, 2, 3], [0, 0, 0]])
    got = f(a, np.arange(4.0), np.ones((2, 2, 3)))
    np.testing.assert_allclose(got[0], a - np.log(np.exp(a).sum(1, keepdims=True)),
                               rtol=1e-14)
    np.testing.assert_allclose(got[1], np.exp(np.arange(4.0)) / np.exp(np.arange(4.0)).sum(),
                               rtol=1e-14)
    np.testing.assert_allclose(got[2], np.full((2, 2, 3), 1 / 3), rtol=1e-15)


@pytest.mark.parametrize("batch", [4, None])
def test_mlp_step_matches_the_unfused_step(batch):
    rng = np.random.default_rng(2)
    sizes = (6, 5, 3)
    vals = [rng.standard_normal((6, 5)) / 3, np.zeros(5), rng.standard_normal((5, 3)) / 3,
            np.zeros(3)]

    def step(fuse):
        x = cr.placeholder("x", (batch, sizes[0]))
        y = cr.placeholder("y", (batch, sizes[-1]))
        ps = [cr.parameter(v.copy(), n) for v, n in zip(vals, ["W1", "b1", "W2", "b2"])]
        h = cr.tanh(x @ ps[0] + ps[1])
        loss = -(cr.log_softmax(h @ ps[2] + ps[3]) * y).sum(axis=1).mean()
        gs = cr.grad(loss, ps)
        f = cr.function([x, y], loss, updates={p: p - 0.1 * g for p, g in zip(ps, gs)},
                        fuse=fuse)
        return f, ps

    (f1, p1), (f2, p2) = step("numba"), step(None)
    # the bias gradient sum(g) fuses with g's loop, though the depth-first
    # order puts g @ W.T between them
    assert any("sum(axis=0)" in line and "multiply" in line
               for line in f1.source.splitlines() if line.lstrip().startswith("#"))
    x = rng.standard_normal((4, sizes[0]))
    y = np.eye(3)[[0, 2, 1, 2]]
    for _ in range(3):
        np.testing.assert_allclose(f1(x, y), f2(x, y), rtol=1e-13)
    for a, b in zip(p1, p2):
        np.testing.assert_allclose(a.value, b.value, rtol=1e-12, atol=1e-15)


def test_parameter_updates_in_a_loop_read_the_old_values():
    b = cr.parameter(np.arange(4.0), "b")
    x = cr.placeholder("x", (3, 4))
    g = (x * b).sum(axis=0)
    f = cr.function([x], g, updates={b: b - 0.5 * g * b}, fuse="numba")
    a = np.ones((3, 4))
    old = np.arange(4.0)
    out = f(a)
    np.testing.assert_array_equal(out, 3 * old)
    np.testing.assert_array_equal(b.value, old - 0.5 * (3 * old) * old)
    new = old - 1.5 * old * old
    np.testing.assert_array_equal(f(a), 3 * new)


def test_check_finite_does_not_fuse():
    y = cr.placeholder("y", (2, 3))
    g = cr.function([y], y * y + 1.0, fuse="numba", check_finite=True)
    assert "_fused" not in g.source
    with pytest.raises(cr.NonFiniteError):
        g(np.array([[np.inf, 0, 0], [0, 0, 0]]))


@pytest.mark.parametrize("rows", [(5, 5), (1, 5), (5, 1), (1, 1), (0, 0), (0, 1)])
def test_unknown_sizes_fuse_and_broadcast_like_numpy(rows):
    x = cr.placeholder("x", (None, 4))
    y = cr.placeholder("y", (None, 4))
    b = cr.placeholder("b", (4,))
    g = (x - y) * b + 1.0
    outs = [g, g.sum(axis=0), g.sum(axis=1, keepdims=True)]
    fused, plain = _both([x, y, b], outs)
    assert "_fused" in fused.source and "x.shape[0] == y.shape[0]" in fused.source
    rng = np.random.default_rng(5)
    a = rng.integers(-3, 4, (rows[0], 4)).astype(float)
    c = rng.integers(-3, 4, (rows[1], 4)).astype(float)
    bias = rng.integers(-3, 4, 4).astype(float)
    for got, want in zip(fused(a, c, bias), plain(a, c, bias)):
        _same_bits(got, want)  # exact data: every order of the sums agrees
    np.testing.assert_array_equal(fused(a, c, bias)[0], (a - c) * bias + 1.0)


def test_unknown_sizes_that_do_not_broadcast_raise_as_without_fusion():
    x = cr.placeholder("x", (None, 4))
    y = cr.placeholder("y", (None, 4))
    f = cr.function([x, y], (x - y) * 2.0, fuse="numba")
    with pytest.raises(cr.InputError, match="subtract"):
        f(np.ones((3, 4)), np.ones((2, 4)))


def test_one_unknown_operand_needs_no_size_check():
    x = cr.placeholder("x", (None, 3))
    f = cr.function([x], (x * x + 1.0).sum(axis=0), fuse="numba")
    assert "_fused" in f.source and ".shape[0] ==" not in f.source
    np.testing.assert_array_equal(f(np.ones((5, 3))), [10.0, 10.0, 10.0])
    np.testing.assert_array_equal(f(np.ones((0, 3))), [0.0, 0.0, 0.0])


def test_non_contiguous_inputs_and_array_constants():
    x = cr.placeholder("x", (4, 3))
    k = cr.constant(np.array([1.0, 2.0, 3.0]))
    f = cr.function([x], [x * k - x, (x * k).sum(axis=1)], fuse="numba")
    assert "_fused" in f.source
    a = np.arange(12.0).reshape(3, 4).T  # a transposed view: strided
    got = f(a)
    np.testing.assert_array_equal(got[0], a * [1, 2, 3] - a)
    np.testing.assert_array_equal(got[1], (a * [1, 2, 3]).sum(axis=1))


def test_a_user_name_like_the_numba_module_is_safe():
    numba_ = cr.placeholder("numba", (2, 2))
    k = cr.constant(np.array([[1.0, 2.0], [3.0, 4.0]]), name="numba")
    f = cr.function([numba_], numba_ * k + numba_, fuse="numba")
    np.testing.assert_array_equal(f(np.ones((2, 2))), [[2.0, 3.0], [4.0, 5.0]])


def test_blas_updates_stay_gemms_with_fusion():
    pytest.importorskip("scipy.linalg.blas")
    rng = np.random.default_rng(3)
    n = 96  # large enough for an in-place update
    w0 = rng.standard_normal((n, n)) * 0.1
    x = cr.placeholder("x", (8, n))
    w = cr.parameter(w0.copy(), "w")
    loss = cr.square(cr.tanh(x @ w)).sum()
    f = cr.function([x], loss, updates={w: w - 0.01 * cr.grad(loss, w)}, blas="scipy",
                    fuse="numba")
    assert "_gemm_update(" in f.source and "_fused" in f.source
    a = rng.standard_normal((8, n))
    f(a)
    t = np.tanh(a @ w0)
    np.testing.assert_allclose(w.value, w0 - 0.01 * (a.T @ (2 * t * (1 - t * t))),
                               rtol=1e-12, atol=1e-15)


def test_interpreter_ignores_fuse_and_bad_choices_are_clear():
    x = cr.placeholder("x", (2,))
    f = cr.function([x], x * x + 1.0, backend="interpreter", fuse="numba")
    np.testing.assert_array_equal(f(np.array([1.0, 2.0])), [2.0, 5.0])
    with pytest.raises(ChainruleError, match="fuse='cuda' is not a choice"):
        cr.function([x], x, fuse="cuda")


def test_missing_numba_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "numba", None)  # import numba raises ImportError
    x = cr.placeholder("x", (2,))
    with pytest.raises(ChainruleError, match="pip install numba"):
        cr.function([x], x * x + 1.0, fuse="numba")


def test_a_loop_numba_cannot_compile_is_a_chainrule_error(monkeypatch):
    from chainrule.ir.op import REGISTRY
    monkeypatch.setattr(REGISTRY["square"], "scalar", lambda attrs, x: f"no_such_name({x})")
    x = cr.placeholder("x", (2, 2))
    with pytest.raises(ChainruleError, match="could not compile the fused loop"):
        cr.function([x], cr.square(x) + 1.0, fuse="numba")


# -- random graphs -------------------------------------------------------------

OPERAND_SHAPES = [(3, 4), (3, 4), (4,), (3, 1), (), (1, 4)]


@st.composite
def graphs(draw, with_sums):
    """A random graph over placeholders of broadcasting shapes (the batch
    dim known, or None and 3 or 1 at run time): fusable arithmetic mixed
    with ops that do not fuse (exp, tanh, a matmul, a transpose), read by
    outputs at random places."""
    dtype = draw(st.sampled_from(["float32", "float64"])) if not with_sums else "float64"
    unknown = draw(st.booleans())
    shapes = [tuple(None if unknown and d == 3 else d for d in s) for s in OPERAND_SHAPES]
    xs = [cr.placeholder(f"x{k}", s, dtype) for k, s in enumerate(shapes)]
    rows = [3] + [draw(st.sampled_from([3, 1])) if unknown else 3 for _ in xs[1:]]
    nodes = list(xs)
    binary = ["add", "subtract", "multiply"] + ([] if with_sums else ["divide"])
    unary = ["negative", "square"] + ([] if with_sums else ["sqrt", "exp", "tanh"])
    for _ in range(draw(st.integers(3, 14))):
        kind = draw(st.sampled_from(["binary", "binary", "unary", "const", "other"]))
        a = draw(st.sampled_from(nodes))
        if kind == "binary":
            b = draw(st.sampled_from(nodes))
            try:
                n = getattr(cr, draw(st.sampled_from(binary)))(a, b)
            except ChainruleError:
                continue
        elif kind == "unary":
            n = getattr(cr, draw(st.sampled_from(unary)))(a)
        elif kind == "const":
            n = a * draw(st.sampled_from([0.5, -2.0, 3.0])) + 1.0
        else:
            if a.ndim != 2 or a.shape[1] != 4:
                continue
            choice = draw(st.sampled_from(["sum0", "sum1", "matmul", "T"] if with_sums
                                          else ["matmul", "T"]))
            if choice == "sum0":
                n = a.sum(axis=0, keepdims=draw(st.booleans()))
            elif choice == "sum1":
                n = a.sum(axis=1, keepdims=draw(st.booleans()))
            elif choice == "matmul":
                n = (a.T @ a) [:3, :]  # (4, 4) -> (3, 4): back to the loop shape
            else:
                n = a.T.T + 0.0
        nodes.append(n)
    derived = nodes[len(xs):] or [xs[0] * 2.0]
    k = draw(st.integers(1, min(4, len(derived))))
    outs = draw(st.permutations(derived))[:k]
    return xs, outs, dtype, rows


def _inputs(xs, rows, dtype, seed, integers):
    """Values for the placeholders: ``rows`` for their unknown batch dims."""
    rng = np.random.default_rng(seed)
    vals = []
    for x, n in zip(xs, rows):
        shape = tuple(n if d is None else d for d in x.shape)
        if integers:
            v = rng.integers(-3, 4, shape).astype(dtype)
        else:
            v = rng.uniform(0.1, 2.0, shape).astype(dtype) * rng.choice([-1, 1], shape)
        vals.append(np.asarray(v, dtype))
    return vals


def _run_both(g, seed, integers):
    """(fused, unfused) result pairs of a random graph on random inputs."""
    xs, outs, dtype, rows = g
    fused, plain = _both(xs, outs)
    event(f"{fused.source.count('@numba.njit')} fused loop(s)")
    vals = _inputs(xs, rows, dtype, seed, integers=integers)
    with np.errstate(all="ignore"):
        return list(zip(fused(*vals), plain(*vals)))


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(graphs(with_sums=False), st.integers(0, 2**16))
def test_random_elementwise_graphs_match_numpy_bit_for_bit(g, seed):
    for a, b in _run_both(g, seed, integers=False):
        _same_bits(a, b)


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(graphs(with_sums=True), st.integers(0, 2**16))
def test_random_graphs_with_sums_match_numpy_on_exact_data(g, seed):
    for a, b in _run_both(g, seed, integers=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=0)


def test_many_groups_keep_the_largest_loops(monkeypatch):
    from chainrule.backends import fusion
    monkeypatch.setattr(fusion, "MAX_LOOPS", 2)
    x = cr.placeholder("x", (4, 5))
    small = cr.placeholder("s", (3,))
    y = x
    for k in range(4):  # four groups of two nodes, an exp between each
        y = cr.exp(y * 0.5 - x)
    z = cr.exp(small * 2.0 + 1.0)  # a smaller group: dropped first
    f = cr.function([x, small], [y, z], fuse="numba")
    assert f.source.count("@numba.njit") == 2
    a, b = np.linspace(0, 1, 20).reshape(4, 5), np.arange(3.0)
    for got, want in zip(f(a, b), cr.function([x, small], [y, z])(a, b)):
        _same_bits(got, want)


def test_the_same_loop_compiles_once():
    def make():
        x = cr.placeholder("x", (3, 2))
        return cr.function([x], (x * x - 1.0).sum(axis=1), fuse="numba")
    f, g = make(), make()
    assert f.source == g.source
    assert f._run.__globals__["_fused1"] is g._run.__globals__["_fused1"]
    np.testing.assert_array_equal(g(np.ones((3, 2))), [0.0, 0.0, 0.0])


def test_results_follow_numpy_layout_for_f_ordered_and_transposed_operands():
    # NumPy's result of an F-ordered operand is F-ordered; later statements
    # (a sum's product with ones, BLAS) then take the same path with fusion
    x = cr.placeholder("x", (30, 40))
    e = x * x + 1.0
    outs = [e, cr.mean(e, axis=1), (x.T * 2.0 - 1.0) @ x]
    fused, plain = _both([x], outs)
    a = np.asfortranarray(np.random.default_rng(0).standard_normal((30, 40)))
    for arg in (a, np.ascontiguousarray(a)):
        for got, want in zip(fused(arg), plain(arg)):
            _same_bits(got, want)
            assert got.flags.c_contiguous == want.flags.c_contiguous


def test_a_deleted_function_frees_its_constants():
    import gc
    import weakref
    x = cr.placeholder("x", (3, 3))
    c = cr.constant(np.arange(9.0).reshape(3, 3) + 0.5)
    f = cr.function([x], (x * c + 1.0) * x, fuse="numba")
    np.testing.assert_array_equal(f(np.ones((3, 3))), np.arange(9.0).reshape(3, 3) + 1.5)
    ref = weakref.ref(f._run.__globals__["_c1"] if "_c1" in f._run.__globals__
                      else next(v for k, v in f._run.__globals__.items()
                                if isinstance(v, np.ndarray) and v.shape == (3, 3)))
    del f, c
    gc.collect()
    assert ref() is None  # Numba's compiled loop does not hold the module


def test_check_finite_keeps_numpy_softmax():
    x = cr.placeholder("x", (3, 4))
    f = cr.function([x], cr.softmax(x * 2.0 + 1.0), fuse="numba", check_finite=True)
    assert "numba" not in f.source


def test_a_consumer_moves_to_its_operands_loop_only_when_that_saves_a_pass():
    """``a + 1`` (an output) joins ``a``'s loop; ``a - 2``, read only by a
    product of a later value, stays with that product's loop instead of
    being one more array the first loop writes."""
    x = cr.placeholder("x", (64, 64))
    W = cr.placeholder("W", (64, 64))
    a = x * 3.0
    f, plain = _both([x, W], [a @ W, a + 1.0, (a - 2.0) * (a @ W)])
    comments = [line.strip() for line in f.source.splitlines()
                if line.startswith("    # ")]
    assert comments == ["# multiply, add", "# subtract, multiply"], f.source
    rng = np.random.default_rng(8)
    args = [rng.standard_normal((64, 64)) for _ in range(2)]
    for g, w in zip(f(*args), plain(*args)):
        _same_bits(g, w)
