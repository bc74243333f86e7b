"""pprint reads back as the graph (Python's precedence and associativity),
names shared subexpressions without clashes; debugprint shows the attributes
that define an op."""

import numpy as np
from hypothesis import given, settings, strategies as st

import chainrule as cr

X, Y, Z = cr.placeholder("x"), cr.placeholder("y"), cr.placeholder("z")
VALUES = {"x": 1.7, "y": 0.6, "z": 2.3}
FEED = {X: VALUES["x"], Y: VALUES["y"], Z: VALUES["z"]}
# 0-d arrays: NumPy's arithmetic, as the graph's ((-2.0) ** 0.6 is nan, not
# a Python complex)
ENV = dict({k: np.asarray(v) for k, v in VALUES.items()}, exp=np.exp, sin=np.sin, cos=np.cos,
           tanh=np.tanh, nan=np.nan, inf=np.inf)


def _readback(e):
    """(the graph's value, the value of its pprint text run as Python)"""
    with np.errstate(all="ignore"):
        return float(cr.evaluate(e, FEED)), float(eval(cr.pprint(e), dict(ENV)))


def test_known_precedence_traps():
    A, B, C = (cr.placeholder(n, (2, 2)) for n in "ABC")
    assert cr.pprint((X ** Y) ** Z) == "(x ** y) ** z"
    assert cr.pprint(X ** (Y ** Z)) == "x ** y ** z"
    assert cr.pprint(cr.constant(-2.0) ** X) == "(-2.0) ** x"
    assert cr.pprint(A * (B @ C)) == "A * (B @ C)"
    assert cr.pprint(cr.less(cr.less(X, Y), Z)) == "(x < y) < z"
    assert cr.pprint(X * (Y * (Z * 1e-300))) == "x * (y * (1e-300 * z))"
    for e in ((X ** Y) ** Z, cr.constant(-2.0) ** (X - X + 2.0), -(X ** 2), (-X) ** 2,
              X ** -Y):
        got, want = _readback(e)
        assert got == want, cr.pprint(e)


_LEAVES = st.sampled_from([X, Y, Z, cr.constant(-2.0), cr.constant(0.5), cr.constant(3.0)])


def _combine(children):
    unary = st.tuples(st.sampled_from([cr.negative, cr.exp, cr.sin, cr.tanh]), children)
    binary = st.tuples(st.sampled_from([cr.add, cr.subtract, cr.multiply, cr.divide,
                                        cr.power]), children, children)
    return unary.map(lambda t: t[0](t[1])) | binary.map(lambda t: t[0](t[1], t[2]))


@settings(max_examples=300, deadline=None)
@given(st.recursive(_LEAVES, _combine, max_leaves=8))
def test_pprint_reads_back_as_the_same_value(e):
    """Random expressions of + - * / ** and unary functions over scalars and
    negative constants: the text, run as Python, computes the graph's value
    exactly (a + (b + c) keeps its brackets: floats do not reassociate)."""
    with np.errstate(all="ignore"):
        got, want = _readback(e)
    np.testing.assert_array_equal(want, got, err_msg=cr.pprint(e))


def test_shared_subexpressions_get_distinct_names():
    h1 = cr.tanh(cr.sin(X) * cr.exp(Y) + cr.exp(X) * cr.sin(Y) + 1.0)
    h1.name = "h"
    h2 = cr.tanh(cr.exp(X) * cr.sin(Z) + cr.exp(Z) * cr.sin(X) + 2.0)
    h2.name = "h"
    text = cr.pprint(h1 * h1 + h2 * h2)
    assert text.startswith("h = ") and "; h_2 = " in text and text.endswith("h * h + h_2 * h_2")
    t1 = cr.placeholder("t1")
    a = cr.sin(cr.exp(X) * cr.sin(Y) + cr.exp(Y) * cr.sin(X) + 3.0)
    text = cr.pprint(a * a + t1)
    label = text.split(" = ")[0]
    assert label != "t1" and text.endswith(f"t1 + {label} * {label}"), text


def test_debugprint_shows_the_attributes_that_define_an_op():
    A, B = cr.placeholder("A", (3, 3)), cr.placeholder("B", (3, 3))
    p = cr.debugprint(cr.tensordot(A, B, axes=1)).splitlines()[-1]
    q = cr.debugprint(cr.tensordot(A, B, axes=([0], [1]))).splitlines()[-1]
    assert "axes=([1], [0])" in p and "axes=([0], [1])" in q
    assert "[::-1, 2]" in cr.debugprint(A[::-1, 2]).splitlines()[-1]


def test_an_intermediate_named_like_a_placeholder_gets_its_own_label():
    h = cr.tanh(X) * cr.exp(X) + cr.sin(X) * cr.cos(X) + cr.tanh(X * X)
    h.name = "x"
    e = h * Y + h + X
    text = cr.pprint(e)
    assert text.startswith("x_2 = "), text
    *lets, body = text.split("; ")
    env = dict(ENV)
    for line in lets:
        exec(line, env)
    with np.errstate(all="ignore"):
        assert float(eval(body, env)) == float(cr.evaluate(e, FEED))
