"""A row pass (eqsat/codegen/rowpass.py) as one C function.

`int rpN(char **p, const int64_t *m)`: p holds the matrix M, the forward vector v, the forward
result s, the kernel's pointers (inputs, then outputs, as `kN` takes them) and the backward
result; m holds n and k (M's shape), M's row pitch and v's step in elements, then the kernel's
own shape words for the whole of s, then for each product with an added term c, c's pointer
(after the others) and its length and byte stride (the caller has checked the length is 1 or the
product's); c is copied into its result first. For each block of rows: gemv gives the block of
s, the kernel runs on the block (its pointers moved to the block's first row, its lengths cut to
the block's), and a second gemv adds the block's share of M^T u. A reduction in the kernel is
kept per block and combined in block order. Past `POOL_MIN` matrix elements, the rows are cut
into chunks that the pool's threads (eqsat/codegen/pool.py) and the caller take as they come;
each chunk keeps its backward product and its reduction to itself, combined in chunk order at
the end. Returns 0, 1 + the index of the kernel input whose length does not fit, or NO_MEMORY when a
buffer could not be allocated (the caller raises).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from eqsat.codegen import blas
from eqsat.codegen.c import Rendered
from eqsat.codegen.c_ops import C_TYPES, REDUCE, accumulator, cast, identity
from eqsat.codegen.rowpass import RowPass

# Rows per block: a block's share of M stays in the core's cache between the two products.
BLOCK_BYTES = 1 << 19
NO_MEMORY = 0xFFFF  # (a segment keeps a step's code in its low 16 bits)
# Matrix elements from which the rows go out in chunks to the pool's threads (14 us of gemv
# on one core here), at most CHUNKS of them, of at least MIN_CHUNK rows.
POOL_MIN = 1 << 17
CHUNKS = 8
MIN_CHUNK = 16


def gemv_setter(int_type: str) -> tuple[str, str]:
    """(source, declaration) of the BLAS gemv pointers row passes call, set once after load."""
    lines = ["#include <stdlib.h>"]
    for t in ("double", "float"):
        lines.append(
            f"typedef void (*eq_gemv_{t}_t)(int, int, {int_type}, {int_type}, {t}, const {t} *, "
            f"{int_type}, const {t} *, {int_type}, {t}, {t} *, {int_type});\n"
            f"static eq_gemv_{t}_t eq_gemv_{t};"
        )
    decl = "void eq_set_gemv(void *d, void *s)"
    body = " { eq_gemv_double = (eq_gemv_double_t)d; eq_gemv_float = (eq_gemv_float_t)s; }\n"
    return "\n".join(lines) + "\n" + decl + body, decl + ";"


def _slots(r: Rendered) -> list[tuple[int, int] | None]:
    """Per kernel pointer, the (shape word, stride word) of the axis it steps along the rows in
    the kernel's m, or None for one it does not step along (a broadcast scalar, a reduction)."""
    red = r.kernel.reduce
    out = []
    n_in = len(r.operands)
    for a, at in zip(r.operands, r.offsets[:n_in], strict=True):
        rank, axis = a.source.ndim, a.axes[0]
        out.append(None if axis is None else (at + axis, at + rank + axis))
    for o, at in zip(r.kernel.outputs, r.offsets[n_in:], strict=True):
        stepped = red is None or o is not red.out
        out.append((at, at + 1) if stepped and o.ndim == 1 else None)
    return out


@dataclass
class RenderedPass:
    """What the runtime needs to call one row pass (alone or inside a segment)."""

    step: RowPass
    source: str
    declaration: str
    pointers: int  # M, v, s, the kernel's, the backward result, the added terms
    meta: int  # n, k, pitch, step, the kernel's shape words, the added terms' length and stride

    def call(self, at_p: int, at_m: int) -> str:
        return f"{self.step.name}(p + {at_p}, m + {at_m})"


def render(rp: RowPass, r: Rendered) -> RenderedPass:
    """The pass's C function; r is its kernel, rendered."""
    kernel, fwd, bwd = rp.kernel, rp.forward, rp.backward
    t = C_TYPES[fwd.node.out.dtype]
    size = np.dtype(fwd.node.out.dtype).itemsize
    gemv, blas_i = f"eq_gemv_{t}", "int64_t" if blas.find() is None else blas.find().int_type
    slots = _slots(r)
    n_in = len(r.inputs)
    u = n_in + kernel.outputs.index(bwd.vector)
    red = kernel.reduce
    k_red = n_in + kernel.outputs.index(red.out) if red is not None else None
    red_acc = accumulator(red.op, red.out.dtype) if red is not None else "float64"
    acc_t = C_TYPES[red_acc]
    beta_f = repr(fwd.beta) if fwd.c is not None else "0.0"
    beta_b = repr(bwd.beta) if bwd.c is not None else "0.0"
    call = f"{kernel.name}({', '.join(f'pb[{j}]' for j in range(r.pointers))}, mb)"
    w = []
    w.append("const int64_t n = m[0], k = m[1], ldm = m[2], incv = m[3];")
    w.append("const int64_t *mk = m + 4;")
    w.append(f"const {t} *M = (const {t} *)p[0], *v = (const {t} *)p[1];")
    w.append(f"{t} *s = ({t} *)p[2], *out = ({t} *)p[{3 + r.pointers}];")
    # The kernel's inputs must each have n rows (or be broadcast): checked here, on the whole.
    for j in range(n_in):
        if slots[j] is not None:
            w.append(f"if (mk[{slots[j][0]}] != n) return {j + 1};")
    at_p, at_m = 4 + r.pointers, 4 + r.meta
    for mv, target, length in ((fwd, "s", "n"), (bwd, "out", "k")):
        if mv.c is None:
            continue
        w.append(f"{{ const {t} *c = (const {t} *)p[{at_p}]; const int64_t cn = m[{at_m}];")
        w.append(f"  const int64_t cs = cn == 1 ? 0 : m[{at_m + 1}] / {size};")
        w.append(f"  for (int64_t i = 0; i < {length}; i++) {target}[i] = c[i * cs]; }}")
        at_p, at_m = at_p + 1, at_m + 2
    w.append("if (n == 0 || k == 0) {  /* nothing to sweep: BLAS would skip the beta terms */")
    keep = f"{beta_f} * s[i]" if fwd.c is not None else "0"  # (s is not set without c)
    w.append(f"    for (int64_t i = 0; i < n; i++) s[i] = {keep};")
    w.append(f"    int code = {kernel.name}({', '.join(f'p[{3 + j}]' for j in range(r.pointers))}"
             ", mk);")  # fmt: skip
    w.append("    if (code) return code;")
    keep = f"{beta_b} * out[j]" if bwd.c is not None else "0"
    w.append(f"    for (int64_t j = 0; j < k; j++) out[j] = {keep};")
    w.append("    return 0;")
    w.append("}")
    w.append(f"int64_t rows = {BLOCK_BYTES} / (k * {size});")
    w.append("if (rows < 8) rows = 8;")
    # Chunks of rows, set by n alone (not by how many threads take them), so the sums are
    # the same on any number of cores: the backward product of chunk 0 goes to out, the
    # others' to their own share, added in chunk order afterwards.
    w.append(f"int64_t chunks = n * k >= {POOL_MIN} ? (n + {MIN_CHUNK - 1}) / {MIN_CHUNK} : 1;")
    w.append(f"if (chunks > {CHUNKS}) chunks = {CHUNKS};")
    w.append("const int64_t chunk = (n + chunks - 1) / chunks;")
    w.append("chunks = (n + chunk - 1) / chunk;")
    w.append(f"{t} *shares = chunks > 1 ? ({t} *)malloc((size_t)((chunks - 1) * k) * {size}) : 0;")
    w.append(f"if (chunks > 1 && !shares) return {NO_MEMORY};")
    w.append(f"int codes[{CHUNKS}];")
    w.append(f"{acc_t} parts[{CHUNKS}];")
    w.append(f"struct {rp.name}_job job = {{p, m, chunk, rows, out, shares, codes, parts}};")
    w.append(f"eq_run_chunks({rp.name}_chunk, &job, chunks);")
    w.append("int code = 0;")
    w.append("for (int64_t c = 0; c < chunks && !code; c++) code = codes[c];")
    w.append("for (int64_t c = 1; c < chunks && !code; c++)")
    w.append("    for (int64_t j = 0; j < k; j++) out[j] += shares[(c - 1) * k + j];")
    w.append("free(shares);")
    w.append("if (code) return code;")
    if red is not None:
        out_t = C_TYPES[red.out.dtype]
        w.append(f"{acc_t} total = parts[0];")
        combine = REDUCE[red.op]("total", "parts[c]")
        w.append(f"for (int64_t c = 1; c < chunks; c++) {{ {combine} }}")
        w.append(f"*({out_t} *)p[{3 + k_red}] = {cast('total', red_acc, red.out.dtype)};")
    w.append("return 0;")
    # One chunk: its rows in blocks, each a gemv, the kernel and a gemv.
    v = []
    v.append(f"const struct {rp.name}_job *job = (const struct {rp.name}_job *)arg;")
    v.append("char **p = job->p;")
    v.append("const int64_t *m = job->m, *mk = m + 4;")
    v.append("const int64_t n = m[0], k = m[1], ldm = m[2], incv = m[3], rows = job->rows;")
    v.append(f"const {t} *M = (const {t} *)p[0], *v = (const {t} *)p[1];")
    v.append(f"{t} *s = ({t} *)p[2];")
    v.append("const int64_t first = c * job->chunk;")
    v.append("const int64_t last = n - first < job->chunk ? n : first + job->chunk;")
    v.append(f"{t} *acc = c == 0 ? job->out : job->shares + (c - 1) * k;")
    v.append(f"int64_t mb[{r.meta}];")
    v.append(f"for (int j = 0; j < {r.meta}; j++) mb[j] = mk[j];")
    v.append(f"char *pb[{r.pointers}];")
    v.append("int code = 0;")
    if red is not None:
        v.append(f"{C_TYPES[red.out.dtype]} part;")
        v.append(f"{acc_t} total = {identity(red.op, red_acc)};")
    v.append("for (int64_t lo = first; lo < last && !code; lo += rows) {")
    v.append("    const int64_t b = last - lo < rows ? last - lo : rows;")
    v.append(f"    const {t} *Mb = M + lo * ldm;")
    v.append(
        f"    {gemv}({blas.ROW_MAJOR}, {blas.NO_TRANS}, ({blas_i})b, ({blas_i})k, "
        f"{fwd.alpha!r}, Mb, ({blas_i})ldm, v, ({blas_i})incv, {beta_f}, s + lo, 1);"
    )
    v.append("    mb[0] = b;")
    for j, slot in enumerate(slots):
        if slot is None:
            v.append(f"    pb[{j}] = p[{3 + j}];")
        else:
            v.append(f"    pb[{j}] = p[{3 + j}] + lo * mk[{slot[1]}]; mb[{slot[0]}] = b;")
    if red is not None:
        v.append(f"    pb[{k_red}] = (char *)&part;")
    v.append(f"    code = {call};")
    if red is not None:
        v.append("    " + REDUCE[red.op]("total", cast("part", red.out.dtype, red_acc)))
    inc_u = f"mk[{slots[u][1]}] / {size}"
    first_beta = f"(c == 0 ? {beta_b} : 0.0)"
    v.append(f"    {gemv}({blas.ROW_MAJOR}, {blas.TRANS}, ({blas_i})b, ({blas_i})k, "
             f"{bwd.alpha!r}, Mb, ({blas_i})ldm, (const {t} *)pb[{u}], ({blas_i})({inc_u}), "
             f"lo == first ? {first_beta} : 1.0, acc, 1);")  # fmt: skip
    v.append("}")
    v.append("job->codes[c] = code;")
    if red is not None:
        v.append("job->parts[c] = total;")
    job = (
        f"struct {rp.name}_job {{ char **p; const int64_t *m; int64_t chunk, rows; {t} *out, "
        f"*shares; int *codes; {acc_t} *parts; }};\n"
    )
    chunk_fn = f"static void {rp.name}_chunk(void *arg, int64_t c) {{\n"
    chunk_fn += "\n".join("    " + line for line in v) + "\n}\n"
    signature = f"int {rp.name}(char **p, const int64_t *m)"
    body = "\n".join("    " + line for line in w)
    source = f"{job}{chunk_fn}{signature} {{\n{body}\n}}\n"
    return RenderedPass(rp, source, signature + ";", at_p, at_m)
