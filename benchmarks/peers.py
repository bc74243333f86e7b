"""The SGD train step of benchmarks/mlp_step.py in chainrule and in the peers
that are installed here (JAX jit, PyTorch eager), each against the same
hand-written NumPy step in the same run, all on one thread.

    pip install jax torch      # optional: a peer that is missing is skipped
    python benchmarks/peers.py [--quick]

The issue's target for chainrule is a ratio of at most 0.9, "faster than
every peer"; this script measures the peers on the machine at hand instead
of quoting numbers from another one. The process is pinned to one core.
"""

from __future__ import annotations

import os

# one thread everywhere, set before any of the libraries is imported
os.environ.setdefault("XLA_FLAGS",
                      "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
# XLA's CPU runtime still starts worker threads (measured: 1.45 s of CPU per
# second of a JAX step): pin the whole process to one core, so that every
# implementation gets exactly one (Linux; elsewhere the flags above only).
if hasattr(os, "sched_setaffinity"):
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})

from _common import blocked_times, machine_info, table, us  # noqa: E402  (pins BLAS)

import sys  # noqa: E402

import numpy as np  # noqa: E402

from mlp_step import (chainrule_step, init, numpy_step_factory,  # noqa: E402
                      scipy_blas_available)

LR = 0.1


def jax_step_factory(values, dtype, batch):
    try:
        import jax
    except ImportError:
        return None
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    def loss_fn(params, x, y):
        h = x
        for k in range(0, len(params), 2):
            h = h @ params[k] + params[k + 1]
            if k + 2 < len(params):
                h = jnp.tanh(h)
        return -jnp.mean(jnp.sum(jax.nn.log_softmax(h, axis=1) * y, axis=1))

    @jax.jit
    def update(params, x, y):
        loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
        return loss, [p - LR * g for p, g in zip(params, grads)]

    state = {"params": [jnp.asarray(v, dtype=dtype) for v in values]}

    def step(x, y):
        loss, state["params"] = update(state["params"], x, y)
        return loss.block_until_ready()

    return step, lambda a: jnp.asarray(a)


def torch_step_factory(values, dtype, batch):
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(1)
    params = [torch.tensor(v, requires_grad=True) for v in values]

    def step(x, y):
        h = x
        for k in range(0, len(params), 2):
            h = h @ params[k] + params[k + 1]
            if k + 2 < len(params):
                h = torch.tanh(h)
        loss = -(torch.log_softmax(h, dim=1) * y).sum(dim=1).mean()
        loss.backward()
        with torch.no_grad():
            for p in params:
                p -= LR * p.grad
                p.grad = None
        return loss.item()

    return step, torch.from_numpy


def chainrule_factory(blas):
    def make(values, dtype, batch):
        if blas == "scipy" and not scipy_blas_available():
            return None
        sizes = [values[0].shape[0]] + [v.shape[1] for v in values[0::2]]
        f, _ = chainrule_step(sizes, batch, dtype, LR, values, blas)
        return f, lambda a: a
    return make


PEERS = [("chainrule", chainrule_factory(None)),
         ("chainrule blas='scipy'", chainrule_factory("scipy")),
         ("JAX jit", jax_step_factory),
         ("PyTorch eager", torch_step_factory)]


def main(quick=False):
    print(machine_info())
    versions = []
    for mod in ("jax", "torch"):
        try:
            versions.append(f"{mod} {__import__(mod).__version__}")
        except ImportError:
            versions.append(f"{mod} not installed")
    print("peers: " + ", ".join(versions))
    blocks = 8 if quick else 30
    rows = []
    for sizes, batch in (((784, 256, 10), 128), ((16, 32, 4), 8)):
        for dtype in ("float64", "float32"):
            rng = np.random.default_rng(1)
            values = init(sizes, dtype)
            x = rng.standard_normal((batch, sizes[0])).astype(dtype)
            y = np.eye(sizes[-1], dtype=dtype)[rng.integers(0, sizes[-1], batch)]
            for name, factory in PEERS:
                made = factory(values, dtype, batch)
                if made is None:
                    continue
                step, convert = made
                reference, _ = numpy_step_factory(values, LR)
                xs, ys = convert(x), convert(y)
                for _ in range(3):  # same math: same losses step after step
                    got, want = float(step(xs, ys)), float(reference(x, y))
                    assert np.isclose(got, want, rtol=1e-4 if dtype == "float32" else 1e-9), \
                        (name, got, want)
                t_peer, t_np, ratio = blocked_times(lambda: step(xs, ys), lambda: reference(x, y),
                                                    blocks=blocks)
                rows.append(("-".join(map(str, sizes)), batch, dtype, name, us(t_peer), us(t_np),
                             f"{ratio:.2f}"))
    print("\nSGD train step, median microseconds over alternating blocks of calls; "
          "ratio = implementation / hand-written NumPy (median of the blocks)")
    print(table(["MLP", "batch", "dtype", "implementation", "us", "hand-written numpy us",
                 "ratio"], rows))


if __name__ == "__main__":
    main(quick="--quick" in sys.argv)
