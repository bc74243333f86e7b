"""The cost model behind ``cr.jacobian(mode="auto")``: ``cr.explain_jacobian``
prices both modes in flops and picks the cheaper one. The classic cases:
reverse mode for a scalar loss of many parameters, forward mode for many
outputs of few inputs, and for a chain of matrix products, reverse when a
scalar is at the end and forward when it is at the start."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr

RNG = np.random.default_rng(0)


def mlp_loss():
    """A scalar loss of a 1000-parameter MLP, all parameters in one flat
    vector: W1 (10, 50) + b1 (50,) + W2 (50, 9) = 500 + 50 + 450."""
    x = cr.placeholder("x", (1, 10))
    theta = cr.placeholder("theta", (1000,))
    W1 = theta[:500].reshape(10, 50)
    b1 = theta[500:550]
    W2 = theta[550:].reshape(50, 9)
    loss = cr.sum((cr.tanh(x @ W1 + b1) @ W2) ** 2)
    return x, theta, loss


def test_report_structure():
    _, theta, loss = mlp_loss()
    r = cr.explain_jacobian(loss, theta)
    assert set(r) == {"primal_flops", "forward", "reverse", "choice"}
    assert r["forward"]["seeds"] == 1000 and r["reverse"]["seeds"] == 1
    assert r["choice"] in ("forward", "reverse")
    for mode in ("forward", "reverse"):
        assert r[mode]["flops"] > r["primal_flops"] > 0


def test_scalar_loss_of_a_1000_parameter_mlp_picks_reverse():
    _, theta, loss = mlp_loss()
    r = cr.explain_jacobian(loss, theta)
    assert r["choice"] == "reverse"
    # one backward sweep against a thousand tangents: orders of magnitude
    assert r["forward"]["flops"] > 100 * r["reverse"]["flops"]
    # the cheap-gradient principle: a small constant times the forward pass
    assert r["reverse"]["flops"] < 10 * r["primal_flops"]


def test_the_mlp_jacobian_in_auto_mode_is_the_reverse_one_and_right():
    x, theta, loss = mlp_loss()
    j = cr.jacobian(loss, theta)
    # the same graph as the reverse sweep (each call builds its own nodes;
    # cr.optimize merges equal ones)
    a, b = cr.optimize([j, cr.jacobian(loss, theta, mode="reverse")])
    assert a is b
    xv, tv = RNG.normal(size=(1, 10)), RNG.normal(size=1000) * 0.1
    got = cr.function([x, theta], j)(xv, tv)
    W1, b1, W2 = tv[:500].reshape(10, 50), tv[500:550], tv[550:].reshape(50, 9)
    h = np.tanh(xv @ W1 + b1)
    out = h @ W2
    g_out = 2 * out
    g_h = g_out @ W2.T * (1 - h ** 2)
    want = np.concatenate([(xv.T @ g_h).reshape(-1), g_h.reshape(-1),
                           (h.T @ g_out).reshape(-1)])
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


def test_1000_outputs_of_2_inputs_picks_forward():
    x = cr.placeholder("x", (2,))
    A = RNG.normal(size=(1000, 2))
    y = cr.tanh(A @ x) * x[0]
    r = cr.explain_jacobian(y, x)
    assert r["choice"] == "forward"
    assert r["forward"]["seeds"] == 2 and r["reverse"]["seeds"] == 1000
    assert r["reverse"]["flops"] > 100 * r["forward"]["flops"]
    j = cr.jacobian(y, x)
    a, b = cr.optimize([j, cr.jacobian(y, x, mode="forward")])
    assert a is b  # the same graph as the forward sweep, once optimized
    xv = np.array([0.3, -0.2])
    got = cr.function([x], j)(xv)
    t = np.tanh(A @ xv)
    want = (1 - t ** 2)[:, None] * A * xv[0]
    want[:, 0] += t
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


def _chain(sizes):
    """x of size sizes[0], then y = M_k ... M_1 x with M_i (sizes[i], sizes[i-1])."""
    x = cr.placeholder("x", (sizes[0],))
    h, mats = x, []
    for a, b in zip(sizes[:-1], sizes[1:]):
        m = RNG.normal(size=(b, a))
        mats.append(m)
        h = m @ h
    return x, h, mats


CHAIN = [200, 80, 20, 5, 1]


@pytest.mark.parametrize("sizes,choice", [(CHAIN, "reverse"), (CHAIN[::-1], "forward")],
                         ids=["scalar_at_the_end", "scalar_at_the_start"])
def test_chain_of_matrix_products(sizes, choice):
    x, y, mats = _chain(sizes)
    r = cr.explain_jacobian(y, x)
    assert r["choice"] == choice
    # the classic count: each mode costs about (1 + its seeds) primal passes
    primal = r["primal_flops"]
    assert primal == pytest.approx(sum(2 * a * b for a, b in zip(sizes, sizes[1:])))
    for mode in ("forward", "reverse"):
        seeds = r[mode]["seeds"]
        ratio = r[mode]["flops"] / (primal * (1 + seeds))
        assert 0.9 < ratio < 1.6, (mode, r)
    # and the Jacobian it picks is the product of the matrices
    j = cr.jacobian(y, x)
    want = mats[0]
    for m in mats[1:]:
        want = m @ want
    got = cr.function([x], j)(np.ones(sizes[0]))
    np.testing.assert_allclose(got, want, rtol=1e-12)


@pytest.mark.parametrize("first,last,choice", [((1, 100), (10, 1), "reverse"),
                                               ((1, 1), (10, 100), "forward")])
def test_chain_of_placeholder_matrices(first, last, choice):
    """x (1, n) @ M1 @ M2 @ M3 with placeholder matrices of known sizes."""
    X = cr.placeholder("X", first)
    n = first[1]
    Ms = [cr.placeholder("M1", (n, 50)), cr.placeholder("M2", (50, last[0])),
          cr.placeholder("M3", last)]
    y = X @ Ms[0] @ Ms[1] @ Ms[2]
    assert cr.explain_jacobian(y, X)["choice"] == choice


def test_elementwise_1d_prefers_the_banded_forward_sweep():
    """For an elementwise function of a 1-D input the forward sweep carries
    one diagonal, far cheaper than n dense cotangents."""
    x = cr.placeholder("x", (300,))
    r = cr.explain_jacobian(cr.sin(x[1:]) * x[:-1] + x[1:], x)
    assert r["choice"] == "forward"
    assert r["reverse"]["flops"] > 2 * r["forward"]["flops"]


def test_explain_jacobian_errors():
    x = cr.placeholder("x", (None,))
    with pytest.raises(cr.ShapeError, match="known"):
        cr.explain_jacobian(cr.sum(x), x)
    i = cr.placeholder("i", (3,), "int64")
    with pytest.raises(cr.NotDifferentiableError, match="no derivative"):
        cr.explain_jacobian(i + 1, i)
