"""Hessians of the Rosenbrock function: build+compile time, evaluation time
of cr.hessian, against the closed-form NumPy Hessian and a Python loop of n
hvp calls, measured in the same run; and hvp at n = 100,000.

    python benchmarks/hessian.py [--quick]
"""

from __future__ import annotations

from _common import machine_info, median_time, ms, table  # first: pins BLAS threads

import sys
import time

import numpy as np

import chainrule as cr


def rosenbrock(x):
    return (100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2).sum()


def hessian_numpy(x):
    n = x.size
    H = np.zeros((n, n))
    d = np.zeros(n)
    d[:-1] = 1200 * x[:-1] ** 2 - 400 * x[1:] + 2
    d[1:] += 200
    idx = np.arange(n)
    H[idx, idx] = d
    off = -400 * x[:-1]
    H[idx[:-1], idx[1:]] = off
    H[idx[1:], idx[:-1]] = off
    return H


def hvp_numpy(x, v):
    out = np.zeros_like(x)
    out[:-1] = (1200 * x[:-1] ** 2 - 400 * x[1:] + 2) * v[:-1] - 400 * x[:-1] * v[1:]
    out[1:] += 200 * v[1:] - 400 * x[:-1] * v[:-1]
    return out


def main(quick=False):
    print(machine_info())
    rng = np.random.default_rng(0)
    rows = []
    sizes = (10, 100) if quick else (10, 100, 1000)
    for n in sizes:
        t0 = time.perf_counter()
        x = cr.placeholder("x", (n,))
        v = cr.placeholder("v", (n,))
        cost = rosenbrock(x)
        H = cr.hessian(cost, x)
        f_h = cr.function([x], H)
        t_compile = time.perf_counter() - t0
        f_hvp = cr.function([x, v], cr.hvp(cost, x, v))
        xv = rng.uniform(-1, 1, n)
        assert np.allclose(f_h(xv), hessian_numpy(xv))
        basis = np.eye(n)
        t_h = median_time(lambda: f_h(xv), repeat=50 if n >= 1000 else 200)
        t_np = median_time(lambda: hessian_numpy(xv), repeat=200)
        t_loop = median_time(lambda: [f_hvp(xv, basis[i]) for i in range(n)],
                             repeat=5 if n >= 1000 else 20, warmup=1)
        rows.append((n, f"{t_compile:.3f}", ms(t_h), ms(t_np), ms(t_loop),
                     f"{t_h / t_np:.1f}", f"{t_loop / t_h:.1f}"))
    print("\nRosenbrock Hessian (times in ms; compile in s)")
    print(table(["n", "build+compile s", "cr.hessian", "numpy closed form",
                 "loop of n hvp", "hessian/numpy", "loop/hessian"], rows))

    n = 100_000 if not quick else 10_000
    x = cr.placeholder("x", (n,))
    v = cr.placeholder("v", (n,))
    f = cr.function([x, v], cr.hvp(rosenbrock(x), x, v))
    xv, vv = rng.uniform(-1, 1, n), rng.standard_normal(n)
    assert np.allclose(f(xv, vv), hvp_numpy(xv, vv))
    t_c = median_time(lambda: f(xv, vv), repeat=100)
    t_n = median_time(lambda: hvp_numpy(xv, vv), repeat=100)
    print(f"\nhvp at n = {n}: chainrule {ms(t_c)} ms, closed-form numpy {ms(t_n)} ms, "
          f"ratio {t_c / t_n:.2f}")


if __name__ == "__main__":
    main(quick="--quick" in sys.argv)
