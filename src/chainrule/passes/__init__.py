"""Graph rewrites: common-subexpression elimination, constant folding,
algebraic simplification, stabilisation and dead-node elimination.

Each pass is callable alone on a list of Vars; :func:`optimize` runs the
default pipeline on any output structure.
"""

from __future__ import annotations

from collections import Counter

from ..errors import ChainruleError
from ..ir import Var, flatten, topo_order, without_gc
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
# a collected graph can expose more like terms (the 6th derivative of
# log(1 + x * x) / (x + 2) takes 6 rounds)
MAX_COLLECT_ROUNDS = 8


def optimize_vars(outputs, passes=None, report=None):
    """Run ``passes`` (default: the standard pipeline) on a list of Vars."""
    outs = list(outputs)
    report = Counter() if report is None else report
    names = DEFAULT_PIPELINE if passes is None else passes
    combined = names == DEFAULT_PIPELINE
    if combined:
        return _default_pipeline(outs, report)
    if isinstance(names, str) or not isinstance(names, (list, tuple)):
        raise ChainruleError(f"optimize: passes must be a list of pass names or callables, "
                             f"got {names!r}; e.g. passes=['cse', 'simplify']")
    for name in names:
        if isinstance(name, str):
            if name not in PASSES:
                raise ChainruleError(f"optimize: unknown pass {name!r}; choose from "
                                     f"{', '.join(PASSES)} (or give a callable)")
            fn = PASSES[name]
        elif callable(name):
            fn = name
        else:
            raise ChainruleError(f"optimize: a pass must be a name or a callable, got {name!r}")
        try:
            new = fn(outs, report)
        except TypeError:
            new = fn(outs)
        _check_pass_result(name, outs, new)
        outs = list(new)
    return outs


def _check_pass_result(name, before, after):
    """A pass returns as many Vars as it got, each of the same shape and dtype."""
    label = name if isinstance(name, str) else getattr(name, "__name__", repr(name))
    if not isinstance(after, (list, tuple)) or len(after) != len(before):
        raise ChainruleError(f"optimize: pass {label!r} must return a list of {len(before)} "
                             f"Vars (one per output), got {after!r:.80}")
    for k, (a, b) in enumerate(zip(before, after)):
        if not isinstance(b, Var) or b.shape != a.shape or b.dtype != a.dtype:
            raise ChainruleError(
                f"optimize: pass {label!r} returned {b!r:.80} for output {k}, which is "
                f"{a.label()} {a.shape} {a.dtype}: a pass must keep each output's shape "
                f"and dtype")


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

