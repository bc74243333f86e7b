"""Integer and bool operands through the optimizer and both backends.

NumPy computes an op whose result is a float in that float type, converting
int and bool operands first; in their own type they would wrap around (-u
for an unsigned u, square(x) past the int's range) or not be defined at all
(-b for a bool). A rewrite must keep that: optimize=True, optimize=False and
the interpreter agree with hand-written NumPy, in value and in dtype.
"""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr

CONFIGS = [("numpy", True), ("numpy", False), ("interpreter", True), ("interpreter", False)]


def check(inputs, output, values, expected, rtol=1e-12, atol=0.0):
    """Every backend, optimized or not, gives ``expected`` (a NumPy array,
    its dtype included), which is also the dtype the graph declares."""
    expected = np.asarray(expected)
    assert output.dtype == expected.dtype
    for backend, optimize in CONFIGS:
        got = cr.function(inputs, output, backend=backend, optimize=optimize)(*values)
        where = f"backend={backend}, optimize={optimize}"
        assert got.dtype == expected.dtype, where
        if expected.dtype.kind == "f":
            np.testing.assert_allclose(got, expected, rtol=rtol, atol=atol, err_msg=where)
        else:
            np.testing.assert_array_equal(got, expected, err_msg=where)


# -- collecting like terms (optimize=True) over integer and bool atoms ----------

def test_collect_unsigned_atoms_do_not_wrap():
    u = cr.placeholder("u", (2,), "uint8")
    v = cr.placeholder("v", (2,), "uint8")
    hu, hv = u * 0.5, v * 0.5
    uv, vv = np.array([1, 10], np.uint8), np.array([2, 3], np.uint8)
    expected = (uv * 0.5 + uv * 0.5) - (vv * 0.5 + vv * 0.5)  # [-1, 7]
    check([u, v], (hu + hu) - (hv + hv), [uv, vv], expected)


def test_collect_int_atoms_do_not_overflow():
    x = cr.placeholder("x", (3,), "int32")
    h = x * 0.5
    xv = np.array([50000, 3, -70000], np.int32)
    hv = xv * 0.5
    check([x], h * x + h * x, [xv], hv * xv + hv * xv)  # 2.5e9 does not fit int32


def test_collect_narrower_float_atoms_are_widened_first():
    # the same for a float32 atom of a float64 polynomial: a * a overflows
    # in float32, not in the float64 the graph computes it in
    a = cr.placeholder("a", (2,), "float32")
    h = a * cr.constant(0.5)  # float64
    av = np.array([1e20, 3], np.float32)
    hv = av * np.float64(0.5)
    check([a], h * a + h * a, [av], hv * av + hv * av)


def test_collect_bool_atoms():
    a = cr.placeholder("a", (4,), "bool")
    b = cr.placeholder("b", (4,), "bool")
    e = (a * 0.5 + a * 0.5) * (b * 0.5 + b * 0.5) - a * b * 1.0
    av = np.array([True, True, False, False])
    bv = np.array([True, False, True, False])
    expected = (av * 0.5 + av * 0.5) * (bv * 0.5 + bv * 0.5) - av * bv * 1.0
    check([a, b], e, [av, bv], expected)


# -- stabilisation -------------------------------------------------------------

@pytest.mark.parametrize("dtype, values", [
    ("uint8", [0, 1, 3, 10, 200]),
    ("int8", [-128, -3, 0, 5, 127]),
    ("bool", [True, False, True, False, False]),
])
def test_log_sigmoid_of_integers(dtype, values):
    x = cr.placeholder("x", (5,), dtype)
    xv = np.array(values, dtype)
    y = xv.astype(np.float64)  # sigmoid of an int or bool is a float64
    expected = -np.log1p(np.exp(-y))
    check([x], cr.log(cr.sigmoid(x)), [xv], expected, rtol=1e-12, atol=1e-15)


# -- softmax, log_softmax, logsumexp compute in their float type ---------------

@pytest.mark.parametrize("dtype, values", [
    ("uint8", [0, 1, 2, 3]),
    ("int8", [-100, 100, 0, 3]),
    ("bool", [True, False, True, True]),
])
def test_softmax_family_of_integers(dtype, values):
    x = cr.placeholder("x", (4,), dtype)
    xv = np.array(values, dtype)
    y = xv.astype(np.float64)
    lse = y.max() + np.log(np.sum(np.exp(y - y.max())))
    # NumPy's exp gives these integer types float16
    cases = [(cr.softmax(x), np.exp(y - lse)), (cr.log_softmax(x), y - lse),
             (cr.logsumexp(x), lse)]
    for out, ref in cases:
        check([x], out, [xv], np.asarray(ref).astype(np.float16), rtol=2e-3, atol=1e-4)


def test_softmax_of_integers_over_an_axis():
    x = cr.placeholder("x", (2, 3), "int16")
    xv = np.array([[300, 301, 299], [-32768, 0, 32767]], np.int16)
    y = xv.astype(np.float64)
    m = y.max(axis=0, keepdims=True)
    lse = m + np.log(np.sum(np.exp(y - m), axis=0, keepdims=True))
    check([x], cr.log_softmax(x, axis=0), [xv], (y - lse).astype(np.float32), rtol=1e-6)
    check([x], cr.logsumexp(x, axis=0, keepdims=True), [xv], lse.astype(np.float32),
          rtol=1e-6)


# -- algebraic rules ------------------------------------------------------------

def test_bool_times_itself_stays_bool():
    b = cr.placeholder("b", (3,), "bool")
    bv = np.array([True, False, True])
    check([b], b * b, [bv], bv * bv)


def test_sqrt_of_a_wrapped_integer_square():
    x = cr.placeholder("x", (4,), "int8")
    xv = np.array([-128, 17, 3, -5], np.int8)  # squares 0, 33 (289 wraps), 9, 25
    check([x], cr.sqrt(cr.square(x)), [xv], np.sqrt(np.square(xv)), rtol=1e-3)


def test_negation_of_an_integer_is_not_moved_into_a_float():
    u = cr.placeholder("u", (3,), "uint8")
    i = cr.placeholder("i", (3,), "int8")
    y = cr.placeholder("y", (3,))
    uv = np.array([1, 2, 200], np.uint8)
    iv = np.array([-128, 3, 5], np.int8)
    yv = np.array([1.0, 2.0, 3.0])
    cases = [((-u) * y, np.negative(uv) * yv), (y / (-u), yv / np.negative(uv)),
             (y + (-u), yv + np.negative(uv)), (y - (-i), yv - np.negative(iv)),
             ((-i) - y, np.negative(iv) - yv)]
    for out, expected in cases:
        check([u, i, y], out, [uv, iv, yv], expected)


def test_sum_of_a_broadcast_whose_count_overflows_float16():
    x = cr.placeholder("x", (), "float16")
    xv = np.float16(0.001)
    expected = np.broadcast_to(xv, (70000,)).sum()  # 70, while 70000 is inf in float16
    check([x], cr.sum(cr.broadcast_to(x, (70000,))), [xv], expected, rtol=1e-3)


# -- relu keeps a bool a bool ---------------------------------------------------

def test_relu_of_bool():
    b = cr.placeholder("b", (3,), "bool")
    bv = np.array([True, False, True])
    r = cr.relu(b)
    check([b], r, [bv], np.maximum(bv, False))
    check([b], r + r, [bv], np.maximum(bv, False) + np.maximum(bv, False))


@pytest.mark.parametrize("dtype,value,scalar", [
    ("int8", [1, -2, 127], 300), ("uint8", [1, 2, 255], -1), ("uint32", [1, 7, 9], -3),
    ("uint64", [1, 2, 3], -1), ("int16", [5, -6, 7], 2 ** 40), ("bool", [True, False, True], 1000),
])
def test_integers_divided_by_a_python_int_outside_their_range(dtype, value, scalar):
    """NumPy divides integers in float64, a Python int operand included:
    int8 / 300 is a float64 array, not an int8 overflow (either side)."""
    x = cr.placeholder("x", (3,), dtype)
    v = np.array(value, dtype)
    with np.errstate(divide="ignore"):  # 1000 / False
        cases = ((x / scalar, v / scalar), (scalar / x, scalar / v))
    for expr, want in cases:
        with np.errstate(divide="ignore"):
            got = cr.function([x], expr)(v)
        assert got.dtype == want.dtype == np.float64
        np.testing.assert_array_equal(got, want)
