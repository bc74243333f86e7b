"""``cr.function``: validate, optimise, compile, and the callable wrapper."""

from __future__ import annotations

import numbers

import numpy as np

from .backends import BACKENDS, Program
from .backends.gemm import check_choice as check_blas_choice
from .backends.fusion import check_choice as check_fuse_choice
from .backends.vecmath import check_choice as check_vecmath_choice
from .backends.program import RUNTIME_ERRORS, NodeFailure, describe_node
from .errors import InputError
from .ir import Var, flatten, topo_order, without_gc
from .ops.base import fmt_shape, is_float, lift
from .ops.leaves import checked_cast

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
        if isinstance(value, dict):
            raise InputError(f"input {self.name!r}: got a dict; a compiled function takes "
                             f"arrays positionally or by placeholder name, f(**{{'name': "
                             f"array}}), not a feed dict (that is cr.evaluate's)")
        python_data = isinstance(value, _PY_DATA) and not isinstance(value, np.generic)
        try:
            arr = np.asarray(value)
        except (ValueError, TypeError) as e:
            raise InputError(f"input {self.name!r}: cannot make an array of the value "
                             f"given ({e})") from None
        want, got = self.dtype.kind, arr.dtype.kind
        ok = (got == want or (want == "f" and got in "iu" and python_data)
              or (want in "iu" and got in "iu"))
        if not ok and got == "O" and want == "f" and python_data and _huge_int(arr):
            try:  # Python ints past int64 (2**70): exact enough as floats
                arr = np.asarray(value, dtype=np.float64)
            except (OverflowError, ValueError, TypeError) as e:
                raise InputError(f"input {self.name!r}: cannot make {self.dtype} data of "
                                 f"the value given ({e})") from None
            got, ok = "f", True
        if not ok and got == "O" and want in "iu" and _huge_int(arr):
            raise InputError(f"input {self.name!r}: a Python int too large for any NumPy "
                             f"integer ({_huge_int(arr)}) does not fit in {self.dtype}")
        if not ok:
            raise InputError(
                f"input {self.name!r}: expected {self.dtype} data, got {arr.dtype}; "
                f"convert it first (e.g. np.asarray(value, dtype='{self.dtype}'))")
        if arr.ndim != self.ndim:
            raise InputError(
                f"input {self.name!r}: expected {self.ndim} dimension(s), shape "
                f"{fmt_shape(self.shape)}, got an array of shape {fmt_shape(arr.shape)}")
        self._check_dims(arr)
        if arr.dtype == self.dtype:  # (the common case: no call)
            return arr
        return checked_cast(arr, self.dtype, f"input {self.name!r}",
                            "; scale the data or declare the placeholder with a wider dtype"
                            if want == "f" else "")

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
    if not isinstance(inputs, (list, tuple)):
        raise InputError(f"function: inputs must be a list of cr.placeholder Vars "
                         f"(or one), got {inputs!r:.60}; [] for none")
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
    try:
        pairs = list(updates.items()) if isinstance(updates, dict) else list(updates)
    except TypeError:
        raise InputError(f"function: updates must be a dict {{parameter: new value}} or "
                         f"a list of (parameter, new value) pairs, got {updates!r:.60}") \
            from None
    for pair in pairs:
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise InputError(f"function: each update is a (parameter, new value) pair, "
                             f"got {pair!r:.60}; or pass a dict {{parameter: new value}}")
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
            if p.dtype.kind in "iu" and v.dtype.kind in "iu" \
                    and not np.can_cast(v.dtype, p.dtype, "safe"):
                raise InputError(
                    f"function: the update of {p.name!r} has dtype {v.dtype}, wider than "
                    f"the parameter's {p.dtype}: storing it would wrap values that do not "
                    f"fit; cast it yourself (.astype('{p.dtype}')) if that is meant")
            from .ops import cast
            v = cast(v, p.dtype)
        out.append((p, v))
    if len({p.id for p, _ in out}) != len(out):
        raise InputError("function: a parameter is updated twice")
    return out


def _root(v: Var) -> Var:
    """The node whose memory ``v``'s value may share: follow the ops whose
    result can be a view of their first input."""
    while v.op.aliases or v.op.name == "cast":  # cast(copy=False) in the interpreter
        v = v.inputs[0]
    return v


def _broadcast_view(v: Var) -> bool:
    """Is ``v``'s value a broadcast view (read-only, elements shared), say a
    gradient of a sum over sizes known at run time only? Handed out, it is
    copied: outputs are arrays a user can write into."""
    while v.op.aliases:
        if v.op.name in ("broadcast_to", "broadcast_like"):
            return True
        v = v.inputs[0]
    return False


def _copy_rules(outs, upd):
    """Which new parameter values and which outputs must be copied so that
    no two of them, and no output and the function's own state (parameters,
    constants), share memory: parameters may be updated in place by a later
    call, and a user may write into what a call returned."""
    roots = [_root(v) for _, v in upd]
    counts = {}
    for r in roots:
        counts[r.id] = counts.get(r.id, 0) + 1
    # a new value must be a fresh array of its own: not a leaf, not a view
    # (it may be read-only or strided), not shared with another update
    copy_update = [r.is_leaf or r is not v or counts[r.id] > 1
                   for (_, v), r in zip(upd, roots)]
    state = {r.id for r in roots}
    copy_out, seen = [], set()
    for v in outs:
        r = _root(v)
        copy_out.append(r.op.name in ("constant", "parameter") or r.id in state
                        or r.id in seen or _broadcast_view(v))
        seen.add(r.id)
    return copy_update, copy_out


class Function:
    """A compiled graph: call it with arrays, get arrays back.

    Built by :func:`function`; ``source`` holds the generated Python source
    (None for the interpreter) and ``graph`` the optimised graph evaluated.
    """

    @without_gc
    def __init__(self, inputs, outputs, updates=None, backend="numpy",
                 optimize=True, check_finite=False, blas=None, vecmath=None, fuse=None):
        if backend not in BACKENDS:
            raise InputError(f"function: unknown backend {backend!r}; choose one of "
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
        self._copy_update, self._copy_out = _copy_rules(outs, upd)
        check_blas_choice(blas)  # checked for every backend; the interpreter ignores them
        check_vecmath_choice(vecmath)
        check_fuse_choice(fuse)
        options = {"blas": blas, "vecmath": vecmath, "fuse": fuse} if backend == "numpy" else {}
        self._run, self.source, self._locate = BACKENDS[backend](
            prog, check_finite=check_finite, **options)
        self.backend = backend
        self.graph = CompiledGraph(self._rebuild(outs), dict(upd), prog.order)
        self._n = len(self.inputs)
        self._call = self._make_caller(outputs)

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
                known = ", ".join(repr(s.name) for s in specs)
                raise InputError(f"unknown input {key!r}; " + (
                    f"the inputs are {known}" if specs else "the function takes no inputs"))
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

    def __call__(self, /, *args, **kwargs):
        if kwargs or len(args) != self._n:
            args = self._bind(args, kwargs)
        return self._call(*args)

    def _failure(self, error, arrays):
        """The InputError to raise for a run-time failure, or None to let
        the original error through."""
        if isinstance(error, NodeFailure):
            node, cause = error.node, error.error
        elif isinstance(error, RUNTIME_ERRORS):
            node, cause = self._locate(error), error
            if node is None:
                return None
        else:
            return None
        given = ", ".join(f"{s.name} {fmt_shape(np.shape(a))}"
                          for s, a in zip(self._specs, arrays))
        return InputError(f"{describe_node(node)} failed on the inputs given "
                          f"({given}): {cause}")

    def _make_caller(self, structure):
        """Generate the call path once, specialised to this function: a
        cheap type/shape test per input (the full check only when it
        fails), the backend call, the updates, the outputs."""
        env = {"run": self._run, "ndarray": np.ndarray, "asarray": np.asarray,
               "array": np.array, "f64": np.float64, "fail": self._failure,
               "rebuild": self._rebuild}
        args = [f"a{k}" for k in range(self._n)]
        lines = [f"def call({', '.join(args)}):"]
        for k, spec in enumerate(self._specs):
            env[f"conv{k}"], env[f"dt{k}"], env[f"sh{k}"] = spec.convert, spec.dtype, spec.shape
            a = f"a{k}"
            slow = f"{a} = conv{k}({a})"
            if spec.ndim == 0 and spec.dtype == np.float64:
                lines.append(f"    if type({a}) is float: {a} = f64({a})")
                lines.append(f"    elif type({a}) is not ndarray or {a}.dtype is not dt{k} "
                             f"or {a}.shape != (): {slow}")
            elif spec.known:
                lines.append(f"    if type({a}) is not ndarray or {a}.dtype is not dt{k} "
                             f"or {a}.shape != sh{k}: {slow}")
            else:
                lines.append(f"    {slow}")
        state = []
        for k, p in enumerate(self._params):
            env[f"P{k}"] = p
            state.append(f"P{k}._state")
        call_args = ", ".join(args + state)
        lines += ["    try:",
                  f"        outs, news = run({call_args})",
                  "    except Exception as e:",
                  f"        err = fail(e, ({', '.join(args)}{',' if len(args) == 1 else ''}))",
                  "        if err is None:",
                  "            raise",
                  "        raise err from e"]
        pos = {p.id: k for k, p in enumerate(self._params)}
        for j, (p, copy) in enumerate(zip(self._updated, self._copy_update)):
            k = pos[p.id]
            env[f"D{k}"] = p.dtype
            value = f"array(news[{j}], dtype=D{k})" if copy else f"asarray(news[{j}])"
            lines.append(f"    P{k}._state = {value}")
        outs = []
        for j, copy in enumerate(self._copy_out):
            lines.append(f"    o{j} = outs[{j}]")
            outs.append(f"array(o{j})" if copy else
                        f"(o{j} if type(o{j}) is ndarray else asarray(o{j}))")
        if isinstance(structure, Var):
            lines.append(f"    return {outs[0]}")
        elif type(structure) is list:
            lines.append(f"    return [{', '.join(outs)}]")
        else:
            lines.append(f"    return rebuild([{', '.join(outs)}])")
        namespace = dict(env)
        exec(compile("\n".join(lines) + "\n", "<chainrule-call>", "exec"), namespace)
        return namespace["call"]


_MISSING = object()


def function(inputs, outputs, updates=None, backend="numpy", optimize=True,
             check_finite=False, blas=None, vecmath=None, fuse=None):
    """Compile ``outputs`` as a function of the placeholders ``inputs``.

    ``updates`` maps parameters to new-value expressions, applied after the
    outputs are computed (every update reads the old values).

    ``blas="numpy"`` (numpy backend: the BLAS library NumPy runs, called
    through ctypes) or ``blas="scipy"`` (optional, needs SciPy) runs each
    update ``p - A @ B`` as one in-place BLAS gemm instead of a product and
    a subtraction; the interpreter ignores it.

    ``vecmath="libmvec"`` (numpy backend, optional, needs Numba, glibc and an
    AVX2 CPU) computes tanh, exp, log, sin and the other transcendental
    functions of float arrays with glibc's vectorised versions, 2-28 times
    faster than NumPy's and within a few ulp of them; the interpreter
    ignores it.

    ``fuse="numba"`` (numpy backend, optional, needs Numba) computes chains
    of elementwise arithmetic and their sums over an axis in one compiled
    loop each instead of one NumPy call per op (float arrays of one or two
    dimensions; with ``vecmath`` too, libmvec's functions join the loops);
    the interpreter ignores it.

    >>> import chainrule as cr
    >>> x, y = cr.placeholder("x"), cr.placeholder("y")
    >>> f = cr.function([x, y], [x * y, cr.grad(x * y, x)])
    >>> f(2.0, -6.0)
    [array(-12.), array(-6.)]
    """
    return Function(inputs, outputs, updates, backend, optimize, check_finite, blas, vecmath,
                    fuse)


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
    if feed is not None and not isinstance(feed, dict):
        raise InputError(f"evaluate: feed must be a dict {{placeholder or name: value}}, "
                         f"got a {type(feed).__name__}")
    feed = dict(feed or {})
    outs, _ = flatten(outputs, "outputs")
    needed = [n for n in topo_order(outs) if n.op.name == "placeholder"]
    by_name = {}
    for ph in needed:
        by_name.setdefault(ph.name, []).append(ph)
    values = {}
    for key, val in feed.items():
        if isinstance(key, Var):
            if key.op.name == "parameter":
                raise InputError(f"evaluate: {key.label()!r} is a parameter, which holds "
                                 f"its own value; change it with .set_value(...) instead "
                                 f"of feeding it")
            if key.op.name != "placeholder":
                raise InputError(f"evaluate: feed keys must be placeholders or names, "
                                 f"got {key!r}, which is not a placeholder")
            ph_id = key.id
        elif isinstance(key, str):
            phs = by_name.get(key)
            if not phs:
                continue  # a placeholder the outputs do not use (maybe simplified away)
            if len(phs) > 1:
                raise InputError(f"evaluate: several placeholders are named {key!r}; "
                                 f"key the feed by Var")
            ph_id = phs[0].id
        else:
            raise InputError(f"evaluate: feed keys must be placeholders or names, "
                             f"got {key!r}")
        if ph_id in values:
            raise InputError(f"evaluate: placeholder {key if isinstance(key, str) else key.label()!r}"
                             f" is fed twice (by Var and by name)")
        values[ph_id] = val
    for ph in needed:
        if ph.id not in values:
            raise InputError(f"evaluate: missing a value for placeholder {ph.name!r}")
    f = Function(needed, outputs, backend="interpreter", optimize=False)
    return f(*[values[ph.id] for ph in needed])


def _huge_int(arr):
    """The first Python int in an object array that no NumPy integer holds
    (np.asarray(2**70) has dtype object), or None."""
    for v in arr.reshape(-1)[:1000]:
        if isinstance(v, int) and not isinstance(v, bool) and not -2 ** 63 <= v < 2 ** 64:
            return v
    return None
