"""Algebraic simplification rules (the "canonicalize" stage).

Each rule is a small function of the node at the root of its pattern. A
rule never changes the exact result beyond floating-point reassociation and
never hides a NaN or inf: rules that drop an operand (``x * 0``, ``x - x``,
``x / x``) fire only when ``facts`` proves the operand finite (non-zero).
"""

from __future__ import annotations

import numpy as np

from .. import ops
from ..ops.base import constant_var, is_exact_zero, same_runtime_shape, unknown_sizes
from .facts import (const, fits_float, is_value, known_finite, known_nonneg, known_positive,
                    never_inf, safe, uniform)
from .rewrite import RuleTable

ALGEBRA = RuleTable("algebra")
rule = ALGEBRA.rule


def _same(x, node) -> bool:
    return x.shape == node.shape and x.dtype == node.dtype


def _typed(v, node):
    """``v`` cast to ``node``'s dtype (log(exp(i)) is a float for an integer i)."""
    return v if v.dtype == node.dtype else ops.cast(v, node.dtype)


def _droppable(node, kept=()) -> bool:
    """May a rewrite of ``node`` drop its operands other than ``kept``? Not
    if that would hide an error the call must raise: each dropped operand
    must be ``safe`` (nothing it is built from can raise), and with an
    unknown dim among the operands their sizes may mismatch at run time."""
    dropped = [i for i in node.inputs if all(i is not k for k in kept)]
    if not dropped:
        return True
    if unknown_sizes(node):
        return False
    return all(safe(i) for i in dropped)


def _fill(node, value):
    """A constant shaped like ``node``; with unknown dims, a run-time fill
    shaped like one of its operands that already has the node's shape. None
    when that would drop an operand that may raise (see _droppable)."""
    if all(d is not None for d in node.shape):
        if not _droppable(node):
            return None
        return constant_var(np.full(node.shape, value, dtype=node.dtype))
    for x in node.inputs:
        if x.shape == node.shape and _droppable(node, (x,)):
            fill = ops.zeros_like if value == 0 else ops.ones_like
            out = fill(x, node.dtype)
            if value in (0, 1):
                return out
    return None


def _scalar(value, dtype):
    return constant_var(np.asarray(value, dtype=dtype))


def _folded(value, dtype):
    """A folded constant (c1 * c2, c1 + c2, 1 / c) as a scalar node, or None
    when it does not survive in ``dtype`` the way the unfolded steps would:
    a float that overflows to inf or falls below the normal range (x * inf
    or x * 0 would then turn a finite result into NaN or inf), an integer
    out of range."""
    dtype = np.dtype(dtype)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return _scalar(value, dtype) if info.min <= value <= info.max else None
    if dtype.kind == "f" and not fits_float(value, dtype):
        return None
    return _scalar(value, dtype)


# -- identities of 0 and 1 -----------------------------------------------------

@rule("add", const=True)
def add_zero(n):
    """x + -0.0 -> x (and x + 0 in integers; x + 0.0 is +0.0 for x = -0.0)"""
    a, b = n.inputs
    if is_exact_zero(b, True, n) and _same(a, n):
        return a
    if is_exact_zero(a, True, n) and _same(b, n):
        return b


@rule("subtract", const=True)
def sub_zero(n):
    """x - 0 -> x"""
    a, b = n.inputs
    if is_exact_zero(b, False, n) and _same(a, n):
        return a


@rule("subtract", const=True)
def zero_sub(n):
    """-0.0 - x -> -x (and 0 - x in integers; 0.0 - 0.0 is +0.0, -0.0 is not)"""
    a, b = n.inputs
    if is_exact_zero(a, True, n) and _same(b, n):
        return ops.negative(b)


@rule("multiply", const=True)
def mul_one(n):
    """x * 1 -> x"""
    a, b = n.inputs
    if is_value(b, 1) and _same(a, n):
        return a
    if is_value(a, 1) and _same(b, n):
        return b


@rule("multiply", const=True)
def mul_minus_one(n):
    """x * -1 -> -x"""
    a, b = n.inputs
    if is_value(b, -1) and _same(a, n):
        return ops.negative(a)
    if is_value(a, -1) and _same(b, n):
        return ops.negative(b)


@rule("multiply", const=True)
def mul_zero(n):
    """x * 0 -> 0, only when x is known finite (inf * 0 is NaN)"""
    a, b = n.inputs
    for x, z in ((a, b), (b, a)):
        if is_value(z, 0) and known_finite(x) and not np.signbit(uniform(z)):
            return _fill(n, 0)


@rule("divide")
def div_one(n):
    """x / 1 -> x"""
    a, b = n.inputs
    if is_value(b, 1) and _same(a, n):
        return a


@rule("divide")
def div_pow2(n):
    """x / c -> x * (1/c) when c is a power of two (exact)"""
    a, b = n.inputs
    c = uniform(b)
    if c is None or b.ndim or n.dtype.kind != "f" or c == 0 or not np.isfinite(c):
        return None
    m, _ = np.frexp(c)
    if abs(m) == 0.5:
        inv = _folded(1.0 / c, n.dtype)  # 1 / 2**-1070 overflows
        return None if inv is None else ops.multiply(a, inv)


@rule("power")
def pow_one(n):
    """x ** 1 -> x"""
    a, b = n.inputs
    if is_value(b, 1) and _same(a, n):
        return a


@rule("power")
def pow_zero(n):
    """x ** 0 -> 1 (also for NaN and inf, as IEEE and NumPy define it)"""
    a, b = n.inputs
    if is_value(b, 0) and n.dtype.kind == "f":
        return _fill(n, 1)


@rule("power")
def pow_small_int(n):
    """x ** 2 -> square(x), x ** 3 -> x * square(x), x ** 4 -> square(square(x)),
    x ** -1 -> 1 / x, x ** -2 -> 1 / square(x), x ** 0.5 -> sqrt(x)"""
    a, b = n.inputs
    c = uniform(b)
    if c is None or b.ndim or not _same(a, n) or n.dtype.kind != "f":
        return None
    one = _scalar(1, n.dtype)
    table = {
        2: lambda: ops.square(a),
        3: lambda: ops.multiply(a, ops.square(a)),
        4: lambda: ops.square(ops.square(a)),
        -1: lambda: ops.divide(one, a),
        -2: lambda: ops.divide(one, ops.square(a)),
        0.5: lambda: ops.sqrt(a),
    }
    make = table.get(c)
    return make() if make else None


# -- negation --------------------------------------------------------------------

@rule("negative")
def neg_neg(n):
    """-(-x) -> x"""
    x = n.inputs[0]
    if x.op.name == "negative":
        return x.inputs[0]


@rule("negative")
def neg_sub(n):
    """-(a - b) -> b - a"""
    x = n.inputs[0]
    if x.op.name == "subtract" and _same(x, n):
        a, b = x.inputs
        return ops.subtract(b, a)


def _negated(x, n) -> bool:
    """Is operand ``x`` of ``n`` a negation that may move to ``n``? Yes for
    a float, or one done in ``n``'s own dtype; an integer -y that ``n`` then
    converts to a wider type has already wrapped (-128 in int8, any unsigned
    y): -u * 0.5 is not -(u * 0.5)."""
    return x.op.name == "negative" and (x.dtype.kind == "f" or x.dtype == n.dtype)


def _pull_negation(n, build):
    """op(-a, b) -> -op(a, b) and op(a, -b) -> -op(a, b) for an op odd in
    each operand (multiply, divide)."""
    a, b = n.inputs
    if _negated(a, n):
        return ops.negative(build(a.inputs[0], b))
    if _negated(b, n):
        return ops.negative(build(a, b.inputs[0]))


@rule("multiply")
def neg_out_of_mul(n):
    """(-a) * b -> -(a * b): negations move up where they can cancel"""
    return _pull_negation(n, ops.multiply)


@rule("divide")
def neg_out_of_div(n):
    """(-a) / b -> -(a / b), a / (-b) -> -(a / b)"""
    return _pull_negation(n, ops.divide)


@rule("add")
def add_neg(n):
    """a + (-b) -> a - b"""
    a, b = n.inputs
    if _negated(b, n):
        return ops.subtract(a, b.inputs[0])
    if _negated(a, n):
        return ops.subtract(b, a.inputs[0])


@rule("subtract")
def sub_neg(n):
    """a - (-b) -> a + b"""
    a, b = n.inputs
    if _negated(b, n):
        return ops.add(a, b.inputs[0])


@rule("subtract")
def neg_sub_x(n):
    """(-a) - b -> -(a + b)"""
    a, b = n.inputs
    if _negated(a, n):
        return ops.negative(ops.add(a.inputs[0], b))


@rule("sum", "mean")
def reduce_neg(n):
    """sum(-x) -> -sum(x) (negate the small result, not the large input)"""
    x = n.inputs[0]
    # integers: negation wraps differently in the input and the sum's type
    if x.op.name == "negative" and x.dtype.kind in "fc" and n.dtype == x.dtype:
        return ops.negative(type_of(n)(x.inputs[0], n.attrs[0], n.attrs[1]))


def type_of(n):
    return {"sum": ops.sum, "mean": ops.mean}[n.op.name]


# -- self-cancellation and like terms ------------------------------------------

@rule("subtract")
def sub_self(n):
    """x - x -> 0 when x is known finite"""
    a, b = n.inputs
    if a is b and known_finite(a):
        return _fill(n, 0)


@rule("divide")
def div_self(n):
    """x / x -> 1 when x is known finite and positive"""
    a, b = n.inputs
    if a is b and known_finite(a) and known_positive(a):
        return _fill(n, 1)


@rule("add")
def add_self(n):
    """(c * x) + (c * x) -> (2c) * x. A bare x + x stays: 2 * x would add a
    node (the constant); add_scaled still merges (x + x) + x -> 3 * x."""
    a, b = n.inputs
    if a is not b or n.dtype.kind != "f":
        return None
    c, x = _split_coeff(a)
    if c != 1 and _same(x, n):
        c2 = _folded(2 * c, n.dtype)  # 2 * 1e308 is inf
        return None if c2 is None else ops.multiply(c2, x)


@rule("multiply")
def mul_self(n):
    """x * x -> square(x)"""
    a, b = n.inputs
    if a is b and n.dtype.kind != "b":  # NumPy squares a bool to int8
        return ops.square(a)


@rule("add")
def add_scaled(n):
    """c1 * x + c2 * x -> (c1 + c2) * x, and x + c * x -> (1 + c) * x; with
    c1, c2 of opposite signs only when x is never inf (inf - 2 inf is NaN)"""
    a, b = n.inputs
    if n.dtype.kind != "f":
        return None
    ca, xa = _split_coeff(a)
    cb, xb = _split_coeff(b)
    if xa is xb and (ca != 1 or cb != 1) and _same(xa, n) and (ca * cb > 0 or never_inf(xa)):
        total = ca + cb
        if total == 0:
            return _fill(n, 0) if known_finite(xa) else None
        c = _folded(total, n.dtype)
        return None if c is None else ops.multiply(c, xa)


@rule("subtract")
def sub_scaled(n):
    """c1 * x - c2 * x -> (c1 - c2) * x (when c1, c2 have the same sign, or
    x is never inf)"""
    a, b = n.inputs
    if n.dtype.kind != "f":
        return None
    ca, xa = _split_coeff(a)
    cb, xb = _split_coeff(b)
    if xa is xb and (ca != 1 or cb != 1) and _same(xa, n) and (ca * cb < 0 or never_inf(xa)):
        total = ca - cb
        if total == 0:
            return _fill(n, 0) if known_finite(xa) else None
        c = _folded(total, n.dtype)
        return None if c is None else ops.multiply(c, xa)


def _split_coeff(v):
    """``c * x`` -> (c, x) for a scalar constant c, ``x + x`` -> (2, x);
    anything else -> (1, v)."""
    if v.op.name == "add" and v.inputs[0] is v.inputs[1]:
        return 2, v.inputs[0]
    if v.op.name == "multiply":
        a, b = v.inputs
        for c, x in ((a, b), (b, a)):
            u = uniform(c)
            if u is not None and c.ndim == 0:
                return u, x
    return 1, v


@rule("multiply", const=True)
def mul_consts(n):
    """c1 * (c2 * x) -> (c1 * c2) * x"""
    a, b = n.inputs
    for c, rest in ((a, b), (b, a)):
        u = uniform(c)
        if u is None or c.ndim or rest.op.name != "multiply":
            continue
        for c2, x in ((rest.inputs[0], rest.inputs[1]), (rest.inputs[1], rest.inputs[0])):
            u2 = uniform(c2)
            if u2 is not None and c2.ndim == 0 and _same(x, n):
                c12 = _folded(u * u2, n.dtype)
                return None if c12 is None else ops.multiply(c12, x)


@rule("add", const=True)
def add_consts(n):
    """c1 + (c2 + x) -> (c1 + c2) + x"""
    a, b = n.inputs
    for c, rest in ((a, b), (b, a)):
        u = uniform(c)
        if u is None or c.ndim or rest.op.name != "add":
            continue
        for c2, x in ((rest.inputs[0], rest.inputs[1]), (rest.inputs[1], rest.inputs[0])):
            u2 = uniform(c2)
            if u2 is not None and c2.ndim == 0 and _same(x, n):
                c12 = _folded(u + u2, n.dtype)
                return None if c12 is None else ops.add(c12, x)


@rule("multiply", "add", "subtract", "divide", "maximum", "minimum", "power",
      const=True)
def shrink_uniform_const(n):
    """x * full(shape, c) -> x * c when x alone already has the result's
    shape (mul by a broadcast constant)"""
    a, b = n.inputs
    for c, x, pos in ((b, a, 1), (a, b, 0)):
        if c.ndim == 0 or const(c) is None or not _same(x, n):
            continue
        u = uniform(c)
        if u is None or c.dtype != n.dtype:
            continue
        s = _scalar(u, c.dtype)
        args = (x, s) if pos == 1 else (s, x)
        return _BUILD[n.op.name](*args)


_BUILD = {"multiply": ops.multiply, "add": ops.add, "subtract": ops.subtract,
          "divide": ops.divide, "maximum": ops.maximum, "minimum": ops.minimum,
          "power": ops.power}


@rule("multiply")
def mul_broadcast(n):
    """x * broadcast_to(y, s) -> x * y when broadcasting x alone gives s"""
    a, b = n.inputs
    for bc, x in ((b, a), (a, b)):
        if bc.op.name == "broadcast_to" and _same(x, n):
            return ops.multiply(x, bc.inputs[0])


# -- exp/log, sqrt/square, abs -------------------------------------------------------

@rule("exp")
def exp_log(n):
    """exp(log(x)) -> x when x is known positive (else log gives NaN)"""
    x = n.inputs[0]
    if x.op.name == "log" and known_positive(x.inputs[0]):
        return _typed(x.inputs[0], n)


@rule("exp")
def exp_log1p(n):
    """exp(log1p(x)) -> 1 + x when x >= 0 (log(1 + x) is stabilised to
    log1p(x) first, so exp(log(1 + x)) needs this rule too)"""
    x = n.inputs[0]
    if x.op.name == "log1p" and known_nonneg(x.inputs[0]) and _same(x.inputs[0], n):
        return ops.add(_scalar(1, n.dtype), x.inputs[0])


@rule("sqrt")
def sqrt_square(n):
    """sqrt(square(x)) -> abs(x)"""
    x = n.inputs[0]
    if x.op.name == "square" and x.dtype.kind == "f":  # an integer square may wrap
        return _typed(ops.abs(x.inputs[0]), n)


@rule("abs")
def abs_idempotent(n):
    """abs(abs(x)) -> abs(x), abs(-x) -> abs(x), abs(square(x)) -> square(x)"""
    x = n.inputs[0]
    if x.op.name == "abs":
        return x
    if x.op.name == "negative" and x.dtype.kind != "u":  # -u wraps for unsigned u
        return ops.abs(x.inputs[0])
    if x.op.name in ("square", "exp", "sigmoid") and x.dtype.kind == "f":
        return x  # never negative (an integer square may wrap)


@rule("square")
def square_neg(n):
    """square(-x) -> square(x), square(abs(x)) -> square(x)"""
    x = n.inputs[0]
    if x.op.name in ("negative", "abs"):
        return ops.square(x.inputs[0])


# -- shapes ----------------------------------------------------------------------

@rule("transpose")
def transpose_transpose(n):
    """transpose(transpose(x)) -> one transpose (or x)"""
    x = n.inputs[0]
    if x.op.name == "transpose":
        return ops.transpose(x.inputs[0], tuple(x.attrs[0][p] for p in n.attrs[0]))


@rule("reshape")
def reshape_reshape(n):
    """reshape(reshape(x)) -> reshape(x); reshape to its own shape -> x"""
    x = n.inputs[0]
    if x.op.name in ("reshape", "expand_dims", "squeeze"):
        return ops.reshape(x.inputs[0], n.attrs[0])  # the spec: may hold -1
    if x.shape == n.shape:
        return x


@rule("squeeze")
def squeeze_expand(n):
    """squeeze(expand_dims(x, a), a) -> x"""
    x = n.inputs[0]
    if x.op.name == "expand_dims" and x.attrs == n.attrs:
        return x.inputs[0]


@rule("broadcast_to")
def broadcast_noop(n):
    """broadcast_to(x, x.shape) -> x; broadcast_to(broadcast_to(x)) -> one"""
    x = n.inputs[0]
    if x.shape == n.shape:
        return x
    if x.op.name == "broadcast_to":
        return ops.broadcast_to(x.inputs[0], n.shape)


_REDUCTIONS = {"sum", "mean", "max", "min", "prod", "logsumexp"}


@rule("broadcast_like")
def broadcast_of_reduced_broadcast(n):
    """broadcast_like(expand_dims(broadcast_like(a, r), axes), x) -> one
    broadcast of a to x, where r reduces x over axes and a holds a single
    element (a mean's gradient over a size known at run time: one view
    instead of three)"""
    e, x = n.inputs
    if e.op.name != "expand_dims" or e.inputs[0].op.name != "broadcast_like":
        return None
    a, r = e.inputs[0].inputs
    if r.op.name not in _REDUCTIONS or r.inputs[0] is not x or r.attrs[1] \
            or tuple(r.attrs[0]) != tuple(e.attrs[0]) or any(d != 1 for d in a.shape):
        return None
    if a.op.name == "expand_dims" and a.inputs[0].ndim == 0:
        a = a.inputs[0]  # a 0-d value broadcasts to any shape as it is
    if n.shape != x.shape or e.inputs[0].ndim != r.ndim or a.ndim > x.ndim:
        return None  # a has more dims than r or x: the broadcasts add them
    from ..ops.shape import broadcast_like
    return broadcast_like(a if a.ndim == 0 else ops.reshape(a, (1,) * x.ndim), x)


@rule("sum")
def sum_of_broadcast(n):
    """sum(broadcast_to(x, s)) over exactly the broadcast axes -> x * count"""
    b = n.inputs[0]
    if b.op.name != "broadcast_to" or n.dtype.kind != "f":
        return None
    x = b.inputs[0]
    if None in x.shape:
        return None  # an unknown dim may be 1 at run time: broadcast there too
    axes, keepdims = n.attrs
    lead = b.ndim - x.ndim
    bcast = [i for i in range(b.ndim)
             if i < lead or (x.shape[i - lead] == 1 and b.shape[i] != 1)]
    if set(axes) != set(bcast) and not (x.ndim == 0 and len(axes) == b.ndim):
        return None
    count = 1
    for i in axes:
        count *= b.shape[i]
    c = _folded(count, n.dtype)  # 70000 is inf in float16
    if c is None:
        return None
    core = ops.reshape(x, n.shape) if x.shape != n.shape else x
    return ops.multiply(core, c)


@rule("sum", "mean", "max", "min", "prod")
def reduce_size_one(n):
    """a reduction over axes of size 1 is a squeeze (or nothing, keeping
    dims)"""
    x = n.inputs[0]
    axes, keepdims = n.attrs
    if n.op.name in ("sum", "mean") and x.dtype.kind == "f":
        return None  # NumPy's sum starts from +0.0: the sum of [-0.0] is +0.0
    if axes and all(x.shape[a] == 1 for a in axes) and x.dtype == n.dtype:
        return x if keepdims else ops.squeeze(x, axes)


@rule("where")
def where_same(n):
    """where(c, x, x) -> x"""
    c, a, b = n.inputs
    if a is b and _same(a, n) and same_runtime_shape(a, n) and _droppable(n, (a,)):
        return a


@rule("maximum", "minimum")
def extreme_self(n):
    """maximum(x, x) -> x"""
    a, b = n.inputs
    if a is b:
        return a


@rule("cast")
def cast_noop(n):
    """cast(x, x.dtype) -> x"""
    x = n.inputs[0]
    if x.dtype == n.dtype:
        return x


@rule("reshape")
def reshape_of_keepdims_reduction(n):
    """reshape(sum(x, axes, keepdims=True)) to the reduced shape -> sum(x, axes)"""
    r = n.inputs[0]
    if r.op.name not in ("sum", "mean", "max", "min", "prod") or not r.attrs[1]:
        return None
    axes = r.attrs[0]
    x = r.inputs[0]
    if tuple(d for i, d in enumerate(x.shape) if i not in axes) == n.shape:
        return _REDUCE[r.op.name](x, axes)


_REDUCE = {"sum": ops.sum, "mean": ops.mean, "max": ops.max, "min": ops.min,
           "prod": ops.prod}


def _numel(v):
    size = 1
    for d in v.shape:
        size *= 1 if d is None else d
    return size


@rule("multiply", const=True)
def scale_before_matmul(n):
    """c * (a @ b) -> a @ (c * b) (or (c * a) @ b) for |c| <= 1: scale the
    smaller operand, not the larger product"""
    a, b = n.inputs
    for c, m in ((a, b), (b, a)):
        if c.ndim != 0 or m.op.name != "matmul" or not _same(m, n):
            continue
        value = uniform(c)
        # |c| > 1 could overflow c * a to inf where the product is finite
        # (inf * 0 = NaN for 2 * (3e38 @ 0) in float32)
        if value is None or not abs(value) <= 1:
            continue
        left, right = m.inputs
        small = left if _numel(left) <= _numel(right) else right
        if _numel(small) >= _numel(m):
            return None
        if small is left:
            return ops.matmul(ops.multiply(c, left), right)
        return ops.matmul(left, ops.multiply(c, right))
