"""Operators and array-like methods of Var, attached here so that the IR
does not depend on the op library."""

from __future__ import annotations

from ..errors import ArgumentError
from ..ir import Var
from . import elementwise as ew
from . import linalg, reductions as red, shape as sh


def _flip(fn):
    return lambda self, other: fn(other, self)


def _shape_args(args):
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        return tuple(args[0])
    return args


def _reshape(self, *shape):
    """``x.reshape(2, 3)`` or ``x.reshape((2, 3))``."""
    return sh.reshape(self, _shape_args(shape))


def _transpose(self, *axes):
    """``x.transpose()``, ``x.transpose(1, 0)`` or ``x.transpose((1, 0))``."""
    axes = _shape_args(axes)
    return sh.transpose(self, axes or None)


def _iter(self):
    n = self.shape[0] if self.shape else None
    if n is None:
        raise ArgumentError(f"cannot iterate over {self.label()} of shape {self.shape}: "
                            f"its first dimension is {'unknown' if self.shape else 'missing'}")
    return (sh.getitem(self, i) for i in range(n))


def _len(self):
    if not self.shape or self.shape[0] is None:
        raise ArgumentError(f"len() of {self.label()} with shape {self.shape} is not known")
    return self.shape[0]


_METHODS = {
    "__add__": ew.add, "__radd__": _flip(ew.add),
    "__sub__": ew.subtract, "__rsub__": _flip(ew.subtract),
    "__mul__": ew.multiply, "__rmul__": _flip(ew.multiply),
    "__truediv__": ew.divide, "__rtruediv__": _flip(ew.divide),
    "__pow__": ew.power, "__rpow__": _flip(ew.power),
    "__matmul__": linalg.matmul, "__rmatmul__": _flip(linalg.matmul),
    "__neg__": ew.negative, "__pos__": lambda self: self, "__abs__": ew.abs,
    "__lt__": ew.less, "__le__": ew.less_equal,
    "__gt__": ew.greater, "__ge__": ew.greater_equal,
    "__getitem__": sh.getitem, "__iter__": _iter, "__len__": _len,
    "sum": red.sum, "mean": red.mean, "max": red.max, "min": red.min,
    "prod": red.prod, "reshape": _reshape, "transpose": _transpose,
    "astype": ew.cast,
}

for _name, _fn in _METHODS.items():
    setattr(Var, _name, _fn)

Var.T = property(lambda self: sh.transpose(self), doc="All axes reversed.")
Var.mT = property(sh.matrix_transpose, doc="The last two axes swapped.")
