"""Which rewrites the chosen graph uses, and the rules that justify them.

egglog keeps no proofs, so the justification is derived after the fact, in two steps.

1. Align. Each output before and after optimization is walked in parallel, top down. Where the
   op, its params and its arity agree and the children are equal (structurally, or proven equal
   in an e-graph holding both graphs and saturated as the optimizer saturates), the walk goes on
   into the children (a commutative op's children may be swapped); elsewhere that pair is one
   change. A change holding an inner change (different but equal subterms on both sides) is
   split in two, the outer one with the inner one undone.
2. Derive. A change's two sides go into a small e-graph where every rule is its own ruleset, the
   parts common to both abstracted as fresh leaves (or whole, when the rules need their
   structure). The candidate rules run until both sides are in one e-class; rules are
   then dropped while that still holds, and the rest replayed one rule at a time (after the type
   analysis) into a chain: applying each rule of `Rewrite.rules` once, in order, joins them.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from eqsat import shapes as shape_analysis
from eqsat.config import config
from eqsat.graph import Constant, Variable, ancestors, toposort
from eqsat.ops import OPS, apply
from eqsat.printing import pp
from eqsat.rules import Rule, all_rules, program
from eqsat.terms import TermGraph, freeze, to_egraph

MAX_TEXT = 100  # characters of one side's text; deeper parts are shown as "…"
SHORT_TEXT = 12  # a part common to both sides and longer than this is shown as a name
ITERATIONS = 12  # rounds of the candidate rules per check
MAX_ENODES = 5_000  # per check: the e-graphs here hold two small terms
MATCH_LIMIT = 100  # back-off limit for expand rules (commutativity, associativity)
MIN_SHARE_S = 0.5  # the least time a change gets in the first pass, if that much is left
ORACLE_SHARE = 0.4  # of the budget, for the e-graph that proves which subterms are equal


@dataclass
class Rewrite:
    """One place where the output differs from the input, and the rules that justify it."""

    output: int
    before: str
    after: str
    rules: tuple[str, ...]
    derived: bool


def derive(
    before: Sequence[Variable],
    after: Sequence[Variable],
    fired: Mapping[str, int] | None = None,
    fast_math: bool = False,
    budget_s: float = 10.0,
) -> list[Rewrite]:
    """The rewrites that turn `before` into `after` (a function's outputs then its update
    expressions), each with the rule chain that justifies it, in output then position order.
    Never raises: what it cannot derive within `budget_s` comes back with derived=False."""
    deadline = time.perf_counter() + max(budget_s, 0.0)
    keys = _Keys()
    try:
        pairs = list(zip(before, after, strict=False))
        oracle = _Oracle(pairs, fast_math, budget_s * ORACLE_SHARE)
        changes: list[tuple[int, Variable, Variable]] = []
        seen: set[tuple[int, int]] = set()
        for k, (b, a) in enumerate(pairs):
            for change in _align(b, a, keys, oracle):
                pair_key = (keys(change[0]), keys(change[1]))
                if pair_key not in seen:
                    seen.add(pair_key)
                    changes.append((k, *change))
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException:  # egglog panics are BaseExceptions; a report must still come out
        return []
    prover = _Prover(fast_math, fired, oracle.shapes)
    out: list[Rewrite | None] = [None] * len(changes)
    retry = []
    for n, (k, b, a) in enumerate(changes):
        # First pass: each change gets its share of what is left (at least a little), so that
        # one hard change cannot starve the rest; second pass: what is left, for the changes
        # that ran out of time.
        left = deadline - time.perf_counter()
        share = max(left / (len(changes) - n), min(left, MIN_SHARE_S))
        out[n] = _explain(k, b, a, keys, prover, time.perf_counter() + share)
        if not out[n].derived and prover.timed_out:
            retry.append(n)
    for m, n in enumerate(retry):
        left = deadline - time.perf_counter()
        if left <= 0:
            break
        k, b, a = changes[n]
        out[n] = _explain(k, b, a, keys, prover, time.perf_counter() + left / (len(retry) - m))
    return [r for r in out if r is not None]


# ------------------------------------------------------------------------------- alignment
class _Keys:
    """Structural identity: two variables get the same key iff they print the same graph
    (inputs by identity, constants by value)."""

    def __init__(self) -> None:
        self.memo: dict[int, int] = {}
        self.table: dict[Any, int] = {}
        self.keep: list[Variable] = []  # ids must stay valid while memoized

    def _intern(self, v: Variable, item: Any) -> int:
        k = self.memo[id(v)] = self.table.setdefault(item, len(self.table))
        self.keep.append(v)
        return k

    def _leaf(self, v: Variable) -> int:
        if isinstance(v, Constant):
            item = ("const", v.dtype, v.data.shape, v.data.tobytes())
        else:
            item = ("leaf", id(v))
        return self._intern(v, item)

    def __call__(self, v: Variable) -> int:
        if id(v) in self.memo:
            return self.memo[id(v)]
        if v.owner is None:
            return self._leaf(v)
        for node in toposort([v]):
            if id(node.out) in self.memo:
                continue
            kids = tuple(self.memo.get(id(i)) or self(i) for i in node.inputs)
            self._intern(node.out, (node.op, node.params, kids))
        return self.memo[id(v)]


class _Oracle:
    """Which variables of the two graphs are equal: one e-graph holding both, saturated with
    the optimizer's own schedule and bounds (less time if the budget is short)."""

    def __init__(self, pairs: list[tuple[Variable, Variable]], fast_math: bool, seconds: float):
        from eqsat.optimizer import Limits, OptimizationRecord, _Saturator

        self.cls: dict[int, Any] = {}
        self.shapes: shape_analysis.Shapes | None = None
        every = ancestors([v for pair in pairs for v in pair])
        self.keep = every
        try:
            self.shapes = shape_analysis.infer(every)
        except Exception:  # a shape the analysis cannot follow: insert without shape facts
            self.shapes = None
        if not pairs or len(every) > config.opt_max_graph:
            return
        limits = Limits.from_config()
        limits.seconds = min(limits.seconds, seconds)
        try:
            with to_egraph(every, program(fast_math), self.shapes) as tg:
                _Saturator(tg, limits, OptimizationRecord()).run()
                frozen = freeze(tg)
            self.cls = {id(v): c for v, c in zip(every, frozen.roots, strict=True)}
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException:  # no proofs of equality: changes stay where the ops differ
            self.cls = {}

    def equal(self, b: Variable, a: Variable) -> bool:
        c = self.cls.get(id(b))
        return b is a or (c is not None and c == self.cls.get(id(a)))


def _same_node(b: Variable, a: Variable) -> bool:
    nb, na = b.owner, a.owner
    return (
        nb is not None
        and na is not None
        and (nb.op, nb.params, len(nb.inputs)) == (na.op, na.params, len(na.inputs))
    )


def _child_pairs(b: Variable, a: Variable, keys: _Keys, oracle: _Oracle) -> list | None:
    """The child pairs to walk into, or None when (b, a) is itself a change."""
    if not _same_node(b, a):
        return None

    def equal(pairs: list) -> bool:
        return all(keys(x) == keys(y) or oracle.equal(x, y) for x, y in pairs)

    straight = list(zip(b.owner.inputs, a.owner.inputs, strict=True))
    if equal(straight):
        return straight
    if len(straight) == 2 and "commutative" in OPS[b.owner.op].flags:
        swapped = list(zip(b.owner.inputs, reversed(a.owner.inputs), strict=True))
        if equal(swapped):
            return swapped
    return None


def _subterms(v: Variable) -> list[Variable]:
    """v's proper subterms that are not leaves, top-down (preorder), each once."""
    out, seen, stack = [], {id(v)}, list(reversed(v.owner.inputs)) if v.owner else []
    while stack:
        u = stack.pop()
        if id(u) in seen or u.owner is None:
            continue
        seen.add(id(u))
        out.append(u)
        stack.extend(reversed(u.owner.inputs))
    return out


def _split(b: Variable, a: Variable, keys: _Keys, oracle: _Oracle) -> tuple[Variable, list]:
    """(b, a) with its inner changes undone in a, and those inner changes: pairs of different
    subterms of b and of a that the oracle proves equal (the outermost such, in a)."""
    by_class: dict[Any, Variable] = {}
    b_keys = set()
    for u in _subterms(b):
        b_keys.add(keys(u))
        c = oracle.cls.get(id(u))
        if c is not None:
            by_class.setdefault(c, u)
    inner, undo, seen = [], {}, set()
    stack = list(reversed(a.owner.inputs)) if a.owner else []
    while stack:
        u = stack.pop()
        if id(u) in seen or u.owner is None or keys(u) in b_keys:
            continue
        seen.add(id(u))
        match = by_class.get(oracle.cls.get(id(u)))
        if match is not None and keys(u) not in undo:
            undo[keys(u)] = match
            inner.append((match, u))
            continue
        stack.extend(reversed(u.owner.inputs))
    if not inner:
        return a, []
    try:
        return _rebuild(a, lambda v: undo.get(keys(v))), inner
    except Exception:  # rebuilding failed on an odd op: keep the change whole
        return a, []


def _align(b: Variable, a: Variable, keys: _Keys, oracle: _Oracle) -> list:
    """The changes (before subterm, after subterm) of one output, top-down, left to right."""
    changes, seen = [], set()
    stack = [(b, a)]
    while stack:
        b, a = stack.pop()
        if (id(b), id(a)) in seen or keys(b) == keys(a):
            continue
        seen.add((id(b), id(a)))
        kids = _child_pairs(b, a, keys, oracle)
        if kids is not None:
            stack.extend(reversed(kids))
            continue
        outer, inner = _split(b, a, keys, oracle)
        if keys(outer) != keys(b):
            changes.append((b, outer))
        stack.extend(reversed(inner))
    return changes


def _rebuild(root: Variable, swap: Callable[[Variable], Variable | None]) -> Variable:
    """root with every variable that `swap` maps to a replacement replaced (bottom-up)."""
    memo: dict[int, Variable] = {}

    def get(v: Variable) -> Variable:
        if id(v) not in memo:
            memo[id(v)] = swap(v) or v
        return memo[id(v)]

    for node in toposort([root]):
        out = node.out
        new = swap(out)
        if new is None:
            inputs = [get(i) for i in node.inputs]
            same = all(x is y for x, y in zip(inputs, node.inputs, strict=True))
            new = out if same else apply(node.op, inputs, **node.p)
        memo[id(out)] = new
    return get(root)


# ------------------------------------------------------------------------------- abstraction
def _names() -> Any:
    return itertools.chain("abcdefghijklmnopqrstuvwxyz", (f"t{k}" for k in itertools.count(1)))


class _Abstraction:
    """A change's two sides with parts common to both replaced by fresh named leaves (and
    unnamed graph inputs named, to be readable)."""

    def __init__(self, b: Variable, a: Variable, keys: _Keys) -> None:
        self.b, self.a, self.keys = b, a, keys
        sub_b = {keys(u): u for u in [b, *_subterms(b)]}
        sub_a = {keys(u) for u in [a, *_subterms(a)]}
        self.common = (set(sub_b) & sub_a) - {keys(b), keys(a)}
        leaves = [v for v in ancestors([b, a]) if v.owner is None]
        taken = {v.name for v in leaves if v.name}
        self.fresh_names = (n for n in _names() if n not in taken)
        self.fresh: dict[int, Variable] = {}
        for v in leaves:
            if not v.name and not isinstance(v, Constant):
                self._leaf_for(v)

    def _leaf_for(self, v: Variable) -> Variable:
        k = self.keys(v)
        if k not in self.fresh:
            self.fresh[k] = Variable(v.type, name=next(self.fresh_names))
        return self.fresh[k]

    def _outermost(self) -> list[Variable]:
        """The common parts not inside another common part, from both sides."""
        out, seen = [], set()
        stack = [self.a, self.b]
        while stack:
            u = stack.pop()
            if id(u) in seen or u.owner is None:
                continue
            seen.add(id(u))
            if self.keys(u) in self.common:
                out.append(u)
            else:
                stack.extend(reversed(u.owner.inputs))
        return out

    def shown(self) -> tuple[Variable, Variable]:
        """The two sides to show: common parts too long to read inline as names."""
        long = {self.keys(u) for u in self._outermost() if not _fits(u, SHORT_TEXT)}
        return self._with_leaves(long)

    def at(self, abstract: bool) -> tuple[Variable, Variable]:
        """The two sides for the prover: with the outermost common parts as fresh leaves, or
        whole (the rules may need their structure, e.g. exp(-x) in exp(-x) + 1)."""
        return self._with_leaves({self.keys(u) for u in self._outermost()} if abstract else set())

    def _with_leaves(self, cut: set) -> tuple[Variable, Variable]:
        """Both sides with the common parts keyed in `cut`, and the fresh inputs, as leaves."""

        def swap(v: Variable) -> Variable | None:
            k = self.keys(v)
            if k in cut or (v.owner is None and k in self.fresh):
                return self._leaf_for(v)
            return None

        return _rebuild(self.b, swap), _rebuild(self.a, swap)


def _cut(v: Variable, depth: int) -> Variable:
    """v with every op `depth` levels below the top shown as '…' (by its shallowest use)."""
    level = {id(v): 0}
    order = [v]
    for u in order:  # breadth first, so each variable keeps its shallowest depth
        if u.owner is not None:
            for i in u.owner.inputs:
                if id(i) not in level:
                    level[id(i)] = level[id(u)] + 1
                    order.append(i)
    dots: dict[int, Variable] = {}

    def swap(u: Variable) -> Variable | None:
        if u.owner is None or level.get(id(u), 0) < depth:
            return None
        return dots.setdefault(id(u), Variable(u.type, name="…"))

    return _rebuild(v, swap)


def _fits(v: Variable, limit: int) -> bool:
    """Whether v's whole text is at most `limit` characters (without building long texts)."""
    t = text(v, limit)
    return len(t) <= limit and "…" not in t


def text(v: Variable, limit: int = MAX_TEXT) -> str:
    """One infix line for v, deep parts shown as '…' when it would be longer than `limit`."""
    best = None
    for depth in range(1, 64):
        cut = _cut(v, depth)
        t = pp(cut)
        if len(t) > limit:
            break
        best = t
        if cut is v:  # nothing was cut: the whole term fits
            return t
    if best is None:
        best = pp(_cut(v, 1))
    return best if len(best) <= limit else best[: limit - 1] + "…"


# ------------------------------------------------------------------------------- derivation
class _Prover:
    """The rules, each declared in its own ruleset on one shared e-graph (declared once per
    process), and checks of which rule sets join two terms."""

    _TEXT: dict[bool, tuple[str, list[Rule]]] = {}

    def __init__(self, fast_math: bool, fired: Mapping[str, int] | None, shapes: Any) -> None:
        if fast_math not in self._TEXT:
            from eqsat.rules import types

            rules = [r for r in all_rules() if r.phase != "fast_math" or fast_math]
            lines = [types.PROGRAM]
            for n, r in enumerate(rules):
                lines += [f"(ruleset R{n})", r.egglog(f"R{n}")]
            self._TEXT[fast_math] = ("\n".join(lines), rules)
        self.text, self.rules = self._TEXT[fast_math]
        number = {r.qualname: n for n, r in enumerate(self.rules)}
        if fired:  # the rules that fired in the real run are enough to re-derive its result
            self.candidates = sorted(
                number[k] for k, count in fired.items() if count and k in number
            )
        else:
            self.candidates = list(range(len(self.rules)))
        self.shapes = shapes  # of the whole graphs, for terms that were not rebuilt
        self.deadline = 0.0
        self.timed_out = False

    def _egraph(self, b: Variable, a: Variable) -> TermGraph:
        ids = self.shapes.dims if self.shapes is not None else {}
        whole = all(id(u) in ids for u in ancestors([b, a]))
        facts = self.shapes if whole else shape_analysis.infer([b, a])
        return to_egraph([b, a], self.text, facts)

    @staticmethod
    def _joined(tg: TermGraph) -> bool:
        i, j = tg.roots
        if i == j:
            return True
        try:
            tg.run(f"(check (= (N {i}) (N {j})))")
        except Exception:  # egglog reports a failed check as an error
            return False
        return True

    def _schedule(self, rules: list[int]) -> str:
        """A run-schedule applying each rule once (one egglog iteration each, after the type
        analysis), in order; expand rules under a back-off scheduler, as the optimizer runs
        them."""
        parts = []
        if any(self.rules[n].phase == "expand" for n in rules):
            parts.append(f"(let-scheduler bo (back-off :match-limit {MATCH_LIMIT}))")
        for n in rules:
            run = f"(run-with bo R{n})" if self.rules[n].phase == "expand" else f"(run R{n})"
            parts.append(f"(saturate (run types)) {run}")
        return "(run-schedule " + " ".join(parts) + ")"

    def _step(self, tg: TermGraph, n: int) -> tuple[int, bool]:
        """Apply rule n once: its matches, and whether it changed the e-graph."""
        tg.run("(run-schedule (saturate (run types)))")  # apart, so `updated` is the rule's
        (out,) = tg.run(self._schedule([n]))
        report = out.report
        return report.num_matches_per_rule.get(self.rules[n].qualname, 0), bool(report.updated)

    def _joins(
        self, tg: TermGraph, rules: list[int], rounds: int = ITERATIONS, enodes: int = MAX_ENODES
    ) -> tuple[list[int], int, int] | None:
        """If running `rules` round after round joins the two terms within the bounds: the
        rules that matched on the way, the rounds it took and the e-graph's size; else None."""
        used: set[int] = set()
        with _trial(tg):
            # one egglog call per round: the calls, not the rules, cost most on small terms
            schedule = self._schedule(rules)
            names = {self.rules[n].qualname: n for n in rules}
            for k in range(1, rounds + 1):
                if time.perf_counter() > self.deadline:
                    self.timed_out = True
                    return None
                (out,) = tg.run(schedule)
                counts = out.report.num_matches_per_rule
                used |= {n for name, n in names.items() if counts.get(name)}
                if self._joined(tg):
                    return sorted(used), k, tg.size()
                if not out.report.updated or tg.size() > enodes:
                    return None
        return None

    def _shrink(self, tg: TermGraph, found: tuple[list[int], int, int]) -> list[int]:
        """A small subset of the rules that joined the terms that still joins them, dropping
        one rule at a time: commutativity and associativity first (they rarely matter to a
        reader), then later rules of the catalog first. A trial gets a little more than the
        rounds and e-nodes the full set needed, so that failing trials end soon."""
        used, rounds, size = found
        keep = sorted(used, key=lambda n: (self.rules[n].phase != "expand", -n))
        for n in list(keep):
            trial = [m for m in keep if m != n]
            smaller = self._joins(tg, trial, rounds + 2, max(2 * size, 500)) if trial else None
            if smaller is not None:
                keep = [m for m in trial if m in smaller[0]]
        return sorted(keep)

    def _sequence(self, tg: TermGraph, rules: list[int]) -> list[int] | None:
        """Rules applied one at a time, round after round, until the terms join: the ones
        that changed the e-graph, in the order they did."""
        seq: list[int] = []
        with _trial(tg):
            for _ in range(ITERATIONS):
                changed = False
                for n in rules:
                    if time.perf_counter() > self.deadline:
                        self.timed_out = True
                        return None
                    matches, updated = self._step(tg, n)
                    if matches and updated:
                        seq.append(n)
                        changed = True
                        if self._joined(tg):
                            return seq
                if not changed or tg.size() > MAX_ENODES:
                    return None
        return None

    def _replays(self, tg: TermGraph, seq: list[int]) -> bool:
        """Whether applying exactly `seq`, one rule once each, in order, joins the terms."""
        with _trial(tg):
            tg.run(self._schedule(seq))
            return self._joined(tg)

    def chain(self, b: Variable, a: Variable) -> list[int] | None:
        """A short chain of rules joining b and a, or None if none was found in time."""
        with self._egraph(b, a) as tg:
            if self._joined(tg):
                return []
            found = self._joins(tg, self.candidates)
            if found is None:
                return None
            # the rules that changed the e-graph when applied one at a time: fewer to shrink
            seq = self._sequence(tg, found[0])
            if seq is not None:
                found = (sorted(set(seq)), found[1], found[2])
            seq = self._sequence(tg, self._shrink(tg, found))
            if seq is None:
                return None
            for k in reversed(range(len(seq))):
                if time.perf_counter() > self.deadline:
                    break  # seq joins the terms already; it is just not the shortest
                trial = seq[:k] + seq[k + 1 :]
                if trial and self._replays(tg, trial):
                    seq = trial
            return seq


@contextmanager
def _trial(tg: TermGraph) -> Iterator[TermGraph]:
    """Run a trial on tg and undo it. On an egglog error the e-graph is left as it is: the
    enclosing TermGraph then drops the shared e-graph (see TermGraph.__exit__)."""
    tg.run("(push)")
    ok = False
    try:
        yield tg
        ok = True
    finally:
        if ok:
            tg.run("(pop)")


def _explain(
    output: int, b: Variable, a: Variable, keys: _Keys, prover: _Prover, deadline: float
) -> Rewrite:
    """One change, derived if it can be within the deadline."""
    prover.deadline, prover.timed_out = deadline, False
    try:
        abstraction = _Abstraction(b, a, keys)
        shown = abstraction.shown()
    except Exception:
        return Rewrite(output, _safe_text(b), _safe_text(a), (), False)
    before, after = _safe_text(shown[0]), _safe_text(shown[1])
    for abstract in [True, False] if abstraction.common else [False]:
        if time.perf_counter() > deadline:
            prover.timed_out = True
            break
        try:
            seq = prover.chain(*abstraction.at(abstract))
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException:  # egglog panics, odd ops: try the whole terms
            continue
        if seq is not None:
            return Rewrite(
                output, before, after, tuple(prover.rules[n].qualname for n in seq), True
            )
    return Rewrite(output, before, after, (), False)


def _safe_text(v: Variable) -> str:
    try:
        return text(v)
    except Exception:
        return repr(v)
