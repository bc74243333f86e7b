"""Iterative graph traversals. Recursion over the graph is a bug here."""

from __future__ import annotations

import contextlib
import functools
import gc


@contextlib.contextmanager
def gc_paused():
    """Pause Python's cyclic garbage collector while a pass builds many
    long-lived nodes: its full collections rescan every node and make graph
    work superlinear (30% of a large compile). Nodes hold no cycles that need
    it; reference counting frees them."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def without_gc(fn):
    """Decorator form of :func:`gc_paused`."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with gc_paused():
            return fn(*args, **kwargs)
    return wrapper


def topo_order(outputs, skip=None) -> list:
    """All nodes the ``outputs`` depend on, each after its inputs.

    Deterministic: a depth-first post-order that visits inputs left to right,
    with an explicit stack, so a 100,000-node chain is no problem. Nodes
    whose id is in ``skip`` are neither listed nor descended into.
    """
    order = []
    seen = set() if skip is None else _SkipSet(skip)
    append = order.append
    for root in outputs:
        if root.id in seen:
            continue
        # (node, False): expand it; (node, True): its inputs are done, emit it.
        # A node is marked when it is expanded; in a DAG no node expanded
        # after it and before its emission can need it (that would be a cycle).
        stack = [(root, False)]
        pop, push = stack.pop, stack.append
        while stack:
            node, ready = pop()
            if ready:
                append(node)
                continue
            if node.id in seen:
                continue
            seen.add(node.id)
            push((node, True))
            for child in reversed(node.inputs):
                if child.id not in seen:
                    push((child, False))
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
