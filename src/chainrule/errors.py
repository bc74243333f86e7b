"""Every exception a chainrule user can catch.

All of them derive from :class:`ChainruleError`, and each also derives from
the builtin exception a Python user would reach for first (``ValueError``,
``TypeError``), so ``except ValueError`` keeps working.
"""


class ChainruleError(Exception):
    """Base class of every error raised by chainrule."""


class ShapeError(ChainruleError, ValueError):
    """Operand shapes do not fit an op (raised when the node is built)."""


class ArgumentError(ChainruleError, TypeError):
    """An argument of the wrong kind: an axis or index that is not an int, a
    name that is not a str, a NumPy function given a Var, ..."""


class DTypeError(ChainruleError, TypeError):
    """Operand dtypes do not fit an op (raised when the node is built)."""


class DisconnectedError(ChainruleError, ValueError):
    """``grad(..., disconnected="raise")`` met an input the cost does not use."""


class NotDifferentiableError(ChainruleError, TypeError):
    """A gradient must flow through an op that has no derivative."""


class InputError(ChainruleError, ValueError):
    """A compiled function or ``evaluate`` was called with bad inputs."""


class NonFiniteError(ChainruleError, FloatingPointError):
    """``check_finite=True`` found a NaN or inf; names the node that made it."""


class GraphFormatError(ChainruleError, ValueError):
    """A saved graph file is malformed or of an unknown version."""
