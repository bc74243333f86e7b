"""Banded matrices: the dense form of a few diagonals.

Jacobians of elementwise code are diagonal, and slicing shifts the diagonal;
the forward sweep of a Jacobian (``autodiff/banded.py``) keeps such tangents
as a few vectors and only here turns them into a matrix. Both ops act on the
last axis and let any leading axes through, so they batch as themselves.
"""

from __future__ import annotations

import numpy as np

from .base import Op, Var, fmt_shape, make_node, register
from .elementwise import zeros_like
from .vmap import same_op_rule


def _band_index(rows, m, k):
    """Positions (i, j) with i = j + k inside a rows-by-m matrix."""
    j0, j1 = max(0, -k), min(m, rows - k)
    j = np.arange(j0, max(j0, j1))
    return j + k, j


def _to_dense_impl(attrs, *vs):
    offsets, rows = attrs
    lead, m = np.shape(vs[0])[:-1], np.shape(vs[0])[-1]
    dt = np.result_type(*vs)
    out = np.zeros(lead + (rows, m), dtype=dt)
    for v, k in zip(vs, offsets):
        i, j = _band_index(rows, m, k)
        out[..., i, j] += np.asarray(v)[..., j]
    return out


_TO_DENSE_SRC = '''def _bands_to_dense(vs, offsets, rows):
    lead, m = vs[0].shape[:-1], vs[0].shape[-1]
    out = np.zeros(lead + (rows, m), dtype=np.result_type(*vs))
    for v, k in zip(vs, offsets):
        j = np.arange(max(0, -k), max(max(0, -k), min(m, rows - k)))
        out[..., j + k, j] += v[..., j]
    return out
'''


def _diag_impl(attrs, g):
    (k,) = attrs
    rows, m = np.shape(g)[-2:]
    out = np.zeros(np.shape(g)[:-2] + (m,), dtype=np.result_type(g))
    i, j = _band_index(rows, m, k)
    out[..., j] = np.asarray(g)[..., i, j]
    return out


_DIAG_SRC = '''def _band_of(g, k):
    rows, m = g.shape[-2:]
    out = np.zeros(g.shape[:-2] + (m,), dtype=g.dtype)
    j = np.arange(max(0, -k), max(max(0, -k), min(m, rows - k)))
    out[..., j] = g[..., j + k, j]
    return out
'''


def _to_dense_infer(attrs, *vs):
    offsets, rows = attrs
    first = vs[0]
    for v in vs[1:]:
        if v.shape != first.shape:
            raise ValueError(f"bands_to_dense: bands of shapes {fmt_shape(first.shape)} "
                             f"and {fmt_shape(v.shape)} differ")
    return first.shape[:-1] + (rows, first.shape[-1]), np.result_type(*[v.dtype for v in vs])


_to_dense_op = register(Op(
    "bands_to_dense", infer=_to_dense_infer, impl=_to_dense_impl,
    vjp=lambda out, g, needs: [band_of(g, k) if need else None
                               for k, need in zip(out.attrs[0], needs)],
    jvp=lambda out, ts: None if all(t is None for t in ts) else bands_to_dense(
        [t if t is not None else zeros_like(v) for t, v in zip(ts, out.inputs)], out.attrs[0],
        out.attrs[1]),
    emit=lambda attrs, *vs: f"_bands_to_dense([{', '.join(vs)}], {attrs[0]}, {attrs[1]})",
    helpers={"_bands_to_dense": _TO_DENSE_SRC},
    flops=lambda node: float(np.prod([d or 1 for d in node.shape])),
    batch=same_op_rule,
))

_band_of_op = register(Op(
    "band_of",
    infer=lambda attrs, g: (g.shape[:-2] + (g.shape[-1],), g.dtype),
    impl=_diag_impl,
    vjp=lambda out, g, needs: [bands_to_dense([g], (out.attrs[0],), out.inputs[0].shape[-2])],
    jvp=lambda out, ts: None if ts[0] is None else band_of(ts[0], out.attrs[0]),
    emit=lambda attrs, g: f"_band_of({g}, {attrs[0]})",
    helpers={"_band_of": _DIAG_SRC},
    flops=lambda node: float(np.prod([d or 1 for d in node.shape])),
    batch=same_op_rule,
))


def bands_to_dense(vectors, offsets, rows) -> Var:
    """The (rows, m) matrix M with M[j + k, j] = v_k[j] for each band
    (v_k, k); leading axes of the vectors pass through."""
    return make_node(_to_dense_op, tuple(vectors),
                     (tuple(int(k) for k in offsets), int(rows)))


def band_of(g, k) -> Var:
    """The band of offset ``k`` of the last two axes of ``g``:
    ``v[j] = g[j + k, j]`` (0 outside the matrix)."""
    return make_node(_band_of_op, (g,), (int(k),))
