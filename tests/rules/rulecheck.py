"""Rule sides (egglog patterns) instantiated as eqsat graphs, for checking that they agree.

`parse` reads an egglog pattern into nested lists; `roles` says what each pattern variable
stands for (a term, a literal's value, dtype or rank, an op's params string); `instantiate`
builds the graph of one side with the pattern variables bound. Constructors become ops through
`eqsat.terms.op_name` and `eqsat.ops.apply`; `(LitN v d n)` becomes a constant of value v,
dtype d and rank n; egglog primitive arithmetic (`(/ 1.0 v)`, `(max n m)`) is evaluated here.

In "sympy" mode each literal is a fresh constant whose exact (rational) value is recorded in
`Sides.exact`, and primitive arithmetic is done on sympy rationals, so `(/ 1.0 v)` stands for
the real number 1/v rather than its float64 rounding.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sympy

from eqsat.graph import Constant, Variable
from eqsat.ops import OPS, apply, constant
from eqsat.rules import Rule
from eqsat.terms import _PARAM_OPS, op_name

TOKEN = re.compile(r'\s*(?:(\()|(\))|"([^"]*)"|([^\s()"]+))')


class Quoted(str):
    """A string literal of a pattern ("float32")."""


def parse(text: str) -> Any:
    """One s-expression: lists for applications, float/int for numbers, Quoted for strings,
    str for symbols."""
    stack: list[list] = [[]]
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = TOKEN.match(text, pos)
        if m is None:
            raise ValueError(f"cannot tokenize {text[pos:]!r}")
        pos = m.end()
        if m.group(1):
            stack.append([])
        elif m.group(2):
            done = stack.pop()
            stack[-1].append(done)
        elif m.group(3) is not None:
            stack[-1].append(Quoted(m.group(3)))
        else:
            stack[-1].append(_atom(m.group(4)))
        if not text[pos:].strip():
            break
    (out,) = stack[0]
    return out


def _atom(tok: str) -> Any:
    for conv in (int, float):
        try:
            return conv(tok)
        except ValueError:
            pass
    return tok


PRIMITIVES = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": lambda a, b: a / b,
    "max": max,
    "min": min,
}
LIT_ROLES = ("value", "dtype", "rank")


def roles(rule: Rule) -> dict[str, str]:
    """Pattern variable -> "term" | "value" | "dtype" | "rank" | "params", in order of first
    appearance (left side first)."""
    out: dict[str, str] = {}

    def walk(e: Any, role: str) -> None:
        if isinstance(e, list):
            head, args = e[0], e[1:]
            if head == "LitN":
                for a, r in zip(args, LIT_ROLES, strict=True):
                    walk(a, r)
            elif head in PRIMITIVES:
                for a in args:
                    walk(a, "value")
            else:
                op = op_name(head)
                if op is None:
                    raise ValueError(f"unknown constructor {head!r}")
                if op in _PARAM_OPS:
                    walk(args[0], "params")
                    args = args[1:]
                for a in args:
                    walk(a, "term")
        elif type(e) is str and e not in out:
            out[e] = role

    walk(parse(rule.lhs), "term")
    walk(parse(rule.rhs), "term")
    return out


def nonneg_vars(rule: Rule) -> set[str]:
    """Pattern variables the rule requires to be >= 0 or > 0 (`(NonNeg x)`, `(Pos x)` facts)."""
    return set(re.findall(r"\((?:NonNeg|Pos) (\w+)\)", " ".join(rule.when)))


def nonzero_vars(rule: Rule) -> set[str]:
    """Pattern variables the rule requires to be != 0 (`(!= v 0.0)` facts)."""
    return set(re.findall(r"\(!= (\w+) 0(?:\.0)?\)", " ".join(rule.when)))


# Params strings for constructors that carry them, valid for a vector operand.
PARAMS = {
    "Softmax": "(('axis', 0),)",
    "LogSoftmax": "(('axis', 0),)",
    "ShapeI": "(('i', 0),)",
    "Dimshuffle": "(('new_order', ('x',)),)",
    "Sum": "(('axis', (0,)), ('keepdims', False))",
    "OneHot": "(('dtype', '{dtype}'),)",
}
# Per-rule params strings where a rule needs another one than PARAMS gives.
RULE_PARAMS: dict[str, dict[str, str]] = {
    f"shape/mul_dimshuffle_alloc_{side}": {"p": "(('new_order', (0, 'x')),)"}
    for side in ("left", "right")
}

# Rules whose term variables are not all float vectors: a variable maps to a shape (None: any
# length) for a float input, or to ("shape_i", var, axis) / ("int", n) for an integer length,
# or ("ints", values) for constant integer labels,
# built from the other inputs so that the rule's shape conditions (`Shp`, `DimSrc`) hold.
_ALLOC = {"v": (), "d1": ("shape_i", "x", 0)}
INPUTS: dict[str, dict[str, Any]] = {
    "shape/dimshuffle_literal": {},
    "shape/shape_i_of_input": {"s": ("shape_i", "x", 0)},
    "shape/useless_alloc_2": {"v": (None,), "d1": ("shape_i", "v", 0)},
    "shape/useless_alloc_3": {"v": (None, None), "d1": ("shape_i", "v", 0),
                              "d2": ("shape_i", "v", 1)},
    **{f"shape/{name}_2": {"v": (), "d1": ("int", 3)}
       for name in ("mul_literal_alloc", "neg_alloc")},
    **{f"shape/{name}_3": {"v": (), "d1": ("int", 3), "d2": ("int", 2)}
       for name in ("mul_literal_alloc", "neg_alloc")},
    **{f"shape/{op}_alloc_{side}_2": {**_ALLOC, "x": (None,)}
       for op in ("mul", "truediv", "add", "sub") for side in ("left", "right")},
    **{f"shape/{op}_alloc_{side}_3": {**_ALLOC, "d2": ("shape_i", "x", 1), "x": (None, None)}
       for op in ("mul", "truediv", "add", "sub") for side in ("left", "right")},
    "shape/dimshuffle_neg": {"x": ()},
    "stability/logsumexp_grad": {"g": ()},
    **{f"shape/mul_dimshuffle_alloc_{side}": {"v": (1,), "d1": ("shape_i", "x", 0),
                                              "x": (None, None)}
       for side in ("left", "right")},
    "reduce/sum_of_kept_sum_1": {"x": (None, None)},
    "reduce/sum_of_kept_sum_01": {"x": (None, None)},
    "reduce/sum_scalar_scale": {"c": ()},
    **{f"reduce/sum_alloc_{dt}": {"v": (), "d": ("int", 3)} for dt in ("float32", "float64")},
    "reduce/sum_scaled_one_hot": {"g": (None, 1), "l": ("ints", [0, 2, 1]), "n": ("int", 4)},
    **{f"fast_math/{name}_{r}": {"x": ((), (None,), (None, None))[r]}
       for name in ("sub_self", "mul_zero", "zero_mul", "div_self") for r in (0, 1, 2)},
}  # fmt: skip
# Rules that exist for one dtype only: they are instantiated in it whatever the test asks.
RULE_DTYPE = {f"reduce/sum_alloc_{dt}": dt for dt in ("float32", "float64")}
# Rank variables that only the right side (or a condition) fixes.
RANKS: dict[str, dict[str, int]] = {"shape/dimshuffle_literal": {"m": 1}}
# In sympy mode a literal is a fresh constant of at least this rank (default 1): the rank of
# the tensor it meets, so that apply does not pad it into a new, anonymous constant.
SYMPY_LITERAL_RANK: dict[str, int] = {
    "shape/mul_literal_alloc_3": 2, "fast_math/mul_zero_2": 2, "fast_math/zero_mul_2": 2
}  # fmt: skip
POINT_LENGTH = 3  # each unknown axis, when a rule is evaluated one point at a time

# linalg (eqsat/rules/linalg.py): matrices, vectors and rank-0 scalars; gemm/gemv params.
_M, _V, _S = (None, None), (None,), ()
_BLAS = {"A": _M, "B": _M, "C": _M, "x": _V, "y": _V, "s": _S, "t": _S}
PARAMS.update({"Gemm": "(('trans_a', False), ('trans_b', False))", "Gemv": "(('trans_a', False),)"})
INPUTS.update(
    {
        "linalg/transpose_transpose": {"x": _M},
        "linalg/dot_transpose": {"A": _M, "B": _M},
        "linalg/vector_dot_matrix": {"x": _V, "A": _M},
        **{
            f"linalg/scalar_{k}": {"y": _M, "s": _S}
            for k in (
                "literal_left",
                "literal_right",
                "dimshuffle_left",
                "dimshuffle_right",
                "right",
            )
        },
        **{f"linalg/scalar_out_of_dot_{k}": {"s": _S, "A": _M, "B": _V} for k in ("left", "right")},
        "linalg/dot_assoc_left": {"A": _V, "B": _M, "C": _M},
        "linalg/dot_assoc_right": {"A": _M, "B": _M, "C": _V},
        **{
            f"linalg/{op}_{k}": _BLAS
            for op in ("gemm", "gemv")
            for k in (
                "dot_plus_acc",
                "acc_plus_dot",
                "scaled_plus_acc",
                "acc_plus_scaled",
                "acc_minus_dot",
                "acc_minus_scaled",
                "beta",
                "trans_a",
            )
        },
        **{f"linalg/gemm_{k}": _BLAS for k in ("trans_a_tb", "trans_b", "trans_b_ta")},
    }
)
RANKS.update({f"linalg/scalar_literal_{k}": {"n": 2} for k in ("left", "right")})
SYMPY_LITERAL_RANK.update({f"linalg/scalar_literal_{k}": 2 for k in ("left", "right")})


def make_inputs(rule: Rule, dtype: str = "float64") -> dict[str, Variable]:
    """One variable per term variable of `rule`: float vectors unless INPUTS says otherwise."""
    import eqsat.tensor as T

    spec = INPUTS.get(rule.qualname, {})
    dtype = RULE_DTYPE.get(rule.qualname, dtype)
    out: dict[str, Variable] = {}
    derived = {k: v for k, v in spec.items() if v and v[0] in ("shape_i", "int", "ints")}
    for name, role in roles(rule).items():
        if role == "term" and name not in derived:
            out[name] = T.tensor(dtype, shape=spec.get(name, (None,)), name=name)
    for name, (kind, *args) in derived.items():
        if kind == "shape_i":
            out[name] = T.shape_i(out[args[0]], args[1])
        else:  # a constant: "int" a length, "ints" labels
            out[name] = constant(np.asarray(args[0], dtype="int64"))
    return out


def point_shape(var: Variable) -> tuple[int, ...]:
    """The shape a rule's input takes when the rule is evaluated one point at a time."""
    return tuple(POINT_LENGTH if n is None else n for n in var.type.shape)


LITERAL_VALUES = (0.7, -2.3, 3.0, 1.5)  # values bound to literal-value variables, in order


@dataclass
class Sides:
    lhs: Variable
    rhs: Variable
    inputs: dict[str, Variable]  # term pattern variables
    bindings: dict[str, Any]
    exact: dict[Variable, Any] = field(default_factory=dict)  # sympy mode: constant -> value


def bindings_for(rule: Rule, dtype: str = "float64", mode: str = "numeric") -> dict[str, Any]:
    """Values for the non-term pattern variables: dtype vars the input dtype, ranks 0,
    literal values from LITERAL_VALUES (never 0, so `!=` conditions hold), params from PARAMS."""
    out: dict[str, Any] = {}
    values = iter(LITERAL_VALUES)
    params_ctor = _params_ctors(parse(rule.lhs))
    lit_dtypes = _literal_dtypes(parse(rule.lhs))
    for name, role in roles(rule).items():
        if role == "dtype":
            out[name] = dtype
        elif role == "rank":
            out[name] = RANKS.get(rule.qualname, {}).get(name, 0)
        elif role == "value":
            # a matched literal holds a value its dtype represents exactly
            held = lit_dtypes.get(name, dtype)
            v = float(np.asarray(next(values), dtype=dtype if held is None else held))
            out[name] = sympy.Rational(v) if mode == "sympy" else v
        elif role == "params":
            text = RULE_PARAMS.get(rule.qualname, {}).get(name, PARAMS[params_ctor[name]])
            out[name] = text.format(dtype=dtype)
    for name in nonzero_vars(rule):
        assert out[name] != 0, (rule.qualname, name)
    return out


def _literal_dtypes(e: Any) -> dict[str, str | None]:
    """Value variable -> the dtype of the literal it is matched in (None: a dtype variable)."""
    out: dict[str, str | None] = {}
    if isinstance(e, list):
        if e[0] == "LitN" and type(e[1]) is str:
            out[e[1]] = str(e[2]) if isinstance(e[2], Quoted) else None
        for a in e[1:]:
            out.update(_literal_dtypes(a))
    return out


def _params_ctors(e: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    if isinstance(e, list):
        op = op_name(e[0]) if e[0] not in ("LitN", *PRIMITIVES) else None
        if op in _PARAM_OPS and type(e[1]) is str:
            out[e[1]] = e[0]
        for a in e[1:]:
            out.update(_params_ctors(a))
    return out


def instantiate(
    rule: Rule,
    inputs: dict[str, Variable],
    dtype: str = "float64",
    mode: str = "numeric",
) -> Sides:
    """Both sides of `rule` as graphs over `inputs` (one Variable per term variable)."""
    dtype = RULE_DTYPE.get(rule.qualname, dtype)
    env: dict[str, Any] = {**bindings_for(rule, dtype, mode), **inputs}
    exact: dict[Variable, Any] = {}
    declared: dict[int, int] = {}  # id of a sympy-mode literal -> the rank its pattern says

    def lit(value: Any, dt: str, ndim: int) -> Constant:
        if mode != "sympy":
            return constant(np.full((1,) * int(ndim), float(value), dtype=dt))
        # rank >= 1 (2 beside a matrix), so that apply does not replace it by a padded copy
        rank = max(int(ndim), SYMPY_LITERAL_RANK.get(rule.qualname, 1))
        data = np.full((1,) * rank, float(value), dtype=dt)
        c = Constant(data, name=f"lit{len(exact)}")  # fresh: one exact value each
        exact[c] = value  # a rational: the real number the literal stands for
        declared[id(c)] = int(ndim)
        return c

    def at_declared_rank(a: Any) -> Any:
        """A sympy-mode literal given to an op that does not pad ranks (gemm's alpha), back
        at the rank its pattern declares."""
        if id(a) not in declared or a.ndim == declared[id(a)]:
            return a
        c = Constant(a.data.reshape((1,) * declared[id(a)]), name=a.name)
        exact[c] = exact.pop(a)
        return c

    def build(e: Any) -> Any:
        if isinstance(e, Quoted):
            return str(e)
        if isinstance(e, int | float):
            return sympy.Rational(e) if mode == "sympy" and isinstance(e, float) else e
        if isinstance(e, str):
            return env[e]
        head, args = e[0], [build(a) for a in e[1:]]
        if head == "LitN":
            return lit(*args)
        if head in PRIMITIVES:
            return PRIMITIVES[head](*args)
        op = op_name(head)
        params: dict[str, Any] = {}
        if op in _PARAM_OPS:
            params = dict(ast.literal_eval(args[0]))
            args = args[1:]
        if OPS[op].kind != "elemwise":
            args = [at_declared_rank(a) for a in args]
        return apply(op, args, **params)

    lhs, rhs = build(parse(rule.lhs)), build(parse(rule.rhs))
    leaves = {k: v for k, v in inputs.items() if v.owner is None and not isinstance(v, Constant)}
    return Sides(lhs, rhs, leaves, env, exact)
