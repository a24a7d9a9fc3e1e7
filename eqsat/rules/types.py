"""Dtype, rank and sign analyses for terms that rules create.

Rules use them in side conditions: an identity such as x * 1 -> x may not change the value's
dtype or shape. For a rewrite that only drops or fuses ops around literals (whose shape is all
ones), equal dtype and equal rank imply equal type, and both propagate through elementwise ops
with one-line egglog rules. NonNeg marks terms known to be >= 0 (or nan), for rules such as
exp(log x) -> x; Pos those known to be > 0 over the reals. Shp carries the symbolic shape key
that eqsat/shapes.py gives inserted terms through elementwise ops, for the shape rules. This
analysis only fills tables and never merges classes, so it is not a rewrite rule and has no
catalog row; it runs before every rewrite step.
"""

_BINARY = ["Add", "Sub", "Mul", "TrueDiv", "Maximum", "Minimum", "Pow", "Mod", "IntDiv"]
_SAME_DTYPE_BINARY = ["Add", "Sub", "Mul", "Maximum", "Minimum"]
_UNARY = ["Neg", "Exp", "Log", "Log1p", "Expm1", "Sqrt", "Sqr", "Tanh", "Sigmoid", "Softplus",
          "Abs", "Sin", "Cos", "Tan", "Log2", "Log10", "Erf", "Sgn", "Floor", "Ceil",
          "Round"]  # fmt: skip
_FLOAT_UNARY = [
    u for u in _UNARY if u not in ("Sgn", "Floor", "Ceil", "Round", "Abs", "Neg", "Sqr")
]
_NONNEG = ["Exp", "Sqr", "Sqrt", "Abs", "Sigmoid", "Softplus"]
_POS = ["Exp", "Sigmoid", "Softplus"]  # > 0 over the reals (they may underflow to 0 in floats)


def _lines() -> list[str]:
    rule = "(rule ({}) ({}) :ruleset types)".format
    out = ["(ruleset types)"]
    for c in _BINARY:
        out.append(
            rule(f"(= e ({c} a b)) (= ra (Rank a)) (= rb (Rank b))", "(set (Rank e) (max ra rb))")
        )
    for c in _SAME_DTYPE_BINARY:
        out.append(rule(f"(= e ({c} a b)) (= d (DT a)) (= d (DT b))", "(set (DT e) d)"))
    for c in _UNARY:
        out.append(rule(f"(= e ({c} a)) (= r (Rank a))", "(set (Rank e) r)"))
    for c in ["Neg", "Abs", "Sqr", "Sgn"]:  # dtype-preserving on every dtype
        out.append(rule(f"(= e ({c} a)) (= d (DT a))", "(set (DT e) d)"))
    for c in _FLOAT_UNARY:  # float in, same float out
        for dt in ("float32", "float64"):
            out.append(rule(f'(= e ({c} a)) (= (DT a) "{dt}")', f'(set (DT e) "{dt}")'))
    out.append(rule("(= e (LitN v d n))", "(set (DT e) d) (set (Rank e) n)"))
    for c in _NONNEG:
        out.append(rule(f"(= e ({c} a))", "(NonNeg e)"))
    out.append(rule("(= e (LitN v d n)) (>= v 0.0)", "(NonNeg e)"))
    for c in ["Add", "Mul", "Maximum"]:
        out.append(rule(f"(= e ({c} a b)) (NonNeg a) (NonNeg b)", "(NonNeg e)"))
    for c in _POS:
        out.append(rule(f"(= e ({c} a))", "(Pos e)"))
    out.append(rule("(= e (Softmax p a))", "(Pos e)"))
    out.append(rule("(= e (LitN v d n)) (> v 0.0)", "(Pos e)"))
    for c in ["Mul", "TrueDiv"]:
        out.append(rule(f"(= e ({c} a b)) (Pos a) (Pos b)", "(Pos e)"))
    for a, b in (("a", "b"), ("b", "a")):
        out.append(rule(f"(= e (Add a b)) (Pos {a}) (NonNeg {b})", "(Pos e)"))
    # dots and transposes, which rules/linalg.py creates (rank of dot: ra + rb - 2)
    out.append(rule("(= e (Dot a b)) (= ra (Rank a)) (= rb (Rank b))",
                    "(set (Rank e) (- (+ ra rb) 2))"))  # fmt: skip
    out.append(rule("(= e (Dot a b)) (= d (DT a)) (= d (DT b))", "(set (DT e) d)"))
    transpose = "(Dimshuffle \"(('new_order', (1, 0)),)\" a)"
    out.append(rule(f"(= e {transpose}) (= d (DT a))", "(set (Rank e) 2) (set (DT e) d)"))
    # Shp: the symbolic shape key (eqsat/shapes.py) of an elementwise result
    for c in _UNARY:
        out.append(rule(f"(= e ({c} a)) (= s (Shp a))", "(set (Shp e) s)"))
    for c in _BINARY:
        out.append(rule(f"(= e ({c} a b)) (= s (Shp a)) (= s (Shp b))", "(set (Shp e) s)"))
        for x, lit in (("a", "b"), ("b", "a")):
            facts = f"(= e ({c} a b)) (= s (Shp {x})) (= {lit} (LitN v d n)) (<= n (Rank {x}))"
            out.append(rule(facts, "(set (Shp e) s)"))
    return out


PROGRAM = "\n".join(_lines())
