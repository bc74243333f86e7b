"""Every op and operator, driven from one table.

For each case: the value on both backends equals hand-written NumPy (shape
and dtype included); the gradient of a random-weighted sum of the output
equals central finite differences of the NumPy reference in float64; the
op-level JVP rules agree with a finite-difference directional derivative;
and a Hessian-vector product (reverse over reverse) agrees with finite
differences of the gradient. A final test checks that every op in the
registry is exercised by the table, so a new op without a case fails.
"""

from __future__ import annotations

import functools
import math
import zlib
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pytest

import chainrule as cr
from chainrule.ops.shape import shape_as
from chainrule.ir import REGISTRY, topo_order
from chainrule.ops.banded import band_of, bands_to_dense  # forward-mode jacobian tangents
from chainrule.ops.shape import eye_seed  # the identity seeds of jacobian sweeps

from conftest import BACKENDS, numeric_directional, numeric_grad

LEAVES = {"placeholder", "constant", "parameter"}


# -- the table ------------------------------------------------------------------

@dataclass(frozen=True)
class P:
    """An input: declared shape (None = unknown dim), run-time shape, values."""
    shape: tuple = ()
    kind: str = "normal"   # normal | pos | unit | bool | int:lo:hi | zeros:k
    dtype: str = "float64"
    run: tuple | None = None  # run-time shape when ``shape`` has None dims

    @property
    def run_shape(self):
        return self.run if self.run is not None else self.shape

    @property
    def is_float(self):
        return np.dtype(self.dtype).kind == "f"


@dataclass
class Case:
    id: str
    inputs: dict
    build: Callable
    ref: Callable | None = None  # defaults to ``build`` (operators work on arrays)
    grad: bool = True
    second: bool = True  # False: the second derivative must raise instead
    eps: float = 1e-6
    rtol: float = 1e-6

    def reference(self, **arrays):
        return (self.ref or self.build)(*[arrays[n] for n in self.inputs])


def sample(spec: P, rng):
    shape = spec.run_shape
    kind = spec.kind
    if kind == "normal":
        v = rng.normal(size=shape)
    elif kind == "pos":
        v = rng.uniform(0.5, 2.0, size=shape)
    elif kind == "unit":
        v = rng.uniform(-0.9, 0.9, size=shape)
    elif kind == "bool":
        v = rng.random(size=shape) < 0.5
    elif kind.startswith("int:"):
        lo, hi = (int(s) for s in kind.split(":")[1:])
        v = rng.integers(lo, hi, size=shape)
    elif kind.startswith("zeros:"):  # normal values with k exact zeros
        v = rng.normal(size=shape)
        v.reshape(-1)[: int(kind.split(":")[1])] = 0.0
    else:
        raise ValueError(kind)
    return np.asarray(v, dtype=spec.dtype)


def _erf(x):
    return np.vectorize(math.erf, otypes=[np.float64])(x)


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _lse(x, axis=None, keepdims=False):
    return np.log(np.sum(np.exp(x), axis=axis, keepdims=keepdims))


def _softmax(x, axis=-1):
    e = np.exp(x)
    return e / e.sum(axis=axis, keepdims=True)


def _dense_ref(vs, offsets, rows):
    m = vs[0].shape[-1]
    out = np.zeros(vs[0].shape[:-1] + (rows, m))
    for v, k in zip(vs, offsets):
        for j in range(m):
            if 0 <= j + k < rows:
                out[..., j + k, j] += v[..., j]
    return out


def _band_ref(g, k):
    rows, m = g.shape[-2:]
    out = np.zeros(g.shape[:-2] + (m,))
    for j in range(m):
        if 0 <= j + k < rows:
            out[..., j] = g[..., j + k, j]
    return out


A23 = np.array([[1.0, -2.0, 0.5], [3.0, 0.25, -1.0]])
M = P((2, 3))
V3 = P((3,))


def unary_cases():
    table = [
        ("exp", cr.exp, np.exp, "normal"),
        ("log", cr.log, np.log, "pos"),
        ("log1p", cr.log1p, np.log1p, "pos"),
        ("expm1", cr.expm1, np.expm1, "normal"),
        ("sqrt", cr.sqrt, np.sqrt, "pos"),
        ("square", cr.square, np.square, "normal"),
        ("sin", cr.sin, np.sin, "normal"),
        ("cos", cr.cos, np.cos, "normal"),
        ("tan", cr.tan, np.tan, "unit"),
        ("tanh", cr.tanh, np.tanh, "normal"),
        ("sigmoid", cr.sigmoid, _sigmoid, "normal"),
        ("relu", cr.relu, lambda x: np.maximum(x, 0.0), "normal"),
        ("softplus", cr.softplus, lambda x: np.log1p(np.exp(x)), "normal"),
        ("abs", cr.abs, np.abs, "normal"),
        ("sign", cr.sign, np.sign, "normal"),
        ("erf", cr.erf, _erf, "normal"),
        ("negative", cr.negative, np.negative, "normal"),
    ]
    for name, f, ref, kind in table:
        yield Case(name, {"x": P((2, 3), kind)}, lambda x, f=f: f(x),
                   lambda x, ref=ref: ref(x))


CASES = list(unary_cases()) + [
    # -- operators ------------------------------------------------------------
    Case("op_neg", {"x": M}, lambda x: -x),
    Case("op_pos", {"x": M}, lambda x: +x),
    Case("op_abs", {"x": M}, lambda x: abs(x)),
    Case("op_add_broadcast", {"x": M, "y": V3}, lambda x, y: x + y),
    Case("op_radd", {"x": M}, lambda x: 2.5 + x),
    Case("op_radd_array", {"x": M}, lambda x: A23 + x),
    Case("op_sub", {"x": M, "y": P((2, 1))}, lambda x, y: x - y),
    Case("op_rsub", {"x": M}, lambda x: 1.5 - x),
    Case("op_mul", {"x": M, "y": M}, lambda x, y: x * y),
    Case("op_mul_self", {"x": M}, lambda x: x * x),
    Case("op_rmul_array", {"x": M}, lambda x: A23 * x),
    Case("op_div", {"x": M, "y": P((3,), "pos")}, lambda x, y: x / y),
    Case("op_rdiv", {"x": P((2, 3), "pos")}, lambda x: 2.0 / x),
    Case("op_pow_const", {"x": M}, lambda x: x ** 3),
    Case("op_pow_half", {"x": P((2, 3), "pos")}, lambda x: x ** 0.5),
    Case("op_pow_neg", {"x": P((2, 3), "pos")}, lambda x: x ** -2.0),
    Case("op_pow_vars", {"x": P((2, 3), "pos"), "y": V3}, lambda x, y: x ** y),
    Case("op_rpow", {"x": M}, lambda x: 2.0 ** x),
    Case("op_matmul", {"x": M, "W": P((3, 4))}, lambda x, W: x @ W),
    Case("op_matmul_vec_mat", {"v": V3, "W": P((3, 4))}, lambda v, W: v @ W),
    Case("op_matmul_mat_vec", {"x": M, "v": V3}, lambda x, v: x @ v),
    Case("op_matmul_vec_vec", {"u": V3, "v": V3}, lambda u, v: u @ v),
    Case("op_matmul_batch", {"a": P((2, 2, 3)), "b": P((3, 2))}, lambda a, b: a @ b),
    Case("op_matmul_batch_broadcast", {"a": P((2, 1, 2, 3)), "b": P((3, 3, 2))},
         lambda a, b: a @ b),
    Case("op_matmul_vec_batch", {"v": V3, "b": P((2, 3, 2))}, lambda v, b: v @ b),
    Case("op_matmul_batch_vec", {"a": P((2, 2, 3)), "v": V3}, lambda a, v: a @ v),
    Case("op_rmatmul_array", {"x": P((3, 2))}, lambda x: A23 @ x),
    Case("op_lt", {"x": M, "y": M}, lambda x, y: x < y, grad=False),
    Case("op_le", {"x": P((2, 3), "int:0:3", "int64"), "y": P((3,), "int:0:3", "int64")},
         lambda x, y: x <= y, grad=False),
    Case("op_gt", {"x": M}, lambda x: x > 0.1, grad=False),
    Case("op_ge", {"x": M}, lambda x: A23 >= x, grad=False),
    # -- indexing -----------------------------------------------------------------
    Case("index_int", {"x": P((3, 4))}, lambda x: x[1]),
    Case("index_negative", {"x": P((3, 4))}, lambda x: x[-1, 2]),
    Case("index_slice", {"x": P((3, 4))}, lambda x: x[:, 1:3]),
    Case("index_step", {"x": P((5, 4))}, lambda x: x[::-2, 1::2]),
    Case("index_newaxis", {"x": P((3, 4))}, lambda x: x[None]),
    Case("index_ellipsis", {"x": P((2, 3, 4))}, lambda x: x[..., 0]),
    Case("index_mixed", {"x": P((2, 3, 4))}, lambda x: x[1, None, :, -2:]),
    Case("index_list", {"x": P((4, 3))}, lambda x: x[[3, 0, 3]]),
    # -- methods and shape ops --------------------------------------------------------
    Case("T", {"x": M}, lambda x: x.T),
    Case("T_3d", {"x": P((2, 3, 4))}, lambda x: x.T),
    Case("transpose_method", {"x": P((2, 3, 4))}, lambda x: x.transpose(1, 0, 2)),
    Case("transpose_fn", {"x": P((2, 3, 4))}, lambda x: cr.transpose(x, (2, 0, 1)),
         lambda x: np.transpose(x, (2, 0, 1))),
    Case("transpose_default", {"x": M}, lambda x: cr.transpose(x), np.transpose),
    Case("reshape_method", {"x": P((2, 3, 2))}, lambda x: x.reshape(3, 4)),
    Case("reshape_infer", {"x": P((2, 3, 2))}, lambda x: x.reshape((-1, 2))),
    Case("reshape_fn", {"x": M}, lambda x: cr.reshape(x, 6), lambda x: np.reshape(x, 6)),
    Case("broadcast_to", {"x": P((3, 1))}, lambda x: cr.broadcast_to(x, (2, 3, 4)),
         lambda x: np.broadcast_to(x, (2, 3, 4))),
    Case("expand_dims", {"x": M}, lambda x: cr.expand_dims(x, (0, 2)),
         lambda x: np.expand_dims(x, (0, 2))),
    Case("squeeze", {"x": P((1, 3, 1))}, lambda x: cr.squeeze(x), np.squeeze),
    Case("squeeze_axis", {"x": P((1, 3, 1))}, lambda x: cr.squeeze(x, 2),
         lambda x: np.squeeze(x, 2)),
    Case("astype_int", {"x": P((2, 3), "unit")}, lambda x: (3 * x).astype("int32"),
         grad=False),
    Case("astype_float32_roundtrip", {"x": M},
         lambda x: (x.astype(np.float32) * 2.0).astype("float64"),
         lambda x: (x.astype(np.float32) * np.float32(2.0)).astype(np.float64),
         eps=1e-2, rtol=1e-4),
    Case("cast_bool_to_float", {"x": M}, lambda x: cr.cast(x > 0, "float64") * x,
         lambda x: (x > 0).astype(np.float64) * x),
    Case("cast_int_to_float", {"i": P((4,), "int:-3:3", "int32")},
         lambda i: cr.cast(i, np.float64), lambda i: i.astype(np.float64), grad=False),
    Case("stack", {"x": V3, "y": V3}, lambda x, y: cr.stack([x, y]),
         lambda x, y: np.stack([x, y])),
    Case("stack_last", {"x": M, "y": M, "z": M}, lambda x, y, z: cr.stack([x, y, z], -1),
         lambda x, y, z: np.stack([x, y, z], -1)),
    Case("concatenate_0", {"x": M, "y": P((1, 3))},
         lambda x, y: cr.concatenate([x, y]), lambda x, y: np.concatenate([x, y])),
    Case("concatenate_1", {"x": M, "y": P((2, 1)), "z": P((2, 2))},
         lambda x, y, z: cr.concatenate((x, y, z), axis=1),
         lambda x, y, z: np.concatenate((x, y, z), axis=1)),
    # sizes along the axis known at run time only: the gradient slices there
    Case("concatenate_unknown", {"x": P((None, 3), run=(2, 3)), "y": P((None, 3), run=(1, 3)),
                                 "z": M},
         lambda x, y, z: cr.concatenate([x, y * y, z]),
         lambda x, y, z: np.concatenate([x, y * y, z])),
    Case("concatenate_unknown_1", {"x": P((2, None), run=(2, 2)), "y": P((2, 1))},
         lambda x, y: cr.concatenate([cr.sin(x), y], axis=1),
         lambda x, y: np.concatenate([np.sin(x), y], axis=1)),
    # a seed checked to have its primal's run-time shape (as_seed's op)
    Case("shape_as", {"x": P((None, 3), run=(2, 3)), "y": P((2, None), run=(2, 3))},
         lambda x, y: shape_as(cr.sin(x), y) * y, lambda x, y: np.sin(x) * y),
    Case("concatenate_none", {"x": M, "y": V3},
         lambda x, y: cr.concatenate([x, y], axis=None),
         lambda x, y: np.concatenate([x, y], axis=None)),
    Case("take_flat", {"x": M}, lambda x: cr.take(x, [5, 0, 5, -1]),
         lambda x: np.take(x, [5, 0, 5, -1])),
    Case("take_axis1", {"x": P((2, 4))}, lambda x: cr.take(x, np.array([[3, 1], [1, 1]]), axis=1),
         lambda x: np.take(x, np.array([[3, 1], [1, 1]]), axis=1)),
    Case("take_placeholder", {"x": P((5, 2)), "i": P((4,), "int:0:5", "int64")},
         lambda x, i: cr.take(x, i, axis=0), lambda x, i: np.take(x, i, axis=0)),
    # -- reductions ----------------------------------------------------------------------
    Case("sum_all", {"x": P((2, 3, 4))}, lambda x: x.sum()),
    Case("sum_axis", {"x": P((2, 3, 4))}, lambda x: x.sum(axis=1)),
    Case("sum_axes_keepdims", {"x": P((2, 3, 4))}, lambda x: x.sum(axis=(0, 2), keepdims=True)),
    Case("sum_fn_negative_axis", {"x": P((2, 3, 4))}, lambda x: cr.sum(x, -1),
         lambda x: np.sum(x, -1)),
    Case("mean_all", {"x": P((2, 3, 4))}, lambda x: x.mean()),
    Case("mean_axis_keepdims", {"x": P((2, 3, 4))}, lambda x: x.mean(axis=0, keepdims=True)),
    Case("mean_fn", {"x": P((2, 3, 4))}, lambda x: cr.mean(x, (1, 2)),
         lambda x: np.mean(x, (1, 2))),
    Case("max_all", {"x": P((2, 3, 4))}, lambda x: x.max()),
    Case("max_axis", {"x": P((2, 3, 4))}, lambda x: x.max(axis=2)),
    Case("max_fn_keepdims", {"x": P((2, 3, 4))}, lambda x: cr.max(x, 1, keepdims=True),
         lambda x: np.max(x, 1, keepdims=True)),
    Case("min_all", {"x": P((2, 3, 4))}, lambda x: x.min()),
    Case("min_axes", {"x": P((2, 3, 4))}, lambda x: x.min(axis=(0, 1))),
    Case("min_fn", {"x": M}, lambda x: cr.min(x, 0), lambda x: np.min(x, 0)),
    Case("prod_all", {"x": M}, lambda x: x.prod()),
    Case("prod_axis_keepdims", {"x": P((2, 3, 4))}, lambda x: x.prod(axis=1, keepdims=True)),
    Case("prod_one_zero", {"x": P((2, 3), "zeros:1")}, lambda x: x.prod(axis=1)),
    Case("prod_two_zeros", {"x": P((5,), "zeros:2")}, lambda x: cr.prod(x), np.prod),
    Case("prod_axes_zeros", {"x": P((2, 3, 4), "zeros:3")}, lambda x: x.prod(axis=(0, 2))),
    Case("prod_kept_none", {"x": P((None, 3), "zeros:2", run=(2, 3))}, lambda x: x.prod(axis=1)),
    # the reduced size is unknown: exact partials (zeros too), no second derivative
    Case("prod_reduced_none", {"x": P((None, 3), run=(4, 3))}, lambda x: x.prod(axis=0),
         second=False),
    Case("prod_reduced_none_zeros", {"x": P((3, None), "zeros:2", run=(3, 4))},
         lambda x: x.prod(axis=1), second=False),
    Case("logsumexp_all", {"x": P((2, 3, 4))}, lambda x: cr.logsumexp(x), _lse),
    Case("logsumexp_axis", {"x": P((2, 3, 4))}, lambda x: cr.logsumexp(x, axis=1),
         lambda x: _lse(x, 1)),
    Case("logsumexp_keepdims", {"x": P((2, 3, 4))},
         lambda x: cr.logsumexp(x, axis=(0, 2), keepdims=True),
         lambda x: _lse(x, (0, 2), True)),
    Case("softmax", {"x": P((2, 3, 4))}, lambda x: cr.softmax(x), _softmax),
    Case("softmax_axis0", {"x": P((2, 3, 4))}, lambda x: cr.softmax(x, axis=0),
         lambda x: _softmax(x, 0)),
    Case("log_softmax", {"x": P((2, 3, 4))}, lambda x: cr.log_softmax(x),
         lambda x: np.log(_softmax(x))),
    Case("log_softmax_axis1", {"x": P((2, 3, 4))}, lambda x: cr.log_softmax(x, 1),
         lambda x: np.log(_softmax(x, 1))),
    # -- products -------------------------------------------------------------------------
    Case("matmul_fn", {"x": M, "W": P((3, 2))}, lambda x, W: cr.matmul(x, W), np.matmul),
    Case("dot_scalar", {"a": P(()), "b": M}, lambda a, b: cr.dot(a, b), np.dot),
    Case("dot_vec", {"a": V3, "b": V3}, lambda a, b: cr.dot(a, b), np.dot),
    Case("dot_mat", {"a": M, "b": P((3, 2))}, lambda a, b: cr.dot(a, b), np.dot),
    Case("dot_3d_2d", {"a": P((2, 2, 3)), "b": P((3, 2))}, lambda a, b: cr.dot(a, b), np.dot),
    Case("dot_3d_3d", {"a": P((2, 2, 3)), "b": P((2, 3, 2))}, lambda a, b: cr.dot(a, b), np.dot),
    Case("outer", {"a": V3, "b": M}, lambda a, b: cr.outer(a, b), np.outer),
    Case("tensordot_default", {"a": P((2, 3, 4)), "b": P((3, 4, 2))},
         lambda a, b: cr.tensordot(a, b), np.tensordot),
    Case("tensordot_1", {"a": P((2, 3)), "b": P((3, 4))},
         lambda a, b: cr.tensordot(a, b, axes=1), lambda a, b: np.tensordot(a, b, axes=1)),
    Case("tensordot_0", {"a": V3, "b": P((2,))},
         lambda a, b: cr.tensordot(a, b, 0), lambda a, b: np.tensordot(a, b, 0)),
    Case("tensordot_pairs", {"a": P((3, 2, 4)), "b": P((4, 5, 3))},
         lambda a, b: cr.tensordot(a, b, axes=([2, 0], [0, 2])),
         lambda a, b: np.tensordot(a, b, axes=([2, 0], [0, 2]))),
    Case("tensordot_unsorted", {"a": P((3, 4, 2)), "b": P((2, 4, 5))},
         lambda a, b: cr.tensordot(a, b, axes=([1, 2], [1, 0])),
         lambda a, b: np.tensordot(a, b, axes=([1, 2], [1, 0]))),
    # -- elementwise binary functions and selection --------------------------------------
    Case("add_fn", {"x": M, "y": P((2, 1))}, lambda x, y: cr.add(x, y), np.add),
    Case("subtract_fn", {"x": M, "y": V3}, lambda x, y: cr.subtract(x, y), np.subtract),
    Case("multiply_fn", {"x": P((3, 1)), "y": P((1, 4))}, lambda x, y: cr.multiply(x, y),
         np.multiply),
    Case("divide_fn", {"x": M, "y": P((2, 3), "pos")}, lambda x, y: cr.divide(x, y), np.divide),
    Case("power_fn", {"x": P((2, 3), "pos"), "y": M}, lambda x, y: cr.power(x, y), np.power),
    Case("maximum", {"x": M, "y": V3}, lambda x, y: cr.maximum(x, y), np.maximum),
    Case("maximum_const", {"x": M}, lambda x: cr.maximum(x, 0.2), lambda x: np.maximum(x, 0.2)),
    Case("minimum", {"x": M, "y": P((2, 1))}, lambda x, y: cr.minimum(x, y), np.minimum),
    Case("where", {"c": P((2, 3), "bool", "bool"), "x": M, "y": V3},
         lambda c, x, y: cr.where(c, x, y), np.where),
    Case("where_compare", {"x": M}, lambda x: cr.where(x > 0, x, 0.1 * x),
         lambda x: np.where(x > 0, x, 0.1 * x)),
    Case("where_int_condition", {"c": P((3,), "int:0:2", "int64"), "x": V3},
         lambda c, x: cr.where(c, x, -x), lambda c, x: np.where(c, x, -x)),
    Case("clip", {"x": M}, lambda x: cr.clip(x, -0.5, 0.5), lambda x: np.clip(x, -0.5, 0.5)),
    Case("clip_none", {"x": M}, lambda x: cr.clip(x, None, 0.3),
         lambda x: np.clip(x, None, 0.3)),
    Case("clip_vars", {"x": M, "lo": P((3,), "normal"), "hi": P((2, 1), "pos")},
         lambda x, lo, hi: cr.clip(x, lo - 1.0, hi), lambda x, lo, hi: np.clip(x, lo - 1.0, hi)),
    Case("clip_int_float_bounds", {"i": P((5,), "int:-3:4", "int64")},
         lambda i: cr.clip(i, 0.5, 2.5), lambda i: np.clip(i, 0.5, 2.5), grad=False),
    Case("clip_int_one_bound", {"i": P((5,), "int:-3:4", "int32")},
         lambda i: cr.clip(i, None, 1), lambda i: np.clip(i, None, 1), grad=False),
    Case("clip_array_bound", {"x": M}, lambda x: cr.clip(x, A23 - 1.0, None),
         lambda x: np.clip(x, A23 - 1.0, None)),
    Case("stop_gradient", {"x": M}, lambda x: cr.stop_gradient(x), lambda x: x, grad=False),
    Case("zeros_like", {"x": M}, lambda x: cr.zeros_like(x) + x, lambda x: np.zeros_like(x) + x),
    Case("ones_like", {"x": M}, lambda x: cr.ones_like(x) * 2.0 - x,
         lambda x: np.ones_like(x) * 2.0 - x),
    Case("ones_like_dtype", {"x": M}, lambda x: cr.ones_like(x, dtype="int32"),
         lambda x: np.ones_like(x, dtype="int32"), grad=False),
    # -- comparisons and logic ----------------------------------------------------------
    Case("equal", {"x": P((2, 3), "int:0:3", "int64"), "y": P((3,), "int:0:3", "int64")},
         lambda x, y: cr.equal(x, y), np.equal, grad=False),
    Case("not_equal", {"x": P((2, 3), "int:0:3", "int64")}, lambda x: cr.not_equal(x, 1),
         lambda x: np.not_equal(x, 1), grad=False),
    Case("less", {"x": M, "y": M}, lambda x, y: cr.less(x, y), np.less, grad=False),
    Case("less_equal", {"x": M}, lambda x: cr.less_equal(x, 0.0),
         lambda x: np.less_equal(x, 0.0), grad=False),
    Case("greater", {"x": M, "y": V3}, lambda x, y: cr.greater(x, y), np.greater, grad=False),
    Case("greater_equal", {"x": M, "y": V3}, lambda x, y: cr.greater_equal(x, y),
         np.greater_equal, grad=False),
    Case("logical_and", {"a": P((2, 3), "bool", "bool"), "b": P((3,), "bool", "bool")},
         lambda a, b: cr.logical_and(a, b), np.logical_and, grad=False),
    Case("logical_or", {"a": P((2, 3), "bool", "bool"), "b": P((2, 3), "bool", "bool")},
         lambda a, b: cr.logical_or(a, b), np.logical_or, grad=False),
    Case("logical_not", {"a": P((2, 3), "bool", "bool")}, lambda a: cr.logical_not(a),
         np.logical_not, grad=False),
    # -- unknown (None) dims: run-time shaped gradient helpers -------------------------
    Case("none_broadcast_add", {"x": P((None, 3), run=(4, 3)), "b": V3},
         lambda x, b: x + b),
    Case("none_ambiguous_broadcast", {"x": P((None,), run=(1,)), "y": P((None,), run=(4,))},
         lambda x, y: x * y),
    Case("none_mean", {"x": P((None, 3), run=(4, 3))}, lambda x: x.mean(axis=0)),
    Case("none_reshape", {"x": P((None, 3), run=(2, 3))}, lambda x: x.reshape(-1)),
    Case("none_sum_keepdims", {"x": P((None, 3), run=(2, 3))},
         lambda x: x.sum(axis=1, keepdims=True) * x),
    Case("none_zeros_like", {"x": P((None, 2), run=(3, 2))},
         lambda x: cr.zeros_like(x) + cr.ones_like(x) * x,
         lambda x: np.zeros_like(x) + np.ones_like(x) * x),
    Case("none_softmax_matmul", {"x": P((None, 3), run=(2, 3)), "W": P((3, 2))},
         lambda x, W: cr.softmax(x @ W), lambda x, W: _softmax(x @ W)),
    Case("none_index_reverse", {"x": P((None, 3), run=(4, 3))}, lambda x: x[::-1, ::-2]),
    Case("none_index_list", {"x": P((None, 3), run=(4, 3))}, lambda x: x[[0, 2, 0]]),
    Case("stack_scalars", {"s": P(())}, lambda s: cr.stack([s, 2.0, s * 3]),
         lambda s: np.stack([s, 2.0, s * 3])),
    Case("where_scalars", {"x": M}, lambda x: cr.where(x > 0.2, 1.0, x),
         lambda x: np.where(x > 0.2, 1.0, x)),
    Case("outer_scalars", {"s": P(()), "t": P(())}, lambda s, t: cr.outer(s, t), np.outer),
    Case("tensordot_negative_axes", {"a": M, "b": P((4, 3))},
         lambda a, b: cr.tensordot(a, b, axes=([-1], [-1])),
         lambda a, b: np.tensordot(a, b, axes=([-1], [-1]))),
    Case("mean_empty_axes", {"x": M}, lambda x: x.mean(axis=()), lambda x: np.mean(x, axis=())),
    Case("transpose_negative", {"x": P((2, 3, 4))}, lambda x: cr.transpose(x, (-1, 0, 1)),
         lambda x: np.transpose(x, (-1, 0, 1))),
    Case("take_scalar_index", {"x": P((2, 3))}, lambda x: cr.take(x, 1, axis=1),
         lambda x: np.take(x, 1, axis=1)),
    Case("take_2d_flat", {"x": P((2, 3))}, lambda x: cr.take(x, [[0, 5], [5, 2]]),
         lambda x: np.take(x, [[0, 5], [5, 2]])),
    Case("index_trailing_newaxis", {"x": P((2, 3))}, lambda x: x[..., None]),
    Case("index_newaxis_ellipsis_int", {"x": P((2, 3, 4))}, lambda x: x[None, ..., 0]),
    Case("index_negative_slice", {"x": P((5,))}, lambda x: x[-4:-1]),
    Case("concatenate_neg_axis", {"x": M, "y": P((2, 2))},
         lambda x, y: cr.concatenate([y, x, y], axis=-1),
         lambda x, y: np.concatenate([y, x, y], axis=-1)),
    Case("expand_dims_neg", {"x": M}, lambda x: cr.expand_dims(x, -1),
         lambda x: np.expand_dims(x, -1)),
    Case("where_none", {"c": P((3,), "bool", "bool"), "x": P((None, 3), run=(2, 3)),
                        "y": P((None, 1), run=(2, 1))},
         lambda c, x, y: cr.where(c, x, y), np.where),
    Case("bands_to_dense", {"a": P((4,)), "b": P((4,)), "c": P((4,))},
         lambda a, b, c: bands_to_dense([a, b, c], (0, 1, -2), 5),
         lambda a, b, c: _dense_ref([a, b, c], (0, 1, -2), 5)),
    Case("bands_to_dense_batched", {"a": P((2, 3))},
         lambda a: bands_to_dense([a], (1,), 3), lambda a: _dense_ref([a], (1,), 3)),
    Case("band_of", {"g": P((5, 4))}, lambda g: band_of(g, -1), lambda g: _band_ref(g, -1)),
    Case("band_of_batched", {"g": P((2, 3, 4))}, lambda g: band_of(g, 2),
         lambda g: _band_ref(g, 2)),
    Case("eye_seed", {"x": M}, lambda x: eye_seed((2, 3), "float64") * x,
         lambda x: np.eye(6).reshape(6, 2, 3) * x),
    Case("none_index_take", {"x": P((None, 4), run=(3, 4))},
         lambda x: cr.take(x[:, 1:], [2, 0], axis=1),
         lambda x: np.take(x[:, 1:], [2, 0], axis=1)),
]

_IDS = [c.id for c in CASES]
assert len(set(_IDS)) == len(_IDS), "duplicate case ids"
GRAD_CASES = [c for c in CASES if c.grad]


# -- building the graphs a case needs (once per case) ------------------------------

@dataclass
class Built:
    vars: dict
    out: cr.Var
    weight: cr.Var | None = None
    wrt: list = field(default_factory=list)
    grads: list = field(default_factory=list)
    dirs: list = field(default_factory=list)
    hvp: list = field(default_factory=list)
    tangents: list = field(default_factory=list)
    jvp: cr.Var | None = None


def jvp_sweep(out, seeds):
    """Forward-mode sweep over ``out``'s graph using each op's JVP rule
    (``seeds`` maps an input Var to its tangent Var). A test-local driver, so
    the rules are checked independently of the forward-mode module."""
    tans = {v.id: t for v, t in seeds.items()}
    for node in topo_order([out]):
        if node.is_leaf:
            continue
        ts = [tans.get(i.id) for i in node.inputs]
        if all(t is None for t in ts) or not node.op.differentiable:
            continue
        t = node.op.jvp(node, ts)
        if t is not None:
            assert len(t.shape) == len(node.shape) and all(
                a is None or b is None or a == b for a, b in zip(t.shape, node.shape)), \
                f"JVP of {node.op.name}: tangent shape {t.shape}, output {node.shape}"
            assert t.dtype == node.dtype, (node.op.name, t.dtype, node.dtype)
            tans[node.id] = t
    return tans.get(out.id)


@functools.lru_cache(maxsize=None)
def build(case_id) -> Built:
    case = next(c for c in CASES if c.id == case_id)
    vs = {n: cr.placeholder(n, s.shape, s.dtype) for n, s in case.inputs.items()}
    out = case.build(*vs.values())
    b = Built(vs, out)
    if not case.grad:
        return b
    b.weight = cr.placeholder("w_out", out.shape, out.dtype)
    cost = (out * b.weight).sum()
    b.wrt = [v for n, v in vs.items() if case.inputs[n].is_float]
    b.grads = cr.grad(cost, b.wrt)
    b.dirs = [cr.placeholder("v_" + v.name, v.shape, v.dtype) for v in b.wrt]
    s = cr.sum(b.grads[0] * b.dirs[0])
    for g, d in zip(b.grads[1:], b.dirs[1:]):
        s = s + cr.sum(g * d)
    if case.second:
        b.hvp = cr.grad(s, b.wrt)
    else:
        with pytest.raises(cr.NotDifferentiableError, match="size"):
            cr.grad(s, b.wrt)
    b.tangents = [cr.placeholder("t_" + v.name, v.shape, v.dtype) for v in b.wrt]
    b.jvp = jvp_sweep(out, dict(zip(b.wrt, b.tangents)))
    return b


def case_values(case):
    rng = np.random.default_rng(zlib.crc32(case.id.encode()))
    return {n: sample(s, rng) for n, s in case.inputs.items()}, rng


# -- the tests -------------------------------------------------------------------------

@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", CASES, ids=_IDS)
def test_value(case, backend):
    b = build(case.id)
    vals, _ = case_values(case)
    want = np.asarray(case.reference(**vals))
    got = cr.function(list(b.vars.values()), b.out, backend=backend)(**vals)
    assert isinstance(got, np.ndarray)
    assert got.dtype == want.dtype == b.out.dtype, (got.dtype, want.dtype, b.out.dtype)
    assert got.shape == want.shape
    assert len(b.out.shape) == got.ndim and all(
        d is None or d == e for d, e in zip(b.out.shape, got.shape)), (b.out.shape, got.shape)
    np.testing.assert_allclose(got, want, rtol=1e-7, atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", GRAD_CASES, ids=[c.id for c in GRAD_CASES])
def test_gradient(case, backend):
    """First derivatives against finite differences of the NumPy reference,
    second derivatives (Hessian-vector products) against finite differences
    of the first, and the JVP rules against a directional difference."""
    b = build(case.id)
    vals, rng = case_values(case)
    names = list(b.vars)
    wname = [n for n in names if case.inputs[n].is_float]
    out_val = np.asarray(case.reference(**vals))
    weight = rng.normal(size=out_val.shape)

    def cost(*floats):
        kw = dict(vals, **dict(zip(wname, floats)))
        return np.sum(np.asarray(case.reference(**kw), np.float64) * weight)

    inputs = list(b.vars.values()) + [b.weight] + b.dirs + b.tangents
    k = len(wname)
    f = cr.function(inputs, b.grads + b.hvp + ([b.jvp] if b.jvp is not None else []),
                    backend=backend)
    dirs = [rng.normal(size=vals[n].shape) for n in wname]
    tans = [rng.normal(size=vals[n].shape) for n in wname]

    def call(floats):
        kw = dict(vals, **dict(zip(wname, floats)))
        r = f(*[kw[n] for n in names], weight, *dirs, *tans)
        h = len(b.hvp)
        out = {"grads": r[:k], "hvp": r[k:k + h]}
        if b.jvp is not None:
            out["jvp"] = r[k + h]
        return out

    res = call([vals[n] for n in wname])
    # first order
    want = numeric_grad(cost, [vals[n] for n in wname], eps=case.eps)
    for n, g, w in zip(wname, res["grads"], want):
        assert g.shape == vals[n].shape and g.dtype == vals[n].dtype, n
        np.testing.assert_allclose(g, w, rtol=case.rtol, atol=case.rtol * 1e-2,
                                   err_msg=f"d/d{n}")
    # op-level JVP rules: J t against a central difference along t
    want_jvp = numeric_directional(lambda *fl: case.reference(**dict(vals, **dict(zip(wname, fl)))),
                                   [vals[n] for n in wname], tans, eps=case.eps)
    got_jvp = res.get("jvp", np.zeros_like(want_jvp))
    np.testing.assert_allclose(got_jvp, want_jvp, rtol=case.rtol, atol=case.rtol * 1e-2,
                               err_msg="jvp")
    # second order: H v against a central difference of the gradient along v
    eps2 = 1e-5 if case.eps < 1e-5 else case.eps
    up = call([vals[n] + eps2 * d for n, d in zip(wname, dirs)])["grads"]
    down = call([vals[n] - eps2 * d for n, d in zip(wname, dirs)])["grads"]
    for n, h, u, d in zip(wname, res["hvp"], up, down):
        assert h.shape == vals[n].shape, n
        np.testing.assert_allclose(h, (u - d) / (2 * eps2), rtol=1e-5, atol=1e-6,
                                   err_msg=f"Hv wrt {n}")


def _registry_ops():
    return {name for name in REGISTRY if name not in LEAVES}


def test_every_registered_op_is_in_the_table():
    seen = set()
    for case in CASES:
        b = build(case.id)
        graphs = [b.out] + b.grads + b.hvp + ([b.jvp] if b.jvp is not None else [])
        seen |= {n.op.name for n in topo_order(graphs)}
    missing = _registry_ops() - seen
    assert not missing, f"ops without a test case in test_ops.CASES: {sorted(missing)}"


def test_every_differentiable_op_has_its_vjp_checked():
    """An op's VJP is checked when the op sits in a graph that a gradient
    case differentiates: the forward graph (first order) or the gradient
    graph (second order)."""
    seen = set()
    for case in GRAD_CASES:
        b = build(case.id)
        seen |= {n.op.name for n in topo_order([b.out] + b.grads)}
    wanted = {name for name in _registry_ops() if REGISTRY[name].differentiable}
    missing = wanted - seen - {"stop_gradient"}  # its VJP is None by design
    assert not missing, f"differentiable ops whose VJP is never checked: {sorted(missing)}"


def test_spec_function_names_exist():
    names = """exp log log1p expm1 sqrt square sin cos tan tanh sigmoid relu
      softplus abs sign erf maximum minimum where clip sum mean max min prod
      logsumexp softmax log_softmax matmul dot outer tensordot reshape transpose
      broadcast_to concatenate stack take equal not_equal less less_equal greater
      greater_equal logical_and logical_or logical_not cast zeros_like ones_like
      stop_gradient""".split()
    missing = [n for n in names if not callable(getattr(cr, n, None))]
    assert not missing


# -- behaviours a table row cannot express ----------------------------------------------

def test_stop_gradient_blocks_gradient(backend):
    x, y = cr.placeholder("x", (3,)), cr.placeholder("y", (3,))
    cost = cr.sum(cr.stop_gradient(x * y) * x)
    gx, gy = cr.grad(cost, [x, y])
    xv, yv = np.array([1.0, 2.0, -3.0]), np.array([0.5, -1.0, 2.0])
    got = cr.function([x, y], [gx, gy], backend=backend)(xv, yv)
    np.testing.assert_allclose(got[0], xv * yv)  # only the unstopped factor
    np.testing.assert_array_equal(got[1], np.zeros(3))


def test_zeros_and_ones_like_carry_no_gradient(backend):
    x = cr.placeholder("x", (None, 2))
    cost = cr.sum(cr.ones_like(x) + cr.zeros_like(x))
    g = cr.grad(cost, x)
    got = cr.function([x], g, backend=backend)(np.ones((3, 2)))
    np.testing.assert_array_equal(got, np.zeros((3, 2)))


def test_take_repeated_indices_accumulate(backend):
    x = cr.placeholder("x", (4,))
    g = cr.grad(cr.sum(cr.take(x, [1, 1, 3, 1])), x)
    got = cr.function([x], g, backend=backend)(np.arange(4.0))
    np.testing.assert_array_equal(got, [0.0, 3.0, 0.0, 1.0])


def test_max_reduction_splits_ties(backend):
    x = cr.placeholder("x", (2, 3))
    g = cr.grad(x.max(axis=1).sum(), x)
    got = cr.function([x], g, backend=backend)(np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]]))
    np.testing.assert_allclose(got, [[0, 0.5, 0.5], [1 / 3, 1 / 3, 1 / 3]])


def test_min_reduction_splits_ties(backend):
    x = cr.placeholder("x", (4,))
    g = cr.grad(x.min(), x)
    got = cr.function([x], g, backend=backend)(np.array([0.0, 1.0, 0.0, 5.0]))
    np.testing.assert_allclose(got, [0.5, 0, 0.5, 0])


def test_clip_bounds_included_in_gradient(backend):
    x = cr.placeholder("x", (3,))
    g = cr.grad(cr.sum(cr.clip(x, -1.0, 1.0)), x)
    got = cr.function([x], g, backend=backend)(np.array([-1.0, 1.0, 2.0]))
    np.testing.assert_array_equal(got, [1.0, 1.0, 0.0])


def test_softmax_of_large_logits_is_stable(backend):
    x = cr.placeholder("x", (3,))
    f = cr.function([x], [cr.softmax(x), cr.log_softmax(x), cr.logsumexp(x)],
                    backend=backend)
    xv = np.array([1000.0, 1001.0, 999.0])
    sm, lsm, lse = f(xv)
    s = xv - 1001.0
    want = np.exp(s) / np.exp(s).sum()
    np.testing.assert_allclose(sm, want, rtol=1e-12)
    np.testing.assert_allclose(lsm, np.log(want), rtol=1e-12)
    np.testing.assert_allclose(lse, 1001.0 + np.log(np.exp(s).sum()), rtol=1e-14)


def test_integer_and_bool_inputs_get_no_gradient(backend):
    x = cr.placeholder("x", (3,))
    i = cr.placeholder("i", (3,), "int64")
    c = cr.placeholder("c", (3,), "bool")
    cost = cr.sum(cr.where(c, x * i, x))
    gx, gi, gc = cr.grad(cost, [x, i, c])
    f = cr.function([x, i, c], [gx, gi, gc], backend=backend)
    got = f(np.ones(3), np.array([2, 3, 4]), np.array([True, False, True]))
    np.testing.assert_array_equal(got[0], [2.0, 1.0, 4.0])
    assert got[1].dtype == np.int64 and not got[1].any()
    assert got[2].dtype == np.bool_ and not got[2].any()


# -- derivatives of the elementwise unary ops against sympy -----------------------------

import sympy as sp  # noqa: E402

_s = sp.Symbol("x", real=True)
SYMPY_UNARY = [
    ("exp", cr.exp, sp.exp(_s), [-1.5, 0.3, 2.0]),
    ("log", cr.log, sp.log(_s), [0.5, 1.3, 4.0]),
    ("log1p", cr.log1p, sp.log(1 + _s), [-0.5, 0.3, 3.0]),
    ("expm1", cr.expm1, sp.exp(_s) - 1, [-2.0, 0.1, 1.5]),
    ("sqrt", cr.sqrt, sp.sqrt(_s), [0.3, 1.0, 5.0]),
    ("square", cr.square, _s ** 2, [-3.0, 0.5, 2.0]),
    ("sin", cr.sin, sp.sin(_s), [-1.0, 0.2, 2.5]),
    ("cos", cr.cos, sp.cos(_s), [-1.0, 0.2, 2.5]),
    ("tan", cr.tan, sp.tan(_s), [-1.0, 0.2, 1.2]),
    ("tanh", cr.tanh, sp.tanh(_s), [-2.0, 0.2, 1.0]),
    ("sigmoid", cr.sigmoid, 1 / (1 + sp.exp(-_s)), [-3.0, 0.0, 1.7]),
    ("relu", cr.relu, sp.Max(0, _s), [-1.3, 0.7, 2.0]),
    ("softplus", cr.softplus, sp.log(1 + sp.exp(_s)), [-2.0, 0.0, 3.0]),
    ("abs", cr.abs, sp.Abs(_s), [-1.3, 0.7, 2.0]),
    ("sign", cr.sign, sp.sign(_s), [-1.3, 0.7]),
    ("erf", cr.erf, sp.erf(_s), [-1.0, 0.0, 0.6]),
    ("negative", cr.negative, -_s, [-1.0, 2.0]),
    ("pow3", lambda x: x ** 3, _s ** 3, [-2.0, 0.0, 1.5]),
    ("pow2.5", lambda x: x ** 2.5, _s ** sp.Rational(5, 2), [0.5, 2.0]),
    ("pow-1", lambda x: x ** -1, 1 / _s, [-2.0, 0.5]),
    ("rpow", lambda x: 3.0 ** x, 3 ** _s, [-1.0, 0.5]),
    ("div", lambda x: 1.0 / (1.0 + x * x), 1 / (1 + _s ** 2), [-1.0, 0.5]),
]


def _sympy_at(expr, k, x0):
    d = sp.diff(expr, _s, k) if k else expr
    return float(d.subs(_s, x0).evalf(30))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name,fn,expr,points", SYMPY_UNARY, ids=[t[0] for t in SYMPY_UNARY])
def test_unary_derivatives_against_sympy(name, fn, expr, points, backend):
    x = cr.placeholder("x")
    y = fn(x)
    d1 = cr.grad(y, x)
    d2 = cr.grad(d1, x)
    d3 = cr.grad(d2, x)
    f = cr.function([x], [y, d1, d2, d3], backend=backend)
    for x0 in points:
        got = f(x0)
        for k, g in enumerate(got):
            assert g.dtype == np.float64
            want = _sympy_at(expr, k, x0)
            assert float(g) == pytest.approx(want, rel=1e-9, abs=1e-12), \
                f"{name}: derivative {k} at {x0}: got {float(g)}, sympy {want}"


def test_power_of_negative_base(backend):
    x = cr.placeholder("x")
    d1 = cr.grad(x ** 3, x)
    f = cr.function([x], [d1, cr.grad(d1, x)], backend=backend)
    d, dd = f(-2.0)
    assert float(d) == 12.0 and float(dd) == -12.0
    c = cr.placeholder("c")  # a run-time exponent, differentiated wrt x only
    g = cr.function([x, c], cr.grad(x ** c, x), backend=backend)(-2.0, 3.0)
    assert float(g) == 12.0


@pytest.mark.parametrize("fn,x0,want", [
    (cr.relu, 0.0, 0.0), (cr.abs, 0.0, 0.0), (cr.sign, 0.0, 0.0),
    (cr.relu, 1e-300, 1.0), (cr.abs, -1e-300, -1.0),
])
def test_kink_conventions(fn, x0, want, backend):
    x = cr.placeholder("x")
    d1 = cr.grad(fn(x), x)
    got = cr.function([x], [d1, cr.grad(d1, x)], backend=backend)(x0)
    assert float(got[0]) == want and float(got[1]) == 0.0


@pytest.mark.parametrize("fn", [cr.maximum, cr.minimum])
def test_maximum_minimum_split_ties(fn, backend):
    x, y = cr.placeholder("x", (3,)), cr.placeholder("y", (3,))
    gx, gy = cr.grad(cr.sum(fn(x, y) * np.array([1.0, 2.0, 4.0])), [x, y])
    f = cr.function([x, y], [gx, gy], backend=backend)
    xv, yv = np.array([1.0, 2.0, 3.0]), np.array([1.0, 0.0, 5.0])
    big = xv > yv if fn is cr.maximum else xv < yv
    w = np.array([1.0, 2.0, 4.0])
    want_x = np.where(xv == yv, 0.5, np.where(big, 1.0, 0.0)) * w
    got_x, got_y = f(xv, yv)
    np.testing.assert_array_equal(got_x, want_x)
    np.testing.assert_array_equal(got_y, w - want_x)
    # the same variable on both sides: the halves add up to 1
    assert float(cr.function([x], cr.grad(cr.sum(fn(x, x)), x), backend=backend)(xv)[0]) == 1.0


# -- dtypes -------------------------------------------------------------------------------

def test_float32_stays_float32(backend):
    x = cr.placeholder("x", (3,), "float32")
    y = cr.tanh(2.0 * x)
    cost = cr.sum(cr.sigmoid(y) * y + cr.exp(x) / 3 + x ** 2 + cr.erf(x)) + cr.mean(x)
    g = cr.grad(cost, x)
    nodes = topo_order([cost, g])
    wrong = [n for n in nodes if n.dtype.kind == "f" and n.dtype != np.float32]
    assert not wrong, wrong
    xv = np.array([0.1, -0.5, 2.0], np.float32)
    c, gv = cr.function([x], [cost, g], backend=backend)(xv)
    assert c.dtype == np.float32 and gv.dtype == np.float32
    # reference in float64 from the closed form
    x64 = xv.astype(np.float64)
    t = np.tanh(2 * x64)
    s = 1 / (1 + np.exp(-t))
    erf_d = 2 / np.sqrt(np.pi) * np.exp(-x64 ** 2)
    dt = (s * (1 - s) * t + s) * 2 * (1 - t ** 2)
    want = dt + np.exp(x64) / 3 + 2 * x64 + erf_d + 1 / 3
    np.testing.assert_allclose(gv, want, rtol=1e-5)


@pytest.mark.parametrize("da,db,build", [
    ("int32", "int64", lambda a, b: a + b),
    ("int32", "float32", lambda a, b: a * b),
    ("int64", "float32", lambda a, b: a - b),
    ("int8", "int16", lambda a, b: a * b),
    ("bool", "int32", lambda a, b: a + b),
    ("uint8", "int8", lambda a, b: a + b),
    ("float32", "float64", lambda a, b: a / b),
    ("int32", "int32", lambda a, b: a / b),
    ("int16", "int16", lambda a, b: np.sqrt(a) if isinstance(a, np.ndarray) else cr.sqrt(a)),
    ("int32", "int32", lambda a, b: a.mean() if isinstance(a, np.ndarray) else cr.mean(a)),
    ("int32", "int32", lambda a, b: a.sum() if isinstance(a, np.ndarray) else cr.sum(a)),
    ("int8", "int8", lambda a, b: a * 2),
    ("int8", "int8", lambda a, b: a * 2.5),
    ("float32", "float32", lambda a, b: a * 2.5),
    ("float32", "float32", lambda a, b: a @ b),
    ("int32", "int32", lambda a, b: a @ b),
])
def test_dtype_promotion_like_numpy(da, db, build, backend):
    a, b = cr.placeholder("a", (2, 2), da), cr.placeholder("b", (2, 2), db)
    av = np.array([[1, 2], [3, 4]]).astype(da)
    bv = np.array([[1, 1], [2, 1]]).astype(db)
    want = np.asarray(build(av, bv))
    out = build(a, b)
    assert out.dtype == want.dtype
    used = [v for v in (a, b) if v in {n for n in topo_order([out])}]
    got = cr.function(used, out, backend=backend)(*[{"a": av, "b": bv}[v.name] for v in used])
    assert got.dtype == want.dtype
    np.testing.assert_allclose(got, want, rtol=1e-6)


@pytest.mark.parametrize("name,dtype,value,want", [
    ("sum", "bool", True, np.int64(1)), ("sum", "int32", 7, np.int64(7)),
    ("prod", "bool", True, np.int64(1)), ("max", "bool", True, np.True_),
    ("logsumexp", "int64", 3, np.float64(3.0)), ("sum", "float32", 2.5, np.float32(2.5)),
])
def test_a_reduction_over_no_axes_has_numpys_dtype(name, dtype, value, want):
    """A 0-d input (axis=None) or axis=() reduces nothing, but the result
    still has NumPy's dtype: a bool's sum counts (True + True is 2, not a
    logical or), an int32 sum is an int64, a logsumexp a float."""
    x = cr.placeholder("x", (), dtype)
    r = getattr(cr, name)(x)
    f = cr.function([x], [r, r + r])
    got = f(np.asarray(value, dtype))
    assert r.dtype == want.dtype and got[0].dtype == want.dtype
    assert got[0] == want and got[1] == want + want
    v = cr.placeholder("v", (2,), dtype)
    assert getattr(cr, name)(v, axis=()).dtype == want.dtype
