"""Numerical stability: fused primitives that stay accurate where the textbook form overflows
or cancels (log1p, softplus, sigmoid, log_softmax). The cost table prices each fused form
below the composition it replaces, so extraction picks it on cost alone."""

from eqsat.rules import Rule, ruleset, same_type

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
])  # fmt: skip
