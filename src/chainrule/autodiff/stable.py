"""Differentiate the stable form of an expression.

``log(softmax(z))`` evaluates to -inf where softmax underflows, and its naive
derivative, ``g / softmax(z) * dsoftmax``, is then ``inf * 0 = NaN``. The
optimizer rewrites the value into ``log_softmax(z)`` (passes/stabilize.py),
but a gradient built from the naive graph would keep the NaN. So the sweeps
first apply the same stabilising rewrites to the graph they differentiate:
the derivative of the stable form is the stable derivative, equal to the
naive one wherever that is finite.
"""

from __future__ import annotations

from ..passes.rewrite import rewrite
from ..passes.stabilize import STABILITY


def stable_outputs(outputs, wrt, order):
    """``outputs`` with the stabilising rewrites applied; ``outputs`` itself
    (the same list) when no rule applies anywhere in ``order``, or when some
    ``wrt`` node is not a leaf (rewriting could replace that very node, and
    the derivative is wanted with respect to the node the user holds)."""
    if any(w.inputs for w in wrt):
        return outputs
    for node in order:
        rules = STABILITY.by_op.get(node.op.name)
        if rules and any(r.fn(node) is not None for r in rules):
            return rewrite(list(outputs), [STABILITY])
    return outputs
