"""The C backend (`mode="c"`): runs a kernel plan whose fused loops are one compiled library.

Every step writes into a dict of values, as the reference backend does: a kernel step makes
its outputs with `np.empty` and calls its C function; other ops run their NumPy
implementation (which gives views for dimshuffle, reshape and slicing). A value is dropped
after the last step that reads it, so intermediates live no longer than needed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from eqsat.codegen import c
from eqsat.codegen.compile import Library, load
from eqsat.codegen.plan import Call, Kernel, Plan, make_plan
from eqsat.graph import Constant, Variable
from eqsat.runtime.contract import contraction_step, pointer
from eqsat.runtime.interp import run_node

Values = dict[int, Any]


class CThunk:
    """Evaluates `outputs` from root values with compiled kernels."""

    def __init__(self, outputs: Sequence[Variable]) -> None:
        self.outputs = list(outputs)
        self.plan: Plan = make_plan(self.outputs, c.fusable)
        self.rendered = [c.render(k) for k in self.plan.kernels]
        self.library: Library | None = None
        if self.rendered:
            declarations = "\n".join(r.declaration for r in self.rendered)
            self.library = load(c.source(self.rendered), declarations)
        by_kernel = {id(r.kernel): r for r in self.rendered}
        self.steps = [
            self._kernel_step(by_kernel[id(s)]) if isinstance(s, Kernel)
            else contraction_step(s.node, _host_step(s)) if s.kind == "blas"
            else _host_step(s)
            for s in self.plan.steps
        ]  # fmt: skip
        self.free = [[id(v) for v in dead] for dead in self.plan.last_use]

    def __call__(self, roots: dict[int, np.ndarray]) -> list[np.ndarray]:
        values: Values = dict(roots)
        with np.errstate(all="ignore"):
            for step, dead in zip(self.steps, self.free, strict=True):
                step(values)
                for key in dead:
                    del values[key]
        return [_value(values, o) for o in self.outputs]

    def _kernel_step(self, r: c.Rendered) -> Callable[[Values], None]:
        assert self.library is not None
        ffi, fn = self.library.ffi, getattr(self.library.lib, r.kernel.name)
        kernel = r.kernel
        reads = [(id(v), v.data if isinstance(v, Constant) else None) for v in r.inputs]
        writes = [(id(o), o, np.dtype(o.dtype)) for o in kernel.outputs]
        shape_from = r.shape_from
        red = kernel.reduce
        no_identity = red is not None and red.op in ("max", "min")

        def run(values: Values) -> None:
            arrays = [values[key] if const is None else const for key, const in reads]
            shape = tuple(1 if s is None else arrays[s[0]].shape[s[1]] for s in shape_from)
            if no_identity and any(shape[d] == 0 for d in red.p["axis"]):
                raise ValueError(
                    f"{red.op}: zero-size array to a reduction with no identity "
                    f"(input of shape {shape}, axis {red.p['axis']})"
                )
            outs = [np.empty(r.output_shape(o, shape), dt) for _, o, dt in writes]
            meta = list(shape)
            for a in arrays:
                meta += a.shape
                meta += a.strides
            for a in outs:
                meta += a.shape
                meta += a.strides
            pointers = [pointer(a, ffi) for a in arrays] + [pointer(a, ffi) for a in outs]
            code = fn(*pointers, ffi.new("int64_t[]", meta))
            if code:
                _mismatch(kernel, arrays, code - 1)
            for (key, _, _), a in zip(writes, outs, strict=True):
                values[key] = a

        return run


def _host_step(call: Call) -> Callable[[Values], None]:
    node, key = call.node, id(call.node.out)

    def run(values: Values) -> None:
        values[key] = run_node(node, [_value(values, i) for i in node.inputs])

    return run


def _value(values: Values, v: Variable) -> Any:
    if id(v) in values:
        return values[id(v)]
    if isinstance(v, Constant):
        return v.data
    raise KeyError(f"no value for graph input {v!r}")


def _mismatch(kernel: Kernel, arrays: list[np.ndarray], bad: int) -> None:
    ops = ", ".join(n.op for n in kernel.nodes)
    shapes = ", ".join(str(a.shape) for a in arrays)
    raise ValueError(
        f"{ops}: input shapes {shapes} do not match (input {bad} of shape {arrays[bad].shape}), "
        "and no input is declared broadcastable there (use a row/col type, dimshuffle('x', ...) "
        "or T.tensor(broadcastable=...) to broadcast)"
    )
