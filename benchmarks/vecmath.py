"""NumPy's math functions against glibc's vectorised ones (``vecmath="libmvec"``).

For each function and float dtype: the median time of NumPy's function and of
the wrapper the generated code calls with ``vecmath="libmvec"`` (both writing
into a preallocated output, timed alternately), their ratio, and the largest
difference between the two results in units in the last place of NumPy's.

    python benchmarks/vecmath.py [--quick]
"""

from __future__ import annotations

import sys

import _common  # noqa: F401  (first: pins BLAS threads)
import numpy as np
from _common import machine_info, paired_times, table, us

from chainrule.backends import vecmath
from chainrule.errors import ChainruleError

SAMPLES = {  # a typical argument range for each function
    "exp": (-10, 10), "exp2": (-10, 10), "expm1": (-10, 10),
    "log": (1e-3, 1e3), "log2": (1e-3, 1e3), "log10": (1e-3, 1e3), "log1p": (-0.9, 1e3),
    "sin": (-10, 10), "cos": (-10, 10), "tan": (-1.5, 1.5),
    "arcsin": (-1, 1), "arccos": (-1, 1), "arctan": (-10, 10),
    "sinh": (-10, 10), "cosh": (-10, 10), "tanh": (-5, 5),
    "arcsinh": (-10, 10), "arccosh": (1, 10), "arctanh": (-0.99, 0.99), "cbrt": (-10, 10),
}


def run(n, repeat, names=None):
    rng = np.random.default_rng(0)
    rows = []
    for name in names or sorted(vecmath.FUNCTIONS):
        for dtype in ("float64", "float32"):
            lo, hi = SAMPLES[name]
            a = rng.uniform(lo, hi, n).astype(dtype)
            vecmath.prepare([name], [dtype])
            ours, theirs = getattr(vecmath.np, name), getattr(np, name)
            o1, o2 = np.empty_like(a), np.empty_like(a)
            t_np, t_vm, ratio = paired_times(lambda: theirs(a, out=o1), lambda: ours(a, out=o2),
                                             repeat=repeat)
            want = theirs(a)
            ulp = np.max(np.abs(ours(a).astype(np.float64) - want)
                         / np.spacing(np.abs(want)).astype(np.float64))
            rows.append((name, dtype, us(t_np), us(t_vm), f"{ratio:.1f}", f"{ulp:.0f}"))
    return rows


def main(quick=False):
    print(machine_info())
    try:
        vecmath.check_available("libmvec")
    except ChainruleError as exc:
        print(f"skipped: {exc}")
        return
    print(f"libmvec: {vecmath._state['library']}")
    n = 128 * 256  # the hidden layer of benchmarks/mlp_step.py's large MLP
    rows = run(n, 20 if quick else 200)
    print(f"\n{n} elements, median microseconds (alternating calls); speed-up = NumPy / "
          f"libmvec; ulp = largest difference from NumPy's result")
    print(table(["function", "dtype", "numpy us", "libmvec us", "speed-up", "ulp"], rows))


if __name__ == "__main__":
    main(quick="--quick" in sys.argv)
