"""A row pass (eqsat/codegen/rowpass.py) as one C function.

`int rpN(char **p, const int64_t *m)`: p holds the matrix M, the forward vector v, the forward
result s, the kernel's pointers (inputs, then outputs, as `kN` takes them) and the backward
result; m holds n and k (M's shape), M's row pitch and v's step in elements, then the kernel's
own shape words for the whole of s, then for each product with an added term c, c's pointer
(after the others) and its length and byte stride (the caller has checked the length is 1 or the
product's); c is copied into its result first. For each block of rows: gemv gives the block of
s, the kernel runs on the block (its pointers moved to the block's first row, its lengths cut to
the block's), and a second gemv adds the block's share of M^T u. A reduction in the kernel is
kept per block and combined in block order. Past `PARALLEL` matrix elements, each core sweeps a
share of the rows, its backward product into a buffer of its own, added in thread order at the
end. Returns 0, 1 + the index of the kernel input whose length does not fit, or NO_MEMORY when a
buffer could not be allocated (the caller raises).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from eqsat.codegen import blas
from eqsat.codegen.c import MAX_THREADS, THREAD_IDS, Rendered
from eqsat.codegen.c_ops import C_TYPES, REDUCE, accumulator, cast, identity
from eqsat.codegen.rowpass import RowPass

# Rows per block: a block's share of M stays in the core's cache between the two products.
BLOCK_BYTES = 1 << 19
NO_MEMORY = 0xFFFF  # (a segment keeps a step's code in its low 16 bits)
# Matrix elements: below this, one core sweeps (waking a second costs more than it saves).
PARALLEL = 1 << 20


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
    w.append(f"int threads = eq_threads(n * k, {PARALLEL}), used = 1, failed = 0;")
    w.append(f"if (threads > {MAX_THREADS}) threads = {MAX_THREADS};")
    # Each thread sweeps a contiguous share of the rows; the backward product of thread 0 goes
    # to out, the others' to their own buffers, added in thread order afterwards.
    w.append(f"{t} *shares[{MAX_THREADS}] = {{0}};")
    w.append(f"int codes[{MAX_THREADS}] = {{0}};")
    if red is not None:
        acc_t = accumulator(red.op, red.out.dtype)
        w.append(f"{C_TYPES[acc_t]} parts[{MAX_THREADS}];")
    w.append("#pragma omp parallel num_threads(threads)")
    w.append("{")
    w.append(f"    {THREAD_IDS}")
    w.append("    if (t == 0) used = nt;")
    w.append("    const int64_t first = n * t / nt, last = n * (t + 1) / nt;")
    w.append(f"    {t} *acc = t == 0 ? out : ({t} *)calloc(k, {size});")
    w.append("    if (!acc) { failed = 1; } else {")
    w.append("    shares[t] = acc;")
    w.append(f"    int64_t mb[{r.meta}];")
    w.append(f"    for (int j = 0; j < {r.meta}; j++) mb[j] = mk[j];")
    w.append(f"    char *pb[{r.pointers}];")
    if red is not None:
        w.append(f"    {C_TYPES[red.out.dtype]} part;")
        w.append(f"    {C_TYPES[acc_t]} total = {identity(red.op, acc_t)};")
    w.append("    for (int64_t lo = first; lo < last && !codes[t]; lo += rows) {")
    w.append("        const int64_t b = last - lo < rows ? last - lo : rows;")
    w.append(f"        const {t} *Mb = M + lo * ldm;")
    w.append(
        f"        {gemv}({blas.ROW_MAJOR}, {blas.NO_TRANS}, ({blas_i})b, ({blas_i})k, "
        f"{fwd.alpha!r}, Mb, ({blas_i})ldm, v, ({blas_i})incv, {beta_f}, s + lo, 1);"
    )
    w.append("        mb[0] = b;")
    for j, slot in enumerate(slots):
        if slot is None:
            w.append(f"        pb[{j}] = p[{3 + j}];")
        else:
            w.append(f"        pb[{j}] = p[{3 + j}] + lo * mk[{slot[1]}]; mb[{slot[0]}] = b;")
    if red is not None:
        w.append(f"        pb[{k_red}] = (char *)&part;")
    w.append(f"        codes[t] = {call};")
    if red is not None:
        w.append("        " + REDUCE[red.op]("total", cast("part", red.out.dtype, acc_t)))
    inc_u = f"mk[{slots[u][1]}] / {size}"
    first_beta = f"(t == 0 ? {beta_b} : 0.0)"
    w.append(f"        {gemv}({blas.ROW_MAJOR}, {blas.TRANS}, ({blas_i})b, ({blas_i})k, "
             f"{bwd.alpha!r}, Mb, ({blas_i})ldm, (const {t} *)pb[{u}], ({blas_i})({inc_u}), "
             f"lo == first ? {first_beta} : 1.0, acc, 1);")  # fmt: skip
    w.append("    }")
    w.append("    if (t == 0 && last == first) {  /* no rows: out is beta * c alone */")
    keep = f"{beta_b} * out[j]" if bwd.c is not None else "0"
    w.append(f"        for (int64_t j = 0; j < k; j++) out[j] = {keep};")
    w.append("    }")
    if red is not None:
        w.append("    parts[t] = total;")
    w.append("    }")
    w.append("}")
    w.append(f"int code = failed ? {NO_MEMORY} : 0;")
    w.append("for (int th = 0; th < used; th++) if (!code && codes[th]) code = codes[th];")
    w.append("for (int th = 1; th < used; th++) {")
    w.append("    if (!code) for (int64_t j = 0; j < k; j++) out[j] += shares[th][j];")
    w.append("    free(shares[th]);")
    w.append("}")
    w.append("if (code) return code;")
    if red is not None:
        out_t = C_TYPES[red.out.dtype]
        w.append(f"{C_TYPES[acc_t]} total = parts[0];")
        combine = REDUCE[red.op]("total", "parts[th]")
        w.append(f"for (int th = 1; th < used; th++) {{ {combine} }}")
        w.append(f"*({out_t} *)p[{3 + k_red}] = {cast('total', acc_t, red.out.dtype)};")
    w.append("return 0;")
    signature = f"int {rp.name}(char **p, const int64_t *m)"
    body = "\n".join("    " + line for line in w)
    source = f"{signature} {{\n{body}\n}}\n"
    return RenderedPass(rp, source, signature + ";", at_p, at_m)
