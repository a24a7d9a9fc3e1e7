"""pp (one infix line) and debugprint (Theano's indented tree with ids)."""

import io
import re

import numpy as np
import pytest

import eqsat as theano
import eqsat.tensor as T

VALUES = {"a": 2.0, "b": 1.0, "c": 0.5}
FUNCTIONS = {"exp": np.exp, "log": np.log, "sqrt": np.sqrt, "maximum": np.maximum}

# Each expression is built on symbolic scalars a, b, c; pp's text must evaluate, as Python, to
# what the graph computes, so every needed parenthesis is there.
EXPRESSIONS = {
    "(a + b) * 2": lambda a, b, c: (a + b) * 2,
    "a - (b - c)": lambda a, b, c: a - (b - c),
    "(a - b) - c": lambda a, b, c: (a - b) - c,
    "a - (b + c)": lambda a, b, c: a - (b + c),
    "a / (b * c)": lambda a, b, c: a / (b * c),
    "(a / b) * c": lambda a, b, c: (a / b) * c,
    "a * (b / c)": lambda a, b, c: a * (b / c),
    "(a + b) // c": lambda a, b, c: (a + b) // c,
    "a % (b + c)": lambda a, b, c: a % (b + c),
    "-(a + b)": lambda a, b, c: -(a + b),
    "-a * b": lambda a, b, c: -a * b,
    "-(a ** b)": lambda a, b, c: -(a**b),
    "(-a) ** b": lambda a, b, c: (-a) ** b,
    "a ** -b": lambda a, b, c: a ** (-b),
    "a ** (b ** c)": lambda a, b, c: a ** (b**c),
    "(a ** b) ** c": lambda a, b, c: (a**b) ** c,
    "-(-a)": lambda a, b, c: -T.neg(a),
    "exp(a + b) * c": lambda a, b, c: T.exp(a + b) * c,
    "log(maximum(a, b) - c)": lambda a, b, c: T.log(T.maximum(a, b) - c),
    "a * (b - c) / (a + c)": lambda a, b, c: a * (b - c) / (a + c),
    "(a < b) < c": lambda a, b, c: (a < b) < c,
    "(a < b) & (b < c)": lambda a, b, c: (a < b) & (b < c),
    "(a > b) | (b >= c)": lambda a, b, c: (a > b) | (b >= c),
    "(a <= b) ^ (c > b)": lambda a, b, c: (a <= b) ^ (c > b),
    "eq(a < b, b < c)": lambda a, b, c: T.eq(a < b, b < c),
    "neq(a + b, c) & (a > c)": lambda a, b, c: T.neq(a + b, c) & (a > c),
    "a - b * c ** -a": lambda a, b, c: a - b * c ** (-a),
    "(-2) ** a": lambda a, b, c: (-2) ** a,
    "-2.0 * a": lambda a, b, c: T.constant(-2.0) * a,
    "a - (-1.5)": lambda a, b, c: a - (-1.5),
}


@pytest.mark.parametrize("build", list(EXPRESSIONS.values()), ids=list(EXPRESSIONS))
def test_pp_text_evaluates_like_the_graph(build, mode):
    a, b, c = T.dscalars("a", "b", "c")
    out = build(a, b, c)
    text = theano.pp(out)
    assert isinstance(text, str) and "\n" not in text
    got = theano.function([a, b, c], out, mode=mode, on_unused_input="ignore")(*VALUES.values())
    evaluated = eval(text, {"__builtins__": {}}, {**FUNCTIONS, **VALUES})
    np.testing.assert_allclose(np.asarray(evaluated, float), np.asarray(got, float), rtol=1e-12)


def test_pp_is_readable_infix():
    x, y = T.dscalars("x", "y")
    assert re.fullmatch(r"\(x \+ y\) \* 2(\.0)?", theano.pp((x + y) * 2))
    a, b, c = T.dvectors("a", "b", "c")
    assert theano.pp(a - (b - c)) == "a - (b - c)"
    assert theano.pp((a - b) - c) == "a - b - c"
    assert theano.pp(a + b + c) == "a + b + c"
    assert theano.pp(a * (b + c)) == "a * (b + c)"
    assert theano.pp(T.exp(a)) == "exp(a)"


def test_pp_shows_names_calls_and_indexing():
    v = T.dvector("v")
    assert theano.pp(v[1:3]) == "v[1:3]"
    assert theano.pp(T.maximum(v, v * 2)).startswith("maximum(v, v * 2")
    text = theano.pp(v.sum(axis=0))
    assert text.startswith("sum(v") and "axis" in text
    unnamed = theano.pp(T.dvector() + v)
    assert "float64" in unnamed and unnamed.endswith(" + v")


def test_pp_shared_subexpression_is_repeated_inline():
    x = T.dscalar("x")
    s = T.exp(x)
    assert theano.pp(s * s) == "exp(x) * exp(x)"


# ------------------------------------------------------------------ debugprint
_ID = re.compile(r"\[id ([A-Z]+)\]")


def _shared_graph():
    x, y = T.dvectors("x", "y")
    s = T.exp(x) + y
    s.name = "s"
    return x, y, s * s + T.log(s)


def test_debugprint_tree_with_ids():
    x, y, out = _shared_graph()
    text = theano.debugprint(out, file="str")
    lines = text.rstrip("\n").split("\n")
    assert all(len(_ID.findall(line)) == 1 for line in lines)
    assert lines[0].startswith("add [id ")
    assert all(line[0] in " │├└" for line in lines[1:])  # children are indented
    ids = [_ID.search(line).group(1) for line in lines]
    # nodes: add, mul, s, exp, x, y, log: one id each; s is referenced three times
    assert len(set(ids)) == 7
    s_lines = [n for n, line in enumerate(lines) if "'s'" in line]
    assert len(s_lines) == 3
    assert len({ids[n] for n in s_lines}) == 1
    # its subtree (exp and the inputs) is printed once, under its first occurrence only
    assert sum("exp" in line for line in lines) == 1
    assert sum(re.search(r"\bx \[id", line) is not None for line in lines) == 1
    first = s_lines[0]
    assert "exp" in lines[first + 1]
    for n in s_lines[1:]:
        depth = len(lines[n]) - len(lines[n].lstrip(" │├└─"))
        following = lines[n + 1] if n + 1 < len(lines) else ""
        assert len(following) - len(following.lstrip(" │├└─")) <= depth


def test_debugprint_outputs(capsys):
    _, _, out = _shared_graph()
    text = theano.debugprint(out, file="str")
    assert theano.debugprint(out) is None
    assert capsys.readouterr().out == text
    buf = io.StringIO()
    assert theano.debugprint(out, file=buf) is None
    assert buf.getvalue() == text


def test_debugprint_print_type():
    x = T.fmatrix("x")
    text = theano.debugprint(x.sum(axis=0), file="str", print_type=True)
    assert "float32" in text
    assert "float32" not in theano.debugprint(x.sum(axis=0), file="str")


def test_debugprint_several_outputs_share_ids():
    x, y = T.dvectors("x", "y")
    s = x * y
    text = theano.debugprint([T.exp(s), T.log(s)], file="str")
    assert sum(line.lstrip(" │├└─").startswith("mul") for line in text.splitlines()) == 2
    assert text.count("x [id") == 1


def test_debugprint_compiled_function(mode):
    x, y, out = _shared_graph()
    acc = theano.shared(np.zeros(2), name="acc")
    f = theano.function([x, y], out, updates={acc: acc + x}, mode=mode, optimizer=None)
    text = theano.debugprint(f, file="str")
    for word in ("add", "mul", "exp", "log", "'s'", "acc"):
        assert word in text
    assert text.count("exp") == 1
    assert theano.debugprint(theano.function([x], T.exp(x), mode=mode), file="str").startswith(
        "exp [id A]"
    )


def test_printers_handle_deep_graphs():
    x = T.dscalar("x")
    y = x
    for _ in range(3000):
        y = y + 1
    try:  # a RecursionError's 3000-frame traceback would take pytest seconds to format
        text = theano.pp(y)
        lines = theano.debugprint(y, file="str").splitlines()
    except RecursionError:
        pytest.fail("RecursionError", pytrace=False)
    assert text.count("+") == 3000
    assert len(lines) == 1 + 2 * 3000
