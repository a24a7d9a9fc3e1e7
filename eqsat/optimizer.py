"""The optimizer: graph -> e-graph, bounded saturation in phases, extraction -> graph.

Phases: "simplify" (shrinking and canonicalizing rules) runs until saturated; then rounds of
"expand" (commutativity, associativity, distribution) under egglog's back-off scheduler, each
followed by another simplify. Every step is one egglog iteration (simplify rules that build at
most one e-node per match run plainly in it, the others under back-off), so the bounds are checked
between iterations: an iteration limit, an e-node limit and a wall-clock limit. Whatever
happens, the user gets a correct function: any failure (egglog panics included) falls back to
the unoptimized graph with a warning, and the record says why.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from eqsat import optcache, shapes
from eqsat.config import config
from eqsat.extract import CostModel, dag_cost, extract, graph_cost
from eqsat.graph import Variable, toposort
from eqsat.rules import program
from eqsat.runtime.shared import SharedVariable
from eqsat.terms import TermGraph, build, freeze, to_egraph


@dataclass
class Limits:
    """Bounds on saturation; each stops it between two iterations."""

    iterations: int = 30
    nodes: int = 20_000
    seconds: float = 2.0
    expand_rounds: int = 1
    simplify_steps: int = 8  # per simplify phase: sign rewrites can grow a graph slowly forever
    match_limit: int = 100  # back-off scheduler: per rule and iteration, in the expand phase

    @classmethod
    def from_config(cls) -> Limits:
        return cls(config.opt_iterations, config.opt_nodes, config.opt_seconds)


@dataclass
class Step:
    phase: str
    enodes: int
    seconds: float
    matches: int
    eclasses: int | None = None  # (records cached before it was counted read None)


@dataclass
class OptimizationRecord:
    """What the optimizer did to one function: a plain data object for reports."""

    steps: list[Step] = field(default_factory=list)
    rules_fired: dict[str, int] = field(default_factory=dict)
    stopped_by: str = "saturated"
    cost_before: float = 0.0
    cost_after: float = 0.0
    ops_before: int = 0
    ops_after: int = 0
    eclasses: int = 0
    enodes: int = 0
    times: dict[str, float] = field(default_factory=dict)
    fallback: str | None = None  # why the unoptimized graph was kept, if it was
    cached: bool = False  # read from the optimizer's cache (eqsat/optcache.py), not derived


def _leaf_sizes(leaves: list[Variable]) -> dict[int, float]:
    """Element counts of shared variables' current values, by leaf number: a hint for the
    cost model only, never baked into the code."""
    return {
        k: float(v.get_value(borrow=True).size)
        for k, v in enumerate(leaves)
        if isinstance(v, SharedVariable)
    }


def _class_hints(fg: Any, sizes: dict[int, float]) -> dict[Any, float]:
    return {
        cls: sizes[node.args[0]]
        for cls, nodes in fg.classes.items()
        for node in nodes
        if node.ctor == "Leaf" and node.args[0] in sizes
    }


class _Saturator:
    def __init__(self, tg: TermGraph, limits: Limits, record: OptimizationRecord) -> None:
        self.tg, self.limits, self.record = tg, limits, record
        self.start = time.perf_counter()
        self.iterations = 0

    def step(self, phase: str, schedule: str) -> bool:
        """One iteration; False when it changed nothing or a bound says stop."""
        t = time.perf_counter()
        (out,) = self.tg.run(f"(run-schedule {schedule})")
        report = out.report
        for name, n in report.num_matches_per_rule.items():
            if n and "/" in name and not name.startswith("("):  # named rewrites, not analyses
                self.record.rules_fired[name] = self.record.rules_fired.get(name, 0) + n
        self.iterations += 1
        size = self.tg.size()
        seconds = time.perf_counter() - t
        matches = sum(report.num_matches_per_rule.values())
        # (counting classes reads a snapshot of the e-graph: ~0.1 ms, outside the step's time)
        self.record.steps.append(Step(phase, size, seconds, matches, self.tg.classes()))
        if size > self.limits.nodes:
            self.record.stopped_by = f"e-node limit ({size} > {self.limits.nodes})"
        elif self.iterations >= self.limits.iterations:
            self.record.stopped_by = f"iteration limit ({self.limits.iterations})"
        elif time.perf_counter() - self.start > self.limits.seconds:
            self.record.stopped_by = f"time limit ({self.limits.seconds} s)"
        else:
            return bool(report.updated)
        return False

    @property
    def bounded(self) -> bool:
        return self.record.stopped_by != "saturated"

    def _schedule(self, ruleset: str) -> str:
        # One iteration per call, under the back-off scheduler: a rule matching more than
        # match_limit times sits the iteration out, so no single step can explode (a plain
        # simplify step once grew 5k -> 620k e-nodes on a random graph, and egglog cannot stop
        # inside a step). Simplify rules that build at most one e-node per match ("local") run
        # plainly alongside: back-off costs ten times a plain iteration per rule.
        local = "(run local)" if ruleset == "simplify" else ""
        return (
            f"(let-scheduler bo (back-off :match-limit {self.limits.match_limit})) "
            f"(saturate (run types)) {local} (run-with bo {ruleset})"
        )

    def simplify(self) -> bool:
        """Simplify steps until nothing changes; False if the phase's step limit cut it."""
        # The back-off scheduler never reports saturation while it holds a rule back, so the
        # phase also ends when two steps in a row leave the e-graph's size unchanged.
        still = 0
        for _ in range(self.limits.simplify_steps):
            if still >= 2 or not self.step("simplify", self._schedule("simplify")):
                return True
            grew = (
                len(self.record.steps) < 2
                or self.record.steps[-1].enodes != self.record.steps[-2].enodes
            )
            still = 0 if grew else still + 1
        return self.bounded or still >= 2

    def run(self) -> None:
        done = self.simplify()
        for _ in range(self.limits.expand_rounds):
            if self.bounded or not self.step("expand", self._schedule("expand")):
                break
            done = self.simplify()
        if not done and not self.bounded:
            self.record.stopped_by = f"simplify step limit ({self.limits.simplify_steps})"


def optimize(
    outputs: Sequence[Variable], limits: Limits | None = None, fast_math: bool | None = None
) -> tuple[list[Variable], OptimizationRecord]:
    """Equivalent outputs of least estimated cost, and the record of how they were found."""
    record = OptimizationRecord(ops_before=len(toposort(outputs)))
    if record.ops_before > config.opt_max_graph:
        record.stopped_by = (
            f"graph too large to insert ({record.ops_before} > {config.opt_max_graph} ops)"
        )
        record.ops_after = record.ops_before
        return list(outputs), record
    limits = limits or Limits.from_config()
    fast = config.fast_math if fast_math is None else fast_math
    key = optcache.key(outputs, (limits, fast))
    hit = optcache.load(key, outputs) if key else None
    if hit is not None:
        new, record = hit
        record.cached = True
        return new, record
    try:
        new = _optimize(list(outputs), limits, fast, record)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as e:  # egglog panics are BaseExceptions
        record.fallback = f"{type(e).__name__}: {e}"
        message = f"eqsat optimizer failed, using the unoptimized graph: {record.fallback}"
        warnings.warn(message, stacklevel=3)
        return list(outputs), record
    record.ops_after = len(toposort(new))
    if key:
        optcache.store(key, outputs, new, record)
    return new, record


def _fits(new: Variable, old: Variable) -> bool:
    """new may stand for old: same dtype and rank, and no static size that differs. (new may
    know less: a static size the shape analysis equated with an input's length is checked on
    that input at run time.)"""
    if (new.dtype, new.ndim) != (old.dtype, old.ndim):
        return False
    return all(
        None in (o, n) or n == o for o, n in zip(old.type.shape, new.type.shape, strict=True)
    )


def _optimize(outputs, limits, fast, record) -> list[Variable]:
    t0 = time.perf_counter()
    with to_egraph(outputs, program(fast), shapes.infer(outputs)) as tg:
        t1 = time.perf_counter()
        _Saturator(tg, limits, record).run()
        t2 = time.perf_counter()
        fg = freeze(tg)
        t3 = time.perf_counter()
    t4 = time.perf_counter()  # leaving pops this graph off the shared e-graph
    record.eclasses, record.enodes = len(fg.classes), fg.n_nodes
    sizes = _leaf_sizes(tg.leaves)
    model = CostModel(fg, _class_hints(fg, sizes))
    # The input graph priced by the same model as the result (its unstable forms included),
    # when the inserted nodes still form an acyclic choice; else by the plain graph cost.
    record.cost_before = dag_cost(fg, fg.original, model.node_cost)
    if not math.isfinite(record.cost_before):
        hints = {id(tg.leaves[k]): n for k, n in sizes.items()}
        record.cost_before = graph_cost(outputs, hints)
    choice, record.cost_after = extract(fg, model)
    new = build(fg, choice, tg.leaves)
    t5 = time.perf_counter()
    record.times = {
        "insert": t1 - t0, "saturate": t2 - t1, "freeze": t3 - t2, "pop": t4 - t3,
        "extract": t5 - t4, "total": t5 - t0,
    }  # fmt: skip
    for old, out in zip(outputs, new, strict=True):
        if not _fits(out, old):
            raise TypeError(f"extracted output has type {out.type!r}, expected {old.type!r}")
    if record.cost_after > record.cost_before:  # never worse than what came in
        record.cost_after = record.cost_before
        return outputs
    return new
