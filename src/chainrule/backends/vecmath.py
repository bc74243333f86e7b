"""Vectorised math functions from glibc's libmvec (opt-in:
``cr.function(..., vecmath="libmvec")``).

On a CPU without AVX-512, NumPy computes float64 ``tanh``, ``sin``,
``expm1``, ``log1p`` and most other transcendental functions one element at
a time through the C library's scalar functions. glibc also ships AVX2
versions of the same functions, four doubles or eight floats per call:
libmvec, the library GCC calls when it vectorises a loop of math calls,
documented to be within 4 ulp (NumPy's own functions are within 1-4 ulp).
They are 2-28 times faster here (``benchmarks/vecmath.py``).

NumPy cannot call them, so this module reaches them through Numba: each
kernel is a loop over a contiguous array whose body is one call of the
vector function (an LLVM call taking a ``<4 x double>``), plus a lane-sized
scratch buffer for the last few elements, so that every element goes
through the same vector function wherever it sits in the array.

The generated code imports ``np`` from here instead of NumPy: a copy of
NumPy's namespace in which those functions are wrappers. A wrapper runs the
kernel when the call is one the kernel does exactly (a C-contiguous float32
or float64 array of at least :data:`MIN_SIZE` elements (below that NumPy's
call is as fast as the kernel's dispatch); ``out`` absent, or an
array of the same dtype and shape that is the input itself or does not
overlap it; no other arguments) and the NumPy function otherwise, so results
differ from NumPy's only in the last bits. Unlike NumPy, the kernels raise no
floating-point warnings (``log(0)`` is ``-inf`` silently; NumPy's fallback,
for small or strided arrays, still warns).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
import threading
import types

import numpy

from ..errors import ChainruleError

VECMATH_CHOICES = (None, "libmvec")

# NumPy's name -> libmvec's (the C library's) name
FUNCTIONS = {
    "exp": "exp", "exp2": "exp2", "expm1": "expm1",
    "log": "log", "log2": "log2", "log10": "log10", "log1p": "log1p",
    "sin": "sin", "cos": "cos", "tan": "tan",
    "arcsin": "asin", "arccos": "acos", "arctan": "atan",
    "sinh": "sinh", "cosh": "cosh", "tanh": "tanh",
    "arcsinh": "asinh", "arccosh": "acosh", "arctanh": "atanh",
    "cbrt": "cbrt",
}

_NUMPY_NAME = {c: n for n, c in FUNCTIONS.items()}
_DTYPES = (numpy.dtype(numpy.float64), numpy.dtype(numpy.float32))
# Below this many elements NumPy's call is as fast as the kernel's call
# (about 2 us inside a generated step, against savings of 2.5-15 ns per
# float64 element and 0.7-20 ns per float32 one, whose NumPy functions are
# partly vectorised already: benchmarks/vecmath.py).
MIN_SIZE = {_DTYPES[0]: 512, _DTYPES[1]: 2048}
_kernels = {name: {} for name in FUNCTIONS}  # name -> {dtype: kernel}
_lock = threading.Lock()
_state = {}  # "library": the loaded libmvec's path, once checked


def check_choice(vecmath):
    """Raise a clear error when ``vecmath`` is not one of the choices."""
    if vecmath not in VECMATH_CHOICES:
        raise ChainruleError(f"function: vecmath={vecmath!r} is not a choice; use None "
                             f"(NumPy's functions) or 'libmvec'")


def _unavailable(why: str) -> ChainruleError:
    return ChainruleError(
        f"function: vecmath='libmvec' runs tanh, exp, log, sin, ... through glibc's "
        f"vector math library, and {why}; leave vecmath=None (NumPy's functions)")


def check_available(vecmath):
    """Raise a clear error when ``vecmath`` is not a choice or cannot run
    here (it needs Numba, glibc's libmvec and an AVX2 CPU)."""
    check_choice(vecmath)
    if vecmath is None or "library" in _state:
        return
    with _lock:
        if "library" in _state:
            return
        try:
            import llvmlite.binding as llvm
            import numba
        except ModuleNotFoundError as exc:
            if exc.name not in ("numba", "llvmlite"):
                raise _unavailable(f"Numba could not be imported ({exc})") from exc
            raise _unavailable("Numba is not installed: `pip install numba` (or "
                               "`pip install chainrule[vecmath]`)") from exc
        except ImportError as exc:  # installed, but e.g. too old for this NumPy
            raise _unavailable(f"Numba could not be imported ({exc})") from exc
        if numba.config.DISABLE_JIT:
            raise _unavailable("NUMBA_DISABLE_JIT is set, so Numba compiles nothing")
        if not sys.platform.startswith("linux"):
            raise _unavailable(f"libmvec is part of glibc, on Linux ({sys.platform} here)")
        path = _find_libmvec()
        if path is None:
            raise _unavailable("this C library has no libmvec (it needs glibc 2.22 or newer)")
        features = llvm.get_host_cpu_features()
        if not (features.get("avx2") and features.get("fma")):
            raise _unavailable("this CPU has no AVX2 and FMA, which libmvec's "
                               "kernels used here need")
        lib = ctypes.CDLL(path)
        for name, cname in list(FUNCTIONS.items()):
            if not all(hasattr(lib, _symbol(cname, dt)) for dt in _DTYPES):
                FUNCTIONS.pop(name)  # an older glibc: NumPy's function is kept
                _kernels.pop(name)
                np.__dict__[name] = getattr(numpy, name)
        llvm.load_library_permanently(path)
        _state["library"] = path


def _find_libmvec():
    """libmvec's file name, or None: ``find_library`` asks ldconfig, which a
    minimal container may lack, so the usual soname is tried too."""
    path = ctypes.util.find_library("mvec")
    if path is None:
        try:
            ctypes.CDLL("libmvec.so.1")
        except OSError:
            return None
        path = "libmvec.so.1"
    return path


def _symbol(cname: str, dtype) -> str:
    """libmvec's AVX2 entry point (x86-64 vector function ABI: 'd' = AVX2,
    'N4' = four lanes, 'v' = one vector argument)."""
    lanes = 32 // dtype.itemsize
    return f"_ZGVdN{lanes}v_{cname}{'f' if dtype == numpy.float32 else ''}"


def prepare(names, dtypes):
    """Compile the kernels for these NumPy function names and dtypes now
    (``cr.function`` compiles everything before it returns)."""
    for name in names:
        for dt in dtypes:
            if numpy.dtype(dt) in _DTYPES:
                _kernel(name, numpy.dtype(dt))


def used_functions(source: str) -> set:
    """The names of this module's functions that ``source`` calls, as
    ``np.name`` or in a fused loop as ``libmvec.cname``."""
    return {name for name, cname in tuple(FUNCTIONS.items())
            if f"np.{name}(" in source or f"libmvec.{cname}(" in source}



def _kernel(name, dtype):
    table = _kernels.get(name)
    if table is None or dtype not in _DTYPES:
        return None
    k = table.get(dtype)
    if k is None:
        check_available("libmvec")
        with _lock:
            k = table.get(dtype)
            if k is None:
                k = table[dtype] = _build(FUNCTIONS[name], dtype)
    return k


def _apply(cname: str, dtype):
    """A Numba intrinsic ``apply(src, dst, start)``: ``dst[start:start +
    lanes] = f(src[start:start + lanes])``, one call of the vector function
    (both arrays 1-D and contiguous)."""
    from llvmlite import ir
    from numba import types as nt
    from numba.extending import intrinsic

    lanes = 32 // dtype.itemsize
    symbol = _symbol(cname, dtype)
    vector = ir.VectorType(ir.DoubleType() if dtype == numpy.float64 else ir.FloatType(),
                           lanes)

    @intrinsic
    def apply(typingctx, src, dst, start):
        def codegen(context, builder, signature, args):
            a, b, i = args
            fn = builder.module.globals.get(symbol)
            if fn is None:
                fn = ir.Function(builder.module, ir.FunctionType(vector, [vector]), symbol)
            sa = context.make_array(signature.args[0])(context, builder, a)
            da = context.make_array(signature.args[1])(context, builder, b)
            ptr = builder.bitcast(builder.gep(sa.data, [i]), vector.as_pointer())
            out = builder.bitcast(builder.gep(da.data, [i]), vector.as_pointer())
            builder.store(builder.call(fn, [builder.load(ptr, align=dtype.itemsize)]),
                          out, align=dtype.itemsize)
            return context.get_dummy_value()
        return nt.void(src, dst, start), codegen

    return apply, lanes


def _vector_loop(cname: str, dtype):
    """The Python function ``f(src, dst)`` both kinds of kernel compile:
    ``dst[:] = f(src)`` for 1-D C-contiguous arrays of one length, ``dst``
    either ``src`` itself or sharing no memory with it (else ValueError).
    When the arrays are distinct, a tail shorter than a vector is computed
    by the array's last full vector again (its first lanes get the values
    they already hold: the same function of the same input), so nothing is
    allocated unless the array is shorter than one vector or the call is in
    place (the tail then goes through a vector-sized copy, padded with its
    first element)."""
    apply, lanes = _apply(cname, dtype)
    scalar_type, itemsize = dtype.type, dtype.itemsize

    def vector(a, o):
        n = a.size
        if o.size != n:
            raise ValueError("libmvec: the source and destination sizes differ")
        start, end = a.ctypes.data, o.ctypes.data
        if start != end and start < end + n * itemsize and end < start + n * itemsize:
            raise ValueError("libmvec: the destination overlaps the source "
                             "without being it")
        i = 0
        while i + lanes <= n:
            apply(a, o, i)
            i += lanes
        if i < n:
            if n >= lanes and start != end:
                apply(a, o, n - lanes)
            else:
                t = numpy.empty(lanes, scalar_type)
                t[:] = a[i]
                t[:n - i] = a[i:]
                apply(t, t, 0)
                o[i:] = t[:n - i]

    return vector, lanes


def _build(cname: str, dtype):
    """The kernel of NumPy's wrappers (:func:`_wrapper`), compiled now."""
    from numba import from_dtype, njit
    from numba import types as nt

    vector, lanes = _vector_loop(cname, dtype)
    # One signature: the input typed read-only (the wrapper passes a
    # read-only view, so read-only arrays need no second compilation).
    item = from_dtype(dtype)
    jitted = njit(nogil=True)(vector)
    jitted.compile((nt.Array(item, 1, "C", readonly=True), nt.Array(item, 1, "C")))
    jitted.disable_compile()  # any other argument type is an error, never a compilation
    _self_test(jitted, cname, dtype, lanes)
    return jitted


def _loop_function(cname: str, dtype):
    """The kernel the fused loops call (through :func:`_generic`), compiled
    with the loop that calls it."""
    from numba import njit

    return njit(nogil=True)(_vector_loop(cname, dtype)[0])


def _generic(cname: str):
    """A Numba function of both float dtypes: ``libmvec.tanh(src, dst)``
    runs tanhf's vector function on float32 arrays, tanh's on float64."""
    from numba import types as nt
    from numba.extending import overload

    def apply(src, dst):  # a stub: Numba calls the overload's implementation
        raise NotImplementedError("libmvec's functions run inside Numba code only")

    impls = {}

    @overload(apply, jit_options={"nogil": True})
    def typed(src, dst):
        # 1-D C-contiguous arrays of one float dtype, dst writable (the
        # vector function reads and writes raw memory): else a typing error
        if not (isinstance(src, nt.Array) and isinstance(dst, nt.Array)) \
                or src.dtype != dst.dtype or src.dtype not in (nt.float32, nt.float64) \
                or src.ndim != 1 or dst.ndim != 1 or src.layout != "C" \
                or dst.layout != "C" or not dst.mutable:
            return None
        dt = numpy.dtype(str(src.dtype))
        fn = impls.get(dt)
        if fn is None:
            fn = impls[dt] = _loop_function(cname, dt)
        return lambda src, dst: fn(src, dst)

    apply.__name__ = apply.__qualname__ = cname
    return apply


def __getattr__(attr):
    """``libmvec``: the module of glibc's vector functions for Numba code, by
    their C names (``libmvec.tanh(src, dst)``), which the fused loops call
    (fuse="numba" with vecmath="libmvec"); made at its first import, since
    it needs Numba and the library."""
    if attr != "libmvec":
        raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")
    mod = _state.get("libmvec")
    if mod is None:
        check_available("libmvec")  # loads the library for LLVM
        with _lock:
            mod = _state.get("libmvec")
            if mod is None:
                mod = types.ModuleType("libmvec", "glibc's vector math functions, "
                                                  "for Numba code")
                for cname in FUNCTIONS.values():
                    setattr(mod, cname, _generic(cname))
                _state["libmvec"] = mod
    return mod


def run_kernel(kernel, x, out):
    """``out[...] = f(x)`` through ``kernel``: both C-contiguous, of its dtype."""
    src = x.reshape(-1)  # a new view: its flag does not touch x
    src.flags.writeable = False
    kernel(src, out.reshape(-1))
    return out


def _self_test(kernel, cname, dtype, lanes):
    """A wrong calling convention (say Numba told to compile for a CPU
    without AVX, NUMBA_CPU_NAME) would give garbage in lanes 2 and up: check
    a few values against NumPy before any result is trusted."""
    x = numpy.linspace(0.25, 0.75, 3 * lanes + 1).astype(dtype)
    if cname == "acosh":
        x += 1
    got, want = numpy.empty_like(x), getattr(numpy, _NUMPY_NAME[cname])(x)
    run_kernel(kernel, x, got)
    if not numpy.all(numpy.abs(got - want) <= 8 * numpy.spacing(numpy.abs(want))):
        from numba import config
        raise _unavailable(
            f"its {_symbol(cname, dtype)} gave wrong values through Numba here "
            f"(Numba's target CPU: NUMBA_CPU_NAME={config.CPU_NAME!r}, "
            f"NUMBA_CPU_FEATURES={config.CPU_FEATURES!r}; it must have AVX2)")


def _wrapper(name):
    ufunc = getattr(numpy, name)
    table = _kernels[name]
    ndarray = numpy.ndarray
    empty_like = numpy.empty_like
    overlap = numpy.may_share_memory
    min_size = MIN_SIZE
    smallest = min(MIN_SIZE.values())

    def call(x, out=None, **kwargs):
        if type(x) is ndarray and x.size >= smallest and not kwargs and x.flags.c_contiguous \
                and x.size >= min_size.get(x.dtype, x.size + 1):
            k = table.get(x.dtype) or _kernel(name, x.dtype)  # (source run by hand)
            if k is not None:
                if out is None:
                    out = empty_like(x)
                elif not (type(out) is ndarray and out.dtype == x.dtype
                          and out.shape == x.shape and out.flags.c_contiguous
                          and out.flags.writeable and (out is x or not overlap(x, out))):
                    return ufunc(x, out=out)
                return run_kernel(k, x, out)
        if kwargs:
            return ufunc(x, **kwargs) if out is None else ufunc(x, out=out, **kwargs)
        return ufunc(x) if out is None else ufunc(x, out=out)

    call.__name__ = call.__qualname__ = name
    call.__doc__ = (f"numpy.{name} through glibc's libmvec for C-contiguous float32 and "
                    f"float64 arrays, numpy.{name} itself otherwise")
    return call


def _namespace():
    ns = types.ModuleType("chainrule_vecmath_numpy",
                          "NumPy, with tanh, exp, log, ... from glibc's libmvec")
    ns.__dict__.update({k: v for k, v in numpy.__dict__.items()
                        if not k.startswith("__")})
    ns.__getattr__ = lambda attr: getattr(numpy, attr)  # NumPy's lazy attributes
    for name in FUNCTIONS:
        ns.__dict__[name] = _wrapper(name)
    return ns


np = _namespace()
