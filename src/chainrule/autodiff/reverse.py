"""Reverse mode: one backward sweep over the topological order that appends
VJP nodes to the graph (symbol-to-symbol, as in Theano).

Cotangents are summed per node; a missing cotangent is a symbolic zero
(``None``) and is never materialised inside the sweep. The result is an
ordinary graph, so it can be differentiated again.
"""

from __future__ import annotations

import numpy as np

from ..errors import (ArgumentError, DisconnectedError, DTypeError, InputError,
                      NotDifferentiableError, ShapeError)
from ..ir import Var, depends_on, flatten, topo_order, without_gc
from ..ir.node import derivative_nodes, next_id
from ..ops.base import compatible_shapes, describe, fmt_shape, is_float, lift, zeros_for
from .stable import StableForms


def _total(contribs):
    total = contribs[0]
    for c in contribs[1:]:
        total = total + c
    return total


def backprop(outputs, cotangents, wrt, order=None):
    """The summed cotangent of every node in ``wrt`` (``None`` where no
    cotangent reaches it), given cotangents for ``outputs`` (``order``:
    their topological order, if the caller has it). A node that a
    stabilising rule rewrites is differentiated through its stable form
    (see :mod:`.stable`)."""
    if order is None:
        order = topo_order(outputs)
    live = depends_on(order, wrt)
    wanted = {w.id for w in wrt}
    pending: dict[int, list] = {}
    for out, ct in zip(outputs, cotangents):
        if ct is not None and out.id in live:
            if not is_float(out):
                raise NotDifferentiableError(_no_derivative(out, "vjp: a cotangent is given for"))
            pending.setdefault(out.id, []).append(ct)
    final = {}
    stable = StableForms(order, wanted)
    for node in reversed(order):
        contribs = pending.pop(node.id, None)
        if not contribs:
            continue
        g = _total(contribs)
        if node.id in wanted:
            final[node.id] = g
        if not node.inputs or node.dtype.kind != "f":
            continue
        form = stable.form(node)
        if form is None:
            _send(node, g, live, pending)
            continue
        # the replacement's own nodes, then back to the sweep at its inputs
        rep, sub_order = form
        live.update(s.id for s in sub_order)
        pending.setdefault(rep.id, []).append(g)
        for sub in reversed(sub_order):
            contribs = pending.pop(sub.id, None)
            if contribs and sub.inputs and sub.dtype.kind == "f":
                _send(sub, _total(contribs), live, pending)
    return [final.get(w.id) for w in wrt]


def _send(node, g, live, pending):
    """Apply ``node``'s VJP to its cotangent ``g``; add the results to the
    pending cotangents of its live floating-point inputs."""
    needs = [i.id in live and i.dtype.kind == "f" for i in node.inputs]
    if True not in needs:
        return
    if not node.op.differentiable:
        raise NotDifferentiableError(
            f"{node.op.name} has no derivative, but a gradient must flow through "
            f"it to {', '.join(i.label() for i, n in zip(node.inputs, needs) if n)}; "
            f"wrap the part that should not be differentiated in cr.stop_gradient"
        )
    grads = node.op.vjp(node, g, needs)
    for inp, gi, need in zip(node.inputs, grads, needs):
        if gi is None or not need:
            continue
        if not compatible_shapes(gi.shape, inp.shape):
            raise AssertionError(
                f"internal error: the VJP of {node.op.name} gave a cotangent of "
                f"shape {fmt_shape(gi.shape)} for {describe(inp)}")
        pending.setdefault(inp.id, []).append(gi)


def _no_derivative(out, what) -> str:
    why = (f"{out.op.name} has no derivative" if not out.op.differentiable
           else f"{out.dtype} values have no derivative")
    return (f"{what} {out.label()}, which is {out.dtype} (from {out.op.name}), but {why}; "
            f"differentiate a floating-point expression instead (cr.cast the "
            f"values to float, or cr.where(condition, a, b) to select)")


def wrt_leaves(wrt, api: str):
    """The Vars in ``wrt`` (a Var or a list/tuple/dict of Vars) and the
    function that rebuilds its structure; a constant among them is an error.

    Constants cannot be differentiated with respect to: equal constants are
    one node (``cr.constant(1.0)`` is also every other 1.0 in the graph,
    including those the derivative rules add), and rewrites fold them into
    the nodes that use them as the graph is built (``x * 1.0`` is ``x``), so
    the result would silently depend on coincidences of value.
    """
    leaves, rebuild = flatten(wrt, "wrt")
    for w in leaves:
        if w.op.name == "constant":
            raise NotDifferentiableError(
                f"{api}: cannot differentiate with respect to {w.label()}, a constant: "
                f"equal constants are one node and are folded into the expressions "
                f"that use them, so the derivative would depend on coincidences of "
                f"value; make it cr.placeholder({w.name or 'name'!r}, "
                f"{w.shape}, {str(w.dtype)!r}) and feed the value, or "
                f"cr.parameter(value, {w.name or 'name'!r})")
    return leaves, rebuild


def name_if_new(node, name, first_new_id):
    """Name ``node`` if it has no name and the calling differentiation
    function made it (id from ``first_new_id`` on): never a node of the
    user's graph, nor a constant, which is shared by value across graphs."""
    if node.name is None and node.id >= first_new_id and not node.is_leaf:
        node.name = name


def _name_grads(results, wrt, first_new_id):
    """Name each gradient node after its wrt Var (``grad_W``), if the sweep
    made it."""
    for g, w in zip(results, wrt):
        if g is not None and w.name:
            name_if_new(g, f"grad_{w.name}", first_new_id)


def _zeros_or_raise(results, wrt, order_ids, disconnected, cost_label):
    out = []
    for g, w in zip(results, wrt):
        if g is None:
            if disconnected == "raise" and w.id not in order_ids:
                raise DisconnectedError(
                    f"grad: {cost_label} does not depend on {w.label()}; pass "
                    f"disconnected='zero' to get zeros for it")
            g = zeros_for(w)
        elif g.dtype != w.dtype and is_float(w):
            from ..ops import cast
            g = cast(g, w.dtype)
        out.append(g)
    return out


@without_gc
@derivative_nodes()
def grad(cost, wrt, disconnected="zero"):
    """Symbolic gradient of a scalar ``cost`` with respect to ``wrt``.

    ``wrt`` is a Var or a list/tuple/dict of Vars; the result has the same
    structure, each entry a new graph node shaped like its wrt Var (so it can
    be differentiated again). Inputs the cost does not use get zeros, or
    raise :class:`DisconnectedError` with ``disconnected="raise"``.

    >>> import chainrule as cr
    >>> x = cr.placeholder("x")
    >>> cr.evaluate(cr.grad(x * x, x), {"x": 3.0})
    array(6.)
    """
    if disconnected not in ("zero", "raise"):
        raise InputError("grad: disconnected must be 'zero' or 'raise'")
    if not isinstance(cost, Var):
        raise ArgumentError(f"grad: cost must be a chainrule Var, got {type(cost).__name__}")
    if cost.ndim != 0:
        raise ShapeError(
            f"grad: the cost must be a scalar, but {describe(cost)} is not; use "
            f"cr.vjp(outputs, wrt, cotangents) for a vector-Jacobian product, "
            f"cr.jacobian(y, x) for the whole Jacobian, or reduce it with .sum()")
    if not is_float(cost):
        raise NotDifferentiableError(_no_derivative(cost, "grad: the cost"))
    leaves, rebuild = wrt_leaves(wrt, "grad")
    one = lift(np.ones((), cost.dtype))
    first_new = next_id()
    order = topo_order([cost])
    results = backprop([cost], [one], leaves, order)
    ids = {n.id for n in order}
    results = _zeros_or_raise(results, leaves, ids, disconnected, cost.label())
    _name_grads(results, leaves, first_new)
    return rebuild(results)


def seeds_for(structure, leaves, values, api: str, noun: str, of: str) -> list:
    """User seeds (cotangents or tangents) given in the same structure as
    ``structure`` (a Var, a list/tuple or a dict), lifted and checked against
    its ``leaves``."""
    if isinstance(structure, Var):
        vals = [values]
    elif isinstance(structure, dict):
        if not isinstance(values, dict) or set(values) != set(structure):
            got = ("keys " + ", ".join(sorted(map(repr, values)))) \
                if isinstance(values, dict) else f"a {type(values).__name__}"
            raise InputError(f"{api}: the {of} are a dict with keys "
                             f"{', '.join(sorted(map(repr, structure)))}, so the {noun}s "
                             f"must be a dict with the same keys; got {got}")
        vals = [values[k] for k in structure]
    elif isinstance(values, (list, tuple)):
        vals = list(values)
    else:
        raise InputError(f"{api}: the {of} are a {type(structure).__name__} of "
                         f"{len(leaves)}, so the {noun}s must be a list or tuple of "
                         f"{len(leaves)}; got a {type(values).__name__}")
    if len(vals) != len(leaves):
        raise InputError(f"{api}: got {len(vals)} {noun}s for {len(leaves)} {of}")
    return [as_seed(v, like, f"{api}: {noun}") for v, like in zip(vals, leaves)]


def as_seed(value, like: Var, what: str) -> Var:
    """Lift a user's cotangent/tangent (Var or array) and check its shape."""
    v = value
    if not isinstance(value, Var):
        try:
            arr = np.asarray(value)
        except (TypeError, ValueError):  # Vars inside a list, a ragged list
            arr = None
        if arr is None or arr.dtype.kind not in "biuf":
            raise DTypeError(f"{what}: expected a number, an array or a Var shaped like "
                             f"{like.label()} {fmt_shape(like.shape)}, got {value!r:.60} (a "
                             f"list of Vars is not one Var: cr.stack makes one)")
        v = lift(arr.astype(like.dtype, copy=False))
    if not compatible_shapes(v.shape, like.shape):
        raise ShapeError(f"{what}: expected shape {fmt_shape(like.shape)} to match "
                         f"{like.label()}, got {describe(v)}")
    if v.dtype != like.dtype and is_float(like):
        from ..ops import cast
        v = cast(v, like.dtype)
    if (None in v.shape or None in like.shape) and v is not like:
        # sizes known at run time only: checked there to be like's (every
        # rule takes a seed to have its primal's shape; a (1, 3) cotangent
        # of a (4, 3) output is an error, as it is when the sizes are known)
        from ..ops.shape import shape_as
        v = shape_as(v, like)
    return v


@without_gc
@derivative_nodes()
def vjp(outputs, wrt, cotangents):
    """Vector-Jacobian product (reverse mode, Theano's ``Lop``).

    ``cotangents`` has the structure of ``outputs`` (Vars or arrays); the
    result has the structure of ``wrt``, each entry shaped like its Var.
    """
    outs, _ = flatten(outputs, "outputs")
    cts = seeds_for(outputs, outs, cotangents, "vjp", "cotangent", "outputs")
    leaves, rebuild = wrt_leaves(wrt, "vjp")
    first_new = next_id()
    results = backprop(outs, cts, leaves)
    results = _zeros_or_raise(results, leaves, set(), "zero", "outputs")
    _name_grads(results, leaves, first_new)
    return rebuild(results)
