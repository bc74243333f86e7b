"""Stabilisation rules (as Theano's "stabilize" stage): rewrite expressions
whose naive evaluation overflows or loses precision into an equivalent,
well-behaved op. These are the wanted exception to "never change a value":
they turn a spurious inf/NaN into the correct finite result."""

from __future__ import annotations

from .. import ops
from .facts import is_value
from .rewrite import RuleTable

STABILITY = RuleTable("stability")
rule = STABILITY.rule


def _same(x, node):
    return x.shape == node.shape and x.dtype == node.dtype


@rule("log")
def log_sigmoid(n):
    """log(sigmoid(x)) -> -softplus(-x)"""
    x = n.inputs[0]
    if x.op.name == "sigmoid":
        # negate in the float result type: -x wraps for an unsigned x and
        # is undefined for a bool
        z = ops.cast(x.inputs[0], n.dtype)
        return ops.negative(ops.softplus(ops.negative(z)))


@rule("log")
def log_one_minus_sigmoid(n):
    """log(1 - sigmoid(x)) -> -softplus(x)"""
    x = n.inputs[0]
    if x.op.name == "subtract" and is_value(x.inputs[0], 1) \
            and x.inputs[1].op.name == "sigmoid" and _same(x.inputs[1], n):
        return ops.negative(ops.softplus(x.inputs[1].inputs[0]))


@rule("log")
def log_one_plus(n):
    """log(1 + x) -> log1p(x)"""
    x = n.inputs[0]
    if x.op.name == "add":
        a, b = x.inputs
        for one, rest in ((a, b), (b, a)):
            if is_value(one, 1) and _same(rest, n):
                return ops.log1p(rest)


@rule("log")
def log_exp(n):
    """log(exp(x)) -> x (exact, and finite where exp overflows; so is its
    derivative, which the sweeps take through this form: autodiff/stable.py)"""
    x = n.inputs[0]
    if x.op.name == "exp":
        return ops.cast(x.inputs[0], n.dtype)  # exp of an int is a float


@rule("log1p")
def log1p_exp(n):
    """log1p(exp(x)) -> softplus(x)"""
    x = n.inputs[0]
    if x.op.name == "exp" and x.inputs[0].dtype == n.dtype:  # not from ints
        return ops.softplus(x.inputs[0])


@rule("subtract")
def exp_minus_one(n):
    """exp(x) - 1 -> expm1(x)"""
    a, b = n.inputs
    if a.op.name == "exp" and is_value(b, 1) and _same(a, n):
        return ops.expm1(a.inputs[0])


@rule("log")
def log_softmax_rule(n):
    """log(softmax(x)) -> log_softmax(x)"""
    x = n.inputs[0]
    if x.op.name == "softmax":
        return ops.log_softmax(x.inputs[0], x.attrs[0])


@rule("log")
def log_sum_exp(n):
    """log(sum(exp(x), axes)) -> logsumexp(x, axes)"""
    s = n.inputs[0]
    if s.op.name == "sum" and s.inputs[0].op.name == "exp":
        axes, keepdims = s.attrs
        x = s.inputs[0].inputs[0]
        # not over an empty (or unknown, maybe empty) axis: log(0) is -inf
        # where logsumexp's max would raise; not from ints
        if x.dtype != n.dtype or any(x.shape[a] in (None, 0) for a in axes):
            return None
        return ops.logsumexp(x, axes, keepdims)
