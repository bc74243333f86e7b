"""``cr.jacobian`` in all three modes, and the batching (vmap) transform
behind it.

Each case is a function of a few inputs with a hand-written NumPy twin; the
Jacobian with respect to one input, in forward, reverse and auto mode and on
both backends, must agree with central finite differences of the twin and
the modes with each other. The cases are chosen so that every op with a
``batch`` rule has that rule run by some Jacobian (a test checks this).
A second family batches each graph of the op table of ``test_ops`` directly
and compares with a loop over the batch.
"""

from __future__ import annotations

import functools
import warnings
import zlib
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pytest

import chainrule as cr
from chainrule.autodiff import batching
from chainrule.autodiff.batching import batch_graph
from chainrule.ir import REGISTRY, topo_order

from conftest import BACKENDS
import test_ops

MODES = ("forward", "reverse", "auto")


@dataclass
class J:
    id: str
    inputs: dict  # name -> (declared shape, run-time shape or None, kind)
    wrt: str
    build: Callable
    ref: Callable

    def reference(self, vals):
        return self.ref(*[vals[n] for n in self.inputs])

    def shapes(self, name):
        decl, run, _ = self.inputs[name]
        return decl, (decl if run is None else run)


def inp(shape, run=None, kind="normal"):
    return (tuple(shape), None if run is None else tuple(run), kind)


def _softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _lse(x, axis=None, keepdims=False):
    return np.log(np.sum(np.exp(x), axis=axis, keepdims=keepdims))


def _jac_sin_x0(x):
    """Closed form of d(sin(x) * x[0]) / dx."""
    j = np.diag(np.cos(x) * x[0])
    j[:, 0] += np.sin(x)
    return j


def _jac_rosen_like(x):
    """Closed form of d(x[1:] * x[1:] + x[:-1]) / dx."""
    n = x.size
    j = np.zeros((n - 1, n))
    j[np.arange(n - 1), np.arange(1, n)] = 2 * x[1:]
    j[np.arange(n - 1), np.arange(n - 1)] += 1.0
    return j


V3, V4 = inp((3,)), inp((4,))
M23 = inp((2, 3))
IDX = np.array([[3, 1], [1, 1]])

CASES = [
    # -- elementwise (1-D inputs ride banded tangents in forward mode) -----------
    J("sin_exp", {"x": V4}, "x", lambda x: cr.sin(x) * cr.exp(x),
      lambda x: np.sin(x) * np.exp(x)),
    J("neighbours", {"x": inp((5,))}, "x",
      lambda x: 100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2 / x[1:].shape[0],
      lambda x: 100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2 / 4),
    J("slice_scatter", {"x": inp((5,))}, "x",
      lambda x: cr.grad(cr.sum(cr.sin(x[1:4]) * x[:3]), x) * 2.0,
      lambda x: 2.0 * (np.concatenate([np.sin(x[1:4]), [0, 0]])
                       + np.concatenate([[0], np.cos(x[1:4]) * x[:3], [0]]))),
    J("length1_slice_times_vector", {"x": V3, "z": V4}, "x",
      lambda x, z: x[1:2] * z, lambda x, z: x[1:2] * z),
    J("length1_slice_plus_slice", {"x": V3}, "x",
      lambda x: x[0:1] + x[1:3], lambda x: x[0:1] + x[1:3]),
    J("length1_slice_where", {"x": V3, "z": V4}, "x",
      lambda x, z: cr.where(z > 0, x[1:2] * 2.0, 0.0),
      lambda x, z: np.where(z > 0, x[1:2] * 2.0, 0.0)),
    J("scalar_to_vector", {"s": inp(()), "z": V3}, "s",
      lambda s, z: cr.exp(s * z), lambda s, z: np.exp(s * z)),
    J("vector_to_scalar", {"x": V4}, "x", lambda x: cr.sum(cr.tanh(x) ** 2),
      lambda x: np.sum(np.tanh(x) ** 2)),
    J("matrix_elementwise", {"x": M23}, "x", lambda x: cr.log1p(x * x) - cr.cos(x),
      lambda x: np.log1p(x * x) - np.cos(x)),
    # -- matmul: 1-D, 2-D and batched operands, each side -----------------------
    J("matmul_2d_wrt_a", {"a": M23, "b": inp((3, 4))}, "a", lambda a, b: a @ b, np.matmul),
    J("matmul_2d_wrt_b", {"a": M23, "b": inp((3, 4))}, "b", lambda a, b: a @ b, np.matmul),
    J("matmul_vec_mat_wrt_v", {"v": V3, "W": inp((3, 4))}, "v", lambda v, W: v @ W,
      np.matmul),
    J("matmul_vec_mat_wrt_W", {"v": V3, "W": inp((3, 4))}, "W", lambda v, W: v @ W,
      np.matmul),
    J("matmul_mat_vec_wrt_A", {"A": M23, "v": V3}, "A", lambda A, v: A @ v, np.matmul),
    J("matmul_mat_vec_wrt_v", {"A": M23, "v": V3}, "v", lambda A, v: A @ v, np.matmul),
    J("matmul_vec_vec", {"u": V3, "v": V3}, "u", lambda u, v: u @ v, np.matmul),
    J("matmul_self", {"A": inp((3, 3))}, "A", lambda A: A @ A, lambda A: A @ A),
    J("matmul_batch_wrt_a", {"a": inp((2, 2, 3)), "b": inp((3, 2))}, "a",
      lambda a, b: a @ b, np.matmul),
    J("matmul_batch_wrt_b", {"a": inp((2, 2, 3)), "b": inp((3, 2))}, "b",
      lambda a, b: a @ b, np.matmul),
    J("matmul_batch_broadcast", {"a": inp((2, 1, 2, 3)), "b": inp((3, 3, 2))}, "b",
      lambda a, b: a @ b, np.matmul),
    J("matmul_vec_batch", {"v": V3, "b": inp((2, 3, 2))}, "v", lambda v, b: v @ b,
      np.matmul),
    J("matmul_batch_vec", {"a": inp((2, 2, 3)), "v": V3}, "v", lambda a, v: a @ v,
      np.matmul),
    J("matmul_batch_vec_wrt_a", {"a": inp((2, 2, 3)), "v": V3}, "a", lambda a, v: a @ v,
      np.matmul),
    J("mlp_layer", {"x": inp((2, 3)), "W": inp((3, 4)), "b": V4}, "W",
      lambda x, W, b: cr.tanh(x @ W + b), lambda x, W, b: np.tanh(x @ W + b)),
    # -- normalisers and reductions with axes -----------------------------------------
    J("softmax", {"x": inp((2, 4))}, "x", lambda x: cr.softmax(x), _softmax),
    J("softmax_axis0", {"x": inp((3, 2))}, "x", lambda x: cr.softmax(x, axis=0),
      lambda x: _softmax(x, 0)),
    J("softmax_1d", {"x": V4}, "x", lambda x: cr.softmax(x), _softmax),
    J("log_softmax", {"x": inp((2, 3))}, "x", lambda x: cr.log_softmax(x),
      lambda x: np.log(_softmax(x))),
    J("log_softmax_axis0", {"x": inp((3, 2))}, "x", lambda x: cr.log_softmax(x, 0),
      lambda x: np.log(_softmax(x, 0))),
    J("logsumexp", {"x": inp((2, 3, 2))}, "x", lambda x: cr.logsumexp(x, axis=(0, 2)),
      lambda x: _lse(x, (0, 2))),
    J("logsumexp_keepdims", {"x": M23}, "x",
      lambda x: cr.logsumexp(x, axis=1, keepdims=True), lambda x: _lse(x, 1, True)),
    J("logsumexp_all", {"x": M23}, "x", lambda x: cr.logsumexp(x), _lse),
    J("sum_axes", {"x": inp((2, 3, 2))}, "x", lambda x: cr.sin(x).sum(axis=(0, 2)),
      lambda x: np.sin(x).sum(axis=(0, 2))),
    J("mean_keepdims", {"x": inp((2, 3, 2))}, "x",
      lambda x: (x * x).mean(axis=1, keepdims=True),
      lambda x: (x * x).mean(axis=1, keepdims=True)),
    J("max_axis", {"x": inp((3, 4))}, "x", lambda x: x.max(axis=1), lambda x: x.max(axis=1)),
    J("min_axis", {"x": inp((3, 4))}, "x", lambda x: x.min(axis=0) * 2.0,
      lambda x: x.min(axis=0) * 2.0),
    J("prod_axis", {"x": inp((2, 3), kind="pos")}, "x", lambda x: x.prod(axis=1),
      lambda x: x.prod(axis=1)),
    J("prod_all_keepdims", {"x": inp((2, 2))}, "x", lambda x: x.prod(keepdims=True) * x,
      lambda x: x.prod(keepdims=True) * x),
    # -- broadcasting -------------------------------------------------------------------
    J("broadcast_column_row", {"x": inp((3, 1)), "y": V4}, "x", lambda x, y: x * y + x,
      lambda x, y: x * y + x),
    J("broadcast_wrt_row", {"x": inp((3, 1)), "y": V4}, "y", lambda x, y: cr.exp(x - y),
      lambda x, y: np.exp(x - y)),
    J("broadcast_scalar", {"s": inp(()), "x": M23}, "s", lambda s, x: x / (1 + s * s),
      lambda s, x: x / (1 + s * s)),
    J("broadcast_to", {"x": inp((3, 1))}, "x", lambda x: cr.broadcast_to(x, (2, 3, 2)) ** 2,
      lambda x: np.broadcast_to(x, (2, 3, 2)) ** 2),
    # -- indexing, take, concatenate/stack --------------------------------------------
    J("index_slices", {"x": inp((3, 4))}, "x", lambda x: x[::-1, 1:3] * x[0, 1],
      lambda x: x[::-1, 1:3] * x[0, 1]),
    J("index_newaxis_ellipsis", {"x": inp((2, 3, 2))}, "x",
      lambda x: x[None, ..., 0] + x[1, None, :, -1],
      lambda x: x[None, ..., 0] + x[1, None, :, -1]),
    J("index_list", {"x": inp((4, 2))}, "x", lambda x: x[[3, 0, 3]] ** 2,
      lambda x: x[[3, 0, 3]] ** 2),
    J("take_flat", {"x": M23}, "x", lambda x: cr.take(x, [5, 0, 5, -1]) * x[0, 0],
      lambda x: np.take(x, [5, 0, 5, -1]) * x[0, 0]),
    J("take_axis1", {"x": inp((2, 4))}, "x", lambda x: cr.sin(cr.take(x, IDX, axis=1)),
      lambda x: np.sin(np.take(x, IDX, axis=1))),
    J("take_1d", {"x": V4}, "x", lambda x: cr.take(x, [1, 1, 3]) * x[:3],
      lambda x: np.take(x, [1, 1, 3]) * x[:3]),
    J("concatenate", {"x": M23}, "x",
      lambda x: cr.concatenate([x, cr.sin(x[:, :1])], axis=1),
      lambda x: np.concatenate([x, np.sin(x[:, :1])], axis=1)),
    J("concatenate_constant_part", {"x": V3}, "x",
      lambda x: cr.concatenate([x * x, np.ones(2)]),
      lambda x: np.concatenate([x * x, np.ones(2)])),
    J("stack", {"x": V3, "y": V3}, "y", lambda x, y: cr.stack([x, x * y, y], axis=-1),
      lambda x, y: np.stack([x, x * y, y], axis=-1)),
    # -- reshape, transpose, expand/squeeze, tensordot ----------------------------------
    J("reshape_transpose", {"x": inp((2, 3, 2))}, "x",
      lambda x: cr.exp(x.reshape(3, 4).T), lambda x: np.exp(x.reshape(3, 4).T)),
    J("transpose_axes", {"x": inp((2, 3, 2))}, "x",
      lambda x: cr.transpose(x, (2, 0, 1)) * x[0, 0, 0],
      lambda x: np.transpose(x, (2, 0, 1)) * x[0, 0, 0]),
    J("expand_squeeze", {"x": inp((1, 3))}, "x",
      lambda x: cr.squeeze(cr.expand_dims(x, 0) * x, 0),
      lambda x: np.squeeze(np.expand_dims(x, 0) * x, 0)),
    J("tensordot_wrt_a", {"a": inp((2, 3, 2)), "b": inp((3, 2, 2))}, "a",
      lambda a, b: cr.tensordot(a, b), np.tensordot),
    J("tensordot_wrt_b", {"a": inp((2, 3, 2)), "b": inp((3, 2, 2))}, "b",
      lambda a, b: cr.tensordot(a, b), np.tensordot),
    J("tensordot_unsorted", {"a": inp((3, 2, 2)), "b": inp((2, 2, 3))}, "a",
      lambda a, b: cr.tensordot(a, b, axes=([1, 2], [1, 0])),
      lambda a, b: np.tensordot(a, b, axes=([1, 2], [1, 0]))),
    J("tensordot_self", {"a": inp((2, 2))}, "a", lambda a: cr.tensordot(a, a, 1),
      lambda a: np.tensordot(a, a, 1)),
    # -- selection ------------------------------------------------------------------------
    J("where", {"x": inp((2, 3))}, "x", lambda x: cr.where(x > 0, x * x, -x),
      lambda x: np.where(x > 0, x * x, -x)),
    J("maximum", {"x": V4, "y": V4}, "y", lambda x, y: cr.maximum(x, y) * cr.minimum(x, y * 2),
      lambda x, y: np.maximum(x, y) * np.minimum(x, y * 2)),
    J("clip", {"x": inp((2, 3), kind="wide")}, "x", lambda x: cr.clip(x, -0.5, 0.5) * x,
      lambda x: np.clip(x, -0.5, 0.5) * x),
    J("clip_wrt_bound", {"x": inp((2, 3), kind="wide"), "hi": V3}, "hi",
      lambda x, hi: cr.clip(x, -0.5, hi), lambda x, hi: np.clip(x, -0.5, hi)),
    # -- unknown (None) data dims: the run-time shaped helpers batch too ----------------
    J("none_batch_mean", {"X": inp((None, 3), (5, 3)), "W": inp((3, 2))}, "W",
      lambda X, W: cr.mean(cr.tanh(X @ W), axis=0),
      lambda X, W: np.mean(np.tanh(X @ W), axis=0)),
    J("none_batch_loss_grad", {"X": inp((None, 3), (4, 3)), "w": V3}, "w",
      lambda X, w: cr.grad(cr.mean((cr.tanh(X @ w) - 1.0) ** 2), w),
      lambda X, w: (2 * (np.tanh(X @ w) - 1.0) * (1 - np.tanh(X @ w) ** 2)) @ X / X.shape[0]),
    J("none_ambiguous_broadcast", {"z": inp((None,), (1,)), "x": V3}, "x",
      lambda z, x: cr.grad(cr.sum(z * x * x), x) + x,
      lambda z, x: 2 * z * x + x),
    J("none_take_reshape", {"X": inp((None, 4), (3, 4)), "x": V4}, "x",
      lambda X, x: cr.grad(cr.sum(cr.take((X * x)[:, 1:], [2, 0], axis=1).reshape(-1) ** 2), x),
      lambda X, x: np.array([0.0] + [0.0] * 3) + np.concatenate(
          [[0.0], [np.sum(2 * (X[:, 1] * x[1]) * X[:, 1])], [0.0],
           [np.sum(2 * (X[:, 3] * x[3]) * X[:, 3])]])),
    # -- jacobians of jacobians (tensor-valued, banded ops in the graph) -----------------
    J("jacobian_of_jacobian_fwd", {"x": V3}, "x",
      lambda x: cr.jacobian(cr.sin(x) * x[0], x, mode="forward"), _jac_sin_x0),
    J("jacobian_of_jacobian_rev", {"x": V3}, "x",
      lambda x: cr.jacobian(cr.sin(x) * x[0], x, mode="reverse"), _jac_sin_x0),
    J("jacobian_with_constant_band", {"x": V4}, "x",
      lambda x: cr.jacobian(x[1:] * x[1:] + x[:-1], x, mode="forward"), _jac_rosen_like),
]

_IDS = [c.id for c in CASES]
assert len(set(_IDS)) == len(_IDS)


def sample(kind, shape, rng):
    if kind == "pos":
        return rng.uniform(0.5, 2.0, size=shape)
    if kind == "wide":  # away from clip's kinks at +-0.5
        v = rng.uniform(0.6, 1.5, size=shape) * rng.choice([-1.0, 1.0], size=shape)
        v.reshape(-1)[::3] *= 0.3  # some entries inside the interval
        return v
    v = rng.normal(size=shape)
    return v


def values(case):
    rng = np.random.default_rng(zlib.crc32(case.id.encode()))
    return {n: sample(case.inputs[n][2], case.shapes(n)[1], rng) for n in case.inputs}


def fd_jacobian(fn, vals, wrt, eps=1e-6):
    """Central finite differences of ``fn(vals)`` with respect to
    ``vals[wrt]``, laid out ``out.shape + x.shape``."""
    x0 = np.array(vals[wrt], dtype=np.float64)
    cols = []
    for i in range(x0.size):
        xp, xm = x0.copy().reshape(-1), x0.copy().reshape(-1)
        xp[i] += eps
        xm[i] -= eps
        up = np.asarray(fn(dict(vals, **{wrt: xp.reshape(x0.shape)})), np.float64)
        down = np.asarray(fn(dict(vals, **{wrt: xm.reshape(x0.shape)})), np.float64)
        cols.append((up - down) / (2 * eps))
    out = np.stack(cols, axis=-1)
    return out.reshape(out.shape[:-1] + x0.shape)


@functools.lru_cache(maxsize=None)
def built(case_id):
    case = next(c for c in CASES if c.id == case_id)
    vs = {n: cr.placeholder(n, case.shapes(n)[0]) for n in case.inputs}
    y = case.build(*vs.values())
    jacs = {m: cr.jacobian(y, vs[case.wrt], mode=m) for m in MODES}
    return vs, y, jacs


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", CASES, ids=_IDS)
def test_jacobian_modes_agree_with_finite_differences(case, backend):
    vs, y, jacs = built(case.id)
    vals = values(case)
    x = vs[case.wrt]
    f = cr.function(list(vs.values()), [jacs[m] for m in MODES], backend=backend)
    got = dict(zip(MODES, f(**vals)))
    want = fd_jacobian(case.reference, vals, case.wrt)
    out_shape = np.shape(case.reference(vals))
    assert want.shape == out_shape + case.shapes(case.wrt)[1]
    for m in MODES:
        assert jacs[m].shape == y.shape + x.shape, m
        assert got[m].shape == want.shape and got[m].dtype == np.float64, m
        np.testing.assert_allclose(got[m], want, rtol=1e-6, atol=1e-7,
                                   err_msg=f"{m} mode vs finite differences")
    np.testing.assert_allclose(got["forward"], got["reverse"], rtol=1e-10, atol=1e-12)
    choice = cr.explain_jacobian(y, x)["choice"]
    np.testing.assert_array_equal(got["auto"], got[choice])


def _batched_ops():
    return {name for name, op in REGISTRY.items() if op.batch is not None}


def test_every_batching_rule_is_exercised(monkeypatch):
    """Every op's ``batch`` rule, the generic elementwise rule and the banded
    tangents run while building the Jacobians of the cases above or the
    batched graphs of the vmap tests below. (Tangent and cotangent graphs
    are linear in the seed, so the rules of nonlinear ops such as softmax
    or max run only when a primal graph is batched: the vmap tests.)"""
    seen = {}

    def spy(name, rule, where):
        def wrapped(out, args, batched):
            seen.setdefault(name, where[0])
            return rule(out, args, batched)
        return wrapped

    where = ["jacobian"]
    for name in _batched_ops():
        monkeypatch.setattr(REGISTRY[name], "batch", spy(name, REGISTRY[name].batch, where))
    monkeypatch.setattr(batching, "elementwise_rule",
                        spy("<elementwise>", batching.elementwise_rule, where))
    monkeypatch.setattr(batching, "banded_rule", spy("<banded>", batching.banded_rule, where))
    for case in CASES:
        vs = {n: cr.placeholder(n, case.shapes(n)[0]) for n in case.inputs}
        y = case.build(*vs.values())
        for m in ("forward", "reverse"):
            cr.jacobian(y, vs[case.wrt], mode=m)
    where[0] = "vmap"
    for outs, seeds in _vmap_graphs():
        for seed in seeds:
            batch_graph(outs, {seed.id: cr.placeholder("s", (K,) + seed.shape, seed.dtype)})
    missing = (_batched_ops() | {"<elementwise>", "<banded>"}) - set(seen)
    assert not missing, f"batching rules no test runs: {sorted(missing)}"
    # the linear data-movement and product ops are met by Jacobians themselves
    linear = {"matmul", "tensordot", "sum", "mean", "reshape", "transpose", "expand_dims",
              "squeeze", "broadcast_to", "getitem", "getitem_grad", "take", "take_grad",
              "concatenate", "sum_to_like", "broadcast_like", "bands_to_dense", "band_of",
              "<elementwise>", "<banded>"}
    assert {n for n in linear if seen.get(n) != "jacobian"} == set()


# -- regressions found by the cases above, spelled out -------------------------------

def test_forward_jacobian_of_a_broadcast_length1_slice(backend):
    """A length-1 slice of a 1-D input spread along a longer vector: its
    tangent is one column, not a diagonal (the banded sweep used to place
    the entries on the diagonal and drop the rest)."""
    x, z = cr.placeholder("x", (3,)), cr.placeholder("z", (4,))
    j = cr.jacobian(x[1:2] * z, x, mode="forward")
    zv = np.array([1.0, 2.0, 3.0, 4.0])
    got = cr.function([x, z], j, backend=backend)(np.ones(3), zv)
    want = np.zeros((4, 3))
    want[:, 1] = zv
    np.testing.assert_array_equal(got, want)


def test_hessian_with_an_unknown_batch_dim(backend):
    """The everyday case: the Hessian of a loss over a data batch of
    unknown size (used to raise 'jacobian/hessian need every shape ...')."""
    X = cr.placeholder("X", (None, 2))
    w = cr.placeholder("w", (2,))
    loss = cr.mean((X @ w - 1.0) ** 2)
    H = cr.hessian(loss, w)
    Xv = np.array([[1.0, 2.0], [0.5, -1.0], [3.0, 0.0]])
    got = cr.function([X, w], H, backend=backend)(Xv, np.zeros(2))
    np.testing.assert_allclose(got, 2 * Xv.T @ Xv / 3, rtol=1e-12)


# -- the jacobian API ---------------------------------------------------------------

def test_jacobian_errors():
    x = cr.placeholder("x", (3,))
    with pytest.raises(ValueError, match="mode"):
        cr.jacobian(x * x, x, mode="sideways")
    with pytest.raises(cr.ShapeError, match="known"):
        cr.jacobian(x * x, cr.placeholder("b", (None,)))
    xb = cr.placeholder("xb", (None,))
    with pytest.raises(cr.ShapeError, match="xb"):
        cr.jacobian(cr.sum(xb), xb)
    i = cr.placeholder("i", (3,), "int64")
    with pytest.raises(cr.NotDifferentiableError, match="int64.*cast it to a float"):
        cr.jacobian(i * 2, i)
    with pytest.raises(cr.NotDifferentiableError, match="i is int64"):
        cr.hessian(cr.sum(i * x), i)
    with pytest.raises(TypeError):
        cr.jacobian(np.ones(3), x)


@pytest.mark.parametrize("mode", MODES)
def test_jacobian_of_a_disconnected_output_is_zero(mode, backend):
    x, z = cr.placeholder("x", (3,)), cr.placeholder("z", (2,))
    j = cr.jacobian(cr.sin(z), x, mode=mode)
    assert j.shape == (2, 3)
    got = cr.function([x, z], j, backend=backend)(np.ones(3), np.ones(2))
    np.testing.assert_array_equal(got, np.zeros((2, 3)))


@pytest.mark.parametrize("mode", MODES)
def test_jacobian_of_identity_and_of_stop_gradient(mode, backend):
    x = cr.placeholder("x", (2, 2))
    f = cr.function([x], [cr.jacobian(x * 1.0, x, mode=mode),
                          cr.jacobian(cr.stop_gradient(x) * x, x, mode=mode)],
                    backend=backend)
    xv = np.array([[1.0, 2.0], [3.0, 4.0]])
    eye, sg = f(xv)
    np.testing.assert_array_equal(eye, np.eye(4).reshape(2, 2, 2, 2))
    np.testing.assert_array_equal(sg, (np.eye(4) * xv.reshape(-1)).reshape(2, 2, 2, 2))


@pytest.mark.parametrize("mode", MODES)
def test_jacobian_of_float32_stays_float32(mode, backend):
    x = cr.placeholder("x", (3,), "float32")
    j = cr.jacobian(cr.tanh(x) * x[0], x, mode=mode)
    assert j.dtype == np.float32
    xv = np.array([0.5, -1.0, 2.0], np.float32)
    got = cr.function([x], j, backend=backend)(xv)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, _jac_tanh_x0(xv.astype(np.float64)), rtol=1e-6)


@pytest.mark.parametrize("dx,dy", [("float64", "float32"), ("float32", "float64")])
def test_jacobian_dtype_is_y_dtype_in_every_mode(dx, dy, backend):
    """Mixed precision: every mode gives y's dtype (reverse mode used to
    end in x's, so "auto" depended on the cost model's choice)."""
    x = cr.placeholder("x", (3,), dx)
    y = cr.cast(cr.sin(x) * 2.0, dy)
    xv = np.array([0.1, 0.2, 0.3], dx)
    for mode in MODES:
        j = cr.jacobian(y, x, mode=mode)
        assert j.dtype == np.dtype(dy), mode
        got = cr.function([x], j, backend=backend)(xv)
        assert got.dtype == np.dtype(dy), mode
        np.testing.assert_allclose(got, np.diag(2 * np.cos(xv.astype(np.float64))), rtol=1e-6)


def _jac_tanh_x0(x):
    j = np.diag((1 - np.tanh(x) ** 2) * x[0])
    j[:, 0] += np.tanh(x)
    return j


# -- the batching transform itself: batch each table graph, compare with a loop -----

K = 3


def _batch_and_loop(outputs, seed, seed_values, feed, loop):
    sb = cr.placeholder("seed_batch", (K,) + seed.shape, seed.dtype)
    batched = batch_graph(outputs, {seed.id: sb})
    keep = [i for i, b in enumerate(batched) if b is not None]
    if not keep:
        return
    for backend in BACKENDS:
        ins = [v for v in cr.inputs_of([batched[i] for i in keep]).values()]
        assert seed not in ins, "a batched graph still reads the unbatched seed"
        f = cr.function(ins, [batched[i] for i in keep], backend=backend)
        got = f(**{v.name: (seed_values if v is sb else feed[v.name]) for v in ins})
        for i in range(K):
            want = loop(seed_values[i])
            for j, g in zip(keep, got):
                w = np.asarray(want[j])
                assert g[i].shape == w.shape and g[i].dtype == w.dtype, (j, i)
                np.testing.assert_allclose(g[i], w, rtol=1e-10, atol=1e-12)


_TABLE = test_ops.CASES


def _vmap_graphs():
    """(outputs, seeds) of every graph the vmap tests batch."""
    for case in _TABLE:
        for name in case.inputs:
            vs = {n: cr.placeholder(n, s.shape, s.dtype) for n, s in case.inputs.items()}
            yield [case.build(*vs.values())], [vs[name]]
    for case in test_ops.GRAD_CASES:
        b = test_ops.build(case.id)
        yield b.grads + b.hvp, [b.weight] + b.dirs + b.wrt


@pytest.mark.parametrize("case", _TABLE, ids=[c.id for c in _TABLE])
def test_batching_each_input_of_each_op_matches_a_loop(case):
    """vmap over each input of each table case in turn (ints and bools too):
    slice i of the batched output equals the NumPy reference on slice i."""
    vals, rng = test_ops.case_values(case)
    for name, spec in case.inputs.items():
        vs = {n: cr.placeholder(n, s.shape, s.dtype) for n, s in case.inputs.items()}
        out = case.build(*vs.values())
        stack = np.stack([vals[name]] + [test_ops.sample(spec, rng) for _ in range(K - 1)])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            _batch_and_loop([out], vs[name], stack, vals,
                            lambda v: [case.reference(**dict(vals, **{name: v}))])


@pytest.mark.parametrize("case", test_ops.GRAD_CASES, ids=[c.id for c in test_ops.GRAD_CASES])
def test_batching_derivative_graphs_matches_a_loop(case):
    """vmap of the gradient and Hessian-vector graphs of each table case
    over the output cotangent, over the direction (the situations of a
    reverse-mode Jacobian and of a Hessian) and over each input (per-example
    gradients). The loop evaluates the unbatched graphs (checked against
    finite differences in test_ops)."""
    b = test_ops.build(case.id)
    vals, rng = test_ops.case_values(case)
    feed = dict(vals)
    feed["w_out"] = rng.normal(size=np.shape(case.reference(**vals)))
    for d in b.dirs:
        feed[d.name] = rng.normal(size=np.shape(vals[d.name[2:]]))
    outs = b.grads + b.hvp
    ins = list(b.vars.values()) + [b.weight] + b.dirs
    f = cr.function(ins, outs, backend="interpreter")
    for seed in [b.weight] + b.dirs + b.wrt:
        if seed in b.wrt:
            spec = case.inputs[seed.name]
            stack = np.stack([feed[seed.name]] + [test_ops.sample(spec, rng)
                                                  for _ in range(K - 1)])
        else:
            stack = np.stack([rng.normal(size=np.shape(feed[seed.name])) for _ in range(K)])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            _batch_and_loop(outs, seed, stack, feed,
                            lambda v: f(**dict(feed, **{seed.name: v})))


@pytest.mark.parametrize("axis", [None, 0, 1])
def test_batching_take_over_its_indices(axis, backend):
    """vmap over the integer indices of take (the array unbatched)."""
    a = cr.placeholder("a", (3, 4))
    i = cr.placeholder("i", (2,), "int64")
    out = cr.take(a, i, axis=axis)
    ib = cr.placeholder("ib", (K, 2), "int64")
    batched = batch_graph([out], {i.id: ib})[0]
    av = np.arange(12.0).reshape(3, 4)
    iv = np.array([[0, 2], [1, 1], [2, 0]])
    got = cr.function([a, ib], batched, backend=backend)(av, iv)
    for k in range(K):
        np.testing.assert_array_equal(got[k], np.take(av, iv[k], axis=axis))
