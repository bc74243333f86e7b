"""vecmath="libmvec": glibc's vectorised math functions through Numba.

Expected values are NumPy's own functions (an independent implementation:
the C library's scalar functions or NumPy's SIMD code); libmvec and NumPy are
each documented to within 4 ulp of the exact result, so they may differ by 8.
"""

import sys
import threading

import numpy as np
import pytest

import chainrule as cr
from chainrule.backends import vecmath
from chainrule.errors import ChainruleError
from conftest import why_no_libmvec


WHY = why_no_libmvec()
needs_libmvec = pytest.mark.skipif(WHY is not None, reason=f"libmvec unavailable: {WHY}")

DOMAINS = {  # where each function is finite and not tiny: (low, high)
    "exp": (-700, 700), "exp2": (-1000, 1000), "expm1": (-40, 700),
    "log": (1e-300, 1e300), "log2": (1e-300, 1e300), "log10": (1e-300, 1e300),
    "log1p": (-0.999, 1e300),
    "sin": (-1e4, 1e4), "cos": (-1e4, 1e4), "tan": (-1.5, 1.5),
    "arcsin": (-1, 1), "arccos": (-1, 1), "arctan": (-1e10, 1e10),
    "sinh": (-700, 700), "cosh": (-700, 700), "tanh": (-20, 20),
    "arcsinh": (-1e300, 1e300), "arccosh": (1, 1e300), "arctanh": (-0.999, 0.999),
    "cbrt": (-1e300, 1e300),
}
F32_DOMAINS = {"exp": (-80, 80), "exp2": (-120, 120), "expm1": (-40, 80), "sinh": (-80, 80),
               "cosh": (-80, 80)}
SPECIAL = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0, 5e-324, -5e-324, 1e-310,
           1e-20, -1e-20, 0.5, 2.0, 1e300, -1e300, 710.0, -746.0, 1e6, 3.0e38, -3.0e38]


def _sample(name, dtype, n, seed=0):
    rng = np.random.default_rng(seed)
    lo, hi = (F32_DOMAINS.get(name) if dtype == np.float32 else None) or DOMAINS[name]
    if dtype == np.float32:  # within float32's range
        hi, lo = min(hi, 1e38), (max(lo, 1e-37) if lo > 0 else max(lo, -1e38))
    if lo > 0 and hi / lo > 1e6:  # a wide positive range: spread the exponent
        a = np.exp(rng.uniform(np.log(lo), np.log(hi), n))
    elif lo < 0 < hi and hi > 1e6:
        a = np.clip(np.exp(rng.uniform(-20, np.log(hi), n)) * rng.choice([-1.0, 1.0], n),
                    lo, hi)
    else:
        a = rng.uniform(lo, hi, n)
    return a.astype(dtype)


def _ulps(got, want):
    """Distance in units in the last place of ``want`` (0 where both agree)."""
    with np.errstate(invalid="ignore"):
        d = np.abs(got.astype(np.float64) - want.astype(np.float64))
        return np.where(got == want, 0, d / np.spacing(np.abs(want)).astype(np.float64))


def _same_classes(got, want):
    """NaN where NumPy gives NaN, the same infinities, the same signed zeros."""
    assert np.array_equal(np.isnan(got), np.isnan(want))
    inf = np.isinf(want)
    assert np.array_equal(np.isinf(got), inf)
    assert np.array_equal(got[inf], want[inf])
    zero = want == 0
    assert np.array_equal(got[zero] == 0, np.ones(zero.sum(), bool))
    assert np.array_equal(np.signbit(got[zero]), np.signbit(want[zero]))


@needs_libmvec
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("name", sorted(vecmath.FUNCTIONS))
def test_kernel_matches_numpy(name, dtype):
    a = _sample(name, dtype, 4099)  # 4099: a tail after the last full vector
    kernel = vecmath._kernel(name, np.dtype(dtype))
    got = vecmath.run_kernel(kernel, a, np.empty_like(a))
    want = getattr(np, name)(a)
    assert got.dtype == want.dtype
    assert np.all(np.isfinite(want))
    assert _ulps(got, want).max() <= 8, name


@needs_libmvec
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("name", sorted(vecmath.FUNCTIONS))
def test_special_values_match_numpy(name, dtype):
    with np.errstate(all="ignore"):
        a = np.tile(np.array(SPECIAL).astype(dtype), 200)  # well above MIN_SIZE
        want = getattr(np, name)(a)
    got = getattr(vecmath.np, name)(a)
    _same_classes(got, want)
    finite = np.isfinite(want) & (want != 0)
    assert _ulps(got[finite], want[finite]).max() <= 8, name


@needs_libmvec
@pytest.mark.parametrize("lanes_extra", range(9))
def test_tail_lengths(lanes_extra):
    """Every length of the tail (after whole vectors of 4 or 8 lanes): the
    padded tail gives the same value as the same element in a full vector."""
    for dtype in (np.float64, np.float32):
        full = _sample("tanh", dtype, 64, seed=1)
        a = full[:48 + lanes_extra].copy()
        out_full, out = np.empty_like(full), np.empty_like(a)
        kernel = vecmath._kernel("tanh", np.dtype(dtype))
        vecmath.run_kernel(kernel, full, out_full)
        vecmath.run_kernel(kernel, a, out)
        assert np.array_equal(out, out_full[:a.size])


@needs_libmvec
def test_wrapper_uses_numpy_when_the_kernel_would_differ():
    np_ = vecmath.np
    a = _sample("tanh", np.float64, 3000).reshape(30, 100)
    # not contiguous, too small, integer, keyword arguments, 0-d: NumPy's exact answer
    for x, kw in ((a[:, ::2], {}), (a[:2, :10].copy(), {}), (np.arange(400), {}),
                  (a, {"dtype": np.float32}),
                  (np.float64(0.3), {}), (np.array(0.3), {}), (a.astype(">f8"), {})):
        got, want = np_.tanh(x, **kw), np.tanh(x, **kw)
        assert type(got) is type(want) and got.dtype == want.dtype
        assert np.array_equal(got, want)
    o1, o2 = np.full_like(a, 7.0), np.full_like(a, 7.0)
    assert np_.tanh(a, out=o1, where=a > 0) is o1
    np.tanh(a, out=o2, where=a > 0)
    assert np.array_equal(o1, o2)  # where= leaves the other elements alone
    # an output that overlaps the input without being it: NumPy's exact answer
    b = a.reshape(-1).copy()
    want = np.tanh(b[:-1])
    got = np_.tanh(b[:-1], out=b[1:])
    assert got is not None and np.array_equal(b[1:], want)
    # an output of another dtype: NumPy casts
    o32 = np.empty(a.shape, np.float32)
    assert np.array_equal(np_.tanh(a, out=o32), np.tanh(a, out=np.empty_like(o32)))
    # a read-only output: NumPy's error
    ro = np.empty_like(a)
    ro.flags.writeable = False
    with pytest.raises(ValueError):
        np_.tanh(a, out=ro)
    # anything else of NumPy's is NumPy's
    assert np_.add is np.add and np_.float64 is np.float64 and np_.linalg is np.linalg


@needs_libmvec
def test_wrapper_in_place_and_fresh_outputs():
    a = _sample("exp", np.float64, 5001).reshape(3, 1667)
    want = vecmath.np.exp(a)
    assert want.shape == a.shape and want.dtype == a.dtype and want.flags.c_contiguous
    assert _ulps(want, np.exp(a)).max() <= 8
    b = a.copy()
    assert vecmath.np.exp(b, out=b) is b
    assert np.array_equal(b, want)  # in place: the same values as a fresh output
    c = np.empty_like(a)
    assert vecmath.np.exp(a, out=c) is c and np.array_equal(c, want)


@needs_libmvec
def test_threads():
    """The kernels release the GIL and share no state: threads get their own
    answers, and threads that all need a kernel first build it once."""
    table = vecmath._kernels["sin"]
    saved = dict(table)
    table.clear()  # each thread's first call compiles, or waits for another's
    try:
        arrays = [_sample("sin", np.float64, 20000, seed=s) for s in range(4)]
        got = [None] * 4

        def work(k):
            for _ in range(20):
                got[k] = vecmath.np.sin(arrays[k])

        threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert list(table) == [np.dtype(np.float64)]
        for a, g in zip(arrays, got):
            assert _ulps(g, np.sin(a)).max() <= 8
    finally:
        table.clear()
        table.update(saved)


@needs_libmvec
def test_read_only_inputs_use_the_compiled_kernel():
    """cr.function compiles every kernel before it returns: a read-only
    input (np.frombuffer, a constant) needs no second compilation."""
    kernel = vecmath._kernel("cosh", np.dtype(np.float64))
    a = np.linspace(-3, 3, 1000)
    a.flags.writeable = False
    got = vecmath.np.cosh(a)
    assert len(kernel.signatures) == 1
    assert _ulps(got, np.cosh(a)).max() <= 8
    assert not a.flags.writeable and vecmath.np.cosh(np.ones(1000)).flags.writeable


@needs_libmvec
def test_a_kernel_that_gives_garbage_is_refused():
    """What a wrong calling convention would do (Numba compiling for a CPU
    without AVX): lanes 2 and up are garbage. The self-test refuses it."""
    def garbage(a, o):
        o[:4] = np.tanh(a[:4])
        o[4:] = 0.125

    with pytest.raises(ChainruleError, match="gave wrong values.*NUMBA_CPU_NAME"):
        vecmath._self_test(garbage, "tanh", np.dtype(np.float64), 4)
    vecmath._self_test(lambda a, o: np.tanh(a, out=o), "tanh", np.dtype(np.float64), 4)


def _mlp(vecmath_choice, dtype="float64", blas=None):
    rng = np.random.default_rng(3)
    x = cr.placeholder("x", (64, 30), dtype)
    y = cr.placeholder("y", (64, 5), dtype)
    params = [cr.parameter((rng.standard_normal(s) * 0.3).astype(dtype), n)
              for s, n in (((30, 40), "W1"), ((40,), "b1"), ((40, 5), "W2"), ((5,), "b2"))]
    h = cr.tanh(x @ params[0] + params[1])
    loss = -(cr.log_softmax(h @ params[2] + params[3]) * y).sum(axis=1).mean()
    grads = cr.grad(loss, params)
    f = cr.function([x, y], [loss] + grads,
                    updates={p: p - 0.1 * g for p, g in zip(params, grads)},
                    vecmath=vecmath_choice, blas=blas)
    xv = rng.standard_normal((64, 30)).astype(dtype)
    yv = np.eye(5, dtype=dtype)[rng.integers(0, 5, 64)]
    return f, params, xv, yv


@needs_libmvec
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_train_steps_match_numpy_functions(dtype):
    f0, p0, x, y = _mlp(None, dtype)
    f1, p1, _, _ = _mlp("libmvec", dtype)
    assert "from chainrule.backends.vecmath import np" in f1.source
    assert "import numpy as np" not in f1.source
    tol = 1e-5 if dtype == "float32" else 1e-12
    for _ in range(5):
        for a, b in zip(f0(x, y), f1(x, y)):
            np.testing.assert_allclose(b, a, rtol=tol, atol=tol)
    for a, b in zip(p0, p1):
        np.testing.assert_allclose(b.value, a.value, rtol=tol, atol=tol)


@needs_libmvec
def test_kernels_run_inside_generated_code():
    """The call goes through a kernel: libmvec's float64 tanh differs from
    NumPy's in the last bit somewhere in a large sample."""
    a = _sample("tanh", np.float64, 100000, seed=7)
    x = cr.placeholder("x", a.shape)
    f = cr.function([x], cr.tanh(x), vecmath="libmvec")
    got = f(a)
    assert not np.array_equal(got, np.tanh(a))
    assert _ulps(got, np.tanh(a)).max() <= 8


@needs_libmvec
def test_source_runs_on_its_own():
    x = cr.placeholder("x", (500,))
    f = cr.function([x], cr.log1p(cr.exp(x)), vecmath="libmvec")
    ns = {}
    exec(f.source, ns)
    a = np.linspace(-5, 5, 500)
    outs, _ = ns["compiled"](a)
    np.testing.assert_allclose(outs[0], np.log1p(np.exp(a)), rtol=1e-14)


def test_interpreter_ignores_vecmath_and_bad_choices_are_named():
    x = cr.placeholder("x", (3,))
    f = cr.function([x], cr.tanh(x), backend="interpreter", vecmath="libmvec")
    assert np.array_equal(f(np.ones(3)), np.tanh(np.ones(3)))
    with pytest.raises(ChainruleError, match="vecmath='fast' is not a choice"):
        cr.function([x], cr.tanh(x), vecmath="fast")


def test_missing_numba_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(vecmath, "_state", {})
    monkeypatch.setitem(sys.modules, "numba", None)  # import numba raises ImportError
    x = cr.placeholder("x", (3,))
    with pytest.raises(ChainruleError, match="pip install numba"):
        cr.function([x], cr.tanh(x), vecmath="libmvec")


def test_broken_numba_and_disabled_jit_are_clear_errors(monkeypatch, tmp_path):
    numba = pytest.importorskip("numba")
    x = cr.placeholder("x", (3,))
    monkeypatch.setattr(vecmath, "_state", {})
    monkeypatch.setattr(numba.config, "DISABLE_JIT", 1)
    with pytest.raises(ChainruleError, match="NUMBA_DISABLE_JIT"):
        cr.function([x], cr.tanh(x), vecmath="libmvec")
    (tmp_path / "numba").mkdir()
    (tmp_path / "numba" / "__init__.py").write_text(
        "raise ImportError('Numba needs NumPy 1.0 or less')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "numba")
    with pytest.raises(ChainruleError, match=r"could not be imported \(Numba needs NumPy"):
        cr.function([x], cr.tanh(x), vecmath="libmvec")


def test_missing_libmvec_is_a_clear_error(monkeypatch):
    pytest.importorskip("numba")
    monkeypatch.setattr(vecmath, "_state", {})
    monkeypatch.setattr(vecmath, "_find_libmvec", lambda: None)
    monkeypatch.setattr(vecmath.sys, "platform", "linux")
    x = cr.placeholder("x", (3,))
    with pytest.raises(ChainruleError, match="no libmvec"):
        cr.function([x], cr.tanh(x), vecmath="libmvec")
