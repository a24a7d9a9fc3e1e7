"""Rewrite rules, grouped in themed modules; each rule is one row of data.

A rule's sides are egglog patterns over the constructors of `eqsat.terms` (`(Log1p x)`,
`(LitN 1.0 d n)` a literal 1 of dtype d and rank n). `when` adds egglog facts, most often that
a side keeps the matched value's dtype and rank (`same_type`), where `e__` is the matched term.
Every rule has a row in `rules_catalog.md` and a test that its two sides agree.

Soundness, as DESIGN.md defines it:
- "ieee": exact over the reals and the same on inf, nan and -0.0;
- "exact": exact over the reals (may differ on special values or by rounding);
- "stable": exact over the reals and more accurate (the rewrite's reason to exist);
- "fast_math": wrong for inf/nan; only with fast_math=True.
Phases: "simplify" rules shrink or canonicalize and run to saturation; "expand" rules
(commutativity, associativity, distribution) grow the e-graph and run under a back-off scheduler
for a few bounded rounds. In egglog, a simplify rule whose right side builds at most one new
e-node per match goes to the ruleset "local" (run plainly: a step adds at most one e-node per
match), the others to "simplify" (run under the back-off scheduler, which costs ~0.15 ms per rule
and iteration on egglog 13.2, ten times a plain iteration).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SOUNDNESS = ("ieee", "exact", "stable", "fast_math")
PHASES = ("simplify", "expand", "fast_math")
RULESETS = ("local", "simplify", "expand")


@dataclass(frozen=True)
class Rule:
    name: str
    lhs: str
    rhs: str
    doc: str  # the algebra in one line
    when: tuple[str, ...] = ()
    soundness: str = "exact"
    phase: str = "simplify"
    ruleset: str = ""  # set by the module that lists it

    @property
    def qualname(self) -> str:
        return f"{self.ruleset}/{self.name}"

    @property
    def builds(self) -> int:
        """Constructors on the right side (literals aside): the e-nodes one match may add."""
        return len(re.findall(r"\((?!LitN )[A-Z]", self.rhs))

    @property
    def egglog_ruleset(self) -> str:
        if self.phase == "expand":
            return "expand"
        return "local" if self.builds <= 1 else "simplify"

    def egglog(self, ruleset: str | None = None) -> str:
        facts = " ".join([f"(= e__ {self.lhs})", *self.when])
        return (f"(rule ({facts}) ((union e__ {self.rhs})) "
                f':ruleset {ruleset or self.egglog_ruleset} :name "{self.qualname}")')  # fmt: skip


def same_type(*names: str) -> tuple[str, ...]:
    """Facts: each named pattern variable has the matched term's dtype and rank (which, for
    rewrites that only drop all-ones literals or fuse ops, means the same type)."""
    facts: list[str] = []
    for n in names:
        facts += [f"(= (DT e__) (DT {n}))", f"(= (Rank e__) (Rank {n}))"]
    return tuple(facts)


def same_dtype(*names: str) -> tuple[str, ...]:
    """Facts: each named pattern variable has the matched term's dtype, for rewrites that build
    a new + or * from matched children (on bools, + is `or`: a*b + a*c is not a*(b + c))."""
    return tuple(f"(= (DT e__) (DT {n}))" for n in names)


def ruleset(name: str, rules: list[Rule]) -> list[Rule]:
    """The rules of one themed module, tagged with its name and checked for sanity."""
    out = []
    for r in rules:
        assert r.soundness in SOUNDNESS and r.phase in PHASES, r
        out.append(Rule(**{**r.__dict__, "ruleset": name}))
    names = [r.name for r in out]
    assert len(set(names)) == len(names), f"duplicate rule names in {name}"
    return out


def all_rules() -> list[Rule]:
    """Every rule of every themed module."""
    from eqsat.rules import arith, explog, fast_math, linalg, reduce, shape, stability

    return [
        *arith.RULES, *explog.RULES, *stability.RULES, *shape.RULES, *reduce.RULES, *linalg.RULES,
        *fast_math.RULES,
    ]  # fmt: skip


def program(fast_math: bool = False) -> str:
    """egglog text declaring the type analysis, the phase rulesets and every rule."""
    from eqsat.rules import types

    lines = [types.PROGRAM, *(f"(ruleset {p})" for p in RULESETS)]
    for r in all_rules():
        if r.phase != "fast_math" or fast_math:  # they shrink the graph: run with simplify
            lines.append(r.egglog())
    return "\n".join(lines)
