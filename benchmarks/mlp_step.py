"""One SGD train step of an MLP (loss, all gradients, parameter updates)
compiled by cr.function(..., updates=...), against a careful hand-written
NumPy forward/backward/update of the same math, measured in the same run.

    python benchmarks/mlp_step.py [--quick]
"""

from __future__ import annotations

from _common import machine_info, median_time, paired_times, table, us  # first: pins BLAS threads

import sys

import numpy as np

import chainrule as cr


def init(sizes, dtype, seed=0):
    rng = np.random.default_rng(seed)
    params = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        params.append((rng.standard_normal((a, b)) / np.sqrt(a)).astype(dtype))
        params.append(np.zeros(b, dtype))
    return params


def chainrule_step(sizes, batch, dtype, lr, values):
    x = cr.placeholder("x", (batch, sizes[0]), dtype)
    y = cr.placeholder("y", (batch, sizes[-1]), dtype)  # one-hot targets
    params = [cr.parameter(v, f"{'W' if k % 2 == 0 else 'b'}{k // 2 + 1}")
              for k, v in enumerate(values)]
    h = x
    for k in range(0, len(params), 2):
        h = h @ params[k] + params[k + 1]
        if k + 2 < len(params):
            h = cr.tanh(h)
    loss = -(cr.log_softmax(h) * y).sum(axis=1).mean()
    loss.name = "loss"
    grads = cr.grad(loss, params)
    f = cr.function([x, y], loss, updates={p: p - lr * g for p, g in zip(params, grads)})
    return f, params


def numpy_step_factory(values, lr):
    """The hand-written baseline: forward, backward and in-place update."""
    W = [v.copy() for v in values]
    n_layers = len(W) // 2

    def step(x, y):
        hs = [x]
        h = x
        for k in range(n_layers):
            z = h @ W[2 * k]
            z += W[2 * k + 1]
            if k + 1 < n_layers:
                np.tanh(z, out=z)
            hs.append(z)
            h = z
        logits = h
        m = logits.max(axis=1, keepdims=True)
        shifted = logits - m
        e = np.exp(shifted)
        s = e.sum(axis=1, keepdims=True)
        loss = -np.mean(np.sum((shifted - np.log(s)) * y, axis=1))
        g = e / s
        g -= y
        g /= x.shape[0]
        for k in reversed(range(n_layers)):
            h_in = hs[k]
            gW = h_in.T @ g
            gb = g.sum(axis=0)
            if k > 0:
                g = g @ W[2 * k].T
                g *= 1 - h_in * h_in
            W[2 * k] -= lr * gW
            W[2 * k + 1] -= lr * gb
        return loss

    return step, W


def run(sizes, batch, dtype, repeat):
    rng = np.random.default_rng(1)
    values = init(sizes, dtype)
    lr = 0.1
    x = rng.standard_normal((batch, sizes[0])).astype(dtype)
    y = np.eye(sizes[-1], dtype=dtype)[rng.integers(0, sizes[-1], batch)]
    f, params = chainrule_step(sizes, batch, dtype, lr, values)
    step, W = numpy_step_factory(values, lr)
    # correctness: same loss and same parameters after a few steps
    for _ in range(3):
        l1, l2 = f(x, y), step(x, y)
        assert np.allclose(l1, l2, rtol=1e-4 if dtype == "float32" else 1e-10), (l1, l2)
    for p, w in zip(params, W):
        assert np.allclose(p.value, w, rtol=1e-3 if dtype == "float32" else 1e-8, atol=1e-6)
    return paired_times(lambda: f(x, y), lambda: step(x, y), repeat=repeat)


def main(quick=False):
    print(machine_info())
    repeat = 50 if quick else 300
    rows = []
    for sizes, batch in (((784, 256, 10), 128), ((16, 32, 4), 8)):
        for dtype in ("float64", "float32"):
            t_cr, t_np, ratio = run(sizes, batch, dtype, repeat)
            rows.append(("-".join(map(str, sizes)), batch, dtype, us(t_cr), us(t_np),
                         f"{ratio:.2f}"))
    print("\nSGD train step, median microseconds")
    print(table(["MLP", "batch", "dtype", "chainrule", "hand-written numpy",
                 "ratio (median of paired runs)"], rows))

    x, y, z = cr.placeholder("x"), cr.placeholder("y"), cr.placeholder("z")
    out = (x + y) * z
    f = cr.function([x, y, z], [out] + cr.grad(out, [x, y, z]))
    t = median_time(lambda: f(-2.0, 5.0, -4.0), repeat=2000)
    print(f"\n(x+y)*z with its three gradients: {us(t)} us per call (target <= 5)")


if __name__ == "__main__":
    main(quick="--quick" in sys.argv)
