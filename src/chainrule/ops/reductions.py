"""Reductions and the normalising ops built on them (softmax family).

Each reduction takes NumPy's ``axis`` (None, an int or a tuple) and
``keepdims``; the attributes store the axes as a sorted tuple. A reduction's
VJP broadcasts the cotangent back with ``_expand`` (the inverse of dropping
the reduced axes).
"""

from __future__ import annotations

import numpy as np

from ..errors import NotDifferentiableError
from .base import (Op, dtype_expr, from_source, is_float, lift, make_node, normalize_axes,
                   normalize_axis, probe_dtype, register, shape_known)
from .elementwise import _size, apply, cast, equal, exp


def _reduced_shape(shape, axes, keepdims):
    if keepdims:
        return tuple(1 if i in axes else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i not in axes)


def _expand(g, x, axes, keepdims):
    """Broadcast a reduction's cotangent ``g`` back to the shape of ``x``."""
    from .shape import broadcast_like, broadcast_to, expand_dims
    if not keepdims and axes:
        g = expand_dims(g, axes)
    if shape_known(x.shape):
        return broadcast_to(g, x.shape)
    return broadcast_like(g, x)


def _reduction(name, fn, vjp, jvp, dtype_fn=None, flops=1.0, emit_node=None, helpers=None,
               may_raise=False, accumulate=None, identity=None):
    def infer(attrs, x):
        axes, keepdims = attrs
        dt = dtype_fn(x) if dtype_fn else probe_dtype(name, lambda a: fn(a, axis=None), x)
        return _reduced_shape(x.shape, axes, keepdims), dt

    op = register(Op(
        name, infer=infer,
        impl=lambda attrs, x: fn(x, axis=attrs[0], keepdims=attrs[1]),
        vjp=vjp, jvp=jvp,
        emit=lambda attrs, x: _method_call(fn.__name__, x, attrs),
        emit_node=emit_node, helpers=helpers or {}, may_raise=may_raise,
        flops=lambda node: flops * _size(node.inputs[0]),
        accumulate=accumulate, identity=identity,
    ))

    def build(x, axis=None, keepdims=False):
        x = lift(x)
        axes = normalize_axes(name, x, axis)
        if not axes and name != "mean":  # nothing to reduce: x in the result's dtype
            dt = infer(((), False), x)[1]  # (a bool's sum counts: an int64)
            return x if dt == x.dtype else cast(x, dt)
        return apply(op, (x,), (axes, bool(keepdims)))

    build.__name__ = name
    build.__doc__ = f"``{name}`` over ``axis`` (None: all axes), like NumPy."
    return op, build


def _axis_text(axes):
    return str(axes[0]) if len(axes) == 1 else str(tuple(axes))


def _method_call(name, x, attrs):
    """``x.sum(axis=1)``: the array method, which NumPy dispatches faster
    than ``np.sum``; no axis when every axis is reduced."""
    axes, keepdims = attrs
    args = [f"axis={_axis_text(axes)}"] + (["keepdims=True"] if keepdims else [])
    return f"{x}.{name}({', '.join(args)})"


# -- sum ---------------------------------------------------------------------

_BLAS_SUM = (np.dtype(np.float32), np.dtype(np.float64))
_PAIRWISE_BLOCK = 128  # NumPy sums a contiguous run longer than this pairwise


def _last_axis_ones(shape, dtype, axis, const, keepdims):
    """The name of a constant vector of ones (a column with ``keepdims``)
    that sums the last axis of a ``shape``/``dtype`` array as a product, or
    None where that would not keep NumPy's numbers (see :func:`_sum_text`)."""
    n = shape[axis] if shape else None
    if (const is None or dtype not in _BLAS_SUM or axis != len(shape) - 1 or n is None
            or not 0 < n <= _PAIRWISE_BLOCK):
        return None
    return const(np.ones((n, 1) if keepdims else (n,), dtype), "ones")


def _sum_text(src, x, attrs, const):
    """``x @ ones``: a sum over the last or second-to-last axis of a float32/
    float64 array as a product with a constant vector of ones, which BLAS
    does 1.5-10x faster than NumPy's reduction machinery (3 us instead of 6
    for the bias gradient of a 128 x 256 batch; 0.2 ms instead of 2 for a
    100,000 x 10 one). ``keepdims`` is a ones column (n, 1) or row (1, n).

    Only where the numbers stay NumPy's kind: NumPy's ``sum`` adds along a
    non-contiguous axis in plain order, as BLAS does, but along the
    contiguous axis pairwise past 128 elements, more accurately than a dot
    product. So the last axis lowers up to 128 long, and the second-to-last
    one (any length) only when the last is known and longer than 1 (an
    (n, 1) array's first axis is contiguous). The product runs only on a
    C-contiguous operand, tested at run time (a transposed, strided or
    broadcast array would make NumPy's matmul copy it or loop slowly, and
    its contiguous axis may be the summed one): anything else is ``sum``.
    An axis known at run time only takes its ones from ``_ones``. Like any
    product, the rounding of a row's sum may depend on the number of rows."""
    axes, keepdims = attrs
    plain = _method_call("sum", x, attrs)
    if const is None or len(axes) != 1 or src.dtype not in _BLAS_SUM:
        return plain
    axis, n = axes[0], src.shape[axes[0]]
    last = _last_axis_ones(src.shape, src.dtype, axis, const, keepdims)
    if last is not None:
        product = f"{x} @ {last}"
    elif axis == src.ndim - 2 and src.shape[-1] is not None and src.shape[-1] > 1:
        if n is None:  # a batch size known at run time
            shape = f"(1, {x}.shape[{axis}])" if keepdims else f"{x}.shape[{axis}]"
            ones = f"_ones({shape}, {dtype_expr(src.dtype)})"
        elif n > 0:
            ones = const(np.ones((1, n) if keepdims else (n,), src.dtype), "ones")
        else:
            return plain
        product = f"{ones} @ {x}"
    else:
        return plain
    return f"({product} if {x}.flags.c_contiguous else {plain})"


_ONES_SRC = '''_ONES = {}


def _ones(shape, dtype):
    """Read-only ones of this shape (a batch size known at run time), made
    once per shape; a few small shapes are kept (a large one is made again:
    it would pin its memory)."""
    key = (shape, dtype)
    v = _ONES.get(key)
    if v is None:
        v = np.ones(shape, dtype)
        v.flags.writeable = False
        if v.size <= 65536:
            if len(_ONES) >= 8:
                _ONES.clear()
            _ONES[key] = v
    return v
'''


def _sum_code(node, x, const=None):
    return _sum_text(node.inputs[0], x, node.attrs, const)


def _sum_vjp(out, g, needs):
    x = out.inputs[0]
    if not is_float(x):
        return [None]
    axes, keepdims = out.attrs
    return [_expand(g, x, axes, keepdims)]


def _sum_jvp(out, ts):
    if ts[0] is None or not is_float(out):
        return None
    return sum(ts[0], out.attrs[0], out.attrs[1])


def _sum_dtype(x):
    return np.sum(np.ones((1,), x.dtype)).dtype


# a fused loop's running sum starts at 0.0, as NumPy's does (a sum of -0.0s is +0.0)
_sum_op, sum = _reduction("sum", np.sum, _sum_vjp, _sum_jvp, dtype_fn=_sum_dtype,
                          emit_node=_sum_code, helpers={"_ones": _ONES_SRC},
                          accumulate=lambda acc, x: f"{acc} + {x}", identity=0.0)


# -- mean --------------------------------------------------------------------

def _count(x, axes):
    """How many elements each output of a reduction over ``axes`` averages:
    a constant when the dims are known, else a node computed at run time."""
    dims = [x.shape[a] for a in axes]
    dt = np.result_type(x.dtype, np.float16) if x.dtype.kind != "f" else x.dtype
    if all(d is not None for d in dims):
        n = 1
        for d in dims:
            n *= d
        return lift(float(n), lift(np.zeros((), dt)))
    return make_node(_count_op, (x,), (axes, np.dtype(dt).str))


_count_op = register(Op(
    "count",
    infer=lambda attrs, x: ((), np.dtype(attrs[1])),
    impl=lambda attrs, x: np.asarray(
        np.prod([x.shape[a] for a in attrs[0]], dtype=np.float64), dtype=attrs[1]),
    vjp=lambda out, g, needs: [None],  # depends on the shape only
    jvp=lambda out, ts: None,
    emit=lambda attrs, x: "np.{}({})".format(
        np.dtype(attrs[1]).name,
        " * ".join(f"{x}.shape[{a}]" for a in attrs[0]) or "1"),
    flops=lambda node: 1.0,
))


def _mean_vjp(out, g, needs):
    x = out.inputs[0]
    if not is_float(x):
        return [None]
    axes, keepdims = out.attrs
    return [_expand(g / _count(x, axes), x, axes, keepdims)]


def _mean_jvp(out, ts):
    if ts[0] is None or not is_float(out):
        return None
    return mean(ts[0], out.attrs[0], out.attrs[1])


def _mean_dtype(x):
    return np.mean(np.ones((1,), x.dtype)).dtype


_EXACT_COUNT = {4: 2 ** 24, 8: 2 ** 53}  # counts a float of this size holds exactly


def _mean_code(node, x, const=None):
    """``x.sum(axis=1) / 10`` (or ``(x @ ones) / 10``, see :func:`_sum_text`):
    the numbers of NumPy's ``mean`` (a sum in the
    input's float dtype, then one division by the count), without its
    several Python-level calls (3% of the MLP's float32 train step).

    NumPy divides by the count in float64 and rounds back; dividing by a
    Python int rounds the count to the input's float type first, which is
    the same number only while the count is exact in that type (a float32
    count above 2**24 is not). So float32 (and complex64) lower only for a
    count up to 2**24 (checked at run time when a size is unknown); integers
    and float16, which ``mean`` sums in a wider type, always keep ``mean``."""
    src = node.inputs[0]
    axes = node.attrs[0]
    kind, size = src.dtype.kind, src.dtype.itemsize // (2 if src.dtype.kind == "c" else 1)
    if not axes or kind not in "fc" or size not in _EXACT_COUNT:
        return _method_call("mean", x, node.attrs)
    dims = [src.shape[a] for a in axes]
    if all(d is not None for d in dims):
        n = int(np.prod(dims))
        if n > _EXACT_COUNT[size]:
            return _method_call("mean", x, node.attrs)
        count = str(n)
    else:
        count = " * ".join(f"{x}.shape[{a}]" for a in axes)
        if size != 8:  # a count known at run time: checked there (_n: never a user's name)
            return (f"(({_sum_text(src, x, node.attrs, const)}) / _n if (_n := {count}) <= "
                    f"{_EXACT_COUNT[size]} else {_method_call('mean', x, node.attrs)})")
        count = f"({count})" if len(axes) > 1 else count
    return f"({_sum_text(src, x, node.attrs, const)}) / {count}"


_mean_op, mean = _reduction("mean", np.mean, _mean_vjp, _mean_jvp, dtype_fn=_mean_dtype,
                            emit_node=_mean_code, helpers={"_ones": _ONES_SRC})


# -- max / min: the gradient is shared equally among the tied maxima ----------

def _extreme_weights(out):
    x = out.inputs[0]
    axes, keepdims = out.attrs
    peak = _expand(out, x, axes, keepdims)
    hit = cast(equal(x, peak), x.dtype)
    return hit / _expand(sum(hit, axes, keepdims), x, axes, keepdims)


def _extreme_vjp(out, g, needs):
    x = out.inputs[0]
    if not is_float(x):
        return [None]
    axes, keepdims = out.attrs
    return [_expand(g, x, axes, keepdims) * _extreme_weights(out)]


def _extreme_jvp(out, ts):
    if ts[0] is None or not is_float(out):
        return None
    axes, keepdims = out.attrs
    return sum(ts[0] * _extreme_weights(out), axes, keepdims)


def _keep_dtype(x):
    return x.dtype


def _empty_axis(node) -> bool:
    """NumPy's max (and what is built on it) raises over an axis of size 0."""
    axes = node.attrs[0]
    x = node.inputs[0]
    return any(x.shape[a] == 0 for a in ((axes,) if isinstance(axes, int) else axes))


_max_op, max = _reduction("max", np.max, _extreme_vjp, _extreme_jvp, dtype_fn=_keep_dtype,
                          may_raise=_empty_axis)
_min_op, min = _reduction("min", np.min, _extreme_vjp, _extreme_jvp, dtype_fn=_keep_dtype,
                          may_raise=_empty_axis)


# -- prod: d prod / d x_i is the product of the others, zeros included --------

def _prod_partials(out):
    x = out.inputs[0]
    axes, keepdims = out.attrs
    if all(x.shape[a] is not None for a in axes):
        return _product_of_others(x, axes)
    # Unknown group size: the scan below needs it when the graph is built,
    # so one op computes the products of the others at run time.
    return apply(_prod_of_others_op, (x,), (axes,))


_PROD_OF_OTHERS_SRC = '''def _prod_of_others(x, axes):
    """For each entry, the product of the other entries of its group (the
    axes reduced): exclusive running products from both ends, no division."""
    kept = [i for i in range(x.ndim) if i not in axes]
    xt = np.transpose(x, kept + list(axes))
    n = 1
    for a in axes:
        n *= x.shape[a]
    if n == 0:
        return x.copy()
    y = xt.reshape(xt.shape[:len(kept)] + (n,))
    one = np.ones(y.shape[:-1] + (1,), y.dtype)
    before = np.cumprod(np.concatenate([one, y[..., :-1]], axis=-1), axis=-1)
    after = np.cumprod(np.concatenate([one, y[..., :0:-1]], axis=-1), axis=-1)[..., ::-1]
    return np.transpose((before * after).reshape(xt.shape), np.argsort(kept + list(axes)))
'''


_prod_of_others = from_source(_PROD_OF_OTHERS_SRC)


def _no_second_derivative(*args):
    raise NotDifferentiableError(
        "prod over an axis whose size is unknown until run time (a None dim) has "
        "a first derivative but no second one here: its partials are computed "
        "in one step at run time. Give the placeholder that dim's size to "
        "differentiate prod twice (the partials are then a graph of their own)")


_prod_of_others_op = register(Op(
    "prod_of_others",
    infer=lambda attrs, x: (x.shape, x.dtype),
    impl=lambda attrs, x: _prod_of_others(x, attrs[0]),
    vjp=_no_second_derivative,
    jvp=_no_second_derivative,
    emit=lambda attrs, x: f"_prod_of_others({x}, {tuple(attrs[0])!r})",
    helpers={"_prod_of_others": _PROD_OF_OTHERS_SRC},
    flops=lambda node: 4.0 * _size(node),
))


def _product_of_others(x, axes):
    """For each entry of ``x``, the product of the other entries of its
    group (the ``axes`` reduced), as (product of those before it) times
    (product of those after it), each a log-depth scan of slices and
    multiplies. No division, so zeros need no special case, and the result
    differentiates correctly again: ``prod / x`` patched at zeros gets the
    Hessian wrong where a group holds two zeros."""
    from .elementwise import ones_like
    from .shape import _reshape_like_op, concatenate, reshape, transpose

    n = 1
    for a in axes:
        n *= x.shape[a]
    if n == 0:  # x is empty
        return x
    kept = [i for i in range(x.ndim) if i not in axes]
    perm = tuple(kept + list(axes))
    xt = transpose(x, perm)  # the group's axes last, then flattened into one
    y = reshape(xt, (-1, n))

    def before(v):  # before(v)[:, i] = prod(v[:, :i])
        shift, p = 1, concatenate([ones_like(v[:, :1]), v[:, :-1]], axis=1)
        while shift < n:
            p = p * concatenate([ones_like(p[:, :shift]), p[:, :-shift]], axis=1)
            shift *= 2
        return p

    others = before(y) * before(y[:, ::-1])[:, ::-1]
    others = reshape(others, xt.shape) if shape_known(xt.shape) else \
        make_node(_reshape_like_op, (others, xt))
    inverse = [0] * len(perm)
    for i, p in enumerate(perm):
        inverse[p] = i
    return transpose(others, tuple(inverse))


def _prod_vjp(out, g, needs):
    x = out.inputs[0]
    if not is_float(x):
        return [None]
    axes, keepdims = out.attrs
    return [_expand(g, x, axes, keepdims) * _prod_partials(out)]


def _prod_jvp(out, ts):
    if ts[0] is None or not is_float(out):
        return None
    axes, keepdims = out.attrs
    return sum(ts[0] * _prod_partials(out), axes, keepdims)


_prod_op, prod = _reduction("prod", np.prod, _prod_vjp, _prod_jvp, dtype_fn=_sum_dtype)


# -- logsumexp, softmax, log_softmax -------------------------------------------
# They compute in their float result type (np.exp's: int8 -> float16, int32 ->
# float64), which an integer or bool input is cast to first: ``x - max(x)``
# in the input's own type would wrap around (or fail, for bool).

def _exp_dtype(dtype):
    return np.exp(np.zeros((), dtype)).dtype


def _as_float(x):
    x = np.asarray(x)
    return x if x.dtype.kind == "f" else x.astype(_exp_dtype(x.dtype))


def _on_float(emit, with_ones=False):
    """The code template ``emit(attrs, x)`` given ``x`` cast to the node's
    float dtype when the input is an int or bool. ``with_ones``: the
    template is called ``emit(attrs, x, ones)``, ``ones`` the name of a
    constant column of ones that sums the last axis (see :func:`_sum_text`)
    or None."""
    def emit_node(node, x, const=None):
        src = node.inputs[0]
        if src.dtype.kind != "f":
            x = f"{x}.astype({dtype_expr(node.dtype)})"
        if not with_ones:
            return emit(node.attrs, x)
        # the helper sums exp(x), in the node's float dtype
        ones = _last_axis_ones(src.shape, node.dtype, node.attrs[0], const, True)
        return emit(node.attrs, x, ones)
    return emit_node


_LOGSUMEXP_SRC = '''def _logsumexp(x, axis, keepdims=False):
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)
    out = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return out if keepdims else np.squeeze(out, axis=axis)
'''
_logsumexp = from_source(_LOGSUMEXP_SRC)


def _logsumexp_impl(attrs, x):
    with np.errstate(divide="ignore"):  # log(0) = -inf where every exp underflows
        return _logsumexp(_as_float(x), *attrs)


def _lse_code(attrs, x):
    keep = ", keepdims=True" if attrs[1] else ""
    return f"_logsumexp({x}, axis={_axis_text(attrs[0])}{keep})"


def _lse_weights(out):
    x = out.inputs[0]
    axes, keepdims = out.attrs
    return exp(x - _expand(out, x, axes, keepdims))  # softmax over axes


_lse_op = register(Op(
    "logsumexp",
    infer=lambda attrs, x: (_reduced_shape(x.shape, *attrs),
                            probe_dtype("logsumexp", np.exp, x)),
    impl=_logsumexp_impl,
    vjp=lambda out, g, needs: [_expand(g, out.inputs[0], *out.attrs) * _lse_weights(out)
                               if is_float(out.inputs[0]) else None],
    jvp=lambda out, ts: None if ts[0] is None else
    sum(ts[0] * _lse_weights(out), *out.attrs),
    emit=_lse_code,
    emit_node=_on_float(_lse_code),
    helpers={"_logsumexp": _LOGSUMEXP_SRC},
    may_raise=_empty_axis,
    flops=lambda node: 12.0 * _size(node.inputs[0]),
))


def logsumexp(x, axis=None, keepdims=False):
    """``log(sum(exp(x), axis))`` computed without overflow."""
    x = lift(x)
    axes = normalize_axes("logsumexp", x, axis)
    if not axes:  # log(exp(x)) = x, in exp's float dtype
        dt = probe_dtype("logsumexp", np.exp, x)
        return x if dt == x.dtype else cast(x, dt)
    return apply(_lse_op, (x,), (axes, bool(keepdims)))


# ``ones``: a column of ones that sums the last axis faster (see _sum_text)
_SOFTMAX_SRC = '''def _softmax(x, axis, ones=None):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    if ones is None or not e.flags.c_contiguous:
        return e / e.sum(axis=axis, keepdims=True)
    return e / (e @ ones)
'''
_LOG_SOFTMAX_SRC = '''def _log_softmax(x, axis, ones=None):
    s = x - x.max(axis=axis, keepdims=True)
    e = np.exp(s)
    if ones is None or not e.flags.c_contiguous:
        return s - np.log(e.sum(axis=axis, keepdims=True))
    return s - np.log(e @ ones)
'''
# the interpreter runs the very helpers the generated code defines, on input
# cast to float as the generated code does (_on_float)
_softmax = from_source(_SOFTMAX_SRC)
_log_softmax = from_source(_LOG_SOFTMAX_SRC)


_ROW_MAX = ("m = low", "for j in range(x.shape[1]):", "    v = x[i, j]",
            "    if v > m or v != v:", "        m = v", "        if v != v:", "            break")


def _row_max(pad: str) -> str:
    """Lines setting ``m`` to the max of row ``i``, NaN winning as in NumPy's."""
    return "".join(pad + line + "\n" for line in _ROW_MAX)


def _scalar_rows(last: str) -> str:
    """The rows kernel's body with the C library's exp and log (``math``'s:
    Numba computes them in the argument's float type, within an ulp of
    NumPy's): per row the max ``m``, the exps of the shifted row, kept in
    ``out``, and their sum ``t``, in the row's dtype, its log ``lt``; then
    each ``out[i, j] = last``."""
    return "    for i in range(x.shape[0]):\n" + _row_max(" " * 8) + """\
        t = zero
        for j in range(x.shape[1]):
            e = math.exp(x[i, j] - m)
            out[i, j] = e
            t += e
""" + ("        lt = math.log(t)\n" if "lt" in last else "") + f"""\
        for j in range(x.shape[1]):
            out[i, j] = {last}
"""


def _vector_rows(last: str) -> str:
    """The rows kernel's body with libmvec's exp (vecmath="libmvec" too):
    for each block of rows ``lo:hi`` (about 512 elements: ``exps`` stays in
    the cache), the shifted values ``x - m`` go into ``out``, one call of
    the vector exp makes ``exps``, then ``out[i, j] = last`` (``out[i, j]``
    holding the shifted value, ``exps[(i - lo) * k + j]`` its exp, ``t`` and
    ``lt`` as in :func:`_scalar_rows`)."""
    return """\
    k = x.shape[1]
    shifted = out.reshape(x.shape[0] * k)  # out: C-contiguous, made by the caller
    per = max(1, 512 // k)
    exps = np.empty_like(shifted[:min(per, x.shape[0]) * k])
    for lo in range(0, x.shape[0], per):
        hi = min(lo + per, x.shape[0])
        for i in range(lo, hi):
""" + _row_max(" " * 12) + """\
            for j in range(k):
                out[i, j] = x[i, j] - m
        libmvec.exp(shifted[lo * k:hi * k], exps[:(hi - lo) * k])
        for i in range(lo, hi):
            t = zero
            for j in range(k):
                t += exps[(i - lo) * k + j]
""" + ("            lt = math.log(t)\n" if "lt" in last else "") + f"""\
            for j in range(k):
                out[i, j] = {last}
"""


def _row_loop_helper(name, numpy_src, rows):
    """With fuse="numba": ``name(x, axis, ones)`` runs one Numba kernel, of
    body ``rows`` (:func:`_scalar_rows` or :func:`_vector_rows`), over the
    rows of a 2-D float32/float64 array normalised over its last axis, else
    NumPy's code as without fusion. One pass instead of six NumPy calls,
    each ~1-5 us on a small array."""
    return numpy_src.replace(f"def {name}(", f"def {name}_numpy(", 1) + f'''

@numba.njit(error_model='numpy')
def {name}_rows(x, out, low, zero):
{rows}

def {name}(x, axis, ones=None):
    if x.ndim == 2 and axis == 1 and x.shape[1] and x.dtype in (np.float32, np.float64):
        out = np.empty(x.shape, x.dtype)
        {name}_rows(x, out, x.dtype.type(-np.inf), x.dtype.type(0))
        return out
    return {name}_numpy(x, axis, ones)
'''


_SOFTMAX_LOOP_SRC = _row_loop_helper("_softmax", _SOFTMAX_SRC, _scalar_rows("out[i, j] / t"))
_LOG_SOFTMAX_LOOP_SRC = _row_loop_helper("_log_softmax", _LOG_SOFTMAX_SRC,
                                         _scalar_rows("(x[i, j] - m) - lt"))
_SOFTMAX_VECTOR_SRC = _row_loop_helper("_softmax", _SOFTMAX_SRC,
                                       _vector_rows("exps[(i - lo) * k + j] / t"))
_LOG_SOFTMAX_VECTOR_SRC = _row_loop_helper("_log_softmax", _LOG_SOFTMAX_SRC,
                                           _vector_rows("out[i, j] - lt"))


def _softmax_impl(attrs, x):
    return _softmax(_as_float(x), attrs[0])


def _log_softmax_impl(attrs, x):
    return _log_softmax(_as_float(x), attrs[0])


def _normalizer_code(helper):
    """The template calling ``helper(x, axis=...)`` (with ``ones=`` if given)."""
    def code(attrs, x, ones=None):
        return f"{helper}({x}, axis={attrs[0]}{'' if ones is None else ', ones=' + ones})"
    return code


_softmax_code = _normalizer_code("_softmax")
_log_softmax_code = _normalizer_code("_log_softmax")


def _softmax_lin(out, v):
    # J v for softmax: y * (v - sum(v * y))
    axis = out.attrs[0]
    return out * (v - sum(v * out, axis, keepdims=True))


def _log_softmax_vjp(out, g, needs):
    if not is_float(out.inputs[0]):
        return [None]
    axis = out.attrs[0]
    return [g - exp(out) * sum(g, axis, keepdims=True)]


def _log_softmax_jvp(out, ts):
    if ts[0] is None:
        return None
    axis = out.attrs[0]
    return ts[0] - sum(exp(out) * ts[0], axis, keepdims=True)


_softmax_op = register(Op(
    "softmax",
    infer=lambda attrs, x: (x.shape, probe_dtype("softmax", np.exp, x)),
    impl=_softmax_impl,
    vjp=lambda out, g, needs: [_softmax_lin(out, g) if is_float(out.inputs[0]) else None],
    jvp=lambda out, ts: None if ts[0] is None else _softmax_lin(out, ts[0]),
    emit=_softmax_code,
    emit_node=_on_float(_softmax_code, with_ones=True),
    helpers={"_softmax": _SOFTMAX_SRC}, loop_helpers={"_softmax": _SOFTMAX_LOOP_SRC},
    vector_helpers={"_softmax": _SOFTMAX_VECTOR_SRC},
    may_raise=_empty_axis,
    flops=lambda node: 8.0 * _size(node),
))

_log_softmax_op = register(Op(
    "log_softmax",
    infer=lambda attrs, x: (x.shape, probe_dtype("log_softmax", np.exp, x)),
    impl=_log_softmax_impl,
    vjp=_log_softmax_vjp, jvp=_log_softmax_jvp,
    emit=_log_softmax_code,
    emit_node=_on_float(_log_softmax_code, with_ones=True),
    helpers={"_log_softmax": _LOG_SOFTMAX_SRC},
    loop_helpers={"_log_softmax": _LOG_SOFTMAX_LOOP_SRC},
    vector_helpers={"_log_softmax": _LOG_SOFTMAX_VECTOR_SRC},
    may_raise=_empty_axis,
    flops=lambda node: 8.0 * _size(node),
))


def softmax(x, axis=-1):
    """``exp(x) / sum(exp(x), axis)``, computed stably (default: last axis)."""
    x = lift(x)
    return apply(_softmax_op, (x,), (normalize_axis("softmax", x, axis),))


def log_softmax(x, axis=-1):
    """``x - logsumexp(x, axis, keepdims=True)`` (default: last axis)."""
    x = lift(x)
    return apply(_log_softmax_op, (x,), (normalize_axis("log_softmax", x, axis),))


# -- run-time-shaped sums (shapes with unknown dims) --------------------------

def _sum_to_shape(g, shape):
    """Sum ``g`` down to ``shape`` after NumPy broadcasting."""
    g = np.asarray(g)
    if g.shape == tuple(shape):
        return g
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, d in enumerate(shape) if d == 1 and g.shape[lead + i] != 1)
    out = np.sum(g, axis=axes, keepdims=True) if axes else g
    return out.reshape(shape)


_SUM_TO_SRC = '''def _sum_to(g, shape):
    if g.shape == shape:
        return g
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, d in enumerate(shape) if d == 1 and g.shape[lead + i] != 1)
    return np.sum(g, axis=axes, keepdims=True).reshape(shape)
'''


def _sum_to_like_vjp(out, g, needs):
    from .shape import broadcast_like
    return [broadcast_like(g, out.inputs[0]), None]


_sum_to_like_op = register(Op(
    "sum_to_like",
    infer=lambda attrs, g, ref: (ref.shape, g.dtype),
    impl=lambda attrs, g, ref: _sum_to_shape(g, np.shape(ref)),
    vjp=_sum_to_like_vjp,
    jvp=lambda out, ts: None if ts[0] is None else sum_to_like(ts[0], out.inputs[1]),
    emit=lambda attrs, g, ref: f"_sum_to({g}, {ref}.shape)",
    helpers={"_sum_to": _SUM_TO_SRC},
    flops=lambda node: _size(node.inputs[0]),
))


def sum_to_like(g, ref):
    """Sum ``g`` back to the run-time shape of ``ref`` (undo broadcasting)."""
    return make_node(_sum_to_like_op, (g, ref))


__all__ = ["sum", "mean", "max", "min", "prod", "logsumexp", "softmax",
           "log_softmax", "sum_to_like"]


# -- batching rules (vmap): the reduced axes move one to the right ------------
from .vmap import batch_all, batched_like, broadcast_seed, shift_axes_rule  # noqa: E402


def _batch_count(out, args, batched):
    axes, dt = out.attrs
    n = make_node(_count_op, (args[0],), (tuple(a + 1 for a in axes), dt))
    return broadcast_seed(n, args[0].shape[0])  # the same count for every member


def _batch_sum_to_like(out, args, batched):
    g, ref = args
    if not batched[0]:  # only the shape of ref depends on the batch
        (g, ref), _ = batch_all(args, batched)
        batched = (True, True)
    rank = ref.ndim - (1 if batched[1] else 0)
    lead = g.ndim - 1 - rank
    if lead:  # axes ref lacks altogether: known statically
        g = sum(g, axis=tuple(range(1, 1 + lead)))
    like = ref if batched[1] else batched_like(ref, g.shape[0])
    return sum_to_like(g, like)


for _op in (_sum_op, _mean_op, _max_op, _min_op, _prod_op, _prod_of_others_op, _lse_op,
            _softmax_op, _log_softmax_op):
    _op.batch = shift_axes_rule
_count_op.batch = _batch_count
_sum_to_like_op.batch = _batch_sum_to_like
_sum_to_like_op.aliases = True  # returns its input when no sum is needed
