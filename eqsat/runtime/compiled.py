"""The C backend (`mode="c"`): runs a kernel plan whose fused loops are one compiled library.

The plan's steps become one generated Python function, `run(*roots)`, with each value in a
local variable: a kernel step makes its outputs with `np.empty` and calls its C function with
their pointers and shapes; a contraction calls BLAS; any other op runs its NumPy
implementation (which gives views for dimshuffle, reshape and slicing). A value is deleted
after the last step that reads it, so intermediates live no longer than needed. Generating the
glue, rather than looping over step objects and a dict of values, is what keeps the per-call
overhead of a small function near that of one cffi call.
"""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from eqsat import shapes
from eqsat.codegen import blas, c, c_rowpass, c_rows, pool
from eqsat.codegen.compile import Library, load
from eqsat.codegen.inplace import in_place
from eqsat.codegen.plan import Call, Kernel, Plan, make_plan, reads
from eqsat.codegen.rowpass import RowPass, fuse_row_passes
from eqsat.graph import Apply, Constant, Variable
from eqsat.ops import OPS
from eqsat.runtime.contract import address, contraction, gemm_in_place, sweep_operands
from eqsat.runtime.interp import run_node


class CThunk:
    """Evaluates `outputs` from the values of `roots` (positionally, `run(*arrays)`)."""

    def __init__(
        self,
        outputs: Sequence[Variable],
        roots: Sequence[Variable] = (),
        updates: Mapping[int, Variable] | None = None,
    ) -> None:
        """`updates`: the shared root each output that is an update replaces, by the output's
        id; a product may then write into the root's array (eqsat/codegen/inplace.py)."""
        self.outputs = list(outputs)
        self.roots = list(roots)
        known = shapes.infer(self.outputs)

        def same_shape(a: Variable, b: Variable) -> bool:
            key = known.key(a)
            return key is not None and key == known.key(b)

        t0 = time.perf_counter()
        self.plan: Plan = make_plan(self.outputs, c.fusable, same_shape)
        self.in_place: list[Call] = []
        if blas.find() is not None:
            self.plan = fuse_row_passes(self.plan)
            self.plan, self.in_place = in_place(self.plan, updates or {})
        t1 = time.perf_counter()
        self.rendered = [c.render(k) for k in self.plan.kernels]
        self.by_kernel = {id(r.kernel): r for r in self.rendered}
        passes = [c_rowpass.render(s, self.by_kernel[id(s.kernel)]) for s in self._passes]
        self.by_pass = {id(r.step): r for r in passes}
        self.segments = _segments(self.plan.steps)
        self.by_row = {
            id(s.node): c_rows.render(s.node, f"h{k}")
            for k, s in enumerate(self.plan.steps)
            if isinstance(s, Call) and s.kind == "host" and c_rows.compilable(s.node)
        }
        chained = [c_rowpass.gemv_setter(blas.find().int_type)] if passes else []
        chained += [(r.source, r.declaration) for r in [*passes, *self.by_row.values()]]
        chained += [
            c.segment(f"s{n}", [self._rendering(self.plan.steps[k]) for k in run])
            for n, run in enumerate(self.segments.values())
        ]
        self.library: Library | None = None
        self.c_source = ""
        t2 = time.perf_counter()
        if self.rendered or self.by_row:
            declarations = [r.declaration for r in self.rendered] + [d for _, d in chained]
            declarations.append(pool.SETTER)
            self.c_source = c.source(self.rendered, [s for s, _ in chained])
            t2 = time.perf_counter()
            self.library = load(self.c_source, "\n".join(declarations))
            if passes:
                found, ffi = blas.find(), self.library.ffi
                pointers = [ffi.cast("void *", found.functions[f]) for f in ("dgemv", "sgemv")]
                self.library.lib.eq_set_gemv(*pointers)
            pool.drive_blas()  # (before any call: BLAS's own threads then never start spinning)
            self.library.lib.eq_set_pool(self.library.ffi.cast("void *", pool.address() or 0))
        t3 = time.perf_counter()
        self._generate()
        # Stage times for eqsat.explain; whether compile hit the cache is self.library.cache_hit.
        self.timings = {
            "plan": t1 - t0, "codegen": t2 - t1 + time.perf_counter() - t3, "compile": t3 - t2
        }  # fmt: skip

    def _rendering(self, step: Kernel | RowPass) -> Any:
        return self.by_kernel[id(step)] if isinstance(step, Kernel) else self.by_pass[id(step)]

    @property
    def _passes(self) -> list[RowPass]:
        return [s for s in self.plan.steps if isinstance(s, RowPass)]

    def _generate(self) -> None:
        self.recycle = _Recycler()
        self.source, self.run = _Generator(self).function()
        self._timed: Callable | None = None
        if any(not isinstance(s, Kernel) for s in self.plan.steps):
            # Kernels never raise floating-point warnings; NumPy in the other steps must not
            # either (IEEE results, as the kernels give).
            self.run = _quietly(self.run)

    def __call__(self, roots: dict[int, np.ndarray]) -> list[np.ndarray]:
        """Outputs from root values by variable id (the reference backend's interface)."""
        missing = [v for v in _free_inputs(self.plan) if id(v) not in roots]
        if missing:
            raise KeyError(f"no value for graph input {missing[0]!r}")
        if not self.roots:
            self.roots = _free_inputs(self.plan)
            self._generate()
        return self.run(*[roots.get(id(v)) for v in self.roots])

    def profile(
        self, *arrays: np.ndarray
    ) -> tuple[list[np.ndarray], list[tuple[list[int], float]]]:
        """`run(*arrays)` once more, timing each C call and host step: the outputs, and per call
        the plan steps it ran (several for a segment) with its seconds (for eqsat.explain)."""
        if self._timed is None:
            self._timed = _Generator(self, timed=True).function()[1]
        ticks: list[tuple[list[int], float]] = []
        last = [time.perf_counter()]

        def tick(run: list[int]) -> None:
            now = time.perf_counter()
            ticks.append((run, now - last[0]))
            last[0] = now

        with np.errstate(all="ignore"):
            outputs = self._timed(tick, *arrays)
        return outputs, ticks


def _segments(steps: list) -> dict[int, list[int]]:
    """Runs of compiled steps (kernels, row passes) in a row, by the position of their first:
    each run is one C call (a function whose compiled steps follow each other makes one). A
    lone kernel is called directly, not as a run. A row pass starts a new run where its glue
    reads (its matrix, its vector) a value made earlier in the run: that value exists only
    after the call."""
    runs: dict[int, list[int]] = {}
    run: list[int] = []
    made: set[int] = set()

    def close() -> None:
        if len(run) > 1 or (run and isinstance(steps[run[0]], RowPass)):
            runs[run[0]] = list(run)
        run.clear()
        made.clear()

    for k, step in enumerate(steps):
        if isinstance(step, RowPass) and any(id(v) in made for v in step.glue_reads):
            close()
        if isinstance(step, Kernel | RowPass):
            run.append(k)
            made.update(id(v) for v in step.outputs)
        else:
            close()
    close()
    return runs


def _quietly(run: Callable) -> Callable:
    def quiet(*arrays: np.ndarray) -> list:
        with np.errstate(all="ignore"):
            return run(*arrays)

    return quiet


def _free_inputs(plan: Plan) -> list[Variable]:
    seen: dict[int, Variable] = {}
    for step in plan.steps:
        for v in reads(step):
            if v.owner is None and not isinstance(v, Constant):
                seen.setdefault(id(v), v)
    for o in plan.outputs:
        if o.owner is None and not isinstance(o, Constant):
            seen.setdefault(id(o), o)
    return list(seen.values())


class _Generator:
    """Writes `run(*roots)` for a thunk's plan, and the namespace it runs in."""

    def __init__(self, thunk: CThunk, timed: bool = False) -> None:
        self.thunk, self.timed = thunk, timed
        self.names: dict[int, str] = {}
        self.fresh: set[int] = set()  # values this run allocated: contiguous, owned
        self.env: dict[str, Any] = {
            "empty": np.empty, "mismatch": _mismatch, "address": address, "run_node": run_node,
            "recycle": thunk.recycle,
        }  # fmt: skip
        if thunk.library is not None:
            ffi = thunk.library.ffi
            self.env.update(new=ffi.new, fb=_from_buffer(ffi), ffi=ffi)
        self.lines: list[str] = []
        self.temporaries: list[str] = []
        self.in_place: dict[int, int] = {}  # products writing into their root: step id -> k
        self.returned = {id(o) for o in thunk.plan.outputs}

    def name(self, v: Variable) -> str:
        if id(v) not in self.names:
            if isinstance(v, Constant):
                self.names[id(v)] = self.bind(f"c{len(self.names)}", v.data)
            else:
                self.names[id(v)] = f"v{len(self.names)}"
        return self.names[id(v)]

    def bind(self, name: str, value: Any) -> str:
        self.env[name] = value
        return name

    def function(self) -> tuple[str, Callable]:
        thunk = self.thunk
        params = ["tick"] * self.timed + [self.name(v) for v in thunk.roots]
        steps, last_use = thunk.plan.steps, thunk.plan.last_use
        k = 0
        while k < len(steps):
            if thunk.in_place and steps[k] is thunk.in_place[0]:
                self.check_in_place(k)
            run = thunk.segments.get(k, [k])
            if k in thunk.segments:
                self.segment(run)
            elif isinstance(steps[k], Kernel):
                self.kernel(k)
            else:
                self.call(steps[k], k)
            if self.timed:
                self.lines.append(f"tick({run})")
            dead = [v for j in run for v in last_use[j]]
            if dead:
                self.lines.append(f"del {', '.join(self.names[id(v)] for v in dead)}")
            k = run[-1] + 1
        outs, seen = [], set()
        thunk.fresh = []  # per output: allocated by this run, not repeated
        for o in thunk.plan.outputs:
            outs.append(self.name(o))
            thunk.fresh.append(id(o) in self.fresh and id(o) not in seen)
            seen.add(id(o))
        self.lines.append(f"return [{', '.join(outs)}]")
        body = "\n".join("    " + line for line in self.lines)
        source = f"def run({', '.join(params)}):\n{body}\n"
        exec(compile(source, "<eqsat c thunk>", "exec"), self.env)  # noqa: S102
        return source, self.env["run"]

    def pointer(self, v: Variable) -> str:
        n = self.name(v)
        if id(v) in self.fresh or (isinstance(v, Constant) and v.data.flags.c_contiguous):
            return f"fb({n})"
        return _any_pointer(n)

    def prepare(self, kernel: Kernel) -> tuple[list[str], list[str], list[str]]:
        """Lines computing a kernel's iteration shape and allocating its outputs; returns the
        expressions of its pointers, of its shape words (m), and the names it reads."""
        r = self.thunk.by_kernel[id(kernel)]
        red, k = kernel.reduce, kernel.name
        reads = [self.name(v) for v in r.inputs]
        dims = [f"{reads[s[0]]}.shape[{s[1]}]" if s else "1" for s in r.shape_from]
        shape = [f"n{k}_{d}" for d in range(kernel.ndim)]
        line = self.lines.append
        if dims:
            line(f"{', '.join(shape)}, = {', '.join(dims)},")
        if red is not None and red.op in ("max", "min") and red.p["axis"]:
            zero = " or ".join(f"n{k}_{d} == 0" for d in red.p["axis"])
            axes = self.bind(f"axes_{kernel.name}", red.p["axis"])
            line(f"if {zero}: mismatch.empty({red.op!r}, ({', '.join(shape)},), {axes})")
        outs = []
        for o in kernel.outputs:
            out_shape = r.output_shape(o, tuple(shape))
            dtype = self.bind(f"dt_{o.dtype}", np.dtype(o.dtype))
            dims_text = "".join(f"{s}, " for s in out_shape)
            if id(o) in self.returned and o.ndim > 0:  # (a 0-d one is never RECYCLE_BYTES)
                slot = self.thunk.recycle.slot(o)
                line(f"{self.name(o)} = recycle({slot}, ({dims_text}), {dtype})")
            else:
                line(f"{self.name(o)} = empty(({dims_text}), {dtype})")
            self.fresh.add(id(o))
            outs.append(self.name(o))
        pointers = [self.pointer(v) for v in r.inputs] + [f"fb({o})" for o in outs]
        meta = [*shape] + [f"*{n}.shape, *{n}.strides" for n in reads + outs] if r.meta else []
        return pointers, meta, reads

    def kernel(self, k: int) -> None:
        kernel = self.thunk.plan.steps[k]
        fn = self.bind(kernel.name, getattr(self.thunk.library.lib, kernel.name))
        pointers, meta, reads = self.prepare(kernel)
        args = pointers + ([f"new('int64_t[]', [{', '.join(meta)}])"] if meta else [])
        this = self.bind(f"K_{kernel.name}", kernel)
        self.lines.append(f"code = {fn}({', '.join(args)})")
        self.lines.append(f"if code: mismatch({this}, [{', '.join(reads)}], code - 1)")

    def segment(self, run: list[int]) -> None:
        """Compiled steps that follow each other (or a row pass alone), in one C call."""
        pointers, meta, reads = [], [], []
        for k in run:
            step = self.thunk.plan.steps[k]
            prepare = self.prepare if isinstance(step, Kernel) else self.prepare_pass
            p, m, r = prepare(step)
            pointers, meta, reads = pointers + p, meta + m, [*reads, f"[{', '.join(r)}]"]
        n = list(self.thunk.segments).index(run[0])
        pointers, meta = self.hoist(pointers, f"p{n}_"), self.hoist(meta, f"m{n}_", "*")
        fn = self.bind(f"s{n}", getattr(self.thunk.library.lib, f"s{n}"))
        kernels = self.bind(f"S_{n}", [self.thunk.plan.steps[k] for k in run])
        self.lines.append(
            f"code = {fn}(new('char *[]', [{', '.join(pointers)}]), "
            f"new('int64_t[]', [{', '.join(meta)}]))"
        )
        self.lines.append(f"if code: mismatch.segment({kernels}, [{', '.join(reads)}], code)")
        self.flush()

    def hoist(self, exprs: list[str], prefix: str, star: str = "") -> list[str]:
        """exprs with each one that repeats (the same array read by several kernels of a
        segment) computed once before the call, into a temporary."""
        seen: dict[str, str] = {}
        for e in exprs:
            if exprs.count(e) > 1 and e not in seen:
                seen[e] = f"{prefix}{len(seen)}"
                self.lines.append(f"{seen[e]} = {e}" if not star else f"{seen[e]} = ({e},)")
                self.temporaries.append(seen[e])
        return [star + seen[e] if e in seen else e for e in exprs]

    def flush(self) -> None:
        """Delete what a C call's preparation made for it alone (a row pass's operands)."""
        if self.temporaries:
            self.lines.append(f"del {', '.join(self.temporaries)}")
            self.temporaries = []

    def prepare_pass(self, rp: RowPass) -> tuple[list[str], list[str], list[str]]:
        """Lines preparing a row pass (eqsat/codegen/c_rowpass.py): its matrix and vector as
        BLAS reads them, its results with the products' added terms c copied in, its kernel's
        outputs; returns its pointers, its shape words and the names its kernel reads."""
        fwd, bwd, line = rp.forward, rp.backward, self.lines.append
        self.env["sweep"] = sweep_operands
        node = self.bind(f"N_{rp.name}", fwd.node)
        m, v, ld, inc = (f"{x}_{rp.name}" for x in ("m", "v", "ld", "inc"))
        line(f"{m}, {v} = {self.name(fwd.matrix)}, {self.name(fwd.vector)}")
        line(f"if {m}.flags.c_contiguous and {v}.flags.c_contiguous and "
             f"{m}.shape[1] == {v}.shape[0]: {ld}, {inc} = {m}.shape[1] or 1, 1")  # fmt: skip
        line(f"else: {m}, {ld}, {v}, {inc} = sweep({node}, {m}, {v})")
        results, added, added_meta = [], [], []
        for mv, length in ((fwd, f"{m}.shape[0]"), (bwd, f"{m}.shape[1]")):
            out = self.name(mv.node.out)
            dtype = self.bind(f"dt_{mv.node.out.dtype}", np.dtype(mv.node.out.dtype))
            line(f"{out} = empty(({length},), {dtype})")
            self.fresh.add(id(mv.node.out))
            results.append(f"fb({out})")
            if mv.c is not None:  # copied in C: it may be made in the same call
                c_name, at = self.name(mv.c), self.bind(f"N_{self.name(mv.node.out)}", mv.node)
                line(f"if {c_name}.shape[0] not in (1, {length}): "
                     f"mismatch.added({at}, {c_name}.shape, {length})")  # fmt: skip
                added.append(self.pointer(mv.c))
                added_meta.append(f"{c_name}.shape[0], {c_name}.strides[0]")
        pointers, meta, reads = self.prepare(rp.kernel)
        pointers = [_any_pointer(m), _any_pointer(v), results[0], *pointers, results[1], *added]
        self.temporaries += [m, v]
        return pointers, [f"*{m}.shape", ld, inc, *meta, *added_meta], reads

    def check_in_place(self, first: int) -> None:
        """Before the first product that may write into the root it updates (they end the
        plan): each one's check, which raises on bad operands before any of them writes."""
        for k, step in enumerate(self.thunk.in_place, first):
            found = gemm_in_place(step.node)
            if found is not None:
                self.in_place[id(step)] = k
                check = self.bind(f"check_in_place{k}", found[0])
                self.bind(f"in_place{k}", found[1])
                args = ", ".join(self.name(i) for i in step.node.inputs)
                self.lines.append(f"ok{k} = {check}({args})")

    def call(self, step: Call, k: int) -> None:
        node = step.node
        args = ", ".join(self.name(i) for i in node.inputs)
        out = self.name(node.out)
        fast = contraction(node) if step.kind == "blas" else None
        if fast is not None:
            fn = self.bind(f"blas{k}", fast)
            if id(step) in self.in_place:  # its array, or a new one where it can't
                fn = f"(in_place{k} if ok{k} else {fn})"
            self.lines.append(f"{out} = {fn}({args})")
            self.fresh.add(id(node.out))
            return
        if id(node) in self.thunk.by_row:
            self.row(node, out, args)
            return
        if node.op == "dimshuffle":  # (it only drops axes its type says have length 1)
            self.lines.append(f"{out} = {_dimshuffle(args, node.inputs[0].ndim, node.p)}")
            return
        if node.op in _CANNOT_FAIL:  # straight to the implementation, without run_node's checks
            fn = self.bind(f"host{k}", functools.partial(OPS[node.op].impl, **node.p))
            self.lines.append(f"{out} = {fn}({args})")
            return
        host = self.bind(f"node{k}", node)
        self.lines.append(f"{out} = run_node({host}, [{args}])")

    def row(self, node: Apply, out: str, args: str) -> None:
        """A host op with a C rendering (eqsat/codegen/c_rows.py). Empty arrays, and errors (a
        label out of range), go to the NumPy implementation, which gives the reference's
        result or raises its error."""
        r = self.thunk.by_row[id(node)]
        fn = self.bind(r.name, getattr(self.thunk.library.lib, r.name))
        host = self.bind(f"node_{r.name}", node)
        dtype = self.bind(f"dt_{node.out.dtype}", np.dtype(node.out.dtype))
        x, line = self.name(node.inputs[0]), self.lines.append
        if node.op == "one_hot":
            classes = self.name(node.inputs[1])
            shape, meta = f"({x}.shape[0], int({classes}))", f"*{out}.shape, {x}.strides[0]"
        else:
            shape, meta = f"{x}.shape", f"*{x}.shape, *{x}.strides, *{out}.strides"
        line(f"if {x}.size == 0 or min({shape}) <= 0: {out} = run_node({host}, [{args}])")
        line("else:")
        line(f"    {out} = empty({shape}, {dtype})")
        line(f"    if {fn}({self.pointer(node.inputs[0])}, fb({out}), "
             f"new('int64_t[]', [{meta}])): {out} = run_node({host}, [{args}])")  # fmt: skip
        self.fresh.add(id(node.out))


class _Recycler:
    """A kernel's returned arrays of RECYCLE_BYTES or more that the caller has let go of, given
    to the same kernel on the next call: a new array's pages fault in on first write, which in
    a loop of 1e7 elements cost a third of its time (625 page faults a call). An array anyone
    still refers to (a result kept, a view of it, a shared variable's value) is left alone."""

    def __init__(self) -> None:
        self.slots: list[np.ndarray | None] = []
        self.by_var: dict[int, int] = {}

    def slot(self, v: Variable) -> int:
        if id(v) not in self.by_var:
            self.by_var[id(v)] = len(self.slots)
            self.slots.append(None)
        return self.by_var[id(v)]

    def __call__(self, k: int, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        old = self.slots[k]
        # three references: the slot, `old` and getrefcount's argument
        if old is not None and sys.getrefcount(old) == 3 and old.shape == shape:
            return old  # (its dtype is the output's: only this slot's kernel fills it)
        new = np.empty(shape, dtype)
        self.slots[k] = new if new.nbytes >= RECYCLE_BYTES else None
        return new


RECYCLE_BYTES = 1 << 20


def _any_pointer(name: str) -> str:
    """The glue's expression for the data pointer of an array of any layout."""
    return f"(fb({name}) if {name}.flags.c_contiguous else address(ffi, {name}))"


def _dimshuffle(x: str, ndim: int, p: dict) -> str:
    """A dimshuffle as a NumPy view expression: transpose the kept axes into place, index the
    dropped ones (length 1, by type) with 0 and the new ones with None (a fifth of the time of
    the op's general implementation)."""
    order = p["new_order"]
    kept = [i for i in order if i != "x"]
    dropped = [i for i in range(ndim) if i not in kept]
    axes = kept + dropped
    text = x if axes == list(range(ndim)) else f"{x}.transpose({tuple(axes)})"
    index = ["None" if i == "x" else ":" for i in order] + ["0"] * len(dropped)
    # (the trailing ... keeps a 0-d result an array: a[0, 0] would be a NumPy scalar)
    return text if index == [":"] * ndim else f"{text}[{', '.join(index)}, ...]"


def _from_buffer(ffi: Any) -> Callable[[np.ndarray], Any]:
    """ffi.from_buffer without its Python wrapper (a third of a small call's overhead)."""
    backend = getattr(ffi, "_backend", None)
    if backend is None or not hasattr(backend, "from_buffer"):
        return ffi.from_buffer
    return functools.partial(backend.from_buffer, ffi.typeof("char[]"))


# Ops whose NumPy implementation cannot fail on inputs of their types and returns their dtype.
_CANNOT_FAIL = ("shape_i", "shape")


class _Mismatch:
    """The errors a kernel step raises: a shape that does not fit, an empty max or min."""

    def __call__(self, kernel: Kernel, arrays: list[np.ndarray], bad: int) -> None:
        ops = ", ".join(n.op for n in kernel.computed)
        shapes = ", ".join(str(a.shape) for a in arrays)
        raise ValueError(
            f"{ops}: input shapes {shapes} do not match (input {bad} of shape "
            f"{arrays[bad].shape}), and no input is declared broadcastable there (use a row/col "
            "type, dimshuffle('x', ...) or T.tensor(broadcastable=...) to broadcast)"
        )

    def segment(self, steps: list, arrays: list[list[np.ndarray]], code: int) -> None:
        n = (code >> 16) - 1
        self.step(steps[n], arrays[n], code & 0xFFFF)

    def step(self, step: Kernel | RowPass, arrays: list[np.ndarray], code: int) -> None:
        """The error of a kernel's or a row pass's nonzero code (a row pass reports its
        kernel's inputs)."""
        if isinstance(step, RowPass):
            if code == c_rowpass.NO_MEMORY:
                raise MemoryError(f"no memory for the buffers of row pass {step.name}")
            step = step.kernel
        self(step, arrays, code - 1)

    @staticmethod
    def added(node: Apply, shape: tuple, length: int) -> None:
        raise ValueError(
            f"{node.op}: the added term of shape {shape} does not fit the product's length "
            f"{length} (it must have that length, or 1 to broadcast)"
        )

    @staticmethod
    def empty(op: str, shape: tuple, axes: tuple) -> None:
        raise ValueError(
            f"{op}: zero-size array to a reduction with no identity "
            f"(input of shape {shape}, axis {axes})"
        )


_mismatch = _Mismatch()
