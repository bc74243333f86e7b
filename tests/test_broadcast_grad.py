"""Gradients through broadcasting and reductions have the shape of the
Var they are taken with respect to, and the right values."""

import itertools

import numpy as np
import pytest

import chainrule as cr

from conftest import numeric_grad


def _grads(shapes, build, backend, seed=0):
    """Values, the weight and chainrule's gradients of sum(w * build(...))."""
    rng = np.random.default_rng(seed)
    vs = [cr.placeholder(f"x{i}", s) for i, s in enumerate(shapes)]
    out = build(*vs)
    vals = [rng.normal(size=s) for s in shapes]
    w = rng.normal(size=np.shape(build(*vals)))
    gs = cr.grad(cr.sum(out * w), vs)
    for g, v in zip(gs, vs):
        assert g.shape == v.shape
    got = cr.function(vs, gs, backend=backend)(*vals)
    return vals, w, got


def test_column_plus_row(backend):
    (x, y), w, (gx, gy) = _grads([(3, 1), (1, 4)], lambda x, y: x + y, backend)
    assert gx.shape == (3, 1) and gy.shape == (1, 4)
    np.testing.assert_allclose(gx, w.sum(axis=1, keepdims=True), rtol=1e-14)
    np.testing.assert_allclose(gy, w.sum(axis=0, keepdims=True), rtol=1e-14)


def test_column_times_row(backend):
    (x, y), w, (gx, gy) = _grads([(3, 1), (1, 4)], lambda x, y: x * y, backend)
    np.testing.assert_allclose(gx, (w * y).sum(axis=1, keepdims=True), rtol=1e-13)
    np.testing.assert_allclose(gy, (w * x).sum(axis=0, keepdims=True), rtol=1e-13)


def test_vector_plus_matrix(backend):
    (x, y), w, (gx, gy) = _grads([(5,), (2, 5)], lambda x, y: x + y, backend)
    assert gx.shape == (5,) and gy.shape == (2, 5)
    np.testing.assert_allclose(gx, w.sum(axis=0), rtol=1e-14)
    np.testing.assert_allclose(gy, w, rtol=1e-14)


def test_scalar_times_matrix(backend):
    (a, m), w, (ga, gm) = _grads([(), (2, 3)], lambda a, m: a * m, backend)
    assert ga.shape == () and gm.shape == (2, 3)
    np.testing.assert_allclose(ga, np.sum(w * m), rtol=1e-13)
    np.testing.assert_allclose(gm, a * w, rtol=1e-14)


def test_leading_and_inner_broadcast(backend):
    (x, y), w, (gx, gy) = _grads([(3, 1, 2), (2, 1, 4, 1)],
                                 lambda x, y: x / (2.0 + y * y), backend)
    def ref(x, y):
        return np.sum(w * (x / (2.0 + y * y)))
    want = numeric_grad(ref, [x, y])
    np.testing.assert_allclose(gx, want[0], rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(gy, want[1], rtol=1e-7, atol=1e-10)


def test_broadcast_to_and_back(backend):
    (x,), w, (gx,) = _grads([(3, 1)], lambda x: cr.broadcast_to(x, (2, 3, 5))
                            if isinstance(x, cr.Var) else np.broadcast_to(x, (2, 3, 5)),
                            backend)
    np.testing.assert_allclose(gx, w.sum(axis=(0, 2))[:, None], rtol=1e-14)


# -- reductions over every axis choice -------------------------------------------------

SHAPE = (2, 3, 4)
AXES = [None] + [c for k in range(0, 4) for c in itertools.combinations(range(3), k)]


def _lse(x, axis=None, keepdims=False):
    return np.log(np.sum(np.exp(x), axis=axis, keepdims=keepdims))


REDUCTIONS = {
    "sum": (lambda x, a, k: x.sum(axis=a, keepdims=k), np.sum),
    "mean": (lambda x, a, k: x.mean(axis=a, keepdims=k), np.mean),
    "max": (lambda x, a, k: x.max(axis=a, keepdims=k), np.max),
    "min": (lambda x, a, k: cr.min(x, axis=a, keepdims=k), np.min),
    "prod": (lambda x, a, k: cr.prod(x, a, k), np.prod),
    "logsumexp": (lambda x, a, k: cr.logsumexp(x, axis=a, keepdims=k), _lse),
}


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("axis", AXES, ids=str)
@pytest.mark.parametrize("name", list(REDUCTIONS))
def test_reduction_over_axes(name, axis, keepdims, backend):
    build, ref = REDUCTIONS[name]
    rng = np.random.default_rng(7)
    x = cr.placeholder("x", SHAPE)
    xv = rng.normal(size=SHAPE)
    want = ref(xv, axis=axis, keepdims=keepdims)
    y = build(x, axis, keepdims)
    assert y.shape == np.shape(want)
    w = rng.normal(size=np.shape(want))
    g = cr.grad(cr.sum(y * w), x)
    assert g.shape == SHAPE
    got_y, got_g = cr.function([x], [y, g], backend=backend)(xv)
    np.testing.assert_allclose(got_y, want, rtol=1e-12)
    want_g = numeric_grad(lambda v: np.sum(ref(v, axis=axis, keepdims=keepdims) * w), [xv])[0]
    np.testing.assert_allclose(got_g, want_g, rtol=1e-6, atol=1e-9)
    if name == "sum":  # closed form: the weight broadcast back
        axes = tuple(range(3)) if axis is None else axis
        wb = w if keepdims else np.expand_dims(w, axes)
        np.testing.assert_array_equal(got_g, np.broadcast_to(wb, SHAPE))


# -- unknown (None) dims -----------------------------------------------------------------

@pytest.mark.parametrize("batch", [5, 1])
def test_dense_layer_with_unknown_batch(batch, backend):
    x = cr.placeholder("x", (None, 3))
    t = cr.placeholder("t", (None, 2))
    W = cr.placeholder("W", (3, 2))
    b = cr.placeholder("b", (2,))
    pred = cr.tanh(x @ W + b)
    loss = cr.mean((pred - t) ** 2)
    gW, gb, gx = cr.grad(loss, [W, b, x])
    assert gW.shape == (3, 2) and gb.shape == (2,) and gx.shape == (None, 3)
    rng = np.random.default_rng(batch)
    xv, tv = rng.normal(size=(batch, 3)), rng.normal(size=(batch, 2))
    Wv, bv = rng.normal(size=(3, 2)), rng.normal(size=2)
    f = cr.function([x, t, W, b], [loss, gW, gb, gx], backend=backend)
    lv, gWv, gbv, gxv = f(xv, tv, Wv, bv)
    # closed form
    h = np.tanh(xv @ Wv + bv)
    dh = 2 * (h - tv) / h.size * (1 - h ** 2)
    np.testing.assert_allclose(lv, np.mean((h - tv) ** 2), rtol=1e-13)
    np.testing.assert_allclose(gWv, xv.T @ dh, rtol=1e-12)
    np.testing.assert_allclose(gbv, dh.sum(axis=0), rtol=1e-12)
    np.testing.assert_allclose(gxv, dh @ Wv.T, rtol=1e-12)
    assert gxv.shape == (batch, 3)


@pytest.mark.parametrize("nx,ny", [(1, 4), (4, 1), (4, 4), (1, 1)])
def test_unknown_dims_broadcast_at_run_time(nx, ny, backend):
    # (None,) operands may turn out to be size 1 and broadcast at run time
    x, y = cr.placeholder("x", (None,)), cr.placeholder("y", (None, 1))
    gx, gy = cr.grad(cr.sum(x * y), [x, y])
    xv, yv = np.arange(1.0, nx + 1), np.arange(1.0, ny + 1)[:, None]
    got_x, got_y = cr.function([x, y], [gx, gy], backend=backend)(xv, yv)
    np.testing.assert_array_equal(got_x, np.broadcast_to(yv, (ny, nx)).sum(axis=0))
    np.testing.assert_array_equal(got_y, np.broadcast_to(xv, (ny, nx)).sum(axis=1, keepdims=True))
