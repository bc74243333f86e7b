"""Buffer reuse for the generated code: which dead array an op may write
into with ``out=`` instead of allocating a new one.

A *buffer* is the memory of an array: made by one node, shared by the views
taken of it and by later results written into it (its *members*). It is dead
after step i once every member has had its last use; outputs and new
parameter values never die. Three reuses, all checked against that rule:

* an elementwise op writes into an operand that dies with it
  (``t3 = np.tanh(t2, out=t2)``);
* a new parameter value is written into the parameter's own state once
  nothing else reads the old value and no later statement may raise, so a
  call that fails changes no parameter (``W1 = W1 - lr * g`` in place);
* any op with an ``out=`` form writes into a dead buffer of its shape and
  dtype, kept (bound to its name) only while a later op could use it.

Placeholders and constants are never written: their memory is the caller's
or the program's.
"""

from __future__ import annotations

from bisect import bisect_right

from ..ops.base import fixed_at, unknown_axes
from ..ops.base import may_fail
from .program import MIN_ELEMENTS, known_size, nominal_size

# With unknown dims (a batch size, say) the size is known at run time only:
# an array whose known dims alone hold this many elements is taken to be
# worth writing into.
MIN_KNOWN_PART = 128

_NEVER = float("inf")


def _key(node):
    return (node.shape, node.dtype.str)


def capable(node) -> bool:
    """Can this node's op write into a given buffer, and is it worth it?"""
    if node.op.ufunc is None or node.ndim == 0:
        return False
    size = known_size(node)
    if size is None:
        return nominal_size(node, unknown=1) >= MIN_KNOWN_PART  # the known dims alone
    return size >= MIN_ELEMENTS


def _shape_checks(inp, node):
    """May elementwise ``node`` write into its operand ``inp``? [] when inp
    surely has the result's run-time shape, a list of the operands whose
    shape must equal inp's at run time (both may have an unknown dim that is
    1 in one of them), or None when it can't (a known larger size)."""
    if inp.shape != node.shape:
        return None
    unknown = unknown_axes(node)
    checks = []
    for o in node.inputs:
        if o is inp or fixed_at(o, unknown):
            continue  # cannot enlarge inp (no check at all: same_runtime_shape)
        if o.shape != inp.shape:
            return None
        checks.append(o)
    return checks


class BufferPlan:
    def __init__(self, order, keep_ids, updates, check_finite=False):
        self.last = {}
        self.uses = {}  # node id -> how many operand slots read it
        for i, node in enumerate(order):
            for inp in node.inputs:
                self.last[inp.id] = i
                self.uses[inp.id] = self.uses.get(inp.id, 0) + 1
        for k in keep_ids:
            self.last[k] = _NEVER
        self.buf = {}       # node id -> buffer key
        self.members = {}   # buffer key -> member node ids
        self.local = set()  # buffers made by this function
        self.holder = {}    # buffer key -> (node id, name) in full layout, or None
        self.shape = {}     # buffer key -> (shape, dtype)
        self.pool = {}      # (shape, dtype) -> dead buffer keys kept for reuse
        self.param_of = {v.id: p for p, v in updates}
        self.demand = {}    # (shape, dtype) -> positions of capable nodes
        self.position = {}  # node id -> its position in the order
        # a parameter's state is written only after the last statement that
        # may raise: a call that fails leaves every parameter as it was
        self.last_fallible = -1
        for i, node in enumerate(order):
            self.position[node.id] = i
            if may_fail(node, check_finite):
                self.last_fallible = i
            if capable(node):
                self.demand.setdefault(_key(node), []).append(i)

    def _dead_after(self, b, i) -> bool:
        return all(self.last.get(m, -1) <= i for m in self.members[b])

    def choose(self, node, i):
        """``(buffer, name)`` that node i should write into, or None. After
        it, ``checks`` lists the operands whose run-time shape must equal
        the buffer's for the write (unknown dims that may broadcast): the
        code writes into the buffer only when they do."""
        self.checks = []
        if not capable(node):
            return None
        k = _key(node)
        target = self.param_target(node, i)
        if target is not None:
            return target
        if node.op.elementwise:
            for inp in node.inputs:
                b = self.buf.get(inp.id)
                h = self.holder.get(b)
                if b in self.local and h is not None and h[0] == inp.id \
                        and self.shape[b] == k and self._dead_after(b, i):
                    checks = _shape_checks(inp, node)
                    if checks is not None:
                        self.checks = checks
                        return b, h[1]
        free = self.pool.get(k)
        if free:
            b = free.pop()
            return b, self.holder[b][1]
        return None

    def param_target(self, node, i):
        """``(buffer, name)`` of the parameter whose new value node i is, if
        it can be written into the parameter's own state at step i (nothing
        reads the old value later, and neither this statement nor a later
        one may raise: NumPy's integer power raises part-way through its
        ``out=``, and ``check_finite`` tests a result after writing it),
        else None."""
        p = self.param_of.get(node.id)
        if p is not None and i > self.last_fallible and capable(node) \
                and any(x is p for x in node.inputs) \
                and self.shape.get(p.id) == _key(node) and self.buf.get(p.id) == p.id \
                and self._dead_after(p.id, i):
            return p.id, self.holder[p.id][1]
        return None

    def record(self, node, name, written=None):
        """Register node's result: written into ``written`` (a buffer key), a
        view of its first operand, or a new buffer. Returns the names to
        delete now: a pooled buffer's previous holder, and pooled buffers
        that no later op will need any more."""
        if written is not None:
            b = written
            prev = self.holder[b]
            self.members[b].append(node.id)
            self.buf[node.id] = b
            self.holder[b] = (node.id, name)
            was_pooled = prev is not None and self.last.get(prev[0], -1) < self._step
            stale = [prev[1]] if (was_pooled and b in self.local and prev[1] != name) else []
            return stale + self._surplus(self.shape[b])
        if node.op.aliases and node.inputs and node.inputs[0].id in self.buf:
            b = self.buf[node.inputs[0].id]
            self.members[b].append(node.id)
            self.buf[node.id] = b
            return []
        b = node.id
        self.buf[b] = b
        self.members[b] = [b]
        self.holder[b] = (b, name)
        self.shape[b] = _key(node)
        if not node.is_leaf:
            self.local.add(b)
        return self._surplus(self.shape[b]) if capable(node) else []

    def _surplus(self, k) -> list:
        """Names of pooled buffers of shape and dtype ``k`` beyond what the
        ops after this step can still use: one was kept for an op that wrote
        into its own dying operand instead (or made a new array), and would
        otherwise stay bound, and count in the peak, until the end."""
        free = self.pool.get(k)
        if not free:
            return []
        positions = self.demand.get(k, ())
        future = len(positions) - bisect_right(positions, self._step)
        names = []
        while len(free) > future:
            b = free.pop(0)
            names.append(self.holder[b][1])
            self.holder[b] = None
        return names

    def sole_use(self, node) -> bool:
        """Is node read by exactly one operand slot, and not kept (an output
        or a new parameter value)?"""
        return self.uses.get(node.id) == 1 and self.last[node.id] != _NEVER

    def forget_demand(self, *nodes):
        """These nodes will be emitted without a buffer of their own (fused
        into another statement): do not keep dead buffers for them."""
        for node in nodes:
            positions = self.demand.get(_key(node))
            if positions and node.id in self.position:
                i = self.position[node.id]
                k = bisect_right(positions, i) - 1
                if k >= 0 and positions[k] == i:
                    del positions[k]

    def at(self, i):
        self._step = i

    def keep_bound(self, node_id, i) -> bool:
        """node_id has its last use at step i: keep its name bound (its buffer
        goes to the pool) instead of deleting it?"""
        b = self.buf.get(node_id)
        h = self.holder.get(b)
        if b not in self.local or h is None or h[0] != node_id:
            return False
        if not self._dead_after(b, i):
            self.holder[b] = None  # a view outlives it: no name in full layout
            return False
        k = self.shape[b]
        if k[0] == () or any(d is None for d in k[0]):
            return False
        positions = self.demand.get(k, ())
        future = len(positions) - bisect_right(positions, i)
        if future <= len(self.pool.get(k, ())):
            return False
        self.pool.setdefault(k, []).append(b)
        return True
