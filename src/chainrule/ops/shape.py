"""Ops that move data without arithmetic: reshape, transpose, broadcast,
indexing, concatenate/stack and take."""

from __future__ import annotations

import numpy as np

from ..errors import ArgumentError, DTypeError, InputError, ShapeError
from .base import (Op, Var, broadcast_shapes, compatible_shapes, describe, fmt_shape,
                   from_source, is_float, lift, make_node, normalize_axis, register,
                   shape_known, sum_to)
from .elementwise import _size, apply


def _zero_flops(node):
    return 0.0


# -- reshape -----------------------------------------------------------------

def _reshape_infer(attrs, x):
    (shape,) = attrs
    if sum(d == -1 for d in shape) > 1:
        raise ShapeError(f"reshape: can only infer one dimension (-1) in {shape}")
    if any(d < -1 for d in shape):
        raise ShapeError(f"reshape: sizes must be >= 0 (or -1 for one inferred "
                         f"size); got {shape}")
    if not shape_known(x.shape):
        if -1 in shape:
            return tuple(None if d == -1 else d for d in shape), x.dtype
        return shape, x.dtype
    size = int(np.prod(x.shape, dtype=np.int64))
    known = int(np.prod([d for d in shape if d != -1], dtype=np.int64))
    if -1 in shape:
        if known == 0 or size % known:
            raise ShapeError(f"reshape: cannot reshape {describe(x)} "
                             f"({size} elements) into {fmt_shape(shape)}")
        shape = tuple(size // known if d == -1 else d for d in shape)
    elif known != size:
        raise ShapeError(f"reshape: cannot reshape {describe(x)} ({size} elements) "
                         f"into {fmt_shape(shape)} ({known} elements)")
    return shape, x.dtype


def _reshape_back(g, x):
    if shape_known(x.shape):
        return reshape(g, x.shape)
    return make_node(_reshape_like_op, (g, x))


_reshape_op = register(Op(
    "reshape", infer=_reshape_infer,
    impl=lambda attrs, x: np.reshape(x, attrs[0]),
    vjp=lambda out, g, needs: [_reshape_back(g, out.inputs[0])
                               if is_float(out.inputs[0]) else None],
    jvp=lambda out, ts: None if ts[0] is None else reshape(ts[0], out.attrs[0]),
    emit=lambda attrs, x: f"{x}.reshape({fmt_shape(attrs[0])})",
    flops=_zero_flops,
))

_reshape_like_op = register(Op(
    "reshape_like",
    infer=lambda attrs, x, ref: (ref.shape, x.dtype),
    impl=lambda attrs, x, ref: np.reshape(x, np.shape(ref)),
    vjp=lambda out, g, needs: [_reshape_back(g, out.inputs[0]), None],
    jvp=lambda out, ts: None if ts[0] is None else
    make_node(_reshape_like_op, (ts[0], out.inputs[1])),
    emit=lambda attrs, x, ref: f"{x}.reshape({ref}.shape)",
    flops=_zero_flops,
))


def _is_int(d) -> bool:
    """A size argument: an int or a NumPy integer, not a bool (True is 1)."""
    return isinstance(d, (int, np.integer)) and not isinstance(d, (bool, np.bool_))


def reshape(a, shape=None, *, newshape=None):
    """NumPy's ``reshape``; one dim may be -1 (``newshape=``: NumPy's old
    name for ``shape``)."""
    if (shape is None) == (newshape is None):
        raise ArgumentError("reshape: give the new shape once, as reshape(a, shape)")
    newshape = shape if newshape is None else newshape
    a = lift(a)
    if isinstance(newshape, (int, np.integer)):
        newshape = (newshape,)
    if not isinstance(newshape, (tuple, list)) or not all(_is_int(d) for d in newshape):
        raise ShapeError(f"reshape: the new shape of {describe(a)} must be integers (one "
                         f"may be -1), got {newshape!r}")
    newshape = tuple(int(d) for d in newshape)
    if newshape == a.shape:
        return a
    return apply(_reshape_op, (a,), (newshape,))


# -- transpose, expand_dims, squeeze -------------------------------------------

def _perm_inverse(perm):
    inv = [0] * len(perm)
    for i, p in enumerate(perm):
        inv[p] = i
    return tuple(inv)


_transpose_op = register(Op(
    "transpose",
    infer=lambda attrs, x: (tuple(x.shape[p] for p in attrs[0]), x.dtype),
    impl=lambda attrs, x: np.transpose(x, attrs[0]),
    vjp=lambda out, g, needs: [transpose(g, _perm_inverse(out.attrs[0]))
                               if is_float(out.inputs[0]) else None],
    jvp=lambda out, ts: None if ts[0] is None else transpose(ts[0], out.attrs[0]),
    emit=lambda attrs, x: f"{x}.T" if attrs[0] == (1, 0) else
    f"np.transpose({x}, {attrs[0]})",
    flops=_zero_flops,
))


def transpose(a, axes=None):
    """NumPy's ``transpose``: reverse the axes, or permute them by ``axes``."""
    a = lift(a)
    if axes is None:
        axes = tuple(range(a.ndim))[::-1]
    axes = tuple(normalize_axis("transpose", a, p) for p in axes)
    if sorted(axes) != list(range(a.ndim)):
        raise ShapeError(f"transpose: axes {axes} are not a permutation of the "
                         f"{a.ndim} axes of {describe(a)}")
    if axes == tuple(range(a.ndim)):
        return a
    return apply(_transpose_op, (a,), (axes,))


def matrix_transpose(a):
    """Swap the last two axes (``a.mT``)."""
    a = lift(a)
    perm = list(range(a.ndim))
    perm[-2], perm[-1] = perm[-1], perm[-2]
    return transpose(a, perm)


def _expand_infer(attrs, x):
    axes, = attrs
    shape = list(x.shape)
    for a in axes:
        shape.insert(a, 1)
    return tuple(shape), x.dtype


def _expand_dims_code(node, x, const=None):
    """``x[:, None]``: indexing, which costs a tenth of ``np.expand_dims``'s
    Python-level checks. A 0-d operand may be a Python number at run time
    (a scalar input), which has no indexing: it goes through ``np.asarray``."""
    axes = set(node.attrs[0])
    index = ", ".join("None" if k in axes else ":" for k in range(node.ndim))
    return f"np.asarray({x})[{index}]" if node.inputs[0].ndim == 0 else f"{x}[{index}]"


_expand_dims_op = register(Op(
    "expand_dims", infer=_expand_infer,
    impl=lambda attrs, x: np.expand_dims(x, attrs[0]),
    vjp=lambda out, g, needs: [squeeze(g, out.attrs[0]) if is_float(out.inputs[0]) else None],
    jvp=lambda out, ts: None if ts[0] is None else expand_dims(ts[0], out.attrs[0]),
    emit_node=_expand_dims_code,
    emit=lambda attrs, x: f"np.expand_dims({x}, {attrs[0]})",
    flops=_zero_flops,
))


def expand_dims(a, axis):
    """Insert size-1 axes at the positions ``axis`` of the result."""
    a = lift(a)
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    n = a.ndim + len(axes)
    axes = tuple(sorted(normalize_axis("expand_dims", a, ax, n) for ax in axes))
    if len(set(axes)) != len(axes):
        raise ShapeError(f"expand_dims: repeated axis in {axis!r} for {a.label()} "
                         f"(each new axis once)")
    if not axes:
        return a
    return apply(_expand_dims_op, (a,), (axes,))


_squeeze_op = register(Op(
    "squeeze",
    infer=lambda attrs, x: (tuple(d for i, d in enumerate(x.shape) if i not in attrs[0]),
                            x.dtype),
    impl=lambda attrs, x: np.squeeze(x, attrs[0]),
    vjp=lambda out, g, needs: [expand_dims(g, out.attrs[0]) if is_float(out.inputs[0]) else None],
    jvp=lambda out, ts: None if ts[0] is None else squeeze(ts[0], out.attrs[0]),
    emit=lambda attrs, x: f"np.squeeze({x}, {attrs[0]})",
    flops=_zero_flops,
))


def squeeze(a, axis=None):
    """Remove size-1 axes (all of them, or those in ``axis``)."""
    a = lift(a)
    if axis is None:
        axes = tuple(i for i, d in enumerate(a.shape) if d == 1)
    else:
        axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
        axes = tuple(sorted(normalize_axis("squeeze", a, ax) for ax in axes))
        for ax in axes:
            if a.shape[ax] not in (1, None):
                raise ShapeError(f"squeeze: axis {ax} of {describe(a)} has size "
                                 f"{a.shape[ax]}, not 1")
    if not axes:
        return a
    return apply(_squeeze_op, (a,), (axes,))


# -- broadcasting ----------------------------------------------------------------

def _broadcast_to_infer(attrs, x):
    shape, = attrs
    out = broadcast_shapes("broadcast_to", x, ("the target shape", shape))
    if out != shape:
        raise ShapeError(f"broadcast_to: cannot broadcast {describe(x)} "
                         f"to {fmt_shape(shape)}")
    return shape, x.dtype


# np.broadcast_to spends ~3 us in Python-level checks and an nditer, which
# the gradients of sums and means over unknown sizes pay at every call: a
# C-contiguous operand gets the same read-only view built from its strides
# directly (~1 us); anything else, and every error, is NumPy's.
_BROADCAST_SRC = '''def _broadcast(x, shape):
    x = np.asarray(x)
    if x.ndim == 0:  # a scalar (a mean's 1/n): every stride is 0
        strides = (0,) * len(shape)
    else:
        lead = len(shape) - x.ndim
        if lead < 0 or x.size == 0 or not x.flags.c_contiguous:
            return np.broadcast_to(x, shape)
        strides = [0] * lead
        for d, n, s in zip(x.shape, shape[lead:], x.strides):
            if d == n:
                strides.append(s)
            elif d == 1:
                strides.append(0)
            else:
                return np.broadcast_to(x, shape)
    view = np.ndarray(shape, x.dtype, x, 0, strides)
    view.flags.writeable = False
    return view
'''
_broadcast = from_source(_BROADCAST_SRC)


_broadcast_to_op = register(Op(
    "broadcast_to", infer=_broadcast_to_infer,
    impl=lambda attrs, x: _broadcast(x, attrs[0]),
    vjp=lambda out, g, needs: [sum_to(g, out.inputs[0]) if is_float(out.inputs[0]) else None],
    jvp=lambda out, ts: None if ts[0] is None else broadcast_to(ts[0], out.attrs[0]),
    emit=lambda attrs, x: f"_broadcast({x}, {fmt_shape(attrs[0])})",
    helpers={"_broadcast": _BROADCAST_SRC},
    flops=_zero_flops,
))


def broadcast_to(array, shape):
    """NumPy's ``broadcast_to`` (a read-only view in the generated code)."""
    array = lift(array)
    if isinstance(shape, (int, np.integer)):
        shape = (shape,)
    shape = tuple(shape)
    if not all(_is_int(d) and d >= 0 for d in shape):
        hint = (" (an unknown size, None, cannot be a target: an elementwise op "
                "with an array of that shape broadcasts by itself)" if None in shape else "")
        raise ShapeError(f"broadcast_to: the target shape {shape} must be non-negative "
                         f"integers{hint}")
    shape = tuple(int(d) for d in shape)
    if shape == array.shape:
        return array
    return apply(_broadcast_to_op, (array,), (shape,))


def _broadcast_like_infer(attrs, x, ref):
    out = broadcast_shapes("broadcast_like", x, ref)
    return tuple(r if r is not None else o for o, r in zip(out, ref.shape)) \
        if len(out) == len(ref.shape) else out, x.dtype


_broadcast_like_op = register(Op(
    "broadcast_like", infer=_broadcast_like_infer,
    impl=lambda attrs, x, ref: _broadcast(x, np.shape(ref)),
    vjp=lambda out, g, needs: [sum_to(g, out.inputs[0]), None],
    jvp=lambda out, ts: None if ts[0] is None else broadcast_like(ts[0], out.inputs[1]),
    emit=lambda attrs, x, ref: f"_broadcast({x}, {ref}.shape)",
    helpers={"_broadcast": _BROADCAST_SRC},
    flops=_zero_flops,
))


def broadcast_like(x, ref):
    """Broadcast ``x`` to the run-time shape of ``ref``."""
    x, ref = lift(x), lift(ref)
    if x.shape == ref.shape and shape_known(x.shape):
        return x
    if shape_known(ref.shape):
        return broadcast_to(x, ref.shape)
    return make_node(_broadcast_like_op, (x, ref))


# -- shape_as: a value that must have another's run-time shape ---------------

_SAME_SHAPE_SRC = '''def _same_shape(x, shape):
    x = np.asarray(x)
    if x.shape != shape:
        raise ValueError(f"an array of shape {x.shape} where shape {shape} is needed")
    return x
'''
_same_shape = from_source(_SAME_SHAPE_SRC)


def _shape_as_infer(attrs, x, ref):
    return tuple(r if r is not None else d for d, r in zip(x.shape, ref.shape)), x.dtype


_shape_as_op = register(Op(
    "shape_as", infer=_shape_as_infer,
    impl=lambda attrs, x, ref: _same_shape(x, np.shape(ref)),
    vjp=lambda out, g, needs: [g, None],
    jvp=lambda out, ts: ts[0],
    emit=lambda attrs, x, ref: f"_same_shape({x}, {ref}.shape)",
    helpers={"_same_shape": _SAME_SHAPE_SRC},
    may_raise=True, aliases=True, flops=_zero_flops,
))


def shape_as(x, ref):
    """``x``, checked at run time to have exactly ``ref``'s shape (no
    broadcasting): a user's seed for an output with unknown dims."""
    x, ref = lift(x), lift(ref)
    if not compatible_shapes(x.shape, ref.shape):
        raise ShapeError(f"shape_as: {describe(x)} cannot have the shape of {describe(ref)}")
    if shape_known(x.shape) and x.shape == ref.shape:
        return x
    return make_node(_shape_as_op, (x, ref))


# -- basic indexing ------------------------------------------------------------------

def _normalize_index(x: Var, index):
    """Turn a basic index into a hashable tuple of ("i", k) / ("s", a, b, c)
    / ("n",) items covering every axis of ``x``."""
    if not isinstance(index, tuple):
        index = (index,)
    n_real = sum(1 for i in index if i is not None and i is not Ellipsis)
    if sum(1 for i in index if i is Ellipsis) > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    if n_real > x.ndim:
        raise ShapeError(f"index: too many indices ({n_real}) for {describe(x)}")
    out, axis = [], 0
    for item in index:
        if item is Ellipsis:
            for _ in range(x.ndim - n_real):
                out.append(("s", None, None, None))
                axis += 1
        elif item is None:
            out.append(("n",))
        elif isinstance(item, slice):
            parts = []
            for p in (item.start, item.stop, item.step):
                if p is not None and not isinstance(p, (int, np.integer)):
                    raise ArgumentError(f"index: slice bounds must be ints, got {p!r}")
                parts.append(None if p is None else int(p))
            if parts[2] == 0:
                raise ShapeError("index: slice step cannot be zero")
            out.append(("s", *parts))
            axis += 1
        elif isinstance(item, (int, np.integer)) and not isinstance(item, bool):
            d = x.shape[axis]
            if d is not None and not -d <= item < d:
                raise ShapeError(f"index: index {item} is out of bounds for axis "
                                 f"{axis} of {describe(x)}")
            out.append(("i", int(item)))
            axis += 1
        else:
            raise ArgumentError(
                f"index: {item!r} is not a basic index (int, slice, None or ...); "
                f"use cr.take(x, indices, axis) to gather with an array of indices")
    while axis < x.ndim:
        out.append(("s", None, None, None))
        axis += 1
    return tuple(out)


def _as_numpy_index(idx):
    out = []
    for item in idx:
        if item[0] == "i":
            out.append(item[1])
        elif item[0] == "n":
            out.append(None)
        else:
            out.append(slice(item[1], item[2], item[3]))
    return tuple(out)


def _index_text(idx):
    parts = []
    for item in idx:
        if item[0] == "i":
            parts.append(str(item[1]))
        elif item[0] == "n":
            parts.append("None")
        else:
            a, b, c = ("" if p is None else str(p) for p in item[1:])
            parts.append(f"{a}:{b}" + (f":{c}" if c else ""))
    while parts and parts[-1] == ":":
        parts.pop()
    return ", ".join(parts) or "..."


def _getitem_infer(attrs, x):
    idx, = attrs
    shape, axis = [], 0
    for item in idx:
        if item[0] == "n":
            shape.append(1)
            continue
        d = x.shape[axis]
        axis += 1
        if item[0] == "s":
            shape.append(None if d is None else len(range(*slice(*item[1:]).indices(d))))
    return tuple(shape), x.dtype


_getitem_op = register(Op(
    "getitem", infer=_getitem_infer,
    impl=lambda attrs, x: x[_as_numpy_index(attrs[0])],
    vjp=lambda out, g, needs: [make_node(_getitem_grad_op, (g, out.inputs[0]), out.attrs)
                               if is_float(out.inputs[0]) else None],
    jvp=lambda out, ts: None if ts[0] is None else
    make_node(_getitem_op, (ts[0],), out.attrs),
    emit=lambda attrs, x: f"{x}[{_index_text(attrs[0])}]",
    flops=_zero_flops,
))


def _getitem_grad_impl(attrs, g, ref):
    out = np.zeros(np.shape(ref), dtype=np.result_type(g))
    out[_as_numpy_index(attrs[0])] = g
    return out


_GETITEM_GRAD_SRC = '''def _scatter(g, shape, index):
    out = np.zeros(shape, dtype=g.dtype)
    out[index] = g
    return out
'''

_getitem_grad_op = register(Op(
    "getitem_grad",
    infer=lambda attrs, g, ref: (ref.shape, g.dtype),
    impl=_getitem_grad_impl,
    vjp=lambda out, g, needs: [make_node(_getitem_op, (g,), out.attrs), None],
    jvp=lambda out, ts: None if ts[0] is None else
    make_node(_getitem_grad_op, (ts[0], out.inputs[1]), out.attrs),
    emit=lambda attrs, g, ref: f"_scatter({g}, {ref}.shape, np.s_[{_index_text(attrs[0])}])",
    helpers={"_scatter": _GETITEM_GRAD_SRC},
    flops=lambda node: _size(node),
))


def getitem(x, index):
    """``x[index]`` for basic indices; a list or array of ints gathers with
    :func:`take` along the first axis."""
    x = lift(x)
    if isinstance(index, (list, np.ndarray, Var)):
        return take(x, index, axis=0)
    idx = _normalize_index(x, index)
    if all(item == ("s", None, None, None) for item in idx):
        return x
    return apply(_getitem_op, (x,), (idx,))


# -- concatenate and stack ---------------------------------------------------------

def _concat_infer(attrs, *xs):
    axis, = attrs
    first = xs[0]
    for x in xs[1:]:
        if x.ndim != first.ndim:
            raise ShapeError(f"concatenate: {describe(first)} and {describe(x)} "
                             f"have different numbers of dimensions")
        for i, (a, b) in enumerate(zip(first.shape, x.shape)):
            if i != axis and a is not None and b is not None and a != b:
                raise ShapeError(f"concatenate: {describe(first)} and {describe(x)} "
                                 f"differ at axis {i} (only axis {axis} may differ)")
    shape = list(first.shape)
    sizes = [x.shape[axis] for x in xs]
    shape[axis] = None if None in sizes else sum(sizes)
    for i in range(len(shape)):
        if i != axis and shape[i] is None:
            shape[i] = next((x.shape[i] for x in xs if x.shape[i] is not None), None)
    return tuple(shape), np.result_type(*[x.dtype for x in xs])


def _concat_vjp(out, g, needs):
    axis, = out.attrs
    grads, start = [], 0
    unknown = any(x.shape[axis] is None for x in out.inputs)
    for k, (x, need) in enumerate(zip(out.inputs, needs)):
        size = x.shape[axis]
        if unknown:  # where each part starts is known at run time only
            grads.append(cast_like(make_node(_concat_part_op, (g,) + out.inputs, (axis, k)), x)
                         if need and is_float(x) else None)
            continue
        if need and is_float(x):
            index = [slice(None)] * out.ndim
            index[axis] = slice(start, start + size)
            grads.append(cast_like(getitem(g, tuple(index)), x))
        else:
            grads.append(None)
        start += size
    return grads


def cast_like(g, x):
    from .elementwise import cast
    return cast(g, x.dtype)


def _concat_jvp(out, ts):
    if all(t is None for t in ts) or not is_float(out):
        return None
    from .elementwise import zeros_like
    parts = [zeros_like(x, out.dtype) if t is None else t for x, t in zip(out.inputs, ts)]
    return concatenate(parts, out.attrs[0])


_CONCAT_PART_SRC = '''def _concat_part(g, axis, k, *xs):
    start = sum(x.shape[axis] for x in xs[:k])
    index = (slice(None),) * axis + (slice(start, start + xs[k].shape[axis]),)
    return g[index]
'''
_concat_part = from_source(_CONCAT_PART_SRC)


def _concat_part_infer(attrs, g, *xs):
    axis, k = attrs
    shape = list(g.shape)
    shape[axis] = xs[k].shape[axis]
    return tuple(shape), g.dtype


def _concat_part_vjp(out, h, needs):
    """The part goes back where it came from, zeros elsewhere."""
    axis, k = out.attrs
    from .elementwise import zeros_like
    xs = out.inputs[1:]
    parts = [h if i == k else zeros_like(x, h.dtype) for i, x in enumerate(xs)]
    return [concatenate(parts, axis)] + [None] * len(xs)


# Part k of g = concatenate(xs, axis), sliced where xs[k] sits: the gradient
# of concatenate when the sizes along the axis are known at run time only.
# The xs are read for their shapes.
_concat_part_op = register(Op(
    "concat_part", infer=_concat_part_infer,
    impl=lambda attrs, g, *xs: _concat_part(g, attrs[0], attrs[1], *xs),
    vjp=_concat_part_vjp,
    jvp=lambda out, ts: None if ts[0] is None else make_node(
        _concat_part_op, (ts[0],) + out.inputs[1:], out.attrs),
    emit=lambda attrs, g, *xs: f"_concat_part({g}, {attrs[0]}, {attrs[1]}, {', '.join(xs)})",
    helpers={"_concat_part": _CONCAT_PART_SRC},
    flops=_zero_flops,
))


_concat_op = register(Op(
    "concatenate", infer=_concat_infer,
    impl=lambda attrs, *xs: np.concatenate(xs, axis=attrs[0]),
    vjp=_concat_vjp, jvp=_concat_jvp,
    emit=lambda attrs, *xs: f"np.concatenate([{', '.join(xs)}], axis={attrs[0]})",
    flops=_zero_flops,
))


def concatenate(arrays, axis=0):
    """Join arrays along an existing axis (NumPy's ``concatenate``)."""
    xs = [lift(a) for a in arrays]
    if not xs:
        raise InputError("concatenate: need at least one array")
    if axis is None:
        xs, axis = [reshape(x, (-1,)) for x in xs], 0
    axis = normalize_axis("concatenate", xs[0], axis)
    if len(xs) == 1:
        return xs[0]
    return apply(_concat_op, tuple(xs), (axis,))


def stack(arrays, axis=0):
    """Join arrays along a new axis (NumPy's ``stack``)."""
    xs = [lift(a) for a in arrays]
    if not xs:
        raise InputError("stack: need at least one array")
    for x in xs[1:]:
        if x.ndim != xs[0].ndim or any(a is not None and b is not None and a != b
                                       for a, b in zip(x.shape, xs[0].shape)):
            raise ShapeError(f"stack: all arrays must have the same shape; got "
                             f"{describe(xs[0])} and {describe(x)}")
    axis = normalize_axis("stack", xs[0], axis, xs[0].ndim + 1)
    return concatenate([expand_dims(x, axis) for x in xs], axis)


# -- take (gather with an integer array) -------------------------------------------

def _take_infer(attrs, a, idx):
    axis, = attrs
    if idx.dtype.kind not in "iu":
        hint = (" (a boolean mask selects a data-dependent number of elements, which a "
                "graph of known shapes cannot hold: use cr.where(mask, x, 0) to zero the "
                "others)" if idx.dtype.kind == "b" else "")
        raise DTypeError(f"take: indices {idx.label()} must be integers, not "
                         f"{idx.dtype}{hint}")
    if axis is None:
        return idx.shape, a.dtype
    return a.shape[:axis] + idx.shape + a.shape[axis + 1:], a.dtype


def _take_grad_impl(attrs, g, idx, ref):
    axis, = attrs
    out = np.zeros(np.shape(ref), dtype=np.result_type(g))
    if axis is None:
        np.add.at(out.reshape(-1), np.asarray(idx).reshape(-1), np.reshape(g, -1))
        return out
    moved = np.moveaxis(out, axis, 0)
    gm = np.moveaxis(np.asarray(g), list(range(axis, axis + np.ndim(idx))),
                     list(range(np.ndim(idx))))
    np.add.at(moved, idx, gm)
    return out


_TAKE_GRAD_SRC = '''def _take_grad(g, idx, shape, axis):
    out = np.zeros(shape, dtype=g.dtype)
    if axis is None:
        np.add.at(out.reshape(-1), np.reshape(idx, -1), np.reshape(g, -1))
        return out
    moved = np.moveaxis(out, axis, 0)
    gm = np.moveaxis(g, list(range(axis, axis + np.ndim(idx))), list(range(np.ndim(idx))))
    np.add.at(moved, idx, gm)
    return out
'''

_take_op = register(Op(
    "take", infer=_take_infer,
    impl=lambda attrs, a, idx: np.take(a, idx, axis=attrs[0]),
    vjp=lambda out, g, needs: [make_node(_take_grad_op, (g, out.inputs[1], out.inputs[0]),
                                         out.attrs) if is_float(out.inputs[0]) else None,
                               None],
    jvp=lambda out, ts: None if ts[0] is None else
    make_node(_take_op, (ts[0], out.inputs[1]), out.attrs),
    emit=lambda attrs, a, idx: f"np.take({a}, {idx}, axis={attrs[0]})",
    may_raise=True,  # an index out of range
    flops=_zero_flops,
))

_take_grad_op = register(Op(
    "take_grad",
    infer=lambda attrs, g, idx, ref: (ref.shape, g.dtype),
    impl=_take_grad_impl,
    vjp=lambda out, g, needs: [make_node(_take_op, (g, out.inputs[1]), out.attrs),
                               None, None],
    jvp=lambda out, ts: None if ts[0] is None else
    make_node(_take_grad_op, (ts[0], out.inputs[1], out.inputs[2]), out.attrs),
    emit=lambda attrs, g, idx, ref: f"_take_grad({g}, {idx}, {ref}.shape, {attrs[0]})",
    may_raise=True,  # an index out of range
    helpers={"_take_grad": _TAKE_GRAD_SRC},
    flops=lambda node: _size(node.inputs[0]),
))


def take(a, indices, axis=None):
    """NumPy's ``take``: gather entries of ``a`` at integer ``indices``
    along ``axis`` (None: of the flattened array). Repeated indices
    accumulate their gradients."""
    a = lift(a)
    if not isinstance(indices, Var):
        arr = np.asarray(indices)
        if arr.dtype.kind not in "iu":
            raise DTypeError(f"take: indices must be integers, got dtype {arr.dtype}")
        indices = lift(arr.astype(np.int64))
    if axis is not None:
        axis = normalize_axis("take", a, axis)
    if indices.op.name == "constant":
        size = (int(np.prod(a.shape)) if shape_known(a.shape) else None) if axis is None \
            else a.shape[axis]
        vals = indices._const
        if size is not None and vals.size and (vals.max() >= size or vals.min() < -size):
            raise ShapeError(f"take: an index in {vals.tolist()} is out of bounds for "
                             f"{'the flattened ' if axis is None else f'axis {axis} of '}"
                             f"{describe(a)}")
    return apply(_take_op, (a, indices), (axis,))


# -- batching rules (vmap): a leading batch axis is added to every operand ----
from .vmap import (_lift_rank, batch_all, batch_size, batched_like,  # noqa: E402
                   broadcast_seed, shift_axes_rule)

_FULL = ("s", None, None, None)


def _batch_reshape(out, args, batched):
    # the requested shape (one dim may be -1), not the inferred one, which
    # may hold unknown dims
    return reshape(args[0], (args[0].shape[0],) + out.attrs[0])


def _reshape_batched(x, ref, k):
    """Batched ``x`` reshaped to ``(k,) + ref.shape`` (``ref`` unbatched)."""
    if sum(d is None for d in ref.shape) <= 1:
        return reshape(x, (k,) + tuple(-1 if d is None else d for d in ref.shape))
    return make_node(_reshape_like_op, (x, batched_like(ref, k)))


def _batch_reshape_like(out, args, batched):
    x, ref = args
    if batched[1]:  # the shape of ref depends on the batch
        return make_node(_reshape_like_op, tuple(batch_all(args, batched)[0]))
    return _reshape_batched(x, ref, x.shape[0])


def _batch_broadcast_to(out, args, batched):
    x = args[0]
    k, target = x.shape[0], out.attrs[0]
    missing = len(target) - (x.ndim - 1)
    if missing:
        x = expand_dims(x, tuple(range(1, 1 + missing)))
    return broadcast_to(x, (k,) + target)


def _batch_broadcast_like(out, args, batched):
    x, ref = args
    if batched[1]:  # the shape of ref depends on the batch
        x = _lift_rank(x, ref.ndim - 1) if batched[0] else expand_dims(x, 0)
        return broadcast_like(x, ref)
    from .elementwise import zeros_like
    # adding a zero broadcasts to the run-time shape and keeps NaN and inf
    return _lift_rank(x, ref.ndim) + zeros_like(ref, x.dtype)


def _batch_getitem_grad(out, args, batched):
    if not batched[0]:  # only the shape of ref depends on the batch
        args, _ = batch_all(args, batched)
    g, ref = args
    like = ref if batched[1] else batched_like(ref, g.shape[0])
    return make_node(_getitem_grad_op, (g, like), ((_FULL,) + out.attrs[0],))


def _batch_take(out, args, batched):
    a, idx = args
    axis, = out.attrs
    if batched[1]:
        if batched[0]:
            raise NotImplementedError(
                "take: batching both the array and the indices is not supported")
        res = make_node(_take_op, (a, idx), out.attrs)  # the batch axis lands at axis
        if axis is None or axis == 0:
            return res
        return transpose(res, (axis,) + tuple(i for i in range(res.ndim) if i != axis))
    if axis is None:
        return make_node(_take_op, (reshape(a, (a.shape[0], -1)), idx), (1,))
    return make_node(_take_op, (a, idx), (axis + 1,))


def _batch_take_grad(out, args, batched):
    if batched[1]:
        raise NotImplementedError("take: batching over the indices is not supported")
    g, idx, ref = args
    k = batch_size(args, batched)
    if not batched[0]:  # only the shape of ref depends on the batch
        g = broadcast_seed(g, k)
    axis = out.attrs[0]
    if axis is None:
        flat_ref = reshape(ref, (k, -1)) if batched[2] else \
            batched_like(reshape(ref, (-1,)), k)
        flat = make_node(_take_grad_op, (g, idx, flat_ref), (1,))
        if batched[2]:
            return make_node(_reshape_like_op, (flat, ref))
        return _reshape_batched(flat, ref, k)
    like = ref if batched[2] else batched_like(ref, k)
    return make_node(_take_grad_op, (g, idx, like), (axis + 1,))


def _batch_concat(out, args, batched):
    return make_node(_concat_op, tuple(batch_all(args, batched)[0]), (out.attrs[0] + 1,))


# the results of these ops may be views of their first operand's memory
for _op in (_reshape_op, _reshape_like_op, _transpose_op, _expand_dims_op, _squeeze_op,
            _broadcast_to_op, _broadcast_like_op, _getitem_op, _concat_part_op):
    _op.aliases = True
_reshape_op.batch = _batch_reshape
_reshape_like_op.batch = _batch_reshape_like
_transpose_op.batch = lambda out, args, batched: transpose(
    args[0], (0,) + tuple(p + 1 for p in out.attrs[0]))
_expand_dims_op.batch = shift_axes_rule
_squeeze_op.batch = shift_axes_rule
_shape_as_op.batch = lambda out, args, batched: make_node(
    _shape_as_op, tuple(batch_all(args, batched)[0]))
_broadcast_to_op.batch = _batch_broadcast_to
_broadcast_like_op.batch = _batch_broadcast_like
_getitem_op.batch = lambda out, args, batched: make_node(
    _getitem_op, (args[0],), ((_FULL,) + out.attrs[0],))
_getitem_grad_op.batch = _batch_getitem_grad
_take_op.batch = _batch_take
_take_grad_op.batch = _batch_take_grad
_concat_op.batch = _batch_concat
_concat_part_op.batch = lambda out, args, batched: make_node(
    _concat_part_op, tuple(batch_all(args, batched)[0]), (out.attrs[0] + 1, out.attrs[1]))


# -- identity seeds for jacobians ------------------------------------------------

def _eye_impl(attrs):
    shape, dt = attrs
    n = int(np.prod(shape, dtype=np.int64))
    return np.eye(n, dtype=dt).reshape((n,) + shape)


_eye_op = register(Op(
    "eye",
    infer=lambda attrs: (((int(np.prod(attrs[0], dtype=np.int64)),) + attrs[0]),
                         np.dtype(attrs[1])),
    impl=_eye_impl,
    vjp=lambda out, g, needs: [],
    jvp=lambda out, ts: None,
    emit=lambda attrs: (f"np.eye({int(np.prod(attrs[0], dtype=np.int64))}, "
                        f"dtype=np.{np.dtype(attrs[1]).name})"
                        + ("" if len(attrs[0]) == 1 else
                           f".reshape({(int(np.prod(attrs[0], dtype=np.int64)),) + attrs[0]})")),
    flops=_size,
))


def eye_seed(shape, dtype) -> Var:
    """The n seed vectors of a Jacobian sweep: ``eye(n)`` shaped
    ``(n,) + shape`` (n = prod(shape)), computed at run time."""
    return make_node(_eye_op, (), (tuple(shape), np.dtype(dtype).str))
