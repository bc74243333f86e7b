"""Human-readable views of a graph: ``pprint`` (infix math) and
``debugprint`` (one line per node)."""

from __future__ import annotations

import itertools

import numpy as np

from .ir import flatten, topo_order
from .ops.base import fmt_shape

_INFIX = {"add": ("+", 1), "subtract": ("-", 1), "multiply": ("*", 2),
          "divide": ("/", 2), "matmul": ("@", 2), "power": ("**", 4),
          "less": ("<", 0), "less_equal": ("<=", 0), "greater": (">", 0),
          "greater_equal": (">=", 0), "equal": ("==", 0), "not_equal": ("!=", 0)}
_ATOM = 9
_SHARE_LONGER_THAN = 40
# a subexpression longer than this is named even when used once: a deep
# chain printed inline would copy its ever longer text at every level
# (quadratic: 40 s for 50,000 ops), and nobody reads a 100 kB line
_SPLIT_LONGER_THAN = 400


def _const_text(v):
    c = v._const
    if c.size == 1 and c.ndim == 0:
        x = c.item()
        if isinstance(x, float) and not np.isfinite(x):
            return "nan" if np.isnan(x) else ("inf" if x > 0 else "-inf")
        return repr(x)
    if c.size <= 6:
        return np.array2string(c, separator=", ")
    return v.name or f"const{fmt_shape(c.shape)}"


def _attrs_text(node):
    name = node.op.name
    if name in ("sum", "mean", "max", "min", "prod", "logsumexp"):
        axes, keepdims = node.attrs
        text = "" if len(axes) == len(node.inputs[0].shape) else f", axis={axes}"
        return text + (", keepdims=True" if keepdims else "")
    if name in ("softmax", "log_softmax"):
        return f", axis={node.attrs[0]}"
    if name == "cast":
        return f", {np.dtype(node.attrs[0]).name}"
    if name in ("reshape", "broadcast_to"):
        return f", {fmt_shape(node.attrs[0])}"
    if name in ("transpose", "expand_dims", "squeeze", "concatenate", "take"):
        return f", {node.attrs[0]}"
    if name == "tensordot":
        return f", axes=({list(node.attrs[0])}, {list(node.attrs[1])})"
    if name == "getitem":
        from .ops.shape import _index_text
        return f", [{_index_text(node.attrs[0])}]"
    return ""


def _fresh_label(name, k, taken, seen):
    """A name for a shared subexpression: its own name (else name_2, ...),
    or t<k> (t<k+1>, ...), unique among the labels ``seen`` so far and, but
    for its own name, every name ``taken`` in the graph."""
    if name:
        candidates = itertools.chain([name], (f"{name}_{j}" for j in itertools.count(2)))
    else:
        candidates = (f"t{j}" for j in itertools.count(k))
    label = next(c for c in candidates if c not in seen and (c == name or c not in taken))
    seen.add(label)
    return label


def pprint(var) -> str:
    """An infix math string for ``var``; subexpressions used several times
    that are long are named once (``t1 = ...``) and referred to by name.

    >>> import chainrule as cr
    >>> x, y = cr.placeholder("x"), cr.placeholder("y")
    >>> cr.pprint((x + y) * cr.exp(x))
    '(x + y) * exp(x)'
    """
    outs, _ = flatten(var, "var")
    order = topo_order(outs)
    users = {}
    for n in order:
        for i in n.inputs:
            users[i.id] = users.get(i.id, 0) + 1
    # text and Python precedence of each node's text; the text
    # reads back as the graph in Python: ** is right-associative and binds
    # tighter than a unary minus on its left (-2.0 ** x is -(2.0 ** x)),
    # comparisons chain, and * and @ share a level
    text, prec, lets = {}, {}, []
    taken = {n.name for n in order if n.name}  # labels must not shadow a name
    seen_labels = {n.name for n in order if not n.inputs and n.name}  # leaves' names
    for n in order:
        name = n.op.name
        if name == "placeholder" or name == "parameter":
            s, p = n.name, _ATOM
        elif name == "constant":
            s = _const_text(n)
            p = 3 if s.startswith("-") else _ATOM  # a negative literal is a unary minus
        elif name == "negative":
            a = n.inputs[0]
            s, p = "-" + (text[a.id] if prec[a.id] > 3 else f"({text[a.id]})"), 3
        elif name in _INFIX:
            sym, p = _INFIX[name]
            a, b = n.inputs
            left_ok = prec[a.id] > p if name == "power" or p == 0 else prec[a.id] >= p
            left = text[a.id] if left_ok else f"({text[a.id]})"
            # a right operand of the same level is bracketed, a + (b + c) too:
            # floats do not reassociate (1e300 * (1e-300 * x) is not (...) * x)
            right_ok = prec[b.id] >= 3 if name == "power" else prec[b.id] > p
            right = text[b.id] if right_ok else f"({text[b.id]})"
            s = f"{left} {sym} {right}"
        elif name == "getitem":
            a = n.inputs[0]
            from .ops.shape import _index_text
            base = text[a.id] if prec[a.id] >= _ATOM else f"({text[a.id]})"
            s, p = f"{base}[{_index_text(n.attrs[0])}]", _ATOM
        elif name == "transpose" and n.attrs[0] == tuple(range(n.ndim))[::-1]:
            a = n.inputs[0]
            base = text[a.id] if prec[a.id] >= _ATOM else f"({text[a.id]})"
            s, p = f"{base}.T", _ATOM
        else:
            args = ", ".join(text[i.id] for i in n.inputs)
            s, p = f"{name}({args}{_attrs_text(n)})", _ATOM
        if n.inputs and (len(s) > _SPLIT_LONGER_THAN or (
                users.get(n.id, 0) > 1 and len(s) > _SHARE_LONGER_THAN)):
            label = _fresh_label(n.name, len(lets) + 1, taken, seen_labels)
            lets.append(f"{label} = {s}")
            s, p = label, _ATOM
        text[n.id], prec[n.id] = s, p
    body = ", ".join(text[o.id] for o in outs)
    return "; ".join(lets + [body]) if lets else body


def debugprint(outputs) -> str:
    """One line per node, inputs first: id, op, shape, dtype, name, inputs.

    >>> import chainrule as cr
    >>> x = cr.placeholder("x", (3,))
    >>> print(cr.debugprint(cr.exp(x)))  # doctest: +ELLIPSIS
    %0 placeholder (3,) float64 'x'
    %1 exp (3,) float64 <- %0
    """
    outs, _ = flatten(outputs, "outputs")
    order = topo_order(outs)
    local = {n.id: k for k, n in enumerate(order)}
    out_ids = {o.id for o in outs}
    lines = []
    for n in order:
        parts = [f"%{local[n.id]}", n.op.name, fmt_shape(n.shape), str(n.dtype)]
        if n.name:
            parts.append(repr(n.name))
        if n.op.name == "constant":
            parts.append("= " + _const_text(n))
        extra = _attrs_text(n).lstrip(", ")
        if extra:
            parts.append(f"[{extra}]")
        if n.inputs:
            parts.append("<- " + ", ".join(f"%{local[i.id]}" for i in n.inputs))
        if n.id in out_ids and len(outs) > 1:
            parts.append("(output)")
        lines.append(" ".join(parts))
    return "\n".join(lines)
