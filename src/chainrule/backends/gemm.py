"""Fused parameter updates through BLAS (opt-in: ``cr.function(...,
blas="numpy")`` or ``blas="scipy"``).

An SGD update whose gradient ends in a matrix product, ``W - A @ B``, costs
NumPy a product into a new array and then a second pass over W. BLAS's gemm
computes ``C = alpha * A @ B + beta * C`` in place, so with ``beta = 1`` the
update happens inside the product: no temporary the size of W and one pass
fewer over it (Theano's in-place GEMM optimisation). NumPy does not expose
``beta``; SciPy's BLAS wrappers do (``blas="scipy"``: :data:`HELPER`), and
so does the BLAS library NumPy itself runs, called through ctypes
(``blas="numpy"``: :mod:`.cblas`). Both are off unless asked for.

The code generator asks :func:`fusable_update` at each matmul whether the
next statement is such an update that the buffer plan would run in place
anyway; if so it emits one ``_gemm_update`` call for both nodes.
"""

from __future__ import annotations

import numpy as np

from ..errors import ChainruleError

BLAS_CHOICES = (None, "scipy", "numpy")

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))

HELPER = '''\
from scipy.linalg import blas as _blas


def _gemm_update(c, a, b, alpha):
    """c += alpha * (a @ b) in place: one BLAS gemm with beta=1 (SciPy)."""
    if ((c.flags.c_contiguous or c.flags.f_contiguous) and c.size and a.shape[1]
            and a.shape[1] == b.shape[0] and a.dtype == c.dtype == b.dtype
            and np.isfinite(alpha) and alpha != 0
            and not (np.may_share_memory(c, a) or np.may_share_memory(c, b))):
        # BLAS writes a Fortran-ordered matrix: c itself, or c.T when c is
        # C-ordered (then c.T += alpha * b.T @ a.T). Each operand goes in as
        # a Fortran-ordered array, with a transpose flag when needed.
        f = c if c.flags.f_contiguous else c.T
        p, q = (a, b) if f is c else (b.T, a.T)
        x, tx = (p, 0) if p.flags.f_contiguous else (p.T, 1)
        y, ty = (q, 0) if q.flags.f_contiguous else (q.T, 1)
        gemm = _blas.dgemm if c.dtype == np.float64 else _blas.sgemm
        r = gemm(alpha, x, y, beta=1.0, c=f, overwrite_c=True, trans_a=tx, trans_b=ty)
        if not np.may_share_memory(r, c):  # SciPy worked on a copy after all
            f[...] = r
        return c
    t = a @ b  # the product first (c may be one of its operands); NumPy's
    # error message if the shapes do not fit
    t *= alpha
    return np.add(c, t, out=c)
'''


# blas="numpy": the same call, to NumPy's own BLAS through ctypes (see .cblas)
NUMPY_HELPER = ("from chainrule.backends.cblas import gemm_update as _gemm_update"
                "  # NumPy's own BLAS\n")


def helper(blas) -> str:
    """The source defining ``_gemm_update(c, a, b, alpha)`` for ``blas``."""
    return NUMPY_HELPER if blas == "numpy" else HELPER


def check_choice(blas):
    """Raise a clear error when ``blas`` is not one of the choices."""
    if blas not in BLAS_CHOICES:
        raise ChainruleError(f"function: blas={blas!r} is not a choice; use None "
                             f"(NumPy only), 'numpy' (NumPy's own BLAS, called "
                             f"directly) or 'scipy' (SciPy's)")


def check_available(blas):
    """Raise a clear error when ``blas`` is not a choice or SciPy is missing."""
    check_choice(blas)
    if blas == "numpy":
        from .cblas import check_available as numpy_blas_available
        numpy_blas_available()
    if blas == "scipy":
        try:
            import scipy.linalg.blas  # noqa: F401
        except ImportError as exc:
            raise ChainruleError(
                "function: blas='scipy' runs fused updates through SciPy's BLAS, "
                "and SciPy is not installed; `pip install scipy` (or "
                "`pip install chainrule[blas]`), or leave blas=None") from exc


def _next_op(order, i):
    """Position of the first non-leaf node after ``i`` (leaves emit nothing)."""
    i += 1
    while i < len(order) and order[i].is_leaf:
        i += 1
    return i if i < len(order) else None


def fusable_update(order, i, plan):
    """If the matmul ``M`` at ``order[i]`` feeds only a parameter update
    ``p - M``, ``p - c * M`` or ``p + ...`` (``c`` a float scalar: a constant
    or a value known at run time; each step the next statement), which the
    buffer plan would write into p's state, return ``(nodes it replaces,
    update node, (buffer, name), (sign, c))``.
    """
    m = order[i]
    if m.op.name != "matmul" or not plan.sole_use(m):
        return None
    a, b = m.inputs
    if a.ndim != 2 or b.ndim != 2 or m.dtype not in _FLOATS or not a.dtype == b.dtype == m.dtype:
        return None
    j = _next_op(order, i)
    if j is None:
        return None
    nxt, prev, scale, replaced = order[j], m, 1.0, []
    if nxt.op.name == "multiply" and m in nxt.inputs and plan.sole_use(nxt):
        c = nxt.inputs[1] if nxt.inputs[0] is m else nxt.inputs[0]
        if c.ndim != 0 or c.dtype.kind != "f" or nxt.dtype != m.dtype:
            return None
        if c.op.name == "constant":
            scale = float(c._const)
            if not np.isfinite(scale) or scale == 0:
                return None  # BLAS may skip a product scaled by 0 (and its NaNs)
        else:
            scale = c  # a scalar known at run time (a learning-rate input)
        replaced.append(nxt)
        prev, j = nxt, _next_op(order, j)
        if j is None:
            return None
        nxt = order[j]
    p = plan.param_of.get(nxt.id)
    if p is None or p.dtype != m.dtype or m.shape != p.shape or nxt.shape != p.shape:
        return None
    if nxt.op.name == "subtract" and nxt.inputs == (p, prev):
        sign = -1.0
    elif nxt.op.name == "add" and nxt.inputs in ((p, prev), (prev, p)):
        sign = 1.0
    else:
        return None
    target = plan.param_target(nxt, j)
    if target is None or plan.buf.get(a.id) == p.id or plan.buf.get(b.id) == p.id:
        return None  # not in place, or the product reads the state it would write
    return replaced + [nxt], nxt, target, (sign, scale)


def alpha_code(sign, scale, ref) -> str:
    """The ``alpha`` argument: a literal, or a run-time scalar's name."""
    if isinstance(scale, float):
        return repr(sign * scale)
    return f"-{ref(scale)}" if sign < 0 else ref(scale)
