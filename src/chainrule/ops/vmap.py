"""Helpers for the ops' batching rules (see ``autodiff/batching.py``).

A rule ``batch(out, args, batched)`` rebuilds ``out`` on ``args`` where
``batched[i]`` says args[i] has an extra leading axis, and returns the
batched result (or ``(var, False)`` when the result is not batched).
"""

from __future__ import annotations

from ..errors import ShapeError
from ..ir import Var


def _lift_rank(a: Var, rank: int) -> Var:
    """Insert axes after the batch axis so ``a`` (batched) has ``rank`` + 1 dims."""
    from .shape import expand_dims
    missing = rank - (a.ndim - 1)
    return expand_dims(a, tuple(range(1, 1 + missing))) if missing > 0 else a


def elementwise_rule(out, args, batched):
    from .elementwise import apply
    args = [_lift_rank(a, out.ndim) if b else a for a, b in zip(args, batched)]
    return apply(out.op, args, out.attrs)


def shift_axes_rule(out, args, batched):
    """For ops whose first attribute is an axis or a tuple of axes (the
    reductions, softmax, expand_dims, squeeze)."""
    from .elementwise import apply
    first = out.attrs[0]
    shifted = first + 1 if isinstance(first, int) else tuple(a + 1 for a in first)
    return apply(out.op, args, (shifted,) + tuple(out.attrs[1:]))


def same_op_rule(out, args, batched):
    """For ops that act on the whole array shape (e.g. ``full_like``)."""
    from .elementwise import apply
    return apply(out.op, args, out.attrs)


def unbatch_rule(out, args, batched):
    raise ShapeError(
        f"{out.op.name}: jacobian/hessian need every shape in the graph known when "
        f"it is built; this op works on a run-time shape (a dimension is None)")


def broadcast_seed(x: Var, k: int) -> Var:
    """An unbatched ``x`` as a batched value: a read-only broadcast view."""
    from .shape import broadcast_to, expand_dims
    return broadcast_to(expand_dims(x, 0), (k,) + x.shape)
