"""fast_math: identities that hold for finite numbers only (inf - inf, 0 * inf and inf / inf are
nan). Off by default; `eqsat.config.fast_math = True` or `function(..., fast_math=True)` turns
them on. Each result keeps the matched value's dtype and shape: `x * 0` becomes zeros shaped
like x (an alloc over x's shape), never a scalar that would broadcast differently."""

from eqsat.rules import Rule, ruleset


def filled(value: str, rank: int) -> str:
    """A value of x's dtype (d) filling x's shape, for a rank-`rank` x."""
    lit = f"(LitN {value} d 0)"
    if rank == 0:
        return lit
    dims = " ".join(f"(ShapeI \"(('i', {i}),)\" x)" for i in range(rank))
    return f"(Alloc_{rank + 1} {lit} {dims})"


def _when(rank: int) -> tuple[str, ...]:
    return ("(= d (DT e__))", f"(= (Rank x) {rank})", f"(= (Rank e__) {rank})")


RANKS = (0, 1, 2)
RULES = ruleset("fast_math", [
    *[Rule(f"sub_self_{r}", "(Sub x x)", filled("0.0", r), "x - x = 0 (nan for inf or nan)",
           _when(r), "fast_math", "fast_math") for r in RANKS],
    *[Rule(f"mul_zero_{r}", "(Mul x (LitN 0.0 d2 n))", filled("0.0", r),
           "x * 0 = 0 (nan for inf or nan)", _when(r), "fast_math", "fast_math") for r in RANKS],
    *[Rule(f"zero_mul_{r}", "(Mul (LitN 0.0 d2 n) x)", filled("0.0", r),
           "0 * x = 0 (nan for inf or nan)", _when(r), "fast_math", "fast_math") for r in RANKS],
    *[Rule(f"div_self_{r}", "(TrueDiv x x)", filled("1.0", r), "x / x = 1 (nan for 0, inf, nan)",
           _when(r), "fast_math", "fast_math") for r in RANKS],
])  # fmt: skip
