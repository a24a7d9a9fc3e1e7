"""eqsat graphs to sympy expressions and back.

`to_sympy` evaluates a graph on NumPy object arrays of sympy expressions: elementwise ops apply a
scalar sympy rule to each element, and structural ops (indexing, reshapes, dot, sums) run their
NumPy implementation unchanged, since NumPy handles object arrays. A vector input of length 3
becomes symbols x_0, x_1, x_2, so reductions, dot and indexing all have exact sympy forms.
`from_sympy` builds an eqsat graph from a sympy expression.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import sympy
from sympy.core.relational import Relational
from sympy.logic.boolalg import BooleanAtom, BooleanFunction

from eqsat.graph import Constant, Variable, toposort
from eqsat.ops import OPS

IMPL = "impl"  # marker: the op's NumPy implementation works on object arrays as it is


# Truth values proper: sympy's Symbol is also a Boolean, so that class alone would not do.
_TRUTH = (BooleanAtom, BooleanFunction, Relational)


def _cast(x: Any, dtype: str) -> Any:
    if dtype == "bool":
        return x if isinstance(x, _TRUTH) else sympy.Ne(x, 0)
    if isinstance(x, _TRUTH):  # a truth value used as a number: 1 or 0
        return sympy.Piecewise((1, x), (0, True))
    if dtype[0] in "iu":
        return sympy.sign(x) * sympy.floor(sympy.Abs(x))  # C-style truncation toward zero
    return x


def _reduce_with(fn: Callable) -> Callable:
    ufunc = np.frompyfunc(fn, 2, 1)

    def impl(x, axis, keepdims):
        out = np.asarray(x, dtype=object)
        for a in sorted(axis, reverse=True):
            out = ufunc.reduce(out, axis=a, keepdims=keepdims)
        return np.asarray(out, dtype=object)

    return impl


def _softmax(x, axis):
    e = _ew(sympy.exp)(x)
    return e / np.sum(e, axis=axis, keepdims=True)


def _logsumexp(x, axis, keepdims):
    return _ew(sympy.log)(np.sum(_ew(sympy.exp)(x), axis=axis, keepdims=keepdims))


def _log_softmax(x, axis):
    return x - _logsumexp(x, axis, keepdims=True)


def _ew(fn: Callable, nin: int = 1) -> Callable:
    return np.frompyfunc(fn, nin, 1)


# Scalar rules for elementwise ops; array rules (or IMPL) for the rest; None: no sympy form.
SYMPY: dict[str, Any] = {
    "neg": lambda x: -x,
    "abs": sympy.Abs,
    "exp": sympy.exp,
    "log": sympy.log,
    "log1p": lambda x: sympy.log(1 + x),
    "expm1": lambda x: sympy.exp(x) - 1,
    "log2": lambda x: sympy.log(x, 2),
    "log10": lambda x: sympy.log(x, 10),
    "sqrt": sympy.sqrt,
    "sqr": lambda x: x**2,
    "sin": sympy.sin,
    "cos": sympy.cos,
    "tan": sympy.tan,
    "tanh": sympy.tanh,
    "sigmoid": lambda x: 1 / (1 + sympy.exp(-x)),
    "softplus": lambda x: sympy.log(1 + sympy.exp(x)),
    "erf": sympy.erf,
    "sgn": sympy.sign,
    "floor": sympy.floor,
    "ceil": sympy.ceiling,
    "round": None,
    "invert": sympy.Not,
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "true_div": lambda a, b: a / b,
    "int_div": lambda a, b: sympy.floor(a / b),
    "mod": sympy.Mod,
    "pow": lambda a, b: a**b,
    "maximum": sympy.Max,
    "minimum": sympy.Min,
    "lt": sympy.Lt,
    "gt": sympy.Gt,
    "le": sympy.Le,
    "ge": sympy.Ge,
    "eq": sympy.Eq,
    "neq": sympy.Ne,
    "and_": sympy.And,
    "or_": sympy.Or,
    "xor": sympy.Xor,
    "switch": lambda c, a, b: sympy.Piecewise((a, c), (b, True)),
    "cast": "cast",
    "sum": IMPL,
    "logsumexp": _logsumexp,
    "prod": IMPL,
    "max": _reduce_with(sympy.Max),
    "min": _reduce_with(sympy.Min),
    "argmax": None,
    "argmin": None,
    "dot": IMPL,
    "gemm": IMPL,
    "gemv": IMPL,
    "shape": IMPL,
    "shape_i": IMPL,
    "dimshuffle": IMPL,
    "reshape": IMPL,
    "make_vector": lambda *xs, dtype: np.array(xs, dtype=object),
    "alloc": IMPL,
    "arange": IMPL,
    "one_hot": IMPL,
    "concatenate": IMPL,
    "subtensor": IMPL,
    "inc_subtensor": IMPL,
    "advanced_subtensor": IMPL,
    "advanced_inc_subtensor": IMPL,
    "softmax": _softmax,
    "log_softmax": _log_softmax,
}
NO_SYMPY_REASON = {
    "round": "half-to-even rounding has no sympy function",
    "argmax": "a position, not an algebraic value",
    "argmin": "a position, not an algebraic value",
}


def _sympy_number(x: Any) -> Any:
    if isinstance(x, bool | np.bool_):
        return sympy.true if x else sympy.false
    if isinstance(x, int | np.integer):
        return sympy.Integer(int(x))
    x = float(x)
    return sympy.Integer(int(x)) if x.is_integer() else sympy.Float(x)


def symbols_for(var: Variable, shape: Sequence[int] | None = None) -> np.ndarray:
    """Object array of sympy symbols standing for the elements of input `var`."""
    shape = tuple(var.type.shape if shape is None else shape)
    if None in shape:
        raise ValueError(f"symbols_for: {var!r} has no static shape; pass shape=")
    base = var.name or f"v{var.uid}"
    real = {"real": True}
    if not shape:
        return np.array(sympy.Symbol(base, **real), dtype=object)
    out = np.empty(shape, dtype=object)
    for idx in np.ndindex(*shape):
        out[idx] = sympy.Symbol(f"{base}_{'_'.join(map(str, idx))}", **real)
    return out


def _eval_node(node, args):
    rule = SYMPY[node.op]
    if rule is None:
        raise NotImplementedError(f"{node.op} has no sympy form: {NO_SYMPY_REASON[node.op]}")
    if rule == "cast":
        return _ew(functools.partial(_cast, dtype=node.p["dtype"]))(args[0])
    if OPS[node.op].kind == "elemwise":
        return _ew(rule, len(args))(*args)
    if rule == IMPL:
        impl = OPS[node.op].impl
        return impl(*args, **node.p)
    return rule(*args, **node.p)


def to_sympy(
    outputs: Variable | Sequence[Variable],
    symbols: dict[Variable, Any] | None = None,
    shapes: dict[Variable, Sequence[int]] | None = None,
) -> Any:
    """Sympy form of `outputs`: a sympy expression for a scalar, an object array otherwise.

    Inputs take their values from `symbols` (sympy expressions or object arrays), else become
    symbols named after them, with element symbols for tensors (static shape or `shapes`).
    """
    single = isinstance(outputs, Variable)
    outs = [outputs] if single else list(outputs)
    values: dict[int, Any] = {}
    for var, value in (symbols or {}).items():
        values[id(var)] = np.asarray(value, dtype=object)

    def value_of(v: Variable) -> Any:
        if id(v) not in values:
            if isinstance(v, Constant):
                values[id(v)] = np.vectorize(_sympy_number, otypes=[object])(v.data)
            else:
                values[id(v)] = symbols_for(v, (shapes or {}).get(v))
        return values[id(v)]

    for node in toposort(outs):
        args = [value_of(i) for i in node.inputs]
        ints = [
            np.asarray(a, dtype="int64") if i.dtype[0] in "iu" and _all_numbers(a) else a
            for a, i in zip(args, node.inputs, strict=True)
        ]
        values[id(node.out)] = np.asarray(_eval_node(node, ints), dtype=object)
    results = [_unwrap(value_of(o)) for o in outs]
    return results[0] if single else results


def _all_numbers(a: Any) -> bool:
    return all(isinstance(e, int | np.integer | sympy.Integer) for e in np.ravel(a))


def _unwrap(a: np.ndarray) -> Any:
    return a.item() if a.ndim == 0 else a


# ------------------------------------------------------------------------ sympy -> eqsat
def _from_rules() -> dict[Any, Callable]:
    from eqsat import tensor as T

    def fold(binary: Callable) -> Callable:  # sympy's n-ary Add, Max, And, ... as binary ops
        return lambda *args: functools.reduce(binary, args)

    return {
        sympy.Add: fold(T.add),
        sympy.Mul: fold(T.mul),
        sympy.Pow: lambda a, b: a**b,
        sympy.exp: T.exp,
        sympy.log: T.log,
        sympy.sin: T.sin,
        sympy.cos: T.cos,
        sympy.tan: T.tan,
        sympy.tanh: T.tanh,
        sympy.Abs: T.abs_,
        sympy.sign: T.sgn,
        sympy.floor: T.floor,
        sympy.ceiling: T.ceil,
        sympy.erf: T.erf,
        sympy.Max: fold(T.maximum),
        sympy.Min: fold(T.minimum),
        sympy.Lt: T.lt,
        sympy.Gt: T.gt,
        sympy.Le: T.le,
        sympy.Ge: T.ge,
        sympy.Eq: T.eq,
        sympy.Ne: T.neq,
        sympy.And: fold(T.and_),
        sympy.Or: fold(T.or_),
        sympy.Not: T.invert,
    }


def from_sympy(expr: Any, mapping: dict[Any, Any]) -> Variable:
    """An eqsat graph computing sympy `expr`, with symbols (or their names) mapped to
    Variables (or numbers) by `mapping`."""
    from eqsat import tensor as T

    env = {(k.name if isinstance(k, sympy.Symbol) else str(k)): v for k, v in mapping.items()}
    rules = _from_rules()
    memo: dict[Any, Any] = {}

    def build(e: Any) -> Any:
        if e in memo:
            return memo[e]
        if isinstance(e, sympy.Symbol):
            if e.name not in env:
                raise KeyError(f"from_sympy: no variable given for symbol {e.name!r}")
            out = env[e.name]
        elif e in (sympy.true, sympy.false):
            out = T.constant(bool(e))
        elif e.is_Integer:
            out = T.as_tensor_variable(int(e))
        elif e.is_Number or e.is_NumberSymbol:
            out = T.as_tensor_variable(float(e))
        elif isinstance(e, sympy.Piecewise):
            out = build(e.args[-1].expr)
            for piece in reversed(e.args[:-1]):
                out = T.switch(build(piece.cond), build(piece.expr), out)
        elif e.func in rules:
            out = rules[e.func](*[build(a) for a in e.args])
        else:
            raise NotImplementedError(f"from_sympy: no eqsat form for {e.func.__name__} in {e}")
        memo[e] = out
        return out

    return T.as_tensor_variable(build(sympy.sympify(expr)))
