"""The graph node, ``Var``, and the hash-consing table.

A Var is immutable apart from its ``name`` (metadata, not identity). Nodes
are hash-consed: building the same op with the same attributes on the same
inputs returns the very same object, so common subexpressions are shared for
free. Commutative ops order their operands canonically (by creation id)
before lookup. Each call of a differentiation function hash-conses what it
builds in a table of its own (see :func:`derivative_nodes`); the rewrite
pass merges equal nodes of all of them.

Leaves are Vars too: placeholders (one object per call, never merged),
constants (merged by value, dtype and shape) and parameters (named state).
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import threading
import zlib
import weakref

import numpy as np

from ..errors import ArgumentError
from .op import Op

LEAF_OPS = frozenset({"placeholder", "constant", "parameter"})
_ids = itertools.count()
_last_id = [-1]


def next_id() -> int:
    """The id the next new node will get (nodes made later have larger ids)."""
    return _last_id[0] + 1
# Op nodes: key -> weak reference to the node, removed by the reference's
# callback when the node dies (as a WeakValueDictionary does, but with
# C-level weakrefs and partials: its Python-level entries cost a tenth of
# building a large derivative graph). Constants keep a WeakValueDictionary
# (made less often; their keys hold the value's bytes).
#
# The differentiation functions (see :func:`derivative_nodes`) do not use
# this table: each call hash-conses the nodes it builds in a table of its
# own, dropped when it returns. A derivative rule that rebuilds an
# expression the user already holds (the W.T in the gradient of A @ W, when
# the user's A is W.T; or cos(x) from an earlier gradient) so gets a node of
# its own, and a later derivative with respect to the user's node does not
# also differentiate the rule's, which does not vary with it. cr.optimize
# merges equal nodes again before code is generated (passes/rewrite.py).
_table: dict = {}
_constants: "weakref.WeakValueDictionary[tuple, Var]" = weakref.WeakValueDictionary()
_ref = weakref.ref
_partial = functools.partial


class _State(threading.local):
    table = None  # the running differentiation call's table, in this thread


_state = _State()


def _forget(key, ref, table=_table):
    """The callback of a dead node's reference: drop its entry (unless the
    key already names a newer node). ``table`` is bound at definition so
    callbacks still work while the interpreter shuts down."""
    if table.get(key) is ref:
        table.pop(key, None)


@contextlib.contextmanager
def derivative_nodes():
    """Hash-cons the nodes built in this block (in this thread) in a table
    of their own, dropped at the end; nested blocks share the outermost
    one's. The differentiation functions are decorated with it
    (``@derivative_nodes()``: a context manager made by contextlib is also a
    decorator)."""
    if _state.table is not None:
        yield
        return
    _state.table = {}
    try:
        yield
    finally:
        _state.table = None


class Var:
    """A node of a chainrule graph: an op applied to input Vars.

    Users do not build Vars directly; they come from :func:`placeholder`,
    :func:`constant`, :func:`parameter` and the op functions. Arithmetic
    operators, indexing and the array-like methods are attached by
    ``chainrule.ops``.
    """

    __slots__ = ("op", "inputs", "attrs", "shape", "dtype", "_name", "id", "skey",
                 "_const", "_state", "_uniform", "_safe", "__weakref__")
    # _uniform: a constant's single value (or None), set when first asked
    # for (passes.facts.uniform), so the fact lives and dies with the node;
    # _safe: whether computing the node can never raise (passes.facts.safe)
    __array_priority__ = 1000  # ndarray <op> Var defers to Var's reflected op

    op: Op
    inputs: tuple
    attrs: tuple
    shape: tuple
    dtype: np.dtype

    def __init__(self, op, inputs, attrs, shape, dtype, name=None):
        put = object.__setattr__  # the fixed fields are set here only
        put(self, "op", op)
        put(self, "inputs", inputs)
        put(self, "attrs", attrs)
        put(self, "shape", shape)
        put(self, "dtype", dtype)
        put(self, "_name", name)
        put(self, "id", next(_ids))
        _last_id[0] = self.id
        put(self, "_const", None)
        put(self, "_state", None)

    def __setattr__(self, attr, value):
        # A node is immutable once built (hash-consing shares it): x.shape = (2,)
        # (a NumPy habit) would silently describe another array
        if attr in _FIXED:
            hint = " (use .reshape(...))" if attr == "shape" else \
                " (use .astype(...))" if attr == "dtype" else ""
            raise AttributeError(f"a chainrule Var's {attr} cannot be changed{hint}: "
                                 f"ops build new Vars")
        object.__setattr__(self, attr, value)

    # -- metadata --------------------------------------------------------
    @property
    def name(self):
        return self._name

    @name.setter
    def name(self, value):
        if value is not None and not isinstance(value, str):
            raise ArgumentError("a Var's name must be a str or None")
        self._name = value

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def is_leaf(self) -> bool:
        """Placeholders, constants and parameters (not ops without inputs)."""
        return self.op.name in LEAF_OPS

    def label(self) -> str:
        """How error messages refer to this node: its name or its op."""
        if self._name:
            return self._name
        if self.op.name == "constant":
            v = self._const
            return repr(v.item()) if v.size == 1 else f"constant{self.shape}"
        return f"<{self.op.name}>"

    def __repr__(self) -> str:
        nm = f" {self._name!r}" if self._name else ""
        return f"<Var{nm} {self.op.name} shape={self.shape} dtype={self.dtype}>"

    def __bool__(self):
        raise ArgumentError(
            "a chainrule Var has no truth value: it is symbolic. Use "
            "cr.where(cond, a, b) for a choice, or evaluate the graph first."
        )

    __hash__ = object.__hash__

    # ``==`` is deliberately not overloaded: Vars stay usable as dict keys,
    # and Var == Var is identity. Against a number or an array it would be
    # a silent False (``cr.where(x == 0, ...)`` picking the other branch
    # everywhere), so that raises and points to cr.equal.
    def __eq__(self, other):
        if isinstance(other, Var):
            return self is other
        if _numeric(other):
            raise ArgumentError(_no_equality("=="))
        return NotImplemented

    def __ne__(self, other):
        if isinstance(other, Var):
            return self is not other
        if _numeric(other):
            raise ArgumentError(_no_equality("!="))
        return NotImplemented

    # A node is immutable (its value, for a parameter, is state the graph
    # holds): copies are the node itself, as for a tuple, with no recursion
    # down a deep graph.
    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self

    def __reduce__(self):
        raise ArgumentError("chainrule Vars cannot be pickled: a graph is saved with "
                            "cr.save / cr.load (planned), not pickle")

    # NumPy meets Vars in three ways; each builds the graph or says what to use.
    def __array__(self, *args, **kwargs):
        raise ArgumentError(f"{self.label()} is a chainrule Var, a symbol without a value: "
                            f"NumPy cannot convert it to an array. Evaluate it first "
                            f"(cr.evaluate, cr.function), or use the cr functions on it")

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        """``np.exp(x)``, ``ndarray + x``: the chainrule op of the same name."""
        import chainrule as cr
        name = _UFUNC_NAMES.get(ufunc.__name__, ufunc.__name__)
        fn = getattr(cr, name, None) if method == "__call__" and not kwargs else None
        if not callable(fn):
            call = ufunc.__name__ + ("" if method == "__call__" else "." + method)
            extra = " with " + ", ".join(kwargs) if kwargs else ""
            raise ArgumentError(f"np.{call} does not take chainrule Vars{extra}; use the cr "
                                f"functions (cr.{name} if it exists) on Vars")
        return fn(*inputs)

    def __array_function__(self, func, types, args, kwargs):
        """``np.sum(x, axis=0)``, ``np.concatenate([x, y])``: the chainrule
        function of the same meaning, for the NumPy functions that have one
        (with the arguments it takes); any other raises, saying what to use."""
        import inspect

        import chainrule as cr
        name = _ARRAY_FUNCTIONS.get(func.__name__)
        if name is None:
            raise ArgumentError(f"np.{func.__name__} does not take chainrule Vars; use "
                                f"cr.{func.__name__} (or the cr function that does the same) "
                                f"on Vars")
        fn = getattr(cr, name)
        try:
            theirs = inspect.signature(func)
            bound = theirs.bind(*args, **kwargs)
        except (TypeError, ValueError) as e:
            raise ArgumentError(f"np.{func.__name__}: {e}") from None
        sig = inspect.signature(fn)
        ours = list(sig.parameters)
        call, unsupported = {}, []
        for k, (pname, v) in enumerate(bound.arguments.items()):
            if theirs.parameters[pname].kind is inspect.Parameter.VAR_KEYWORD:
                unsupported += list(v)
                continue
            mine = ours[0] if k == 0 else _ARG_NAMES.get((name, pname), pname)
            if mine in ours:
                call[mine] = v
            elif v is not theirs.parameters[pname].default and v is not None:
                unsupported.append(pname)
        if unsupported:
            raise ArgumentError(f"np.{func.__name__} on chainrule Vars takes no "
                                f"{', '.join(unsupported)} argument; cr.{name}{sig} is "
                                f"what it computes")
        if name == "clip":  # np.clip(v, max=1): the other bound is None
            call.setdefault("a_min", None)
            call.setdefault("a_max", None)
        missing = [p for p, q in sig.parameters.items()
                   if q.default is inspect.Parameter.empty and p not in call]
        if missing:  # np.where(c) (the indices where c holds): no twin
            raise ArgumentError(f"np.{func.__name__} on chainrule Vars needs "
                                f"{', '.join(missing)} too: cr.{name}{sig}")
        return fn(**call)


_put = object.__setattr__  # (no Var.__setattr__ check on the hot paths)
_FIXED = frozenset(("op", "inputs", "attrs", "shape", "dtype", "id"))

_UFUNC_NAMES = {"absolute": "abs", "true_divide": "divide"}  # NumPy's name -> cr's
# NumPy functions (not ufuncs) with a chainrule twin, NumPy's name -> cr's
_ARRAY_FUNCTIONS = {n: n for n in (
    "sum", "mean", "max", "min", "prod", "transpose", "reshape", "concatenate", "stack",
    "tensordot", "outer", "dot", "take", "clip", "where", "squeeze", "expand_dims",
    "broadcast_to")}
_ARRAY_FUNCTIONS.update(amax="max", amin="min")
_ARG_NAMES = {("clip", "min"): "a_min", ("clip", "max"): "a_max"}  # NumPy's -> cr's


def _numeric(v) -> bool:
    return isinstance(v, (int, float, complex, np.ndarray, np.generic, list, tuple))


def _no_equality(op: str) -> str:
    return (f"a chainrule Var {op} a value is not an elementwise comparison (Vars "
            f"compare by identity, as dict keys); use cr.equal(x, v) or "
            f"cr.not_equal(x, v)")


def make_node(op: Op, inputs, attrs=(), name=None) -> Var:
    """Build (or find) the node ``op(*inputs)`` with static ``attrs``.

    Runs the op's shape/dtype rule, which raises on a mismatch.
    """
    given = tuple(inputs)
    inputs = _canonical(op, given)
    key = (op.name, attrs, tuple([v.id for v in inputs]))
    own = _state.table
    if own is None:
        ref = _table.get(key)
        node = None if ref is None else ref()
    else:
        node = own.get(key)
    if node is not None:
        if name and node._name is None:
            _put(node, "_name", name)
        return node
    shape, dtype = op.infer(attrs, *given)  # errors name operands as the user wrote them
    node = Var(op, inputs, attrs, tuple(shape), np.dtype(dtype), name)
    _put(node, "skey", _structural_key(op, attrs, inputs))
    if own is None:
        _table[key] = _ref(node, _partial(_forget, key))
    else:
        own[key] = node
    return node


def _canonical(op: Op, inputs: tuple) -> tuple:
    """The operands in hash-consing order: a commutative op's two sorted
    (by structure, then creation id)."""
    if op.commutative and len(inputs) == 2 and \
            (inputs[0].skey, inputs[0].id) > (inputs[1].skey, inputs[1].id):
        return (inputs[1], inputs[0])
    return inputs


def node_key(op: Op, inputs, attrs=()) -> tuple:
    """The hash-consing key of ``op(*inputs)`` with ``attrs``."""
    return (op.name, attrs, tuple([v.id for v in _canonical(op, tuple(inputs))]))


def find_node(key: tuple):
    """The live node the users' table holds for ``key``, or None."""
    ref = _table.get(key)
    return None if ref is None else ref()


def make_constant(op: Op, value: np.ndarray, name=None) -> Var:
    value = np.array(value)  # a private, contiguous copy
    value.setflags(write=False)
    key = ("constant", value.dtype.str, value.shape, value.tobytes())
    node = _constants.get(key)
    if node is not None:
        if name and node._name is None:
            _put(node, "_name", name)
        return node
    node = Var(op, (), (), value.shape, value.dtype, name)
    _put(node, "skey", zlib.crc32(key[1].encode() + repr(key[2]).encode() + key[3]))
    _put(node, "_const", value)
    _constants[key] = node
    return node


def make_leaf(op: Op, shape, dtype, name, attrs=()) -> Var:
    """A node that is never merged with another (placeholder, parameter)."""
    node = Var(op, (), attrs, tuple(shape), np.dtype(dtype), name)
    # by name and type (placeholders of the same name then order by creation)
    _put(node, "skey", zlib.crc32(repr((op.name, name, node.shape, node.dtype.str)).encode()))
    return node


_MOD = (1 << 61) - 1
_base_keys: dict = {}


def _structural_key(op, attrs, inputs) -> int:
    """A hash of the node's structure that does not depend on object ids or
    on Python's per-process string hashing, so that the canonical order of
    commutative operands (and so the generated source) is the same in every
    run, whichever equal nodes the hash-consing table still held."""
    base = _base_keys.get((op.name, attrs))
    if base is None:
        base = _base_keys[(op.name, attrs)] = zlib.crc32(repr((op.name, attrs)).encode())
    k = base
    for i in inputs:
        k = (k * 0x9E3779B97F4A7C15 + i.skey + 1) % _MOD
    return k
