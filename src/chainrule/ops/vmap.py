"""Helpers for the ops' batching rules (see ``autodiff/batching.py``).

A rule ``batch(out, args, batched)`` rebuilds ``out`` on ``args`` where
``batched[i]`` says args[i] has an extra leading axis, and returns the
batched result (or ``(var, False)`` when the result is not batched; a
rule must not return a node that reads the unbatched seed).

Shapes may hold unknown (None) dims, e.g. a data batch: then a value that
must carry the batch axis is built with elementwise broadcasting against a
run-time zero (``batched_like``) instead of a static ``broadcast_to``.
"""

from __future__ import annotations

import numpy as np

from ..ir import Var
from .base import constant_var, shape_known


def _lift_rank(a: Var, rank: int) -> Var:
    """Insert axes after the batch axis so ``a`` (batched) has ``rank`` + 1 dims."""
    from .shape import expand_dims
    missing = rank - (a.ndim - 1)
    return expand_dims(a, tuple(range(1, 1 + missing))) if missing > 0 else a


def batch_size(args, batched) -> int:
    return next(a.shape[0] for a, b in zip(args, batched) if b)


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
    """For ops that act on the trailing axes and let leading axes through
    (``bands_to_dense``, ``band_of``, ``full_like``); unbatched operands are broadcast
    along the batch so all operands agree."""
    from .elementwise import apply
    return apply(out.op, batch_all(args, batched)[0], out.attrs)


def batch_all(args, batched):
    """``args`` with the unbatched ones broadcast along the batch (for ops
    that read an operand's shape only, where that shape now has the batch)."""
    k = batch_size(args, batched)
    return [a if b else broadcast_seed(a, k) for a, b in zip(args, batched)], k


def broadcast_seed(x: Var, k: int) -> Var:
    """An unbatched ``x`` as a batched value: a read-only broadcast view
    (with unknown dims: ``x`` plus a zero that carries the batch axis)."""
    from .shape import broadcast_to, expand_dims
    if shape_known(x.shape):
        return broadcast_to(expand_dims(x, 0), (k,) + x.shape)
    return expand_dims(x, 0) + _batch_zero(k, x.ndim, x.dtype)


def batched_like(ref: Var, k: int, dtype=None) -> Var:
    """A value shaped ``(k,) + ref.shape`` at run time, for the ops that
    read only their reference operand's shape (sum_to_like, getitem_grad,
    ...). Its entries are zeros."""
    from .elementwise import zeros_like
    dt = ref.dtype if dtype is None else np.dtype(dtype)
    if shape_known(ref.shape):
        return broadcast_seed(zeros_like(ref, dt), k)
    return _batch_zero(k, ref.ndim, dt) + zeros_like(ref, dt)


def _batch_zero(k, ndim, dtype):
    dt = np.dtype(dtype) if np.dtype(dtype).kind in "biuf" else np.dtype(np.float64)
    return constant_var(np.zeros((k,) + (1,) * ndim, dt))
