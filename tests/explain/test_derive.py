"""eqsat.explain.derive: which rewrites the chosen graph uses, and the rules behind them.

Expected rule chains come from rules_catalog.md by hand: log(1 + x) -> log1p(x) is
stability/log1p, log1p(exp x) -> softplus(x) stability/softplus, 1 / (1 + exp(-x)) -> sigmoid(x)
stability/sigmoid, log(sigmoid x) -> -softplus(-x) stability/log_sigmoid, 1 - sigmoid(x) ->
sigmoid(-x) stability/one_minus_sigmoid. Chains are checked again by replaying them on an
e-graph built here.
"""

import time

import numpy as np
import pytest

import eqsat
import eqsat.tensor as T
from eqsat import shapes
from eqsat.explain.derive import MAX_TEXT, Rewrite, derive, text
from eqsat.ops import apply
from eqsat.optimizer import optimize
from eqsat.printing import pp
from eqsat.rules import all_rules, types
from eqsat.terms import to_egraph

BACKEND_INDEPENDENT = True


def optimized(outputs):
    new, record = optimize(outputs)
    return new, record.rules_fired


def test_log1p_exp_is_softplus_by_two_rules():
    x = T.dvector("x")
    before = [T.log(1 + T.exp(x))]
    after, fired = optimized(before)
    assert pp(after[0]) == "softplus(x)"
    assert derive(before, after, fired) == [
        Rewrite(0, "log(1.0 + exp(x))", "softplus(x)",
                ("stability/log1p", "stability/softplus"), True)
    ]  # fmt: skip


def test_logistic_function_is_sigmoid():
    x = T.dvector("x")
    before = [1 / (1 + T.exp(-x))]
    after, fired = optimized(before)
    (r,) = derive(before, after, fired)
    assert (r.before, r.after, r.rules, r.derived) == (
        "1.0 / (1.0 + exp(-x))",
        "sigmoid(x)",
        ("stability/sigmoid",),
        True,
    )


def test_two_changes_in_two_outputs_keep_their_output_index():
    x, y = T.dvector("x"), T.dvector("y")
    before = [T.log(1 + T.exp(x)), T.tanh(y), 1 / (1 + T.exp(-y))]
    after, fired = optimized(before)
    rewrites = derive(before, after, fired)
    assert [(r.output, r.after, r.derived) for r in rewrites] == [
        (0, "softplus(x)", True),
        (2, "sigmoid(y)", True),
    ]
    assert rewrites[1].rules == ("stability/sigmoid",)


def test_unchanged_graph_gives_no_rewrites():
    x, y = T.dvector("x"), T.dvector("y")
    before = [T.tanh(x) * y]
    after, fired = optimized(before)
    assert pp(after[0]) == pp(before[0])
    assert derive(before, after, fired) == []
    assert derive(before, before) == []


def test_common_parts_are_named_and_the_change_kept_small():
    x, y = T.dvector("x"), T.dvector("y")
    # the argument of exp is common to both sides and too long to show inline
    before = [T.log(1 + T.exp(T.tanh(x) * T.tanh(y)))]
    after, fired = optimized(before)
    assert pp(after[0]) == "softplus(tanh(x) * tanh(y))"
    (r,) = derive(before, after, fired)
    assert (r.before, r.after) == ("log(1.0 + exp(a))", "softplus(a)")
    assert r.rules == ("stability/log1p", "stability/softplus")


def test_a_change_is_found_below_commuted_children():
    x, y = T.dvector("x"), T.dvector("y")
    before = T.log(1 + T.exp(x)) + y
    after = y + apply("softplus", [x])  # as an extraction may commute the sum
    (r,) = derive([before], [after])
    assert (r.before, r.after, r.derived) == ("log(1.0 + exp(x))", "softplus(x)", True)


def test_the_same_change_twice_is_reported_once():
    x = T.dvector("x")
    sp = T.log(1 + T.exp(x))
    before = [sp, sp * 2]
    after, fired = optimized(before)
    rewrites = derive(before, after, fired)
    assert [(r.output, r.before) for r in rewrites] == [(0, "log(1.0 + exp(x))")]


# --------------------------------------------------------------------------- chains, replayed
_TEXT = "\n".join(
    [types.PROGRAM] + [f"(ruleset T{n})\n{r.egglog(f'T{n}')}" for n, r in enumerate(all_rules())]
)
_NUMBER = {r.qualname: n for n, r in enumerate(all_rules())}


def replay_joins(before, after, chain):
    """Apply each rule of `chain` once, in order, after the type analysis; are the two terms
    then one e-class?"""
    with to_egraph([before, after], _TEXT, shapes.infer([before, after])) as tg:
        for name in chain:
            tg.run(f"(run-schedule (saturate (run types)) (run T{_NUMBER[name]}))")
        i, j = tg.roots
        try:
            tg.run(f"(check (= (N {i}) (N {j})))")
        except Exception:
            return False
        return True


@pytest.mark.parametrize(
    "build, after_text, chain",
    [
        (lambda x: T.log(1 + T.exp(x)), "softplus(x)",
         ("stability/log1p", "stability/softplus")),
        (lambda x: T.log(1 / (1 + T.exp(-x))), "-softplus(-x)",
         ("stability/sigmoid", "stability/log_sigmoid")),
        (lambda x: 1 - 1 / (1 + T.exp(-x)), "sigmoid(-x)",
         ("stability/sigmoid", "stability/one_minus_sigmoid")),
    ],
)  # fmt: skip
def test_a_chain_of_rules_works_in_its_order(build, after_text, chain):
    x = T.dvector("x")
    before = [build(x)]
    after, fired = optimized(before)
    (r,) = derive(before, after, fired)
    assert r.after == after_text and r.derived
    assert r.rules == chain
    assert replay_joins(before[0], after[0], r.rules)
    # each rule is needed, and in this order: the second rule matches only the first's result
    assert not replay_joins(before[0], after[0], r.rules[::-1])
    assert not replay_joins(before[0], after[0], r.rules[:1])


# --------------------------------------------------------------------------- text, odd input
def test_long_terms_are_shortened_readably():
    x, y = T.dvector("x"), T.dvector("y")
    v = x
    for _ in range(30):
        v = T.tanh(v) + y
    t = text(v)
    assert len(t) <= MAX_TEXT and "…" in t
    assert t.startswith("tanh(tanh(") and t.endswith(" + y")
    assert text(T.exp(x) + 1) == "exp(x) + 1.0"


def test_odd_input_never_raises():
    x, y = T.dvector("x"), T.dvector("y")
    assert derive([], []) == []
    # not equal at all: reported, not derived
    assert derive([x], [y]) == [Rewrite(0, "x", "y", (), False)]
    # lengths that differ: the pairs there are
    (r,) = derive([T.log(1 + T.exp(x)), y], [apply("softplus", [x])])
    assert r.after == "softplus(x)"
    # no time at all: the changes are still reported, underived
    start = time.perf_counter()
    rewrites = derive([T.log(1 + T.exp(x)) * y], [apply("softplus", [x]) * y], budget_s=0)
    assert time.perf_counter() - start < 2.0
    assert rewrites and not any(r.derived for r in rewrites)


# --------------------------------------------------------------------------- the tutorial model
def test_logistic_regression_training_step_names_the_stabilizing_rewrites():
    x, y = T.dmatrix("x"), T.dvector("y")  # built as in examples/logistic_regression.py
    w = eqsat.shared(np.random.RandomState(0).randn(7), name="w")
    b = eqsat.shared(0.0, name="b")
    p_1 = 1 / (1 + T.exp(-T.dot(x, w) - b))
    prediction = p_1 > 0.5
    xent = -y * T.log(p_1) - (1 - y) * T.log(1 - p_1)
    cost = xent.mean() + 0.01 * (w**2).sum()
    gw, gb = T.grad(cost, [w, b])
    before = [prediction, cost, w - 0.1 * gw, b - 0.1 * gb]
    after, fired = optimized(before)

    budget = 8.0
    start = time.perf_counter()
    rewrites = derive(before, after, fired, budget_s=budget)
    assert time.perf_counter() - start < budget + 2.0  # an egglog call is not interrupted
    assert [r.output for r in rewrites] == sorted(r.output for r in rewrites)
    derived = [r for r in rewrites if r.derived]
    # p_1 (output 0) becomes a sigmoid; log(p_1) and log(1 - p_1) become softplus
    assert any(r.output == 0 and r.after.startswith("sigmoid(")
               and "stability/sigmoid" in r.rules for r in derived)  # fmt: skip
    assert any("softplus(" in r.after and "stability/log_sigmoid" in r.rules for r in derived)
    assert any("stability/one_minus_sigmoid" in r.rules for r in derived)
