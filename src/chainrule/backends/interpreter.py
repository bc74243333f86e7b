"""The reference backend: walks the graph op by op, freeing each value after
its last use."""

from __future__ import annotations

from .program import RUNTIME_ERRORS, NodeFailure, Program, last_uses, non_finite


def compile_program(prog: Program, check_finite: bool = False):
    order = prog.order
    input_pos = {ph.id: k for k, ph in enumerate(prog.inputs)}
    param_pos = {p.id: k for k, p in enumerate(prog.params)}
    keep = {v.id for v in prog.outputs} | {v.id for _, v in prog.updates}
    dying = last_uses(order, keep)
    out_ids = [v.id for v in prog.outputs]
    upd_ids = [v.id for _, v in prog.updates]
    n_inputs = len(prog.inputs)

    def run(*values):
        args, param_values = values[:n_inputs], values[n_inputs:]
        env = {}
        for i, node in enumerate(order):
            name = node.op.name
            if name == "placeholder":
                val = args[input_pos[node.id]]
            elif name == "parameter":
                val = param_values[param_pos[node.id]]
            elif name == "constant":
                val = node._const
            else:
                try:
                    val = node.op.impl(node.attrs, *[env[x.id] for x in node.inputs])
                except RUNTIME_ERRORS as e:
                    raise NodeFailure(node, e) from e
                if check_finite:
                    non_finite(node, val)
            env[node.id] = val
            for dead in dying.get(i, ()):
                env.pop(dead, None)
        return [env[k] for k in out_ids], [env[k] for k in upd_ids]

    return run, None, lambda error: None  # failures are located as they happen
