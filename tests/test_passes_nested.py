"""Nested derivatives stay small after ``cr.optimize`` (issue 4), and the
cheap-gradient principle holds for a small MLP.

The k-th derivative is built by k repeated ``cr.grad`` calls and optimized
once. Its node count must grow polynomially in k, not exponentially: the
growth ratio between successive counts falls as k grows. Values are
checked against sympy's ``diff`` of the same function.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy

import chainrule as cr

BACKENDS = ("interpreter", "numpy")
KMAX = 8
POINTS = np.array([-1.7, -0.6, 0.0, 0.3, 1.1, 2.4])

FUNCS = {
    "tanh(x)": (lambda x: cr.tanh(x), lambda s: sympy.tanh(s)),
    "sin(x)*exp(x)": (lambda x: cr.sin(x) * cr.exp(x), lambda s: sympy.sin(s) * sympy.exp(s)),
    "1/(1+x**2)": (lambda x: 1 / (1 + x ** 2), lambda s: 1 / (1 + s ** 2)),
}
# the targets for the 6th derivative
MAX_NODES_6TH = {"tanh(x)": 50, "sin(x)*exp(x)": 15}

_cache = {}


def derivatives(name):
    """[(raw k-th derivative, optimized k-th derivative)] for k = 1..KMAX, and
    the placeholder; built once per function."""
    if name not in _cache:
        build, _ = FUNCS[name]
        x = cr.placeholder("x")
        d, out = build(x), []
        for _ in range(KMAX):
            d = cr.grad(d, x)
            out.append((d, cr.optimize(d)))
        _cache[name] = (x, out)
    return _cache[name]


def sympy_derivatives(name):
    s = sympy.Symbol("x")
    e = FUNCS[name][1](s)
    out = []
    for _ in range(KMAX):
        e = sympy.diff(e, s)
        out.append(sympy.lambdify(s, e, "mpmath"))
    return out


def mean_log_growth(counts, ks):
    return sum(math.log(counts[k] / counts[k - 1]) for k in ks) / len(ks)


@pytest.mark.parametrize("name", sorted(FUNCS))
def test_kth_derivative_grows_polynomially(name):
    _, ds = derivatives(name)
    counts = {k: cr.count_nodes(opt) for k, (_, opt) in enumerate(ds, start=1)}
    raw = {k: cr.count_nodes(d) for k, (d, _) in enumerate(ds, start=1)}
    report = f"{name}: optimized {list(counts.values())}, as built {list(raw.values())}"
    assert all(counts[k] <= raw[k] for k in counts), report
    # the average growth ratio over k = 6..8 is below the one over k = 2..4;
    # exponential growth keeps it constant, polynomial growth lets it fall
    early, late = mean_log_growth(counts, (2, 3, 4)), mean_log_growth(counts, (6, 7, 8))
    assert late < early, report
    assert late < math.log(1.25), report  # under 25 % more nodes per order
    # and no faster than a cubic in k overall
    assert counts[8] <= counts[2] * (8 / 2) ** 3, report
    if name in MAX_NODES_6TH:
        assert counts[6] <= MAX_NODES_6TH[name], report


@pytest.mark.parametrize("name", sorted(FUNCS))
def test_kth_derivative_matches_sympy(name):
    x, ds = derivatives(name)
    want_fns = sympy_derivatives(name)
    for k, ((raw, opt), want_fn) in enumerate(zip(ds, want_fns), start=1):
        want = np.array([float(want_fn(v)) for v in POINTS])
        scale = np.max(np.abs(want))
        for backend in BACKENDS:
            f = cr.function([x], opt, backend=backend, optimize=False)
            got = np.array([f(v) for v in POINTS])
            np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-12 * scale,
                                       err_msg=f"{name}, k={k}, {backend}")
        # and compiled from the raw graph with the default pipeline
        g = cr.function([x], raw)
        got = np.array([g(v) for v in POINTS])
        np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-12 * scale,
                                   err_msg=f"{name}, k={k}, function(optimize=True)")


def test_optimized_sixth_derivative_of_sin_exp_is_the_closed_form():
    # d^k/dx^k sin(x) e^x = 2^(k/2) e^x sin(x + k pi/4); k = 6: -8 e^x cos(x)
    x, ds = derivatives("sin(x)*exp(x)")
    _, opt = ds[5]
    got = cr.evaluate(opt, {x: 0.9})
    assert got == pytest.approx(-8 * math.exp(0.9) * math.cos(0.9), rel=1e-13)


@pytest.mark.parametrize("name", sorted(FUNCS))
def test_optimizing_between_grads_also_stays_small(name):
    # users differentiate optimized graphs too (a compiled loss, then its
    # Hessian); growth must stay polynomial that way as well
    build, _ = FUNCS[name]
    x = cr.placeholder("x")
    d, counts = build(x), [None]
    for k, want_fn in enumerate(sympy_derivatives(name), start=1):
        d = cr.optimize(cr.grad(d, x))
        counts.append(cr.count_nodes(d))
        want = np.array([float(want_fn(v)) for v in POINTS])
        got = np.array([cr.evaluate(d, {x: v}) for v in POINTS])
        np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-12 * np.abs(want).max(),
                                   err_msg=f"{name}, k={k}")
    assert mean_log_growth(counts, (6, 7, 8)) < math.log(1.25), counts
    assert mean_log_growth(counts, (6, 7, 8)) < mean_log_growth(counts, (2, 3, 4)), counts


# -- the cheap-gradient principle --------------------------------------------------

def test_mlp_loss_and_gradients_cost_at_most_three_forward_passes():
    rng = np.random.default_rng(0)
    n, d, h = 16, 5, 8
    X = cr.placeholder("X", (n, d))
    Y = cr.placeholder("Y", (n, 1))
    W1 = cr.placeholder("W1", (d, h))
    b1 = cr.placeholder("b1", (h,))
    W2 = cr.placeholder("W2", (h, 1))
    b2 = cr.placeholder("b2", (1,))
    hidden = cr.tanh(X @ W1 + b1)
    pred = hidden @ W2 + b2
    loss = cr.mean(cr.square(pred - Y))
    params = [W1, b1, W2, b2]
    grads = cr.grad(loss, params)
    full = cr.optimize([loss] + grads)
    forward = cr.count_nodes(loss)
    assert cr.count_nodes(full) <= 3 * forward, (cr.count_nodes(full), forward)

    # the gradients are right: hand-written backpropagation in NumPy
    vals = {X: rng.normal(size=(n, d)), Y: rng.normal(size=(n, 1)),
            W1: rng.normal(size=(d, h)), b1: rng.normal(size=h),
            W2: rng.normal(size=(h, 1)), b2: rng.normal(size=1)}
    Xv, Yv, W1v, b1v, W2v, b2v = (vals[v] for v in (X, Y, W1, b1, W2, b2))
    hv = np.tanh(Xv @ W1v + b1v)
    err = hv @ W2v + b2v - Yv
    g_pred = 2 * err / n
    g_hidden = g_pred @ W2v.T * (1 - hv ** 2)
    want = [np.mean(err ** 2), Xv.T @ g_hidden, g_hidden.sum(axis=0),
            hv.T @ g_pred, g_pred.sum(axis=0)]
    inputs = [X, Y] + params
    for backend in BACKENDS:
        f = cr.function(inputs, full, backend=backend, optimize=False)
        got = f(*[vals[v] for v in inputs])
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-14)
