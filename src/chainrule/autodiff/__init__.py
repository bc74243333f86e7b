"""Differentiation: reverse mode (grad, vjp)."""

from .reverse import grad, vjp

__all__ = ["grad", "vjp"]
