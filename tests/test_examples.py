"""Every script in examples/ runs, exits 0 and prints the right numbers; the
code in docs/ runs and prints what the pages show.

Expected values come from elsewhere: the seed circuits are checked against
their hand-derived derivatives, the logistic regression against a falling
loss and an accuracy well above chance. Everything runs in a subprocess, so
node ids and hash-consed constants from other tests cannot leak in.
"""

import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))


def run_example(name_or_path):
    path = ROOT / "examples" / name_or_path if isinstance(name_or_path, str) else name_or_path
    proc = subprocess.run([sys.executable, str(path)], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, (
        f"{path.name} exited with {proc.returncode}\n--- stdout\n{proc.stdout}"
        f"\n--- stderr\n{proc.stderr}")
    return proc.stdout


def numbers_after(label, text):
    """The floats printed after ``label =`` on the first line that has it."""
    m = re.search(re.escape(label) + r"\s*=\s*(-?[\d.]+(?:e[-+]?\d+)?)", text)
    assert m, f"{label!r} not found in output:\n{text}"
    return float(m.group(1))


def test_examples_exist():
    names = {p.name for p in EXAMPLES}
    assert {"seed_circuits.py", "logistic_regression.py"} <= names


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(path):
    out = run_example(path)
    assert out.strip(), f"{path.name} printed nothing"


def test_seed_circuits_values_and_gradients():
    out = run_example("seed_circuits.py")
    add_mul, mul, neuron, _source = re.split(
        r"\n(?=x \* y at|logistic neuron at|Generated NumPy source)", out)

    # (x + y) * z at (-2, 5, -4): value -12, gradients (z, z, x + y) = (-4, -4, 3)
    assert numbers_after("f", add_mul) == -12
    assert numbers_after("df/dx", add_mul) == -4
    assert numbers_after("df/dy", add_mul) == -4
    assert numbers_after("df/dz", add_mul) == 3

    # x * y at (2, -6): value -12, d/dx = y = -6, d/dy = x = 2
    assert numbers_after("f", mul) == -12
    assert numbers_after("df/dx", mul) == -6
    assert numbers_after("df/dy", mul) == 2

    # the logistic neuron at w=2, x=-1, b=0.5, y=1, derived by hand here
    s = 1 / (1 + math.exp(-(2.0 * -1.0 + 0.5)))
    dz = -(1.0 - s) * s * (1 - s)
    assert numbers_after("L", neuron) == pytest.approx(0.5 * (1 - s) ** 2, abs=1e-6)
    assert numbers_after("dL/dw", neuron) == pytest.approx(-1.0 * dz, abs=1e-6)
    assert numbers_after("dL/db", neuron) == pytest.approx(dz, abs=1e-6)


def test_seed_circuits_printed_source_runs_with_numpy_alone():
    out = run_example("seed_circuits.py")
    source = out.split("Generated NumPy source", 1)[1].split("\n", 1)[1]
    assert "def compiled(w, x, b, y):" in source
    namespace = {}
    exec(compile(source, "<seed_circuits source>", "exec"), namespace)
    (L, gw, gb), updates = namespace["compiled"](
        np.float64(2.0), np.float64(-1.0), np.float64(0.5), np.float64(1.0))
    s = 1 / (1 + math.exp(1.5))
    dz = -(1.0 - s) * s * (1 - s)
    assert updates == []
    assert float(L) == pytest.approx(0.5 * (1 - s) ** 2, rel=1e-12)
    assert float(gw) == pytest.approx(-dz, rel=1e-12)
    assert float(gb) == pytest.approx(dz, rel=1e-12)


def test_logistic_regression_learns():
    out = run_example("logistic_regression.py")
    losses = [float(v) for v in re.findall(r"^step\s+\d+\s+loss\s+([\d.]+)$", out, re.M)]
    assert len(losses) >= 5, out
    # all-zero weights start at log(2), the loss of a coin flip
    assert losses[0] == pytest.approx(math.log(2), abs=1e-4)
    assert all(b < a for a, b in zip(losses, losses[1:])), losses
    assert losses[-1] < 0.3
    final = float(re.search(r"final loss\s+([\d.]+)", out).group(1))
    assert final == pytest.approx(losses[-1], abs=1e-4)
    accuracy = float(re.search(r"accuracy\s+([\d.]+)", out).group(1))
    assert accuracy > 0.85


# -- the docs' code is an example too ------------------------------------------

def test_api_reference_doctests_pass():
    """Every ``>>>`` example in docs/api.md gives the output shown (in a fresh
    interpreter, so node ids and shared constants do not leak in)."""
    proc = subprocess.run(
        [sys.executable, "-m", "doctest", "-o", "ELLIPSIS", "-o", "NORMALIZE_WHITESPACE",
         "docs/api.md"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


_RUN_MARKDOWN = r'''
import contextlib, io, re, sys
text = open(sys.argv[1]).read()
blocks = re.compile(r"```python\n(.*?)```(?:\n\n```text\n(.*?)```)?", re.S)
namespace = {"__name__": "__doc__"}
failures = 0
for k, m in enumerate(blocks.finditer(text), 1):
    code, shown = m.group(1), m.group(2)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, f"{sys.argv[1]} block {k}", "exec"), namespace)
    if shown is not None and "# output varies" not in code and out.getvalue() != shown:
        failures += 1
        print(f"block {k} printed:\n{out.getvalue()}\nbut the page shows:\n{shown}")
sys.exit(1 if failures else 0)
'''


def test_how_it_works_blocks_print_what_the_page_shows():
    """docs/how-it-works.md: each ```python block runs (in order, one session)
    and prints exactly the ```text block under it, unless marked
    "# output varies". A failure means the page is out of date."""
    proc = subprocess.run([sys.executable, "-c", _RUN_MARKDOWN, "docs/how-it-works.md"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
