"""``check_grad``: symbolic derivatives against central finite differences."""

from __future__ import annotations

import numpy as np

from .autodiff import grad, jvp
from .errors import InputError
from .function import function, inputs_of
from .ir import Var, flatten, topo_order
from .ops.base import fmt_shape, is_float

_DEFAULTS = {  # (eps, rtol) by order, for float64 and for narrower floats
    (1, True): (1e-6, 1e-5), (2, True): (1e-5, 1e-4),
    (1, False): (1e-3, 2e-2), (2, False): (1e-2, 5e-2),
}
# Rounding in f(x + h) - f(x - h) is a few ulps of |f|; the check allows
# this many machine epsilons of max |f|, divided by the step, on top of rtol.
_NOISE_ULPS = 64.0


def _resolve(values, graph_inputs, parameters):
    by_var = {}
    for key, val in values.items():
        if isinstance(key, Var):
            by_var[key.id] = (key, val)
        elif isinstance(key, str):
            var = graph_inputs.get(key, parameters.get(key))
            if var is None:
                continue  # the cost does not use it
            by_var[var.id] = (var, val)
        else:
            raise InputError(f"check_grad: values keys must be placeholders or names, "
                             f"got {key!r}")
    for name, ph in graph_inputs.items():
        if ph.id not in by_var:
            raise InputError(f"check_grad: no value given for placeholder {name!r}")
    return by_var


def check_grad(cost, wrt, values, order=1, eps=None, rtol=None):
    """Compare the symbolic derivatives of a scalar ``cost`` with central
    finite differences; raise ``AssertionError`` naming the input, the worst
    index and both values on a mismatch.

    ``values`` maps every placeholder the cost uses (Var or name) to an
    array (a parameter may be given a value too: it is used during the
    check, then restored); ``wrt`` is a Var or a list of floating-point
    placeholders or parameters. ``order=2`` checks second derivatives (the
    Jacobian of each symbolic gradient, one column per forward-mode sweep)
    against finite differences of the symbolic gradient.

    An entry passes when ``|symbolic - numeric| <= rtol * scale + noise``:
    ``scale`` is the largest magnitude in that block of derivatives, and
    ``noise`` the rounding error of the differences (a few ulps of the
    function's values over the step). ``eps`` and ``rtol`` default by order
    and by the narrowest float type in the cost's graph (float64 or not).

    >>> import chainrule as cr
    >>> x = cr.placeholder("x", (3,))
    >>> cr.check_grad((cr.sin(x) * x).sum(), x, {"x": [0.1, 0.2, 0.3]})
    """
    if order not in (1, 2):
        raise InputError(f"check_grad: order must be 1 or 2, got {order!r}")
    for arg, v in (("eps", eps), ("rtol", rtol)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float, np.number))
                              or not np.isfinite(v) or v <= 0):
            raise InputError(f"check_grad: {arg} must be a positive number, got {v!r}")
    if not isinstance(values, dict):
        raise InputError(f"check_grad: values must be a dict from placeholders (Vars or "
                         f"names) to arrays, got {type(values).__name__}")
    wrts, _ = flatten(wrt, "wrt")
    for w in wrts:
        if w.op.name not in ("placeholder", "parameter"):
            raise InputError(f"check_grad: wrt {w.label()} must be a placeholder or a "
                             f"parameter (finite differences perturb its value)")
        if not is_float(w):
            raise InputError(f"check_grad: wrt {w.label()} is {w.dtype}; only "
                             f"floating-point inputs have derivatives to check")
    nodes = topo_order([cost])
    graph_inputs = inputs_of(cost)
    parameters = {n.name: n for n in nodes if n.op.name == "parameter"}
    given = _resolve(values, graph_inputs, parameters)
    for w in wrts:
        if w.op.name == "placeholder" and w.id not in given:
            # unused by the cost: any value will do (unknown dims get size 1)
            given[w.id] = (w, np.zeros(tuple(1 if d is None else d for d in w.shape)))
    phs = [v for v, _ in given.values() if v.op.name == "placeholder"]
    base = {v.id: np.array(val, dtype=v.dtype) for v, val in given.values()}
    for v, _ in given.values():
        if is_float(v) and not np.all(np.isfinite(base[v.id])):
            raise InputError(f"check_grad: the value of {v.label()} has NaN or inf; "
                             f"derivatives are checked at finite points")
    narrowest = min((n.dtype.itemsize for n in nodes + wrts if is_float(n)), default=8)
    d_eps, d_rtol = _DEFAULTS[(order, narrowest >= 8)]
    eps = d_eps if eps is None else eps
    rtol = d_rtol if rtol is None else rtol

    grads = grad(cost, wrts)
    f = function(phs, cost if order == 1 else grads)

    params = {v.id: v for v, _ in given.values() if v.op.name == "parameter"}
    params.update({w.id: w for w in wrts if w.op.name == "parameter"})

    def call(fn, overrides, extra=()):
        """``fn`` at the base values with ``overrides`` (by node id);
        parameters are set for the call and restored after it."""
        point = {**base, **overrides}
        saved = []
        try:
            for pid, p in params.items():
                if pid in point:
                    saved.append((p, p.value))
                    p.set_value(point[pid])
            return fn(*[point[ph.id] for ph in phs], *extra)
        finally:
            for p, old in saved:
                p.set_value(old)

    def value_of(v):
        return base[v.id] if v.id in base else v.value

    if order == 1:
        symbolic = call(function(phs, grads), {})
        for w, s in zip(wrts, symbolic):
            numeric, noise = _central(lambda v: call(f, {w.id: v}), value_of(w), eps)
            _compare(np.asarray(s), numeric, noise, w, w, order, rtol)
        return
    for y in wrts:  # one column of every block d(grad x)/dy per sweep
        t = _tangent_like(y)
        columns = function(phs + [t], jvp(grads, y, t))
        y0 = np.asarray(value_of(y))
        cols = [call(columns, {}, (e.reshape(y0.shape),)) for e in np.eye(y0.size)]
        for k, x in enumerate(wrts):
            numeric, noise = _central(lambda v: call(f, {y.id: v})[k], y0, eps)
            sym = _stack_columns([c[k] for c in cols], np.shape(value_of(x)), y0.shape)
            _compare(sym, numeric, noise, x, y, order, rtol)


def _tangent_like(y: Var) -> Var:
    from .ops import placeholder
    return placeholder("check_grad_tangent", y.shape, y.dtype)


def _stack_columns(cols, out_shape, x_shape):
    """Columns (one per entry of x) as an array shaped out.shape + x.shape."""
    if not cols:
        return np.zeros(tuple(out_shape) + tuple(x_shape))
    stacked = np.stack([np.asarray(c, np.float64) for c in cols], axis=-1)
    return stacked.reshape(stacked.shape[:-1] + tuple(x_shape))


def _central(fn, x0, eps):
    """d fn / d x by central differences, shaped out.shape + x.shape, and
    the rounding noise of the differences."""
    x0 = np.array(x0, dtype=np.float64 if x0.dtype.kind != "f" else x0.dtype)
    cols, noise = [], 0.0
    flat = x0.reshape(-1)
    for i in range(flat.size):
        step = eps * max(1.0, abs(float(flat[i])))
        plus, minus = flat.copy(), flat.copy()
        plus[i] += step
        minus[i] -= step
        fp = np.asarray(fn(plus.reshape(x0.shape)))
        fm = np.asarray(fn(minus.reshape(x0.shape)))
        width = float(plus[i]) - float(minus[i])
        ulp = np.finfo(fp.dtype if fp.dtype.kind == "f" else np.float64).eps
        size = max(float(np.max(np.abs(fp), initial=0.0)), float(np.max(np.abs(fm), initial=0.0)))
        noise = max(noise, _NOISE_ULPS * ulp * size / width)
        cols.append((fp.astype(np.float64) - fm.astype(np.float64)) / width)
    return _stack_columns(cols, (), x0.shape), noise


def _compare(sym, num, noise, x, y, order, rtol):
    sym = np.asarray(sym, np.float64).reshape(num.shape)
    if num.size == 0:
        return
    finite = np.isfinite(sym) & np.isfinite(num)
    scale = max(float(np.max(np.abs(np.where(finite, num, 0.0)))),
                float(np.max(np.abs(np.where(finite, sym, 0.0)))))
    err = np.abs(sym - num) - (rtol * scale + noise)
    if np.all(err <= 0) and np.all(np.isfinite(sym) == np.isfinite(num)):
        return
    worst = np.unravel_index(int(np.nanargmax(np.where(np.isnan(err), np.inf, err))),
                             num.shape)
    what = (f"d cost / d {x.label()}" if order == 1 else
            f"d2 cost / d {x.label()} d {y.label()}")
    raise AssertionError(
        f"check_grad: {what} disagrees with finite differences at index "
        f"{tuple(int(i) for i in worst)} (shape {fmt_shape(num.shape)}): symbolic "
        f"{float(sym[worst])!r}, numeric {float(num[worst])!r}, tolerance "
        f"rtol={rtol} of {scale:.3g} plus rounding {noise:.2g}")
