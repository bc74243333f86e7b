"""What a backend compiles: the graph to run, flattened and ordered."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import NonFiniteError
from ..ir import Var, topo_order


@dataclass
class Program:
    inputs: list          # placeholder Vars, in call order
    outputs: list         # Vars whose values are returned
    updates: list         # (parameter Var, new-value Var) pairs
    order: list = field(default_factory=list)
    params: list = field(default_factory=list)

    def __post_init__(self):
        roots = list(self.outputs) + [v for _, v in self.updates]
        self.order = reductions_early(topo_order(roots))
        self.params = [n for n in self.order if n.op.name == "parameter"]
        used = {p.id for p in self.params}
        self.params += [p for p, _ in self.updates if p.id not in used]


def known_size(node):
    """How many elements ``node`` has, or None if a dim is unknown."""
    n = 1
    for d in node.shape:
        if d is None:
            return None
        n *= d
    return n


# Below this many elements NumPy's own small-block cache makes a new array
# cheaper than passing ``out=`` (a keyword argument costs more than it saves):
# no buffer is reused, nor scheduled for.
MIN_ELEMENTS = 8192
_EARLY_RATIO = 4   # a consumer at least this many times smaller than its operand


# An unknown dim (a batch size, say) counts as this many elements when
# scheduling decides what is large: (None, 256) is large, its (256,) sum small.
NOMINAL_UNKNOWN = 64


def nominal_size(node, unknown=NOMINAL_UNKNOWN):
    """Elements of ``node``, an unknown dim counted as ``unknown``."""
    n = 1
    for d in node.shape:
        n *= unknown if d is None else d
    return n


def consumers(order) -> dict:
    """Node id -> the nodes reading it, each once, in ``order``'s order."""
    users: dict = {}
    for n in order:
        for inp in n.inputs:
            lst = users.setdefault(inp.id, [])
            if not lst or lst[-1] is not n:
                lst.append(n)
    return users


def place_operands(node, done, out) -> bool:
    """For a pass moving ``node`` up in an order being rebuilt into ``out``:
    can it come now (each operand placed already, in ``done``, or a leaf,
    always available)? If so, the leaves the order lists later are placed
    first, and True."""
    if not all(i.id in done or i.is_leaf for i in node.inputs):
        return False
    for i in node.inputs:
        if i.id not in done:
            out.append(i)
            done.add(i.id)
    return True


def reductions_early(order) -> list:
    """``order`` with each large array's much smaller consumers (sums, the
    bias gradient ``g.sum(axis=0)``, ...) moved up to just after it, when
    their other operands are ready by then.

    A reduction that the depth-first order leaves for later keeps its large
    operand alive until then: an MLP's hidden-layer gradient ``g`` would be
    held through the weight gradient's matmul only for the bias gradient's
    sum, so ``lr * g`` needs a buffer of its own instead of ``g``'s. Moving
    the consumer earlier only shortens its operands' lives; its own result
    is small. A stable pass: every other node keeps its place."""
    users = consumers(order)
    done = set()
    out = []
    for n in order:
        if n.id in done:
            continue
        out.append(n)
        done.add(n.id)
        big = nominal_size(n) if n.inputs else None
        if big is None or big < MIN_ELEMENTS:
            continue
        for c in users.get(n.id, ()):
            small = nominal_size(c)
            if c.id in done or small * _EARLY_RATIO > big:
                continue
            # its other operands must come no later than n in the order
            if place_operands(c, done, out):
                out.append(c)
                done.add(c.id)
    return out


class NodeFailure(Exception):
    """A node's computation raised ``error`` at run time: input values or
    run-time sizes (unknown dims) that do not fit. ``cr.function`` turns it
    into an InputError naming the node."""

    def __init__(self, node: Var, error: Exception):
        super().__init__(f"{describe_node(node)}: {error}")
        self.node, self.error = node, error


RUNTIME_ERRORS = (ValueError, IndexError)  # what bad values raise; not internal bugs


def last_uses(order, keep_ids) -> dict:
    """Map position i in ``order`` -> ids of values that die after step i
    (never those in ``keep_ids``, e.g. outputs)."""
    last = {}
    for i, node in enumerate(order):
        for inp in node.inputs:
            last[inp.id] = i
    dying: dict[int, list] = {}
    for node_id, i in last.items():
        if node_id not in keep_ids:
            dying.setdefault(i, []).append(node_id)
    return dying


def describe_node(node: Var) -> str:
    names = ", ".join(i.label() for i in node.inputs)
    who = f"{node.name!r} = " if node.name else ""
    return f"{who}{node.op.name}({names})"


def non_finite(node: Var, value) -> None:
    """Raise NonFiniteError if a floating value holds NaN or inf."""
    arr = np.asarray(value)
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        kind = "NaN" if np.any(np.isnan(arr)) else "inf"
        raise NonFiniteError(f"check_finite: {describe_node(node)} produced {kind} "
                             f"(shape {arr.shape}); look at its inputs' values")
