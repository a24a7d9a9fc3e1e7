"""Reference gradients for the gradient tests: sympy's exact derivative and central finite
differences, both evaluated at the same point as eqsat's symbolic gradient.

Tolerances (float64):
- sympy: eqsat's gradient and sympy's derivative are the same real number computed two ways;
  eqsat rounds in float64 (a few dozen operations at most here, inputs of order 1, so errors
  of ~1e-14 relative), sympy evaluates exactly. rtol 1e-8 / atol 1e-10 leaves a wide margin
  while still catching any wrong rule (those are off by O(1)).
- finite differences: central difference with step h = 1e-6 * max(1, |x|) has truncation error
  ~h^2 |f'''| / 6 ~ 1e-13 and rounding error ~eps |f| / h ~ 2e-10 |f|; on costs of order 1-100
  both stay well below 1e-6, so rtol = 1e-6 and atol = 1e-6 * max(1, |f|).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import sympy

import eqsat
import eqsat.tensor as T
from eqsat.graph import Variable
from eqsat.runtime import SharedVariable
from eqsat.sympy_bridge import symbols_for, to_sympy

SYMPY_RTOL, SYMPY_ATOL = 1e-8, 1e-10
FD_STEP = 1e-6
FD_RTOL, FD_ATOL = 1e-6, 1e-6


def sample(rng, shape, lo=-2.0, hi=2.0, distinct=False):
    """Uniform values in [lo, hi); with `distinct`, at least (hi - lo) / (5 n) apart, so that
    max/min/maximum have no ties and finite differences never step across a kink."""
    shape = tuple(shape)
    n = int(np.prod(shape))
    if not distinct:
        return rng.uniform(lo, hi, shape)
    slots = rng.permutation(n) + rng.uniform(0.2, 0.8, n)
    return (lo + (hi - lo) * slots / n).reshape(shape)


def evaluate(outputs, values: dict, mode: str):
    """Compile `outputs` over the non-shared Variables in `values`, set the shared ones, run."""
    inputs = [v for v in values if not isinstance(v, SharedVariable)]
    for v, val in values.items():
        if isinstance(v, SharedVariable):
            v.set_value(val)
    f = eqsat.function(inputs, outputs, mode=mode, on_unused_input="ignore")
    return f(*[values[v] for v in inputs])


def weighted_cost(out: Variable, values: dict, mode: str, rng, dtype: str = "float64"):
    """sum(out * W) for fixed random weights W of out's run-time shape: a scalar cost whose
    gradient exercises every element of out with a different weight."""
    shape = np.shape(evaluate(out, values, mode))
    weights = rng.uniform(0.5, 1.5, shape) * rng.choice([-1.0, 1.0], shape)
    return T.sum(out * T.constant(np.asarray(weights, dtype=dtype)))


def _pointwise_derivative_rules(expr):
    """Mod as x - y floor(x / y), so that sympy can differentiate it."""
    return expr.replace(sympy.Mod, lambda a, b: a - b * sympy.floor(a / b))


def _is_step_derivative(e) -> bool:
    return isinstance(e, sympy.Derivative) and e.expr.func in (sympy.floor, sympy.ceiling)


def _drop_jumps(d):
    """The derivative of a piecewise-constant function (floor, ceiling, sign) is 0 away from
    its jumps, and every test point stays away from them."""
    d = d.replace(_is_step_derivative, lambda e: sympy.Integer(0))
    return d.replace(sympy.DiracDelta, lambda *a: sympy.Integer(0)).doit()


def derivatives_at(expr, symbols: Sequence[np.ndarray], point: dict) -> list[np.ndarray]:
    """d expr / d s for every symbol s in each object array of `symbols`, evaluated at `point`
    (a dict symbol -> float), as float arrays shaped like the symbol arrays."""
    expr = _pointwise_derivative_rules(sympy.sympify(expr))
    exact = {s: sympy.Float(float(v)) for s, v in point.items()}
    out = []
    for syms in symbols:
        grad = np.empty(np.shape(syms))
        for idx in np.ndindex(*grad.shape):
            d = _drop_jumps(sympy.diff(expr, syms[idx]))
            grad[idx] = float(d.xreplace(exact))
        out.append(grad)
    return out


def sympy_grad(cost: Variable, wrt: Sequence[Variable], values: dict) -> list[np.ndarray]:
    """d cost / d w for each w in wrt, by sympy.diff of to_sympy(cost), evaluated at `values`
    (inputs not in wrt enter as numbers)."""
    fixed = {v: np.asarray(val).astype(object) for v, val in values.items() if v not in wrt}
    shapes = {w: np.shape(values[w]) for w in wrt}
    expr = to_sympy(cost, symbols=fixed, shapes=shapes)
    syms = [symbols_for(w, shapes[w]) for w in wrt]
    point = {}
    for w, s in zip(wrt, syms, strict=True):
        point.update(zip(s.ravel(), np.ravel(values[w]), strict=True))
    return derivatives_at(expr, syms, point)


def finite_difference_grad(
    cost: Variable, wrt: Sequence[Variable], values: dict, mode: str, step: float = FD_STEP
) -> list[np.ndarray]:
    """Central differences (f(x + h) - f(x - h)) / 2h of the compiled cost, element by element."""
    inputs = [v for v in values if not isinstance(v, SharedVariable)]
    f = eqsat.function(inputs, cost, mode=mode, on_unused_input="ignore")

    def at(vals):
        for v, val in vals.items():
            if isinstance(v, SharedVariable):
                v.set_value(val)
        return float(f(*[vals[v] for v in inputs]))

    out = []
    for w in wrt:
        base = np.asarray(values[w], dtype="float64")
        grad = np.empty(base.shape)
        for idx in np.ndindex(*base.shape):
            h = step * max(1.0, abs(base[idx]))
            plus, minus = base.copy(), base.copy()
            plus[idx] += h
            minus[idx] -= h
            grad[idx] = (at({**values, w: plus}) - at({**values, w: minus})) / (2 * h)
        out.append(grad)
    at(values)  # leave shared variables at the point
    return out


def check_grad(
    cost: Variable,
    wrt: Sequence[Variable],
    values: dict,
    mode: str,
    *,
    use_sympy: bool = True,
    use_fd: bool = True,
    fd_step: float = FD_STEP,
    fd_tol: float = FD_RTOL,
    sympy_rtol: float = SYMPY_RTOL,
    sympy_atol: float = SYMPY_ATOL,
) -> list[np.ndarray]:
    """Assert that T.grad(cost, wrt) matches sympy and finite differences at `values`.

    Returns eqsat's gradients, so callers can check more (shapes, dtypes)."""
    wrt = list(wrt)
    grads = T.grad(cost, wrt)
    got = evaluate(grads, values, mode)
    for w, g in zip(wrt, got, strict=True):
        assert g.shape == np.shape(values[w]), f"gradient of {w!r} has shape {g.shape}"
        assert g.dtype == np.dtype(w.dtype), f"gradient of {w!r} has dtype {g.dtype}"
    if use_sympy:
        for w, g, ref in zip(wrt, got, sympy_grad(cost, wrt, values), strict=True):
            np.testing.assert_allclose(
                g, ref, rtol=sympy_rtol, atol=sympy_atol, err_msg=f"d cost / d {w!r} vs sympy"
            )
    if use_fd:
        fd = finite_difference_grad(cost, wrt, values, mode, step=fd_step)
        atol = fd_tol * max(1.0, abs(float(evaluate(cost, values, mode))))
        for w, g, ref in zip(wrt, got, fd, strict=True):
            np.testing.assert_allclose(
                g, ref, rtol=fd_tol, atol=atol, err_msg=f"d cost / d {w!r} vs finite differences"
            )
    return got
