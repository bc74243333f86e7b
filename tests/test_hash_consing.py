"""The hash-consing table: equal nodes are one object while they live, and
the table forgets nodes nobody holds (it must not keep graphs alive or grow
with every graph ever built)."""

import gc
import weakref

import numpy as np
import pytest

import chainrule as cr
from chainrule.ir import node as node_mod


def test_equal_nodes_are_the_same_object():
    x = cr.placeholder("x", (3,))
    a = cr.sin(x) * 2.0 + x
    b = cr.sin(x) * 2.0 + x
    assert a is b
    assert cr.add(x, cr.sin(x)) is cr.add(cr.sin(x), x)  # commutative: canonical order
    assert cr.constant(np.array([1.0, 2.0])) is cr.constant(np.array([1.0, 2.0]))
    assert cr.constant(0.0) is not cr.constant(-0.0)  # by value bytes: signs of zero differ


def test_table_does_not_keep_nodes_alive():
    x = cr.placeholder("x")
    y = cr.exp(cr.sin(x) * 3.0)
    ref = weakref.ref(y)
    del y
    gc.collect()
    assert ref() is None
    # rebuilt after its death: a new node, found again while it lives
    y2 = cr.exp(cr.sin(x) * 3.0)
    assert cr.exp(cr.sin(x) * 3.0) is y2


def test_entries_of_dead_nodes_are_removed():
    """When a graph is dropped its table entries go with it (none is left
    behind to hold memory until some later clean-up)."""
    x = cr.placeholder("x")
    y = x
    for k in range(20_000):
        y = cr.sin(y) * 1.5
    gc.collect()
    before = len(node_mod._table)
    del y
    gc.collect()
    assert len(node_mod._table) <= before - 40_000
    assert all(r() is not None for r in node_mod._table.values())
    kept = cr.sin(x) + 1.0
    assert cr.sin(x) + 1.0 is kept


def test_facts_about_constants_die_with_them():
    """The optimizer's cached fact "every entry equals c" lives on the
    constant node: dropping the node drops it (no process-wide cache)."""
    from chainrule.passes import facts

    c = cr.constant(np.full(5, 2.5))
    assert facts.uniform(c) == 2.5
    assert facts.uniform(cr.constant(np.array([0.0, -0.0]))) is None
    ref = weakref.ref(c)
    del c
    gc.collect()
    assert ref() is None
    assert not any(isinstance(v, dict) and len(v) > 10_000
                   for v in vars(facts).values())


def test_building_never_bypasses_a_node_the_user_holds():
    """-(-h), reshape(reshape(h)) and transpose(transpose(h)) keep h: were
    they built as the node under h, a derivative with respect to h would be
    silently zero (h no longer on the path). cr.optimize still collapses
    them."""
    x = cr.placeholder("x", (2, 3))
    feed = {x: np.arange(6.0).reshape(2, 3)}
    h = -x
    f = -h
    assert f is not x
    np.testing.assert_array_equal(cr.evaluate(cr.grad(f.sum(), h), feed), -np.ones((2, 3)))
    assert cr.optimize(f) is x
    r = x.reshape((3, 2))
    g = r.reshape((6,))
    w = cr.placeholder("w", (6,))
    np.testing.assert_array_equal(
        cr.evaluate(cr.grad((g * w).sum(), r), {**feed, w: np.arange(6.0) + 1}),
        (np.arange(6.0) + 1).reshape(3, 2))
    t = x.T
    u = t.T
    v = cr.placeholder("v", (2, 3))
    np.testing.assert_array_equal(
        cr.evaluate(cr.grad((u * v).sum(), t), {**feed, v: 2 * np.arange(6.0).reshape(2, 3)}),
        2 * np.arange(6.0).reshape(2, 3).T)
    assert cr.optimize(u) is x


def test_each_differentiation_call_has_a_table_of_its_own():
    """A differentiation call hash-conses its nodes in a table of its own,
    dropped when it returns: the W.T that the gradient of M @ W with respect
    to M needs is not the user's A = W.T, nor a W.T an earlier call made,
    and the users' table gets none of its nodes. cr.optimize merges them."""
    M = cr.placeholder("M", (2, 3))
    W = cr.placeholder("W", (3, 3))
    A = W.T
    y = M @ W
    for _ in range(2_000):
        y = cr.sin(y) * 1.5
    gc.collect()
    before = len(node_mod._table)
    g1 = cr.grad(cr.sum(y), M)
    g2 = cr.grad(cr.sum(y), M)
    assert len(node_mod._table) == before and node_mod._state.table is None
    t1, t2 = ([n for n in cr.ir.topo_order([g]) if n.op.name == "transpose"] for g in (g1, g2))
    assert len(t1) == len(t2) == 1 and t1[0] is not A and t2[0] is not t1[0]
    assert t1[0].inputs[0] is W
    a, b1, b2 = cr.optimize([A, t1[0], t2[0]])  # merged where they meet
    assert a is b1 is b2
    o1, o2 = cr.optimize([g1, g2])
    assert o1 is o2  # the two calls' equal gradients merge too


def test_a_failed_differentiation_call_leaves_the_users_table_in_use():
    x = cr.placeholder("x", (3,))
    with pytest.raises(cr.ShapeError):
        cr.grad(x * 2.0, x)  # not a scalar
    assert node_mod._state.table is None
    assert cr.exp(x) is cr.exp(x)
