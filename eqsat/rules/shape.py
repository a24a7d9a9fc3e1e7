"""Shapes: allocations that another operand's shape already implies.

A gradient starts from `ones_like(cost)`, which reaches the graph as `alloc(1, shape_i(x, 0),
...)`; every VJP then multiplies or divides by it. Once the symbolic shape analysis
(`eqsat/shapes.py`, the `Shp` key) shows that the other operand alone has the result's shape,
the allocation is only a broadcast value and goes, along with the `shape_i` it kept alive. The
runtime checks the shape equalities this relies on before any kernel runs.
"""

from eqsat.rules import Rule, ruleset

_OPS = [("Mul", "·"), ("TrueDiv", "/"), ("Add", "+"), ("Sub", "−")]


def alloc(k: int) -> str:
    """An alloc pattern of rank k - 1: a value `v` and dims `d1` ... `d{k-1}`."""
    return f"(Alloc_{k} v {' '.join(f'd{i}' for i in range(1, k))})"


SAME_SHAPE = "(= (Shp e__) (Shp {}))"

RULES = ruleset("shape", [
    Rule("dimshuffle_literal", "(Dimshuffle p (LitN v d n))", "(LitN v d m)",
         "dimshuffle(c) = c (an all-ones shape stays all ones)", ("(= m (Rank e__))",), "ieee"),
    Rule("shape_i_of_input", "(ShapeI p x)", "s",
         "shape_i(f(x, y), i) = shape_i(x, i) when the shape analysis equates them",
         ("(= s (DimSrc e__))",), "ieee"),
    Rule("dimshuffle_neg", "(Dimshuffle p (Neg x))", "(Neg (Dimshuffle p x))",
         "dimshuffle(-x) = -dimshuffle(x)", (), "ieee"),
    *[Rule(f"mul_literal_alloc_{k}", f"(Mul {alloc(k)} (LitN c d n))",
           alloc(k).replace(" v ", " (Mul v (LitN c d n)) "),
           "alloc(v, s) * c = alloc(v * c, s) for a literal c", (f"(= (Rank e__) {k - 1})",),
           "ieee")
      for k in (2, 3)],
    *[Rule(f"useless_alloc_{k}", alloc(k), "v", "alloc(v, shape of v) = v",
           (SAME_SHAPE.format("v"),), "ieee")
      for k in (2, 3)],
    *[Rule(f"neg_alloc_{k}", f"(Neg {alloc(k)})", alloc(k).replace(" v ", " (Neg v) "),
           "−alloc(v, s) = alloc(−v, s)", (), "ieee")
      for k in (2, 3)],
    *[Rule(f"mul_dimshuffle_alloc_{side}",
           f"(Mul (Dimshuffle p {alloc(2)}) x)" if side == "left" else
           f"(Mul x (Dimshuffle p {alloc(2)}))",
           "(Mul (Dimshuffle p v) x)" if side == "left" else "(Mul x (Dimshuffle p v))",
           "dimshuffle(alloc(v, n)) * x = dimshuffle(v) * x for a vector v (broadcast)",
           (SAME_SHAPE.format("x"), "(= (Rank v) 1)"), "ieee")
      for side in ("left", "right")],
    *[Rule(f"{op.lower()}_alloc_{side}_{k}",
           f"({op} {alloc(k)} x)" if side == "left" else f"({op} x {alloc(k)})",
           f"({op} v x)" if side == "left" else f"({op} x v)",
           f"alloc(v, shape of x) {sym} x = v {sym} x (broadcast)" if side == "left" else
           f"x {sym} alloc(v, shape of x) = x {sym} v (broadcast)",
           (SAME_SHAPE.format("x"),), "ieee")
      for op, sym in _OPS for side in ("left", "right") for k in (2, 3)],
])  # fmt: skip
