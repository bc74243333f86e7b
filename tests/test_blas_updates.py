"""``cr.function(..., blas="scipy")``: parameter updates ``p - A @ B`` run as
one in-place BLAS gemm. Every case is compared with the interpreter (which
never fuses nor reuses memory) over several calls, including the cases where
fusing would be wrong and must not happen (the product reads the state it
would write, the product is also an output)."""

from __future__ import annotations

import builtins

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import chainrule as cr
from chainrule.backends.buffers import MIN_ELEMENTS
from conftest import mlp_step_reference

pytest.importorskip("scipy.linalg.blas")

N = 96  # N * N >= MIN_ELEMENTS: large enough for in-place updates
assert N * N >= MIN_ELEMENTS


def _param(seed, shape=(N, N), dtype="float64", name="P"):
    value = np.random.default_rng(seed).standard_normal(shape).astype(dtype) * 0.1
    return cr.parameter(value, name)


def _same_steps(inputs, outputs, update_of, params, feeds, dtype="float64", fused=1):
    """Run blas='scipy' (with ``fused`` fused updates; None: any number) and
    the interpreter from the same state for each feed; compare outputs and
    the parameters' states after each call."""
    f = cr.function(inputs, outputs, updates=update_of, blas="scipy")
    ref = cr.function(inputs, outputs, updates=update_of, backend="interpreter")
    if fused is not None:
        assert f.source.count("_gemm_update(") == fused + (1 if fused else 0), f.source
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


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_mlp_train_steps_match_hand_written_numpy(dtype):
    r = np.random.default_rng(3)
    x = cr.placeholder("x", (128, N), dtype)
    y = cr.placeholder("y", (128, 10), dtype)
    W1 = _param(1, (N, N), dtype, "W1")
    W2 = _param(2, (N, 10), dtype, "W2")
    h = cr.tanh(x @ W1)
    loss = -(cr.log_softmax(h @ W2) * y).sum(axis=1).mean()
    g1, g2 = cr.grad(loss, [W1, W2])
    f = cr.function([x, y], loss, updates={W1: W1 - 0.1 * g1, W2: W2 - 0.1 * g2},
                    blas="scipy")
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


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("form", ["p - a @ b", "p + a @ b", "a @ b + p"])
@pytest.mark.parametrize("layout", ["C", "transposed", "strided"])
def test_update_forms_and_operand_layouts(dtype, form, layout):
    """alpha = -1 and +1, and operands that are C-ordered, Fortran-ordered
    (a transposed view: BLAS gets a transpose flag) or neither (SciPy copies)."""
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
    _same_steps([a_in, b_in], [out], {P: new}, [P], feeds, dtype)


def test_rectangular_parameter_and_its_old_value_as_output():
    """A (N, 2N) parameter; the old value is also returned, so it must be
    read (copied) before the state is overwritten."""
    x = cr.placeholder("x", (30, N))
    g = cr.placeholder("g", (30, 2 * N))
    P = _param(6, (N, 2 * N))
    r = np.random.default_rng(7)
    feeds = [(r.standard_normal((30, N)), r.standard_normal((30, 2 * N))) for _ in range(3)]
    _same_steps([x, g], [P * 1.0, cr.sum(P)], {P: P - x.T @ g}, [P], feeds, fused=0)
    f = cr.function([x, g], [cr.sum(x)], updates={P: P - x.T @ g}, blas="scipy")
    assert "_gemm_update(P, " in f.source


def test_product_that_reads_the_state_is_not_fused():
    """P - P.T @ G reads P while it would be written: computed apart."""
    G = cr.placeholder("G", (N, N))
    P = _param(8)
    r = np.random.default_rng(9)
    feeds = [(r.standard_normal((N, N)),) for _ in range(3)]
    _same_steps([G], [cr.sum(G)], {P: P - P.T @ G * 0.01}, [P], feeds, fused=0)
    _same_steps([G], [cr.sum(G)], {P: P - P.T @ G}, [P], feeds, fused=0)


def test_product_that_is_also_an_output_is_not_fused():
    x = cr.placeholder("x", (N, N))
    P = _param(10)
    prod = x.T @ x
    r = np.random.default_rng(11)
    feeds = [(r.standard_normal((N, N)),) for _ in range(2)]
    _same_steps([x], [prod], {P: P - prod}, [P], feeds, fused=0)


def test_two_parameters_fed_by_products_of_each_other():
    """Each update's product reads the other parameter's old value: the
    updates must not see each other's new values (a swap-like case)."""
    A, B = _param(12, name="A"), _param(13, name="B")
    x = cr.placeholder("x", (N, N))
    r = np.random.default_rng(14)
    feeds = [(r.standard_normal((N, N)),) for _ in range(3)]
    upd = {A: A - 0.01 * (B @ x), B: B - 0.01 * (A @ x)}
    f = cr.function([x], [cr.sum(x)], updates=upd, blas="scipy")
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


def test_bad_choice_and_missing_scipy(monkeypatch):
    x = cr.placeholder("x", (N, N))
    P = _param(16)
    with pytest.raises(cr.ChainruleError, match="blas='mkl' is not a choice"):
        cr.function([x], [cr.sum(x)], updates={P: P - x @ x}, blas="mkl")
    real_import = builtins.__import__

    def no_scipy(name, *args, **kwargs):
        if name.startswith("scipy"):
            raise ImportError("No module named 'scipy'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_scipy)
    with pytest.raises(cr.ChainruleError, match="pip install scipy"):
        cr.function([x], [cr.sum(x)], updates={P: P - x @ x}, blas="scipy")


def test_interpreter_ignores_the_option():
    x = cr.placeholder("x", (N, N))
    P = _param(17)
    f = cr.function([x], [cr.sum(x)], updates={P: P - x @ x}, backend="interpreter",
                    blas="scipy")
    assert f.source is None


_OPERANDS = {
    "x": lambda x, P, Q: x, "x.T": lambda x, P, Q: x.T, "x[::-1]": lambda x, P, Q: x[::-1],
    "P": lambda x, P, Q: P, "P.T": lambda x, P, Q: P.T, "Q": lambda x, P, Q: Q,
    "tanh(x)": lambda x, P, Q: cr.tanh(x), "P*2": lambda x, P, Q: P * 2.0,
    "-Q.T": lambda x, P, Q: -Q.T,
}


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(sorted(_OPERANDS)), st.sampled_from(sorted(_OPERANDS)),
       st.sampled_from(["-", "+", "+r"]), st.sampled_from([None, 0.5, -0.01]),
       st.booleans(), st.booleans())
def test_random_update_forms_agree_with_the_interpreter(a, b, sign, scale, also_q, out_p):
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
    _same_steps([x], outs, upd, [P, Q], feeds, fused=None)


_BLAS_CASES = ["C", "F-order b", "transposed a", "F-order c", "F-order c, a.T, F b"]
_FALLBACK_CASES = ["aliased", "non-contiguous", "dtypes", "empty-k"]


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


@pytest.mark.parametrize("lr_value,nan", [(0.05, False), (-2.0, False), (np.inf, False),
                                          (0.0, True), (0.5, True)])
def test_learning_rate_given_at_call_time(lr_value, nan):
    """p - lr * (A @ B) with lr a scalar input: alpha is read at run time.
    An infinite or zero lr takes the NumPy path, so inf * 0 and 0 * NaN give
    NaN as in the interpreter (BLAS may skip a product scaled by 0)."""
    x = cr.placeholder("x", (40, N))
    lr = cr.placeholder("lr", (), "float64")
    P = _param(31)
    upd = {P: P - lr * (x.T @ x)}
    f = cr.function([x, lr], [cr.sum(x)], updates=upd, blas="scipy")
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


def test_errors_name_the_failing_node_after_pasted_helpers():
    """Run-time errors are mapped back to the node whose line raised; the
    helpers pasted above the function (here ``_gemm_update``, many lines
    long) must not shift that mapping."""
    P = _param(40)
    x = cr.placeholder("x", (N, N))
    u, v = cr.placeholder("u", (None, None)), cr.placeholder("v", (None, None))
    h, outs = u @ v, []
    for k in range(40):
        h = cr.exp(h) if k % 2 == 0 else cr.sin(h)
        h.name = f"h{k}"
        outs.append(h)
    for blas in (None, "scipy"):
        f = cr.function([x, u, v], outs, updates={P: P - x.T @ x}, blas=blas)
        with pytest.raises(cr.InputError, match=r"matmul\(u, v\)"):
            f(np.ones((N, N)), np.ones((2, 3)), np.ones((4, 4)))


def test_shape_mismatch_in_a_fused_product_is_an_input_error():
    P = _param(41)
    a, b = cr.placeholder("a", (None, N)), cr.placeholder("b", (None, N))
    f = cr.function([a, b], [cr.sum(a)], updates={P: P - a.T @ b}, blas="scipy")
    assert "_gemm_update(" in f.source
    with pytest.raises(cr.InputError, match="matmul") as err:
        f(np.ones((5, N)), np.ones((6, N)))
    assert "a (5, 96)" in str(err.value) and "b (6, 96)" in str(err.value)


def test_operand_dying_at_a_fused_update_is_freed():
    """The fused product and update take no pooled buffer, so an operand
    that dies there is deleted, not kept for a reuse that never comes."""
    P = _param(42)
    x = cr.placeholder("x", (N, N))
    f = cr.function([x], [cr.sum(x)], updates={P: P - 0.1 * (cr.tanh(x) @ x)}, blas="scipy")
    lines = f.source.splitlines()
    k = next(i for i, line in enumerate(lines) if "_gemm_update(P, " in line)
    tanh_name = lines[k].split("_gemm_update(P, ")[1].split(",")[0]
    assert lines[k + 1].strip().startswith("del ") and tanh_name in lines[k + 1], f.source


def test_interpreter_checks_the_choice_too():
    x = cr.placeholder("x", (N, N))
    with pytest.raises(cr.ChainruleError, match="blas='mkl' is not a choice"):
        cr.function([x], [cr.sum(x)], backend="interpreter", blas="mkl")


def test_parameter_made_from_a_fortran_ordered_array():
    x = cr.placeholder("x", (30, N))
    value = np.asfortranarray(np.random.default_rng(43).standard_normal((N, N)))
    P = cr.parameter(value, "P")
    r = np.random.default_rng(44)
    feeds = [(r.standard_normal((30, N)),) for _ in range(3)]
    _same_steps([x], [cr.sum(x)], {P: P - 0.1 * (x.T @ x)}, [P], feeds)
