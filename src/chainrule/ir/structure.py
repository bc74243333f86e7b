"""Flattening the user's output/wrt structures (Var, list, tuple, dict)."""

from __future__ import annotations

from ..errors import ArgumentError
from .node import Var


def flatten(obj, what="outputs"):
    """Return ``(leaves, rebuild)``: the Vars in ``obj`` and a function that
    puts a same-length list back into the shape of ``obj``.

    Accepts a single Var, a list/tuple of Vars, or a dict of Vars (one level,
    which is what the API promises).
    """
    if isinstance(obj, Var):
        return [obj], lambda xs: xs[0]
    if isinstance(obj, (list, tuple)):
        items = list(obj)
        _check(items, what)
        kind = type(obj)
        if isinstance(obj, tuple) and hasattr(obj, "_fields"):  # namedtuple
            return items, lambda xs: kind(*xs)
        return items, lambda xs: kind(xs)
    if isinstance(obj, dict):
        keys = list(obj)
        items = [obj[k] for k in keys]
        _check(items, what)
        return items, lambda xs: dict(zip(keys, xs))
    raise ArgumentError(
        f"{what} must be a chainrule Var, or a list, tuple or dict of Vars; "
        f"got {type(obj).__name__}"
    )


def _check(items, what):
    for i, v in enumerate(items):
        if not isinstance(v, Var):
            raise ArgumentError(
                f"{what}[{i}] must be a chainrule Var, got {type(v).__name__}"
            )
