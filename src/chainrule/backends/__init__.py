"""Backends: the reference interpreter and the NumPy code generator."""

from . import interpreter, numpy_codegen
from .program import Program

BACKENDS = {
    "interpreter": interpreter.compile_program,
    "numpy": numpy_codegen.compile_program,
}

__all__ = ["BACKENDS", "Program"]
