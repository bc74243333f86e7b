"""The op library. Each op is declared once, in the module of its family."""

from . import leaves, elementwise, reductions, shape, linalg, banded, methods  # noqa: F401  (registers)
from .base import lift
from .elementwise import (abs, add, cast, clip, cos, divide, equal, erf, exp, expm1,
                          greater, greater_equal, less, less_equal, log, log1p,
                          logical_and, logical_not, logical_or, maximum, minimum,
                          multiply, negative, not_equal, ones_like, power, relu,
                          sigmoid, sign, sin, softplus, sqrt, square, stop_gradient,
                          subtract, tan, tanh, where, zeros_like)
from .leaves import constant, parameter, placeholder
from .linalg import dot, matmul, outer, tensordot
from .reductions import (logsumexp, log_softmax, max, mean, min, prod, softmax,
                         sum)
from .shape import (broadcast_to, concatenate, expand_dims, reshape, squeeze,
                    stack, take, transpose)
