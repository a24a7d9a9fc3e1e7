"""Python operators and Theano's methods on Variables (`x + y`, `x.sum(axis=0)`, `x.T`, ...).

They live here, beside the functions they call, and are installed on `graph.Variable` when
`eqsat.tensor` is imported, so the IR module does not depend on the tensor API.
"""

from __future__ import annotations

from typing import Any

from eqsat.graph import Variable
from eqsat.ops import apply
from eqsat.tensor import basic as T
from eqsat.tensor import indexing


def _binary(op: str, reflected: bool = False):
    if reflected:
        return lambda self, other: apply(op, [other, self])
    return lambda self, other: apply(op, [self, other])


_OPERATORS = {
    "add": "add",
    "sub": "sub",
    "mul": "mul",
    "truediv": "true_div",
    "floordiv": "int_div",
    "mod": "mod",
    "pow": "pow",
    "and": "and_",
    "or": "or_",
    "xor": "xor",
}


def _dimshuffle(self: Variable, *pattern: Any) -> Variable:
    if len(pattern) == 1 and isinstance(pattern[0], list | tuple):
        pattern = tuple(pattern[0])
    return T.dimshuffle(self, pattern)


def _reshape(self: Variable, *shape: Any, ndim: int | None = None) -> Variable:
    return T.reshape(self, shape[0] if len(shape) == 1 else shape, ndim=ndim)


def _transpose(self: Variable, *axes: Any) -> Variable:
    if len(axes) == 1 and isinstance(axes[0], list | tuple):
        axes = tuple(axes[0])
    return T.transpose(self, axes or None)


def _eval(self: Variable, inputs_to_values: dict | None = None) -> Any:
    """Theano's `x.eval({x: value})`: compile (once per set of inputs) and run."""
    from eqsat.runtime.function import function

    given = dict(inputs_to_values or {})
    keys = list(given)
    cache = self.__dict__.setdefault("_eval_functions", {})
    key = tuple(id(k) for k in keys)
    if key not in cache:
        cache[key] = function(keys, self, on_unused_input="ignore")
    return cache[key](*[given[k] for k in keys])


METHODS: dict[str, Any] = {
    "__neg__": lambda self: apply("neg", [self]),
    "__pos__": lambda self: self,
    "__abs__": lambda self: apply("abs", [self]),
    "__invert__": lambda self: apply("invert", [self]),
    "__lt__": _binary("lt"),
    "__le__": _binary("le"),
    "__gt__": _binary("gt"),
    "__ge__": _binary("ge"),
    "__matmul__": lambda self, other: T.dot(self, other),
    "__rmatmul__": lambda self, other: T.dot(other, self),
    "__getitem__": indexing.getitem,
    "T": property(lambda self: T.transpose(self)),
    "shape": property(T.shape),
    "size": property(lambda self: T.prod(T.shape(self))),
    "transpose": _transpose,
    "dimshuffle": _dimshuffle,
    "reshape": _reshape,
    "flatten": lambda self, ndim=1: T.flatten(self, ndim),
    "astype": lambda self, dtype: T.cast(self, dtype),
    "dot": lambda self, other: T.dot(self, other),
    "clip": lambda self, lo, hi: T.clip(self, lo, hi),
    "round": lambda self, mode="half_to_even": T.round(self, mode),
    "copy": lambda self: self,
    "eval": _eval,
    **{
        name: getattr(T, name)
        for name in ("sum", "mean", "max", "min", "prod", "argmax", "argmin", "var", "std")
    },
    **{name: getattr(T, name) for name in ("exp", "log", "sqrt", "sum", "tanh", "sin", "cos")},
}
for _py, _op in _OPERATORS.items():
    METHODS[f"__{_py}__"] = _binary(_op)
    METHODS[f"__r{_py}__"] = _binary(_op, reflected=True)

for _name, _fn in METHODS.items():
    setattr(Variable, _name, _fn)
