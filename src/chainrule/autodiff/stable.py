"""Differentiate unstable patterns through their stable form.

``log(softmax(z))`` evaluates to -inf where softmax underflows, and its naive
derivative, ``g / softmax(z) * dsoftmax``, is then ``inf * 0 = NaN``. The
optimizer rewrites the value into ``log_softmax(z)`` (passes/stabilize.py);
the sweeps use the same rules for the derivative: when they reach a node
that a stabilising rule rewrites, they differentiate the rule's replacement
in its place, sending the cotangent (or taking the tangent) straight to the
nodes the replacement is built on. The derivative of the stable form is the
stable derivative, and equals the naive one wherever that is finite.

The replacement bypasses the pattern's inner nodes (the ``sigmoid`` of
``log(sigmoid(x))``, the ``1`` of ``log(1 + x)``). The graph is not changed
and the bypassed nodes still get the cotangents of their other users; but if
one of them is a node the derivative is taken with respect to, the path
through the pattern must count, so that node is differentiated as written.
"""

from __future__ import annotations

from ..ir import topo_order
from ..passes.stabilize import STABILITY

_MAX_BYPASSED = 64  # the patterns are a few nodes deep; beyond this, as written
_MAX_CHAIN = 4  # rules applied in a row at the top of a replacement


def _replacement(node):
    """What a stabilising rule rewrites ``node`` into (same shape and
    dtype), or None."""
    for r in STABILITY.by_op.get(node.op.name, ()):
        rep = r.fn(node)
        if rep is not None and rep is not node:
            if rep.shape == node.shape and rep.dtype == node.dtype:
                return rep
            return None
    return None


class _Before:
    """Ids of the nodes that come before position ``k`` of the sweep's order
    (a container for ``topo_order``'s ``skip``)."""

    def __init__(self, pos, k):
        self.pos, self.k = pos, k

    def __contains__(self, node_id):
        return self.pos.get(node_id, self.k) < self.k


class StableForms:
    """The stable replacements to differentiate instead of some nodes of
    ``order``; never one that bypasses or passes through a node of
    ``wanted`` (ids of the wrt nodes)."""

    def __init__(self, order, wanted):
        self.order, self.wanted = order, wanted
        self._pos = None

    def form(self, node):
        """``(replacement, sub_order)`` for ``node``, or None: ``sub_order``
        lists the replacement's nodes that come after ``node`` in the sweep
        (new ones, mostly), inputs first; the others are where the
        derivative re-enters the sweep."""
        rep = _replacement(node)
        if rep is None:
            return None
        for _ in range(_MAX_CHAIN):  # log(1 + exp(x)) -> log1p(exp(x)) -> softplus(x)
            nxt = _replacement(rep)
            if nxt is None:
                break
            rep = nxt
        if self._pos is None:
            self._pos = {n.id: k for k, n in enumerate(self.order)}
        before = _Before(self._pos, self._pos[node.id])
        sub_order = topo_order([rep], skip=before)
        wanted = self.wanted
        if any(s.id in wanted for s in sub_order):
            return None
        entry = {i.id for s in sub_order for i in s.inputs if i.id in before}
        if not sub_order:
            entry = {rep.id}  # the replacement is itself an earlier node
        # Walk from ``node`` down to the entry points: the nodes met on the
        # way are bypassed, and so must not be wanted. An entry the walk
        # does not reach is an earlier node the replacement happens to share
        # (hash-consing: the -x of -softplus(-x) built elsewhere); the
        # replacement's dependence on it is not the pattern's, so it must
        # not be wanted either.
        stack, seen, reached = list(node.inputs), set(), set()
        while stack:
            v = stack.pop()
            if v.id in entry:
                reached.add(v.id)
                continue
            if v.id in seen:
                continue
            if v.id in wanted or len(seen) >= _MAX_BYPASSED:
                return None
            seen.add(v.id)
            stack.extend(v.inputs)
        if any(e in wanted for e in entry - reached):
            return None
        return rep, sub_order
