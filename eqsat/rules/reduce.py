"""Reductions: sums of scaled terms, sums of sums, sums over broadcast axes, one-hot rows.

A params string is the repr of the op's params tuple, so a rule names the exact axes it is
valid for (ranks up to 2, where gradients live); rank facts make sure the axes mean what the
rule says. `mean` needs no rule: eqsat builds it as sum / n already.
"""

from eqsat.rules import Rule, ruleset, same_dtype


def sum_p(axes: tuple[int, ...], keepdims: bool) -> str:
    return f'"{(("axis", axes), ("keepdims", keepdims))!r}"'


ROWS = sum_p((1,), True)  # a matrix's row sums, kept as a column
AXES = [(0,), (1,), (0, 1)]
FLOAT = ("(= (DT e__) (DT x))",)  # a float sum: no integer widening between the sides


def _tag(axes: tuple[int, ...]) -> str:
    return "".join(map(str, axes))


RULES = ruleset("reduce", [
    Rule("sum_scaled_one_hot", f"(Sum {ROWS} (Mul g (OneHot q l n)))", "g",
         "sum_j g_i * onehot(l)_ij = g_i: each one-hot row sums to 1 (one_hot rejects labels "
         "outside [0, n))", ("(= (Shp e__) (Shp g))", "(= (Rank e__) 2)"), "exact"),
    *[Rule(f"sum_of_kept_sum_{_tag(a)}", f"(Sum {sum_p(a, False)} (Sum {sum_p(a, True)} x))",
           f"(Sum {sum_p(a, False)} x)",
           f"sum over {a} of a sum over {a} kept as length 1 = the sum over {a}", (), "ieee")
      for a in AXES],
    Rule("sum_literal_scale", "(Sum p (Mul (LitN c d n) x))", "(Mul (LitN c d 0) (Sum p x))",
         "sum(c * x) = c * sum(x) for a literal c", (*FLOAT, "(<= n (Rank x))")),
    Rule("sum_scalar_scale", "(Sum p (Mul (Dimshuffle q c) x))", "(Mul c (Sum p x))",
         "sum(c * x) = c * sum(x) for a scalar c (broadcast by dimshuffle)",
         (*FLOAT, "(= (Rank c) 0)", "(= (DT c) (DT x))")),
    Rule("sum_broadcast_row",
         f"(Sum {sum_p((0,), False)} (Dimshuffle \"(('new_order', ('x', 0)),)\" x))",
         "x", "summing the length-1 axis a dimshuffle added changes nothing (but -0.0 -> +0.0)"),
    Rule("sum_broadcast_column",
         f"(Sum {sum_p((1,), False)} (Dimshuffle \"(('new_order', (0, 'x')),)\" x))",
         "x", "summing the length-1 axis a dimshuffle added changes nothing (but -0.0 -> +0.0)"),
    *[Rule(f"sum_alloc_{dt}", f"(Sum {sum_p((0,), False)} (Alloc_2 v d))",
           f"(Mul v (Cast \"(('dtype', '{dt}'),)\" d))",
           "sum of a scalar broadcast to length n = n * the scalar",
           ("(= (Rank v) 0)", f'(= (DT v) "{dt}")', f'(= (DT e__) "{dt}")'))
      for dt in ("float32", "float64")],
    Rule("sum_add", "(Sum p (Add x y))", "(Add (Sum p x) (Sum p y))",
         "sum(x + y) = sum(x) + sum(y) for x, y of one shape",
         ("(= (Shp x) (Shp y))", *same_dtype("x", "y")), "exact", "expand"),
    Rule("sum_sub", "(Sum p (Sub x y))", "(Sub (Sum p x) (Sum p y))",
         "sum(x - y) = sum(x) - sum(y) for x, y of one shape",
         ("(= (Shp x) (Shp y))", *same_dtype("x", "y")), "exact", "expand"),
])  # fmt: skip
