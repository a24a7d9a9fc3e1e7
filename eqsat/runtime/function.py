"""`eqsat.function`: Theano's compile step and the callable it returns.

Compiling checks and collects the inputs, outputs, updates and givens into one graph; calling
converts the arguments, evaluates the graph on the chosen backend, then applies every update at
once from values computed with the old state, so a failed call changes nothing.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from eqsat import shapes
from eqsat.config import check_mode, config
from eqsat.graph import (
    Constant,
    Variable,
    ancestors,
    clone_replace,
    from_flat,
    graph_inputs,
    to_flat,
    toposort,
)
from eqsat.ops import as_variable
from eqsat.optimizer import optimize
from eqsat.runtime.compiled import CThunk
from eqsat.runtime.convert import coerce_variable, convert_value
from eqsat.runtime.interp import PyThunk
from eqsat.runtime.shared import SharedVariable


class MissingInputError(ValueError):
    """An output depends on a variable that is neither an input nor shared nor given."""


class UnusedInputError(ValueError):
    """An input the outputs do not depend on (see on_unused_input)."""


class In:
    """An input with options: a keyword `name` and a default `value` (Theano's In)."""

    def __init__(
        self,
        variable: Variable,
        name: str | None = None,
        value: Any = None,
        strict: bool = False,
        allow_downcast: bool | None = None,
        mutable: bool = False,
    ) -> None:
        if not isinstance(variable, Variable):
            raise TypeError(f"In() takes a symbolic Variable, got {type(variable).__name__}")
        self.variable = variable
        self.name = name if name is not None else variable.name
        self.value = value
        self.strict = strict
        self.allow_downcast = allow_downcast
        self.mutable = mutable


class FunctionGraph:
    """The compiled graph: explicit inputs, shared inputs, outputs and update expressions."""

    def __init__(
        self,
        inputs: list[Variable],
        shared: list[SharedVariable],
        outputs: list[Variable],
        updates: list[tuple[SharedVariable, Variable]],
    ) -> None:
        self.inputs = inputs
        self.shared = shared
        self.outputs = outputs
        self.updates = updates

    def toposort(self):
        return toposort(self.outputs + [v for _, v in self.updates])


class _Maker:
    def __init__(self, fgraph: FunctionGraph, mode: str) -> None:
        self.fgraph = fgraph
        self.mode = mode


_NO_VALUE = object()
_FLOAT64 = np.dtype("float64")
_watchers: list[Callable[[Function], None]] = []


@contextmanager
def watch(callback: Callable[[Function], None]) -> Iterator[None]:
    """Within the block, `callback(f)` sees each Function once it is compiled (eqsat.explain's
    command line reports on the functions a script compiles)."""
    _watchers.append(callback)
    try:
        yield
    finally:
        _watchers.remove(callback)


def _pairs(mapping: Any, what: str) -> list[tuple[Any, Any]]:
    if mapping is None:
        return []
    items = mapping.items() if isinstance(mapping, dict) else mapping
    try:
        pairs = [tuple(p) for p in items]
    except TypeError as e:
        raise TypeError(f"{what} must be a dict or a list of (variable, value) pairs") from e
    if any(len(p) != 2 for p in pairs):
        raise TypeError(f"{what} must be a dict or a list of (variable, value) pairs")
    return pairs


def _check_inputs(inputs: Iterable[Any]) -> list[In]:
    ins = [i if isinstance(i, In) else In(i) if isinstance(i, Variable) else None for i in inputs]
    for raw, item in zip(inputs, ins, strict=True):
        if item is None:
            raise TypeError(f"function inputs must be Variables or In(...), got {raw!r}")
        v = item.variable
        if isinstance(v, SharedVariable):
            raise TypeError(
                f"shared variable {v!r} cannot be an explicit input; it is an "
                "implicit one (use givens to substitute another variable)"
            )
        if isinstance(v, Constant) or v.owner is not None:
            raise TypeError(
                f"function input {v!r} must be a free symbolic variable, not a "
                "constant or a computed expression"
            )
    seen: set[int] = set()
    for item in ins:
        if id(item.variable) in seen:
            raise ValueError(f"input {item.variable!r} appears more than once in inputs")
        seen.add(id(item.variable))
    return ins


def _check_updates(updates: Any) -> list[tuple[SharedVariable, Variable]]:
    out: list[tuple[SharedVariable, Variable]] = []
    for key, value in _pairs(updates, "updates"):
        if not isinstance(key, SharedVariable):
            raise TypeError(f"update target {key!r} must be a shared variable")
        if any(k is key for k, _ in out):
            raise ValueError(f"shared variable {key!r} has more than one update")
        out.append((key, coerce_variable(value, key.type, f"update of shared variable {key!r}")))
    return out


def _check_givens(givens: Any) -> list[tuple[Variable, Variable]]:
    out = []
    for key, value in _pairs(givens, "givens"):
        if not isinstance(key, Variable) or isinstance(key, Constant):
            raise TypeError(f"givens keys must be symbolic variables, got {key!r}")
        out.append((key, coerce_variable(value, key.type, f"givens replacement for {key!r}")))
    return out


class Function:
    """`function(inputs, outputs, updates=, givens=, ...)`: `outputs` (a Variable or a list) of
    `inputs` compiled into a callable taking the inputs' values, positionally or by name."""

    def __init__(
        self,
        inputs: Sequence[Any],
        outputs: Any,
        updates: Any = None,
        givens: Any = None,
        allow_input_downcast: bool | None = None,
        on_unused_input: str | None = None,
        mode: str | None = None,
        name: str | None = None,
        optimizer: str | None = "default",
        fast_math: bool | None = None,
    ) -> None:
        if isinstance(inputs, Variable | In):
            raise TypeError("function inputs must be a list (e.g. function([x], y))")
        self.name = name
        self.mode = check_mode(mode or config.mode)
        self.fast_math = config.fast_math if fast_math is None else fast_math
        self.allow_input_downcast = allow_input_downcast
        self.ins = _check_inputs(list(inputs))
        self.single = outputs is not None and not isinstance(outputs, list | tuple)
        outs = [] if outputs is None else [outputs] if self.single else list(outputs)
        outs = [as_variable(o) for o in outs]
        upd = _check_updates(updates)
        targets = outs + [v for _, v in upd]
        given = _check_givens(givens)
        if given:
            targets = clone_replace(targets, given)
        explicit = [i.variable for i in self.ins]
        shared = self._check_roots(targets, explicit)
        self._check_unused(targets, on_unused_input or "raise")
        self.defaults = [self._default(i, n) for n, i in enumerate(self.ins)]
        self.optimization = None
        # What the user wrote (after givens), kept for eqsat.explain's before/after report.
        self.source_graph = FunctionGraph(
            explicit,
            shared,
            targets[: len(outs)],
            list(zip([k for k, _ in upd], targets[len(outs) :], strict=True)),
        )
        self.timings: dict[str, float] = {}
        # The shape equalities the graph implies, checked on every call: the optimizer may
        # drop the op that would have tripped on a mismatch (shape/*_alloc_* rules).
        self.shape_checks = shapes.infer(targets).checks()
        optimizer = config.optimizer if optimizer == "default" else optimizer
        start = time.perf_counter()
        if optimizer == "eqsat":
            targets, self.optimization = optimize(targets, fast_math=fast_math)
            self.timings["optimize"] = time.perf_counter() - start
        elif optimizer is not None:
            raise ValueError(f"unknown optimizer {optimizer!r}; expected 'eqsat' or None")
        n_out = len(outs)
        upd = [(k, v) for (k, _), v in zip(upd, targets[n_out:], strict=True)]
        start = time.perf_counter()
        self._build(FunctionGraph(explicit, shared, targets[:n_out], upd))
        self.timings["build"] = time.perf_counter() - start
        for watcher in _watchers:
            watcher(self)

    # What _build derives from the graph: rebuilt on unpickling, never pickled; the source
    # graph (for reports only) is not kept across pickling either.
    _BUILT = ("maker", "thunk", "_root_ids", "_shared", "_updates", "_n_out", "_all_fresh",
              "_expect", "source_graph")  # fmt: skip

    def _build(self, fgraph: FunctionGraph) -> None:
        self.maker = _Maker(fgraph, self.mode)
        targets = fgraph.outputs + [v for _, v in fgraph.updates]
        roots = fgraph.inputs + fgraph.shared
        if self.mode == "c":  # (an update may overwrite its shared variable's array)
            self.thunk = CThunk(targets, roots, {id(v): s for s, v in fgraph.updates})
        else:
            self.thunk = PyThunk(targets, roots)
        # For the per-call fast path:
        self._root_ids = [id(v) for v in roots]
        self._shared, self._updates = fgraph.shared, fgraph.updates
        self._n_out, self._all_fresh = len(fgraph.outputs), all(self.thunk.fresh)
        self._expect = [
            (np.dtype(t.dtype), t.ndim, all(s is None for s in t.shape), t)
            for t in (i.variable.type for i in self.ins)
        ]

    def __getstate__(self) -> dict:
        # Graph + options; the backend is rebuilt on load (deep graphs must not recurse).
        fg = self.maker.fgraph
        state = {k: v for k, v in self.__dict__.items() if k not in self._BUILT}
        state["fgraph"] = (
            fg.inputs,
            fg.shared,
            [k for k, _ in fg.updates],
            to_flat(fg.outputs + [v for _, v in fg.updates]),
            len(fg.outputs),
        )
        return state

    def __setstate__(self, state: dict) -> None:
        inputs, shared, keys, flat, n_out = state.pop("fgraph")
        self.__dict__.update(state)
        self.source_graph = None
        targets = from_flat(*flat)
        updates = list(zip(keys, targets[n_out:], strict=True))
        self._build(FunctionGraph(inputs, shared, targets[:n_out], updates))

    def _what(self, n: int) -> str:
        item = self.ins[n]
        return f"input {n} ({item.name})" if item.name else f"input {n}"

    def _check_roots(self, targets: list[Variable], explicit: list[Variable]) -> list:
        ids = {id(v) for v in explicit}
        shared = []
        for root in graph_inputs(targets):
            if isinstance(root, SharedVariable):
                shared.append(root)
            elif not isinstance(root, Constant) and id(root) not in ids:
                raise MissingInputError(
                    f"the graph needs input {root!r} ({root.type!r}), which is not among the "
                    "function's inputs nor given a value through givens"
                )
        return shared

    def _check_unused(self, targets: list[Variable], policy: str) -> None:
        if policy not in ("raise", "warn", "ignore"):
            raise ValueError(f"on_unused_input must be 'raise', 'warn' or 'ignore', got {policy!r}")
        used = {id(v) for v in ancestors(targets)}
        for n, item in enumerate(self.ins):
            if id(item.variable) in used or policy == "ignore":
                continue
            message = (
                f"{self._what(n)} {item.variable!r} is not used to compute the outputs; "
                "pass on_unused_input='warn' or 'ignore' to allow it"
            )
            if policy == "raise":
                raise UnusedInputError(message)
            warnings.warn(message, stacklevel=4)

    def _default(self, item: In, n: int) -> Any:
        if item.value is None:
            return _NO_VALUE
        return self._convert(item.value, n)

    def _convert(self, value: Any, n: int) -> np.ndarray:
        item = self.ins[n]
        allow = (
            item.allow_downcast if item.allow_downcast is not None else self.allow_input_downcast
        )
        if item.strict and isinstance(value, np.ndarray) and value.dtype != item.variable.dtype:
            raise TypeError(
                f"{self._what(n)} is strict: expected dtype {item.variable.dtype}, "
                f"got {value.dtype}"
            )
        return convert_value(value, item.variable.type, self._what(n), allow)

    def _bind(self, args: tuple, kwargs: dict) -> list[np.ndarray]:
        n_in = len(self.ins)
        label = f"function {self.name!r}" if self.name else "the function"
        if len(args) > n_in:
            raise TypeError(f"{label} takes {n_in} inputs, got {len(args)} positional arguments")
        values: list[Any] = list(args) + [_NO_VALUE] * (n_in - len(args))
        names = {item.name: n for n, item in enumerate(self.ins) if item.name}
        for key, value in kwargs.items():
            if key not in names:
                raise TypeError(
                    f"{label} got an unexpected keyword argument {key!r}; "
                    f"its inputs are named {sorted(names)}"
                )
            if values[names[key]] is not _NO_VALUE:
                raise TypeError(f"{label} got two values for input {key!r}")
            values[names[key]] = value
        out = []
        for n, value in enumerate(values):
            if value is _NO_VALUE:
                if self.defaults[n] is _NO_VALUE:
                    raise TypeError(f"{label} is missing a value for {self._what(n)}")
                out.append(self.defaults[n])
            else:
                out.append(self._convert(value, n))
        return out

    def __call__(self, *args: Any, **kwargs: Any) -> np.ndarray | list[np.ndarray]:
        if kwargs or len(args) != len(self._expect):
            values = self._bind(args, kwargs)
        else:  # the common call: every input given positionally, usually as arrays already
            values = [
                a if type(a) is np.ndarray and a.dtype == dt and a.ndim == nd
                and (free or _fits(a, t))
                else np.array(a) if type(a) is float and nd == 0 and dt == _FLOAT64
                else self._convert(a, n)
                for n, (a, (dt, nd, free, t)) in enumerate(zip(args, self._expect, strict=True))
            ]  # fmt: skip
        arrays = values + [s._value for s in self._shared] if self._shared else values
        if self.shape_checks:
            self._check_shapes(dict(zip(self._root_ids, arrays, strict=True)))
        results = self.thunk.run(*arrays)
        if not self._all_fresh:  # results that may be inputs, views, or repeated are copied
            results = _fresh(results, {id(a) for a in arrays}, self.thunk.fresh)
        if self._updates:
            self._update(results)
        return results[0] if self.single else results[: self._n_out]

    def _update(self, results: list[np.ndarray]) -> None:
        fresh = self.thunk.fresh  # per result: allocated by this call, of its type
        for k, (var, _) in enumerate(self._updates, self._n_out):
            if not fresh[k] and not _fits(results[k], var.type):
                convert_value(results[k], var.type, f"update of shared variable {var!r}")
        for k, (var, _) in enumerate(self._updates, self._n_out):
            var._value = results[k]

    def _check_shapes(self, roots: dict[int, np.ndarray]) -> None:
        for group in self.shape_checks:
            lengths = {m if isinstance(m, int) else roots[id(m[0])].shape[m[1]] for m in group}
            if len(lengths) > 1:
                self._shape_mismatch(group, roots)

    def _shape_mismatch(self, group: list, roots: dict[int, np.ndarray]) -> None:
        labels = {id(item.variable): self._what(n) for n, item in enumerate(self.ins)}
        listed = []
        for m in group:
            if isinstance(m, int):
                listed.append(f"the graph's static length is {m}")
                continue
            v, axis = m
            shape = roots[id(v)].shape
            what = labels.get(id(v), f"shared variable {v.name or v!r}")
            listed.append(f"{what} of shape {shape} has length {shape[axis]} on axis {axis}")
        raise ValueError(
            "shape mismatch: these lengths must be equal (the graph combines them without "
            f"broadcasting): {'; '.join(listed)}"
        )


def _fits(value: Any, ttype: Any) -> bool:
    """Whether an array already has a type's dtype, rank and static lengths."""
    return (
        value.dtype == ttype.dtype
        and value.ndim == ttype.ndim
        and all(w is None or w == g for w, g in zip(ttype.shape, value.shape, strict=True))
    )


def _fresh(results: list[np.ndarray], taken: set[int], fresh: list[bool]) -> list[np.ndarray]:
    """Results the caller may own: an array that is an input's, a shared variable's, a view, or
    already handed out (the same value twice) is copied, unless the backend made it for this
    call (`fresh`; an update written into its shared variable's array is that array's)."""
    out = []
    for r, new in zip(results, fresh, strict=True):
        if not new and (id(r) in taken or r.base is not None or not r.flags.writeable):
            r = np.array(r)
        taken.add(id(r))
        out.append(r)
    return out


# Theano's entry point: function(inputs, outputs, updates=, givens=, ...) compiles a Function.
function = Function
