"""One SGD train step of an MLP (loss, all gradients, parameter updates)
compiled by cr.function(..., updates=...), against a careful hand-written
NumPy forward/backward/update of the same math, measured in the same run.

    python benchmarks/mlp_step.py [--quick]
"""

from __future__ import annotations

from _common import blocked_times, machine_info, median_time, table, us  # first: pins BLAS threads

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


def chainrule_step(sizes, batch, dtype, lr, values, blas=None, vecmath=None,
                   unknown_batch=False, fuse=None):
    dim = None if unknown_batch else batch  # None: the batch size is known at run time
    x = cr.placeholder("x", (dim, sizes[0]), dtype)
    y = cr.placeholder("y", (dim, sizes[-1]), dtype)  # one-hot targets
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
    f = cr.function([x, y], loss, updates={p: p - lr * g for p, g in zip(params, grads)},
                    blas=blas, vecmath=vecmath, fuse=fuse)
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
            gW *= lr  # in place: no second temporary the size of W
            W[2 * k] -= gW
            gb *= lr
            W[2 * k + 1] -= gb
        return loss

    return step, W


def scipy_blas_available() -> bool:
    try:
        import scipy.linalg.blas  # noqa: F401
    except ImportError:
        return False
    return True


def faults_per_call(fn, n=50) -> float:
    """Minor page faults per call: fresh large temporaries that the C library
    hands back to the OS and maps again cost one fault per 4 KiB page."""
    try:
        import resource
    except ImportError:  # not on Windows
        return float("nan")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(n):
        fn()
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / n


def numpy_blas_available() -> bool:
    from chainrule.backends.cblas import check_available
    try:
        check_available()
    except cr.ChainruleError:
        return False
    return True


def libmvec_available() -> bool:
    from chainrule.backends.vecmath import check_available
    try:
        check_available("libmvec")
    except cr.ChainruleError:
        return False
    return True


def numba_available() -> bool:
    from chainrule.backends.fusion import check_available
    try:
        check_available("numba")
    except cr.ChainruleError:
        return False
    return True


def floor_factory(values, x, n_out, tanh=np.tanh, gemm=None):
    """The work every implementation of the step must do, with nothing else:
    each layer's matmuls (forward, weight gradient, input gradient) and the
    hidden tanh, into preallocated buffers. Its time over the hand-written
    step's is the best ratio any NumPy-based code could reach here (with
    ``tanh``: NumPy's, or libmvec's for the vecmath='libmvec' rows; with
    ``gemm``, ``gemm(c, a, b, alpha)``: the weight gradients added into
    their buffers by a gemm with beta=1, as the blas rows' updates are,
    which skips the zeroing a product into a buffer starts with)."""
    Ws = values[0::2]
    batch = x.shape[0]
    hs = [x] + [np.empty((batch, W.shape[1]), W.dtype) for W in Ws]
    gs = [np.ones((batch, W.shape[1]), W.dtype) * 1e-3 for W in Ws]
    gws = [np.zeros_like(W) for W in Ws]  # (a gemm with beta=1 reads them)
    gxs = [np.empty((batch, W.shape[0]), W.dtype) for W in Ws]

    def floor():
        for k, W in enumerate(Ws):
            np.matmul(hs[k], W, out=hs[k + 1])
            if k + 1 < len(Ws):
                tanh(hs[k + 1], out=hs[k + 1])
        for k in reversed(range(len(Ws))):
            if gemm is None:
                np.matmul(hs[k].T, gs[k], out=gws[k])
            else:
                gemm(gws[k], hs[k].T, gs[k], -1e-30)
            if k > 0:
                np.matmul(gs[k], Ws[k].T, out=gxs[k])

    return floor


def run(sizes, batch, dtype, repeat, blas=None, vecmath=None, unknown_batch=False, fuse=None):
    rng = np.random.default_rng(1)
    values = init(sizes, dtype)
    lr = 0.1
    x = rng.standard_normal((batch, sizes[0])).astype(dtype)
    y = np.eye(sizes[-1], dtype=dtype)[rng.integers(0, sizes[-1], batch)]
    f, params = chainrule_step(sizes, batch, dtype, lr, values, blas, vecmath, unknown_batch,
                               fuse)
    step, W = numpy_step_factory(values, lr)
    # correctness: same loss and same parameters after a few steps
    for _ in range(3):
        l1, l2 = f(x, y), step(x, y)
        assert np.allclose(l1, l2, rtol=1e-4 if dtype == "float32" else 1e-10), (l1, l2)
    for p, w in zip(params, W):
        assert np.allclose(p.value, w, rtol=1e-3 if dtype == "float32" else 1e-8, atol=1e-6)
    blocks = max(repeat // 10, 5)
    t_cr, t_np, ratio = blocked_times(lambda: f(x, y), lambda: step(x, y), blocks=blocks)
    if vecmath:
        from chainrule.backends.vecmath import np as vnp
        tanh = vnp.tanh
    else:
        tanh = np.tanh
    gemms = [None]
    if blas and numpy_blas_available():  # (through ctypes: slower on small arrays)
        from chainrule.backends.cblas import gemm_update
        gemms.append(gemm_update)
    floor = min(blocked_times(floor_factory(values, x, sizes[-1], tanh, gemm),
                              lambda: step(x, y), blocks=max(blocks // 3, 5))[2]
                for gemm in gemms)
    faults = (faults_per_call(lambda: f(x, y)), faults_per_call(lambda: step(x, y)))
    return t_cr, t_np, ratio, floor, faults


def main(quick=False):
    print(machine_info())
    repeat = 50 if quick else 300
    rows = []
    blases = [None] + (["numpy"] if numpy_blas_available() else []) \
        + (["scipy"] if scipy_blas_available() else [])
    vecmaths = [None] + (["libmvec"] if libmvec_available() else [])
    fuses = [None] + (["numba"] if numba_available() else [])
    # the last variant: placeholders of shape (None, n), the batch size known
    # at run time only (as users often write them), default options
    variants = [(b, v, None, False) for v in vecmaths for b in blases]
    variants += [(None, v, "numba", False) for v in vecmaths if "numba" in fuses]
    if "numba" in fuses and len(vecmaths) > 1:
        variants += [(b, "libmvec", "numba", False) for b in blases if b]
    variants.append((None, None, None, True))
    if "numba" in fuses:
        variants.append((None, None, "numba", True))
    for sizes, batch in (((784, 256, 10), 128), ((16, 32, 4), 8)):
        for dtype in ("float64", "float32"):
            for blas, vecmath, fuse, unknown in variants:
                t_cr, t_np, ratio, floor, (f_cr, f_np) = run(sizes, batch, dtype, repeat, blas,
                                                             vecmath, unknown, fuse)
                options = ", ".join(f"{k}={v!r}" for k, v in (
                    ("blas", blas), ("vecmath", vecmath), ("fuse", fuse)) if v)
                rows.append(("-".join(map(str, sizes)),
                             f"{batch} (None)" if unknown else batch, dtype,
                             options or "default",
                             us(t_cr), us(t_np), f"{ratio:.2f}", f"{floor:.2f}",
                             f"{f_cr:.0f} / {f_np:.0f}"))
    print("\nSGD train step, median microseconds over alternating blocks of calls; ratio = "
          "chainrule / hand-written (median of the blocks);\nfloor = the matmuls and tanh "
          "alone / hand-written (no NumPy-based step can beat it; with libmvec's tanh in "
          "the vecmath rows, the weight gradients added by a gemm with beta=1 in the blas "
          "rows where that is faster)")
    print(table(["MLP", "batch", "dtype", "chainrule", "chainrule us", "hand-written numpy us",
                 "ratio", "floor", "page faults per step (cr / numpy)"], rows))
    if not numpy_blas_available():
        print("(NumPy's BLAS library exports no CBLAS gemm here: the blas='numpy' rows "
              "are skipped)")
    if not scipy_blas_available():
        print("(SciPy not installed: the blas='scipy' rows are skipped)")
    if not libmvec_available():
        print("(Numba or glibc's libmvec not available: the vecmath='libmvec' rows are skipped)")
    if not numba_available():
        print("(Numba not available: the fuse='numba' rows are skipped)")

    x, y, z = cr.placeholder("x"), cr.placeholder("y"), cr.placeholder("z")
    out = (x + y) * z
    f = cr.function([x, y, z], [out] + cr.grad(out, [x, y, z]))
    t = median_time(lambda: f(-2.0, 5.0, -4.0), repeat=2000)
    print(f"\n(x+y)*z with its three gradients: {us(t)} us per call (target <= 5)")


if __name__ == "__main__":
    main(quick="--quick" in sys.argv)
