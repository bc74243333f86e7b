"""The hash-consing table: equal nodes are one object while they live, and
the table forgets nodes nobody holds (it must not keep graphs alive or grow
with every graph ever built)."""

import gc
import weakref

import numpy as np

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


def test_dead_entries_are_swept():
    """Building and dropping more nodes than the table holds leaves fewer
    dead entries than nodes built: without sweeping every one would stay."""
    gc.collect()
    n_build = 2 * max(node_mod._sweep_at[0], len(node_mod._table)) + 40_000
    x = cr.placeholder("x")
    for _ in range(n_build // 4_000 + 1):
        y = x
        for k in range(2_000):
            y = y * 1.5 + float(k)
        del y
    gc.collect()
    dead = sum(1 for r in node_mod._table.values() if r() is None)
    assert dead < n_build
    kept = cr.sin(x) + 1.0
    assert cr.sin(x) + 1.0 is kept  # found again after sweeps


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
