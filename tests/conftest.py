"""Shared helpers for the test suite.

Expected values never come from chainrule itself: they come from
hand-written NumPy, closed forms, sympy, or the central finite differences
below (always in float64).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import settings

import chainrule as cr

# Property tests draw the same examples on every run (a fixed seed): a run
# is reproducible, and CI cannot fail on a draw no earlier run saw. Widen
# the search by hand with `HYPOTHESIS_PROFILE=explore python -m pytest`
# (known: comparisons of values a rewrite makes exact, x <= log(exp(x)),
# can then flip, which the value check counts as a difference).
settings.register_profile("fixed", derandomize=True, database=None)
settings.register_profile("explore", derandomize=False)
settings.load_profile(__import__("os").environ.get("HYPOTHESIS_PROFILE", "fixed"))

BACKENDS = ("interpreter", "numpy")


def numeric_grad(fn, arrays, eps=1e-6):
    """Central finite differences of the scalar ``fn(*arrays)`` with respect
    to every array in ``arrays`` (all converted to float64 first).

    Returns one gradient array per input, shaped like it.
    """
    arrays = [np.array(a, dtype=np.float64) for a in arrays]
    grads = []
    for k, a in enumerate(arrays):
        g = np.zeros_like(a)
        flat, gflat = a.reshape(-1), g.reshape(-1)
        for i in range(flat.size):
            old = flat[i]
            flat[i] = old + eps
            up = float(fn(*arrays))
            flat[i] = old - eps
            down = float(fn(*arrays))
            flat[i] = old
            gflat[i] = (up - down) / (2 * eps)
        grads.append(g)
    return grads


def numeric_directional(fn, arrays, directions, eps=1e-6):
    """Central difference of ``fn`` (array-valued) along ``directions``."""
    arrays = [np.asarray(a, dtype=np.float64) for a in arrays]
    up = np.asarray(fn(*[a + eps * d for a, d in zip(arrays, directions)]), np.float64)
    down = np.asarray(fn(*[a - eps * d for a, d in zip(arrays, directions)]), np.float64)
    return (up - down) / (2 * eps)


def run_both(inputs, outputs, *args, updates=None, **kwargs):
    """Compile ``outputs`` with ``cr.function`` on every backend, call each with
    the same arguments, check the backends agree, and return the numpy
    backend's result (in the structure of ``outputs``)."""
    results = {}
    for backend in BACKENDS:
        f = cr.function(inputs, outputs, updates=updates, backend=backend)
        results[backend] = f(*args, **kwargs)
    ref = results["interpreter"]
    assert_same_structure_close(results["numpy"], ref, rtol=1e-12, atol=1e-12)
    return results["numpy"]


def assert_same_structure_close(got, want, rtol=1e-7, atol=1e-9):
    if isinstance(want, dict):
        assert isinstance(got, dict) and list(got) == list(want)
        for k in want:
            assert_same_structure_close(got[k], want[k], rtol, atol)
    elif isinstance(want, (list, tuple)):
        assert type(got) is type(want) and len(got) == len(want)
        for g, w in zip(got, want):
            assert_same_structure_close(g, w, rtol, atol)
    else:
        got, want = np.asarray(got), np.asarray(want)
        assert got.shape == want.shape, (got.shape, want.shape)
        assert got.dtype == want.dtype, (got.dtype, want.dtype)
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


def mlp_step_reference(xv, yv, w1, w2, lr=0.1):
    """One SGD step of tanh(x @ w1) @ w2 with softmax cross-entropy against
    one-hot ``yv``, by hand in NumPy: (loss before the step, new w1, new w2)."""
    hv = np.tanh(xv @ w1)
    z = hv @ w2
    z = z - z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    loss = -(logp * yv).sum(axis=1).mean()
    gz = (np.exp(logp) - yv) / xv.shape[0]
    gw2 = hv.T @ gz
    gw1 = xv.T @ ((gz @ w2.T) * (1 - hv ** 2))
    return loss, w1 - lr * gw1, w2 - lr * gw2


def why_no_libmvec():
    """Why vecmath="libmvec" cannot run here (None if it can)."""
    from chainrule.backends import vecmath
    try:
        vecmath.check_available("libmvec")
    except cr.ChainruleError as exc:
        return str(exc)
    return None
