"""Extraction on hand-made and random e-graphs: the choice covers every class the roots reach
and is acyclic, shared classes count once, the returned cost is dag_cost of the choice and
never above the graph as inserted, and the result is deterministic. Node costs come from a
stand-in model (an e-node's first arg), so no egglog is involved."""

from __future__ import annotations

import itertools
import math
import random

from eqsat.extract import _climb, _Climber, _inserted, _Numbered, dag_cost, extract
from eqsat.terms import ENode, FrozenGraph

BACKEND_INDEPENDENT = True  # no compiled function here: one run covers every backend


class Model:
    """Each e-node costs its first arg."""

    def node_cost(self, cls, node: ENode) -> float:
        return node.args[0]


def op(cost: float, *kids, tag: int = 0) -> ENode:
    return ENode("Op", (float(cost), tag), kids)


def check(fg: FrozenGraph, choice: dict, cost: float) -> None:
    """The invariants every extraction keeps."""
    cost_of = Model().node_cost
    assert cost == dag_cost(fg, choice, cost_of)  # finite: acyclic, every reached class chosen
    assert math.isfinite(cost)
    assert all(n in fg.classes[c] for c, n in choice.items())
    inserted = dag_cost(fg, {**choice, **fg.original}, cost_of)
    assert cost <= inserted + 1e-9


def test_shared_class_counts_once():
    # Both roots can use s (cost 10); r1 must. Alone, r2's cheapest node is Op(x) (5 < 1 + 10),
    # but with s paid for by r1 its Op(s) adds only 1.
    fg = FrozenGraph(
        classes={"x": [ENode("Leaf", (0.0,), ())], "s": [op(10, "x")], "r1": [op(1, "s")],
        "r2": [op(5, "x"), op(1, "s", tag=1)]},
        types={}, roots=["r1", "r2"],
        original={"x": ENode("Leaf", (0.0,), ()), "s": op(10, "x"), "r1": op(1, "s"),
                  "r2": op(5, "x")},
    )  # fmt: skip
    choice, cost = extract(fg, Model())
    check(fg, choice, cost)
    assert choice["r2"] == op(1, "s", tag=1)
    assert cost == 12.0


def test_cheaper_cyclic_node_is_not_chosen():
    # x * 1 merged into x's class: the cheap node Op(x, one) would make x depend on itself.
    leaf, one = ENode("Leaf", (0.5,), ()), ENode("LitN", (0.0,), ())
    fg = FrozenGraph(
        classes={"x": [op(0.1, "x", "one"), leaf], "one": [one], "y": [op(3, "x")]},
        types={}, roots=["y"],
        original={"x": op(0.1, "x", "one"), "one": one, "y": op(3, "x")},
    )  # fmt: skip
    choice, cost = extract(fg, Model())
    check(fg, choice, cost)
    assert choice["x"] == leaf
    # the inserted graph, taken as it is recorded, is cyclic; its repair uses x's own node
    g = _Numbered(fg, Model())
    repaired = g.named(_inserted(g, fg, [-1] * len(g.ids)))
    assert repaired["x"] == leaf and dag_cost(fg, repaired, Model().node_cost) == 3.5


def random_graph(rng: random.Random, n: int) -> FrozenGraph:
    """Class k's first node uses only lower classes (the inserted graph); other nodes may use
    any class, cycles included."""
    classes, original = {}, {}
    for k in range(n):
        kids = tuple(rng.randrange(k) for _ in range(rng.choice([0, 1, 2, 2, 3]) if k else 0))
        nodes = [op(rng.randint(0, 20), *kids)]
        for j in range(rng.randint(0, 2)):
            pool = range(n) if rng.random() < 0.3 else range(max(k, 1))
            more = tuple(rng.choice(pool) for _ in range(rng.choice([0, 1, 2, 3])))
            nodes.append(op(rng.randint(0, 20), *more, tag=j + 1))
        classes[k], original[k] = nodes, nodes[0]
    roots = sorted(rng.sample(range(n), min(n, rng.randint(1, 3))))
    return FrozenGraph(classes, {}, roots, original)


def optimum(fg: FrozenGraph) -> float:
    keys = list(fg.classes)
    return min(
        dag_cost(fg, dict(zip(keys, combo, strict=True)), Model().node_cost)
        for combo in itertools.product(*(fg.classes[k] for k in keys))
    )


def test_random_egraphs():
    rng = random.Random(0)
    for _ in range(400):
        n = rng.randint(1, 30)
        fg = random_graph(rng, n)
        choice, cost = extract(fg, Model())
        check(fg, choice, cost)
        assert extract(fg, Model()) == (choice, cost)
        if math.prod(len(v) for v in fg.classes.values()) <= 2000:
            assert cost >= optimum(fg) - 1e-9


def test_climber_bookkeeping_matches_a_recount():
    """The climber updates reference counts and heights per switch; they must equal what a
    fresh walk of its final choice gives (counts) and stay above the children's (heights)."""
    rng = random.Random(1)
    for _ in range(200):
        fg = random_graph(rng, rng.randint(2, 30))
        g = _Numbered(fg, Model())
        start = _inserted(g, fg, [-1] * len(g.ids))
        climber = _climb(g, start, 10**9)
        fresh = _Climber(g, list(climber.choice))
        assert climber.refs == fresh.refs
        for k, r in enumerate(climber.refs):
            if r:
                kids = g.kids[climber.choice[k]]
                assert all(climber.height[c] < climber.height[k] for c in kids)


def test_no_work_budget_still_gives_a_valid_choice():
    rng = random.Random(2)
    for _ in range(50):
        fg = random_graph(rng, rng.randint(1, 30))
        choice, cost = extract(fg, Model(), work=0)
        check(fg, choice, cost)
        assert extract(fg, Model())[1] <= cost  # climbing starts from the same choices
