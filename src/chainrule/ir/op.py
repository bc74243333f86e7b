"""What an op is: one declaration holding everything about it.

An :class:`Op` bundles

* ``infer(attrs, *input_vars) -> (shape, dtype)``: the shape/dtype rule, run
  when a node is built; it raises ShapeError/DTypeError naming the operands;
* ``impl(attrs, *arrays) -> array``: the NumPy implementation used by the
  interpreter and by constant folding;
* ``vjp(out, g, needs) -> list[Var | None]``: the reverse rule, written in
  graph ops. ``out`` is the node itself (its ``inputs`` and ``attrs`` are
  there, and its value can be reused), ``g`` the cotangent, ``needs[i]``
  says whether input i wants one; ``None`` means a symbolic zero;
* ``jvp(out, tangents) -> Var | None``: the forward rule; ``tangents``
  holds one Var or ``None`` (a symbolic zero) per input;
* ``emit(attrs, *arg_exprs) -> str``: a Python expression for the code
  generator, written against the array namespace ``np``; an op whose best
  code depends on its operands' shapes or dtypes declares
  ``emit_node(node, *arg_exprs, const)`` instead, given the node itself
  (``const(array)`` returns the name of a module-level constant holding
  ``array``, for a lowering that needs one);
* ``scalar(attrs, *elem_exprs) -> str`` (elementwise ops, optional): one
  element of the result from its operands' elements, for the loops of fused
  kernels (``fuse="numba"``); ``accumulate(acc, elem) -> str`` (reductions,
  optional) adds one element into a running result that starts at
  ``identity``.

Ops are registered by name, so a graph serialises as op names plus
attributes. Adding an op touches only the module that declares it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

NOT_DIFFERENTIABLE = "not differentiable"


@dataclass(eq=False)
class Op:
    name: str
    infer: Callable[..., Any]
    impl: Callable[..., Any]
    vjp: Callable[..., Any] | str
    jvp: Callable[..., Any] | str
    emit: Callable[..., str]
    commutative: bool = False
    elementwise: bool = False
    # Cost estimate ``flops(node) -> float`` (used by the jacobian mode choice).
    flops: Callable[..., float] | None = None
    # Batching rule (vmap): ``batch(out, args, batched) -> Var`` applies the op
    # to ``args`` where ``batched[i]`` says args[i] carries an extra leading
    # axis; returns the batched result. Elementwise ops need none (a generic
    # rule covers them); jacobian/hessian use it to push many seeds at once.
    batch: Callable[..., Any] | None = None
    # Code-generator facts: ``ufunc`` names a NumPy function that takes the
    # inputs positionally and an ``out=`` buffer (so a dead buffer can be
    # reused); ``aliases`` says the result may be a view of input 0.
    ufunc: str | None = None
    aliases: bool = False
    # Helper functions the emitted code calls, as {name: python source};
    # the code generator pastes each one used into the generated module.
    helpers: dict = field(default_factory=dict)
    # Can the op raise at run time on some input values even when every
    # shape is known (an index out of range, an integer to a negative power)?
    # A bool or ``may_raise(node) -> bool``. The code generator writes a
    # parameter's new value into its state only after the last statement
    # that may raise, so a failed call leaves every parameter unchanged.
    may_raise: bool | Callable[..., bool] = False
    # Optional ``emit_node(node, *arg_exprs, const) -> str``: when set, the
    # code generator calls it instead of ``emit`` (it may read shapes and
    # dtypes; ``const(array) -> name`` hoists a constant it needs).
    emit_node: Callable[..., str] | None = None
    # Optional fused-loop templates (see the module docstring): an
    # elementwise op's ``scalar(attrs, *elem_exprs)``, computing one element
    # in the operands' dtype with IEEE operations NumPy's loop also does (so
    # a fused kernel gives NumPy's numbers bit for bit); a reduction's
    # ``accumulate(acc, elem)`` and the ``identity`` its running value
    # starts from.
    scalar: Callable[..., str] | None = None
    accumulate: Callable[..., str] | None = None
    identity: float | None = None
    # Helpers to paste instead of ``helpers`` when the code is compiled with
    # fuse="numba": the same names and calls, free to run Numba loops
    # (``@numba.njit``) where they apply.
    loop_helpers: dict = field(default_factory=dict)
    # ... and instead of those when it is compiled with vecmath="libmvec"
    # too: free to call glibc's vector functions (``libmvec.exp(src, dst)``
    # over two 1-D contiguous arrays of one float dtype).
    vector_helpers: dict = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"Op({self.name})"

    @property
    def differentiable(self) -> bool:
        return self.vjp is not NOT_DIFFERENTIABLE


REGISTRY: dict[str, Op] = {}


def register(op: Op) -> Op:
    if op.name in REGISTRY:
        raise ValueError(f"op {op.name!r} is declared twice")
    if op.vjp is None or op.jvp is None:
        raise ValueError(
            f"op {op.name!r} must declare both a VJP and a JVP rule "
            f"(use NOT_DIFFERENTIABLE for ops without a derivative)"
        )
    REGISTRY[op.name] = op
    return op


def get_op(name: str) -> Op:
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown op {name!r}") from None
