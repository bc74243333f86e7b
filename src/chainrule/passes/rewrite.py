"""The rewrite engine: rules declared as data, applied bottom-up by a
worklist until no rule fires (a fixpoint).

A :class:`Rule` names the op it looks at (the root of its pattern) and a
function ``fn(node) -> Var | None`` that returns the replacement or None.
Rules are registered in a :class:`RuleTable` per theme (algebra, stability,
folding). The engine rebuilds every node on its already-rewritten inputs
(hash-consing merges equal nodes, so this is also CSE), then tries the
node's rules; a replacement is itself rewritten before it is used.
Everything is iterative: an explicit stack, never recursion over the graph.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Callable

from ..ir import Var, make_node
from ..ir.node import find_node, next_id, node_key

MAX_FIRINGS = 1_000_000  # a guard against a rule set that cycles


@dataclass(frozen=True)
class Rule:
    name: str
    op: str          # the op at the root of the pattern ("*" for any op)
    fn: Callable     # node -> replacement Var or None
    doc: str = ""
    const: bool = False  # fires only when some operand is a constant (then
    #                      the engine does not call it on other nodes)


class RuleTable:
    """A themed set of rules, indexed by the op at the root of the pattern."""

    def __init__(self, theme: str):
        self.theme = theme
        self.rules: list[Rule] = []
        self.by_op: dict[str, list[Rule]] = {}

    def rule(self, *ops: str, name: str | None = None, const: bool = False):
        """Decorator: register ``fn(node)`` for nodes whose op is in ``ops``;
        ``const=True`` for a rule that can fire only on a node with a
        constant operand."""
        def register(fn):
            for op in ops:
                r = Rule(name or fn.__name__, op, fn, (fn.__doc__ or "").strip(), const)
                self.rules.append(r)
                self.by_op.setdefault(op, []).append(r)
            return fn
        return register

    def for_op(self, name: str) -> list:
        return self.by_op.get(name, []) + self.by_op.get("*", [])

    def __len__(self):
        return len({r.name for r in self.rules})


def rewrite(outputs, tables, report: Counter | None = None) -> list:
    """Rewrite ``outputs`` (a list of Vars) with the rules of ``tables`` to a
    fixpoint; returns the new outputs. ``report`` counts rule firings."""
    report = Counter() if report is None else report
    by_op: dict[tuple, list] = {}

    def rules_for(name, has_const):
        rs = by_op.get((name, has_const))
        if rs is None:
            rs = by_op[name, has_const] = [r for t in tables for r in t.for_op(name)
                                           if has_const or not r.const]
        return rs

    memo: dict[int, Var] = {}
    canon: dict[tuple, Var] = {}  # key -> the node this pass settled on
    start = next_id()  # nodes made from here on are this pass's own
    firings = 0
    # stack items: (node, state); state 0 = expand, 1 = rebuild, 2 = resolve
    # (the node was replaced by ``pending[node.id]``, now rewritten)
    pending: dict[int, Var] = {}
    for root in outputs:
        stack = [(root, 0)]
        while stack:
            node, state = stack.pop()
            if state == 2:
                memo[node.id] = _named(memo[pending.pop(node.id).id], node, start)
                continue
            if node.id in memo:
                continue
            if state == 0:
                stack.append((node, 1))
                for inp in reversed(node.inputs):
                    if inp.id not in memo:
                        stack.append((inp, 0))
                continue
            new_inputs = tuple([memo[i.id] for i in node.inputs])
            if not node.is_leaf:
                # one node per key in this pass: the first met (node itself
                # on unchanged inputs, else the one make_node gives). The
                # differentiation calls build theirs in tables of their own
                # (ir/node.py), so their equal nodes, and those of the
                # user's graph, merge here, the same way whatever else is
                # alive
                key = node_key(node.op, new_inputs, node.attrs)
                cur = canon.get(key)
                if cur is None:
                    if new_inputs == node.inputs:  # Vars compare by identity
                        cur = node
                    else:
                        cur = make_node(node.op, new_inputs, node.attrs)
                    canon[key] = cur
            else:
                cur = node
            if cur is not node and cur.id in memo:
                memo[node.id] = _named(memo[cur.id], node, start)
                continue
            replacement = None
            if cur.inputs:
                has_const = False
                for i in cur.inputs:
                    if i._const is not None:
                        has_const = True
                        break
                for r in rules_for(cur.op.name, has_const):
                    out = r.fn(cur)
                    if out is not None and out is not cur:
                        if out.shape != cur.shape or out.dtype != cur.dtype:
                            raise AssertionError(
                                f"rewrite rule {r.name} changed {cur.op.name}'s type "
                                f"from {cur.shape} {cur.dtype} to {out.shape} {out.dtype}")
                        replacement = out
                        report[r.name] += 1
                        firings += 1
                        break
            if replacement is None:
                memo[node.id] = memo[cur.id] = _named(cur, node, start)
                continue
            if firings > MAX_FIRINGS:
                raise RuntimeError("rewrite: the rules did not reach a fixpoint")
            if replacement.id in memo:
                memo[node.id] = _named(memo[replacement.id], node, start)
                continue
            pending[node.id] = replacement
            stack.append((node, 2))
            stack.append((replacement, 0))
    return [memo[o.id] for o in outputs]


def _named(new: Var, old: Var, start: int) -> Var:
    """Carry the user's name over to the node that replaces a named node
    (names are metadata; constants and leaves keep their own), if this pass
    made the new node (ids from ``start`` on) or a differentiation call did:
    a node of the user's own graph is not renamed (a gradient merged into
    the user's cos(z) leaves it unnamed)."""
    if old.name and new.name is None and not new.is_leaf and (
            new.id >= start or find_node(node_key(new.op, new.inputs, new.attrs)) is not new):
        new.name = old.name
    return new
