"""fuse="numba" with vecmath="libmvec": libmvec's functions inside fused loops.

A member such as tanh runs as one call of glibc's vector function over a
row buffer, between the loops computing the rest of the row. Expected values
are NumPy's own functions and hand-written NumPy (an independent
implementation): libmvec and NumPy are each within 4 ulp of the exact
result, so the tolerances allow a few ulp; NaN, inf and signed zeros must
land exactly where NumPy puts them.
"""

import numpy as np
import pytest

import chainrule as cr
from chainrule.backends import vecmath
from conftest import why_no_libmvec

pytest.importorskip("numba")


WHY = why_no_libmvec()
pytestmark = pytest.mark.skipif(WHY is not None, reason=f"libmvec unavailable: {WHY}")

OPTS = dict(fuse="numba", vecmath="libmvec")
ULPS = {"float32": dict(rtol=4e-7 * 8, atol=1e-37), "float64": dict(rtol=1.2e-16 * 8, atol=1e-300)}


def _close(got, want, dtype):
    got, want = np.asarray(got), np.asarray(want, dtype=dtype)
    assert got.dtype == np.dtype(dtype) and got.shape == want.shape
    assert np.array_equal(np.isnan(got), np.isnan(want)), (got, want)
    inf = np.isinf(want)
    assert np.array_equal(got[inf], want[inf])
    np.testing.assert_allclose(got, want, equal_nan=True, **ULPS[dtype])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("width", [1, 3, 4, 8, 10, 17, 256])
def test_bias_and_tanh_run_in_one_loop_with_the_vector_function(dtype, width):
    """Widths below one vector (8 float32 or 4 float64 lanes), with a tail,
    and a multiple of it; special values through tanh."""
    x = cr.placeholder("x", (6, width), dtype)
    b = cr.placeholder("b", (width,), dtype)
    h = cr.tanh(x + b)
    f = cr.function([x, b], [h, 1 - h * h], **OPTS)
    assert "libmvec.tanh(" in f.source  # (np.tanh stays in the NumPy fallback branch)
    rng = np.random.default_rng(width)
    a = (rng.standard_normal((6, width)) * 3).astype(dtype)
    c = rng.standard_normal(width).astype(dtype)
    special = [np.nan, np.inf, -np.inf, -0.0, 0.0, 1e30, -1e-30, 20.0]
    a[0, :] = np.resize(np.array(special, dtype), width)
    c[0] = 0.0  # keeps -0.0 + 0.0 out of column 0 only where a is -0.0
    got = f(a, c)
    _close(got[0], np.tanh(a + c), dtype)
    # 1 - h * h: the loop's IEEE operations on its own h, as NumPy's
    assert got[1].tobytes() == (1 - got[0] * got[0]).tobytes()
    # signed zeros: tanh(-0.0 + -0.0) is -0.0
    z = f(np.full((6, width), -0.0, dtype), np.full(width, -0.0, dtype))[0]
    assert np.all(np.signbit(z))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_several_stages_and_values_read_across_them(dtype):
    """A value computed before a stage and read after it (a row buffer),
    two functions in a chain, an operand copied into a row, sums over both
    axes after the stages."""
    x = cr.placeholder("x", (9, 13), dtype)
    col = cr.placeholder("col", (9, 1), dtype)
    a = x * 0.5 + col
    y = a * cr.exp(cr.sin(a)) - cr.log1p(x * x) + cr.cos(x)
    f = cr.function([x, col], [y, y.sum(axis=0), y.sum(axis=1, keepdims=True)], **OPTS)
    body = f.source.split("def compiled")[0]
    for name in ("exp", "sin", "log1p"):  # (cos may stay alone: NumPy's call)
        assert f"libmvec.{name}(" in body
    # sin then exp, one after the other on row buffers, and a read after them
    assert "libmvec.exp(" in body.split("libmvec.sin(")[1].split("\n")[1]
    rng = np.random.default_rng(1)
    xs = rng.standard_normal((9, 13)).astype(dtype)
    cs = rng.standard_normal((9, 1)).astype(dtype)
    got = f(xs, cs)
    xa, ca = xs.astype(np.float64), cs.astype(np.float64)
    aa = xa * 0.5 + ca
    want = aa * np.exp(np.sin(aa)) - np.log1p(xa * xa) + np.cos(xa)
    # the float32 chain rounds after each op: compare with a looser bound
    tol = dict(rtol=2e-5, atol=2e-5) if dtype == "float32" else dict(rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(got[0], want, **tol)
    np.testing.assert_allclose(got[1], want.sum(axis=0), **tol)
    np.testing.assert_allclose(got[2], want.sum(axis=1, keepdims=True), **tol)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("n", [1, 5, 13, 300])
def test_one_dimensional_groups(dtype, n):
    v = cr.placeholder("v", (n,), dtype)
    s = cr.placeholder("s", (), dtype)
    f = cr.function([v, s], [s - 0.1 * cr.tanh(v * s)], **OPTS)
    assert "libmvec.tanh(" in f.source
    vs = np.linspace(-4, 4, n).astype(dtype)
    sv = np.asarray(1.5, dtype)
    got = f(vs, sv)[0]
    want = sv - dtype_cast(0.1, dtype) * np.tanh(vs * sv)
    np.testing.assert_allclose(got, want, **ULPS[dtype])


def dtype_cast(value, dtype):
    return np.dtype(dtype).type(value)


@pytest.mark.parametrize("rows", [0, 1, 7])
def test_unknown_batch_and_broadcast_fallback(rows):
    x = cr.placeholder("x", (None, 10), "float32")
    y = cr.placeholder("y", (None, 10), "float32")
    f = cr.function([x, y], [cr.exp(x) * y + 1.0], **OPTS)
    assert "libmvec.exp(" in f.source
    rng = np.random.default_rng(rows)
    xs = rng.standard_normal((rows, 10)).astype(np.float32)
    ys = rng.standard_normal((rows, 10)).astype(np.float32)
    _close(f(xs, ys)[0], np.exp(xs) * ys + np.float32(1.0), "float32")
    # y with one row broadcasts over x's rows: the NumPy statements run
    y1 = ys[:1] if rows else np.ones((1, 10), np.float32)
    _close(f(xs, y1)[0], np.exp(xs) * y1 + np.float32(1.0), "float32")
    if rows != 1:  # (a single row of x would broadcast)
        with pytest.raises(cr.InputError):
            f(xs, np.ones((rows + 2, 10), np.float32))


def test_transposed_and_fortran_ordered_operands():
    x = cr.placeholder("x", (6, 9), "float64")
    f = cr.function([x], [cr.tanh(x) * 2.0 + x], **OPTS)
    a = np.random.default_rng(2).standard_normal((9, 6)).T  # a transposed view
    for arg in (a, np.asfortranarray(a), a[:, ::1].copy()):
        _close(f(arg)[0], np.tanh(arg) * 2.0 + arg, "float64")


def test_without_vecmath_the_functions_stay_out_of_loops():
    x = cr.placeholder("x", (6, 9), "float64")
    y = cr.tanh(x + 1.0) * 2.0
    fused = cr.function([x], [y], fuse="numba")
    assert "libmvec" not in fused.source and "np.tanh(" in fused.source
    plain = cr.function([x], [y], vecmath="libmvec")
    assert "libmvec." not in plain.source.replace("glibc's libmvec", "")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("which", ["softmax", "log_softmax"])
@pytest.mark.parametrize("width", [1, 3, 10, 17])
def test_softmax_rows_with_one_vector_exp(dtype, which, width):
    fn = getattr(cr, which)
    x = cr.placeholder("x", (6, width), dtype)
    f = cr.function([x], [fn(x)], **OPTS)
    assert f"def _{which}_rows(" in f.source and "libmvec.exp(" in f.source
    rng = np.random.default_rng(width)
    a = (rng.standard_normal((6, width)) * 30).astype(dtype)
    a[1, 0] = np.nan            # NaN wins the max: a row of NaN, as in NumPy
    a[2, :] = -np.inf           # all -inf: NaN
    a[3, 0] = np.inf            # an inf: NaN
    a[4, :] = 1e30              # a huge row: no overflow (shifted by its max)
    got = f(a)[0]
    v = a.astype(np.float64)
    with np.errstate(all="ignore"):
        s = v - v.max(axis=1, keepdims=True)
        ls = np.log(np.exp(s).sum(axis=1, keepdims=True))
        want = (np.exp(s - ls) if which == "softmax" else s - ls).astype(dtype)
    tol = dict(rtol=4e-6, atol=2e-6) if dtype == "float32" else dict(rtol=1e-14, atol=1e-15)
    assert got.dtype == np.dtype(dtype)
    np.testing.assert_allclose(got, want, equal_nan=True, **tol)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("blas", [None, "numpy"])
def test_mlp_train_steps_match_the_interpreter(dtype, blas):
    """Loss, gradients through tanh and log_softmax, and the updated
    parameters after three steps, against the interpreter (which fuses
    nothing and calls NumPy's functions)."""
    rng = np.random.default_rng(5)
    sizes = (12, 16, 5)
    x = cr.placeholder("x", (8, sizes[0]), dtype)
    y = cr.placeholder("y", (8, sizes[-1]), dtype)

    def params():
        r = np.random.default_rng(6)
        return [cr.parameter((r.standard_normal(s) * 0.3).astype(dtype), n)
                for s, n in (((12, 16), "W1"), ((16,), "b1"), ((16, 5), "W2"), ((5,), "b2"))]

    def step(ps, **kw):
        W1, b1, W2, b2 = ps
        h = cr.tanh(x @ W1 + b1)
        loss = -(cr.log_softmax(h @ W2 + b2) * y).sum(axis=1).mean()
        gs = cr.grad(loss, ps)
        return cr.function([x, y], [loss] + gs,
                           updates={p: p - 0.1 * g for p, g in zip(ps, gs)}, **kw)

    fast_p, ref_p = params(), params()
    fast = step(fast_p, blas=blas, **OPTS)
    ref = step(ref_p, backend="interpreter")
    assert "libmvec.tanh(" in fast.source
    # 1 - h*h stays with the backward's (1 - h*h) * g: not one more array
    # written by the forward loop and kept alive until then
    forward = fast.source.split("libmvec.tanh(")[0].rsplit("@numba.njit", 1)[1]
    assert "square" not in forward.split("\n")[2], forward
    assert "# square, subtract, multiply" in fast.source
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == "float32" else dict(rtol=1e-11, atol=1e-12)
    for k in range(3):
        xs = rng.standard_normal((8, sizes[0])).astype(dtype)
        ys = np.eye(sizes[-1], dtype=dtype)[rng.integers(0, sizes[-1], 8)]
        for g, w in zip(fast(xs, ys), ref(xs, ys)):
            np.testing.assert_allclose(g, w, **tol)
        for p, q in zip(fast_p, ref_p):
            np.testing.assert_allclose(p.value, q.value, **tol)


def test_the_loops_vector_functions_are_checked_before_use():
    """The source names libmvec's functions as ``libmvec.<C name>(``: the
    compile step finds them there and self-tests their kernels."""
    src = "libmvec.tanh(_r1, _r2)\nlibmvec.log1p(_r3, _r4)\nnp.arcsinh(x)"
    assert vecmath.used_functions(src) == {"tanh", "log1p", "arcsinh"}


def test_the_generated_source_runs_on_its_own():
    """The printed module is runnable Python: exec it and call it."""
    x = cr.placeholder("x", (4, 10), "float32")
    f = cr.function([x], [cr.log_softmax(cr.tanh(x) * 3.0)], **OPTS)
    ns = {}
    exec(compile(f.source, "<generated>", "exec"), ns)
    a = np.random.default_rng(3).standard_normal((4, 10)).astype(np.float32)
    np.testing.assert_allclose(ns["compiled"](a)[0][0], f(a)[0], rtol=1e-6)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape", [(20000, 3), (3, 700), (5000,), (1,)])
def test_blocks_of_rows_and_stretches(dtype, shape):
    """Rows narrower than a vector go many to a block, wide ones one to a
    block; a long vector goes in stretches; the last block is partial."""
    x = cr.placeholder("x", shape, dtype)
    f = cr.function([x], [cr.tanh(x * 2.0) + x, cr.exp(x) * x], **OPTS)
    assert f.source.count("libmvec.") >= 2
    a = np.random.default_rng(7).uniform(-3, 3, shape).astype(dtype)
    got = f(a)
    _close(got[0], np.tanh(a * dtype_cast(2.0, dtype)) + a, dtype)
    _close(got[1], np.exp(a) * a, dtype)


def test_unknown_width():
    x = cr.placeholder("x", (4, None), "float64")
    f = cr.function([x], [cr.exp(x) - x], **OPTS)
    assert "libmvec.exp(" in f.source
    for width in (0, 1, 5, 129, 600):
        a = np.random.default_rng(width).standard_normal((4, width))
        _close(f(a)[0], np.exp(a) - a, "float64")


def test_a_function_and_its_sum_are_one_loop():
    x = cr.placeholder("x", (7, 300), "float32")
    f = cr.function([x], [cr.exp(x).sum(axis=1)], **OPTS)
    assert "# exp, sum(axis=1)" in f.source
    a = np.random.default_rng(9).standard_normal((7, 300)).astype(np.float32)
    np.testing.assert_allclose(f(a)[0], np.exp(a.astype(np.float64)).sum(axis=1), rtol=2e-5)


def test_a_chain_of_functions_alone_is_not_a_loop():
    """Copies into and out of buffers around libmvec's calls would only add
    work to its own kernels: such a group stays NumPy statements."""
    x = cr.placeholder("x", (6, 9), "float64")
    f = cr.function([x], [cr.tan(cr.log(x))], **OPTS)
    assert "_fused" not in f.source and "np.log(" in f.source


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_libmvec_functions_check_their_arguments(dtype):
    """The functions generated loops call, used by hand: in place with a
    tail, sizes that differ, a strided view (a typing error: the vector
    function reads raw memory)."""
    import numba
    from chainrule.backends.vecmath import libmvec

    @numba.njit
    def call(a, o):
        libmvec.tanh(a, o)

    for n in (1, 3, 6, 9, 17):
        a = np.linspace(-2, 2, n).astype(dtype)
        b = a.copy()
        call(b, b)  # in place: the tail must not be computed twice
        np.testing.assert_allclose(b, np.tanh(a), **ULPS[dtype])
    with pytest.raises(ValueError, match="sizes differ"):
        call(np.zeros(9, dtype), np.zeros(8, dtype))
    buf = np.linspace(0, 1, 10).astype(dtype)
    with pytest.raises(ValueError, match="overlaps"):  # one element apart
        call(buf[0:9], buf[1:10])
    with pytest.raises(numba.core.errors.TypingError):
        call(np.zeros(18, dtype)[::2], np.zeros(9, dtype))
