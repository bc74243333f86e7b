"""Iterative graph traversals. Recursion over the graph is a bug here."""

from __future__ import annotations


def topo_order(outputs, skip=None) -> list:
    """All nodes the ``outputs`` depend on, each after its inputs.

    Deterministic: a depth-first post-order that visits inputs left to right,
    with an explicit stack, so a 100,000-node chain is no problem. Nodes
    whose id is in ``skip`` are neither listed nor descended into.
    """
    order = []
    done = set() if skip is None else _SkipSet(skip)
    for root in outputs:
        if root.id in done:
            continue
        stack = [(root, 0)]
        on_stack = {root.id}
        while stack:
            node, i = stack[-1]
            if i < len(node.inputs):
                stack[-1] = (node, i + 1)
                child = node.inputs[i]
                if child.id not in done and child.id not in on_stack:
                    on_stack.add(child.id)
                    stack.append((child, 0))
            else:
                stack.pop()
                done.add(node.id)
                order.append(node)
    return order


def consumers(order) -> dict:
    """Map node id -> list of nodes in ``order`` that use it (in order)."""
    users = {n.id: [] for n in order}
    for n in order:
        for i in n.inputs:
            users[i.id].append(n)
    return users


def depends_on(order, sources) -> set:
    """Ids of nodes in ``order`` that (transitively) use any of ``sources``."""
    marked = {s.id for s in sources}
    for n in order:
        if n.id not in marked and any(i.id in marked for i in n.inputs):
            marked.add(n.id)
    return marked


class _SkipSet(set):
    """A visited-set that also counts the ids of a caller's container."""

    def __init__(self, skip):
        super().__init__()
        self.skip = skip

    def __contains__(self, key):
        return key in self.skip or set.__contains__(self, key)
