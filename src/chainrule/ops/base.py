"""Shared machinery for declaring ops: lifting Python values into constants,
NumPy broadcasting and dtype rules, error messages that name operands, and
``sum_to`` -- the one place where broadcasting is undone in a gradient.
"""

from __future__ import annotations

import functools
import numbers
import warnings

import numpy as np

from ..errors import ArgumentError, DTypeError, ShapeError
from ..ir import NOT_DIFFERENTIABLE, Op, Var, make_constant, make_node, register
from ..ir.op import REGISTRY

__all__ = [
    "Op", "Var", "register", "make_node", "NOT_DIFFERENTIABLE", "REGISTRY",
    "lift", "lift_pair", "constant_var", "fmt_shape", "describe",
    "broadcast_shapes", "normalize_axis", "normalize_axes", "probe_dtype",
    "is_float", "dtype_expr", "sum_to", "shape_known", "const_value", "is_const_scalar",
    "zeros_for",
]


# -- describing operands in error messages -----------------------------------

def fmt_shape(shape) -> str:
    if len(shape) == 1:
        return f"({shape[0]},)"
    return "(" + ", ".join(str(d) for d in shape) + ")"


def describe(v: Var) -> str:
    """``x (2, 3)``: the user's name (or the op) and the shape."""
    return f"{v.label()} {fmt_shape(v.shape)}"


# -- constants and lifting ---------------------------------------------------

def constant_var(value, dtype=None, name=None) -> Var:
    try:
        arr = np.asarray(value, dtype=dtype)
    except OverflowError:  # NumPy 2: a Python int does not fit the dtype
        raise DTypeError(
            f"constant: {value!r} does not fit in {np.dtype(dtype)} (the dtype of the "
            f"array it meets); use a wider dtype or a value in range") from None
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        raise DTypeError(
            f"constant: cannot make a chainrule constant of dtype {arr.dtype}; "
            f"use a bool, integer or floating-point array"
        )
    return make_constant(REGISTRY["constant"], arr, name)


def _weak_dtype(value, other: np.dtype) -> np.dtype:
    """The dtype a bare Python number takes next to ``other`` (NEP 50)."""
    if isinstance(value, bool):
        return np.dtype(bool)
    if isinstance(value, numbers.Integral):
        return other if other.kind in "iuf" else np.dtype(np.int64)
    if isinstance(value, numbers.Real):
        return other if other.kind == "f" else np.dtype(np.float64)
    raise DTypeError(f"cannot use a {type(value).__name__} in a chainrule graph")


def lift(value, like: Var | None = None) -> Var:
    """Turn ``value`` into a Var. Bare Python numbers are weakly typed: next
    to a float32 Var, ``2.0`` is a float32 constant (as in NumPy 2)."""
    if isinstance(value, Var):
        return value
    if isinstance(value, (bool, int, float)) and not isinstance(value, np.generic):
        if isinstance(value, bool):
            dt = np.dtype(bool)
        elif like is not None:
            dt = _weak_dtype(value, like.dtype)
        else:
            dt = np.dtype(np.int64 if isinstance(value, int) else np.float64)
        return constant_var(value, dt)
    return constant_var(value)


def lift_pair(a, b):
    if isinstance(a, Var):
        return a, lift(b, a)
    if isinstance(b, Var):
        return lift(a, b), b
    return lift(a), lift(b)


def const_value(v: Var):
    """The value of a constant node, or None for any other node."""
    return v._const if v.op.name == "constant" else None


def uniform_entry(arr: np.ndarray):
    """The first entry of a non-empty array whose entries are all equal, as
    a NumPy scalar, else None. Signs of zero count ([0.0, -0.0] is not
    uniform) and NaN never equals itself."""
    flat = arr.reshape(-1)
    if not flat.size:
        return None
    first = flat[0]
    if flat.size > 1 and not (bool(np.all(flat == first)) and (
            arr.dtype.kind != "f" or bool(np.all(np.signbit(flat) == np.signbit(first))))):
        return None
    return first


def is_const_scalar(v: Var, x) -> bool:
    """True if ``v`` is a constant whose every entry equals ``x``."""
    if v.op.name != "constant":
        return False
    c = v._const
    if c.size == 1:
        return c.item() == x
    return 0 < c.size <= 4096 and bool(np.all(c == x))


def is_exact_zero(v: Var, negative: bool, result) -> bool:
    """Is ``v`` a constant zero that adds (``negative=True``: -0.0, as in
    ``x + -0.0``) or subtracts (``negative=False``: +0.0, as in ``x - 0.0``)
    without changing any value of a ``result`` node? In floats ``x + 0.0`` is
    not ``x``: -0.0 + 0.0 is +0.0 (and 1 / that is inf, not -inf); an
    integer or bool zero becomes +0.0 there. In integers any zero is."""
    if not is_const_scalar(v, 0):
        return False
    c = v._const
    if c.dtype.kind not in "fc":
        return result.dtype.kind not in "fc"
    return bool(np.all(np.signbit(c) == negative))


# -- shapes ------------------------------------------------------------------

def shape_known(shape) -> bool:
    return all(d is not None for d in shape)


def same_runtime_shape(x, node) -> bool:
    """Does operand ``x`` of ``node`` always have node's run-time shape?

    Equal static shapes are not enough where a dim is unknown: (None,) + (None,)
    may be 1 + 3 at run time. It holds when every other operand has, at each
    unknown dim of the result, no axis or a known size of 1."""
    if x.shape != node.shape:
        return False
    unknown = unknown_axes(node)
    return not unknown or all(o is x or fixed_at(o, unknown) for o in node.inputs)


def unknown_axes(node) -> list:
    """The axes of ``node``'s unknown dims, counted from the end (-1 last)."""
    return [k - node.ndim for k, d in enumerate(node.shape) if d is None]


def fixed_at(o, axes) -> bool:
    """Has operand ``o`` no axis or a known size of 1 at each of ``axes``
    (from the end), so that it cannot enlarge a broadcast result there?"""
    return all(-a > o.ndim or o.shape[a] == 1 for a in axes)


def compatible_shapes(a, b) -> bool:
    """Can shapes ``a`` and ``b`` be the same at run time (equal where both
    sizes are known)?"""
    return a == b or len(a) == len(b) and all(
        x is None or y is None or x == y for x, y in zip(a, b))


def unknown_sizes(node) -> bool:
    """Has ``node`` or one of its operands a size known at run time only?"""
    return any(d is None for v in (node, *node.inputs) for d in v.shape)


def may_fail(node, check_finite: bool = False) -> bool:
    """Can computing ``node`` raise at run time? When a dim is unknown (a
    size mismatch shows only then), when its op says so for some values, or
    when check_finite tests its result. Out-of-memory and NumPy's
    floating-point error state set to "raise" are not counted."""
    if node.is_leaf:
        return False
    if check_finite and node.dtype.kind in "fc":
        return True
    if unknown_sizes(node):
        return True
    r = node.op.may_raise
    return bool(r(node) if callable(r) else r)


def folded(op, attrs, values):
    """``op``'s NumPy implementation on constant ``values`` (warnings off), as
    an array, or None when it raises (say 2 ** -1 in integers): that node is
    left to run, where its error names the op."""
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            return np.asarray(op.impl(attrs, *values))
    except Exception:  # noqa: BLE001 (any error of any op's implementation)
        return None


def broadcast_shapes(opname: str, *operands) -> tuple:
    """NumPy broadcasting of the operands' shapes; ``None`` dims are unknown
    sizes that match anything (and lose to a known size other than 1).

    Operands are Vars or ``(label, shape)`` pairs.
    """
    shapes = [v.shape if isinstance(v, Var) else v[1] for v in operands]
    first = shapes[0]
    if None not in first:  # the common case, kept cheap: it runs for every node
        for sh in shapes:
            if sh != first:
                break
        else:
            return first
    ndim = max(len(shape) for shape in shapes)
    out = []
    for k in range(-ndim, 0):
        d_out = 1
        for shape in shapes:
            if -k > len(shape):
                continue
            d = shape[k]
            if d == 1:
                continue
            if d is None:
                d_out = None if d_out == 1 else d_out
            elif d_out in (1, None):
                d_out = d
            elif d != d_out:
                items = [(v.label(), v.shape) if isinstance(v, Var) else v
                         for v in operands]
                ops = " with ".join(f"{lab} {fmt_shape(sh)}" for lab, sh in items)
                raise ShapeError(
                    f"{opname}: cannot broadcast {ops}: dimensions {d_out} and {d} "
                    f"differ at axis {k} (NumPy broadcasting aligns trailing axes; "
                    f"reshape or transpose an operand so they match)"
                )
        out.append(d_out)
    return tuple(out)


def normalize_axis(opname: str, v: Var, axis: int, ndim: int | None = None) -> int:
    n = v.ndim if ndim is None else ndim
    if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool):
        raise ArgumentError(f"{opname}: axis must be an int, got {axis!r}")
    if not -n <= axis < n:
        raise ShapeError(
            f"{opname}: axis {axis} is out of range for {describe(v)} "
            f"with {n} dimension(s)"
        )
    return int(axis) % n


def normalize_axes(opname: str, v: Var, axis) -> tuple:
    """``None`` -> all axes; int or sequence -> sorted tuple of axes >= 0."""
    if axis is None:
        return tuple(range(v.ndim))
    if isinstance(axis, (int, np.integer)):
        axis = (axis,)
    if not isinstance(axis, (tuple, list)):
        raise ArgumentError(f"{opname}: axis must be None, an int or a tuple of ints, "
                            f"got {axis!r}")
    axes = tuple(sorted(normalize_axis(opname, v, a) for a in axis))
    if len(set(axes)) != len(axes):
        raise ShapeError(f"{opname}: repeated axis in {axis!r}")
    return axes


# -- dtypes ------------------------------------------------------------------

def dtype_expr(dtype) -> str:
    """How generated code names a dtype: ``np.float32``, ... and ``np.bool_``
    (``np.bool`` is missing from NumPy 1.24 to 1.26)."""
    dt = np.dtype(dtype)
    return "np.bool_" if dt.kind == "b" else f"np.{dt.name}"


def from_source(source: str):
    """The function an op's generated-code helper defines (``source`` is one
    ``def`` using only ``np``), for the op's NumPy implementation: the
    interpreter and the generated code then run the same lines."""
    namespace = {"np": np}
    exec(compile(source, "<chainrule helper>", "exec"), namespace)
    name = source.split("(", 1)[0].removeprefix("def ").strip()
    return namespace[name]


def is_float(v) -> bool:
    dt = v.dtype if isinstance(v, Var) else np.dtype(v)
    return dt.kind == "f"


@functools.lru_cache(maxsize=None)
def _probe(fn, dtypes):
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return np.asarray(fn(*[np.ones((), d) for d in dtypes])).dtype


def probe_dtype(opname: str, fn, *vars_: Var) -> np.dtype:
    """The dtype NumPy gives ``fn`` on these operand dtypes."""
    try:
        return _probe(fn, tuple([v.dtype for v in vars_]))
    except Exception:
        names = ", ".join(f"{v.label()} ({v.dtype})" for v in vars_)
        raise DTypeError(f"{opname}: not defined for operands {names}") from None


# -- undoing broadcasting ----------------------------------------------------

def sum_to(g: Var, x: Var, out: Var | None = None) -> Var:
    """Sum the cotangent ``g`` (shaped like a broadcast result) back to the
    shape of ``x``. The only place a gradient undoes broadcasting. With
    ``out``, the node ``x`` is an operand of: nothing to undo when ``x``
    always has out's run-time shape (with unknown dims too, where a bare
    ``g.shape == x.shape`` proves nothing)."""
    if g.shape == x.shape and (shape_known(x.shape) or (
            out is not None and same_runtime_shape(x, out))):
        return g  # the common case: no import, nothing to undo
    from . import reductions, shape as shape_ops

    lead = g.ndim - x.ndim
    axes, ambiguous = list(range(lead)), False
    for i, dx in enumerate(x.shape):
        dg = g.shape[lead + i]
        if dx == 1 and dg != 1:
            axes.append(lead + i)
        elif dx is None:
            ambiguous = True  # was it 1 (broadcast) or full size? runtime knows
    if ambiguous:
        return reductions.sum_to_like(g, x)
    out = reductions.sum(g, axis=tuple(axes), keepdims=True) if axes else g
    if lead:
        out = shape_ops.reshape(out, x.shape) if shape_known(x.shape) else \
            shape_ops.squeeze(out, tuple(range(lead)))
    return out


def zeros_for(x: Var) -> Var:
    """A materialised zero shaped and typed like ``x`` (used only where a
    caller must receive an array, never inside the differentiator)."""
    from .elementwise import zeros_like

    if shape_known(x.shape):
        return constant_var(np.zeros(x.shape, x.dtype))
    return zeros_like(x)
