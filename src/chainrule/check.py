"""``check_grad``: symbolic derivatives against central finite differences."""

from __future__ import annotations

import numpy as np

from .autodiff import grad, jacobian
from .errors import InputError
from .function import function, inputs_of
from .ir import Var, flatten
from .ops.base import fmt_shape

_DEFAULTS = {  # (eps, rtol) by order, for float64 and for narrower floats
    (1, True): (1e-6, 1e-5), (2, True): (1e-5, 1e-4),
    (1, False): (1e-3, 2e-2), (2, False): (1e-2, 5e-2),
}


def _resolve(values, graph_inputs):
    by_var = {}
    for key, val in values.items():
        if isinstance(key, Var):
            by_var[key.id] = (key, val)
        elif isinstance(key, str):
            if key not in graph_inputs:
                continue  # the cost does not use it
            by_var[graph_inputs[key].id] = (graph_inputs[key], val)
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
    array; ``wrt`` is a Var or a list of Vars (placeholders or parameters).
    ``order=2`` checks second derivatives (the Jacobian of each symbolic
    gradient) against finite differences of the symbolic gradient.

    >>> import chainrule as cr
    >>> x = cr.placeholder("x", (3,))
    >>> cr.check_grad((cr.sin(x) * x).sum(), x, {"x": [0.1, 0.2, 0.3]})
    """
    if order not in (1, 2):
        raise ValueError("check_grad: order must be 1 or 2")
    wrts, _ = flatten(wrt, "wrt")
    for w in wrts:
        if w.op.name not in ("placeholder", "parameter"):
            raise InputError(f"check_grad: wrt {w.label()} must be a placeholder or a "
                             f"parameter (finite differences perturb its value)")
    graph_inputs = inputs_of(cost)
    given = _resolve(values, graph_inputs)
    for w in wrts:
        if w.op.name == "placeholder" and w.id not in given:
            given[w.id] = (w, np.zeros(w.shape))  # unused by the cost
    phs = [v for v, _ in given.values()]
    base = {v.id: np.array(val, dtype=v.dtype) for v, val in given.values()}
    wide = all(w.dtype == np.float64 for w in wrts)
    d_eps, d_rtol = _DEFAULTS[(order, wide)]
    eps = d_eps if eps is None else eps
    rtol = d_rtol if rtol is None else rtol

    grads = grad(cost, wrts)
    if order == 1:
        f = function(phs, cost)
        symbolic = function(phs, grads)
        pairs = [(w, w, g) for w, g in zip(wrts, grads)]
    else:
        f = function(phs, grads)
        blocks = [jacobian(g, y) for g in grads for y in wrts]
        symbolic = function(phs, blocks)
        pairs = [(x, y, None) for x in wrts for y in wrts]

    def call(fn, overrides):
        saved = []
        args = []
        for ph in phs:
            args.append(overrides.get(ph.id, base[ph.id]))
        for w in wrts:
            if w.op.name == "parameter" and w.id in overrides:
                saved.append((w, w.value))
                w.set_value(overrides[w.id])
        try:
            return fn(*args)
        finally:
            for w, old in saved:
                w.set_value(old)

    sym_values = call(symbolic, {})
    for k, (x, y, _) in enumerate(pairs):
        y_val = base[y.id] if y.id in base else y.value
        numeric = _central(lambda v: call(f, {y.id: v}), y_val, eps,
                           out_index=None if order == 1 else wrts.index(x))
        _compare(np.asarray(sym_values[k]), numeric, x, y, order, rtol)


def _central(fn, x0, eps, out_index):
    """d fn / d x by central differences; result shaped out.shape + x.shape."""
    x0 = np.array(x0, dtype=np.float64 if x0.dtype.kind != "f" else x0.dtype)
    cols = []
    flat = x0.reshape(-1)
    for i in range(flat.size):
        step = eps * max(1.0, abs(float(flat[i])))
        plus, minus = flat.copy(), flat.copy()
        plus[i] += step
        minus[i] -= step
        fp = fn(plus.reshape(x0.shape))
        fm = fn(minus.reshape(x0.shape))
        if out_index is not None:
            fp, fm = fp[out_index], fm[out_index]
        cols.append((np.asarray(fp, np.float64) - np.asarray(fm, np.float64))
                    / (float(plus[i]) - float(minus[i])))
    if not cols:
        return np.zeros(x0.shape)
    stacked = np.stack(cols, axis=-1)
    return stacked.reshape(stacked.shape[:-1] + x0.shape)


def _compare(sym, num, x, y, order, rtol):
    sym = np.asarray(sym, np.float64).reshape(num.shape)
    scale = max(1.0, float(np.max(np.abs(num))) if num.size else 1.0)
    err = np.abs(sym - num) - rtol * np.maximum(np.abs(num), scale)
    if num.size == 0 or (np.all(err <= 0) and np.all(np.isfinite(sym) == np.isfinite(num))):
        return
    worst = np.unravel_index(int(np.nanargmax(np.where(np.isnan(err), np.inf, err))),
                             num.shape)
    what = (f"d cost / d {x.label()}" if order == 1 else
            f"d2 cost / d {x.label()} d {y.label()}")
    raise AssertionError(
        f"check_grad: {what} disagrees with finite differences at index "
        f"{tuple(int(i) for i in worst)} (shape {fmt_shape(num.shape)}): symbolic "
        f"{float(sym[worst])!r}, numeric {float(num[worst])!r}, tolerance rtol={rtol}")
