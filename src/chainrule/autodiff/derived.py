"""Jacobians, Hessians and Hessian-vector products, built from one batched
VJP or JVP sweep (the seeds ride along a leading axis), and the cost model
that picks forward or reverse mode."""

from __future__ import annotations

import math

import numpy as np

from ..errors import ArgumentError, InputError, NotDifferentiableError, ShapeError
from ..ir import Var, make_leaf, topo_order, without_gc
from ..ir.node import derivative_nodes, next_id
from ..ops.base import describe, is_float, shape_known
from ..ops.leaves import PLACEHOLDER
from ..ops.elementwise import cast
from ..ops.shape import eye_seed, reshape, transpose
from .banded import Banded
from .batching import batch_graph
from .forward import jvp, push_forward
from .reverse import backprop, grad, name_if_new, wrt_leaves


def _check(y: Var, x: Var, what: str):
    for v in (y, x):
        if not isinstance(v, Var):
            raise ArgumentError(f"{what}: expected chainrule Vars, got {type(v).__name__}")
        if not shape_known(v.shape):
            raise ShapeError(f"{what}: the shape of {describe(v)} must be fully known "
                             f"(no None dims) to lay out its Jacobian")
    for v in (y, x):
        if not is_float(v):
            raise NotDifferentiableError(
                f"{what}: {v.label()} is {v.dtype}, and an integer or bool has no "
                f"derivative; cast it to a float (cr.cast(v, 'float64')) to differentiate")
    wrt_leaves(x, what)


def _size(shape) -> int:
    return int(math.prod(shape))


def _seed_leaf(like: Var, name: str) -> Var:
    return make_leaf(PLACEHOLDER, like.shape, like.dtype, name)


def _sweep(y: Var, x: Var, mode: str):
    """The batched sweep's result, laid out ``y.shape + x.shape`` and typed
    like ``y`` in both modes (None if y does not depend on x)."""
    res = _sweep_any_dtype(y, x, mode)
    if res is not None and res.dtype != y.dtype:
        res = cast(res, y.dtype)  # reverse mode ends in x's dtype
    return res


def _sweep_any_dtype(y: Var, x: Var, mode: str):
    if mode == "forward":
        t = _seed_leaf(x, "tangent")
        ty = push_forward([y], [x], [t])[0]
        if ty is None:
            return None
        tb = batch_graph([ty], {t.id: _identity_seeds(x)})[0]
        moved = transpose(tb, tuple(range(1, tb.ndim)) + (0,))
        return reshape(moved, y.shape + x.shape)
    c = _seed_leaf(y, "cotangent")
    gx = backprop([y], [c], [x])[0]
    if gx is None:
        return None
    gb = batch_graph([gx], {c.id: eye_seed(y.shape, y.dtype)})[0]
    return reshape(gb, y.shape + x.shape)


def _identity_seeds(x: Var):
    """The n seeds of a forward sweep: eye(n); for a 1-D x, kept banded
    (one diagonal of ones) so elementwise structure is exploited."""
    if x.ndim == 1:
        from ..ops.base import constant_var
        return Banded({0: constant_var(np.ones(x.shape, x.dtype))}, x.shape[0])
    return eye_seed(x.shape, x.dtype)


def _flops(nodes) -> float:
    total = 0.0
    for n in nodes:
        if n.op.flops is not None:
            total += n.op.flops(n)
    return total


@derivative_nodes()
def explain_jacobian(y, x) -> dict:
    """The cost model behind ``jacobian(y, x, mode="auto")``.

    Each mode is priced as the flops of the primal graph plus the flops of
    the nodes its batched sweep adds (op by op, from their shapes: a matmul
    of (a, b) by (b, c) costs 2abc). Forward mode pushes ``x.size`` seed
    vectors, reverse mode ``y.size`` cotangents; for a chain of matrix
    products this is the classic argument: reverse wins for a scalar at the
    end, forward for a scalar at the start. Returns a dict with both
    estimates, the seed counts and the choice.
    """
    _check(y, x, "explain_jacobian")
    primal = topo_order([y])
    seen = {n.id for n in primal}
    base = _flops(primal)
    report = {"primal_flops": base}
    for mode, seeds in (("forward", _size(x.shape)), ("reverse", _size(y.shape))):
        res = _sweep(y, x, mode)
        added = [] if res is None else [n for n in topo_order([res]) if n.id not in seen]
        report[mode] = {"seeds": seeds, "flops": base + _flops(added)}
    report["choice"] = ("forward" if report["forward"]["flops"] < report["reverse"]["flops"]
                        else "reverse")
    return report


@without_gc
@derivative_nodes()
def jacobian(y, x, mode="auto"):
    """The Jacobian of ``y`` with respect to ``x``, laid out
    ``y.shape + x.shape`` (as Theano, JAX and PyTorch do) with the dtype of
    ``y``, as one graph.

    ``mode`` is "forward", "reverse" or "auto" (see :func:`explain_jacobian`).

    >>> import chainrule as cr
    >>> x = cr.placeholder("x", (2,))
    >>> cr.evaluate(cr.jacobian(x * x, x), {"x": [1.0, 3.0]})
    array([[2., 0.],
           [0., 6.]])
    """
    if mode not in ("auto", "forward", "reverse"):
        raise InputError(f"jacobian: mode must be 'auto', 'forward' or 'reverse', "
                         f"got {mode!r}")
    _check(y, x, "jacobian")
    first = next_id()
    if mode == "auto":
        mode = explain_jacobian(y, x)["choice"]
    res = _sweep(y, x, mode)
    if res is None:
        from ..ops.base import constant_var
        return constant_var(np.zeros(y.shape + x.shape, y.dtype))
    if y.name and x.name:
        name_if_new(res, f"jac_{y.name}_{x.name}", first)
    return res


@without_gc
@derivative_nodes()
def hessian(cost, x):
    """The Hessian of a scalar ``cost`` with respect to ``x``, laid out
    ``x.shape + x.shape``: forward mode over the reverse-mode gradient, all
    seeds in one batched sweep."""
    if not isinstance(cost, Var) or cost.ndim != 0:
        raise ShapeError("hessian: the cost must be a scalar Var")
    _check(cost, x, "hessian")
    first = next_id()
    h = jacobian(grad(cost, x), x, mode="forward")
    if x.name:
        if h.name == f"jac_grad_{x.name}_{x.name}":  # jacobian's name for it
            h.name = None
        name_if_new(h, f"hess_{x.name}", first)
    return h


@without_gc
@derivative_nodes()
def hvp(cost, x, v):
    """Hessian-vector product ``H v`` (forward over reverse), shaped like
    ``x``; never builds the Hessian."""
    if not isinstance(cost, Var) or cost.ndim != 0:
        raise ShapeError("hvp: the cost must be a scalar Var")
    wrt_leaves(x, "hvp")
    return jvp(grad(cost, x), x, v)



