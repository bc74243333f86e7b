"""Leaves of a graph: placeholders (inputs), constants and parameters."""

from __future__ import annotations

import numbers

import numpy as np

from ..errors import ArgumentError, DTypeError, InputError, ShapeError
from ..ir import Var, make_leaf
from .base import Op, constant_var, fmt_shape, register


def _no_infer(attrs, *inputs):  # leaves get their type when made
    raise AssertionError("leaves are not built through make_node")


def _no_impl(attrs):
    raise AssertionError("leaves are fed by the backend")


def _leaf(name, emit):
    return register(Op(name, infer=_no_infer, impl=_no_impl, vjp=lambda *a: [],
                       jvp=lambda *a: None, emit=emit))


PLACEHOLDER = _leaf("placeholder", emit=lambda attrs: "<placeholder>")
CONSTANT = _leaf("constant", emit=lambda attrs: "<constant>")
PARAMETER = _leaf("parameter", emit=lambda attrs: "<parameter>")

_DTYPE_KINDS = "biuf"


def _check_dtype(dtype, what):
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise DTypeError(f"{what}: {dtype!r} is not a dtype") from None
    if dt.kind not in _DTYPE_KINDS:
        raise DTypeError(
            f"{what}: dtype {dt} is not supported; use a bool, integer or "
            f"floating-point dtype"
        )
    return dt


def placeholder(name: str, shape=(), dtype="float64") -> Var:
    """An input of the graph, fed when a compiled function is called.

    A dim may be ``None``: any size is accepted at call time (e.g. a batch).

    >>> x = placeholder("x", shape=(None, 3))
    """
    if not isinstance(name, str) or not name:
        raise ArgumentError("placeholder: name must be a non-empty str")
    if isinstance(shape, (int, np.integer)):
        shape = (shape,)
    shape = tuple(shape)
    for d in shape:
        if d is not None and (not isinstance(d, (int, np.integer)) or d < 0):
            raise ShapeError(
                f"placeholder {name!r}: shape {shape} must hold sizes >= 0 or None"
            )
    shape = tuple(None if d is None else int(d) for d in shape)
    dt = _check_dtype(dtype, f"placeholder {name!r}")
    return make_leaf(PLACEHOLDER, shape, dt, name)


def constant(value, name=None) -> Var:
    """A constant array (copied). Equal constants are the same node."""
    return constant_var(value, name=name)


def parameter(value, name: str) -> Var:
    """A named piece of state held by the graph (a copy of ``value``).

    Read it with ``p.value``, replace it with ``p.set_value(array)``; a
    compiled function's ``updates`` assign new values after each call.
    """
    if not isinstance(name, str) or not name:
        raise ArgumentError("parameter: name must be a non-empty str")
    arr = np.array(value)
    if isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.generic)):
        # a Python int: parameter(0, "b") is almost always meant as 0.0 (a
        # NumPy integer scalar keeps its dtype, like an array would)
        arr = arr.astype(np.float64)
    _check_dtype(arr.dtype, f"parameter {name!r}")
    p = make_leaf(PARAMETER, arr.shape, arr.dtype, name)
    p._state = arr
    return p


def _value(self):
    """A copy of the current value of a parameter (or of a constant)."""
    if self.op is PARAMETER:
        return self._state.copy()
    if self.op is CONSTANT:
        return self._const
    raise AttributeError(
        f"{self.label()} is a {self.op.name} node: only parameters and "
        f"constants have a value; evaluate the graph to get others"
    )


def _set_value(self, value):
    """Replace a parameter's value; the shape and dtype kind must match."""
    if self.op is not PARAMETER:
        raise ArgumentError(f"set_value: {self.label()} is not a parameter")
    if isinstance(value, Var):
        raise InputError(f"set_value: parameter {self.name!r} takes an array, got the "
                         f"chainrule Var {value.label()}; evaluate it first")
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError) as e:
        raise InputError(f"set_value: parameter {self.name!r}: cannot make an array of "
                         f"the value given ({e})") from None
    if arr.dtype.kind not in "biuf":
        raise InputError(f"set_value: parameter {self.name!r} takes numbers, got "
                         f"{value!r:.60} ({arr.dtype})")
    if arr.shape != self.shape:
        raise InputError(
            f"set_value: parameter {self.name!r} has shape {fmt_shape(self.shape)}, "
            f"got an array of shape {fmt_shape(arr.shape)}"
        )
    if arr.dtype.kind != self.dtype.kind and not (
        self.dtype.kind == "f" and arr.dtype.kind in "iu"
    ):
        raise InputError(
            f"set_value: parameter {self.name!r} has dtype {self.dtype}, "
            f"got {arr.dtype}"
        )
    new = checked_cast(arr, self.dtype, f"set_value: parameter {self.name!r}")
    self._state = new.copy() if new is arr else new  # never the caller's memory


def checked_cast(arr, dtype, what: str, hint: str = ""):
    """``arr`` as ``dtype`` (the array itself if it has it), or an InputError
    starting with ``what`` when the cast would change a value: an integer
    outside the type's range wraps (2**40 as int32 is 0), a float too large
    for it becomes inf (1e300 as float32)."""
    if arr.dtype == dtype:
        return arr
    if dtype.kind in "iu" and arr.dtype.kind in "iu" and arr.size:
        info = np.iinfo(dtype)
        lo, hi = arr.min(), arr.max()
        if lo < info.min or hi > info.max:
            raise InputError(f"{what}: values from {lo} to {hi} do not fit in {dtype} "
                             f"(range {info.min} to {info.max}){hint}")
    with np.errstate(over="ignore"):
        out = arr.astype(dtype)
    if dtype.kind == "f":
        overflowed = np.isinf(out) & np.isfinite(arr)
        if overflowed.any():
            big = np.abs(arr[overflowed]).max()
            raise InputError(f"{what}: a value of magnitude {big:g} does not fit in {dtype} "
                             f"(largest {np.finfo(dtype).max:g}){hint}")
    return out


Var.value = property(_value)
Var.set_value = _set_value
