"""No recursion limit: a 100,000-op chain builds, differentiates, compiles
and runs on both backends (every traversal is iterative; Python's default
recursion limit is 1,000)."""

import sys

import numpy as np
import pytest

import chainrule as cr
from chainrule.ir import topo_order

STEPS = 25_000  # x = x*0.999 + 0.001*sin(x): 4 ops a step, 100,000 ops


def _recurrence(x, steps):
    """x_{k+1} = 0.999 x_k + 0.001 sin x_k and its derivative dx_k/dx_0."""
    d = 1.0
    for _ in range(steps):
        d *= 0.999 + 0.001 * np.cos(x)
        x = 0.999 * x + 0.001 * np.sin(x)
    return x, d


def _chain(steps):
    x0 = cr.placeholder("x0")
    x = x0
    for _ in range(steps):
        x = x * 0.999 + 0.001 * cr.sin(x)
    return x0, x


@pytest.fixture(scope="module")
def chain():
    assert sys.getrecursionlimit() < 100_000
    x0, x = _chain(STEPS)
    n_ops = sum(1 for n in topo_order([x]) if not n.is_leaf)
    assert n_ops >= 100_000
    return x0, x, cr.grad(x, x0)


def test_gradient_graph_is_linear_in_the_chain(chain):
    # the cheap-gradient principle: a constant number of nodes per forward op
    x0, x, g = chain
    forward = len(topo_order([x]))
    total = len(topo_order([x, g]))
    assert total - forward <= 2 * forward


@pytest.mark.parametrize("backend", ["interpreter", "numpy"])
def test_long_chain_runs(chain, backend):
    x0, x, g = chain
    f = cr.function([x0], [x, g], backend=backend, optimize=False)
    want_x, want_d = _recurrence(0.5, STEPS)
    got_x, got_d = f(0.5)
    assert float(got_x) == pytest.approx(want_x, rel=1e-12)
    assert float(got_d) == pytest.approx(want_d, rel=1e-10)


def test_long_chain_through_the_default_pipeline():
    # a 4,000-op chain (four times the recursion limit) through
    # cr.function's default optimisation passes
    steps = 1_000
    x0, x = _chain(steps)
    g = cr.grad(x, x0)
    want_x, want_d = _recurrence(-1.5, steps)
    for backend in ("interpreter", "numpy"):
        got_x, got_d = cr.function([x0], [x, g], backend=backend)(-1.5)
        assert float(got_x) == pytest.approx(want_x, rel=1e-12)
        assert float(got_d) == pytest.approx(want_d, rel=1e-10)


def test_second_derivative_of_a_long_chain():
    steps = 2_000
    x0, x = _chain(steps)
    d1 = cr.grad(x, x0)
    d2 = cr.grad(d1, x0)
    f = cr.function([x0], [d1, d2], backend="numpy", optimize=False)
    a, h = 0.3, 1e-5
    got_d1, got_d2 = f(a)
    fd = (_recurrence(a + h, steps)[1] - _recurrence(a - h, steps)[1]) / (2 * h)
    assert float(got_d1) == pytest.approx(_recurrence(a, steps)[1], rel=1e-10)
    assert float(got_d2) == pytest.approx(fd, rel=1e-6)


def test_printing_a_deep_chain_is_linear():
    """pprint names a subexpression once its text is long, so a deep chain
    is not copied at every level (50,000 ops took 40 s): 20,000 sins print
    as lets that read back to the same nesting."""
    x = cr.placeholder("x")
    y = x
    for _ in range(20000):
        y = cr.sin(y)
    text = cr.pprint(y)
    assert text.count("sin(") == 20000 and text.count("x") == 1
    lets = text.split("; ")
    assert len(lets) > 100 and all(len(part) < 1000 for part in lets)
    assert len(cr.debugprint(y).splitlines()) == 20001
