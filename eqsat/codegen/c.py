"""Render a kernel plan's fused loops as C functions, all of one function in one source.

Each kernel is `int kN(char *p0, ..., char *pK, const int64_t *m)`: the data pointers of its
array operands (inputs, then outputs) and `m`, the iteration shape followed by each operand's
shape and byte strides. It returns 0, or 1 + the index of an input whose shape does not fit the
iteration space (the caller raises). Broadcasting is by zero strides: an axis the type declares
broadcastable is never stepped along; a view (dimshuffle) input maps its own axes onto the
loop's. When every operand is contiguous (or a scalar) the loop is one flat loop; otherwise
nested strided loops, written twice: with the innermost loop's step a constant where every
operand steps one element along it, and with every stride a variable. Innermost loops are `omp
simd` (vectorized, with glibc's vector math). Past `PARALLEL` elements (`PARALLEL_CHEAP` for
arithmetic alone) the loops go in chunks to the worker pool (eqsat/codegen/pool.py): a flat loop
in pieces of its length, nested loops in runs of their outer loop. A reduction over every axis
keeps one partial per chunk; one that keeps the innermost axis (a column sum) gives each chunk
its rows and a row of partials; the partials are combined in chunk order. Chunks depend on the
shape alone, so results depend on neither timing nor the number of threads. Other reductions
give each output element to one chunk.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from eqsat.codegen import pool
from eqsat.codegen.c_ops import (
    C_TYPES,
    EXPR,
    PRELUDE,
    REDUCE,
    accumulator,
    cast,
    identity,
    literal,
)
from eqsat.codegen.plan import REDUCTIONS, Kernel
from eqsat.graph import Apply, Constant, Variable

# Elements below which one thread runs a loop: waking another costs more than it saves. A loop
# of arithmetic alone is bound by memory and gains less from a second core than one with
# transcendental math: x*y + z took 58.2 us on one thread and 41.3 on the pool at 2**17
# elements, 40.6 and 38.3 at 70,000, the same at 40,000. (It was 2**18 while OpenMP split
# column sums by columns and OpenBLAS's threads spun: an MLP's tanh-gradient kernel then ran
# 2x slower on 2 threads.)
PARALLEL = 1 << 15
PARALLEL_CHEAP = 1 << 16
MATH = frozenset({
    "exp", "log", "log1p", "expm1", "log2", "log10", "sin", "cos", "tan", "tanh", "erf",
    "sigmoid", "softplus", "pow", "sqrt", "true_div",
})  # fmt: skip


def _threshold(kernel: Kernel) -> int:
    """Elements from which a kernel's loop is shared among threads."""
    return PARALLEL if any(n.op in MATH for n in kernel.computed) else PARALLEL_CHEAP


def fusable(node: Apply) -> bool:
    """Whether a C kernel can compute `node`."""
    dtypes = [i.dtype for i in node.inputs] + [node.out.dtype]
    if any(d not in C_TYPES for d in dtypes):
        return False
    if node.op in REDUCTIONS:
        return True
    row = EXPR.get(node.op)
    return row is not None and node.out.dtype in row[1]


def inlined(v: Variable) -> bool:
    """Constants of one element become C literals rather than operands."""
    return isinstance(v, Constant) and v.data.size == 1 and v.dtype in C_TYPES


@dataclass
class Rendered:
    """What the runtime needs to call one kernel."""

    kernel: Kernel
    source: str
    declaration: str
    operands: list[_Operand]  # array operands read, in pointer order
    offsets: list[int]  # per pointer (operands, then outputs): where its shape words start in m
    shape_from: list[tuple[int, int] | None]  # per iteration axis: (input, axis) giving its length
    meta: int  # length of its `m` (0: a 0-d kernel takes none)

    @property
    def inputs(self) -> list[Variable]:
        """The arrays passed for the operands (a view's source), in pointer order."""
        return [a.source for a in self.operands]

    @property
    def pointers(self) -> int:
        return len(self.inputs) + len(self.kernel.outputs)

    def call(self, at_p: int, at_m: int) -> str:
        """The C call of this kernel on p[at_p:] and m + at_m, inside a segment."""
        args = [f"p[{at_p + k}]" for k in range(self.pointers)]
        args += [f"m + {at_m}"] if self.meta else []
        return f"{self.kernel.name}({', '.join(args)})"

    def output_shape(self, out: Variable, shape: tuple[int, ...]) -> tuple[int, ...]:
        red = self.kernel.reduce
        if red is None or out is not red.out:
            return shape
        axes, keep = red.p["axis"], red.p["keepdims"]
        if keep:
            return tuple(1 if d in axes else n for d, n in enumerate(shape))
        return tuple(n for d, n in enumerate(shape) if d not in axes)


class _Writer:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.depth = 1
        self.before: list[str] = []  # C functions the kernel calls, written ahead of it
        self.locals: list[str] = []  # declarations of the shape and strides, read from m

    def __call__(self, line: str) -> None:
        self.lines.append("    " * self.depth + line)

    def open(self, line: str) -> None:
        self(line + " {")
        self.depth += 1

    def close(self, n: int = 1) -> None:
        for _ in range(n):
            self.depth -= 1
            self("}")


@dataclass
class _Operand:
    """An array a kernel reads: `var` as the loop sees it, `source` the array passed (they
    differ for a view), and per iteration axis the source axis it steps along (None: the
    value is broadcast along that axis, stride 0)."""

    var: Variable
    source: Variable
    axes: list[int | None]

    @property
    def scalar(self) -> bool:
        return all(a is None for a in self.axes)


def _operand(kernel: Kernel, v: Variable) -> _Operand:
    view = kernel.views.get(id(v))
    if view is None:
        assert v.ndim == kernel.ndim, (kernel, v)
        return _Operand(v, v, [None if bc else d for d, bc in enumerate(v.broadcastable)])
    src = view.inputs[0]
    axes = [None if j == "x" or src.broadcastable[j] else j for j in view.p["new_order"]]
    return _Operand(v, src, axes)


def render(kernel: Kernel) -> Rendered:
    """The C function of one kernel."""
    arrays = [_operand(kernel, v) for v in kernel.inputs if not inlined(v)]
    nd = kernel.ndim
    ranks = [a.source.ndim for a in arrays] + [v.ndim for v in kernel.outputs]
    offsets, at = [], nd
    for r in ranks:
        offsets.append(at)
        at += 2 * r
    params = ", ".join(f"char *p{k}" for k in range(len(ranks)))
    w = _Writer()
    # The shape and strides as locals: the kernel's, and those of any chunk function it hands
    # to the pool (which reads them from the same m).
    if nd > 0:
        w.locals.append(f"const int64_t {', '.join(f'n{d} = m[{d}]' for d in range(nd))};")
    for k, a in enumerate(arrays):
        for j, bc in enumerate(a.source.broadcastable):
            if not bc:
                w.locals.append(f"const int64_t s{k}_{j} = m[{offsets[k] + a.source.ndim + j}];")
    for k, v in enumerate(kernel.outputs, len(arrays)):
        for d in range(v.ndim):
            w.locals.append(f"const int64_t s{k}_{d} = m[{offsets[k] + v.ndim + d}];")
    total = " * ".join(f"n{d}" for d in range(nd)) or "1"
    w.locals.append(f"const int64_t total = {total};")
    for line in w.locals:
        w(line)
    for k, a in enumerate(arrays):  # inputs must fit the iteration space
        for j, bc in enumerate(a.source.broadcastable):
            want = "1" if bc else f"n{a.axes.index(j)}"
            w(f"if (m[{offsets[k] + j}] != {want}) return {k + 1};")
    w("if (total == 0) { " + _empty_fill(kernel, arrays) + "return 0; }")
    _loops(w, kernel, arrays)
    w("return 0;")
    meta = "const int64_t *m" if nd > 0 else ""  # a 0-d kernel needs no shapes
    signature = f"int {kernel.name}({', '.join(p for p in (params, meta) if p) or 'void'})"
    source = "".join(w.before) + signature + " {\n" + "\n".join(w.lines) + "\n}\n"
    shape_from = []
    for d in range(nd):
        src = next((k for k, a in enumerate(arrays) if a.axes[d] is not None), None)
        shape_from.append(None if src is None else (src, arrays[src].axes[d]))
    meta_len = at if nd > 0 else 0
    return Rendered(kernel, source, signature + ";", arrays, offsets, shape_from, meta_len)


def _empty_fill(kernel: Kernel, arrays: list[_Operand]) -> str:
    """An empty iteration space still gives a reduction's identity to each output element."""
    red = kernel.reduce
    if red is None:
        return ""
    k = len(arrays) + kernel.outputs.index(red.out)
    t = C_TYPES[red.out.dtype]
    n_out = _output_size(kernel, red)
    return (
        f"for (int64_t j = 0; j < {n_out}; j++) "
        f"(({t}*)p{k})[j] = {identity(red.op, red.out.dtype)}; "
    )


def _output_size(kernel: Kernel, red: Apply) -> str:
    kept = [d for d in range(kernel.ndim) if d not in red.p["axis"]]
    return " * ".join(f"n{d}" for d in kept) or "1"


def _body(w: _Writer, kernel: Kernel, arrays: list[_Operand], load) -> dict[int, str]:
    """Emit the elementwise nodes; returns the C name of every value in the loop body."""
    names: dict[int, str] = {}
    for v in kernel.inputs:
        if inlined(v):
            names[id(v)] = literal(v.data.reshape(()).item(), v.dtype)
    for k, a in enumerate(arrays):
        t = C_TYPES[a.var.dtype]
        w(f"const {t} a{k} = {load(k, a)};")
        names[id(a.var)] = f"a{k}"
    for j, node in enumerate(kernel.computed):
        if node.op in REDUCTIONS:
            continue
        row, _ = EXPR[node.op]
        args = [names[id(i)] for i in node.inputs]
        expr = row(node.out.dtype, [i.dtype for i in node.inputs], args)
        w(f"const {C_TYPES[node.out.dtype]} v{j} = {expr};")
        names[id(node.out)] = f"v{j}"
    return names


def _store(w: _Writer, kernel: Kernel, arrays: list[_Operand], names: dict, index) -> None:
    red = kernel.reduce
    for j, out in enumerate(kernel.outputs):
        if red is not None and out is red.out:
            continue
        k = len(arrays) + j
        w(f"*({C_TYPES[out.dtype]}*)(p{k} + {index(k, out)}) = {names[id(out)]};")


def _loops(w: _Writer, kernel: Kernel, arrays: list[_Operand]) -> None:
    nd, red = kernel.ndim, kernel.reduce
    full = red is not None and nd > 0 and set(red.p["axis"]) == set(range(nd))
    flat_ok = all(a.scalar or a.axes == list(_plain_axes(kernel)) for a in arrays) and (
        red is None or full
    )
    if flat_ok and nd > 0:
        contiguous = _contiguous_test(kernel, arrays)
        w.open(f"if ({contiguous})")
        _flat(w, kernel, arrays)
        w("return 0;")
        w.close()
    _versioned(w, kernel, arrays, full)


def _innermost(kernel: Kernel, full: bool) -> int:
    """The axis of a nested loop nest's innermost loop (see _nested)."""
    nd, red = kernel.ndim, kernel.reduce
    reduced = set(red.p["axis"]) if red is not None else set()
    order = [d for d in range(nd) if d not in reduced] + sorted(reduced)
    if red is not None and not full and nd - 1 not in reduced:
        return nd - 1  # (_rows_of_partials)
    return order[-1]


def _versioned(w: _Writer, kernel: Kernel, arrays: list[_Operand], full: bool) -> None:
    """The nested loops twice: first for operands that all step one element at a time along
    the innermost loop (the usual case: C-contiguous rows, a broadcast row or column), with that
    step a constant the compiler vectorizes with plain loads, else with every stride a variable
    (which it can only gather: a 256x512 column sum ran at 2 cycles an element)."""
    if kernel.ndim == 0:
        _nested(w, kernel, arrays, full, None)
        return
    d = _innermost(kernel, full)
    tests = []
    for k, a in enumerate(arrays):
        if a.axes[d] is not None:
            tests.append(f"s{k}_{a.axes[d]} == {np.dtype(a.source.dtype).itemsize}")
    for k, out in enumerate(kernel.outputs, len(arrays)):
        if kernel.reduce is None or out is not kernel.reduce.out:
            tests.append(f"s{k}_{d} == {np.dtype(out.dtype).itemsize}")
    w.open(f"if ({' && '.join(tests) or '1'})")
    _nested(w, kernel, arrays, full, d)
    w("return 0;")
    w.close()
    _nested(w, kernel, arrays, full, None)


def _plain_axes(kernel: Kernel) -> list[int | None]:
    return [None if bc else d for d, bc in enumerate(kernel.broadcastable)]


def _contiguous_test(kernel: Kernel, arrays: list[_Operand]) -> str:
    """C condition: every non-scalar input is C-contiguous (outputs are allocated so)."""
    tests = ["1"]
    for k, a in enumerate(arrays):
        if a.scalar:
            continue
        step = str(np.dtype(a.source.dtype).itemsize)
        for d in reversed(range(kernel.ndim)):
            if a.axes[d] is not None:  # (a broadcast axis has length 1)
                tests.append(f"(n{d} == 1 || s{k}_{d} == {step})")
                step = f"{step} * n{d}"
    return " && ".join(tests)


def _pooled(w: _Writer, kernel: Kernel, arrays: list[_Operand], load, index) -> None:
    """The flat loop in chunks of eq_chunk elements, which the pool's threads and the caller
    take as they come (eqsat/codegen/pool.py): unlike an OpenMP team, the caller never waits
    for a sleeping thread to wake."""
    threshold = _threshold(kernel)

    def nest(v: _Writer) -> None:
        v(f"const int64_t chunk = eq_chunk(total, {threshold}), lo = c * chunk;")
        v("const int64_t hi = total - lo < chunk ? total : lo + chunk;")
        v("#pragma omp simd")
        v.open("for (int64_t i = lo; i < hi; i++)")
        _store(v, kernel, arrays, _body(v, kernel, arrays, load), index)
        v.close()

    name = _chunk_function(w, kernel, arrays, "flat", nest)
    w(f"const int64_t chunk = eq_chunk(total, {threshold});")
    w(f"struct {name}_job job = {{{{{_pointers(kernel, arrays)}}}, m, "
      "(total + chunk - 1) / chunk, 0};")  # fmt: skip
    w(f"eq_run_chunks({name}, &job, job.chunks);")


def _flat(w: _Writer, kernel: Kernel, arrays: list[_Operand]) -> None:
    red = kernel.reduce

    def load(k: int, a: _Operand) -> str:
        return f"((const {C_TYPES[a.source.dtype]}*)p{k})[{'0' if a.scalar else 'i'}]"

    def index(k: int, out: Variable) -> str:
        return f"i * {np.dtype(out.dtype).itemsize}"

    if red is None:
        _pooled(w, kernel, arrays, load, index)
        return

    def loops(w2: _Writer, accumulate) -> None:
        w2(_simd(red))
        w2.open("for (int64_t i = lo; i < hi; i++)")
        names = _body(w2, kernel, arrays, load)
        _store(w2, kernel, arrays, names, index)
        accumulate(names)
        w2.close()

    _full_reduction(w, kernel, red, "total", loops, arrays)


def _simd(red: Apply | None) -> str:
    """The pragma of an innermost loop: vectorized, a sum or product as lanes of partials
    (OpenMP allows that reordering; -ffast-math, which would also break nan, is not needed)."""
    if red is None:
        return "#pragma omp simd"
    if red.op in ("sum", "prod"):
        return f"#pragma omp simd reduction({'+' if red.op == 'sum' else '*'}:acc)"
    return ""  # max and min propagate nan: kept in order


def _full_reduction(w, kernel, red, extent: str, loops, arrays: list[_Operand]) -> None:
    """A reduction over every axis: the first loop's `extent` goes to the worker pool in chunks,
    each reduced into a partial of its own, and the partials are combined in chunk order (the
    chunks depend on the shape alone, so the result depends on neither timing nor the number of
    threads). `loops(w, accumulate)` writes the loop nest over [lo, hi) of that extent."""
    acc_t = accumulator(red.op, red.out.dtype)
    ct = C_TYPES[acc_t]
    k_out = len(arrays) + kernel.outputs.index(red.out)

    def nest(v: _Writer) -> None:
        v(f"const int64_t lo = {extent} * c / job->chunks,")
        v(f"              hi = {extent} * (c + 1) / job->chunks;")
        v(f"{ct} acc = {identity(red.op, acc_t)};")
        loops(v, lambda names: _accumulate(v, red, names, acc_t))
        v(f"(({ct} *)job->parts)[c] = acc;")

    name = _chunk_function(w, kernel, arrays, "all", nest)
    w(f"{ct} part[{pool.MOST_CHUNKS}];")
    w(f"const int64_t chunks = eq_rows(total, {_threshold(kernel)}, {extent});")
    w(f"struct {name}_job job = {{{{{_pointers(kernel, arrays)}}}, m, chunks, part}};")
    w(f"eq_run_chunks({name}, &job, chunks);")
    w(f"{ct} acc = part[0];")
    combine = REDUCE[red.op]("acc", "part[c]")
    w(f"for (int64_t c = 1; c < chunks; c++) {{ {combine} }}")
    w(f"*({C_TYPES[red.out.dtype]}*)p{k_out} = {cast('acc', acc_t, red.out.dtype)};")


def _accumulate(w: _Writer, red: Apply, names: dict, acc_t: str) -> None:
    (x,) = red.inputs
    w(REDUCE[red.op]("acc", cast(names[id(x)], x.dtype, acc_t)))


def _nested(
    w: _Writer, kernel: Kernel, arrays: list[_Operand], full: bool, unit: int | None
) -> None:
    """Loops over every axis with strides: outer axes first; a reduction's kept axes outside
    its reduced ones, so each output element is one thread's. Along axis `unit` (if any), every
    operand that steps steps by one element."""
    nd, red = kernel.ndim, kernel.reduce
    reduced = set(red.p["axis"]) if red is not None else set()
    order = [d for d in range(nd) if d not in reduced] + sorted(reduced)
    operands = [a.var for a in arrays] + kernel.outputs

    def stride(k: int, d: int) -> str | None:
        if k < len(arrays):
            j, step = arrays[k].axes[d], np.dtype(arrays[k].source.dtype).itemsize
            name = None if j is None else f"s{k}_{j}"
        else:
            step = np.dtype(operands[k].dtype).itemsize
            name = None if red is not None and operands[k] is red.out else f"s{k}_{d}"
        return str(step) if name is not None and d == unit else name

    def offset(k: int) -> str:
        terms = [f"i{d} * {s}" for d in range(nd) if (s := stride(k, d))]
        return " + ".join(terms) or "0"

    def load(k: int, a: _Operand) -> str:
        return f"*(const {C_TYPES[a.source.dtype]}*)(p{k} + {offset(k)})"

    def index(k: int, out: Variable) -> str:
        return offset(k)

    def head(d: int) -> str:
        return f"for (int64_t i{d} = 0; i{d} < n{d}; i{d}++)"

    if red is not None and full:

        def loops(w2: _Writer, accumulate) -> None:
            first, *rest = order
            w2(_simd(red) if not rest else "")
            w2.open(f"for (int64_t i{first} = lo; i{first} < hi; i{first}++)")
            for n, d in enumerate(rest):
                w2(_simd(red) if n == len(rest) - 1 else "")
                w2.open(head(d))
            names = _body(w2, kernel, arrays, load)
            _store(w2, kernel, arrays, names, index)
            accumulate(names)
            w2.close(nd)

        _full_reduction(w, kernel, red, f"n{order[0]}", loops, arrays)
        return

    kept = [d for d in order if d not in reduced]
    if red is not None and nd - 1 in kept:
        _rows_of_partials(w, kernel, arrays, reduced, load, index)
        return
    first = kept[0] if kept else None  # (none kept: a 0-d kernel)

    def nest(v: _Writer) -> None:
        """The loops, those along `first` over this chunk's share."""
        if first is not None:
            v(f"const int64_t lo = n{first} * c / job->chunks,")
            v(f"              hi = n{first} * (c + 1) / job->chunks;")
        for d in kept:
            if red is None and d == order[-1]:
                v("#pragma omp simd")
            v.open(f"for (int64_t i{d} = lo; i{d} < hi; i{d}++)" if d == first else head(d))
        if red is not None:
            v(f"{C_TYPES[acc_t]} acc = {identity(red.op, acc_t)};")
        for d in order[len(kept) :]:
            if d == order[-1]:
                v(_simd(red))
            v.open(head(d))
        names = _body(v, kernel, arrays, load)
        _store(v, kernel, arrays, names, index)
        if red is not None:
            _accumulate(v, red, names, acc_t)
            v.close(len(order) - len(kept))
            k_out = len(arrays) + kernel.outputs.index(red.out)
            out_offset = _reduced_offset(kernel, red, k_out)
            v(f"*({C_TYPES[red.out.dtype]}*)(p{k_out} + {out_offset}) = "
              f"{cast('acc', acc_t, red.out.dtype)};")  # fmt: skip
            v.close(len(kept))
        else:
            v.close(nd)

    acc_t = accumulator(red.op, red.out.dtype) if red is not None else None
    if first is None:
        nest(w)
        return
    name = _chunk_function(w, kernel, arrays, "outer", nest)
    w(f"const int64_t chunks = eq_rows(total, {_threshold(kernel)}, n{first});")
    w(f"struct {name}_job job = {{{{{_pointers(kernel, arrays)}}}, m, chunks, 0}};")
    w(f"eq_run_chunks({name}, &job, chunks);")


def _pointers(kernel: Kernel, arrays: list[_Operand]) -> str:
    return ", ".join(f"p{k}" for k in range(len(arrays) + len(kernel.outputs)))


def _chunk_function(w: _Writer, kernel: Kernel, arrays: list[_Operand], tag: str, nest) -> str:
    """Write ahead of the kernel `static void NAME(void *arg, int64_t c)`, one chunk of its loops
    for the worker pool, and the struct of its job (the kernel's pointers, its m, the number of
    chunks and a scratch buffer); `nest(v)` writes the loops, with the kernel's shape and strides
    as locals. Returns NAME."""
    name = f"{kernel.name}_{tag}{len(w.before)}"
    n = len(arrays) + len(kernel.outputs)
    v = _Writer()
    v(f"const struct {name}_job *job = (const struct {name}_job *)arg;")
    v(f"char *{', *'.join(f'p{k} = job->p[{k}]' for k in range(n))};")
    v("const int64_t *m = job->m;")
    for line in w.locals:
        v(line)
    nest(v)
    w.before.append(
        f"struct {name}_job {{ char *p[{n}]; const int64_t *m; int64_t chunks; void *parts; }};\n"
        f"static void {name}(void *arg, int64_t c) {{\n" + "\n".join(v.lines) + "\n}\n"
    )
    return name


CHUNK = 512  # elements of a row of partials: on the stack, and in L1 beside the rows read


def _rows_of_partials(w: _Writer, kernel: Kernel, arrays, reduced: set[int], load, index) -> None:
    """A reduction that keeps the innermost axis (a column sum): the reduced axes loop outside
    it and a piece of that axis accumulates in a row of partials, so the inner loop runs along
    memory and vectorizes. Where no other axis is kept, the rows (the first reduced axis) go in
    chunks to the worker pool (eqsat/codegen/pool.py), each chunk its own row of partials, added
    in chunk order at the end: the chunks depend on the shape alone, so the result does not
    depend on the number of threads. (Chunks of columns instead, as OpenMP shared it before,
    ran a 2048x512 tanh-and-sum at a third of one thread's speed: every chunk walks every page.)
    """
    nd, red = kernel.ndim, kernel.reduce
    last = nd - 1
    outer = [d for d in range(last) if d not in reduced]
    split = min(reduced, default=None)
    acc_t = accumulator(red.op, red.out.dtype)
    ct = C_TYPES[acc_t]
    (x,) = red.inputs
    k_out = len(arrays) + kernel.outputs.index(red.out)
    out = _reduced_offset(kernel, red, k_out)

    def nest(v: _Writer) -> None:
        if split is not None:
            v(f"const int64_t first = eq_cut(n{split}, c, job->chunks),")
            v(f"              end = eq_cut(n{split}, c + 1, job->chunks);")
        v(f"{ct} acc[{CHUNK}], *parts = ({ct} *)job->parts;")
        v.open(f"for (int64_t lo = 0; lo < n{last}; lo += {CHUNK})")
        v(f"const int64_t hi = n{last} - lo < {CHUNK} ? n{last} : lo + {CHUNK};")
        for d in outer:
            v.open(f"for (int64_t i{d} = 0; i{d} < n{d}; i{d}++)")
        v(f"for (int64_t j = 0; j < hi - lo; j++) acc[j] = {identity(red.op, acc_t)};")
        for d in sorted(reduced):
            lo, hi = ("first", "end") if d == split else ("0", f"n{d}")
            v.open(f"for (int64_t i{d} = {lo}; i{d} < {hi}; i{d}++)")
        v("#pragma omp simd")
        v.open(f"for (int64_t i{last} = lo; i{last} < hi; i{last}++)")
        names = _body(v, kernel, arrays, load)
        _store(v, kernel, arrays, names, index)
        v(REDUCE[red.op](f"acc[i{last} - lo]", cast(names[id(x)], x.dtype, acc_t)))
        v.close(1 + len(reduced))
        v.open("if (parts)")  # (outer is empty: one row of partials per chunk)
        v(f"for (int64_t i{last} = lo; i{last} < hi; i{last}++) "
          f"parts[c * n{last} + i{last}] = acc[i{last} - lo];")  # fmt: skip
        v.close()
        v.open("else")
        v.open(f"for (int64_t i{last} = lo; i{last} < hi; i{last}++)")
        v(f"*({C_TYPES[red.out.dtype]}*)(p{k_out} + {out}) = "
          f"{cast(f'acc[i{last} - lo]', acc_t, red.out.dtype)};")  # fmt: skip
        v.close(2 + len(outer) + 1)

    name = _chunk_function(w, kernel, arrays, "rows", nest)
    pointers = _pointers(kernel, arrays)
    if outer or split is None:  # (each output element needs all of the reduced axes: one chunk)
        w(f"struct {name}_job job = {{{{{pointers}}}, m, 1, 0}};")
        w(f"{name}(&job, 0);")
        return
    w(f"int64_t chunks = eq_parts(total, {_threshold(kernel)}, n{split});")
    w(f"{ct} *parts = chunks > 1 ? ({ct} *)malloc(sizeof({ct}) * chunks * n{last}) : 0;")
    w("if (!parts) chunks = 1;  /* (no memory: one chunk, written straight out) */")
    w(f"struct {name}_job job = {{{{{pointers}}}, m, chunks, parts}};")
    w(f"eq_run_chunks({name}, &job, chunks);")
    w.open("if (parts)")
    w.open(f"for (int64_t i{last} = 0; i{last} < n{last}; i{last}++)")
    w(f"{ct} acc = parts[i{last}];")
    combine = REDUCE[red.op]("acc", f"parts[c * n{last} + i{last}]")
    w(f"for (int64_t c = 1; c < chunks; c++) {{ {combine} }}")
    w(f"*({C_TYPES[red.out.dtype]}*)(p{k_out} + {out}) = {cast('acc', acc_t, red.out.dtype)};")
    w.close(2)
    w("free(parts);")


def _reduced_offset(kernel: Kernel, red: Apply, k: int) -> str:
    axes, keep = red.p["axis"], red.p["keepdims"]
    kept = [d for d in range(kernel.ndim) if d not in axes]
    if keep:
        terms = [f"i{d} * s{k}_{d}" for d in kept]
    else:
        terms = [f"i{d} * s{k}_{j}" for j, d in enumerate(kept)]
    return " + ".join(terms) or "0"


def segment(name: str, steps: list) -> tuple[str, str]:
    """(source, declaration) of `int name(char **p, const int64_t *m)`, which runs steps that
    follow each other (kernels, row passes: each says how it is called) in one call: their
    pointers and shapes one after the other in p and m. It returns 0, or (step's position + 1)
    << 16 | that step's code."""
    lines, at_p, at_m = [], 0, 0
    for n, r in enumerate(steps):
        lines.append(f"    code = {r.call(at_p, at_m)};")
        lines.append(f"    if (code) return ({n + 1} << 16) | code;")
        at_p, at_m = at_p + r.pointers, at_m + r.meta
    signature = f"int {name}(char **p, const int64_t *m)"
    body = "\n".join(["    int code;", *lines, "    (void)m;", "    return 0;"])
    return f"{signature} {{\n{body}\n}}\n", signature + ";"


def source(kernels: list[Rendered], segments: list[str] = ()) -> str:
    """One C translation unit for all kernels of a function (and the segments that chain
    them)."""
    body = "\n".join([r.source for r in kernels] + list(segments))
    return PRELUDE + "\n" + pool.PRELUDE + "\n" + body
