"""Differentiation: reverse mode (grad, vjp), forward mode (jvp), and the
derived transforms (jacobian, hessian, hvp)."""

from .derived import explain_jacobian, hessian, hvp, jacobian
from .forward import jvp
from .reverse import grad, vjp

__all__ = ["grad", "vjp", "jvp", "jacobian", "hessian", "hvp", "explain_jacobian"]
