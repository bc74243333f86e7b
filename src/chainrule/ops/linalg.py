"""Products: matmul (with NumPy's 1-D and batch rules), tensordot, and the
dot/outer conveniences built from them. Gradients are products with the
other operand transposed (``g @ W.T``), never a Jacobian."""

from __future__ import annotations

import numpy as np

from ..errors import ShapeError
from .base import (Op, broadcast_shapes, describe, is_float, lift_pair,
                   normalize_axis, probe_dtype, register, sum_to)
from .elementwise import _size, apply, multiply
from .shape import (expand_dims, matrix_transpose, reshape, squeeze, transpose)


def _matmul_infer(attrs, a, b):
    if a.ndim == 0 or b.ndim == 0:
        raise ShapeError(f"matmul: operands must have at least one dimension; got "
                         f"{describe(a)} and {describe(b)} (use * to scale)")
    n = a.shape[-1]
    k = b.shape[0] if b.ndim == 1 else b.shape[-2]
    if n is not None and k is not None and n != k:
        raise ShapeError(f"matmul: cannot multiply {describe(a)} by {describe(b)}: "
                         f"inner dimensions {n} and {k} differ")
    dt = probe_dtype("matmul", np.multiply, a, b)
    if a.ndim == 1 and b.ndim == 1:
        return (), dt
    if a.ndim == 1:
        return b.shape[:-2] + b.shape[-1:], dt
    if b.ndim == 1:
        return a.shape[:-1], dt
    batch = broadcast_shapes("matmul", (a.label(), a.shape[:-2]),
                             (b.label(), b.shape[:-2])) if a.ndim > 2 or b.ndim > 2 else ()
    return batch + (a.shape[-2], b.shape[-1]), dt


def _matmul_vjp(out, g, needs):
    a, b = out.inputs
    ga = gb = None
    want_a, want_b = needs[0] and is_float(a), needs[1] and is_float(b)
    if a.ndim == 1 and b.ndim == 1:
        return [g * b if want_a else None, g * a if want_b else None]
    if a.ndim == 1:  # out[..., m] = sum_n a[n] b[..., n, m]
        if want_a:
            ga = sum_to(squeeze(matmul(b, expand_dims(g, -1)), -1), a) if b.ndim > 2 \
                else matmul(b, g)
        if want_b:
            gb = sum_to(expand_dims(a, -1) * expand_dims(g, -2), b)
        return [ga, gb]
    if b.ndim == 1:  # out[..., n] = sum_k a[..., n, k] b[k]
        if want_a:
            ga = sum_to(expand_dims(g, -1) * b, a)
        if want_b:
            gb = matmul(g, a) if a.ndim == 2 else \
                sum_to(squeeze(matmul(matrix_transpose(a), expand_dims(g, -1)), -1), b)
        return [ga, gb]
    # matrices: no batch dims, nothing was broadcast (with unknown sizes too)
    if want_a:
        ga = matmul(g, matrix_transpose(b))
        ga = ga if a.ndim == b.ndim == 2 else sum_to(ga, a)
    if want_b:
        gb = matmul(matrix_transpose(a), g)
        gb = gb if a.ndim == b.ndim == 2 else sum_to(gb, b)
    return [ga, gb]


def _bilinear_jvp(fn):
    def jvp(out, ts):
        a, b = out.inputs
        ta, tb = ts
        terms = []
        if ta is not None:
            terms.append(fn(ta, b, *out.attrs))
        if tb is not None:
            terms.append(fn(a, tb, *out.attrs))
        if not terms:
            return None
        return terms[0] if len(terms) == 1 else terms[0] + terms[1]
    return jvp


def _matmul_flops(node):
    a = node.inputs[0]
    inner = a.shape[-1] or 1
    return 2.0 * inner * _size(node)


_matmul_op = register(Op(
    "matmul", infer=_matmul_infer,
    impl=lambda attrs, a, b: np.matmul(a, b),
    vjp=_matmul_vjp, jvp=_bilinear_jvp(lambda a, b: matmul(a, b)),
    emit=lambda attrs, a, b: f"{a} @ {b}",
    flops=_matmul_flops,
))


def matmul(a, b):
    """Matrix product with NumPy's rules (1-D operands, batch broadcasting).

    >>> import chainrule as cr
    >>> x, W = cr.placeholder("x", (2, 3)), cr.placeholder("W", (3, 4))
    >>> (x @ W).shape
    (2, 4)
    """
    a, b = lift_pair(a, b)
    return apply(_matmul_op, (a, b))


# -- tensordot -------------------------------------------------------------------

def _tensordot_infer(attrs, a, b):
    ax_a, ax_b = attrs
    for i, j in zip(ax_a, ax_b):
        if a.shape[i] is not None and b.shape[j] is not None and a.shape[i] != b.shape[j]:
            raise ShapeError(f"tensordot: axis {i} of {describe(a)} and axis {j} of "
                             f"{describe(b)} differ in size ({a.shape[i]} vs {b.shape[j]})")
    free_a = tuple(d for i, d in enumerate(a.shape) if i not in ax_a)
    free_b = tuple(d for j, d in enumerate(b.shape) if j not in ax_b)
    return free_a + free_b, probe_dtype("tensordot", np.multiply, a, b)


def _argsort(seq):
    return tuple(sorted(range(len(seq)), key=lambda i: seq[i]))


def _tensordot_vjp(out, g, needs):
    a, b = out.inputs
    ax_a, ax_b = out.attrs
    free_a = [i for i in range(a.ndim) if i not in ax_a]
    free_b = [j for j in range(b.ndim) if j not in ax_b]
    nfa = len(free_a)
    ga = gb = None
    if needs[0] and is_float(a):
        # g[free_a, free_b] . b[...] over b's free axes -> free_a + sorted(ax_b)
        r = tensordot(g, b, (tuple(range(nfa, g.ndim)), tuple(free_b)))
        order = free_a + [ax_a[ax_b.index(j)] for j in sorted(ax_b)]
        ga = transpose(r, _argsort(order))
    if needs[1] and is_float(b):
        r = tensordot(a, g, (tuple(free_a), tuple(range(nfa))))
        order = [ax_b[ax_a.index(i)] for i in sorted(ax_a)] + free_b
        gb = transpose(r, _argsort(order))
    return [ga, gb]


def _tensordot_flops(node):
    a = node.inputs[0]
    inner = 1
    for i in node.attrs[0]:
        inner *= a.shape[i] or 1
    return 2.0 * inner * _size(node)


def _tensordot_text(attrs, a, b):
    ax_a, ax_b = attrs
    return f"np.tensordot({a}, {b}, axes=({list(ax_a)}, {list(ax_b)}))"


_tensordot_op = register(Op(
    "tensordot", infer=_tensordot_infer,
    impl=lambda attrs, a, b: np.tensordot(a, b, axes=(list(attrs[0]), list(attrs[1]))),
    vjp=_tensordot_vjp,
    jvp=_bilinear_jvp(lambda a, b, ax_a, ax_b: tensordot(a, b, (ax_a, ax_b))),
    emit=_tensordot_text,
    flops=_tensordot_flops,
))


def tensordot(a, b, axes=2):
    """NumPy's ``tensordot``: ``axes`` is an int N (last N of ``a`` with
    first N of ``b``) or a pair of axis sequences."""
    a, b = lift_pair(a, b)
    if isinstance(axes, (int, np.integer)):
        if axes < 0 or axes > min(a.ndim, b.ndim):
            raise ShapeError(f"tensordot: axes={axes} does not fit {describe(a)} "
                             f"and {describe(b)}")
        ax_a = tuple(range(a.ndim - axes, a.ndim))
        ax_b = tuple(range(axes))
    else:
        ax_a, ax_b = axes
        ax_a = (ax_a,) if isinstance(ax_a, (int, np.integer)) else tuple(ax_a)
        ax_b = (ax_b,) if isinstance(ax_b, (int, np.integer)) else tuple(ax_b)
        if len(ax_a) != len(ax_b):
            raise ShapeError(f"tensordot: {len(ax_a)} axes of {describe(a)} cannot "
                             f"pair with {len(ax_b)} axes of {describe(b)}")
        ax_a = tuple(normalize_axis("tensordot", a, i) for i in ax_a)
        ax_b = tuple(normalize_axis("tensordot", b, j) for j in ax_b)
        for ax, v in ((ax_a, a), (ax_b, b)):
            if len(set(ax)) != len(ax):
                raise ShapeError(f"tensordot: repeated axis in {ax} for {describe(v)} "
                                 f"(each axis can be contracted once)")
    return apply(_tensordot_op, (a, b), (ax_a, ax_b))


def dot(a, b):
    """NumPy's ``dot``: a scalar operand scales, 1-D/2-D operands use
    ``matmul``, higher ranks contract the last axis of ``a`` with the
    second-to-last of ``b``."""
    a, b = lift_pair(a, b)
    if a.ndim == 0 or b.ndim == 0:
        return multiply(a, b)
    if a.ndim <= 2 and b.ndim <= 2:
        return matmul(a, b)
    return tensordot(a, b, ((a.ndim - 1,), (max(b.ndim - 2, 0),)))


def outer(a, b):
    """Outer product of the flattened ``a`` and ``b``."""
    a, b = lift_pair(a, b)
    return expand_dims(reshape(a, (-1,)), 1) * expand_dims(reshape(b, (-1,)), 0)



# -- batching rules (vmap) -------------------------------------------------------
from .base import Var  # noqa: E402


def _as_batched_matrix(x: Var, is_batched: bool, vec_axis: int, batch_rank: int):
    """``x`` as a stack of matrices with a leading batch axis (size 1 when
    not batched) and ``batch_rank`` broadcast axes after it."""
    core = x.ndim - (1 if is_batched else 0)
    if core == 1:
        x = expand_dims(x, vec_axis)
        core = 2
    if not is_batched:
        x = expand_dims(x, 0)
    missing = batch_rank - (core - 2)
    if missing:
        x = expand_dims(x, tuple(range(1, 1 + missing)))
    return x


def _batch_matmul(out, args, batched):
    (a, b), (ba, bb) = args, batched
    core_a, core_b = a.ndim - ba, b.ndim - bb
    rank = max(core_a, core_b, 2) - 2
    res = matmul(_as_batched_matrix(a, ba, -2, rank), _as_batched_matrix(b, bb, -1, rank))
    if core_b == 1:
        res = squeeze(res, -1)
    if core_a == 1:
        res = squeeze(res, -2 if core_b != 1 else -1)
    return res


def _batch_tensordot(out, args, batched):
    (a, b), (ba, bb) = args, batched
    ax_a, ax_b = out.attrs
    if ba and bb:  # never met in JVP/VJP graphs, which are linear in the seed
        raise NotImplementedError("tensordot: batching both operands is not supported")
    if ba:
        return tensordot(a, b, (tuple(i + 1 for i in ax_a), ax_b))
    res = tensordot(a, b, (ax_a, tuple(j + 1 for j in ax_b)))
    nfa = a.ndim - len(ax_a)
    perm = (nfa,) + tuple(i for i in range(res.ndim) if i != nfa)
    return transpose(res, perm)


_matmul_op.batch = _batch_matmul
_matmul_op.ufunc = "np.matmul"
_tensordot_op.batch = _batch_tensordot
