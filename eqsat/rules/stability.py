"""Numerical stability: fused primitives that stay accurate where the textbook form overflows
or cancels (log1p, softplus, sigmoid, log_softmax). The cost table prices each fused form
below the composition it replaces, so extraction picks it on cost alone."""

from eqsat.rules import Rule, ruleset, same_dtype, same_type

ONE = "(LitN 1.0 d n)"
ONE_ = "(LitN 1.0 d2 m)"

RULES = ruleset("stability", [
    Rule("log1p", f"(Log (Add {ONE} x))", "(Log1p x)", "log(1 + x) = log1p(x)", same_type("x"),
         "stable"),
    Rule("log1p_right", f"(Log (Add x {ONE}))", "(Log1p x)", "log(x + 1) = log1p(x)",
         same_type("x"), "stable"),
    Rule("softplus", "(Log1p (Exp x))", "(Softplus x)", "log1p(exp(x)) = softplus(x)",
         same_type("x"), "stable"),
    Rule("sigmoid", f"(TrueDiv {ONE} (Add {ONE_} (Exp (Neg x))))", "(Sigmoid x)",
         "1 / (1 + exp(-x)) = sigmoid(x)", same_type("x"), "stable"),
    Rule("sigmoid_right", f"(TrueDiv {ONE} (Add (Exp (Neg x)) {ONE_}))", "(Sigmoid x)",
         "1 / (exp(-x) + 1) = sigmoid(x)", same_type("x"), "stable"),
    Rule("one_minus_sigmoid", f"(Sub {ONE} (Sigmoid x))", "(Sigmoid (Neg x))",
         "1 - sigmoid(x) = sigmoid(-x)", same_type("x"), "stable"),
    Rule("log_sigmoid", "(Log (Sigmoid x))", "(Neg (Softplus (Neg x)))",
         "log(sigmoid(x)) = -softplus(-x)", (), "stable"),
    Rule("log_softmax", "(Log (Softmax p x))", "(LogSoftmax p x)",
         "log(softmax(x)) = log_softmax(x)", (), "stable"),
    Rule("logsumexp", "(Log (Sum p (Exp x)))", "(Logsumexp p x)",
         "log(sum(exp(x))) = logsumexp(x) = m + log(sum(exp(x - m))), m = max(x)", (), "stable"),
    Rule("logsumexp_grad", "(Mul (Dimshuffle q (TrueDiv g (Sum p (Exp x)))) (Exp x))",
         "(Mul (Dimshuffle q g) (Exp (Sub x (Dimshuffle q (Logsumexp p x)))))",
         "g / sum(exp(x)) * exp(x) = g * exp(x - logsumexp(x)) (the VJP of log(sum(exp(x))))",
         ("(= (DT g) (DT x))", "(= (DT e__) (DT x))"), "stable"),
    Rule("sigmoid_grad", f"(Mul (TrueDiv g (Sqr (Add {ONE} (Exp (Neg x))))) (Exp (Neg x)))",
         "(Mul g (Mul (Sigmoid x) (Sigmoid (Neg x))))",
         "g / (1 + exp(-x))^2 * exp(-x) = g * sigmoid(x) * sigmoid(-x) (the VJP of 1/(1+exp(-x)))",
         (*same_type("g"), "(= (DT x) (DT e__))"), "stable"),
    Rule("cancel_div_mul_left", "(Mul (TrueDiv a s) (Mul s t))", "(Mul a t)",
         "(a / s) * (s * t) = a * t for s > 0 (no 0/0 when s underflows)",
         (*same_dtype("a", "t"), "(Pos s)", "(= (Shp e__) (Shp a))"), "stable"),
    Rule("cancel_div_mul_right", "(Mul (TrueDiv a t) (Mul s t))", "(Mul a s)",
         "(a / t) * (s * t) = a * s for t > 0 (no 0/0 when t underflows)",
         (*same_dtype("a", "s"), "(Pos t)", "(= (Shp e__) (Shp a))"), "stable"),
    Rule("cancel_mul_div", "(Mul s (TrueDiv a s))", "a",
         "s * (a / s) = a for s > 0 (no 0/0 when s underflows)",
         (*same_type("a"), "(Pos s)", "(= (Shp e__) (Shp a))"),
         "stable"),
    Rule("cancel_div_mul", "(Mul (TrueDiv a s) s)", "a",
         "(a / s) * s = a for s > 0 (no 0/0 when s underflows)",
         (*same_type("a"), "(Pos s)", "(= (Shp e__) (Shp a))"),
         "stable"),
])  # fmt: skip
