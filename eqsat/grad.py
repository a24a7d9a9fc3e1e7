"""Reverse-mode gradients: one VJP row per differentiable op, and `grad`/`jacobian`/`hessian`.

Each row maps (node, output gradient) to one gradient per input, or None where the input gets
none (integer inputs, indices, shapes). Rows build ordinary graph expressions, so a gradient is a
graph like any other and the optimizer sees the forward and backward passes together.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from eqsat.graph import Apply, Variable, toposort
from eqsat.ops import OPS, apply, as_variable, constant
from eqsat.ops_math import ZERO_GRAD_UNARY


class DisconnectedInputError(ValueError):
    """T.grad was asked for the gradient of a variable the cost does not depend on."""


class _Tensor:
    """`eqsat.tensor.basic`, looked up on first use: that module imports this one."""

    def __getattr__(self, name: str) -> Any:
        from eqsat.tensor import basic

        return getattr(basic, name)


T = _Tensor()


def fit_to(g: Variable, var: Variable) -> Variable:
    """g summed over the axes `var` was broadcast along, and cast to var's dtype."""
    if g.ndim > var.ndim:
        g = T.sum(g, axis=tuple(range(g.ndim - var.ndim)))
    axes = tuple(i for i, s in enumerate(var.type.shape) if s == 1 and g.type.shape[i] != 1)
    if axes:
        g = T.sum(g, axis=axes, keepdims=True)
    return T.cast(g, var.dtype)


def _expand_reduced(g: Variable, node: Apply) -> Variable:
    """g (the gradient of a reduction) with the reduced axes back as broadcastable axes."""
    if node.p["keepdims"]:
        return g
    axis, ndim = node.p["axis"], node.inputs[0].ndim
    kept = iter(range(g.ndim))
    return T.dimshuffle(g, ["x" if i in axis else next(kept) for i in range(ndim)])


def _broadcast_like(g: Variable, x: Variable) -> Variable:
    return T.alloc(g, *[T.shape_i(x, i) for i in range(x.ndim)])


def _zeros(x: Variable, g: Variable) -> Variable:
    return T.zeros_like(x, dtype=g.dtype)


# ----------------------------------------------------------------------- elementwise rows
def _ew(fn: Callable[..., Any]):
    """A row for an elementwise op from a rule on (inputs..., out, g)."""

    def row(node: Apply, g: Variable) -> list:
        return list(fn(*node.inputs, node.out, g))

    return row


def _sub(x, y, z, g):
    return g, -g


def _true_div(x, y, z, g):
    return g / y, -g * x / (y * y)


def _pow(x, y, z, g):
    return g * y * x ** (y - 1), g * z * T.log(x)


def _maximum(x, y, z, g):
    return g * T.ge(x, y), g * T.lt(x, y)


def _minimum(x, y, z, g):
    return g * T.le(x, y), g * T.gt(x, y)


def _mod(x, y, z, g):
    return g, -g * T.floor(x / y)


def _switch(c, a, b, z, g):
    return None, T.switch(c, g, 0), T.switch(c, 0, g)


LN2, LN10, TWO_OVER_SQRT_PI = math.log(2), math.log(10), 2 / math.sqrt(math.pi)


UNARY_RULES: dict[str, Callable] = {
    "neg": lambda x, z, g: (-g,),
    "abs": lambda x, z, g: (g * T.sgn(x),),
    "exp": lambda x, z, g: (g * z,),
    "log": lambda x, z, g: (g / x,),
    "log1p": lambda x, z, g: (g / (1 + x),),
    "expm1": lambda x, z, g: (g * (z + 1),),
    "log2": lambda x, z, g: (g / (x * LN2),),
    "log10": lambda x, z, g: (g / (x * LN10),),
    "sqrt": lambda x, z, g: (g * 0.5 / z,),
    "sqr": lambda x, z, g: (g * 2 * x,),
    "sin": lambda x, z, g: (g * T.cos(x),),
    "cos": lambda x, z, g: (-g * T.sin(x),),
    "tan": lambda x, z, g: (g * (1 + z * z),),
    "tanh": lambda x, z, g: (g * (1 - z * z),),
    "sigmoid": lambda x, z, g: (g * z * (1 - z),),
    "softplus": lambda x, z, g: (g * T.sigmoid(x),),
    "erf": lambda x, z, g: (g * TWO_OVER_SQRT_PI * T.exp(-T.sqr(x)),),
    "cast": lambda x, z, g: (g,),
    **{op: (lambda x, z, g: (_zeros(x, g),)) for op in ZERO_GRAD_UNARY},
}


# ----------------------------------------------------------------------- other rows
def _sum(node: Apply, g: Variable) -> list:
    return [_broadcast_like(_expand_reduced(g, node), node.inputs[0])]


def _prod(node: Apply, g: Variable) -> list:
    # d prod / d x_i is the product of the others: z / x_i without zeros; with exactly one zero
    # in the group, the product of the non-zeros at the zero and 0 elsewhere; with more, 0.
    (x,) = node.inputs
    axis = node.p["axis"]
    is_zero = T.eq(x, 0)
    n_zeros = T.sum(is_zero, axis=axis, keepdims=True)
    prod_nonzero = T.prod(T.switch(is_zero, 1, x), axis=axis, keepdims=True)
    z = T.prod(x, axis=axis, keepdims=True)
    local = T.switch(
        T.eq(n_zeros, 0), z / x, T.switch(T.and_(T.eq(n_zeros, 1), is_zero), prod_nonzero, 0)
    )
    return [_expand_reduced(g, node) * local]


def _max(node: Apply, g: Variable) -> list:
    # Theano's rule: every position equal to the maximum receives the gradient.
    (x,) = node.inputs
    hit = T.eq(x, _expand_reduced(node.out, node))
    return [_expand_reduced(g, node) * hit]


def _dot(node: Apply, g: Variable) -> list:
    a, b = node.inputs
    if a.ndim == 1 and b.ndim == 1:
        return [g * b, g * a]
    if a.ndim == 2 and b.ndim == 1:
        return [T.outer(g, b), T.dot(a.T, g)]
    if a.ndim == 1:
        return [T.dot(b, g), T.outer(a, g)]
    return [T.dot(g, b.T), T.dot(a.T, g)]


def _gemm(node: Apply, g: Variable) -> list:
    # out = beta*c + alpha*op(a)op(b): d op(a) = alpha g op(b)^T, d op(b) = alpha op(a)^T g,
    # and d a is d op(a) transposed back when trans_a is set (likewise b).
    c, alpha, a, b, beta = node.inputs
    ta, tb = node.p["trans_a"], node.p["trans_b"]
    op_a, op_b = (a.T if ta else a), (b.T if tb else b)
    ga = alpha * (T.dot(op_b, g.T) if ta else T.dot(g, b if tb else b.T))
    gb = alpha * (T.dot(g.T, op_a) if tb else T.dot(a if ta else a.T, g))
    return [beta * g, T.sum(g * T.dot(op_a, op_b)), ga, gb, T.sum(g * c)]


def _gemv(node: Apply, g: Variable) -> list:
    # out = beta*y + alpha*op(a)x: d op(a) = alpha outer(g, x), d x = alpha op(a)^T g.
    y, alpha, a, x, beta = node.inputs
    ta = node.p["trans_a"]
    op_a = a.T if ta else a
    ga = alpha * (T.outer(x, g) if ta else T.outer(g, x))
    gx = alpha * (T.dot(a, g) if ta else T.dot(g, a))
    return [beta * g, T.sum(g * T.dot(op_a, x)), ga, gx, T.sum(g * y)]


def _dimshuffle(node: Apply, g: Variable) -> list:
    order = node.p["new_order"]
    inserted = tuple(i for i, p in enumerate(order) if p == "x")
    if inserted:
        g = T.sum(g, axis=inserted)
    kept = [p for p in order if p != "x"]
    pattern = [kept.index(a) if a in kept else "x" for a in range(node.inputs[0].ndim)]
    return [T.dimshuffle(g, pattern)]


def _reshape(node: Apply, g: Variable) -> list:
    x = node.inputs[0]
    return [T.reshape(g, T.shape(x), ndim=x.ndim), None]


def _alloc(node: Apply, g: Variable) -> list:
    value = node.inputs[0]
    return [fit_to(g, value)] + [None] * (len(node.inputs) - 1)


def _concatenate(node: Apply, g: Variable) -> list:
    axis = node.p["axis"]
    out, start = [], constant(0, dtype="int64")
    for x in node.inputs:
        stop = start + T.shape_i(x, axis)
        index = (slice(None),) * axis + (slice(start, stop),)
        out.append(g[index])
        start = stop
    return out


def _subtensor(node: Apply, g: Variable) -> list:
    x, *idx = node.inputs
    gx = apply("inc_subtensor", [_zeros(x, g), g, *idx], spec=node.p["spec"], set=False)
    return [gx] + [None] * len(idx)


def _inc_subtensor(node: Apply, g: Variable) -> list:
    x, y, *idx = node.inputs
    spec = node.p["spec"]
    gx = apply("inc_subtensor", [g, constant(0, dtype=g.dtype), *idx], spec=spec, set=True)
    gx = gx if node.p["set"] else g
    gy = fit_to(apply("subtensor", [g, *idx], spec=spec), y)
    return [gx, gy] + [None] * len(idx)


def _advanced_subtensor(node: Apply, g: Variable) -> list:
    x, *idx = node.inputs
    gx = apply("advanced_inc_subtensor", [_zeros(x, g), g, *idx], set=False)
    return [gx] + [None] * len(idx)


def _advanced_inc_subtensor(node: Apply, g: Variable) -> list:
    x, y, *idx = node.inputs
    zero = constant(0, dtype=g.dtype)
    gx = apply("advanced_inc_subtensor", [g, zero, *idx], set=True) if node.p["set"] else g
    gy = fit_to(apply("advanced_subtensor", [g, *idx]), y)
    return [gx, gy] + [None] * len(idx)


def _softmax(node: Apply, g: Variable) -> list:
    z = node.out
    return [z * (g - T.sum(g * z, axis=node.p["axis"], keepdims=True))]


def _log_softmax(node: Apply, g: Variable) -> list:
    return [g - T.exp(node.out) * T.sum(g, axis=node.p["axis"], keepdims=True)]


def _logsumexp(node: Apply, g: Variable) -> list:
    # d/dx log(sum(exp(x))) = exp(x - logsumexp(x)), the softmax over the reduced axes
    (x,) = node.inputs
    return [_expand_reduced(g, node) * T.exp(x - _expand_reduced(node.out, node))]


def _make_vector(node: Apply, g: Variable) -> list:
    return [g[i] for i in range(len(node.inputs))]


VJP: dict[str, Callable[[Apply, Variable], list]] = {
    "add": _ew(lambda x, y, z, g: (g, g)),
    "sub": _ew(_sub),
    "mul": _ew(lambda x, y, z, g: (g * y, g * x)),
    "true_div": _ew(_true_div),
    "int_div": _ew(lambda x, y, z, g: (_zeros(x, g), _zeros(y, g))),
    "mod": _ew(_mod),
    "pow": _ew(_pow),
    "maximum": _ew(_maximum),
    "minimum": _ew(_minimum),
    "switch": _ew(_switch),
    "sum": _sum,
    "prod": _prod,
    "max": _max,
    "min": _max,
    "dot": _dot,
    "gemm": _gemm,
    "gemv": _gemv,
    "dimshuffle": _dimshuffle,
    "reshape": _reshape,
    "make_vector": _make_vector,
    "alloc": _alloc,
    "concatenate": _concatenate,
    "subtensor": _subtensor,
    "inc_subtensor": _inc_subtensor,
    "advanced_subtensor": _advanced_subtensor,
    "advanced_inc_subtensor": _advanced_inc_subtensor,
    "softmax": _softmax,
    "log_softmax": _log_softmax,
    "logsumexp": _logsumexp,
    **{name: _ew(rule) for name, rule in UNARY_RULES.items()},
}
# Ops whose outputs carry no gradient (integer or boolean results, shapes, positions).
NON_DIFFERENTIABLE = {name for name, row in OPS.items() if "integer" in row.flags} | {
    "arange",
    "one_hot",
}


def _is_float(v: Variable) -> bool:
    return v.dtype[0] in "fc"


def _connected(cost: Variable, wrt: Sequence[Variable], blocked: set[int]) -> tuple[list, set]:
    """The nodes to differentiate through and the ids of Variables on a wrt → cost path."""
    nodes = toposort([cost])
    live = {id(w) for w in wrt}
    for node in nodes:
        if node.op in NON_DIFFERENTIABLE or id(node.out) in blocked:
            continue
        if any(id(i) in live and _is_float(i) for i in node.inputs):
            live.add(id(node.out))
    return nodes, live


def grad(
    cost: Any,
    wrt: Variable | Sequence[Variable],
    consider_constant: Sequence[Variable] | None = None,
    disconnected_inputs: str = "raise",
    return_disconnected: str = "zero",
) -> Variable | list[Variable | None]:
    """Symbolic gradient of the scalar `cost` with respect to `wrt` (a Variable or a list)."""
    if disconnected_inputs not in ("raise", "warn", "ignore"):
        raise ValueError(
            f"disconnected_inputs must be 'raise', 'warn' or 'ignore', got {disconnected_inputs!r}"
        )
    if return_disconnected not in ("zero", "None"):
        raise ValueError(
            f"return_disconnected must be 'zero' or 'None', got {return_disconnected!r}"
        )
    cost = as_variable(cost)
    if cost.ndim != 0:
        raise TypeError(f"cost must be a scalar; got {cost!r} with ndim={cost.ndim}")
    if not _is_float(cost):
        raise TypeError(f"cost must be a float scalar to differentiate; {cost!r} is {cost.dtype}")
    single = isinstance(wrt, Variable)
    wrt_list = [wrt] if single else list(wrt)
    for w in wrt_list:
        if not isinstance(w, Variable):
            raise TypeError(f"grad: wrt must hold symbolic Variables, got {type(w).__name__} {w!r}")
        if not _is_float(w):
            raise TypeError(
                f"grad: the gradient with respect to {w!r} of dtype {w.dtype} is "
                "undefined; differentiate with respect to a float variable"
            )
    blocked = {id(v) for v in consider_constant or ()}
    nodes, live = _connected(cost, wrt_list, blocked)
    grads: dict[int, Variable] = {}
    if id(cost) in live:
        grads[id(cost)] = constant(1, dtype=cost.dtype)
    for node in reversed(nodes):
        g = grads.get(id(node.out))
        if g is None or id(node.out) in blocked:
            continue
        for inp, gi in zip(node.inputs, VJP[node.op](node, g), strict=True):
            if gi is None or id(inp) not in live or id(inp) in blocked:
                continue
            gi = fit_to(gi, inp)
            grads[id(inp)] = grads[id(inp)] + gi if id(inp) in grads else gi
    depends = _depends_on(cost, blocked)
    return _collect(wrt_list, grads, depends, disconnected_inputs, return_disconnected, single)


def _depends_on(cost: Variable, blocked: set[int]) -> set[int]:
    """Ids of every Variable `cost` depends on, not looking behind `blocked` ones."""
    seen = {id(cost)}
    stack = [cost]
    while stack:
        v = stack.pop()
        if v.owner is None or id(v) in blocked:
            continue
        for i in v.owner.inputs:
            if id(i) not in seen:
                seen.add(id(i))
                stack.append(i)
    return seen


def _collect(wrt, grads, depends, policy, return_disconnected, single):
    out: list[Variable | None] = []
    for w in wrt:
        if id(w) in grads:
            out.append(grads[id(w)])
            continue
        if id(w) in depends:  # connected through integer or boolean values only: gradient 0
            out.append(T.zeros_like(w))
            continue
        message = f"grad: the cost does not depend on {w!r} (it is not part of the cost's graph)"
        if policy == "raise":
            raise DisconnectedInputError(
                message + "; pass disconnected_inputs='ignore' or 'warn' to get zeros"
            )
        if policy == "warn":
            warnings.warn(message, stacklevel=3)
        out.append(T.zeros_like(w) if return_disconnected == "zero" else None)
    return out[0] if single else out


def _length(v: Variable, length: int | None, what: str) -> int:
    if length is not None:
        return int(length)
    if v.type.shape[0] is None:
        raise ValueError(
            f"{what}: the length of {v!r} is not known at graph-build time; pass length=N "
            "(or give the variable a static shape, e.g. T.tensor('float64', shape=(3,)))"
        )
    return v.type.shape[0]


def jacobian(
    expression: Any,
    wrt: Variable | Sequence[Variable],
    length: int | None = None,
    disconnected_inputs: str = "raise",
) -> Variable | list[Variable]:
    """d expression[i] / d wrt, stacked over i, for a scalar or vector expression.

    Without scan, the rows are unrolled, so the expression's length must be static or given.
    """
    expression = as_variable(expression)
    single = isinstance(wrt, Variable)
    wrt_list = [wrt] if single else list(wrt)
    if expression.ndim == 0:
        return grad(expression, wrt, disconnected_inputs=disconnected_inputs)
    if expression.ndim != 1:
        raise TypeError(
            f"jacobian: expression must be a scalar or vector, got ndim={expression.ndim}"
        )
    n = _length(expression, length, "jacobian")
    rows = [
        grad(expression[i], wrt_list, disconnected_inputs=disconnected_inputs) for i in range(n)
    ]
    stacked = [T.stack([r[k] for r in rows]) for k in range(len(wrt_list))]
    return stacked[0] if single else stacked


def hessian(
    cost: Any,
    wrt: Variable | Sequence[Variable],
    length: int | None = None,
    disconnected_inputs: str = "raise",
) -> Variable | list[Variable]:
    """The matrix of second derivatives of scalar `cost` for each vector in `wrt`."""
    single = isinstance(wrt, Variable)
    wrt_list = [wrt] if single else list(wrt)
    out = []
    for w in wrt_list:
        if w.ndim != 1:
            raise TypeError(f"hessian: wrt must be vectors, got {w!r} with ndim={w.ndim}")
        g = grad(cost, w, disconnected_inputs=disconnected_inputs)
        out.append(
            jacobian(
                g, w, length=_length(w, length, "hessian"), disconnected_inputs=disconnected_inputs
            )
        )
    return out[0] if single else out
