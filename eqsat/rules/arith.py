"""Arithmetic: identities, canonical sub/neg forms, constant folding, squares and powers,
factoring, and (bounded, in the expand phase) commutativity, associativity and distribution."""

from eqsat.rules import Rule, ruleset, same_dtype, same_type


def lit(value: str, d: str = "d", n: str = "n") -> str:
    """A literal pattern: value of dtype d and rank n."""
    return f"(LitN {value} {d} {n})"


_FOLD = [("Add", "+"), ("Sub", "-"), ("Mul", "*")]

RULES = ruleset("arith", [
    Rule("mul_one", f"(Mul x {lit('1.0')})", "x", "x * 1 = x", same_type("x"), "ieee"),
    Rule("one_mul", f"(Mul {lit('1.0')} x)", "x", "1 * x = x", same_type("x"), "ieee"),
    Rule("add_zero", f"(Add x {lit('0.0')})", "x", "x + 0 = x (-0.0 + 0 is +0.0)",
         same_type("x")),
    Rule("zero_add", f"(Add {lit('0.0')} x)", "x", "0 + x = x (0 + -0.0 is +0.0)",
         same_type("x")),
    Rule("sub_zero", f"(Sub x {lit('0.0')})", "x", "x - 0 = x", same_type("x"), "ieee"),
    Rule("div_one", f"(TrueDiv x {lit('1.0')})", "x", "x / 1 = x", same_type("x"), "ieee"),
    Rule("pow_one", f"(Pow x {lit('1.0')})", "x", "x ** 1 = x", same_type("x"), "ieee"),
    Rule("neg_neg", "(Neg (Neg x))", "x", "--x = x", (), "ieee"),
    Rule("mul_minus_one", f"(Mul {lit('-1.0')} x)", "(Neg x)", "-1 * x = -x", same_type("x"),
         "ieee"),
    Rule("sub_neg", "(Sub a (Neg b))", "(Add a b)", "a - (-b) = a + b", (), "ieee"),
    Rule("add_neg", "(Add a (Neg b))", "(Sub a b)", "a + (-b) = a - b", (), "ieee"),
    Rule("neg_add", "(Neg (Add a b))", "(Sub (Neg a) b)",
         "-(a + b) = -a - b (the sign of a zero result may differ)"),
    Rule("sub_of_neg", "(Sub (Neg a) b)", "(Neg (Add a b))",
         "-a - b = -(a + b) (the sign of a zero result may differ)"),
    Rule("mul_neg_left", "(Mul (Neg a) b)", "(Neg (Mul a b))", "(-a) * b = -(a * b)", (), "ieee"),
    Rule("mul_neg_right", "(Mul a (Neg b))", "(Neg (Mul a b))", "a * (-b) = -(a * b)", (),
         "ieee"),
    Rule("div_neg_left", "(TrueDiv (Neg a) b)", "(Neg (TrueDiv a b))", "(-a) / b = -(a / b)", (),
         "ieee"),
    Rule("add_self", "(Add x x)", "(Mul (LitN 2.0 d 0) x)", "x + x = 2 * x", ("(= d (DT x))",),
         "ieee"),
    Rule("mul_self", "(Mul x x)", "(Sqr x)", "x * x = sqr(x)", (), "ieee"),
    Rule("pow_two", f"(Pow x {lit('2.0')})", "(Sqr x)", "x ** 2 = sqr(x)", same_type("x"), "ieee"),
    Rule("pow_half", f"(Pow x {lit('0.5')})", "(Sqrt x)",
         "x ** 0.5 = sqrt(x) for x >= 0 (at x = -inf pow gives inf, sqrt nan)", same_type("x")),
    Rule("div_const", "(TrueDiv x (LitN v d n))", "(Mul x (LitN (/ 1.0 v) d n))",
         "x / c = x * (1/c), c != 0 (rounding differs unless c is a power of 2)",
         (*same_type("x"), "(= d (DT x))", "(!= v 0.0)")),
    *[Rule(f"fold_{c.lower()}_{dt}", f"({c} (LitN u d1 n) (LitN v d2 m))",
           f"(LitN ({sym} u v) d (max n m))",
           f"c1 {sym} c2 = its value, for a {dt} result (an int literal converts exactly)",
           ("(= d (DT e__))", f'(= d "{dt}")'))
      for c, sym in _FOLD for dt in ("float32", "float64")],
    Rule("fold_neg", "(Neg (LitN u d n))", "(LitN (* -1.0 u) d n)", "-(c) = its value", (),
         "ieee"),
    Rule("factor_left", "(Add (Mul a b) (Mul a c))", "(Mul a (Add b c))", "a*b + a*c = a*(b + c)",
         same_dtype("b", "c")),
    Rule("factor_right", "(Add (Mul b a) (Mul c a))", "(Mul (Add b c) a)",
         "b*a + c*a = (b + c)*a", same_dtype("b", "c")),
    Rule("factor_sub_left", "(Sub (Mul a b) (Mul a c))", "(Mul a (Sub b c))",
         "a*b - a*c = a*(b - c)", same_dtype("b", "c")),
    Rule("factor_sub_right", "(Sub (Mul b a) (Mul c a))", "(Mul (Sub b c) a)",
         "b*a - c*a = (b - c)*a", same_dtype("b", "c")),
    Rule("neg_sub", "(Neg (Sub a b))", "(Sub b a)",
         "-(a - b) = b - a (the sign of a zero result may differ)"),
    Rule("sqr_expand", "(Sqr x)", "(Mul x x)", "sqr(x) = x * x", (), "ieee", "expand"),
    Rule("add_comm", "(Add a b)", "(Add b a)", "a + b = b + a", (), "ieee", "expand"),
    Rule("mul_comm", "(Mul a b)", "(Mul b a)", "a * b = b * a", (), "ieee", "expand"),
    Rule("add_assoc", "(Add a (Add b c))", "(Add (Add a b) c)", "a + (b + c) = (a + b) + c",
         same_dtype("a", "b", "c"), "exact", "expand"),
    Rule("mul_assoc", "(Mul a (Mul b c))", "(Mul (Mul a b) c)", "a * (b * c) = (a * b) * c",
         same_dtype("a", "b", "c"), "exact", "expand"),
    Rule("distribute", "(Mul a (Add b c))", "(Add (Mul a b) (Mul a c))", "a*(b + c) = a*b + a*c",
         same_dtype("a", "b", "c"), "exact", "expand"),
    Rule("distribute_sub", "(Mul (Sub b c) a)", "(Sub (Mul b a) (Mul c a))",
         "(b - c)*a = b*a - c*a", same_dtype("a", "b", "c"), "exact", "expand"),
    Rule("neg_into_mul", "(Neg (Mul a b))", "(Mul (Neg a) b)", "-(a * b) = (-a) * b", (), "ieee",
         "expand"),
    Rule("distribute_sub_left", "(Mul a (Sub b c))", "(Sub (Mul a b) (Mul a c))",
         "a*(b - c) = a*b - a*c", same_dtype("a", "b", "c"), "exact", "expand"),
])  # fmt: skip
