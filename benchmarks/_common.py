"""Shared helpers for the benchmark scripts: machine info and timing.

Importing this module first pins BLAS to one thread (unless the caller set
it): on a small shared machine a multi-threaded BLAS that competes with
another process for the cores makes every timing noise. Both sides of every
comparison use the same BLAS, so ratios stay fair. Override with e.g.
``OPENBLAS_NUM_THREADS=2 python benchmarks/mlp_step.py``.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import os
import platform
import statistics
import sys
import time

import numpy as np


def machine_info() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    blas = ""
    try:
        cfg = np.show_config(mode="dicts")
        blas = cfg["Build Dependencies"]["blas"]["name"]
    except Exception:
        pass
    threads = os.environ.get("OPENBLAS_NUM_THREADS", "?")
    return (f"machine: {cpu}, {os.cpu_count()} cores; Python {sys.version.split()[0]}, "
            f"NumPy {np.__version__} ({blas or 'blas ?'}, {threads} BLAS thread(s))")


def median_time(fn, repeat=200, warmup=5, min_time=None) -> float:
    """Median seconds of ``fn()`` over ``repeat`` calls (after warm-up)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def once(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def table(headers, rows) -> str:
    cols = [[str(h)] + [str(r[i]) for r in rows] for i, h in enumerate(headers)]
    widths = [max(len(c) for c in col) for col in cols]
    lines = ["  ".join(h.rjust(w) for h, w in zip(headers, widths))]
    lines.append("  ".join("-" * w for w in widths))
    for r in rows:
        lines.append("  ".join(str(v).rjust(w) for v, w in zip(r, widths)))
    return "\n".join(lines)


def ms(t) -> str:
    return f"{t * 1e3:.3f}"


def us(t) -> str:
    return f"{t * 1e6:.1f}"


def paired_times(fa, fb, repeat=200, warmup=5):
    """Median seconds of ``fa`` and of ``fb`` timed alternately (so load
    changes on a shared machine hit both alike) and the median ratio a/b."""
    for _ in range(warmup):
        fa()
        fb()
    ta, tb, ratios = [], [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fa()
        t1 = time.perf_counter()
        fb()
        t2 = time.perf_counter()
        ta.append(t1 - t0)
        tb.append(t2 - t1)
        ratios.append((t1 - t0) / (t2 - t1))
    return statistics.median(ta), statistics.median(tb), statistics.median(ratios)


def blocked_times(fa, fb, blocks=30, block=10, warmup=5):
    """Median seconds of ``fa`` and ``fb`` and their ratio, timed in
    alternating blocks of ``block`` calls; the first call of each block is
    not counted. Alternating blocks keep load changes on a shared machine
    fair to both sides, while each side runs in its own steady state (the
    C library's heap: one side's freed large temporaries do not decide
    where the other's land, as they do when single calls alternate)."""
    for _ in range(warmup):
        fa()
        fb()
    ta, tb, ratios = [], [], []
    for _ in range(blocks):
        times = []
        for fn, out in ((fa, ta), (fb, tb)):
            fn()
            block_times = []
            for _ in range(block - 1):
                t0 = time.perf_counter()
                fn()
                block_times.append(time.perf_counter() - t0)
            out.extend(block_times)
            times.append(statistics.median(block_times))
        ratios.append(times[0] / times[1])
    return statistics.median(ta), statistics.median(tb), statistics.median(ratios)
