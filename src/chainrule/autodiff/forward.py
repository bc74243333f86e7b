"""Forward mode: one sweep along the topological order that appends JVP
nodes (Theano's ``Rop``). Missing tangents are symbolic zeros (``None``)."""

from __future__ import annotations

from ..errors import NotDifferentiableError
from ..ir import depends_on, flatten, topo_order, without_gc
from ..ops.base import compatible_shapes, describe, fmt_shape, is_float, zeros_for
from ..ir.node import derivative_nodes
from .reverse import seeds_for, wrt_leaves
from .stable import StableForms


def push_forward(outputs, wrt, tangents):
    """Tangents of ``outputs`` (``None`` for a symbolic zero) given tangents
    for the nodes in ``wrt``. A node that a stabilising rule rewrites takes
    the tangent of its stable form (see :mod:`.stable`).

    An inner wrt node's tangent is its seed plus the tangent that flows into
    it from other wrt nodes (as if a perturbation were added to its value),
    so that ``<c, jvp(t)> = <vjp(c), t>`` holds with ``grad``'s convention:
    a wrt node's cotangent also flows on to the wrt nodes it depends on."""
    order = topo_order(outputs)
    live = depends_on(order, wrt)
    tan, seeds = {}, {}
    for w, t in zip(wrt, tangents):
        if t is not None and is_float(w):  # integer and bool inputs carry none
            into = seeds if w.inputs else tan  # a node listed twice: seeds add up
            into[w.id] = t if w.id not in into else into[w.id] + t
    stable = StableForms(order, {w.id for w in wrt})
    for node in order:
        if node.id in tan or not node.inputs:
            continue
        if node.id in live and is_float(node) and \
                any(tan.get(i.id) is not None for i in node.inputs):
            form = stable.form(node)
            if form is None:
                _push(node, tan)
            else:
                rep, sub_order = form
                for sub in sub_order:  # the replacement's own nodes, inputs first
                    if sub.id not in tan and sub.inputs and is_float(sub):
                        _push(sub, tan)
                if tan.get(rep.id) is not None:
                    tan[node.id] = tan[rep.id]
        seed = seeds.get(node.id)
        if seed is not None:
            flowing = tan.get(node.id)
            tan[node.id] = seed if flowing is None else flowing + seed
    return [tan.get(o.id) for o in outputs]


def _push(node, tan):
    """Set the tangent of ``node`` from its inputs' tangents in ``tan``."""
    ts = [tan.get(i.id) for i in node.inputs]
    if all(t is None for t in ts):
        return
    if not node.op.differentiable:
        raise NotDifferentiableError(
            f"{node.op.name} has no derivative, but a tangent must flow through it "
            f"from {', '.join(i.label() for i, t in zip(node.inputs, ts) if t is not None)}"
            f"; wrap it in cr.stop_gradient if that is intended")
    t = node.op.jvp(node, ts)
    if t is not None:
        if not compatible_shapes(t.shape, node.shape):
            raise AssertionError(
                f"internal error: the JVP of {node.op.name} gave a tangent of shape "
                f"{fmt_shape(t.shape)} for {describe(node)}")
        if t.dtype != node.dtype:
            from ..ops import cast
            t = cast(t, node.dtype)
        tan[node.id] = t


@without_gc
@derivative_nodes()
def jvp(outputs, wrt, tangents):
    """Jacobian-vector product (forward mode, Theano's ``Rop``).

    ``tangents`` has the structure of ``wrt`` (Vars or arrays); the result
    has the structure of ``outputs``, each entry shaped like its output.

    >>> import chainrule as cr
    >>> x = cr.placeholder("x", (3,))
    >>> cr.evaluate(cr.jvp(x * x, x, [1.0, 0.0, 2.0]), {"x": [1.0, 2.0, 3.0]})
    array([ 2.,  0., 12.])
    """
    leaves, _ = wrt_leaves(wrt, "jvp")
    ts = seeds_for(wrt, leaves, tangents, "jvp", "tangent", "wrt Vars")
    outs, rebuild = flatten(outputs, "outputs")
    results = push_forward(outs, leaves, ts)
    return rebuild([zeros_for(o) if r is None else r for r, o in zip(results, outs)])
