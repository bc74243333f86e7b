"""chainrule: a symbolic graph-to-graph differentiation compiler.

>>> import chainrule as cr
>>> x, y, z = cr.placeholder("x"), cr.placeholder("y"), cr.placeholder("z")
>>> f = (x + y) * z
>>> cr.evaluate([f] + cr.grad(f, [x, y, z]), {"x": -2.0, "y": 5.0, "z": -4.0})
[array(-12.), array(-4.), array(-4.), array(3.)]
"""

from .errors import (ArgumentError, ChainruleError, DisconnectedError, DTypeError,
                     GraphFormatError, InputError, NonFiniteError, NotDifferentiableError,
                     ShapeError)
from .ir import Var
from .ops import (abs, add, broadcast_to, cast, clip, concatenate, constant, cos,
                  divide, dot, equal, erf, exp, expand_dims, expm1, greater,
                  greater_equal, less, less_equal, log, log1p, log_softmax,
                  logical_and, logical_not, logical_or, logsumexp, matmul, max,
                  maximum, mean, min, minimum, multiply, negative, not_equal,
                  ones_like, outer, parameter, placeholder, power, prod, relu,
                  reshape, sigmoid, sign, sin, softmax, softplus, sqrt, square,
                  squeeze, stack, stop_gradient, subtract, sum, take, tan, tanh,
                  tensordot, transpose, where, zeros_like)
from .autodiff import explain_jacobian, grad, hessian, hvp, jacobian, jvp, vjp
from .function import Function, evaluate, function, inputs_of
from .passes import count_nodes, optimize
from .printing import debugprint, pprint
from .check import check_grad

__version__ = "0.1.0"

__all__ = [
    "ArgumentError", "ChainruleError", "DTypeError", "DisconnectedError", "Function",
    "GraphFormatError", "InputError", "NonFiniteError", "NotDifferentiableError",
    "ShapeError", "Var", "abs", "add", "broadcast_to", "cast", "check_grad",
    "clip", "concatenate", "constant", "cos", "count_nodes", "debugprint",
    "divide", "dot", "equal", "erf", "evaluate", "exp", "expand_dims",
    "explain_jacobian", "expm1", "function", "grad", "greater", "greater_equal", "hessian",
    "hvp", "inputs_of", "jacobian", "jvp", "less", "less_equal", "log", "log1p",
    "log_softmax", "logical_and", "logical_not", "logical_or", "logsumexp",
    "matmul", "max", "maximum", "mean", "min", "minimum", "multiply", "negative",
    "not_equal", "ones_like", "optimize", "outer", "parameter", "placeholder",
    "power", "pprint", "prod", "relu", "reshape", "sigmoid", "sign", "sin",
    "softmax", "softplus", "sqrt", "square", "squeeze", "stack", "stop_gradient",
    "subtract", "sum", "take", "tan", "tanh", "tensordot", "transpose", "vjp",
    "where", "zeros_like",
]
