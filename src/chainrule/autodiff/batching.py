"""Batching (vmap) of a graph along a new leading axis.

``batch_graph(outputs, seeds)`` rebuilds the part of a graph that depends on
some seed nodes as if each seed carried an extra leading axis of size k.
Jacobians and Hessians use it to push k seed vectors through one VJP or JVP
sweep instead of building k graphs.

Elementwise ops are batched by one generic rule (align ranks, then let
broadcasting do the rest); every other op declares ``batch`` beside its
other rules (helpers for the common layouts are in ``ops/vmap.py``).
"""

from __future__ import annotations

from ..ir import depends_on, topo_order
from .banded import Banded, banded_rule
from ..ops.vmap import elementwise_rule


def batch_graph(outputs, seeds: dict):
    """Batched versions of ``outputs`` given batched values for seed nodes
    (``{node_id: batched Var}``, or a :class:`Banded` for identity seeds of
    a 1-D input). Outputs that do not depend on a seed come back as
    ``None``."""
    order = topo_order(outputs)
    live = depends_on(order, [n for n in order if n.id in seeds])
    new = dict(seeds)
    for node in order:
        if node.id in new or node.id not in live:
            continue
        args = [new.get(i.id, i) for i in node.inputs]
        flags = [i.id in new for i in node.inputs]
        if any(isinstance(a, Banded) for a in args):
            result = banded_rule(node, args, flags) if _keeps_bands(node, args) else None
            if result is not None:
                new[node.id] = result
                continue
            args = [a.dense() if isinstance(a, Banded) else a for a in args]
        rule = node.op.batch or (elementwise_rule if node.op.elementwise else None)
        if rule is None:
            raise NotImplementedError(f"{node.op.name} has no batching rule")
        result = rule(node, args, flags)
        if isinstance(result, tuple):  # (var, still_batched)
            result, still = result
            if not still:
                continue
        new[node.id] = result
    outs = [new.get(o.id) for o in outputs]
    return [o.dense() if isinstance(o, Banded) else o for o in outs]


def _keeps_bands(node, args) -> bool:
    """An elementwise op keeps a banded operand banded only if it does not
    broadcast it: a length-1 value spread along the output has every
    output entry depend on the same seed, which is not a diagonal."""
    return not node.op.elementwise or all(
        i.shape == node.shape for i, a in zip(node.inputs, args) if isinstance(a, Banded))
