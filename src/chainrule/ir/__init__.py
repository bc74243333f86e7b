"""The graph: nodes, op declarations, traversal, structures."""

from .node import Var, make_constant, make_leaf, make_node
from .op import NOT_DIFFERENTIABLE, REGISTRY, Op, get_op, register
from .structure import flatten
from .traversal import consumers, depends_on, gc_paused, topo_order, without_gc

__all__ = [
    "Var", "make_node", "make_constant", "make_leaf", "Op", "REGISTRY",
    "register", "get_op", "NOT_DIFFERENTIABLE", "flatten", "topo_order",
    "consumers", "depends_on", "gc_paused", "without_gc",
]
