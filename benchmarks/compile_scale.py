"""Compile cost as graphs grow: grad + optimize + codegen time and node
counts for chains of 1,000 / 10,000 / 100,000 ops and MLPs of 1 / 4 / 16 /
64 hidden layers (width 64). The cost must grow linearly.

    python benchmarks/compile_scale.py [--quick]
"""

from __future__ import annotations

from _common import machine_info, table  # first: pins BLAS threads

import sys
import time

import chainrule as cr
from nested import chain, mlp


def timed_compile(outputs_fn):
    t0 = time.perf_counter()
    inputs, outs = outputs_fn()
    t1 = time.perf_counter()
    f = cr.function(inputs, outs)
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1, f


def main(quick=False):
    print(machine_info())
    rows, per_node = [], []
    sizes = (1_000, 10_000) if quick else (1_000, 10_000, 100_000)
    for n in sizes:
        # best of three runs for every size (the ratio compares like with
        # like): on a shared machine the minimum is the cost, the rest is
        # other processes' load. Each run differentiates a chain of its own:
        # grad on a graph already differentiated finds its nodes in the
        # hash-consing table and would time lookups, not construction.
        runs = []
        for _ in range(3):
            x, y = chain(n)
            t_grad, t_comp, f = timed_compile(lambda: ([x], [y, cr.grad(y, x)]))
            runs.append((t_grad, t_comp, cr.count_nodes(y), len(f.graph)))
            del f
        t_grad, t_comp, n_fwd, n_compiled = min(runs, key=lambda r: r[0] + r[1])
        total = t_grad + t_comp
        rows.append((f"chain {n}", n_fwd, n_compiled, f"{t_grad:.3f}",
                     f"{t_comp:.3f}", f"{total:.3f}", f"{total / n_compiled * 1e6:.1f}"))
        per_node.append(total)
    for layers in (1, 4, 16, 64):
        x, y, loss, params = mlp(layers)
        t_grad, t_comp, f = timed_compile(lambda: ([x, y], [loss] + cr.grad(loss, params)))
        total = t_grad + t_comp
        rows.append((f"mlp {layers}x64", cr.count_nodes(loss), len(f.graph), f"{t_grad:.3f}",
                     f"{t_comp:.3f}", f"{total:.3f}", f"{total / len(f.graph) * 1e6:.1f}"))
    print("\ngrad + optimize + codegen (seconds, chains: best of 3); "
          "us/node = total per compiled node")
    print(table(["graph", "forward nodes", "compiled nodes", "grad s", "optimize+codegen s",
                 "total s", "us/node"], rows))
    if len(per_node) == 3:
        print(f"\nchain 100,000 / 10,000 total time: {per_node[2] / per_node[1]:.1f}x "
              f"(10x is linear; target <= 12x); 10,000 ops: {per_node[1]:.3f} s (target < 1)")


if __name__ == "__main__":
    main(quick="--quick" in sys.argv)
