"""exp and log: products of exponentials, inverse pairs, powers under a log, expm1."""

from eqsat.rules import Rule, ruleset, same_type

RULES = ruleset("explog", [
    Rule("exp_mul", "(Mul (Exp a) (Exp b))", "(Exp (Add a b))",
         "exp(a) * exp(b) = exp(a + b) (no overflow in between)", same_type("a", "b"), "stable"),
    Rule("exp_add", "(Exp (Add a b))", "(Mul (Exp a) (Exp b))", "exp(a + b) = exp(a) * exp(b)",
         same_type("a", "b"), "exact", "expand"),
    Rule("log_exp", "(Log (Exp x))", "x", "log(exp(x)) = x (no overflow for x > 709)",
         same_type("x"), "stable"),
    Rule("exp_log", "(Exp (Log x))", "x", "exp(log(x)) = x for x >= 0 (x = -0.0 stays -0.0)",
         (*same_type("x"), "(NonNeg x)")),
    Rule("log_pow", "(Log (Pow x (LitN k d n)))", "(Mul (LitN k d 0) (Log x))",
         "log(x ** k) = k * log(x) for x >= 0 (at x = 0, k = 0 the right side is nan)",
         (*same_type("x"), "(NonNeg x)")),
    Rule("expm1", "(Sub (Exp x) (LitN 1.0 d n))", "(Expm1 x)", "exp(x) - 1 = expm1(x)",
         same_type("x"), "stable"),
])  # fmt: skip
