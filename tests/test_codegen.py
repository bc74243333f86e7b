"""The NumPy code generator: the source stands alone, is deterministic, and
never executes user-provided strings."""

import ast
import re

import numpy as np
import pytest

import chainrule as cr


def _run_source(source, *args):
    """Exec the generated source in a fresh namespace and call it."""
    namespace = {}
    exec(compile(source, "<generated>", "exec"), namespace)
    outs, updates = namespace["compiled"](*args)
    return outs, updates


def _model(seed=0):
    """A small classifier with every kind of constant and several helpers."""
    rng = np.random.default_rng(seed)
    x = cr.placeholder("x", (None, 4))
    labels = cr.placeholder("labels", (None,), "int64")
    W1 = cr.placeholder("W1", (4, 20))
    b1 = cr.constant(rng.normal(size=20), name="b1")       # > 64 entries? no: listed
    W2 = cr.constant(rng.normal(size=(20, 3)), name="W2")  # 60 entries, listed
    big = cr.constant(rng.normal(size=(4, 20)))           # 80 entries: hex bytes
    h = cr.tanh(x @ (W1 + big) + b1)
    h.name = "h"
    logits = cr.sigmoid(h) @ W2 + cr.softplus(h[:, :3]) + cr.erf(h[:, 3:6])
    logp = cr.log_softmax(logits)
    picked = cr.take(logp.reshape(-1), labels * 3 + labels)
    loss = -cr.mean(picked) + 0.01 * cr.logsumexp(logits) + cr.sum(cr.softmax(logits)[0])
    loss = loss + cr.sum(cr.where(x > 0, x, cr.zeros_like(x))) * 0.0 + cr.mean(
        cr.clip(x, -np.inf, 0.5))
    loss.name = "loss"
    g = cr.grad(loss, [W1, x])
    return [x, labels, W1], [loss, *g]


def _args(seed=1):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(5, 4)), np.array([0, 2, 1, 1, 0]) // 2, rng.normal(size=(4, 20))]


def test_source_runs_alone_and_agrees():
    inputs, outputs = _model()
    f = cr.function(inputs, outputs)
    args = _args()
    want = f(*args)
    ref = cr.function(inputs, outputs, backend="interpreter")(*args)
    outs, upd = _run_source(f.source, *args)
    assert upd == []
    for a, b, c in zip(outs, want, ref):
        np.testing.assert_array_equal(np.asarray(a), b)
        np.testing.assert_allclose(b, c, rtol=1e-12, atol=1e-14)


def test_source_only_imports_numpy():
    inputs, outputs = _model()
    src = cr.function(inputs, outputs).source
    imports = [n for n in ast.walk(ast.parse(src)) if isinstance(n, (ast.Import, ast.ImportFrom))]
    modules = {a.name for n in imports if isinstance(n, ast.Import) for a in n.names} | {
        n.module for n in imports if isinstance(n, ast.ImportFrom)}
    assert "numpy" in modules and modules <= {"numpy", "math"}
    assert not re.search(r"np\.bool\b(?!_)", src)  # np.bool is missing from NumPy < 2


def test_source_is_deterministic():
    s1 = cr.function(*_model()).source
    s2 = cr.function(*_model()).source
    assert s1 == s2
    # and the same when compiled twice from one graph
    inputs, outputs = _model()
    assert cr.function(inputs, outputs).source == cr.function(inputs, outputs).source


def test_source_reads_like_code():
    x, W = cr.placeholder("x", (2, 3)), cr.placeholder("W", (3, 4))
    h = cr.tanh(x @ W)
    h.name = "h"
    loss = cr.sum(h)
    loss.name = "loss"
    gW = cr.grad(loss, W)
    src = cr.function([x, W], [loss, gW]).source
    assert src.startswith("#")
    assert "def compiled(x, W):" in src
    assert re.search(r"^\s+h = ", src, re.M)
    assert re.search(r"^\s+loss = ", src, re.M)
    assert "grad_W" in src


def test_interpreter_has_no_source():
    x = cr.placeholder("x")
    assert cr.function([x], x * 2, backend="interpreter").source is None


@pytest.mark.parametrize("name", [
    "x); import os #", "class", "1abc", "np", "t1", "None", "print", "_sigmoid",
    "compiled", "x y", "__import__('os')", "é", "lambda", "match", "_", "t1\nimport os",
])
def test_hostile_placeholder_names(name):
    x = cr.placeholder(name, (3,))
    yname = "t2" if name == "t1" else "t1"  # names the generator gives temporaries
    y = cr.placeholder(yname, (3,))
    out = cr.sigmoid(x) * y + cr.exp(x) - 1.0
    out.name = name
    g = cr.grad(cr.sum(out), x)
    g.name = name
    f = cr.function([x, y], [out, g])
    src = f.source
    ast.parse(src)
    assert "import os" not in src and "__import__" not in src
    xv, yv = np.array([0.5, -1.0, 2.0]), np.array([1.0, 2.0, 3.0])
    s = 1 / (1 + np.exp(-xv))
    want_out = s * yv + np.exp(xv) - 1.0
    want_g = s * (1 - s) * yv + np.exp(xv)
    got = f(xv, yv)
    np.testing.assert_allclose(got[0], want_out, rtol=1e-14)
    np.testing.assert_allclose(got[1], want_g, rtol=1e-14)
    outs, _ = _run_source(src, xv, yv)
    np.testing.assert_array_equal(outs[0], got[0])
    # keyword calls use the user's name, whatever the generated identifier
    np.testing.assert_array_equal(f(**{name: xv, yname: yv})[0], got[0])


def test_hostile_output_and_parameter_names():
    # names also appear in the header comment: a newline must not end it
    x = cr.placeholder("x")
    p = cr.parameter(1.0, "p\nraise RuntimeError('p')")
    out = x * 2 + p
    out.name = "y\nraise RuntimeError('injected')"
    f = cr.function([x], out, updates={p: p + 1.0})
    ast.parse(f.source)
    assert float(f(1.0)) == 3.0 and float(p.value) == 2.0


@pytest.mark.parametrize("name", ["bytes", "range", "tuple", "len", "compiled", "np", "float",
                                  "print", "zip", "int"])
def test_constant_names_never_shadow_what_the_module_uses(name):
    """A hoisted constant is a module-level name: named like a builtin that
    other constants' literals or the helpers call (bytes.fromhex, range), or
    like the function itself, it must not replace them."""
    x = cr.placeholder("x", (None, 3))
    big = cr.constant(np.arange(300.0).reshape(100, 3), name=name)  # bytes.fromhex
    small = cr.constant([1.0, 2.0, 3.0], name=name)
    other = cr.constant(np.linspace(0, 1, 300).reshape(100, 3))
    g = cr.grad(cr.sum(cr.prod(x, axis=0)), x)  # its helper calls range()
    outs = [g, cr.sum(big[:2] * x) + cr.sum(other[:2] * x), x * small]
    xv = np.arange(6.0).reshape(2, 3) + 1
    want = [np.prod(xv, axis=0) / xv,
            np.sum(np.arange(6.0).reshape(2, 3) * xv) + np.sum(np.linspace(0, 1, 300)[:6].reshape(2, 3) * xv),
            xv * [1.0, 2.0, 3.0]]
    for optimize in (True, False):
        got = cr.function([x], outs, optimize=optimize)(xv)
        for a, b in zip(got, want):
            np.testing.assert_allclose(a, b, rtol=1e-13)


def test_literals_alone_follow_numpy_not_python():
    """Two 0-d constants are never both written as bare literals: Python
    would compute 2 ** -1 as 0.5 (int64 refuses it) where the node is int64."""
    for optimize in (True, False):
        with pytest.raises(cr.InputError, match="power"):
            cr.function([], cr.constant(2) ** cr.constant(-1), optimize=optimize)()
    # with an array operand a literal is still inlined
    x = cr.placeholder("x", (3,), "int64")
    assert "x ** 2" in cr.function([x], x ** cr.constant(2)).source


def test_negative_literals_keep_their_precedence(backend):
    y = cr.placeholder("y")
    outs = [cr.power(-2.0, y), (-3.0) ** y, -3.0 - y, y - -3.0, y * -np.inf, cr.maximum(-1.0, y)]
    got = cr.function([y], outs, backend=backend)(2.0)
    want = [4.0, 9.0, -5.0, 5.0, -np.inf, 2.0]
    assert [float(v) for v in got] == want


def test_constants_round_trip_exactly():
    x = cr.placeholder("x", (3,), "float32")
    vals = [np.float32(0.1), np.array([np.nan, np.inf, -np.inf], np.float32),
            np.array([1e-45, 3.4028235e38, -0.0], np.float32)]
    out = x
    for v in vals:
        out = out + cr.constant(v)
    big = np.random.default_rng(0).normal(size=100).astype(np.float32)
    outs = [out, cr.sum(x) * cr.constant(big), cr.cast(x, "int8") + cr.constant(np.arange(3, dtype="int8")),
            cr.logical_and(x > 0, cr.constant(np.array([True, False, True])))]
    f = cr.function([x], outs)
    xv = np.array([1.0, 2.0, 3.0], np.float32)
    got = f(xv)
    want = [xv + vals[0] + vals[1] + vals[2], np.sum(xv) * big,
            xv.astype(np.int8) + np.arange(3, dtype=np.int8), (xv > 0) & np.array([1, 0, 1], bool)]
    for g, w in zip(got, want):
        assert g.dtype == w.dtype
        np.testing.assert_array_equal(g, w)
    outs2, _ = _run_source(f.source, xv)
    for g, w in zip(outs2, want):
        np.testing.assert_array_equal(g, w)


def test_updates_in_source():
    x = cr.placeholder("x", (2,))
    w = cr.parameter(np.array([1.0, 2.0]), "w")
    loss = cr.sum((w * x) ** 2)
    f = cr.function([x], loss, updates={w: w - 0.1 * cr.grad(loss, w)})
    xv = np.array([1.0, -1.0])
    outs, upd = _run_source(f.source, xv, np.array([1.0, 2.0]))
    np.testing.assert_allclose(upd[0], [1.0 - 0.1 * 2 * 1.0, 2.0 - 0.1 * 2 * 2.0])
    f(xv)
    np.testing.assert_allclose(w.value, upd[0])


def test_intermediates_are_freed():
    x = cr.placeholder("x", (3,))
    y = x
    for _ in range(5):
        y = cr.sin(y) * 2.0
    src = cr.function([x], y).source
    assert "del " in src
    # every name deleted was assigned before
    assigned = set(re.findall(r"^\s+(\w+) = ", src, re.M))
    for line in re.findall(r"^\s+del (.+)$", src, re.M):
        assert set(n.strip() for n in line.split(",")) <= assigned


def test_check_finite_names_the_node(backend):
    x = cr.placeholder("x", (2,))
    r = cr.log(x)
    r.name = "logx"
    f = cr.function([x], cr.sum(r), backend=backend, check_finite=True)
    assert np.isfinite(f(np.array([1.0, 2.0])))
    with pytest.raises(cr.NonFiniteError) as e, np.errstate(invalid="ignore"):
        f(np.array([1.0, -1.0]))
    assert "logx" in str(e.value) and "log" in str(e.value)


def test_tracebacks_show_generated_lines():
    import traceback
    x = cr.placeholder("x", (2,))
    idx = cr.placeholder("idx", (1,), "int64")
    f = cr.function([x, idx], cr.take(x * 2.0, idx))
    with pytest.raises(cr.InputError) as e:
        f(np.ones(2), np.array([5]))
    assert isinstance(e.value.__cause__, IndexError)
    text = "".join(traceback.format_exception(e.value))  # includes the cause
    assert "np.take(" in text  # the generated line, shown through linecache


@pytest.mark.parametrize("dtype", ["float64", "float32", "float16", "int64", "bool"])
@pytest.mark.parametrize("shape,axis,keepdims", [
    ((6, 5), 0, False), ((6, 5), 1, True), ((3, 4, 5), (0, 2), False),
    ((None, 5), 0, True), ((None, None), (0, 1), False), ((4, 3), None, False),
])
def test_mean_is_a_sum_over_the_count(dtype, shape, axis, keepdims):
    """mean lowers to ``x.sum(...) / n`` for float32/64 (n a literal when the
    dims are known, read from x.shape otherwise); float16 and integers,
    which np.mean accumulates in a wider type, keep ``.mean``. Values match
    np.mean either way."""
    x = cr.placeholder("x", shape, dtype)
    f = cr.function([x], cr.mean(x, axis=axis, keepdims=keepdims), optimize=False)
    concrete = tuple(d if d is not None else 7 for d in shape)
    rng = np.random.default_rng(0)
    value = (rng.normal(size=concrete) * 10).astype(dtype)
    want = np.mean(value, axis=axis, keepdims=keepdims)
    got = f(value)
    assert got.dtype == want.dtype and got.shape == want.shape
    tol = {"float16": 1e-3, "float32": 1e-6}.get(dtype, 1e-13)
    np.testing.assert_allclose(got, want, rtol=tol)
    known = all(d is not None for d in shape)
    if dtype == "float32" and not known:  # the count is checked at run time
        assert "/ _n if (_n := x.shape[" in f.source and ".mean(" in f.source, f.source
        return
    fast = dtype in ("float64", "float32")
    assert (".mean(" in f.source) != fast, f.source
    if fast:
        assert ("/ x.shape[" in f.source or "/ (x.shape[" in f.source) != known, f.source


def test_float32_mean_over_more_than_2_24_elements_keeps_numpys_count():
    """A float32 count above 2**24 is not exact: the division would round it
    (16777217 -> 16777216) where np.mean divides in float64. Keep ``mean``."""
    n = 2 ** 24 + 1
    x = cr.placeholder("x", (n,), "float32")
    f = cr.function([x], cr.mean(x), optimize=False)
    assert ".mean(" in f.source
    value = np.ones(n, "float32")
    assert f(value) == np.mean(value)
    small = cr.placeholder("s", (2 ** 24,), "float32")
    assert "/ 16777216" in cr.function([small], cr.mean(small), optimize=False).source
    # a size known at run time only: the same choice, made there
    u = cr.placeholder("u", (None,), "float32")
    g = cr.function([u], cr.mean(u), optimize=False)
    value[0] = 3.0  # a sum that 2**24 and 2**24 + 1 divide differently
    assert g(value) == np.mean(value) and g(value[:-1]) == np.mean(value[:-1])


def test_errors_after_helper_functions_name_the_right_node():
    """_softmax and _logsumexp are pasted above the function; the map from
    generated lines back to nodes must count their lines."""
    u, v = cr.placeholder("u", (None, None)), cr.placeholder("v", (None, None))
    s = cr.softmax(u, axis=1) + cr.logsumexp(v)
    s.name = "h0"
    h = s @ v
    for k in range(1, 30):
        h = cr.sin(h)
        h.name = f"h{k}"
    f = cr.function([u, v], h, optimize=False)
    assert "def _softmax" in f.source and "def _logsumexp" in f.source
    with pytest.raises(cr.InputError, match=r"matmul\(h0, v\)"):
        f(np.ones((2, 3)), np.ones((4, 4)))


@pytest.mark.parametrize("build", [
    lambda x: cr.sum(cr.log(cr.sigmoid(x))),
    lambda x: cr.sum(cr.tanh(x) * cr.tanh(x)),
])
def test_gradient_and_cost_share_their_statements(build):
    """A gradient call builds its nodes apart from the user's (ir/node.py);
    compiled with the cost, equal expressions of both are one statement,
    whichever output comes first, and compiling again gives the same text."""
    x = cr.placeholder("x", (4,))
    cost = build(x)
    g = cr.grad(cost, x)
    for outs in ([g, cost], [cost, g]):
        src = cr.function([x], outs).source
        body = [ln.split("=", 1)[1].strip() for ln in src.split("def compiled")[1].splitlines()
                if " = " in ln]
        assert len(body) == len(set(body)), src
        assert "grad_x" in src, src
        assert cr.function([x], outs).source == src


@pytest.mark.parametrize("src,dst", [
    ((), (3, 4)), ((1,), (5,)), ((4,), (3, 4)), ((3, 1), (3, 5)), ((1, 1), (0, 3)),
    ((0,), (2, 0)), ((2, 3), (2, 3)), ((1, 3), (4, 1, 3)), ((2,), (3,)), ((3, 2), (2,)),
    ((1,), ()), ((2, 1), (2, 0)),
])
def test_broadcast_helper_is_numpys_broadcast_to(src, dst):
    """The generated code's _broadcast builds the view from the strides for a
    C-contiguous operand: the same values, shape and dtype as
    np.broadcast_to, read-only, and NumPy's error where NumPy raises."""
    from chainrule.ops.shape import _broadcast
    x = np.random.default_rng(0).standard_normal(src)
    operands = [x, np.asfortranarray(x), np.float64(1.5) if src == () else x.T,
                x.astype(np.float32)]
    for xx in operands:
        try:
            want = np.broadcast_to(xx, dst)
        except ValueError:
            with pytest.raises(ValueError):
                _broadcast(xx, dst)
            continue
        got = _broadcast(xx, dst)
        assert got.shape == want.shape and got.dtype == want.dtype
        assert not got.flags.writeable
        np.testing.assert_array_equal(got, want)


def test_expand_dims_is_indexing_and_scalars_still_work():
    x, s = cr.placeholder("x", (3, 4)), cr.placeholder("s")
    f = cr.function([x, s], [cr.expand_dims(x, (0, 2)), cr.expand_dims(s, 0)])
    assert "x[None, :, None, :]" in f.source and "np.expand_dims" not in f.source
    a, b = f(np.ones((3, 4)), 2.0)
    assert a.shape == (1, 3, 1, 4) and b.shape == (1,) and b[0] == 2.0
    # the source run by hand may get a Python float, which has no indexing
    (a, b), _ = _run_source(f.source, np.ones((3, 4)), 2.0)
    assert a.shape == (1, 3, 1, 4) and b.shape == (1,) and b[0] == 2.0


@pytest.mark.parametrize("dtype", ["float64", "float32", "float16", "int64"])
@pytest.mark.parametrize("shape,axis,keepdims,form", [
    ((6, 5), 0, False, "ones @"), ((6, 5), 1, True, "@ ones"), ((6, 5), -1, False, "@ ones"),
    ((3, 4, 5), 1, True, "ones @"), ((3, 4, 5), 2, False, "@ ones"),
    ((3, 4, 5), 0, False, "sum"), ((3, 4, 5), (1, 2), False, "sum"),
    ((7,), 0, False, "@ ones"), ((7,), 0, True, "@ ones"),
    ((200,), 0, False, "sum"),       # a contiguous run > 128: NumPy adds it pairwise
    ((4, 300), 1, False, "sum"), ((300, 4), 0, True, "ones @"),
    ((None, 5), 0, False, "_ones("), ((None, 5), 0, True, "_ones("),
    ((None, 5), 1, True, "@ ones"), ((5, None), 1, False, "sum"), ((5, 0), 0, False, "sum"),
    ((0, 5), 0, False, "sum"),
    ((6, 1), 0, False, "sum"), ((None, 1), 0, True, "sum"),  # the first axis is contiguous
    ((6, None), 0, False, "sum"),
])
def test_float_sums_are_products_with_ones(dtype, shape, axis, keepdims, form):
    """A float32/64 sum over the last axis (at most 128 long) or the one
    before it is generated as a product with a vector of ones (BLAS; a
    constant, or made per batch size by ``_ones`` when the axis length is
    known at run time only); other sums and dtypes keep ``.sum``. Either way
    the value is np.sum's, NaN and infinities included, with its shape and
    dtype."""
    x = cr.placeholder("x", shape, dtype)
    f = cr.function([x], cr.sum(x, axis=axis, keepdims=keepdims), optimize=False)
    lowered = dtype in ("float32", "float64") and form != "sum"
    body = f.source.split("def compiled", 1)[1]
    fallback = r" if x\.flags\.c_contiguous else x\.sum\(axis="
    if lowered and form == "ones @":
        assert re.search(r"= \(_ones\d+ @ x" + fallback, body), f.source
    elif lowered and form == "@ ones":
        assert re.search(r"= \(x @ _ones\d+" + fallback, body), f.source
    elif lowered:
        assert re.search(r"= \(_ones\(\(?(1, )?x\.shape\[\d\]\)?, np\.float\d\d\) @ x"
                         + fallback, body), f.source
    else:
        assert ".sum(" in body and "@" not in body, f.source
    rng = np.random.default_rng(1)
    for batch in (3, 9, 3):  # run-time lengths; the same again (the _ones cache)
        concrete = tuple(batch if d is None else d for d in shape)
        value = (rng.normal(size=concrete) * 10).astype(dtype)
        if value.size > 4 and dtype != "int64":
            flat = value.reshape(-1)
            flat[1], flat[2], flat[-1] = np.nan, np.inf, -np.inf
        with np.errstate(invalid="ignore"):  # inf - inf
            want = np.sum(value, axis=axis, keepdims=keepdims)
            got = np.asarray(f(value))
        assert got.dtype == want.dtype and got.shape == want.shape
        tol = {"float16": 2e-3, "float32": 1e-5}.get(dtype, 1e-12)
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


def test_the_ones_a_sum_reads_stay_ones_through_a_train_step():
    """The ones are a module-level constant (or a cached read-only array):
    the results of the products are fresh arrays, which the buffer plan may
    write into (the bias update below), never the ones themselves."""
    rng = np.random.default_rng(0)
    x = cr.placeholder("x", (None, 6))
    W = cr.parameter(rng.normal(size=(6, 4)), "W")
    b = cr.parameter(np.zeros(4), "b")
    loss = cr.sum(cr.tanh(x @ W + b) ** 2, axis=1).mean()
    gW, gb = cr.grad(loss, [W, b])
    f = cr.function([x], loss, updates={W: W - 0.5 * gW, b: b - 0.5 * gb})
    assert "_ones(" in f.source and re.search(r"@ _ones\d", f.source), f.source
    Wv, bv = W.value.copy(), b.value.copy()
    for batch in (5, 5, 7, 5):
        xv = rng.normal(size=(batch, 6))
        h = np.tanh(xv @ Wv + bv)
        want = np.mean(np.sum(h ** 2, axis=1))
        dz = 2 * h * (1 - h ** 2) / batch
        Wv, bv = Wv - 0.5 * xv.T @ dz, bv - 0.5 * dz.sum(axis=0)
        np.testing.assert_allclose(f(xv), want, rtol=1e-12)
        np.testing.assert_allclose(W.value, Wv, rtol=1e-12)
        np.testing.assert_allclose(b.value, bv, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("dtype", ["float64", "float32", "int32"])
@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_softmax_helpers_sum_the_last_axis_with_ones(dtype, op):
    """softmax/log_softmax over a short last axis pass a column of ones to
    their helper; over another axis, or for an integer input (computed in
    float64), the helper sums as before. Values against float64 closed forms."""
    rng = np.random.default_rng(2)
    value = (rng.normal(size=(4, 6)) * 30).astype(dtype)
    x = cr.placeholder("x", (4, 6), dtype)
    for axis in (1, 0):
        f = cr.function([x], getattr(cr, op)(x, axis=axis), optimize=False)
        assert ("ones=_ones" in f.source) == (axis == 1), f.source
        v = value.astype(np.float64)
        s = v - v.max(axis=axis, keepdims=True)
        lsm = s - np.log(np.exp(s).sum(axis=axis, keepdims=True))
        want = lsm if op == "log_softmax" else np.exp(lsm)
        got = f(value)
        assert got.dtype == (np.float32 if dtype == "float32" else np.float64)
        np.testing.assert_allclose(got, want, rtol=1e-5 if dtype == "float32" else 1e-12,
                                   atol=1e-6 if dtype == "float32" else 1e-14)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_sums_of_views_are_numpys_sums(dtype):
    """A transposed, strided or broadcast operand (a view: not C-contiguous)
    is summed by ``.sum``, tested at run time: matmul would copy it or loop
    slowly, and its contiguous axis may be the one summed, which NumPy adds
    pairwise. Values equal np.sum's of the same view exactly."""
    rng = np.random.default_rng(3)
    x = cr.placeholder("x", (None, 6), dtype)
    b = cr.placeholder("b", (6,), dtype)
    outs = [cr.sum(x[:, ::2], axis=0), cr.sum(cr.transpose(x), axis=1),
            cr.sum(x.T, axis=0, keepdims=True), cr.mean(x[:, ::3], axis=0),
            cr.sum(cr.broadcast_to(b, (5, 6)), axis=0) * 1.0, cr.sum(x, axis=0)]
    f = cr.function([x, b], outs, optimize=False)
    assert f.source.count(".flags.c_contiguous") >= 4, f.source
    v = (rng.normal(size=(9, 6)) * 100).astype(dtype)
    bv = rng.normal(size=6).astype(dtype)
    want = [v[:, ::2].sum(axis=0), v.T.sum(axis=1), v.T.sum(axis=0, keepdims=True),
            v[:, ::3].mean(axis=0), np.broadcast_to(bv, (5, 6)).sum(axis=0)]
    got = f(v, bv)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)
    # a Fortran-ordered input: its first axis is the contiguous one
    vf = np.asfortranarray(v)
    np.testing.assert_array_equal(f(vf, bv)[-1], vf.sum(axis=0))


@pytest.mark.parametrize("exponent", [0.5, -0.5, 1.5, 2.0, 3.0, np.inf, np.nan, -1.0])
def test_scalar_powers_follow_the_array_loop(exponent):
    """0-d values are NumPy scalars in the generated code, whose ``**`` is
    C's pow; NumPy's array loop (the interpreter's) takes a square root for
    an exponent of 0.5: (-inf) ** 0.5 is nan there, -0.0 ** 0.5 is -0.0.
    The generated code gives the interpreter's numbers for every base."""
    x, y = cr.placeholder("x"), cr.placeholder("y")
    bases = [-np.inf, -2.0, -0.0, 0.0, 0.25, 3.0, np.inf, np.nan]
    f = cr.function([x, y], x ** y)
    g = cr.function([x], x ** exponent)
    with np.errstate(all="ignore"):
        for b in bases:
            want = np.power(np.array(b), np.array(exponent))  # the interpreter's
            for got in (f(b, exponent), g(b)):
                np.testing.assert_array_equal(got, want)
                assert np.signbit(got) == np.signbit(want), (b, exponent, got)
