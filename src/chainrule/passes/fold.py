"""Constant folding: an op whose inputs are all constants is evaluated once,
at compile time, when its result is small (or uniform, so it prints as
``np.full``)."""

from __future__ import annotations

import numpy as np

from ..ops.base import constant_var, folded
from .rewrite import RuleTable

FOLDING = RuleTable("folding")
FOLD_MAX = 4096   # elements; larger results are folded only when uniform
_NEVER = {"eye", "full_like"}  # cheaper to make at run time than to store


@FOLDING.rule("*", const=True)
def fold_constants(n):
    """op(constants) -> constant"""
    if n.op.name in _NEVER or not n.inputs or any(i.op.name != "constant" for i in n.inputs):
        return None
    if n.op.name == "stop_gradient":
        return None
    val = folded(n.op, n.attrs, [i._const for i in n.inputs])
    if val is None or val.shape != n.shape:
        return None
    if val.size > FOLD_MAX:
        flat = val.reshape(-1)
        if not bool(np.all(flat == flat[0])):
            return None
    return constant_var(val.astype(n.dtype, copy=False))
