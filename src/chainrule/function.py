"""``cr.function``: validate, optimise, compile, and the callable wrapper."""

from __future__ import annotations

import numbers

import numpy as np

from .backends import BACKENDS, Program
from .backends.program import NodeFailure, describe_node
from .errors import InputError
from .ir import Var, flatten, topo_order
from .ops.base import fmt_shape, is_float, lift

_PY_DATA = (bool, numbers.Number, list, tuple)


class InputSpec:
    """How one placeholder's argument is checked and converted at call time."""

    __slots__ = ("var", "name", "shape", "dtype", "known", "ndim")

    def __init__(self, var: Var):
        self.var, self.name = var, var.name
        self.shape, self.dtype = var.shape, var.dtype
        self.known = all(d is not None for d in self.shape)
        self.ndim = len(self.shape)

    def convert(self, value):
        arr = value
        if type(arr) is np.ndarray and arr.dtype is self.dtype and (
                arr.shape == self.shape if self.known else arr.ndim == self.ndim):
            if not self.known:
                self._check_dims(arr)
            return arr
        if isinstance(value, Var):
            raise InputError(f"input {self.name!r}: got a chainrule Var; pass an array "
                             f"(to feed a graph into a graph, build one graph instead)")
        python_data = isinstance(value, _PY_DATA) and not isinstance(value, np.generic)
        try:
            arr = np.asarray(value)
        except (ValueError, TypeError) as e:
            raise InputError(f"input {self.name!r}: cannot make an array of the value "
                             f"given ({e})") from None
        want, got = self.dtype.kind, arr.dtype.kind
        ok = (got == want or (want == "f" and got in "iu" and python_data)
              or (want in "iu" and got in "iu"))
        if not ok:
            raise InputError(
                f"input {self.name!r}: expected {self.dtype} data, got {arr.dtype}; "
                f"convert it first (e.g. np.asarray(value, dtype='{self.dtype}'))")
        if arr.ndim != self.ndim:
            raise InputError(
                f"input {self.name!r}: expected {self.ndim} dimension(s), shape "
                f"{fmt_shape(self.shape)}, got an array of shape {fmt_shape(arr.shape)}")
        self._check_dims(arr)
        if arr.dtype != self.dtype:
            if want in "iu" and arr.size:
                self._check_range(arr)
            arr = arr.astype(self.dtype)
        return arr

    def _check_range(self, arr):
        # a cast would wrap around silently (2**40 as int32 is 0)
        info = np.iinfo(self.dtype)
        lo, hi = arr.min(), arr.max()
        if lo < info.min or hi > info.max:
            raise InputError(
                f"input {self.name!r}: values from {lo} to {hi} do not fit in "
                f"{self.dtype} (range {info.min} to {info.max})")

    def _check_dims(self, arr):
        for k, (want, got) in enumerate(zip(self.shape, arr.shape)):
            if want is not None and want != got:
                raise InputError(
                    f"input {self.name!r}: expected shape {fmt_shape(self.shape)}, got "
                    f"{fmt_shape(arr.shape)} (axis {k} must have size {want})")


class CompiledGraph:
    """What a compiled function evaluates: its outputs (in the structure
    given), its updates, and all nodes in evaluation order."""

    def __init__(self, outputs, updates, nodes):
        self.outputs, self.updates, self.nodes = outputs, updates, nodes

    def __len__(self):
        return len(self.nodes)

    def __repr__(self):
        return f"<CompiledGraph: {len(self.nodes)} nodes>"


def _as_inputs(inputs):
    if isinstance(inputs, Var):
        inputs = [inputs]
    inputs = list(inputs)
    for i, v in enumerate(inputs):
        if not isinstance(v, Var) or v.op.name != "placeholder":
            what = v.label() if isinstance(v, Var) else type(v).__name__
            raise InputError(f"function: inputs[{i}] ({what}) is not a placeholder; "
                             f"inputs must be cr.placeholder Vars (parameters are "
                             f"read from their own state)")
    if len({v.id for v in inputs}) != len(inputs):
        raise InputError("function: the same placeholder is listed twice in inputs")
    return inputs


def _as_updates(updates):
    if updates is None:
        return []
    pairs = list(updates.items()) if isinstance(updates, dict) else list(updates)
    out = []
    for p, v in pairs:
        if not isinstance(p, Var) or p.op.name != "parameter":
            raise InputError(f"function: update target {p!r} is not a cr.parameter")
        v = lift(v, p)
        if v.shape != p.shape:
            raise InputError(f"function: the update of {p.name!r} has shape "
                             f"{fmt_shape(v.shape)}, the parameter {fmt_shape(p.shape)}")
        if v.dtype != p.dtype:
            if v.dtype.kind != p.dtype.kind and not (is_float(p) and v.dtype.kind in "iub"):
                raise InputError(f"function: the update of {p.name!r} has dtype "
                                 f"{v.dtype}, the parameter {p.dtype}")
            from .ops import cast
            v = cast(v, p.dtype)
        out.append((p, v))
    if len({p.id for p, _ in out}) != len(out):
        raise InputError("function: a parameter is updated twice")
    return out


# ops whose result may be (a view of) their first input's memory
def _may_view(v: Var, leaf_kinds) -> bool:
    """Might the value of ``v`` be a leaf of one of ``leaf_kinds``, or a view
    of one?"""
    while v.op.aliases or v.op.name == "cast":  # cast(copy=False) in the interpreter
        v = v.inputs[0]
    return v.op.name in leaf_kinds


class Function:
    """A compiled graph: call it with arrays, get arrays back.

    Built by :func:`function`; ``source`` holds the generated Python source
    (None for the interpreter) and ``graph`` the optimised graph evaluated.
    """

    def __init__(self, inputs, outputs, updates=None, backend="numpy",
                 optimize=True, check_finite=False):
        if backend not in BACKENDS:
            raise ValueError(f"function: unknown backend {backend!r}; choose one of "
                             f"{sorted(BACKENDS)}")
        self.inputs = _as_inputs(inputs)
        outs, self._rebuild = flatten(outputs, "outputs")
        upd = _as_updates(updates)
        if optimize:
            from .passes import optimize_vars
            new = optimize_vars(outs + [v for _, v in upd])
            outs, upd = new[:len(outs)], [(p, v) for (p, _), v in zip(upd, new[len(outs):])]
        prog = Program(self.inputs, outs, upd)
        self._check_closed(prog)
        self._specs = [InputSpec(v) for v in self.inputs]
        self._by_name = {}
        for k, v in enumerate(self.inputs):
            self._by_name.setdefault(v.name, []).append(k)
        self._params = prog.params
        self._updated = [p for p, _ in upd]
        # An output must not share memory with state the function keeps
        # (parameters, constants: mutating the result would change later
        # calls), nor a new parameter value with anything else.
        self._copy_update = [_may_view(v, ("placeholder", "constant", "parameter"))
                             for _, v in upd]
        self._copy_out = [_may_view(v, ("constant", "parameter")) for v in outs]
        self._run, self.source = BACKENDS[backend](prog, check_finite=check_finite)
        self.backend = backend
        self.graph = CompiledGraph(self._rebuild(outs), dict(upd), prog.order)

    def _check_closed(self, prog):
        given = {v.id for v in self.inputs}
        for node in prog.order:
            if node.op.name == "placeholder" and node.id not in given:
                names = ", ".join(repr(v.name) for v in self.inputs) or "none"
                raise InputError(
                    f"function: the outputs depend on placeholder {node.name!r}, which "
                    f"is not among the inputs ({names}); add it to inputs")

    def _bind(self, args, kwargs):
        specs = self._specs
        if len(args) > len(specs):
            raise InputError(f"function takes {len(specs)} input(s) "
                             f"({', '.join(s.name for s in specs)}), got {len(args)}")
        values = list(args) + [_MISSING] * (len(specs) - len(args))
        for key, val in kwargs.items():
            slots = self._by_name.get(key)
            if not slots:
                raise InputError(f"unknown input {key!r}; the inputs are "
                                 f"{', '.join(repr(s.name) for s in specs)}")
            if len(slots) > 1:
                raise InputError(f"input name {key!r} is ambiguous (several "
                                 f"placeholders share it); pass it positionally")
            if values[slots[0]] is not _MISSING:
                raise InputError(f"input {key!r} is given twice")
            values[slots[0]] = val
        for k, val in enumerate(values):
            if val is _MISSING:
                raise InputError(f"missing input {specs[k].name!r}")
        return values

    def __call__(self, *args, **kwargs):
        specs = self._specs
        if kwargs or len(args) != len(specs):
            args = self._bind(args, kwargs)
        arrays = [s.convert(a) for s, a in zip(specs, args)]
        try:
            outs, news = self._run(arrays, [p._state for p in self._params])
        except NodeFailure as e:
            given = ", ".join(f"{s.name} {fmt_shape(np.shape(a))}" for s, a in zip(specs, arrays))
            raise InputError(
                f"{describe_node(e.node)} failed on the inputs given ({given}): "
                f"{e.error}") from e.error
        for p, new, copy in zip(self._updated, news, self._copy_update):
            p._state = np.array(new, dtype=p.dtype) if copy else np.asarray(new)
        return self._rebuild([np.array(o) if copy or type(o) is not np.ndarray else o
                              for o, copy in zip(outs, self._copy_out)])


_MISSING = object()


def function(inputs, outputs, updates=None, backend="numpy", optimize=True,
             check_finite=False):
    """Compile ``outputs`` as a function of the placeholders ``inputs``.

    ``updates`` maps parameters to new-value expressions, applied after the
    outputs are computed (every update reads the old values).

    >>> import chainrule as cr
    >>> x, y = cr.placeholder("x"), cr.placeholder("y")
    >>> f = cr.function([x, y], [x * y, cr.grad(x * y, x)])
    >>> f(2.0, -6.0)
    [array(-12.), array(-6.)]
    """
    return Function(inputs, outputs, updates, backend, optimize, check_finite)


def inputs_of(outputs) -> dict:
    """The placeholders the ``outputs`` depend on, by name."""
    outs, _ = flatten(outputs, "outputs")
    found = {}
    for node in topo_order(outs):
        if node.op.name == "placeholder":
            if node.name in found and found[node.name] is not node:
                raise InputError(f"two different placeholders are named {node.name!r}")
            found[node.name] = node
    return found


def evaluate(outputs, feed=None):
    """Evaluate ``outputs`` once with the reference interpreter.

    ``feed`` maps placeholders (Vars or names) to values; entries for
    placeholders the outputs do not use are ignored, as by ``function``.
    """
    feed = dict(feed or {})
    outs, _ = flatten(outputs, "outputs")
    needed = [n for n in topo_order(outs) if n.op.name == "placeholder"]
    by_name = {}
    for ph in needed:
        by_name.setdefault(ph.name, []).append(ph)
    values = {}
    for key, val in feed.items():
        if isinstance(key, Var):
            values[key.id] = val
        elif isinstance(key, str):
            phs = by_name.get(key)
            if not phs:
                continue  # a placeholder the outputs do not use (maybe simplified away)
            if len(phs) > 1:
                raise InputError(f"evaluate: several placeholders are named {key!r}; "
                                 f"key the feed by Var")
            values[phs[0].id] = val
        else:
            raise InputError(f"evaluate: feed keys must be placeholders or names, "
                             f"got {key!r}")
    for ph in needed:
        if ph.id not in values:
            raise InputError(f"evaluate: missing a value for placeholder {ph.name!r}")
    f = Function(needed, outputs, backend="interpreter", optimize=False)
    return f(*[values[ph.id] for ph in needed])
