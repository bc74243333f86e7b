"""Small facts about nodes that decide whether a rewrite is safe: is a node a
constant (and which), is it known finite, known non-zero or positive.

"Known finite" is what lets ``x * 0 -> 0`` and ``x - x -> 0`` fire without
hiding a NaN or inf the exact math would produce. The analyses look a few
levels down only (bounded), never walk the whole graph.
"""

from __future__ import annotations

import numpy as np

from ..ir import Var
from ..ops.base import may_fail, uniform_entry

_DEPTH = 6


def const(v: Var):
    """The value of a constant node, or None."""
    return v._const if v.op.name == "constant" else None


def uniform(v: Var):
    """The single value of a constant whose entries are all equal, or None."""
    if v._const is None:
        return None
    try:
        return v._uniform  # computed once per constant, kept on the node
    except AttributeError:
        pass
    c = v._const
    value = None
    if 0 < c.size <= 1 << 20:
        first = uniform_entry(c)
        if first is not None:
            value = first.item()
    v._uniform = value
    return value


def safe(v: Var) -> bool:
    """Can computing ``v`` never raise at run time: no node it is built
    from has an unknown dim (a size mismatch NumPy would report) or an op
    that raises on some values (an index out of range)? A rule may drop an
    operand only if it is safe: dropping it would hide that error (``where(c,
    y, y) -> y`` must not make a call with a mis-sized ``c`` succeed). Found
    once per node (iteratively) and kept on it."""
    try:
        return v._safe
    except AttributeError:
        pass
    stack = [v]
    while stack:
        node = stack[-1]
        pending = [i for i in node.inputs if not hasattr(i, "_safe")]
        if pending:
            stack.extend(pending)
            continue
        stack.pop()
        if not hasattr(node, "_safe"):
            node._safe = not may_fail(node) and all(i._safe for i in node.inputs)
    return v._safe


def fits_float(value, dtype) -> bool:
    """Is ``value`` zero or a normal number of the float ``dtype`` (neither
    overflowing to inf nor falling below its normal range)? A constant
    folded from others must pass this to replace them: x * inf or x * 0
    would turn a finite result into NaN or inf."""
    return all_fit((value,), dtype)


def all_fit(values, dtype) -> bool:
    """:func:`fits_float` for every one of ``values``."""
    tiny, big = _normal_range(dtype)
    for value in values:
        a = abs(value)
        if a != 0 and not tiny <= a <= big:  # NaN fails both
            return False
    return True


_ranges: dict = {}


def _normal_range(dtype) -> tuple:
    """(smallest normal, largest finite) of a float dtype, as Python floats."""
    r = _ranges.get(dtype)
    if r is None:
        info = np.finfo(dtype)
        r = _ranges[dtype] = (float(info.tiny), float(info.max))
    return r


def is_value(v: Var, x) -> bool:
    u = uniform(v)
    return u is not None and u == x and not (isinstance(u, float) and np.isnan(u))


# ops whose output is finite whenever their inputs are
_FINITE_PRESERVING = {"negative", "abs", "sign", "sin", "cos", "tanh", "sigmoid",
                      "erf", "relu", "maximum", "minimum", "where", "clip",
                      "add", "subtract", "multiply", "transpose", "reshape",
                      "getitem", "expand_dims", "squeeze", "broadcast_to",
                      "concatenate", "stop_gradient", "square", "softmax"}
# ops whose output is finite whatever their inputs are (NaN aside)
_BOUNDED = {"sin", "cos", "tanh", "sigmoid", "erf", "sign", "softmax"}


def known_finite(v: Var, depth: int = _DEPTH) -> bool:
    """True if every entry of ``v`` is finite for every input (NaN included).

    Conservative: only constants, bool-to-float casts, comparisons and ops of
    known-finite inputs qualify; anything fed by a placeholder may hold NaN.
    """
    name = v.op.name
    if name == "constant":
        c = v._const
        return c.dtype.kind != "f" or bool(np.all(np.isfinite(c)))
    if v.dtype.kind in "biu":
        return True
    if name == "cast":
        src = v.inputs[0].dtype
        if src.kind == "b":
            return True
        # an integer fits a float unless the float's range is smaller
        # (70000 is inf in float16)
        return src.kind in "iu" and (v.dtype.kind != "f" or
                                     np.iinfo(src).max <= np.finfo(v.dtype).max)
    if name == "eye" or name == "full_like" or name == "count":
        return True
    if depth == 0 or name not in _FINITE_PRESERVING:
        return False
    # add/multiply of finite values may overflow to inf; that is rounding,
    # not a NaN source, but x*0 -> 0 would then hide an inf: stay strict.
    if name in ("add", "subtract", "multiply", "square"):
        return False
    return all(known_finite(i, depth - 1) for i in v.inputs)


# ops whose output is never +-inf, whatever their inputs (NaN aside)
_NEVER_INF = {"sin", "cos", "tanh", "sigmoid", "erf", "sign", "softmax"}
_NEVER_INF_IF_INPUT = {"negative", "abs", "transpose", "reshape", "getitem", "expand_dims",
                       "squeeze", "broadcast_to", "stop_gradient", "cast", "add",
                       "subtract", "multiply", "square", "maximum", "minimum", "relu"}


def never_inf(v: Var, depth: int = _DEPTH) -> bool:
    """True if no entry of ``v`` is ever +-inf (overflow aside); NaN is
    allowed. Merging like terms ``a * v - b * v -> (a - b) * v`` is exact for
    such a ``v``: with ``v = inf`` it would turn NaN into inf."""
    if known_finite(v, depth):
        return True
    name = v.op.name
    if name in _NEVER_INF:
        return True
    if depth == 0:
        return False
    if name in _NEVER_INF_IF_INPUT:
        return all(never_inf(i, depth - 1) for i in v.inputs)
    if name == "where":
        return all(never_inf(i, depth - 1) for i in v.inputs[1:])
    return False


def known_positive(v: Var, depth: int = _DEPTH) -> bool:
    """True if every entry of ``v`` is > 0 whenever its inputs are not NaN."""
    name = v.op.name
    if name == "constant":
        c = v._const
        return c.size > 0 and bool(np.all(c > 0))
    if name in ("exp", "sigmoid", "softmax"):
        return True  # > 0 up to underflow, which is rounding
    if depth == 0:
        return False
    if name in ("multiply", "divide"):
        return all(known_positive(i, depth - 1) for i in v.inputs)
    if name == "add":
        a, b = v.inputs
        return (known_positive(a, depth - 1) and known_nonneg(b, depth - 1)) or \
            (known_positive(b, depth - 1) and known_nonneg(a, depth - 1))
    if name in ("sqrt", "transpose", "reshape", "getitem", "broadcast_to", "expand_dims",
                "squeeze"):
        return known_positive(v.inputs[0], depth - 1)
    return False


def known_nonzero(v: Var, depth: int = _DEPTH) -> bool:
    """True if no entry of ``v`` is ever 0 (not even by underflow, unlike
    exp) when its inputs are not NaN: 1 + square(x), positive constants."""
    name = v.op.name
    if name == "constant":
        c = v._const
        return c.size > 0 and bool(np.all(c != 0))
    if depth == 0:
        return False
    if name == "add":
        a, b = v.inputs
        return any(const(c) is not None and bool(np.all(const(c) > 0)) and
                   known_nonneg(o, depth - 1) for c, o in ((a, b), (b, a)))
    if name in ("negative", "abs", "transpose", "reshape", "broadcast_to", "expand_dims",
                "squeeze", "getitem"):
        return known_nonzero(v.inputs[0], depth - 1)
    return False


# elementwise ops that are finite where all their inputs are (overflow aside)
# and non-finite where any input is: inf + 1, inf * 0, sin(inf) are not finite
# (exp(-inf) = 0 and tanh(inf) = 1 are, so exp and tanh are not here)
_FINITE_IFF_INPUTS = {"add", "subtract", "multiply", "negative", "square", "abs", "sin",
                      "cos", "broadcast_to", "stop_gradient"}


def inf_sources(v: Var, limit: int = 32):
    """The placeholders and parameters ``v`` is built from by elementwise ops
    that are non-finite exactly where an input is (overflow aside), or None.
    ``0 * x`` over them is then NaN exactly where ``v`` is a genuine inf or
    NaN, and 0 where ``v`` merely overflows."""
    found, seen, stack = [], set(), [v]
    while stack:
        n = stack.pop()
        if n.id in seen:
            continue
        seen.add(n.id)
        name = n.op.name
        if name in ("placeholder", "parameter"):
            found.append(n)
        elif name == "constant":
            if not known_finite(n):
                return None
        elif name in _FINITE_IFF_INPUTS or (name == "cast" and n.inputs[0].dtype.kind == "f"):
            stack.extend(n.inputs)
        else:
            return None
        if len(seen) > limit:
            return None
    return sorted(found, key=lambda n: n.id)


def known_nonneg(v: Var, depth: int = _DEPTH) -> bool:
    name = v.op.name
    if name == "constant":
        return bool(np.all(v._const >= 0))
    if name in ("square", "abs", "relu", "exp", "sigmoid", "softplus", "sqrt", "softmax"):
        return True
    if depth == 0:
        return False
    if name in ("add", "multiply"):
        return all(known_nonneg(i, depth - 1) for i in v.inputs)
    return known_positive(v, depth)
