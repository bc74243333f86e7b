"""NumPy's own BLAS, called directly (opt-in: ``cr.function(...,
blas="numpy")``).

A fused update ``W - c * (A @ B)`` is one gemm with ``beta = 1`` (see
:mod:`.gemm`). NumPy does not expose ``beta``, SciPy does, but SciPy's
wheels bundle a BLAS of their own, which need not be NumPy's: here SciPy's
OpenBLAS 0.3.30 runs the MLP's 784x128x256 float32 product in 601 us where
NumPy's 0.3.31 takes 570 us, so the fused update (584 us) hardly beats
NumPy's product and separate update (601 us). This module finds the BLAS
library NumPy itself runs (loaded in the process: the OpenBLAS of NumPy's
wheels, or any library exporting CBLAS's ``cblas_sgemm``/``cblas_dgemm``
that NumPy links) and calls its gemm through ctypes: the same update takes 554 us, and no
SciPy is needed.

:func:`gemm_update` checks everything BLAS relies on (native float32 or
float64 arrays of fitting shapes, each C- or Fortran-contiguous and
aligned, the result writable and sharing no memory with an operand) and
uses NumPy otherwise, so a call is never unsafe, only sometimes slower.
The library found is checked once on a small product before it is trusted.
"""

from __future__ import annotations

import ctypes
import glob
import os
import threading

import numpy as np

from ..errors import ChainruleError

_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112

# (symbol pattern, integer width): NumPy's wheels export OpenBLAS's CBLAS as
# scipy_cblas_sgemm64_ (64-bit integers); other OpenBLAS builds as
# cblas_sgemm64_ or cblas_sgemm; MKL, BLIS, ... as cblas_sgemm. A plain name
# is taken to have 32-bit integers (LP64); a NumPy linked to a library
# exporting it with 64-bit ones (MKL's ILP64 layer) is not supported: the
# check on a small product would fail or crash (use blas='scipy' there)
_SYMBOLS = (("scipy_cblas_{}gemm64_", 64), ("cblas_{}gemm64_", 64),
            ("scipy_cblas_{}gemm", 32), ("cblas_{}gemm", 32))

# "gemm": {dtype char: ctypes function, "limit": first size too large} or
# None; "where": the library's path; "failed": libraries that failed the check
_state: dict = {}
_lock = threading.Lock()


def _libraries():
    """Where to look for NumPy's BLAS, in order: NumPy's own extension module
    (the symbol lookup follows the libraries it links, so it finds NumPy's
    BLAS whatever else is loaded: SciPy's OpenBLAS has the same symbols),
    then the libraries shipped next to NumPy (its wheels; on Windows the
    lookup does not follow links)."""
    paths = []
    core = getattr(np, "_core", None) or getattr(np, "core", None)
    ext = getattr(getattr(core, "_multiarray_umath", None), "__file__", None)
    if ext:
        paths.append(ext)
    root = os.path.dirname(os.path.dirname(np.__file__))
    for folder in ("numpy.libs", os.path.join("numpy", ".dylibs")):
        paths += sorted(glob.glob(os.path.join(root, folder, "*blas*")))
    return paths


def _bind(lib, pattern, bits):
    """{dtype char: gemm}, and ``limit``: the first size its integers cannot
    hold (ctypes would wrap a larger one around silently)."""
    integer = ctypes.c_int64 if bits == 64 else ctypes.c_int
    funcs = {}
    # NumPy's type char -> BLAS's prefix
    for char, prefix, scalar in (("f", "s", ctypes.c_float), ("d", "d", ctypes.c_double)):
        fn = getattr(lib, pattern.format(prefix))
        fn.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int, integer, integer, integer,
                       scalar, ctypes.c_void_p, integer, ctypes.c_void_p, integer,
                       scalar, ctypes.c_void_p, integer]
        fn.restype = None
        funcs[char] = fn
    funcs["limit"] = 2 ** (bits - 1)
    return funcs


def _works(funcs) -> bool:
    """One small update per dtype, against NumPy, before the library is
    trusted (the symbol names say the integer width: see _SYMBOLS)."""
    r = np.random.default_rng(0)
    for char, dt in (("f", np.float32), ("d", np.float64)):
        a = r.standard_normal((5, 3)).astype(dt)
        b = np.asfortranarray(r.standard_normal((3, 4)).astype(dt))
        c = r.standard_normal((5, 4)).astype(dt)
        want = c - 0.5 * (a @ b)
        if not _call(funcs, char, c, a, b, -0.5):
            return False
        if not np.allclose(c, want, rtol=1e-5, atol=1e-5):
            return False
    return True


def _origin(fn, path):
    """The file defining ctypes function ``fn`` (dladdr, where there is one),
    else ``path``, where it was looked up."""
    class Info(ctypes.Structure):
        _fields_ = [("fname", ctypes.c_char_p), ("fbase", ctypes.c_void_p),
                    ("sname", ctypes.c_char_p), ("saddr", ctypes.c_void_p)]
    try:
        dladdr = ctypes.CDLL(None).dladdr
    except (OSError, AttributeError, TypeError):  # not a POSIX C library
        return path
    info = Info()
    if dladdr(ctypes.cast(fn, ctypes.c_void_p), ctypes.byref(info)) and info.fname:
        return os.fsdecode(info.fname)
    return path


def _find():
    _state["failed"] = []  # libraries with gemm symbols that gave wrong numbers
    for path in _libraries():
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for pattern, bits in _SYMBOLS:
            if all(hasattr(lib, pattern.format(c)) for c in "sd"):
                funcs = _bind(lib, pattern, bits)
                if _works(funcs):
                    return funcs, _origin(funcs["f"], path)
                _state["failed"].append(_origin(funcs["f"], path))
    return None, None


def _functions():
    """{dtype char: gemm} of NumPy's BLAS, found at the first call, or None."""
    if "gemm" not in _state:
        with _lock:
            if "gemm" not in _state:
                _state["gemm"], _state["where"] = _find()
    return _state["gemm"]


def check_available():
    """Find NumPy's BLAS (once), or raise a clear error."""
    if _functions() is None:
        failed = _state.get("failed")
        if failed:
            raise ChainruleError(
                f"function: blas='numpy' calls the gemm of the BLAS library NumPy uses, "
                f"and the one found ({failed[0]}) gave wrong numbers on a small product "
                f"(an unexpected calling convention); use blas='scipy' or blas=None, "
                f"and please report this")
        raise ChainruleError(
            "function: blas='numpy' calls the gemm of the BLAS library NumPy uses, and "
            "none exporting CBLAS's cblas_sgemm/cblas_dgemm was found in this process "
            "(NumPy's wheels ship OpenBLAS; some builds link BLAS statically); use "
            "blas='scipy' (SciPy's BLAS) or blas=None")


def library() -> str | None:
    """The path of the BLAS library in use, once found."""
    return _state.get("where")


def _layout(x):
    """(transpose flag, leading dimension) of a 2-D operand read row-major,
    or None if BLAS cannot read it in place."""
    if not x.flags.aligned:
        return None
    if x.flags.c_contiguous:
        return _NO_TRANS, max(1, x.shape[1])
    if x.flags.f_contiguous:
        return _TRANS, max(1, x.shape[0])
    return None


def _call(funcs, char, c, a, b, alpha) -> bool:
    """``c += alpha * a @ b`` through ``funcs[char]`` if every layout and
    size allows it."""
    if not c.flags.c_contiguous:  # c Fortran-ordered: c.T += alpha * b.T @ a.T
        c, a, b = c.T, b.T, a.T
    la, lb = _layout(a), _layout(b)
    if la is None or lb is None or not (c.flags.c_contiguous and c.flags.aligned):
        return False
    m, n, k = c.shape[0], c.shape[1], a.shape[1]
    if max(m, n, k, la[1], lb[1]) >= funcs["limit"]:
        return False  # a 32-bit CBLAS and a dim of 2**31 or more
    funcs[char](_ROW_MAJOR, la[0], lb[0], m, n, k, alpha, a.ctypes.data, la[1],
                b.ctypes.data, lb[1], 1.0, c.ctypes.data, max(1, n))
    return True


_FLOATS = {np.dtype(np.float32): "f", np.dtype(np.float64): "d"}


def gemm_update(c, a, b, alpha):
    """``c += alpha * (a @ b)`` in place, one gemm with beta=1 of NumPy's own
    BLAS when the arrays allow it, else NumPy's product and add."""
    funcs = _state["gemm"] if "gemm" in _state else _functions()
    char = _FLOATS.get(getattr(c, "dtype", None))
    if (funcs is not None and char is not None and type(c) is type(a) is type(b) is np.ndarray
            and c.ndim == a.ndim == b.ndim == 2 and a.dtype == b.dtype == c.dtype
            and c.size and a.shape[1] and c.shape == (a.shape[0], b.shape[1])
            and a.shape[1] == b.shape[0] and c.flags.writeable
            and np.isfinite(alpha) and alpha != 0
            and not (np.may_share_memory(c, a) or np.may_share_memory(c, b))
            and _call(funcs, char, c, a, b, float(alpha))):
        return c
    t = a @ b  # the product first (c may be one of its operands); NumPy's
    # error message if the shapes do not fit
    t *= alpha
    return np.add(c, t, out=c)
