"""Banded tangents: structure in the seeds of a forward-mode Jacobian.

When the Jacobian of a 1-D ``x`` is built by pushing the n identity seeds
forward, the tangent of every 1-D value computed elementwise from ``x``
(with slices along the way) is a banded (n, m) matrix: a few diagonals.
Rather than carrying dense n-by-m tangents, the sweep carries a
:class:`Banded` value -- one length-m vector per diagonal -- through the ops
that keep that structure (the linear elementwise ops and 1-D slicing), and
turns it into a dense matrix (``bands_to_dense``) only where an op needs one.
For Rosenbrock-like functions this turns an O(n^2) Hessian sweep into O(n)
vector work plus one banded write.
"""

from __future__ import annotations

from ..ops import elementwise as ew
from ..ops.banded import bands_to_dense
from ..ops.shape import _getitem_grad_op, _getitem_op
from ..ir import make_node


class Banded:
    """A batched (n, m) value stored as its diagonals: ``bands[k][j]`` is
    entry (j + k, j)."""

    __slots__ = ("bands", "rows")

    def __init__(self, bands: dict, rows: int):
        self.bands, self.rows = bands, rows

    def dense(self):
        offsets = sorted(self.bands)
        return bands_to_dense([self.bands[k] for k in offsets], offsets, self.rows)

    def map(self, fn):
        return Banded({k: fn(v) for k, v in self.bands.items()}, self.rows)


def _small(v, m):
    """An unbatched operand that broadcasts along the band vectors."""
    return v.ndim == 0 or (v.ndim == 1 and v.shape[0] in (1, m))


def _slice_start(idx, length):
    """Start of a plain 1-D slice (step 1), or None if the index is anything else."""
    if len(idx) != 1 or idx[0][0] != "s" or idx[0][3] not in (None, 1) or length is None:
        return None
    start, _, _ = slice(idx[0][1], idx[0][2]).indices(length)
    return start


def banded_rule(node, args, flags):
    """The banded result of ``node`` on ``args`` (Banded where flagged), or
    None when the op does not keep the structure (the caller densifies)."""
    name = node.op.name
    if node.ndim != 1:
        return None
    m = node.shape[0]
    bs = [a for a, f in zip(args, flags) if f]
    if name in ("add", "subtract") and all(flags) and all(isinstance(b, Banded) for b in bs):
        a, b = args
        sign = 1 if name == "add" else -1
        out = dict(a.bands)
        for k, v in b.bands.items():
            if k in out:
                out[k] = ew.add(out[k], v) if sign > 0 else ew.subtract(out[k], v)
            else:
                out[k] = v if sign > 0 else ew.negative(v)
        return Banded(out, a.rows)
    if len(bs) != 1 or not isinstance(bs[0], Banded):
        return None
    b = bs[0]
    if name == "negative":
        return b.map(ew.negative)
    if name == "cast":
        return b.map(lambda v: ew.cast(v, node.dtype))
    if name == "multiply":
        other = args[1] if flags[0] else args[0]
        return b.map(lambda v: ew.multiply(v, other)) if _small(other, m) else None
    if name == "divide" and flags[0]:
        other = args[1]
        return b.map(lambda v: ew.divide(v, other)) if _small(other, m) else None
    if name == "where" and not flags[0]:
        c, x, y = args
        zero_other = (y if flags[1] else x)
        if zero_other.op.name != "constant" or not (zero_other._const == 0).all() \
                or not _small(c, m):
            return None
        if flags[1]:
            return b.map(lambda v: ew.where(c, v, 0))
        return b.map(lambda v: ew.where(c, 0, v))
    if name == "getitem":
        start = _slice_start(node.attrs[0], node.inputs[0].shape[0])
        if start is None:
            return None
        return Banded({k + start: make_node(_getitem_op, (v,), node.attrs)
                       for k, v in b.bands.items()}, b.rows)
    if name == "getitem_grad" and flags[0]:
        ref = node.inputs[1]
        start = _slice_start(node.attrs[0], ref.shape[0])
        if start is None:
            return None
        return Banded({k - start: make_node(_getitem_grad_op, (v, ref), node.attrs)
                       for k, v in b.bands.items()}, b.rows)
    return None
