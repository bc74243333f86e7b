"""Collecting like terms: elementwise arithmetic as polynomials.

Nested derivatives are sums of products of a few atoms (``tanh(x)``,
``sin(x)``, ``exp(x)``, ``1 / (1 + x**2)``...). Repeated ``grad`` writes
them with ever more repetition; rewriting each maximal tree of ``+ - * /
square, integer power`` as a polynomial over its atoms (coefficient times a
product of atom powers), merging equal monomials, and printing it back keeps
the k-th derivative polynomial in k instead of exponential. A sum that is
divided by stays one atom, also where it multiplies (``d * x / d**3`` is
``x / d**2`` with ``d = 1 + x**2``), so derivatives of an already collected
graph stay small too.

Safety (never hide a NaN or inf the unrewritten graph produces):
- a monomial whose coefficient cancels to zero is dropped only if every atom
  in it is known finite (and every divisor non-zero); otherwise it stays as
  ``0 * m``, NaN where m is inf or NaN (as ``x - x`` is);
- a monomial summed from terms of opposite signs (``m - 2 * m -> -m``) keeps
  a ``0 * m`` guard unless it can never be inf;
- atom powers cancel (``f / f``, ``f / f**2 -> 1 / f``) freely for atoms
  known finite and positive; for an atom that is never 0 but may be inf
  (``1 + x**2``) with a guard ``0 * x`` over the inputs it is a total
  function of (``0 * f`` itself otherwise): inf / inf is NaN;
- multiplying a sum out is exact except where a factor is inf: (0 + 1) * inf
  is inf, 0 * inf + 1 * inf is NaN. That is accepted (an inf may become
  NaN; a NaN or a finite value never changes kind): refusing it would forbid
  the expansions that keep nested derivatives small.
The pass is kept only when it makes the graph smaller (``optimize``
compares node counts).
"""

from __future__ import annotations

import numpy as np

from .. import ops
from ..ir import make_node, topo_order
from ..ops.base import constant_var, same_runtime_shape
from .facts import (all_fit, inf_sources, known_finite, known_nonzero, known_positive,
                    never_inf)

ARITH = {"add", "subtract", "negative", "multiply", "divide", "square", "power"}
MAX_TERMS = 24        # a form larger than this stays an atom for its users
# A form used by several nodes is inlined into each user only when it is over
# few atoms (derivatives of one function of x: yes; a long chain: no), so the
# pass stays linear in the graph size.
SHARED_ATOMS = 3
MAX_PRODUCT = 64      # cap on the terms of a product before giving up
MAX_POWER = 8
class _Poly:
    """{monomial: coefficient}; a monomial is a sorted tuple of
    (atom id, power). The empty monomial is the constant term.

    ``mixed`` holds the monomials whose coefficient was summed from terms of
    opposite signs (or multiplied by a literal 0): ``m - 2 * m`` is NaN for
    m = inf where ``-m`` is not, so printing such a monomial may need a
    ``0 * m`` guard (see ``_terms``)."""

    __slots__ = ("terms", "mixed", "guards", "_n_atoms")

    def __init__(self, terms, mixed=frozenset(), guards=frozenset()):
        self.terms = terms
        self.mixed = mixed
        self.guards = guards  # atoms cancelled (f / f) that may be inf
        self._n_atoms = None

    @staticmethod
    def const(c):
        # a zero stays as a term, so x * 0 shows up as a cancelled monomial
        # and is dropped only when that cannot hide a NaN
        return _Poly({(): c}, frozenset([()]) if c == 0 else frozenset())

    @staticmethod
    def atom(aid):
        return _Poly({((aid, 1),): 1})

    def __len__(self):
        return len(self.terms)

    def n_atoms(self):
        if self._n_atoms is None:  # forms are never changed once built
            self._n_atoms = len({a for m in self.terms for a, _ in m})
        return self._n_atoms

    def add(self, other, sign=1):
        out = dict(self.terms)
        mixed = set(self.mixed | other.mixed)
        for m, c in other.terms.items():
            old = out.get(m, 0)
            if old * sign * c < 0:
                mixed.add(m)
            out[m] = old + sign * c
        return _Poly(out, frozenset(mixed), self.guards | other.guards)

    def scale(self, k):
        mixed = frozenset(self.terms) if k == 0 else self.mixed
        return _Poly({m: c * k for m, c in self.terms.items()}, mixed, self.guards)

    def mul(self, other, positive):
        for a, b in ((self, other), (other, self)):
            if len(b.terms) == 1 and () in b.terms and not b.mixed:  # times a constant
                return a.scale(b.terms[()])
        if len(self) * len(other) > MAX_PRODUCT:
            return None
        out = {}
        mixed = set()
        guards = set(self.guards | other.guards)
        for m1, c1 in self.terms.items():
            for m2, c2 in other.terms.items():
                m = _mono_mul(m1, m2, positive, guards)
                if m is None:
                    return None
                old, c = out.get(m, 0), c1 * c2
                if c == 0 or old * c < 0 or m1 in self.mixed or m2 in other.mixed:
                    mixed.add(m)
                out[m] = old + c
        return _Poly(out, frozenset(mixed), frozenset(guards))


def _mono_mul(m1, m2, positive, guards):
    powers = dict(m1)
    for a, p in m2:
        old = powers.get(a, 0)
        q = old + p
        if old * p < 0:
            # f * f**-2 -> f**-1 would hide f == 0 or inf (0/0, inf/inf):
            # only for f finite and positive, or never 0 with a 0 * f guard
            kind = positive(a)
            if not kind:
                return None
            if kind == "guard":
                guards.add(a)
        if q == 0:
            del powers[a]
        else:
            powers[a] = q
    return tuple(sorted(powers.items()))


def _scalar_const(v):
    if v.op.name == "constant" and v.ndim == 0:
        x = v._const.item()
        if isinstance(x, float) and not np.isfinite(x):
            return None
        return x
    return None


def _coeff(x):
    return float(x)


def collect(outputs):
    """Rewrite every maximal elementwise-arithmetic tree as a collected
    polynomial over its atoms; returns the new outputs.

    A first, dry run over the original nodes counts how many terms would
    merge; with none, nothing can shrink and the outputs come back as they
    are (so a long chain pays one cheap sweep)."""
    order = topo_order(outputs)
    if not _collect(order, outputs, dry=True):
        return list(outputs)
    return _collect(order, outputs, dry=False)


def _collect(order, outputs, dry):
    users = {}
    divisors = set()    # ids of the nodes that some node divides by
    for n in order:
        for i in n.inputs:
            users[i.id] = users.get(i.id, 0) + 1
        if n.op.name == "divide":
            split = _factors(n.inputs[1])
            if split is not None:
                divisors.update(v.id for v, _ in split[1])
    atoms = {}          # atom id -> Var (rebuilt)
    positive_cache = {}
    forms = {}          # node id -> _Poly or None (not representable)
    rebuilt = {}        # node id -> rebuilt Var

    def positive(aid):
        if aid not in positive_cache:
            atom = atoms[aid]
            positive_cache[aid] = (known_positive(atom) and known_finite(atom)) or (
                known_nonzero(atom) and "guard")
        return positive_cache[aid]

    def as_atom(v):
        atoms[v.id] = v
        return _Poly.atom(v.id)

    def operand(i, root):
        """The form of input ``i`` as seen from ``root``."""
        if i._const is not None:
            c = _scalar_const(i)
            if c is not None:
                return _Poly.const(_coeff(c))
        f = forms.get(i.id)
        if f is not None and len(f) <= MAX_TERMS and i.dtype == root.dtype and (
                users.get(i.id, 0) <= 1 or f.n_atoms() <= SHARED_ATOMS) and (
                len(f) == 1 or i.id not in divisors):
            return f
        atom = get(i)
        if i.dtype != root.dtype:
            # NumPy converts an int, bool or narrower float operand to root's
            # float dtype first; the printed products and powers of the atom
            # must be computed there too (square(u) wraps in uint8)
            atom = ops.cast(atom, root.dtype)
        return as_atom(atom)

    merges = [0]

    def get(v):
        """The rebuilt Var of an original node, printing its form on demand."""
        if dry:
            return v
        r = rebuilt.get(v.id)
        if r is None:
            r = _print(_terms(forms[v.id], atoms), atoms, v)
            if r is None:  # not printable in v's shape: keep v's own op
                r = make_node(v.op, tuple(get(i) for i in v.inputs), v.attrs, v.name)
            rebuilt[v.id] = r
            if v.name and r.name is None and not r.is_leaf:
                r.name = v.name
        return r

    def invert(p, node):
        """1 / p, p the form of ``node``: exact for a single monomial;
        otherwise ``node`` is split into its factors (a * b, square(a),
        a ** k, a / b, -a), each inverted alone, so that 1 / (d * d**2) is
        d**-3 with the sum d kept whole as one atom."""
        inv = _invert(p, node, as_atom, get)
        if inv is None or len(p) == 1 and not p.mixed and not p.guards:
            return inv
        split = _factors(node)
        if split is None:
            return inv
        sign, factors = split
        out = _Poly.const(float(sign))
        for v, e in factors:
            f = _invert(operand(v, node), v, as_atom, get)
            if f is None:
                return inv
            if e < 0:  # a factor of the denominator's numerator
                f, e = operand(v, node), -e
            for _ in range(e):
                out = out.mul(f, positive)
                if out is None:
                    return inv
        return out

    def form_of(n):
        """n's form, or None if it has none or a merged coefficient would not
        survive in n's dtype (1e308 * x + 1e308 * x is not x * inf)."""
        out = raw_form(n)
        if out is not None and not all_fit(out.terms.values(), n.dtype):
            return None
        return out

    def raw_form(n):
        name = n.op.name
        if name not in ARITH or n.dtype.kind != "f":
            return None
        if None in n.shape and not all(same_runtime_shape(i, n) for i in n.inputs
                                       if i.shape == n.shape):
            return None  # (x + k) - k is not x when k broadcasts x at run time
        xs = [operand(i, n) for i in n.inputs]
        if name in ("add", "subtract"):
            out = xs[0].add(xs[1], 1 if name == "add" else -1)
            merges[0] += len(xs[0]) + len(xs[1]) - len(out)
            return out
        if name == "negative":
            return xs[0].scale(-1)
        if name in ("multiply", "square"):
            other = xs[1] if name == "multiply" else xs[0]
            out = xs[0].mul(other, positive)
            if out is not None:
                merges[0] += len(xs[0]) * len(other) - len(out)
            return out
        if name == "divide":
            inv = invert(xs[1], n.inputs[1])
            return None if inv is None else xs[0].mul(inv, positive)
        if name == "power":
            k = _scalar_const(n.inputs[1])
            if k is None or k != int(k) or abs(k) > MAX_POWER:
                return None
            k = int(k)
            base = xs[0]
            if k < 0:
                base = invert(base, n.inputs[0])
                if base is None:
                    return None
                k = -k
            out = _Poly.const(1)
            for _ in range(k):
                out = out.mul(base, positive)
                if out is None:
                    return None
            return out
        return None

    for n in order:
        if not n.inputs:
            rebuilt[n.id] = n
            continue
        f = form_of(n)
        if f is not None:
            forms[n.id] = f
        elif not dry:
            ins = tuple(get(i) for i in n.inputs)
            same = all(a is b for a, b in zip(ins, n.inputs))
            rebuilt[n.id] = n if same else make_node(n.op, ins, n.attrs, n.name)
    if dry:
        return merges[0] > 0
    return [get(o) for o in outputs]


def _invert(p, node, as_atom, get):
    """1 / p: exact for a single monomial; otherwise the (printed)
    denominator becomes an atom with power -1."""
    if len(p) == 0:
        return None
    if len(p) == 1 and not p.mixed and not p.guards:
        (m, c), = p.terms.items()
        if c == 0:
            return None  # x / 0 stays a division (inf or NaN at run time)
        return _Poly({tuple((a, -e) for a, e in m): 1.0 / c})
    # (a guard 0 * m of a mixed monomial must stay in the denominator)
    (m, _), = as_atom(get(node)).terms.items()
    return _Poly({tuple((a, -e) for a, e in m): 1})


def _factors(node, limit=2 * MAX_POWER):
    """``node`` as ``sign * prod(v ** e)`` over factors v that are not
    products themselves: [(v, e)] with integer e, or None if too long."""
    sign, out, stack = 1, [], [(node, 1)]
    while stack:
        v, e = stack.pop()
        name = v.op.name
        k = _scalar_const(v.inputs[1]) if name == "power" else None
        if v.dtype.kind != "f" or name not in ARITH or name in ("add", "subtract"):
            out.append((v, e))
        elif name == "multiply":
            stack += [(v.inputs[0], e), (v.inputs[1], e)]
        elif name == "square":
            stack.append((v.inputs[0], 2 * e))
        elif name == "divide":
            stack += [(v.inputs[0], e), (v.inputs[1], -e)]
        elif name == "negative":
            sign = -sign if e % 2 else sign
            stack.append((v.inputs[0], e))
        elif k is not None and k == int(k) and abs(k * e) <= MAX_POWER:
            stack.append((v.inputs[0], int(k) * e))
        else:
            out.append((v, e))
        if len(out) + len(stack) > limit:
            return None
    return sign, out


def _terms(f, atoms):
    """The (monomial, coefficient) pairs to print. A monomial whose
    coefficient cancelled to zero is dropped only when all its atoms are
    known finite; a mixed monomial (see ``_Poly``) that may be inf gets a
    ``0 * m`` guard term: either way a NaN or inf in it still turns the
    result into NaN as the unrewritten graph would (``x - x`` and
    ``x - 2 * x`` are NaN for x = inf)."""
    out = []
    for m, c in f.terms.items():
        if c != 0:
            out.append((m, c))
        if m in f.mixed or c == 0:
            # a divisor must be finite and non-zero (0 * (1 / b) is NaN at b = 0)
            finite = known_finite if c == 0 else never_inf
            safe = all(finite(atoms[a]) if e > 0 else known_finite(atoms[a])
                       and known_positive(atoms[a]) for a, e in m)
            if not safe:
                out.append((m, 0.0))
    # f / f -> 1 for an f that is never 0 but may be inf: a guard keeps the
    # NaN of inf / inf. 0 * x over the inputs x that f is a total function of
    # is NaN just where f may be a genuine inf (and 0 where f overflows);
    # without such inputs, 0 * f itself.
    guards = {}
    for a in sorted(f.guards):
        sources = inf_sources(atoms[a])
        for g in ([atoms[a]] if sources is None else sources):
            atoms.setdefault(g.id, g)
            guards[g.id] = (((g.id, 1),), 0.0)
    return out + list(guards.values())


def _const(value, dtype):
    return constant_var(np.asarray(float(value), dtype=dtype))


def _power(v, k, dtype):
    if k == 1:
        return v
    if k == 2:
        return ops.square(v)
    if k == 3:
        return ops.multiply(v, ops.square(v))
    if k == 4:
        return ops.square(ops.square(v))
    return ops.power(v, _const(k, dtype))


def _print(terms, atoms, like):
    """Build the graph of a polynomial (a list of (monomial, coefficient)),
    shaped and typed like ``like``; None if that shape has an unknown dim
    the printed terms do not carry."""
    dtype = like.dtype
    pos, neg = [], []
    for m, c in sorted(terms, key=lambda t: (sum(abs(e) for _, e in t[0]), t[0], -abs(t[1]))):
        num = [_power(atoms[a], e, dtype) for a, e in m if e > 0]
        den = [_power(atoms[a], -e, dtype) for a, e in m if e < 0]
        mag = abs(c)
        term = None
        for x in num:
            term = x if term is None else ops.multiply(term, x)
        if term is None or mag != 1:
            k = _const(mag, dtype)
            term = k if term is None else ops.multiply(k, term)
        for x in den:
            term = ops.divide(term, x)
        (neg if c < 0 else pos).append(term)
    if not pos and not neg:
        out = _const(0, dtype)
    elif pos:
        out = pos[0]
        for t in pos[1:]:
            out = ops.add(out, t)
        for t in neg:
            out = ops.subtract(out, t)
    else:
        out = neg[0]
        for t in neg[1:]:
            out = ops.add(out, t)
        out = ops.negative(out)
    if out.shape != like.shape:
        if None in like.shape:
            return None  # the terms left lost the unknown dim
        out = ops.broadcast_to(out, like.shape)
    if out.dtype != dtype:
        out = ops.cast(out, dtype)
    return out
