"""Fused loops (opt-in: ``cr.function(..., fuse="numba")``).

NumPy makes one pass over memory per op, and each call costs about a
microsecond however small its arrays: ``(1 - h * h) * g`` then its column
sums take four passes, three temporaries and four calls. With
``fuse="numba"`` the code generator groups such chains (elementwise ops of
one shape, and sums of them over one axis) into one loop, written out as a
Python function in the generated module and compiled by Numba:

    @numba.njit(error_model="numpy")
    def _fused1(t3, t19):
        _o1 = np.empty((128, 256), np.float32)
        ...
        for _i in range(128):
            for _j in range(256):
                _a1 = t3[_i, _j]
                _e1 = _a1 * _a1
                ...

What fuses is declared by the ops themselves: an elementwise op's
``scalar`` template (one element from its operands' elements) and a
reduction's ``accumulate``/``identity``. The elementwise templates are IEEE
operations NumPy's loops do too (``+ - * /``, negation, square,
``math.sqrt``, which Numba computes in the operand's float type), so a
fused value is NumPy's bit for bit (but for the sign bit of a NaN, which
IEEE arithmetic leaves open: LLVM may compute -(a * b) as (-a) * b); a
fused sum adds in plain order, so its last bits may differ from NumPy's
pairwise sum. Transcendental functions do
not fuse: Numba would call the C library once per element, where NumPy runs
vectorised code; but with ``vecmath="libmvec"`` too, those libmvec has
(:func:`vector_function`) join the loops as calls of its vector function
over a row buffer (:func:`_staged_body`). An op may also declare
``loop_helpers``, Numba versions of its helpers used with fusion (softmax
and log-softmax over the rows of a matrix: one loop instead of six NumPy
calls), and ``vector_helpers`` for when libmvec's functions are there too.

Only float32 and float64 arrays of one or two dimensions fuse; an operand
may broadcast (a bias row, a column, a 0-d value). A dim known at run time
only (a batch of ``None``) is the loop's bound, read from an operand; when
the operands' sizes there differ at run time (one is 1: NumPy broadcasts
it), the group runs as NumPy code instead (:func:`guard`). A group is emitted where its last member was, so it must not
be read before: the first statement outside a group that reads one of its
values closes it. Fused kernels never warn on floating-point errors (NumPy
does, for an overflow or 0/0); ``check_finite`` turns fusion off.
"""

from __future__ import annotations

import types

import numpy as np

from ..errors import ChainruleError
from ..ops.base import dtype_expr
from . import vecmath
from .program import consumers, nominal_size, place_operands

FUSE_CHOICES = (None, "numba")
MAX_NODES = 48  # per loop: Numba's compile time grows with the loop body
# per function: Numba compiles a loop in ~0.1 s, so a graph of thousands of
# small groups keeps the largest ones (by nodes saved times elements)
MAX_LOOPS = 64
_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
# elements per block of a loop calling libmvec's functions (whole rows of a
# matrix, at least one): a few such buffers fit the first-level cache
BLOCK = 512


def check_choice(fuse):
    if fuse not in FUSE_CHOICES:
        raise ChainruleError(f"function: fuse={fuse!r} is not a choice; use None "
                             f"(NumPy only) or 'numba'")


def check_available(fuse):
    """Raise a clear error when ``fuse`` asks for Numba and it is missing."""
    check_choice(fuse)
    if fuse is None:
        return
    try:
        import numba
    except ImportError as exc:
        raise ChainruleError(
            f"function: fuse='numba' needs Numba, which could not be imported ({exc}); "
            f"`pip install numba` (or `pip install chainrule[fuse]`), or leave "
            f"fuse=None") from exc
    if numba.config.DISABLE_JIT:
        raise ChainruleError("function: fuse='numba' cannot run: NUMBA_DISABLE_JIT is "
                             "set, so Numba compiles nothing; leave fuse=None")


class Group:
    """Nodes computed by one fused loop over ``shape``."""

    def __init__(self, gid, shape, dtype):
        self.gid, self.shape, self.dtype = gid, shape, dtype
        self.nodes = []          # members and reductions, in program order
        self.reductions = set()  # ids of the reductions among them
        self.ids = set()
        self.open = True
        self.anchor = -1         # position of the last node: where the loop runs
        self.externals = []      # operands read from outside, in first-use order
        self.outputs = []        # nodes whose arrays the loop returns

    def add(self, node, pos, reduction=False):
        self.nodes.append(node)
        self.ids.add(node.id)
        if reduction:
            self.reductions.add(node.id)
        self.anchor = pos


class _LoopOp:
    """What the code generator and the buffer plan ask of a step's op."""
    name = "fused_loop"
    ufunc = None
    aliases = False
    elementwise = False
    may_raise = False
    helpers = types.MappingProxyType({})


class Loop:
    """A group's loop as one step of the program, in place of its nodes: it
    reads the group's external operands and makes its results' arrays."""
    op = _LoopOp()
    is_leaf = False
    shape = ()
    ndim = 0
    name = None

    def __init__(self, group):
        self.group = group
        self.id = -1 - group.gid  # never a node's id
        self.inputs = tuple(group.externals)
        self.dtype = group.dtype


def steps(order, groups) -> list:
    """``order`` with each group's nodes replaced by its :class:`Loop`, at
    the place of the group's last node."""
    if not groups:
        return list(order)
    group_of = {n.id: g for g in groups for n in g.nodes}
    out = []
    for i, node in enumerate(order):
        g = group_of.get(node.id)
        if g is None:
            out.append(node)
        elif i == g.anchor:
            out.append(Loop(g))
    return out


def operand_index(inp_shape, shape):
    """How the loop over ``shape`` (indices ``_i``, ``_j``) reads one element
    of an operand of ``inp_shape`` under NumPy broadcasting, or None if it
    cannot (a larger operand)."""
    if inp_shape == ():
        return "[()]"
    if len(inp_shape) > len(shape):
        return None
    loops = ("_i", "_j")[:len(shape)]
    parts = []
    for d, n, ix in zip(inp_shape, shape[len(shape) - len(inp_shape):],
                        loops[len(shape) - len(inp_shape):]):
        if d == n:  # both known, or both unknown (see guard)
            parts.append(ix)
        elif d == 1:
            parts.append("0")
        else:
            return None
    return "[" + ", ".join(parts) + "]"


def vector_function(node):
    """The name in :data:`.vecmath.libmvec` of the vector function computing
    ``node`` (a unary op whose NumPy function libmvec has), or None."""
    u = node.op.ufunc
    if u is None or not u.startswith("np.") or len(node.inputs) != 1 \
            or not node.op.elementwise:
        return None
    return vecmath.FUNCTIONS.get(u[3:])


def _elementwise_ok(node, vector=False) -> bool:
    """Can ``node`` be a loop's member: an elementwise op with a ``scalar``
    template, or with ``vector`` (vecmath="libmvec") one libmvec computes?"""
    op = node.op
    if op.scalar is None and not (vector and vector_function(node)):
        return False
    if node.dtype not in _DTYPES or node.ndim not in (1, 2) or 0 in node.shape:
        return False
    # an unknown dim (None) reads by the loop index only where the result's
    # dim is unknown too: (None, 4) + (3, 4) may broadcast a 1 at run time
    return all(i.dtype == node.dtype and operand_index(i.shape, node.shape) is not None
               for i in node.inputs)


def _reduction_ok(node) -> bool:
    if node.op.accumulate is None or len(node.inputs) != 1:
        return False
    src = node.inputs[0]
    axes = node.attrs[0]
    return src.ndim == 2 and node.dtype == src.dtype and tuple(axes) in ((0,), (1,))


def schedule(order, exclude=(), vector=False) -> list:
    """``order`` with each fusable node's fusable consumers (elementwise ops
    of its shape and dtype, sums of it) moved up to just after it when
    their other operands are ready by then, so that no unrelated statement
    reading the group sits between them and closes it (the depth-first order
    puts an MLP's ``g @ W.T`` between ``g`` and its bias gradient ``sum(g)``).
    An elementwise consumer whose value would only go on to elementwise
    consumers that cannot move (their other operands come later) stays
    where it is: it fuses with them there, where moved it would be one more
    array written and kept alive (``1 - h*h`` of an MLP's forward ``h``
    belongs with the backward's ``(1 - h*h) * g``). Each node keeps its
    place otherwise."""
    users = consumers(order)
    done, out = set(), []

    def stays(c, moved):
        """Should moved-candidate ``c`` stay in its place after all?"""
        if not _elementwise_ok(c, vector):
            return False  # a sum
        later = [u for u in users.get(c.id, ()) if u.id not in moved]
        if not later or len(later) < len(users.get(c.id, ())):
            return False  # an output, or read by a moved node
        return all(u.id not in exclude and _elementwise_ok(u, vector)
                   and u.shape == c.shape and u.dtype == c.dtype for u in later)

    def joins(c, m):
        if c.id in done or c.id in exclude:
            return False
        if _reduction_ok(c):
            return True
        return _elementwise_ok(c, vector) and c.shape == m.shape and c.dtype == m.dtype

    for n in order:
        if n.id in done:
            continue
        out.append(n)
        done.add(n.id)
        if n.id in exclude or not _elementwise_ok(n, vector):
            continue
        queue, candidates = [n], []
        while queue:
            m = queue.pop()
            if not _elementwise_ok(m, vector):
                continue  # a sum: its consumers are another group's
            for c in users.get(m.id, ()):
                if joins(c, m) and place_operands(c, done, out):
                    candidates.append(c)
                    done.add(c.id)
                    queue.append(c)
        moved = set()  # decided from the last: a node moves if a consumer does
        for c in reversed(candidates):
            if stays(c, moved):
                done.discard(c.id)
            else:
                moved.add(c.id)
        out += [c for c in candidates if c.id in moved]
    return out


def plan(order, keep_ids, exclude=(), vector=False) -> list:
    """The groups worth a kernel (two nodes or more), in program order; the
    ids in ``exclude`` fuse with nothing; with ``vector``, libmvec's
    functions fuse too (:func:`vector_function`)."""
    group_of = {}
    groups = []
    for pos, node in enumerate(order):
        g = None
        elementwise = node.id not in exclude and _elementwise_ok(node, vector)
        if elementwise:
            for inp in node.inputs:
                h = group_of.get(inp.id)
                if h is not None and h.open and inp.id not in h.reductions \
                        and h.shape == node.shape and h.dtype == node.dtype \
                        and len(h.nodes) < MAX_NODES \
                        and not any(i.id in h.reductions for i in node.inputs):
                    g = h
                    break
        elif node.id not in exclude and _reduction_ok(node):
            h = group_of.get(node.inputs[0].id)
            if h is not None and h.open and node.inputs[0].id not in h.reductions \
                    and len(h.nodes) < MAX_NODES:
                g = h
        # a group read by a statement outside it must be computed before that
        # statement: it takes no more members
        for inp in node.inputs:
            h = group_of.get(inp.id)
            if h is not None and h is not g:
                h.open = False
        if g is None and elementwise:
            g = Group(len(groups), node.shape, node.dtype)
            groups.append(g)
        if g is not None:
            g.add(node, pos, reduction=not elementwise)
            group_of[node.id] = g
    # (a group of libmvec's functions alone would only add copies to them)
    kept = [g for g in groups if len(g.nodes) >= 2
            and not all(_is_stage(n, g) for n in g.nodes)]
    if not kept:
        return []
    if len(kept) > MAX_LOOPS:  # the rest stay NumPy statements, in their places
        def saved(g):  # statements saved times elements
            return (len(g.nodes) - 1) * nominal_size(g.nodes[0])
        best = {id(g) for g in sorted(kept, key=saved, reverse=True)[:MAX_LOOPS]}
        kept = [g for g in kept if id(g) in best]
    outside = {}  # node id -> read by a node outside its group (or kept)?
    for node in order:
        for inp in node.inputs:
            h = group_of.get(inp.id)
            if h is not None and node.id not in h.ids:
                outside[inp.id] = True
    for g in kept:
        seen = set()
        for node in g.nodes:
            if node.id in g.reductions:
                continue
            for inp in node.inputs:
                if inp.id not in g.ids and inp.id not in seen:
                    seen.add(inp.id)
                    g.externals.append(inp)
        g.outputs = [n for n in g.nodes if n.id in keep_ids or outside.get(n.id)]
    return kept


def results(group) -> list:
    """The nodes whose arrays a group's loop writes, in order: its sums and
    the members read outside it."""
    out = {n.id for n in group.outputs}
    return [n for n in group.nodes if n.id in group.reductions or n.id in out]


class Written:
    """Result ``node`` as the buffer plan should see it when a loop writes
    it: an op without operands, so it takes a dead buffer from the pool, or
    a new array, never the memory of an array the loop reads (which would
    be correct, the loop reading [i, j] before writing it, but LLVM then
    finds the arrays overlap and runs its scalar loop instead of the
    vectorised one: 2.5 times slower, measured)."""

    inputs = ()
    is_leaf = False

    def __init__(self, node):
        self.id, self.op, self.name = node.id, node.op, node.name
        self.shape, self.dtype, self.ndim = node.shape, node.dtype, node.ndim


def kernel_source(group, kname, arg_name, literal, fresh):
    """``(source, params)``: the loop computing ``group`` as a function, and
    the nodes it takes as parameters: the external operands (0-d constants
    are written in it as literals, ``literal(node)``), then the arrays it
    writes the :func:`results` into (the caller makes them), then one int
    per unknown dim of the loop, its run-time size. ``arg_name`` names each
    node parameter as the calling function does; ``fresh(prefix)`` gives
    the loop's own names (unique in the module, so none shadows a
    parameter)."""
    shape, dt = group.shape, dtype_expr(group.dtype)
    loops = [fresh("_i"), fresh("_j")][:len(shape)]
    bounds = [str(n) if n is not None else fresh("_n") for n in shape]
    params, pre = [], []
    fixed = {}  # node id -> the name of its value, the same everywhere
    reads = {}  # node id -> (a name for its element, how the loop reads it)
    for ext in group.externals:
        if ext.op.name == "constant" and ext.ndim == 0:
            fixed[ext.id] = fresh("_s")
            pre.append(f"{fixed[ext.id]} = {dt}({literal(ext)})")
            continue
        params.append(ext)
        index = operand_index(ext.shape, shape)
        if index == "[()]":  # the same value everywhere: a scalar (see call_args)
            fixed[ext.id] = fresh("_a")
            pre.append(f"{fixed[ext.id]} = {arg_name(ext)}")
        else:
            index = index.replace("_i", loops[0]).replace("_j", loops[-1])
            reads[ext.id] = (fresh("_a"), f"{arg_name(ext)}{index}")
    for node in group.nodes:
        if node.id in group.reductions:
            pre.append(f"{arg_name(node)}[:] = {node.op.identity!r}")
    emit = _Emitter(group, loops, arg_name, fresh, fixed, reads)
    if any(_is_stage(n, group) for n in group.nodes):
        buffers, body = _staged_body(emit, bounds, dt)
        pre += buffers
    else:
        body = _flat_body(emit, bounds)
    params += results(group)
    what = ", ".join(_describe(n) for n in group.nodes)
    sizes = [b for b, n in zip(bounds, shape) if n is None]
    lines = ["@numba.njit(error_model='numpy')",
             f"def {kname}({', '.join([arg_name(p) for p in params] + sizes)}):",
             f"    # {what}"]
    lines += ["    " + t for t in pre] + body
    return "\n".join(lines) + "\n", params


def _accumulate(node, loops, arg_name, value) -> str:
    """The statement adding element ``value`` to reduction ``node``'s result."""
    axis, keep = node.attrs[0][0], node.attrs[1]
    ix = loops[1] if axis == 0 else loops[0]
    if keep:
        ix = f"0, {ix}" if axis == 0 else f"{ix}, 0"
    target = f"{arg_name(node)}[{ix}]"
    return f"{target} = {node.op.accumulate(target, value)}"


def _is_stage(node, group) -> bool:
    """Is ``node`` a member computed by a call of libmvec's vector function
    (elementwise with no ``scalar`` template: see :func:`vector_function`)?"""
    return node.op.scalar is None and node.id not in group.reductions


class _Emitter:
    """The statements of a loop body, one part at a time: each member's
    element from its operands' elements, a sum's accumulation, the writes
    of results and of values kept in block buffers."""

    def __init__(self, group, loops, arg_name, fresh, fixed, reads):
        self.group, self.loops, self.arg_name, self.fresh = group, loops, arg_name, fresh
        self.fixed, self.reads = fixed, reads
        self.writes = {n.id for n in results(group)}
        self.row, self.index = {}, None  # node id -> its block buffer; the buffer index
        self.start_part()

    def start_part(self):
        self.elem, self.loads, self.body = dict(self.fixed), [], []

    def value(self, x) -> str:
        """The name of ``x``'s element in this part, read the first time."""
        v = self.elem.get(x.id)
        if v is None:
            if x.id in self.reads:  # an operand's element
                v = self.fresh("_a")
                self.loads.append(f"{v} = {self.reads[x.id][1]}")
            else:  # an earlier part's or a vector function's value
                v = self.fresh("_e")
                self.loads.append(f"{v} = {self.row[x.id]}[{self.index}]")
            self.elem[x.id] = v
        return v

    def member(self, node):
        arg_name, group = self.arg_name, self.group
        if node.id in group.reductions:
            self.body.append(_accumulate(node, self.loops, arg_name,
                                         self.value(node.inputs[0])))
            return
        args = [self.value(i) for i in node.inputs]
        self.elem[node.id] = var = self.fresh("_e")
        self.body.append(f"{var} = {node.op.scalar(node.attrs, *args)}")
        if node.id in self.row:
            self.body.append(f"{self.row[node.id]}[{self.index}] = {var}")
        if node.id in self.writes:
            self.body.append(f"{arg_name(node)}[{', '.join(self.loops)}] = {var}")


def _flat_body(emit, bounds) -> list:
    """The loop nest when every member has a ``scalar`` template: each
    operand's element read once, then one statement per member."""
    for ext in emit.group.externals:  # read before any write
        if ext.id in emit.reads:
            emit.elem[ext.id], where = emit.reads[ext.id]
            emit.loads.append(f"{emit.elem[ext.id]} = {where}")
    for node in emit.group.nodes:
        emit.member(node)
    lines, indent = [], "    "
    for ix, n in zip(emit.loops, bounds):
        lines.append(f"{indent}for {ix} in range({n}):")
        indent += "    "
    return lines + [indent + t for t in emit.loads + emit.body]


def _staged_body(emit, bounds, dt):
    """``(buffer lines, loop nest)`` when some members are libmvec's vector
    functions (``vecmath="libmvec"``): the elements go in blocks of about
    :data:`BLOCK` (whole rows of a matrix, at least one; stretches of a
    vector); in each block the members run as loops split at each such
    member, which runs as one call over a block buffer
    (``libmvec.tanh(_r1[:_len1], _r2[:_len1])``); a value a later loop reads
    goes through a buffer too (an operand is read again). The buffers are
    padded to whole vectors (no tail to handle) and start as zeros (no
    garbage in the padding)."""
    group, loops, fresh = emit.group, emit.loops, emit.fresh
    lanes = 32 // group.dtype.itemsize
    staged = [n for n in group.nodes if _is_stage(n, group)]
    part, stage = {}, {}  # member id -> its loop in a block; staged id -> loops before it
    for node in group.nodes:
        if _is_stage(node, group):
            stage[node.id] = len(stage)
        else:
            part[node.id] = len(stage)

    def keep_row(x):
        if x.id not in emit.row and x.id not in emit.fixed:
            emit.row[x.id] = fresh("_r")

    for node in group.nodes:
        if node.id in stage:
            keep_row(node.inputs[0])
            keep_row(node)
            continue
        for x in node.inputs[:1] if node.id in group.reductions else node.inputs:
            if x.id in part and part[x.id] < part[node.id]:
                keep_row(x)
    first, end, count = fresh("_lo"), fresh("_hi"), fresh("_len")
    buffers = []

    def padded(n):
        return f"({n} + {lanes - 1}) // {lanes} * {lanes}"

    if len(loops) == 2:  # blocks of whole rows; ``at`` is a row's place in the buffers
        rows, width = bounds
        if width.isdigit():
            per = str(max(1, BLOCK // int(width)))
            size = str((int(per) * int(width) + lanes - 1) // lanes * lanes)
        else:
            per = fresh("_per")
            buffers.append(f"{per} = max(1, {BLOCK} // max({width}, 1))  # rows per block")
            size = padded(f"{per} * {width}")
        at = fresh("_o")
        emit.index = f"{at} + {loops[1]}"
        head = [f"for {first} in range(0, {rows}, {per}):",
                f"    {end} = min({first} + {per}, {rows})",
                f"    {count} = {padded(f'({end} - {first}) * {width}')}"]
        nest = [f"for {loops[0]} in range({first}, {end}):",
                f"    {at} = ({loops[0]} - {first}) * {width}",
                f"    for {loops[1]} in range({width}):"]
        pad = " " * 16  # the innermost loop's body
    else:  # stretches of a vector
        size = str(BLOCK)
        emit.index = f"{loops[0]} - {first}"
        head = [f"for {first} in range(0, {bounds[0]}, {BLOCK}):",
                f"    {end} = min({first} + {BLOCK}, {bounds[0]})",
                f"    {count} = {padded(f'{end} - {first}')}"]
        nest = [f"for {loops[0]} in range({first}, {end}):"]
        pad = " " * 12
    owner = {n.id: n for n in group.nodes}
    for x_id, r in emit.row.items():
        what = (f"{_describe(owner[x_id])}'s values" if x_id in owner else
                emit.arg_name(next(e for e in group.externals if e.id == x_id)))
        buffers.append(f"{r} = np.zeros({size}, {dt})  # {what}, a block at a time")
    lines = ["    " + h for h in head]
    copied = set()
    for k in range(len(staged) + 1):
        emit.start_part()
        for node in group.nodes:
            if part.get(node.id) == k:
                emit.member(node)
        for node in staged:
            if stage[node.id] == k - 1 and node.id in emit.writes:
                emit.body.append(f"{emit.arg_name(node)}[{', '.join(loops)}] = "
                                 f"{emit.value(node)}")
            x = node.inputs[0]
            if stage[node.id] == k and x.id in emit.reads and x.id not in copied:
                copied.add(x.id)  # an operand into a buffer: the function's input
                emit.body.append(f"{emit.row[x.id]}[{emit.index}] = {emit.value(x)}")
        if emit.body:
            lines += ["        " + t for t in nest] + [pad + t for t in emit.loads + emit.body]
        for node in staged:
            if stage[node.id] == k:
                lines.append(f"        libmvec.{vector_function(node)}"
                             f"({emit.row[node.inputs[0].id]}[:{count}], "
                             f"{emit.row[node.id]}[:{count}])")
    return buffers, lines


def call_args(params, arg_name, sizes=()) -> str:
    """The arguments of a loop's call: a 0-d value is passed as a NumPy
    scalar (``[()]``: at run time it may be a 0-d array or already a scalar,
    which Numba types differently), then the unknown dims' ``sizes``."""
    return ", ".join([arg_name(p) + ("[()]" if p.ndim == 0 else "") for p in params]
                     + list(sizes))


def guard(group, arg_name):
    """``(sizes, condition)`` for a loop: the run-time size of each unknown
    dim (an expression reading an operand's shape), and the condition under
    which the loop computes the group (None: always), else the caller runs
    NumPy's code: every operand with a dim unknown has the same size there
    (otherwise some operand is 1 where another is not, NumPy broadcasts it,
    and the members' run-time shapes differ), and every full-shape 2-D
    operand is C-contiguous."""
    sizes, conds = [], []
    # NumPy's result follows its operands' layout (an F-ordered or
    # transposed operand gives an F-ordered result), the loop's is C-ordered:
    # the loop runs when the full-shape operands are C-contiguous, so that
    # later statements (a sum's product with ones, vecmath's kernels, BLAS)
    # see the layout they would without fusion
    for e in group.externals:
        if e.ndim == 2 and e.ndim == len(group.shape) and e.shape == group.shape:
            conds.append(f"{arg_name(e)}.flags.c_contiguous")
    for axis, n in enumerate(group.shape):
        if n is not None:
            continue
        offset = len(group.shape) - axis
        reads = [f"{arg_name(e)}.shape[{e.ndim - offset}]" for e in group.externals
                 if e.ndim >= offset and e.shape[e.ndim - offset] is None]
        sizes.append(reads[0])
        if len(reads) > 1:
            conds.append(" == ".join(reads))
    return sizes, " and ".join(conds) or None


def _describe(node) -> str:
    if node.op.accumulate is not None:
        return f"{node.op.name}(axis={node.attrs[0][0]})"
    return node.op.name


_SHARED: dict = {}  # source text -> a compiled Numba function
_SHARED_MAX = 512


def share_compiled(namespace):
    """Compile each Numba function the generated module defines in a
    namespace of its own (``np``, ``math``, ``numba`` only), or reuse the one
    compiled from the same text (another function compiled the same loop).
    Numba never frees compiled code, and the code holds its globals: bound
    to the module's, it would keep the module's constants alive forever."""
    import inspect
    import math

    import numba
    from numba.core.registry import CPUDispatcher
    for name, value in list(namespace.items()):
        if isinstance(value, CPUDispatcher):
            key = inspect.getsource(value.py_func)
            known = _SHARED.get(key)
            if known is None:
                own = {"np": namespace["np"], "math": math, "numba": numba}
                if "libmvec" in namespace:
                    own["libmvec"] = namespace["libmvec"]
                exec(compile(key, "<chainrule loop>", "exec"), own)
                known = own[name]
                if len(_SHARED) >= _SHARED_MAX:
                    _SHARED.clear()
                _SHARED[key] = known
            namespace[name] = known


def warm_up(fn, kname, params, n_sizes):
    """Compile a loop now, for C-contiguous operands of the static shapes
    (another layout at run time compiles once more, at its first call)."""
    try:
        args = [np.zeros(tuple(1 if d is None else d for d in p.shape), p.dtype)[()]
                for p in params]
        fn(*args, *[1] * n_sizes)
    except Exception as exc:  # a template Numba cannot compile: a chainrule bug
        first = str(exc).strip().split("\n")[0]
        raise ChainruleError(
            f"function: fuse='numba': Numba could not compile the fused loop {kname} "
            f"({type(exc).__name__}: {first}); please report this, and compile with "
            f"fuse=None meanwhile") from exc
