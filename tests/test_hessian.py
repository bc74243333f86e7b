"""``cr.hessian`` and ``cr.hvp`` against closed forms and finite differences."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr

from conftest import BACKENDS


# -- Rosenbrock -------------------------------------------------------------------

def rosenbrock(x):
    """The n-variable Rosenbrock function, written with slices (works on
    chainrule Vars and NumPy arrays alike)."""
    return (100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2).sum()


def rosenbrock_grad(x):
    g = np.zeros_like(x)
    g[:-1] += -400.0 * x[:-1] * (x[1:] - x[:-1] ** 2) - 2.0 * (1.0 - x[:-1])
    g[1:] += 200.0 * (x[1:] - x[:-1] ** 2)
    return g


def rosenbrock_hessian(x):
    n = x.size
    h = np.zeros((n, n))
    i = np.arange(n - 1)
    h[i, i] += 1200.0 * x[:-1] ** 2 - 400.0 * x[1:] + 2.0
    h[i + 1, i + 1] += 200.0
    h[i, i + 1] = h[i + 1, i] = -400.0 * x[:-1]
    return h


def test_closed_forms_are_right():
    """The closed forms used below, against finite differences of each other."""
    x = np.random.default_rng(1).normal(size=4)
    eps = 1e-6
    for i in range(4):
        e = np.eye(4)[i] * eps
        fd = (rosenbrock(x + e) - rosenbrock(x - e)) / (2 * eps)
        assert fd == pytest.approx(rosenbrock_grad(x)[i], rel=1e-7)
        fd_h = (rosenbrock_grad(x + e) - rosenbrock_grad(x - e)) / (2 * eps)
        np.testing.assert_allclose(fd_h, rosenbrock_hessian(x)[:, i], rtol=1e-7, atol=1e-6)


@pytest.mark.parametrize("n", [2, 5, 50])
def test_rosenbrock_hessian(n, backend):
    x = cr.placeholder("x", (n,))
    f = rosenbrock(x)
    H = cr.hessian(f, x)
    assert H.shape == (n, n)
    fn = cr.function([x], [f, cr.grad(f, x), H], backend=backend)
    rng = np.random.default_rng(n)
    for xv in (rng.normal(size=n), np.ones(n), np.linspace(-2.0, 2.0, n)):
        fv, gv, hv = fn(xv)
        assert float(fv) == pytest.approx(rosenbrock(xv), rel=1e-12)
        np.testing.assert_allclose(gv, rosenbrock_grad(xv), rtol=1e-12, atol=1e-10)
        np.testing.assert_allclose(hv, rosenbrock_hessian(xv), rtol=1e-12, atol=1e-10)
        np.testing.assert_array_equal(hv, hv.T)


def test_rosenbrock_hessian_reverse_over_reverse_agrees(backend):
    """The same Hessian by a reverse-mode Jacobian of the gradient."""
    x = cr.placeholder("x", (5,))
    H = cr.jacobian(cr.grad(rosenbrock(x), x), x, mode="reverse")
    xv = np.array([0.3, -1.2, 0.8, 2.0, -0.4])
    got = cr.function([x], H, backend=backend)(xv)
    np.testing.assert_allclose(got, rosenbrock_hessian(xv), rtol=1e-12, atol=1e-10)


@pytest.mark.parametrize("n", [2, 5, 50])
def test_rosenbrock_hvp(n, backend):
    x, v = cr.placeholder("x", (n,)), cr.placeholder("v", (n,))
    hv = cr.hvp(rosenbrock(x), x, v)
    assert hv.shape == (n,)
    rng = np.random.default_rng(100 + n)
    xv, vv = rng.normal(size=n), rng.normal(size=n)
    got = cr.function([x, v], hv, backend=backend)(xv, vv)
    np.testing.assert_allclose(got, rosenbrock_hessian(xv) @ vv, rtol=1e-11, atol=1e-9)


# -- quadratic forms ----------------------------------------------------------------

A34 = np.array([[1.0, 2.0, -1.0], [0.5, -3.0, 4.0], [2.0, 0.0, 1.5]])


def test_hessian_of_quadratic_form_with_constant_matrix(backend):
    x = cr.placeholder("x", (3,))
    H = cr.hessian(x @ (A34 @ x), x)
    got = cr.function([x], H, backend=backend)(np.array([0.3, -0.7, 2.0]))
    np.testing.assert_allclose(got, A34 + A34.T, rtol=1e-14)


@pytest.mark.parametrize("form", ["matmul", "sum", "tensordot"])
def test_hessian_of_quadratic_form_with_matrix_input(form, backend):
    x, A = cr.placeholder("x", (4,)), cr.placeholder("A", (4, 4))
    if form == "matmul":
        q = x @ A @ x
    elif form == "sum":
        q = cr.sum(A * cr.outer(x, x))
    else:
        q = cr.tensordot(x, cr.tensordot(A, x, 1), 1)
    H = cr.hessian(q, x)
    Av = np.random.default_rng(3).normal(size=(4, 4))
    got = cr.function([x, A], H, backend=backend)(np.arange(4.0), Av)
    np.testing.assert_allclose(got, Av + Av.T, rtol=1e-13, atol=1e-13)


def test_hessian_of_quadratic_form_wrt_the_matrix_is_zero(backend):
    x, A = cr.placeholder("x", (3,)), cr.placeholder("A", (3, 3))
    H = cr.hessian(x @ A @ x, A)
    assert H.shape == (3, 3, 3, 3)
    got = cr.function([x, A], H, backend=backend)(np.ones(3), A34)
    np.testing.assert_array_equal(got, np.zeros((3, 3, 3, 3)))


def test_hvp_equals_hessian_times_v(backend):
    x, v = cr.placeholder("x", (4,)), cr.placeholder("v", (4,))
    cost = cr.sum(cr.sin(x) * x[::-1]) + cr.logsumexp(x * x) + (x @ A44 @ x) ** 2
    H = cr.hessian(cost, x)
    hv = cr.hvp(cost, x, v)
    f = cr.function([x, v], [H, hv], backend=backend)
    rng = np.random.default_rng(4)
    xv, vv = rng.normal(size=4) * 0.5, rng.normal(size=4)
    Hv, hvv = f(xv, vv)
    np.testing.assert_allclose(hvv, Hv @ vv, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(Hv, Hv.T, rtol=1e-12, atol=1e-12)
    # and the Hessian itself against finite differences of the gradient
    g = cr.function([x], cr.grad(cost, x), backend="interpreter")
    eps = 1e-6
    fd = np.stack([(g(xv + eps * e) - g(xv - eps * e)) / (2 * eps) for e in np.eye(4)], 1)
    np.testing.assert_allclose(Hv, fd, rtol=1e-6, atol=1e-6)


A44 = np.array([[2.0, 0.5, 0.0, -1.0], [0.5, 1.0, 0.3, 0.0],
                [0.0, 0.3, 3.0, 0.2], [-1.0, 0.0, 0.2, 1.5]])


def test_hvp_with_an_array_direction_and_a_matrix_input(backend):
    X = cr.placeholder("X", (2, 3))
    cost = cr.sum(X ** 3) + cr.sum(X[0] * X[1])
    V = np.array([[1.0, 0.0, -1.0], [2.0, 0.5, 0.0]])
    hv = cr.hvp(cost, X, V)
    assert hv.shape == (2, 3)
    Xv = np.array([[0.5, -1.0, 2.0], [1.5, 0.2, -0.3]])
    got = cr.function([X], hv, backend=backend)(Xv)
    want = 6 * Xv * V + V[::-1]  # d2/dX0 dX1 pairs each row with the other
    np.testing.assert_allclose(got, want, rtol=1e-13)


# -- matrix inputs -------------------------------------------------------------------

def test_hessian_of_matrix_input_shape_and_values(backend):
    """f(X) = 0.5 * |X B|^2 + sum(X^3) + X[0, 1] * X[1, 2] for X (m, n): the
    Hessian, laid out (m, n, m, n), is
    delta_ac (B B^T)_bd + 6 X_ab delta_ac delta_bd + the cross term."""
    m, n = 2, 3
    B = np.array([[1.0, -1.0], [2.0, 0.5], [0.0, 3.0]])
    X = cr.placeholder("X", (m, n))
    cost = 0.5 * cr.sum((X @ B) ** 2) + cr.sum(X ** 3) + X[0, 1] * X[1, 2]
    H = cr.hessian(cost, X)
    assert H.shape == (m, n, m, n)
    Xv = np.array([[0.5, -1.0, 2.0], [1.5, 0.2, -0.3]])
    got = cr.function([X], H, backend=backend)(Xv)
    want = np.einsum("ac,bd->abcd", np.eye(m), B @ B.T)
    want += 6 * np.einsum("ab,ac,bd->abcd", Xv, np.eye(m), np.eye(n))
    want[0, 1, 1, 2] += 1.0
    want[1, 2, 0, 1] += 1.0
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-13)
    # the flattened Hessian is symmetric
    flat = got.reshape(m * n, m * n)
    np.testing.assert_allclose(flat, flat.T)


def test_hessian_of_3d_input(backend):
    x = cr.placeholder("x", (2, 1, 2))
    cost = cr.sum(cr.exp(x)) * cr.sum(x)
    H = cr.hessian(cost, x)
    assert H.shape == (2, 1, 2, 2, 1, 2)
    xv = np.array([[[0.1, -0.2]], [[0.3, 0.4]]])
    got = cr.function([x], H, backend=backend)(xv).reshape(4, 4)
    e, s, se = np.exp(xv).reshape(-1), xv.sum(), np.exp(xv).sum()
    want = np.diag(e * s) + e[:, None] + e[None, :]
    np.testing.assert_allclose(got, want, rtol=1e-13)


# -- closed forms of common losses --------------------------------------------------

def test_hessian_of_softmax_cross_entropy_wrt_logits(backend):
    """d2/dz2 of logsumexp(z) - z[y] is diag(p) - p p^T."""
    z = cr.placeholder("z", (5,))
    for cost in (cr.logsumexp(z) - z[2], -cr.log_softmax(z)[2], -cr.log(cr.softmax(z)[2])):
        H = cr.hessian(cost, z)
        zv = np.array([0.5, -1.0, 2.0, 0.0, 1.0])
        got = cr.function([z], H, backend=backend)(zv)
        p = np.exp(zv) / np.exp(zv).sum()
        np.testing.assert_allclose(got, np.diag(p) - np.outer(p, p), rtol=1e-12, atol=1e-14)


def test_hessian_of_least_squares_with_unknown_batch(backend):
    """Hessian of mean((X w - t)^2) over a batch of unknown size: 2 X^T X / N."""
    X, t = cr.placeholder("X", (None, 3)), cr.placeholder("t", (None,))
    w = cr.placeholder("w", (3,))
    H = cr.hessian(cr.mean((X @ w - t) ** 2), w)
    f = cr.function([X, t, w], H, backend=backend)
    rng = np.random.default_rng(5)
    for N in (1, 4, 7):
        Xv = rng.normal(size=(N, 3))
        got = f(Xv, rng.normal(size=N), rng.normal(size=3))
        np.testing.assert_allclose(got, 2 * Xv.T @ Xv / N, rtol=1e-12, atol=1e-14)


def test_hessian_of_logistic_loss_with_unknown_batch(backend):
    """Logistic regression: H = X^T diag(s (1 - s)) X / N."""
    X, y = cr.placeholder("X", (None, 3)), cr.placeholder("y", (None,))
    w = cr.placeholder("w", (3,))
    z = X @ w
    loss = cr.mean(cr.softplus(z) - y * z)
    H = cr.hessian(loss, w)
    rng = np.random.default_rng(6)
    Xv, yv, wv = rng.normal(size=(6, 3)), (rng.random(6) < 0.5) * 1.0, rng.normal(size=3)
    got = cr.function([X, y, w], H, backend=backend)(Xv, yv, wv)
    s = 1 / (1 + np.exp(-(Xv @ wv)))
    np.testing.assert_allclose(got, Xv.T @ (Xv * (s * (1 - s))[:, None]) / 6, rtol=1e-12)


def test_hessian_of_an_mlp_loss_against_finite_differences(backend):
    X = cr.placeholder("X", (None, 3))
    W = cr.placeholder("W", (3, 2))
    out = cr.tanh(X @ W)
    loss = cr.mean(cr.sum((out - 0.5) ** 2, axis=1)) + 0.1 * cr.sum(W * W)
    H = cr.hessian(loss, W)
    assert H.shape == (3, 2, 3, 2)
    rng = np.random.default_rng(7)
    Xv, Wv = rng.normal(size=(5, 3)), rng.normal(size=(3, 2))
    got = cr.function([X, W], H, backend=backend)(Xv, Wv)

    def grad_np(Wm):  # hand-written gradient of the same loss
        o = np.tanh(Xv @ Wm)
        return Xv.T @ (2 * (o - 0.5) * (1 - o ** 2)) / 5 + 0.2 * Wm

    eps = 1e-6
    fd = np.zeros((3, 2, 3, 2))
    for i in range(3):
        for j in range(2):
            e = np.zeros((3, 2))
            e[i, j] = eps
            fd[:, :, i, j] = (grad_np(Wv + e) - grad_np(Wv - e)) / (2 * eps)
    np.testing.assert_allclose(got, fd, rtol=1e-6, atol=1e-8)


# -- edge cases and errors -----------------------------------------------------------

def test_hessian_of_linear_and_of_disconnected_cost_is_zero(backend):
    x, z = cr.placeholder("x", (3,)), cr.placeholder("z", ())
    f = cr.function([x, z], [cr.hessian(cr.sum(x * 2.0), x), cr.hessian(z * z, x)],
                    backend=backend)
    lin, dis = f(np.ones(3), 2.0)
    np.testing.assert_array_equal(lin, np.zeros((3, 3)))
    np.testing.assert_array_equal(dis, np.zeros((3, 3)))


def test_hessian_of_scalar_input(backend):
    s = cr.placeholder("s")
    H = cr.hessian(cr.sin(s) * s ** 3, s)
    assert H.shape == ()
    got = cr.function([s], H, backend=backend)(0.7)
    want = -np.sin(0.7) * 0.7 ** 3 + 6 * np.cos(0.7) * 0.7 ** 2 + 6 * 0.7 * np.sin(0.7)
    assert float(got) == pytest.approx(want, rel=1e-13)


def test_hessian_float32(backend):
    x = cr.placeholder("x", (3,), "float32")
    H = cr.hessian(cr.sum(x ** 3), x)
    assert H.dtype == np.float32
    got = cr.function([x], H, backend=backend)(np.array([1.0, 2.0, -1.0], np.float32))
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, np.diag([6.0, 12.0, -6.0]), rtol=1e-6)


def test_hessian_and_hvp_errors():
    x = cr.placeholder("x", (3,))
    with pytest.raises(cr.ShapeError, match="scalar"):
        cr.hessian(x * x, x)
    with pytest.raises(cr.ShapeError, match="scalar"):
        cr.hvp(x * x, x, np.ones(3))
    with pytest.raises(cr.ShapeError):
        cr.hvp(cr.sum(x * x), x, np.ones(4))
    with pytest.raises(cr.ShapeError, match="known"):
        b = cr.placeholder("b", (None,))
        cr.hessian(cr.sum(b * b), b)


def test_hessian_is_named_after_its_input():
    x = cr.placeholder("x", (2,))
    assert cr.hessian(cr.sum(cr.exp(x)), x).name == "hess_x"


def test_third_derivative_tensor(backend):
    """The Jacobian of a Hessian: d3/dx3 of sum(x^4) + x0 x1 x2 is
    24 x_i on the diagonal plus the symmetric cross term."""
    x = cr.placeholder("x", (3,))
    cost = cr.sum(x ** 4) + x[0] * x[1] * x[2]
    T = cr.jacobian(cr.hessian(cost, x), x)
    assert T.shape == (3, 3, 3)
    xv = np.array([0.5, -1.0, 2.0])
    got = cr.function([x], T, backend=backend)(xv)
    want = np.zeros((3, 3, 3))
    for i in range(3):
        want[i, i, i] = 24 * xv[i]
    for p in [(0, 1, 2), (0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0)]:
        want[p] = 1.0
    np.testing.assert_allclose(got, want, rtol=1e-13)


# -- second derivatives of every op, through both Jacobian modes --------------------

import test_ops  # noqa: E402


@pytest.mark.parametrize("case", test_ops.GRAD_CASES, ids=[c.id for c in test_ops.GRAD_CASES])
def test_hessian_of_each_op_against_finite_differences(case, backend):
    """For each case of the op table, cost = sum(out * w): the Jacobian of
    its gradient (forward over reverse, as ``hessian`` does, and reverse over
    reverse) equals central differences of the gradient."""
    b = test_ops.build(case.id)
    vals, rng = test_ops.case_values(case)
    feed = dict(vals, w_out=rng.normal(size=np.shape(case.reference(**vals))))
    cost = cr.sum(b.out * b.weight)
    ins = list(b.vars.values()) + [b.weight]
    for x in b.wrt:
        if None in x.shape:
            continue
        g = cr.grad(cost, x)
        hs = [cr.jacobian(g, x, mode=m) for m in ("forward", "reverse")]
        hs.append(cr.hessian(cost, x))
        got = cr.function(ins, hs, backend=backend)(**feed)
        grad_fn = cr.function(ins, g, backend="interpreter")
        x0, eps = vals[x.name], 1e-5
        cols = []
        for e in np.eye(x0.size):
            e = e.reshape(x0.shape) * eps
            cols.append((grad_fn(**dict(feed, **{x.name: x0 + e}))
                         - grad_fn(**dict(feed, **{x.name: x0 - e}))) / (2 * eps))
        fd = np.stack(cols, -1).reshape(x0.shape + x0.shape)
        for h in got:
            assert h.shape == x0.shape + x0.shape
            np.testing.assert_allclose(h, fd, rtol=1e-5, atol=1e-6, err_msg=x.name)


# -- run-time shapes inside the differentiated graph ------------------------------

def test_hessian_through_take_with_indices_of_unknown_length(backend):
    """u = w[idx] with idx of unknown length, cost = sum(A * u^2) with A
    (2, None): the gradient sums a broadcast back at run time
    (``sum_to_like`` over a leading axis) and scatters through
    ``take_grad``; H = sum_j 2 c_j e_idx_j e_idx_j^T with c = A.sum(0)."""
    w = cr.placeholder("w", (4,))
    idx = cr.placeholder("idx", (None,), "int64")
    A = cr.placeholder("A", (2, None))
    u = cr.take(w, idx)
    cost = cr.sum(A * u * u)
    hs = [cr.hessian(cost, w), cr.jacobian(cr.grad(cost, w), w, mode="reverse")]
    f = cr.function([w, idx, A], hs, backend=backend)
    rng = np.random.default_rng(8)
    iv = np.array([3, 0, 3, 1, 3])
    Av = rng.normal(size=(2, 5))
    want = np.zeros((4, 4))
    for j, c in zip(iv, Av.sum(0)):
        want[j, j] += 2 * c
    for h in f(rng.normal(size=4), iv, Av):
        np.testing.assert_allclose(h, want, rtol=1e-12, atol=1e-14)


def test_hessian_through_a_reshape_of_two_unknown_dims(backend):
    """cost = sum(reshape(X * s, -1)^2) with s = w0 + w1^2 and X (None,
    None): cost = s^2 S with S = sum(X^2)."""
    X = cr.placeholder("X", (None, None))
    w = cr.placeholder("w", (2,))
    s = w[0] + w[1] ** 2
    cost = cr.sum(cr.reshape(X * s, (-1,)) ** 2)
    hs = [cr.hessian(cost, w), cr.jacobian(cr.grad(cost, w), w, mode="reverse")]
    f = cr.function([X, w], hs, backend=backend)
    Xv, wv = np.arange(6.0).reshape(2, 3) / 4, np.array([0.5, -1.5])
    S, sv, w1 = np.sum(Xv ** 2), wv[0] + wv[1] ** 2, wv[1]
    want = np.array([[2 * S, 4 * w1 * S], [4 * w1 * S, 4 * sv * S + 8 * w1 ** 2 * S]])
    for h in f(Xv, wv):
        np.testing.assert_allclose(h, want, rtol=1e-12)


def test_hvp_with_unknown_dims(backend):
    x, v = cr.placeholder("x", (None,)), cr.placeholder("v", (None,))
    hv = cr.hvp(cr.sum(x ** 3) + cr.sum(x) ** 2, x, v)
    xv, vv = np.array([1.0, -2.0, 0.5]), np.array([0.3, 1.0, -1.0])
    got = cr.function([x, v], hv, backend=backend)(xv, vv)
    np.testing.assert_allclose(got, 6 * xv * vv + 2 * vv.sum(), rtol=1e-13)


def test_hessian_of_a_function_of_a_forward_jacobian(backend):
    """cost = sum(J^2) with J the forward-mode (banded) Jacobian of
    sin(x) * x[0]: the Hessian differentiates the banded ops twice."""
    x = cr.placeholder("x", (4,))
    J = cr.jacobian(cr.sin(x) * x[0], x, mode="forward")
    cost = cr.sum(J ** 2)
    g, H = cr.grad(cost, x), cr.hessian(cost, x)
    f = cr.function([x], [cost, g, H], backend=backend)
    xv = np.array([0.4, -1.0, 0.7, 2.0])

    def cost_np(v):  # J[i, i] = cos(v_i) v_0 (+ sin(v_0) at i = 0), J[i, 0] = sin(v_i)
        d = np.cos(v) * v[0]
        d[0] += np.sin(v[0])
        return np.sum(d ** 2) + np.sum(np.sin(v[1:]) ** 2)

    c, gv, hv = f(xv)
    assert float(c) == pytest.approx(cost_np(xv), rel=1e-13)
    eps = 1e-6
    fd_g = np.array([(cost_np(xv + eps * e) - cost_np(xv - eps * e)) / (2 * eps)
                     for e in np.eye(4)])
    np.testing.assert_allclose(gv, fd_g, rtol=1e-7, atol=1e-8)
    gf = cr.function([x], g, backend="interpreter")
    fd_h = np.stack([(gf(xv + eps * e) - gf(xv - eps * e)) / (2 * eps) for e in np.eye(4)], 1)
    np.testing.assert_allclose(hv, fd_h, rtol=1e-6, atol=1e-7)


def test_a_constant_hessian_is_not_named():
    """The Hessian of a linear cost is a constant, shared by value with
    every equal constant: naming it hess_x would rename them all."""
    x = cr.placeholder("x", (2,))
    h = cr.hessian(cr.sum(x * 2.0), x)
    assert h.name is None and cr.constant(np.zeros((2, 2))).name is None
    y = cr.placeholder("y", (2,))
    assert cr.hessian(cr.sum(cr.sin(y)), y).name == "hess_y"
