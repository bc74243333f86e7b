"""``cr.function(..., blas="scipy")`` and ``blas="numpy"``: parameter updates
``p - A @ B`` run as one in-place BLAS gemm, through SciPy's BLAS wrappers or
through NumPy's own BLAS called directly (:mod:`chainrule.backends.cblas`).
Every case is compared with the interpreter (which never fuses nor reuses
memory) over several calls, including the cases where fusing would be wrong
and must not happen (the product reads the state it would write, the
product is also an output). The helpers themselves (SciPy's pasted
``_gemm_update``, ``cblas.gemm_update``) are checked on their BLAS paths and
their NumPy fallbacks against NumPy's own product."""

from __future__ import annotations

import builtins
import importlib

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import chainrule as cr
from chainrule.backends import cblas
from chainrule.backends.buffers import MIN_ELEMENTS
from conftest import mlp_step_reference

N = 96  # N * N >= MIN_ELEMENTS: large enough for in-place updates
assert N * N >= MIN_ELEMENTS


def _numpy_blas_missing():
    """Why blas='numpy' cannot run here (None if it can)."""
    try:
        cblas.check_available()
    except cr.ChainruleError as exc:
        return str(exc)
    return None


NUMPY_BLAS_MISSING = _numpy_blas_missing()
try:
    importlib.import_module("scipy.linalg.blas")
    HAVE_SCIPY = True
except ImportError:
    HAVE_SCIPY = False

needs_scipy = pytest.mark.skipif(not HAVE_SCIPY, reason="SciPy is not installed")
needs_numpy_blas = pytest.mark.skipif(NUMPY_BLAS_MISSING is not None,
                                      reason=f"no NumPy BLAS: {NUMPY_BLAS_MISSING}")

# Both ways to fuse; a test parametrized over CHOICES runs each one that can
# run here ("scipy" needs SciPy, "numpy" a BLAS library cblas can find).
CHOICES = [pytest.param("scipy", marks=needs_scipy, id="scipy"),
           pytest.param("numpy", marks=needs_numpy_blas, id="numpy")]
each_blas = pytest.mark.parametrize("blas", CHOICES)

# How each choice puts ``_gemm_update`` into the generated module: SciPy's
# helper is pasted in whole (a ``def``), NumPy's is one import.
_HELPER_MARK = {"scipy": "def _gemm_update(c, a, b, alpha):",
                "numpy": "from chainrule.backends.cblas import gemm_update as _gemm_update"}


def _gemm_calls(source, blas):
    """Number of fused updates in the generated source: the calls to
    ``_gemm_update`` in the function's body (not the helper's own ``def``,
    nor the import), after checking the helper appears exactly once if
    called at all."""
    head, sep, body = source.partition("\ndef compiled(")
    assert sep, source
    calls = body.count("_gemm_update(")
    assert head.count(_HELPER_MARK[blas]) == (1 if calls else 0), source
    assert _HELPER_MARK[{"scipy": "numpy", "numpy": "scipy"}[blas]] not in source, source
    return calls


def _param(seed, shape=(N, N), dtype="float64", name="P"):
    value = np.random.default_rng(seed).standard_normal(shape).astype(dtype) * 0.1
    return cr.parameter(value, name)


def _same_steps(inputs, outputs, update_of, params, feeds, blas, dtype="float64", fused=1):
    """Run ``blas`` (with ``fused`` fused updates; None: any number) and the
    interpreter from the same state for each feed; compare outputs and the
    parameters' states after each call."""
    f = cr.function(inputs, outputs, updates=update_of, blas=blas)
    ref = cr.function(inputs, outputs, updates=update_of, backend="interpreter")
    calls = _gemm_calls(f.source, blas)
    if fused is not None:
        assert calls == fused, f.source
    tol = dict(rtol=2e-5, atol=1e-6) if dtype == "float32" else dict(rtol=1e-11, atol=1e-13)
    for feed in feeds:
        start = [p.value for p in params]
        got = [np.array(o) for o in f(*feed)]
        after = [p.value for p in params]
        for p, v in zip(params, start):
            p.set_value(v)
        want = [np.array(o) for o in ref(*feed)]
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, **tol)
        for p, a in zip(params, after):
            np.testing.assert_allclose(a, p.value, **tol)
            assert a.dtype == p.value.dtype
    return f


@each_blas
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_mlp_train_steps_match_hand_written_numpy(dtype, blas):
    r = np.random.default_rng(3)
    x = cr.placeholder("x", (128, N), dtype)
    y = cr.placeholder("y", (128, 10), dtype)
    W1 = _param(1, (N, N), dtype, "W1")
    W2 = _param(2, (N, 10), dtype, "W2")
    h = cr.tanh(x @ W1)
    loss = -(cr.log_softmax(h @ W2) * y).sum(axis=1).mean()
    g1, g2 = cr.grad(loss, [W1, W2])
    f = cr.function([x, y], loss, updates={W1: W1 - 0.1 * g1, W2: W2 - 0.1 * g2},
                    blas=blas)
    assert "_gemm_update(W1, " in f.source  # W2 (N x 10) is too small to be worth it
    w1, w2 = W1.value.astype("float64"), W2.value.astype("float64")
    xv = r.standard_normal((128, N)).astype(dtype)
    yv = np.eye(10, dtype=dtype)[r.integers(0, 10, 128)]
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == "float32" else dict(rtol=1e-10, atol=1e-12)
    for _ in range(3):
        want, w1, w2 = mlp_step_reference(xv, yv, w1, w2)
        np.testing.assert_allclose(f(xv, yv), want, **tol)
        np.testing.assert_allclose(W1.value, w1, **tol)
        np.testing.assert_allclose(W2.value, w2, **tol)
        assert W1.value.dtype == dtype


@each_blas
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("form", ["p - a @ b", "p + a @ b", "a @ b + p"])
@pytest.mark.parametrize("layout", ["C", "transposed", "strided"])
def test_update_forms_and_operand_layouts(dtype, form, layout, blas):
    """alpha = -1 and +1, and operands that are C-ordered, Fortran-ordered
    (a transposed view: BLAS gets a transpose flag) or neither (SciPy
    copies; NumPy's BLAS is not called, NumPy computes the update)."""
    a_in = cr.placeholder("a", (N, 40) if layout != "transposed" else (40, N), dtype)
    b_in = cr.placeholder("b", (40, N) if layout != "strided" else (80, N), dtype)
    a = a_in.T if layout == "transposed" else a_in
    b = b_in[::2] if layout == "strided" else b_in
    P = _param(4, (N, N), dtype)
    prod = a @ b
    new = {"p - a @ b": P - prod, "p + a @ b": P + prod, "a @ b + p": prod + P}[form]
    r = np.random.default_rng(5)
    feeds = [(r.standard_normal(a_in.shape).astype(dtype),
              r.standard_normal(b_in.shape).astype(dtype)) for _ in range(3)]
    out = cr.sum(a_in) + cr.sum(b_in)
    _same_steps([a_in, b_in], [out], {P: new}, [P], feeds, blas, dtype)


@each_blas
def test_rectangular_parameter_and_its_old_value_as_output(blas):
    """A (N, 2N) parameter; the old value is also returned, so it must be
    read (copied) before the state is overwritten."""
    x = cr.placeholder("x", (30, N))
    g = cr.placeholder("g", (30, 2 * N))
    P = _param(6, (N, 2 * N))
    r = np.random.default_rng(7)
    feeds = [(r.standard_normal((30, N)), r.standard_normal((30, 2 * N))) for _ in range(3)]
    _same_steps([x, g], [P * 1.0, cr.sum(P)], {P: P - x.T @ g}, [P], feeds, blas, fused=0)
    f = cr.function([x, g], [cr.sum(x)], updates={P: P - x.T @ g}, blas=blas)
    assert "_gemm_update(P, " in f.source


@each_blas
def test_product_that_reads_the_state_is_not_fused(blas):
    """P - P.T @ G reads P while it would be written: computed apart."""
    G = cr.placeholder("G", (N, N))
    P = _param(8)
    r = np.random.default_rng(9)
    feeds = [(r.standard_normal((N, N)),) for _ in range(3)]
    _same_steps([G], [cr.sum(G)], {P: P - P.T @ G * 0.01}, [P], feeds, blas, fused=0)
    _same_steps([G], [cr.sum(G)], {P: P - P.T @ G}, [P], feeds, blas, fused=0)


@each_blas
def test_product_that_is_also_an_output_is_not_fused(blas):
    x = cr.placeholder("x", (N, N))
    P = _param(10)
    prod = x.T @ x
    r = np.random.default_rng(11)
    feeds = [(r.standard_normal((N, N)),) for _ in range(2)]
    _same_steps([x], [prod], {P: P - prod}, [P], feeds, blas, fused=0)


@each_blas
def test_two_parameters_fed_by_products_of_each_other(blas):
    """Each update's product reads the other parameter's old value: the
    updates must not see each other's new values (a swap-like case)."""
    A, B = _param(12, name="A"), _param(13, name="B")
    x = cr.placeholder("x", (N, N))
    r = np.random.default_rng(14)
    feeds = [(r.standard_normal((N, N)),) for _ in range(3)]
    upd = {A: A - 0.01 * (B @ x), B: B - 0.01 * (A @ x)}
    f = cr.function([x], [cr.sum(x)], updates=upd, blas=blas)
    _gemm_calls(f.source, blas)  # the helper is there once if used (how many fuse: any)
    ref = cr.function([x], [cr.sum(x)], updates=upd, backend="interpreter")
    for (xv,) in feeds:
        a0, b0 = A.value, B.value
        f(xv)
        got = A.value, B.value
        A.set_value(a0)
        B.set_value(b0)
        ref(xv)
        np.testing.assert_allclose(got[0], A.value, rtol=1e-12)
        np.testing.assert_allclose(got[1], B.value, rtol=1e-12)
        np.testing.assert_allclose(A.value, a0 - 0.01 * (b0 @ xv), rtol=1e-12)


def test_default_source_uses_numpy_alone():
    x = cr.placeholder("x", (N, N))
    P = _param(15)
    f = cr.function([x], [cr.sum(x)], updates={P: P - x.T @ x})
    assert "scipy" not in f.source and "_gemm_update" not in f.source
    assert "cblas" not in f.source


def test_bad_choice_lists_the_choices():
    """An unknown choice names itself and every choice there is."""
    x = cr.placeholder("x", (N, N))
    P = _param(16)
    for backend in ("numpy", "interpreter"):
        with pytest.raises(cr.ChainruleError, match="blas='mkl' is not a choice") as err:
            cr.function([x], [cr.sum(x)], updates={P: P - x @ x}, backend=backend,
                        blas="mkl")
        assert "'numpy'" in str(err.value) and "'scipy'" in str(err.value)
        assert "None" in str(err.value)


def test_missing_scipy(monkeypatch):
    """Without SciPy, blas='scipy' says how to get it; blas='numpy' needs no
    SciPy and still fuses and updates (checked against NumPy)."""
    x = cr.placeholder("x", (N, N))
    P = _param(16)
    real_import = builtins.__import__

    def no_scipy(name, *args, **kwargs):
        if name.startswith("scipy"):
            raise ImportError("No module named 'scipy'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_scipy)
    with pytest.raises(cr.ChainruleError, match="pip install scipy"):
        cr.function([x], [cr.sum(x)], updates={P: P - x @ x}, blas="scipy")
    if NUMPY_BLAS_MISSING is not None:
        pytest.skip(f"no NumPy BLAS: {NUMPY_BLAS_MISSING}")
    f = cr.function([x], [cr.sum(x)], updates={P: P - 0.5 * (x.T @ x)}, blas="numpy")
    assert "scipy" not in f.source and _gemm_calls(f.source, "numpy") == 1
    xv = np.random.default_rng(18).standard_normal((N, N))
    p0 = P.value
    f(xv)
    np.testing.assert_allclose(P.value, p0 - 0.5 * (xv.T @ xv), rtol=1e-12, atol=1e-12)


def test_numpy_blas_not_found_suggests_scipy(monkeypatch):
    """No BLAS library found (none loaded, none next to NumPy, or a path that
    does not load): blas='numpy' fails when compiling, naming blas='scipy'
    as the alternative, and ``gemm_update`` itself falls back to NumPy. The
    library cblas found before is cached in ``_state``: the test works on
    an empty copy and leaves the real cache as it was."""
    x = cr.placeholder("x", (N, N))
    P = _param(19)
    saved = cblas._state
    before = dict(saved)
    with monkeypatch.context() as m:
        m.setattr(cblas, "_state", {})
        m.setattr(cblas, "_libraries", lambda: ["/nonexistent/libopenblas.so"])
        with pytest.raises(cr.ChainruleError, match="blas='scipy'") as err:
            cr.function([x], [cr.sum(x)], updates={P: P - x.T @ x}, blas="numpy")
        assert "blas='numpy'" in str(err.value) and "cblas_sgemm" in str(err.value)
        assert cblas.library() is None
        with pytest.raises(cr.ChainruleError, match="blas='scipy'"):  # asked again
            cblas.check_available()
        r = np.random.default_rng(20)
        c, a, b = r.standard_normal((5, 4)), r.standard_normal((5, 3)), r.standard_normal((3, 4))
        want = c + 0.5 * (a @ b)
        got = cblas.gemm_update(c, a, b, 0.5)
        assert got is c
        np.testing.assert_allclose(c, want, rtol=1e-12, atol=1e-12)
    assert cblas._state is saved and cblas._state == before  # restored, untouched
    if NUMPY_BLAS_MISSING is None:  # and blas='numpy' works again
        f = cr.function([x], [cr.sum(x)], updates={P: P - x.T @ x}, blas="numpy")
        assert _gemm_calls(f.source, "numpy") == 1


@each_blas
def test_interpreter_ignores_the_option(blas):
    x = cr.placeholder("x", (N, N))
    P = _param(17)
    f = cr.function([x], [cr.sum(x)], updates={P: P - x @ x}, backend="interpreter",
                    blas=blas)
    assert f.source is None


_OPERANDS = {
    "x": lambda x, P, Q: x, "x.T": lambda x, P, Q: x.T, "x[::-1]": lambda x, P, Q: x[::-1],
    "P": lambda x, P, Q: P, "P.T": lambda x, P, Q: P.T, "Q": lambda x, P, Q: Q,
    "tanh(x)": lambda x, P, Q: cr.tanh(x), "P*2": lambda x, P, Q: P * 2.0,
    "-Q.T": lambda x, P, Q: -Q.T,
}


@each_blas
@settings(max_examples=60, deadline=None)
@given(st.sampled_from(sorted(_OPERANDS)), st.sampled_from(sorted(_OPERANDS)),
       st.sampled_from(["-", "+", "+r"]), st.sampled_from([None, 0.5, -0.01]),
       st.booleans(), st.booleans())
def test_random_update_forms_agree_with_the_interpreter(blas, a, b, sign, scale, also_q,
                                                        out_p):
    """Updates p ± [c *] (A @ B) with operands drawn from views of the input,
    of p itself, of another parameter Q that is updated too, and fresh
    arrays; optionally p's old value is an output. Whatever gets fused, the
    numbers are the interpreter's, call after call."""
    x = cr.placeholder("x", (N, N))
    P, Q = _param(20, name="P"), _param(21, name="Q")
    prod = _OPERANDS[a](x, P, Q) @ _OPERANDS[b](x, P, Q)
    term = prod if scale is None else prod * scale
    new_p = {"-": P - term, "+": P + term, "+r": term + P}[sign]
    upd = {P: new_p}
    if also_q:
        upd[Q] = Q - 0.01 * (P.T @ x)
    outs = [cr.sum(x)] + ([P * 1.0] if out_p else [])
    r = np.random.default_rng(22)
    feeds = [(r.standard_normal((N, N)) * 0.1,) for _ in range(2)]
    _same_steps([x], outs, upd, [P, Q], feeds, blas, fused=None)


_BLAS_CASES = ["C", "F-order b", "transposed a", "F-order c", "F-order c, a.T, F b"]
_FALLBACK_CASES = ["aliased", "non-contiguous", "dtypes", "empty-k"]


@needs_scipy
@pytest.mark.parametrize("case", _BLAS_CASES + _FALLBACK_CASES)
@pytest.mark.parametrize("alpha", [-1.0, -0.1, 0.5])
def test_helper_fast_path_and_fallback(case, alpha):
    """The generated helper itself, on inputs that take its BLAS path (c
    C- or Fortran-ordered, operands in either order: BLAS writes c's own
    memory) and on those that take the NumPy fallback: c + alpha * (a @ b)
    either way."""
    from scipy.linalg import blas

    from chainrule.backends.gemm import HELPER
    calls = []

    class Spy:  # records that BLAS was called, and on which memory
        def __getattr__(self, name):
            def call(*args, **kwargs):
                calls.append(kwargs["c"])
                return getattr(blas, name)(*args, **kwargs)
            return call

    namespace = {"np": np}
    exec(HELPER, namespace)
    namespace["_blas"] = Spy()
    gemm_update = namespace["_gemm_update"]
    r = np.random.default_rng(30)
    c = r.standard_normal((50, 40))
    a, b = r.standard_normal((50, 30)), r.standard_normal((30, 40))
    if case == "aliased":          # a reads c's own memory
        a, b = c[:, :30], r.standard_normal((30, 40))
    elif case == "non-contiguous":
        big = r.standard_normal((50, 80))
        c = big[:, ::2]
    elif case == "dtypes":
        a = a.astype(np.float32)
    elif case == "empty-k":
        a, b = np.zeros((50, 0)), np.zeros((0, 40))
    elif case == "F-order b":
        b = np.asfortranarray(b)
    elif case == "transposed a":
        a = r.standard_normal((30, 50)).T
    elif case == "F-order c":
        c = np.asfortranarray(c)
    elif case == "F-order c, a.T, F b":
        c, a, b = np.asfortranarray(c), r.standard_normal((30, 50)).T, np.asfortranarray(b)
    want = c + alpha * (a @ b)
    got = gemm_update(c, a, b, alpha)
    assert got is c
    np.testing.assert_allclose(c, want, rtol=1e-12, atol=1e-12)
    if case in _BLAS_CASES:
        assert len(calls) == 1 and np.shares_memory(calls[0], c)
    else:
        assert not calls


# ``cblas.gemm_update``, NumPy's own BLAS through ctypes: the same cases, and
# the ones only a direct call can build (it is public, and unlike SciPy's
# wrappers checks every layout itself, so nothing may reach BLAS that it
# would misread).
_CBLAS_CASES = _BLAS_CASES + ["0-d alpha"]
_CBLAS_FALLBACK_CASES = [
    "aliased a", "aliased b", "overlapping a", "non-contiguous c", "strided a", "dtypes", "empty-k",
    "byte-swapped", "unaligned a", "unaligned c", "alpha nan", "alpha inf", "alpha 0",
    "subclass"]


@pytest.fixture
def gemm_calls(monkeypatch):
    """NumPy's BLAS with a spy on its gemm functions: the list of the
    addresses of the ``c`` each call wrote (an empty list: BLAS never ran).
    The found functions are swapped in ``cblas._state`` for this test only."""
    if NUMPY_BLAS_MISSING is not None:
        pytest.skip(f"no NumPy BLAS: {NUMPY_BLAS_MISSING}")
    calls = []

    def spy(fn):
        def call(*args):
            calls.append(args[12])  # cblas_?gemm(..., beta, C, ldc): C's address
            return fn(*args)
        return call

    real = cblas._state["gemm"]
    monkeypatch.setitem(cblas._state, "gemm", {char: spy(fn) if char in "fd" else fn
                                               for char, fn in real.items()})
    return calls


def _unaligned(shape, dtype, rng):
    """A C-ordered array of ``shape`` starting one byte past an aligned
    address (NumPy computes with it; BLAS must not get it)."""
    dtype = np.dtype(dtype)
    raw = np.empty(int(np.prod(shape)) * dtype.itemsize + 1, np.uint8)
    x = raw[1:].view(dtype).reshape(shape)
    x[...] = rng.standard_normal(shape)
    assert not x.flags.aligned
    return x


def _cblas_operands(case, dtype, sign):
    """(c, a, b, alpha) for ``case``: c (50, 40) and k = 30 unless the case
    says otherwise, alpha ``sign * 0.5`` unless the case is about alpha."""
    r = np.random.default_rng(33)
    c = r.standard_normal((50, 40)).astype(dtype)
    a, b = r.standard_normal((50, 30)).astype(dtype), r.standard_normal((30, 40)).astype(dtype)
    alpha = sign * 0.5
    other = np.float64 if dtype == "float32" else np.float32
    if case == "F-order b":
        b = np.asfortranarray(b)
    elif case == "transposed a":
        a = r.standard_normal((30, 50)).astype(dtype).T
    elif case == "F-order c":
        c = np.asfortranarray(c)
    elif case == "F-order c, a.T, F b":
        c, a, b = np.asfortranarray(c), r.standard_normal((30, 50)).astype(dtype).T, \
            np.asfortranarray(b)
    elif case == "0-d alpha":      # a run-time learning rate may come as one
        alpha = np.array(sign * 0.25, dtype)
    # operands reading c's own memory, each laid out as BLAS could read it:
    # only the check for shared memory keeps them from BLAS
    elif case == "aliased a":      # c - c @ b
        a, b = c, r.standard_normal((40, 40)).astype(dtype)
    elif case == "aliased b":      # c's transpose, Fortran-ordered
        c = r.standard_normal((40, 40)).astype(dtype)
        a, b = r.standard_normal((40, 40)).astype(dtype), c.T
    elif case == "overlapping a":  # rows 10..59 of a buffer whose rows 0..49 are a
        big = r.standard_normal((60, 40)).astype(dtype)
        c, a, b = big[10:], big[:50], r.standard_normal((40, 40)).astype(dtype)
    elif case == "non-contiguous c":
        c = r.standard_normal((50, 80)).astype(dtype)[:, ::2]
    elif case == "strided a":
        a = r.standard_normal((100, 30)).astype(dtype)[::2]
    elif case == "dtypes":
        a = a.astype(other)
    elif case == "empty-k":
        a, b = np.zeros((50, 0), dtype), np.zeros((0, 40), dtype)
    elif case == "byte-swapped":   # all three alike: the dtypes compare equal
        swapped = np.dtype(dtype).newbyteorder()
        c, a, b = c.astype(swapped), a.astype(swapped), b.astype(swapped)
    elif case == "unaligned a":
        a = _unaligned(a.shape, dtype, r)
    elif case == "unaligned c":
        c = _unaligned(c.shape, dtype, r)
    elif case.startswith("alpha "):
        # a row of zeros in a @ b (inf * 0 is NaN there), and a NaN in b
        # (0 * NaN is NaN): BLAS may skip a product scaled by 0, NumPy does not
        a[7] = 0.0
        b[3, 5] = np.nan
        alpha = sign * {"alpha nan": np.nan, "alpha inf": np.inf, "alpha 0": 0.0}[case]
    elif case == "subclass":
        c = c.view(np.matrix)
    return c, a, b, alpha


def _fits_blas(c, a, b):
    """What BLAS needs, spelled out by hand (a check on the test's cases)."""
    def plain(x):
        return (x.dtype.isnative and x.flags.aligned
                and (x.flags.c_contiguous or x.flags.f_contiguous))
    return (plain(c) and plain(a) and plain(b) and c.flags.writeable
            and a.dtype == b.dtype == c.dtype and a.shape[1] > 0
            and not (np.shares_memory(c, a) or np.shares_memory(c, b)))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", _CBLAS_CASES + _CBLAS_FALLBACK_CASES)
@pytest.mark.parametrize("sign", [-1.0, 1.0])
def test_cblas_gemm_update_fast_path_and_fallback(case, dtype, sign, gemm_calls):
    """``cblas.gemm_update`` on inputs that take its BLAS path (one gemm that
    writes c's own memory) and on those it must leave to NumPy (aliasing,
    layouts BLAS cannot read, mixed or non-native dtypes, k = 0, alpha NaN,
    infinite or 0): c + alpha * (a @ b) either way, in place, with c's
    dtype. The expected values come from NumPy in float64."""
    c, a, b, alpha = _cblas_operands(case, dtype, sign)
    # the cases are what they say: fit for BLAS by its rules or not (the
    # alpha and subclass cases fit, and are refused for other reasons)
    assert _fits_blas(c, a, b) == (case in _CBLAS_CASES or case.startswith("alpha ")
                                   or case == "subclass")
    address, c_dtype = c.__array_interface__["data"][0], c.dtype
    with np.errstate(all="ignore"):
        want = (np.asarray(c, np.float64)
                + np.float64(alpha) * (np.asarray(a, np.float64) @ np.asarray(b, np.float64)))
        got = cblas.gemm_update(c, a, b, alpha)
    assert got is c and c.dtype == c_dtype
    assert c.__array_interface__["data"][0] == address
    if 4 in (c_dtype.itemsize, a.dtype.itemsize):  # float32 somewhere (any byte order)
        tol = {"rtol": 1e-5, "atol": 1e-5}  # sums of 30 float32 products of N(0, 1)
    else:
        tol = {"rtol": 1e-12, "atol": 1e-12}
    np.testing.assert_allclose(np.asarray(c, np.float64), want, equal_nan=True, **tol)
    if case in _CBLAS_CASES:
        assert gemm_calls == [address]
    else:
        assert gemm_calls == []


def test_cblas_gemm_update_on_a_read_only_c(gemm_calls):
    """A read-only c is never written by BLAS: NumPy's fallback raises its
    usual error, and c keeps its values."""
    r = np.random.default_rng(34)
    c, a, b = r.standard_normal((50, 40)), r.standard_normal((50, 30)), r.standard_normal((30, 40))
    c.flags.writeable = False
    before = c.copy()
    with pytest.raises(ValueError, match="read-only"):
        cblas.gemm_update(c, a, b, -0.1)
    assert gemm_calls == []
    np.testing.assert_array_equal(c, before)


@pytest.mark.parametrize("shape", [(1, 40, 30), (50, 1, 30), (50, 40, 1), (1, 1, 1)])
def test_cblas_gemm_update_on_vectors(shape, gemm_calls):
    """Rows and columns (arrays both C- and Fortran-contiguous, leading
    dimensions of 1), with operands given either way round."""
    m, n, k = shape
    r = np.random.default_rng(35)
    c = r.standard_normal((m, n))
    for a, b in [(r.standard_normal((m, k)), r.standard_normal((k, n))),
                 (r.standard_normal((k, m)).T, np.asfortranarray(r.standard_normal((k, n))))]:
        want = c + (-0.3) * (a @ b)
        got = cblas.gemm_update(c, a, b, -0.3)
        assert got is c
        np.testing.assert_allclose(c, want, rtol=1e-12, atol=1e-12)
    assert len(gemm_calls) == 2


@each_blas
@pytest.mark.parametrize("lr_value,nan", [(0.05, False), (-2.0, False), (np.inf, False),
                                          (0.0, True), (0.5, True)])
def test_learning_rate_given_at_call_time(lr_value, nan, blas):
    """p - lr * (A @ B) with lr a scalar input: alpha is read at run time.
    An infinite or zero lr takes the NumPy path, so inf * 0 and 0 * NaN give
    NaN as in the interpreter (BLAS may skip a product scaled by 0)."""
    x = cr.placeholder("x", (40, N))
    lr = cr.placeholder("lr", (), "float64")
    P = _param(31)
    upd = {P: P - lr * (x.T @ x)}
    f = cr.function([x, lr], [cr.sum(x)], updates=upd, blas=blas)
    assert "_gemm_update(P, " in f.source and ", -lr)" in f.source, f.source
    ref = cr.function([x, lr], [cr.sum(x)], updates=upd, backend="interpreter")
    xv = np.random.default_rng(32).standard_normal((40, N))
    xv[:, 0] = 0.0  # a zero row and column in x.T @ x: inf * 0 there
    if nan:
        xv[3, 5] = np.nan
    start = P.value
    with np.errstate(all="ignore"):
        f(xv, lr_value)
        got = P.value
        P.set_value(start)
        ref(xv, lr_value)
    np.testing.assert_allclose(got, P.value, rtol=1e-12, atol=1e-12, equal_nan=True)


@each_blas
def test_errors_name_the_failing_node_after_pasted_helpers(blas):
    """Run-time errors are mapped back to the node whose line raised; the
    helpers pasted above the function (here ``_gemm_update``: many lines
    long for 'scipy', one import for 'numpy') must not shift that mapping."""
    P = _param(40)
    x = cr.placeholder("x", (N, N))
    u, v = cr.placeholder("u", (None, None)), cr.placeholder("v", (None, None))
    h, outs = u @ v, []
    for k in range(40):
        h = cr.exp(h) if k % 2 == 0 else cr.sin(h)
        h.name = f"h{k}"
        outs.append(h)
    for choice in (None, blas):
        f = cr.function([x, u, v], outs, updates={P: P - x.T @ x}, blas=choice)
        with pytest.raises(cr.InputError, match=r"matmul\(u, v\)"):
            f(np.ones((N, N)), np.ones((2, 3)), np.ones((4, 4)))


@each_blas
def test_shape_mismatch_in_a_fused_product_is_an_input_error(blas):
    P = _param(41)
    a, b = cr.placeholder("a", (None, N)), cr.placeholder("b", (None, N))
    f = cr.function([a, b], [cr.sum(a)], updates={P: P - a.T @ b}, blas=blas)
    assert _gemm_calls(f.source, blas) == 1
    with pytest.raises(cr.InputError, match="matmul") as err:
        f(np.ones((5, N)), np.ones((6, N)))
    assert "a (5, 96)" in str(err.value) and "b (6, 96)" in str(err.value)


@each_blas
def test_operand_dying_at_a_fused_update_is_freed(blas):
    """The fused product and update take no pooled buffer, so an operand
    that dies there is deleted, not kept for a reuse that never comes."""
    P = _param(42)
    x = cr.placeholder("x", (N, N))
    f = cr.function([x], [cr.sum(x)], updates={P: P - 0.1 * (cr.tanh(x) @ x)}, blas=blas)
    lines = f.source.splitlines()
    k = next(i for i, line in enumerate(lines) if "_gemm_update(P, " in line)
    tanh_name = lines[k].split("_gemm_update(P, ")[1].split(",")[0]
    assert lines[k + 1].strip().startswith("del ") and tanh_name in lines[k + 1], f.source


def test_interpreter_checks_the_choice_too():
    x = cr.placeholder("x", (N, N))
    with pytest.raises(cr.ChainruleError, match="blas='mkl' is not a choice"):
        cr.function([x], [cr.sum(x)], backend="interpreter", blas="mkl")


@each_blas
def test_parameter_made_from_a_fortran_ordered_array(blas):
    x = cr.placeholder("x", (30, N))
    value = np.asfortranarray(np.random.default_rng(43).standard_normal((N, N)))
    P = cr.parameter(value, "P")
    r = np.random.default_rng(44)
    feeds = [(r.standard_normal((30, N)),) for _ in range(3)]
    _same_steps([x], [cr.sum(x)], {P: P - 0.1 * (x.T @ x)}, [P], feeds, blas)


def test_numpy_blas_is_numpys_even_with_scipy_imported_first():
    """SciPy's wheels load an OpenBLAS of their own, with gemm symbols of
    their own: blas='numpy' must still find NumPy's (a fresh process, SciPy
    imported before the search)."""
    pytest.importorskip("scipy.linalg.blas")
    import os
    import subprocess
    import sys
    code = ("import scipy.linalg.blas, numpy, os\n"
            "from chainrule.backends import cblas\n"
            "cblas.check_available()\n"
            "print(os.path.realpath(cblas.library()))\n")
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True, timeout=120).stdout.strip()
    except subprocess.CalledProcessError as exc:
        pytest.skip(f"NumPy's BLAS not found here: {exc.stderr[-200:]}")
    scipy_dir = os.path.dirname(os.path.dirname(__import__("scipy").__file__))
    assert not os.path.realpath(out).startswith(os.path.join(scipy_dir, "scipy")), out


def test_a_32_bit_cblas_never_gets_a_size_it_cannot_hold(monkeypatch):
    """ctypes wraps an int of 2**31 or more around silently: with a CBLAS of
    32-bit integers, such a product goes to NumPy (here the limit is
    lowered to the test's sizes)."""
    if NUMPY_BLAS_MISSING is not None:
        pytest.skip(f"no NumPy BLAS: {NUMPY_BLAS_MISSING}")
    calls = []
    real = cblas._state["gemm"]

    def spy(*args):
        calls.append(args)
        return real["d"](*args)

    monkeypatch.setitem(cblas._state, "gemm", {**real, "d": spy, "limit": 40})
    r = np.random.default_rng(40)
    c, a, b = r.standard_normal((30, 20)), r.standard_normal((30, 50)), r.standard_normal((50, 20))
    want = c - 0.5 * (a @ b)
    cblas.gemm_update(c, a, b, -0.5)  # k = 50 and lda = 50 reach the limit
    np.testing.assert_allclose(c, want, rtol=1e-12, atol=1e-12)
    assert not calls
    c2, a2, b2 = c[:, :10].copy(), a[:, :10].copy(), b[:10, :10].copy()
    want2 = c2 + 0.25 * (a2 @ b2)
    cblas.gemm_update(c2, a2, b2, 0.25)  # everything below 40: BLAS
    np.testing.assert_allclose(c2, want2, rtol=1e-12, atol=1e-12)
    assert len(calls) == 1


def test_a_library_that_fails_the_check_is_named(monkeypatch):
    """A library with gemm symbols whose small product comes out wrong is
    not used, and the error says which one it was."""
    if NUMPY_BLAS_MISSING is not None:
        pytest.skip(f"no NumPy BLAS: {NUMPY_BLAS_MISSING}")
    monkeypatch.setattr(cblas, "_state", {})
    monkeypatch.setattr(cblas, "_works", lambda funcs: False)
    with pytest.raises(cr.ChainruleError, match="gave wrong numbers") as info:
        cblas.check_available()
    assert "blas='scipy'" in str(info.value)
