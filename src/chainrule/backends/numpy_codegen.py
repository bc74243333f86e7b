"""The NumPy code generator: turns a graph into one readable Python function.

One statement per op, variable names derived from the user's names,
constants hoisted to module level, intermediates deleted after their last
use, and only ``import numpy as np`` needed (with the opt-in
``blas="scipy"``, SciPy's BLAS too, with ``blas="numpy"`` chainrule's call
of NumPy's own BLAS: see :mod:`.gemm`; with the opt-in
``vecmath="libmvec"``, ``np`` is NumPy with glibc's vector math functions:
see :mod:`.vecmath`; with ``fuse="numba"``, Numba: see :mod:`.fusion`). The same graph always
gives the same text. The source is registered with ``linecache`` so tracebacks and pdb
show the generated lines.
"""

from __future__ import annotations

import builtins
import hashlib
import keyword
import linecache
import math
import re

import numpy as np

from ..errors import NonFiniteError
from ..ops.base import dtype_expr, uniform_entry
from . import fusion
from .buffers import BufferPlan
from .gemm import helper as gemm_helper
from .gemm import alpha_code, check_available, fusable_update
from .program import Program, describe_node, last_uses
from .vecmath import check_available as vecmath_check
from .vecmath import prepare as vecmath_prepare
from .vecmath import used_functions

# Names the generated module needs as they are: NumPy, Numba, the function itself,
# and the builtins that hoisted constants and helpers call (bytes, range,
# tuple, ...). A user's name never starts with "_" (sanitize strips it), so
# the helpers' names are safe too.
_RESERVED = {"np", "compiled", "numba", "math"} | set(dir(builtins))
POOL_ABOVE = 2000  # statements; longer programs reuse temporaries' names


class Namer:
    """Hands out unique, safe Python identifiers derived from user names."""

    def __init__(self):
        self.used = set(_RESERVED)
        self.counters = {}

    def fresh(self, base: str | None, default: str = "t") -> str:
        if base:
            stem = sanitize(base)
            if stem not in self.used:
                self.used.add(stem)
                return stem
            prefix = stem + "_"
        else:
            prefix = default
        k = self.counters.get(prefix, 0)
        while True:
            k += 1
            cand = f"{prefix}{k}"
            if cand not in self.used:
                break
        self.counters[prefix] = k
        self.used.add(cand)
        return cand


def sanitize(name: str) -> str:
    """A safe identifier for a user's name: never code, never a keyword."""
    s = re.sub(r"[^0-9A-Za-z_]", "_", name)
    s = re.sub(r"_+", "_", s).strip("_") or "v"
    if s[0].isdigit():
        s = "v" + s
    if keyword.iskeyword(s) or keyword.issoftkeyword(s) or s in _RESERVED:
        s += "_"
    return s


def _scalar_literal(value) -> str:
    x = value.item()
    if isinstance(x, bool):
        return repr(x)
    if isinstance(x, float):
        if math.isnan(x):
            return "np.nan"
        if math.isinf(x):
            return "np.inf" if x > 0 else "-np.inf"
        return repr(x)
    return repr(int(x))


def array_literal(value: np.ndarray) -> str:
    """Python source that rebuilds ``value`` exactly, with numpy alone."""
    dt = dtype_expr(value.dtype)
    if value.ndim == 0:
        return f"{dt}({_scalar_literal(value)})"
    flat = value.reshape(-1)
    first = uniform_entry(value)
    if first is not None:
        return f"np.full({value.shape}, {_scalar_literal(first)}, dtype={dt})"
    if value.size <= 64:
        items = [_scalar_literal(np.asarray(v)) for v in flat]
        return f"np.array([{', '.join(items)}], dtype={dt}).reshape({value.shape})"
    data = np.ascontiguousarray(value).tobytes().hex()
    return (f"np.frombuffer(bytes.fromhex('{data}'), dtype='{value.dtype.str}')"
            f".reshape({value.shape})")


def _natural(name: str):
    """Sort key putting the digits of a name in numeric order."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def _loop_literal(value) -> str:
    """A 0-d float constant in a fused loop, wrapped in its dtype there: a
    float32 is written in its shortest text (0.1, not 0.10000000149011612),
    which reads back as the same float32."""
    x = value[()]
    if value.dtype == np.float32 and np.isfinite(x):
        return str(x)
    return _scalar_literal(value)


def _inline_ok(const, consumer) -> bool:
    """May a 0-d constant be written as a bare Python literal in this use?

    A bare literal is weakly typed in NumPy 2, so this is safe when every
    other operand already has the result's dtype (it cannot change it), and
    when one of them is an array: between literals alone Python's arithmetic
    would apply (``2 ** -1`` is 0.5 in Python, an error in int64; Python
    ints do not wrap)."""
    if const.ndim != 0 or not consumer.op.elementwise or consumer.op.name == "cast":
        return False
    if const.dtype != consumer.dtype:
        return False
    others = [i for i in consumer.inputs if i is not const]
    return all(i.dtype == consumer.dtype for i in others) and any(
        not (i.op.name == "constant" and i.ndim == 0) for i in others)


def generate(prog: Program, fn_name: str = "compiled", check_finite: bool = False,
             line_nodes: dict | None = None, reuse: bool = True, blas: str | None = None,
             vecmath: str | None = None, fuse: str | None = None,
             kernels: dict | None = None):
    """Return ``(source, arg_names)`` for the program; fills ``line_nodes``
    (if given) with the line number of each node's statement -> the node.
    ``blas="numpy"`` or ``"scipy"`` fuses ``p - A @ B`` parameter updates into one BLAS
    gemm (see :mod:`.gemm`); ``vecmath="libmvec"`` binds ``np`` to NumPy with
    glibc's vectorised tanh, exp, log, ... (see :mod:`.vecmath`);
    ``fuse="numba"`` computes chains of elementwise ops and their sums in
    Numba loops (see :mod:`.fusion`), and fills ``kernels`` (if given) with
    each loop's name -> (the nodes it takes as arguments, its number of
    unknown dims)."""
    namer = Namer()
    namer.used.add(fn_name)
    names = {}
    args = []
    for node in list(prog.inputs) + list(prog.params):
        names[node.id] = namer.fresh(node.name, "x")
        args.append(names[node.id])

    hoisted, helpers, body = [], {}, []
    const_names = {}
    literals = {}

    def const_expr(node, consumer):
        if consumer is not None and _inline_ok(node, consumer):
            lit = literals.get(node.id)
            if lit is None:
                lit = _scalar_literal(node._const)
                # -2.0 ** y is -(2.0 ** y): a negative literal needs parentheses
                lit = literals[node.id] = f"({lit})" if lit.startswith("-") else lit
            return lit
        if node.id not in const_names:
            nm = namer.fresh(node.name, "_c")
            const_names[node.id] = nm
            hoisted.append(f"{nm} = {array_literal(node._const)}")
        return const_names[node.id]

    arrays = {}  # (dtype, shape, bytes) -> name of a constant a lowering asked for

    def hoist(value, hint="_k"):
        key = (value.dtype.str, value.shape, value.tobytes())
        if key not in arrays:
            arrays[key] = nm = namer.fresh(None, "_" + hint.lstrip("_"))
            hoisted.append(f"{nm} = {array_literal(value)}")
        return arrays[key]

    def ref(node, consumer):
        if node.op.name == "constant":
            return const_expr(node, consumer)
        return names[node.id]

    keep = {v.id for v in prog.outputs} | {v.id for _, v in prog.updates}
    groups, order = [], prog.order
    if fuse and not check_finite:
        exclude = _gemm_candidates(prog) if blas else ()
        order = fusion.schedule(order, exclude, vector=bool(vecmath))
        groups = fusion.plan(order, keep, exclude, vector=bool(vecmath))
        order = fusion.steps(order, groups)  # a group's nodes -> one loop step
    dying = last_uses(order, keep)
    locals_ = set()
    # In a long program a dead temporary's name is reused by the next one
    # (rebinding frees the old value) instead of a `del` line: Python's
    # compiler is then much faster, and memory is freed just as early.
    pool = [] if len(order) > POOL_ABOVE else None
    temps = set()  # names of unnamed temporaries (reusable in a long program)
    plan = BufferPlan(order, keep, prog.updates, check_finite) \
        if pool is None and reuse else None
    body_nodes = []
    gemm = bool(blas) and plan is not None and not check_finite
    loops_used = bool(groups)  # does the module need Numba?
    fused_away = set()  # ids of nodes emitted with a fused gemm before them

    def expression(node, operands):
        """NumPy's expression for node, given its operands' expressions; the
        helpers it calls are pasted into the module."""
        nonlocal loops_used
        op = node.op
        if op.emit_node is not None:
            expr = op.emit_node(node, *operands, const=hoist)
        else:
            expr = op.emit(node.attrs, *operands)
        for h, src in op.helpers.items():  # an op may declare several
            if f"{h}(" in expr:
                helpers[h] = src
                if fuse and not check_finite and h in op.loop_helpers:
                    helpers[h] = op.loop_helpers[h]
                    if vecmath:
                        helpers[h] = op.vector_helpers.get(h, helpers[h])
                    loops_used = True
        return expr

    def loop_statements(group, i):
        """The statements running ``group``'s fused loop at step i; returns
        the names the buffer plan says to delete."""
        stale = []
        sizes, cond = fusion.guard(group, lambda x: ref(x, None))
        dims = iter(sizes)
        runtime = [str(n) if n is not None else next(dims) for n in group.shape]
        pad = ""
        if cond:  # sizes that may broadcast, layouts: the loop only if they fit
            body.append(f"if {cond}:")
            pad = "    "
        # the loop writes into arrays made here, or into dead buffers
        for r in fusion.results(group):
            target = plan.choose(fusion.Written(r), i) \
                if plan is not None and cond is None else None
            nm = bind(r)
            if target is None:
                shape = list(runtime)
                if r.id in group.reductions:
                    axis = r.attrs[0][0]
                    shape[axis:axis + 1] = ["1"] if r.attrs[1] else []
                shape_text = f"({', '.join(shape)}{',' if len(shape) == 1 else ''})"
                made = f"np.empty({shape_text}, {dtype_expr(r.dtype)})"
            body.append(f"{pad}{nm} = {target[1] if target else made}")
            if plan is not None:
                stale += plan.record(r, nm, None if target is None else target[0])
        kname = namer.fresh(None, "_fused")
        src, params = fusion.kernel_source(
            group, kname, lambda x: ref(x, None), lambda c: _loop_literal(c._const),
            lambda prefix: namer.fresh(None, prefix))
        helpers[kname] = src
        if kernels is not None:
            kernels[kname] = (params, len(sizes))
        body_nodes.append((len(body), group.nodes[-1]))
        body.append(f"{pad}{kname}({fusion.call_args(params, lambda x: ref(x, None), sizes)})")
        if cond:
            body.append("else:  # a broadcast or another layout: NumPy's code")
            local, scratch = {}, []
            for n in group.nodes:
                expr = expression(n, [local.get(x.id) or ref(x, n) for x in n.inputs])
                nm = names.get(n.id)
                if nm is None:
                    nm = namer.fresh(None, "_t")
                    scratch.append(nm)
                local[n.id] = nm
                body_nodes.append((len(body), n))
                body.append(f"    {nm} = {expr}")
            if scratch:
                body.append(f"    del {', '.join(scratch)}")
        return stale

    def bind(node):
        """A fresh name for node's value (a dead temporary's in a long program)."""
        if pool and not node.name:
            nm = pool.pop()
        else:
            nm = namer.fresh(node.name)
            if pool is not None and not node.name:
                temps.add(nm)
        names[node.id] = nm
        locals_.add(node.id)
        return nm

    for i, node in enumerate(order):
        if plan is not None:
            plan.at(i)
        stale = []
        fused = None
        if gemm and node.op.name == "matmul":
            fused = fusable_update(order, i, plan)
        if node.id in fused_away:
            pass
        elif isinstance(node, fusion.Loop):
            stale = loop_statements(node.group, i)
        elif fused is not None:
            replaced, nxt, (buf, target), (sign, scale) = fused
            fused_away.update(r.id for r in replaced)
            plan.forget_demand(node, *replaced)  # they will not take a pooled buffer
            helpers["_gemm_update"] = gemm_helper(blas)
            a, b = (ref(x, node) for x in node.inputs)
            nm = namer.fresh(nxt.name)
            names[nxt.id] = nm
            locals_.add(nxt.id)
            stale = plan.record(nxt, nm, buf)
            body_nodes.append((len(body), node))  # only the product can fail here
            alpha = alpha_code(sign, scale, lambda v: ref(v, None))
            body.append(f"{nm} = _gemm_update({target}, {a}, {b}, {alpha})")
        elif node.is_leaf:
            if node.op.name == "placeholder" and node.id not in names:
                raise AssertionError("placeholder missing from the program inputs")
            if plan is not None:  # constants too: their views are never written
                plan.record(node, names.get(node.id))
        else:
            op = node.op
            operands = [ref(x, node) for x in node.inputs]
            target = plan.choose(node, i) if plan is not None else None
            if target is not None:
                out = target[1]
                if plan.checks:  # unknown dims: in place only if no operand broadcasts it
                    same = " and ".join(f"{out}.shape == {ref(o, node)}.shape"
                                        for o in plan.checks)
                    out = f"{out} if {same} else None"
                expr = f"{op.ufunc}({', '.join(operands)}, out={out})"
            else:
                expr = expression(node, operands)
            nm = bind(node)
            if plan is not None:
                stale = plan.record(node, nm, None if target is None else target[0])
            body_nodes.append((len(body), node))
            body.append(f"{nm} = {expr}")
            if check_finite and node.dtype.kind == "f":
                body.append(f"_finite({nm}, {describe_node(node)!r})")
        dead = [names[d] for d in dying.get(i, ())
                if d in locals_ and not (plan is not None and plan.keep_bound(d, i))]
        dead += stale
        if pool is not None and dead:
            pool.extend(d for d in dead if d in temps)
            dead = [d for d in dead if d not in temps]
        if dead:
            body.append(f"del {', '.join(dead)}")

    outs = [ref(v, None) for v in prog.outputs]
    upds = [ref(v, None) for _, v in prog.updates]
    # user names go through sanitize() here too: a raw name could end the
    # comment line (a newline) and inject code
    out_names = ", ".join(sanitize(v.name) if v.name else "output"
                          for v in prog.outputs) or "nothing"
    in_names = ", ".join(args) or "no inputs"
    header = [f"# Generated by chainrule: computes {out_names} from {in_names}."]
    if prog.updates:
        header.append("# Also returns the new values of "
                      + ", ".join(sanitize(p.name) for p, _ in prog.updates) + ".")
    if vecmath:
        imports = ["from chainrule.backends.vecmath import np  # NumPy, with tanh, exp, "
                   "log, ... from glibc's libmvec"]
    else:
        imports = ["import numpy as np"]
    if loops_used:
        if any("math." in h for h in helpers.values()):
            imports.append("import math")
        if any("libmvec." in h for h in helpers.values()):
            imports.append("from chainrule.backends.vecmath import libmvec  "
                           "# glibc's vector functions, for the loops")
        imports += ["", "import numba  # compiles the fused loops"]
    lines = header + imports + [""]
    if check_finite:
        helpers["_finite"] = (
            "def _finite(v, where):\n"
            "    if not np.all(np.isfinite(v)):\n"
            "        raise FloatingPointError(f'check_finite: {where} produced NaN or inf')\n")
    for hname in sorted(helpers, key=_natural):  # _fused2 before _fused10
        # one entry per line: line_nodes below counts entries as lines
        lines += helpers[hname].rstrip("\n").split("\n")
        lines.append("")
    lines += hoisted
    if hoisted:
        lines.append("")
    if line_nodes is not None:
        first = len(lines) + 2  # the 1-based number of the first body line
        line_nodes.update((first + k, node) for k, node in body_nodes)
    lines.append(f"def {fn_name}({', '.join(args)}):")
    lines += ["    " + b for b in body]
    lines.append(f"    return [{', '.join(outs)}], [{', '.join(upds)}]")
    return "\n".join(lines) + "\n", args


def _gemm_candidates(prog) -> set:
    """Ids of nodes ``blas`` may compute in a gemm (a parameter's new
    value ``p - c * M`` and its ``c * M``): they stay out of fused loops."""
    ids = set()
    for p, v in prog.updates:
        if v.op.name not in ("subtract", "add") or not any(i is p for i in v.inputs):
            continue
        for i in v.inputs:
            if i.op.name == "multiply" and any(m.op.name == "matmul" for m in i.inputs):
                ids.update((v.id, i.id))
            elif i.op.name == "matmul":
                ids.add(v.id)
    return ids


def load_source(source: str, fn_name: str, extra_globals=None):
    """Execute generated source in a fresh namespace and return the function,
    registered with linecache so tracebacks show the generated lines."""
    digest = hashlib.sha1(source.encode()).hexdigest()[:12]
    filename = f"<chainrule-{digest}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace = {"__name__": f"chainrule_generated_{digest}"}
    exec(compile(source, filename, "exec"), namespace)
    if extra_globals:
        namespace.update(extra_globals)
    fn = namespace[fn_name]
    fn.__source__ = source
    return fn


def _finite_check(v, where):
    if not np.all(np.isfinite(v)):
        raise NonFiniteError(f"check_finite: {where} produced NaN or inf; "
                             f"look at its inputs' values")


def compile_program(prog: Program, check_finite: bool = False, blas: str | None = None,
                    vecmath: str | None = None, fuse: str | None = None):
    check_available(blas)
    vecmath_check(vecmath)
    fusion.check_available(fuse)
    line_nodes, kernels = {}, {}
    source, _ = generate(prog, check_finite=check_finite, line_nodes=line_nodes, blas=blas,
                         vecmath=vecmath, fuse=fuse, kernels=kernels)
    if vecmath:  # compile the kernels the source calls before returning
        vecmath_prepare(used_functions(source), {n.dtype for n in prog.order})
    extra = {"_finite": _finite_check} if check_finite else None
    fn = load_source(source, "compiled", extra)
    if "import numba" in source:
        fusion.share_compiled(fn.__globals__)
    for kname, (params, n_sizes) in kernels.items():  # compile the fused loops now too
        fusion.warm_up(fn.__globals__[kname], kname, params, n_sizes)
    code = fn.__code__
    # ``fn`` takes the inputs then the parameters positionally; ``locate``
    # maps an error it raised to the node whose statement raised it.
    return fn, source, lambda error: _failing_node(error, code, line_nodes)


def _failing_node(error, code, line_nodes):
    """The node whose statement in the generated function raised ``error``."""
    tb, node = error.__traceback__, None
    while tb is not None:
        if tb.tb_frame.f_code is code:
            node = line_nodes.get(tb.tb_lineno)
        tb = tb.tb_next
    return node
