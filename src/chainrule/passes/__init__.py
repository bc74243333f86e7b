"""Graph rewrites: common-subexpression elimination, constant folding,
algebraic simplification, stabilisation and dead-node elimination.

Each pass is callable alone on a list of Vars; :func:`optimize` runs the
default pipeline on any output structure.
"""

from __future__ import annotations

from collections import Counter

from ..ir import flatten, topo_order, without_gc
from .algebra import ALGEBRA
from .collect import collect
from .fold import FOLDING
from .rewrite import Rule, RuleTable, rewrite
from .stabilize import STABILITY

TABLES = {"algebra": ALGEBRA, "stability": STABILITY, "folding": FOLDING}


def cse(outputs):
    """Merge structurally equal nodes (hash-consing rebuild)."""
    return rewrite(list(outputs), [])


def constant_fold(outputs, report=None):
    """Evaluate ops whose inputs are all constants."""
    return rewrite(list(outputs), [FOLDING], report)


def simplify(outputs, report=None):
    """Algebraic simplification (identities, negation, like terms, shapes)."""
    return rewrite(list(outputs), [ALGEBRA, FOLDING], report)


def stabilize(outputs, report=None):
    """Rewrite overflow-prone patterns (log(sigmoid), log(sum(exp)), ...)."""
    return rewrite(list(outputs), [STABILITY], report)


def dce(outputs):
    """Dead-node elimination: only what the outputs reach is kept. Graphs
    are immutable and a compiled program is the topological order of its
    outputs, so this returns the outputs unchanged."""
    return list(outputs)


PASSES = {"cse": cse, "constant_fold": constant_fold, "simplify": simplify,
          "stabilize": stabilize, "collect": collect, "dce": dce}
DEFAULT_PIPELINE = ("cse", "stabilize", "simplify", "dce")
MAX_COLLECT_ROUNDS = 4  # a collected graph can expose more like terms once


def optimize_vars(outputs, passes=None, report=None):
    """Run ``passes`` (default: the standard pipeline) on a list of Vars."""
    outs = list(outputs)
    report = Counter() if report is None else report
    names = DEFAULT_PIPELINE if passes is None else passes
    combined = names == DEFAULT_PIPELINE
    if combined:
        return _default_pipeline(outs, report)
    for name in names:
        fn = PASSES[name] if isinstance(name, str) else name
        try:
            outs = fn(outs, report)
        except TypeError:
            outs = fn(outs)
    return outs


def _default_pipeline(outs, report):
    sizes = {}

    def count(vs):
        """Node count of a graph, each graph counted once."""
        key = tuple(v.id for v in vs)
        if key not in sizes:
            sizes[key] = len(topo_order(vs))
        return sizes[key]

    # one rewrite with every table reaches a joint fixpoint
    tables = [STABILITY, ALGEBRA, FOLDING]
    fired = Counter()
    result = rewrite(outs, tables, fired)
    for _ in range(MAX_COLLECT_ROUNDS):  # until collecting stops shrinking
        collected = collect(result)
        if all(a is b for a, b in zip(collected, result)):
            break
        trial = Counter()
        collected = rewrite(collected, tables, trial)
        if count(collected) >= count(result):
            break
        fired["collect_like_terms"] += 1
        fired.update(trial)
        result = collected
    if fired and count(result) > count(outs):
        # Rules are local: one that keeps a node count may still grow a graph
        # whose operands are shared (x / 2 -> x * 0.5 while 2 is used
        # elsewhere). Then keep only the stabilising rewrites, the one kind
        # worth a node (log(sigmoid(x)) -> -softplus(-x)).
        stable_fired = Counter()
        stable = rewrite(outs, [STABILITY], stable_fired)
        if count(stable) < count(result):
            result, fired = stable, stable_fired
    report.update(fired)
    return result


@without_gc
def optimize(outputs, passes=None, trace=False):
    """Return outputs equivalent to ``outputs`` (same structure) after the
    default pipeline: CSE, constant folding, algebraic simplification,
    stabilisation and dead-node elimination. ``passes`` is a list of pass
    names (see ``PASSES``) or callables. With ``trace=True`` returns
    ``(outputs, report)`` where report counts how often each rule fired.

    The default pipeline never returns more nodes than it was given, except
    for what stabilising rewrites add (log(sigmoid(x)) -> -softplus(-x)),
    and optimizing its result again changes nothing.

    >>> import chainrule as cr
    >>> x = cr.placeholder("x")
    >>> cr.pprint(cr.optimize(cr.log(cr.exp(x)) * 1))
    'x'
    """
    leaves, rebuild = flatten(outputs, "outputs")
    report = Counter()
    result = rebuild(optimize_vars(leaves, passes, report))
    return (result, dict(report)) if trace else result


def count_nodes(outputs) -> int:
    """How many nodes the outputs reach (leaves included)."""
    leaves, _ = flatten(outputs, "outputs")
    return len(topo_order(leaves))


__all__ = ["optimize", "optimize_vars", "cse", "constant_fold", "simplify",
           "stabilize", "dce", "count_nodes", "Rule", "RuleTable", "rewrite",
           "TABLES", "PASSES", "DEFAULT_PIPELINE"]

