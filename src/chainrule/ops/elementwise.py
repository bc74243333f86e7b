"""Elementwise ops: unary math, binary arithmetic, comparisons, selection.

A unary op is declared by its derivative alone, written in graph ops, from
which the VJP (``g * f'(x)``) and the JVP (``t * f'(x)``) both follow. A
binary op gives its two partials the same way; broadcasting is undone by
``sum_to`` in the shared rule, never in an op's own code.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import DTypeError, InputError
from .base import (NOT_DIFFERENTIABLE, Op, Var, broadcast_shapes, constant_var, dtype_expr,
                   folded, from_source, is_const_scalar, is_exact_zero, is_float, lift,
                   lift_pair, make_node, probe_dtype, register, same_runtime_shape, sum_to)

_FOLD_MAX = 256  # constant inputs with at most this many elements fold at build


def apply(op: Op, inputs, attrs=()):
    """Build ``op(*inputs)``, folding it to a constant when every input is a
    small constant (so derivative graphs do not carry ``2 - 1`` around)."""
    node = make_node(op, inputs, attrs)
    for i in inputs:  # (a loop: this runs for every node built)
        if i._const is None or i._const.size > _FOLD_MAX:
            return node
    if node.op is op and inputs:
        val = folded(op, attrs, [i._const for i in inputs])
        if val is not None and val.size <= _FOLD_MAX and val.dtype == node.dtype:
            return constant_var(val)
    return node


def _out_shape(out, t):
    """Broadcast a tangent term to the op's output shape if it may be smaller
    (a tangent has its primal's shape; with unknown dims, equal static
    shapes can still broadcast at run time)."""
    if t.shape == out.shape and (None not in out.shape or all(
            same_runtime_shape(x, out) for x in out.inputs if x.shape == out.shape)):
        return t
    from .shape import broadcast_like
    return broadcast_like(t, out)


# -- unary -------------------------------------------------------------------

def _unary_vjp(deriv):
    def vjp(out, g, needs):
        x = out.inputs[0]
        if not is_float(x) or deriv is None:
            return [None]
        return [g * deriv(x, out)]
    return vjp


def _unary_jvp(deriv):
    def jvp(out, tangents):
        t = tangents[0]
        if t is None or deriv is None or not is_float(out):
            return None
        return t * deriv(out.inputs[0], out)
    return jvp


def unary(name, fn, deriv, emit=None, helpers=None, flops=1.0, ufunc=None, emit_node=None,
          scalar=None):
    """Declare ``name(x) = fn(x)`` elementwise with ``f'(x) = deriv(x, y)``
    (``y`` is the op's output; ``deriv=None`` means f' = 0 everywhere)."""
    op = register(Op(
        name,
        infer=lambda attrs, x: (x.shape, probe_dtype(name, fn, x)),
        impl=lambda attrs, x: fn(x),
        vjp=_unary_vjp(deriv),
        jvp=_unary_jvp(deriv),
        emit=emit or (lambda attrs, x: f"np.{name}({x})"),
        emit_node=emit_node,
        ufunc=ufunc or (None if emit or emit_node else f"np.{name}"),
        elementwise=True,
        helpers=helpers or {},
        flops=lambda node: flops * _size(node),
        scalar=scalar,
    ))

    def build(x):
        return apply(op, (lift(x),))

    build.__name__ = name
    build.__qualname__ = name
    build.__doc__ = f"Elementwise ``{name}(x)``, differentiable."
    return build


def _size(node):
    n = 1
    for d in node.shape:
        n *= 1 if d is None else d  # unknown dims count as 1 in cost estimates
    return n


_SIGMOID_SRC = '''def _sigmoid(x):
    # ints become floats first (-abs(x) wraps for unsigned ints and int8's
    # -128); exp of a non-positive number never overflows
    x = np.asarray(x, np.result_type(x, 0.5))
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))
'''
_SOFTPLUS_SRC = '''def _softplus(x):
    return np.logaddexp(np.zeros((), np.result_type(x, 0.5)), x)
'''
_ERF_SRC = '''def _erf(x):
    from math import erf
    out = np.frompyfunc(erf, 1, 1)(np.asarray(x, np.float64))
    return np.asarray(out, dtype=np.result_type(x, 0.5))
'''
# the interpreter runs the very helpers the generated code defines
_sigmoid = from_source(_SIGMOID_SRC)
_softplus = from_source(_SOFTPLUS_SRC)
_erf = from_source(_ERF_SRC)

exp = unary("exp", np.exp, lambda x, y: y)
log = unary("log", np.log, lambda x, y: 1 / x)
log1p = unary("log1p", np.log1p, lambda x, y: 1 / (1 + x))
expm1 = unary("expm1", np.expm1, lambda x, y: y + 1)
sqrt = unary("sqrt", np.sqrt, lambda x, y: 0.5 / y, scalar=lambda a, x: f"math.sqrt({x})")
square = unary("square", np.square, lambda x, y: 2 * x, scalar=lambda a, x: f"{x} * {x}")
sin = unary("sin", np.sin, lambda x, y: cos(x))
cos = unary("cos", np.cos, lambda x, y: -sin(x))
tan = unary("tan", np.tan, lambda x, y: 1 + square(y))
tanh = unary("tanh", np.tanh, lambda x, y: 1 - square(y))
sigmoid = unary("sigmoid", _sigmoid, lambda x, y: y * (1 - y),
                emit=lambda a, x: f"_sigmoid({x})", helpers={"_sigmoid": _SIGMOID_SRC})
softplus = unary("softplus", _softplus, lambda x, y: sigmoid(x),
                 emit=lambda a, x: f"_softplus({x})", helpers={"_softplus": _SOFTPLUS_SRC})


def _relu_code(node, x, const=None):
    # relu keeps its input's dtype; a Python 0 would make a bool's int64
    return f"np.maximum({x}, {'False' if node.dtype.kind == 'b' else '0'})"


relu = unary("relu", lambda x: np.maximum(x, np.zeros((), x.dtype)),
             lambda x, y: cast(greater(x, 0), x.dtype),
             emit=lambda a, x: f"np.maximum({x}, 0)", emit_node=_relu_code)

abs = unary("abs", np.abs, lambda x, y: sign(x))  # abs'(0) = sign(0) = 0
sign = unary("sign", np.sign, None)
erf = unary("erf", _erf, lambda x, y: (2 / math.sqrt(math.pi)) * exp(-square(x)),
            emit=lambda a, x: f"_erf({x})", helpers={"_erf": _ERF_SRC}, flops=20.0)

_negative_op = register(Op(
    "negative",
    infer=lambda attrs, x: (x.shape, probe_dtype("negative", np.negative, x)),
    impl=lambda attrs, x: np.negative(x),
    vjp=lambda out, g, needs: [-g if is_float(out.inputs[0]) else None],
    jvp=lambda out, ts: None if ts[0] is None else -ts[0],
    emit=lambda attrs, x: f"-{x}",
    elementwise=True,
    flops=_size,
    ufunc="np.negative",
    scalar=lambda attrs, x: f"-{x}",
))


def negative(x):
    """Elementwise ``-x``."""
    return apply(_negative_op, (lift(x),))


# -- binary arithmetic -------------------------------------------------------

def _binary_vjp(px, py):
    def vjp(out, g, needs):
        x, y = out.inputs
        tx = px(g, x, y, out) if needs[0] and is_float(x) and px else None
        ty = py(g, x, y, out) if needs[1] and is_float(y) and py else None
        # a partial may be a symbolic zero (None)
        return [None if tx is None else sum_to(tx, x, out),
                None if ty is None else sum_to(ty, y, out)]
    return vjp


def _binary_jvp(px, py):
    def jvp(out, tangents):
        if not is_float(out):
            return None
        x, y = out.inputs
        tx, ty = tangents
        terms = []
        if tx is not None and px:
            terms.append(px(tx, x, y, out))
        if ty is not None and py:
            terms.append(py(ty, x, y, out))
        terms = [t for t in terms if t is not None]  # symbolic zeros
        if not terms:
            return None
        total = terms[0] if len(terms) == 1 else terms[0] + terms[1]
        return _out_shape(out, total)
    return jvp


def binary(name, fn, px, py, emit, commutative=False, flops=1.0, may_raise=False,
           emit_node=None, scalar=None):
    """Declare an elementwise binary op from its two partials, each written
    as ``p(g, x, y, out) = g * df/d(arg)`` (linear in ``g``)."""
    return register(Op(
        name,
        infer=lambda attrs, x, y: (broadcast_shapes(name, x, y),
                                   probe_dtype(name, fn, x, y)),
        impl=lambda attrs, x, y: fn(x, y),
        vjp=_binary_vjp(px, py),
        jvp=_binary_jvp(px, py),
        emit=emit, emit_node=emit_node,
        commutative=commutative,
        may_raise=may_raise,
        elementwise=True,
        flops=lambda node: flops * _size(node),
        ufunc=f"np.{name}",
        scalar=scalar,
    ))


def _infix(symbol):
    """``x <symbol> y``: the array statement, and one element of it in a
    fused loop (whose operands are plain names)."""
    return lambda attrs, x, y: f"{x} {symbol} {y}"


def _maximum_mask(x, y, out):
    # the share of the gradient x gets: 1 where it wins, 1/2 at ties
    dt = out.dtype
    return cast(greater(x, y), dt) + 0.5 * cast(equal(x, y), dt)


_add = binary("add", np.add, lambda g, x, y, o: g, lambda g, x, y, o: g,
              _infix("+"), commutative=True, scalar=_infix("+"))
_sub = binary("subtract", np.subtract, lambda g, x, y, o: g, lambda g, x, y, o: -g,
              _infix("-"), scalar=_infix("-"))
_mul = binary("multiply", np.multiply, lambda g, x, y, o: g * y,
              lambda g, x, y, o: g * x, _infix("*"), commutative=True,
              scalar=_infix("*"))
_div = binary("divide", np.divide, lambda g, x, y, o: g / y,
              lambda g, x, y, o: -(g * o) / y, _infix("/"),
              scalar=_infix("/"))
# d/dx x**y = y * x**(y-1): finite for negative x with a constant exponent,
# never taken through log(x).
def _pow_dx(g, x, y, o):
    # x ** 0 is 1 everywhere: its derivative is exactly 0, also at x = 0
    # (where 0 * 0 ** -1 would be NaN). An exponent that may be 0 at run time
    # (or a constant array with zeros) gets base 1 where it is 0 and x is 0,
    # so the product is 0 * 1 ** -1 = 0 there; everywhere else the rule is
    # untouched, so its derivative in y (x ** (y-1) (1 + y log x), 1/x at
    # y = 0) and its value at x = inf stay right.
    if is_const_scalar(y, 0):
        return None
    if y._const is None or not bool(np.all(y._const != 0)):
        x = where(logical_and(equal(y, 0), equal(x, 0)), 1, x)
    return g * (y * x ** (y - 1))


def _pow_dy(g, x, y, o):
    # d/dy x**y = x**y * log(x). At x = 0 that would be 0 * log(0) = NaN for
    # y > 0 (and -inf at y = 0), where x**y is flat in y and the derivative
    # is 0, as JAX and PyTorch give. So log is taken of x with its zeros
    # replaced by 1 (masking the product instead would make the next
    # derivative NaN: 0 * d/dx log(0)). A base without zeros needs no guard.
    if x._const is None or not bool(np.all(x._const != 0)):
        x = where(equal(x, 0), 1, x)
    return g * (o * log(x))


def _pow_code(node, x, y, const=None):
    """``x ** y``; ``np.power(x, y)`` for 0-d operands, NumPy scalars at run
    time (a scalar input, a full sum), whose ``**`` is C's pow where the
    array loop takes a square root for ``y = 0.5`` ((-inf) ** 0.5 is inf,
    not nan; -0.0 ** 0.5 is 0.0, not -0.0). An integer constant exponent
    gives the same number either way."""
    e = node.inputs[1]._const
    if node.ndim or (e is not None and e.ndim == 0 and float(e).is_integer()):
        return f"{x} ** {y}"
    return f"np.power({x}, {y})"


_pow = binary("power", np.power, _pow_dx, _pow_dy, lambda a, x, y: f"{x} ** {y}",
              emit_node=_pow_code,
              flops=10.0,
              # NumPy refuses integers to negative integer powers
              may_raise=lambda node: node.dtype.kind in "iu")
_max = binary("maximum", np.maximum, lambda g, x, y, o: g * _maximum_mask(x, y, o),
              lambda g, x, y, o: g * _maximum_mask(y, x, o),
              lambda a, x, y: f"np.maximum({x}, {y})", commutative=True)
_min = binary("minimum", np.minimum, lambda g, x, y, o: g * _maximum_mask(y, x, o),
              lambda g, x, y, o: g * _maximum_mask(x, y, o),
              lambda a, x, y: f"np.minimum({x}, {y})", commutative=True)


def _same_type(a: Var, out: Var) -> bool:
    return a.shape == out.shape and a.dtype == out.dtype


def add(x, y):
    """Elementwise ``x + y`` with NumPy broadcasting."""
    x, y = lift_pair(x, y)
    node = apply(_add, (x, y))
    if is_exact_zero(y, True, node) and _same_type(x, node):
        return x
    if is_exact_zero(x, True, node) and _same_type(y, node):
        return y
    return node


def subtract(x, y):
    """Elementwise ``x - y``."""
    x, y = lift_pair(x, y)
    node = apply(_sub, (x, y))
    if is_exact_zero(y, False, node) and _same_type(x, node):
        return x
    if is_exact_zero(x, True, node) and _same_type(y, node):  # -0.0 - y is -y
        return negative(y)
    return node


def multiply(x, y):
    """Elementwise ``x * y``."""
    x, y = lift_pair(x, y)
    node = apply(_mul, (x, y))
    for a, b in ((x, y), (y, x)):
        if is_const_scalar(b, 1) and _same_type(a, node):
            return a
        if is_const_scalar(b, -1) and _same_type(a, node):
            return negative(a)
    return node


def _python_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def divide(x, y):
    """Elementwise true division ``x / y`` (ints divide to float64)."""
    # NumPy divides integers in float64, a Python int operand too: int8 / 300
    # is a float64, not an int8 overflow
    if isinstance(x, Var) and x.dtype.kind in "biu" and _python_int(y):
        y = np.float64(y)
    elif isinstance(y, Var) and y.dtype.kind in "biu" and _python_int(x):
        x = np.float64(x)
    x, y = lift_pair(x, y)
    node = apply(_div, (x, y))
    if is_const_scalar(y, 1) and _same_type(x, node):
        return x
    return node


def power(x, y):
    """Elementwise ``x ** y``."""
    x, y = lift_pair(x, y)
    node = apply(_pow, (x, y))
    if is_const_scalar(y, 1) and _same_type(x, node):
        return x
    return node


def maximum(x, y):
    """Elementwise maximum; at ties the gradient is split equally."""
    return apply(_max, lift_pair(x, y))


def minimum(x, y):
    """Elementwise minimum; at ties the gradient is split equally."""
    return apply(_min, lift_pair(x, y))


# -- comparisons and logic (no derivative) -----------------------------------

def _nodiff(name, fn, sym, nargs=2):
    op = register(Op(
        name,
        infer=(lambda attrs, *xs: (broadcast_shapes(name, *xs), probe_dtype(name, fn, *xs))),
        impl=lambda attrs, *xs: fn(*xs),
        vjp=NOT_DIFFERENTIABLE,
        jvp=NOT_DIFFERENTIABLE,
        emit=sym,
        commutative=name in ("equal", "not_equal", "logical_and", "logical_or"),
        elementwise=True,
        flops=_size,
        ufunc=f"np.{name}",
    ))
    if nargs == 1:
        def build(x):
            return apply(op, (lift(x),))
    else:
        def build(x, y):
            return apply(op, lift_pair(x, y))
    build.__name__ = name
    build.__doc__ = f"Elementwise ``{name}`` (a bool result; no derivative)."
    return build


equal = _nodiff("equal", np.equal, lambda a, x, y: f"{x} == {y}")
not_equal = _nodiff("not_equal", np.not_equal, lambda a, x, y: f"{x} != {y}")
less = _nodiff("less", np.less, lambda a, x, y: f"{x} < {y}")
less_equal = _nodiff("less_equal", np.less_equal, lambda a, x, y: f"{x} <= {y}")
greater = _nodiff("greater", np.greater, lambda a, x, y: f"{x} > {y}")
greater_equal = _nodiff("greater_equal", np.greater_equal, lambda a, x, y: f"{x} >= {y}")
logical_and = _nodiff("logical_and", np.logical_and,
                      lambda a, x, y: f"np.logical_and({x}, {y})")
logical_or = _nodiff("logical_or", np.logical_or,
                     lambda a, x, y: f"np.logical_or({x}, {y})")
logical_not = _nodiff("logical_not", np.logical_not,
                      lambda a, x: f"np.logical_not({x})", nargs=1)


# -- selection ---------------------------------------------------------------

def _where_vjp(out, g, needs):
    c, x, y = out.inputs
    zero = lift(0, g)
    gx = sum_to(where(c, g, zero), x, out) if needs[1] and is_float(x) else None
    gy = sum_to(where(c, zero, g), y, out) if needs[2] and is_float(y) else None
    return [None, gx, gy]


def _where_jvp(out, ts):
    _, tx, ty = ts
    if (tx is None and ty is None) or not is_float(out):
        return None
    c = out.inputs[0]
    zero = lift(0, out)
    return _out_shape(out, where(c, zero if tx is None else tx, zero if ty is None else ty))


_where = register(Op(
    "where",
    infer=lambda attrs, c, x, y: (broadcast_shapes("where", c, x, y),
                                  probe_dtype("where", np.where, c, x, y)),
    impl=lambda attrs, c, x, y: np.where(c, x, y),
    vjp=_where_vjp, jvp=_where_jvp,
    emit=lambda attrs, c, x, y: f"np.where({c}, {x}, {y})",
    elementwise=True, flops=_size,
))


def where(condition, x, y):
    """``x`` where ``condition`` holds, else ``y`` (NumPy's ``where``)."""
    c = lift(condition)
    if c.dtype != np.bool_:
        c = not_equal(c, 0)
    x, y = lift_pair(x, y)
    return apply(_where, (c, x, y))


def _clip_masks(x, lo, hi):
    """Which of x, lo, hi each entry of clip(x, lo, hi) = min(max(x, lo), hi)
    comes from (x on ties). With lo > hi NumPy gives hi everywhere; that
    case costs two extra nodes, skipped when constant bounds are ordered."""
    at_x = logical_and(greater_equal(x, lo), less_equal(x, hi))
    at_lo, at_hi = less(x, lo), greater(x, hi)
    lc, hc = lo.op.name == "constant", hi.op.name == "constant"
    if not (lc and hc and bool(np.all(lo._const <= hi._const))):
        ordered = less_equal(lo, hi)
        at_lo = logical_and(at_lo, ordered)
        at_hi = logical_or(at_hi, logical_not(ordered))
    return at_x, at_lo, at_hi


def _clip_vjp(out, g, needs):
    x, lo, hi = out.inputs
    dt = out.dtype
    at_x, at_lo, at_hi = _clip_masks(x, lo, hi)
    gx = sum_to(g * cast(at_x, dt), x, out) if needs[0] and is_float(x) else None
    glo = sum_to(g * cast(at_lo, dt), lo, out) if needs[1] and is_float(lo) else None
    ghi = sum_to(g * cast(at_hi, dt), hi, out) if needs[2] and is_float(hi) else None
    return [gx, glo, ghi]


def _clip_jvp(out, ts):
    if not is_float(out):
        return None
    x, lo, hi = out.inputs
    dt = out.dtype
    terms = []
    at_x, at_lo, at_hi = _clip_masks(x, lo, hi)
    if ts[0] is not None:
        terms.append(ts[0] * cast(at_x, dt))
    if ts[1] is not None:
        terms.append(ts[1] * cast(at_lo, dt))
    if ts[2] is not None:
        terms.append(ts[2] * cast(at_hi, dt))
    if not terms:
        return None
    total = terms[0]
    for t in terms[1:]:
        total = total + t
    return _out_shape(out, total)


_clip = register(Op(
    "clip",
    infer=lambda attrs, x, lo, hi: (broadcast_shapes("clip", x, lo, hi),
                                    probe_dtype("clip", np.clip, x, lo, hi)),
    impl=lambda attrs, x, lo, hi: np.clip(x, lo, hi),
    vjp=_clip_vjp, jvp=_clip_jvp,
    emit=lambda attrs, x, lo, hi: f"np.clip({x}, {lo}, {hi})",
    elementwise=True, flops=_size, ufunc="np.clip",
))


def clip(a, a_min, a_max):
    """Limit ``a`` to ``[a_min, a_max]`` (either bound may be None). The
    gradient flows to ``a`` inside the interval, bounds included."""
    a = lift(a)
    if a_min is None and a_max is None:
        raise InputError("clip: give at least one of a_min and a_max")
    if a.dtype.kind == "f":
        lo_default, hi_default = -np.inf, np.inf
    else:
        info = np.iinfo(a.dtype) if a.dtype.kind in "iu" else None
        lo_default = info.min if info else False
        hi_default = info.max if info else True
    # a missing bound is the widest value of a's own dtype (so it cannot
    # change the result type); given bounds promote as in np.clip
    lo = constant_var(lo_default, a.dtype) if a_min is None else lift(a_min, a)
    hi = constant_var(hi_default, a.dtype) if a_max is None else lift(a_max, a)
    return apply(_clip, (a, lo, hi))


# -- dtype changes, gradient barriers, fills ---------------------------------

def _as_dtype(dtype, what):
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise DTypeError(f"{what}: {dtype!r} is not a dtype") from None
    if dt.kind not in "biuf":
        raise DTypeError(f"{what}: dtype {dt} is not supported "
                         f"(use bool, integer or floating-point)")
    return dt


_cast = register(Op(
    "cast",
    infer=lambda attrs, x: (x.shape, np.dtype(attrs[0])),
    impl=lambda attrs, x: x.astype(attrs[0], copy=False),
    vjp=lambda out, g, needs: [cast(g, out.inputs[0].dtype)
                               if is_float(out.inputs[0]) else None],
    jvp=lambda out, ts: cast(ts[0], out.dtype)
    if ts[0] is not None and is_float(out) else None,
    emit=lambda attrs, x: f"{x}.astype({dtype_expr(attrs[0])})",
    elementwise=True, flops=_size,
))


def cast(x, dtype):
    """``x.astype(dtype)``; a float-to-float cast passes gradients through."""
    x = lift(x)
    dt = _as_dtype(dtype, "cast")
    if dt == x.dtype:
        return x
    return apply(_cast, (x,), (dt.str,))


_stop = register(Op(
    "stop_gradient",
    infer=lambda attrs, x: (x.shape, x.dtype),
    impl=lambda attrs, x: x,
    vjp=lambda out, g, needs: [None],
    jvp=lambda out, ts: None,
    emit=lambda attrs, x: x,
    elementwise=True, flops=lambda node: 0.0, aliases=True,
))


def stop_gradient(x):
    """The value of ``x``, treated as a constant by every derivative."""
    x = lift(x)
    if x.op.name in ("constant", "stop_gradient"):
        return x
    return make_node(_stop, (x,))


_full_like = register(Op(
    "full_like",
    infer=lambda attrs, x: (x.shape, np.dtype(attrs[1])),
    impl=lambda attrs, x: np.full(x.shape, attrs[0], dtype=attrs[1]),
    vjp=lambda out, g, needs: [None],
    jvp=lambda out, ts: None,
    emit=lambda attrs, x: f"np.full({x}.shape, {attrs[0]!r}, dtype={dtype_expr(attrs[1])})",
    flops=_size,
))


def _fill(x, value, dtype):
    x = lift(x)
    dt = x.dtype if dtype is None else _as_dtype(dtype, "full_like")
    if all(d is not None for d in x.shape):
        return constant_var(np.full(x.shape, value, dtype=dt))
    return make_node(_full_like, (x,), (value, dt.str))


def zeros_like(a, dtype=None):
    """Zeros shaped like ``a`` (NumPy's signature); no gradient flows."""
    return _fill(a, 0, dtype)


def ones_like(a, dtype=None):
    """Ones shaped like ``a``; no gradient flows."""
    return _fill(a, 1, dtype)


# -- batching: elementwise ops use the generic rule; fills keep their op -------
from .vmap import same_op_rule  # noqa: E402

_full_like.batch = same_op_rule
