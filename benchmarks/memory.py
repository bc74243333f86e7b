"""Peak memory (tracemalloc) of one train step of the 784-256-10 MLP at
batch 128: chainrule's compiled step against the hand-written NumPy step.

    python benchmarks/memory.py
"""

from __future__ import annotations

from _common import machine_info, table  # first: pins BLAS threads

import tracemalloc

import numpy as np

from mlp_step import (chainrule_step, init, libmvec_available, numba_available,
                      numpy_blas_available, numpy_step_factory, scipy_blas_available)


def peak(fn) -> int:
    fn()  # warm up (first-call allocations, caches)
    tracemalloc.start()
    tracemalloc.reset_peak()
    fn()
    _, top = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return top


def main():
    print(machine_info())
    rows = []
    for dtype in ("float64", "float32"):
        sizes, batch = (784, 256, 10), 128
        rng = np.random.default_rng(1)
        values = init(sizes, dtype)
        x = rng.standard_normal((batch, sizes[0])).astype(dtype)
        y = np.eye(sizes[-1], dtype=dtype)[rng.integers(0, sizes[-1], batch)]
        step, _ = numpy_step_factory(values, 0.1)
        p_np = peak(lambda: step(x, y))
        variants = [(None, False, None, None)]
        if numpy_blas_available():
            variants.append(("numpy", False, None, None))
        if scipy_blas_available():
            variants.append(("scipy", False, None, None))
        variants.append((None, True, None, None))  # placeholders (None, n)
        if numba_available():
            variants += [(None, False, "numba", None), (None, True, "numba", None)]
        if numba_available() and libmvec_available() and numpy_blas_available():
            variants.append(("numpy", False, "numba", "libmvec"))  # the fastest step
        for blas, unknown, fuse, vecmath in variants:
            f, _ = chainrule_step(sizes, batch, dtype, 0.1, values, blas, vecmath=vecmath,
                                  unknown_batch=unknown, fuse=fuse)
            p_cr = peak(lambda: f(x, y))
            options = [f"{k}={v!r}" for k, v in (("blas", blas), ("vecmath", vecmath),
                                                  ("fuse", fuse)) if v]
            label = ", ".join(options) or "default"
            rows.append((dtype, label + (", batch None" if unknown else ""),
                         f"{p_cr / 1e6:.2f}", f"{p_np / 1e6:.2f}", f"{p_cr / p_np:.2f}"))
    print("\nPeak traced memory of one SGD step of 784-256-10 at batch 128, MB")
    print(table(["dtype", "chainrule", "chainrule MB", "hand-written numpy MB",
                 "ratio (target <= 1.2)"], rows))


if __name__ == "__main__":
    main()
