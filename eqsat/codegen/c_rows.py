"""Host steps with a C rendering: softmax and log-softmax along an axis of a matrix, and one-hot
rows of a vector of labels.

They stay steps of their own in the plan (each needs a whole row before it can write any of
it), but run as C functions rather than through NumPy: between the large products of a
training step, their handful of NumPy calls on cold caches cost several times their time alone.
Each is `int hN(char *x, char *out, const int64_t *m)`. The arithmetic is the reference's
(eqsat/ops_math.py, ops_structure.py), step for step: the row's maximum (nan wins), exp of the
differences, their sum, then a division (softmax) or a subtraction of the sum's log
(log-softmax); only the order of the sum differs. Past `PARALLEL` elements the rows go to the
worker pool (eqsat/codegen/pool.py) in chunks, which depend on the shape alone.
"""

from __future__ import annotations

from dataclasses import dataclass

from eqsat.codegen.c import PARALLEL
from eqsat.codegen.c_ops import C_TYPES, FLOATS, cast
from eqsat.graph import Apply

ROW_OPS = ("softmax", "log_softmax")
# Label dtypes whose every value compares exactly as an int64_t.
LABELS = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32")


def compilable(node: Apply) -> bool:
    """Whether `node` has a C rendering here (else it runs through NumPy)."""
    if node.op in ROW_OPS:
        (x,) = node.inputs
        return x.ndim == 2 and x.dtype in FLOATS and node.out.dtype == x.dtype
    if node.op == "one_hot":
        labels = node.inputs[0]
        return labels.ndim == 1 and labels.dtype in LABELS and node.out.dtype in C_TYPES
    return False


@dataclass
class RenderedRow:
    node: Apply
    name: str
    source: str
    declaration: str


def render(node: Apply, name: str) -> RenderedRow:
    """The C function of a compilable host node."""
    signature = f"int {name}(char *x, char *out, const int64_t *m)"
    if node.op == "one_hot":
        body, before = _one_hot(node), ""
    else:
        before = _rows_chunk(node, name)
        body = [
            f"const int64_t chunks = eq_rows(m[0] * m[1], {PARALLEL}, m[{1 - node.p['axis']}]);",
            f"struct {name}_job job = {{x, out, m, chunks}};",
            f"eq_run_chunks({name}_rows, &job, chunks);",
            "return 0;",
        ]
    source = before + f"{signature} {{\n" + "\n".join("    " + line for line in body) + "\n}\n"
    return RenderedRow(node, name, source, signature + ";")


def _rows_chunk(node: Apply, name: str) -> str:
    """The job struct and the function of one chunk of rows, which the worker pool runs
    (eqsat/codegen/pool.py); the chunks depend on the shape alone. m: the shape, x's byte
    strides, out's byte strides."""
    lines = [
        f"const struct {name}_job *job = (const struct {name}_job *)arg;",
        "char *x = job->x, *out = job->out;",
        "const int64_t *m = job->m;",
        *_rows(node),
    ]
    return (
        f"struct {name}_job {{ char *x, *out; const int64_t *m; int64_t chunks; }};\n"
        f"static void {name}_rows(void *arg, int64_t c) {{\n"
        + "\n".join("    " + line for line in lines)
        + "\n}\n"
    )


def _rows(node: Apply) -> list[str]:
    """Chunk c of the rows, in the chunk function."""
    axis = node.p["axis"]
    other = 1 - axis
    t = C_TYPES[node.out.dtype]
    f = "f" if node.out.dtype == "float32" else ""
    x_at = f"(*(const {t} *)(xr + i * xa))"
    out_at = f"(*({t} *)(orow + i * oa))"
    lines = [
        f"const int64_t na = m[{axis}], no = m[{other}];",
        f"const int64_t xa = m[{2 + axis}], xo = m[{2 + other}];",
        f"const int64_t oa = m[{4 + axis}], oo = m[{4 + other}];",
        "const int64_t lo = no * c / job->chunks, hi = no * (c + 1) / job->chunks;",
        "for (int64_t o = lo; o < hi; o++) {",
        "    const char *xr = x + o * xo;",
        "    char *orow = out + o * oo;",
        f"    {t} mx = -INFINITY;",
        f"    for (int64_t i = 0; i < na; i++) {{ {t} v = {x_at}; if (v > mx || v != v) mx = v; }}",
        "    double sum = 0;  /* float32 rows too: closer to NumPy's pairwise sum than a float */",
        "    #pragma omp simd reduction(+:sum)",
    ]
    if node.op == "softmax":
        lines += [
            f"    for (int64_t i = 0; i < na; i++) {{ {t} e = exp{f}({x_at} - mx); "
            f"{out_at} = e; sum += e; }}",
            f"    const {t} total = ({t})sum;",
            "    #pragma omp simd",
            f"    for (int64_t i = 0; i < na; i++) {out_at} = {out_at} / total;",
        ]
    else:
        lines += [
            f"    for (int64_t i = 0; i < na; i++) sum += exp{f}({x_at} - mx);",
            f"    const {t} ls = log{f}(({t})sum);",
            "    #pragma omp simd",
            f"    for (int64_t i = 0; i < na; i++) {out_at} = ({x_at} - mx) - ls;",
        ]
    return [*lines, "}"]


def _one_hot(node: Apply) -> list[str]:
    """m: the number of labels, of classes, the labels' byte stride; out is C-contiguous.
    Returns 1 if a label lies outside [0, classes) (the caller raises the reference's error)."""
    lt, ot = C_TYPES[node.inputs[0].dtype], C_TYPES[node.out.dtype]
    one, zero = cast("1", "int64", node.out.dtype), cast("0", "int64", node.out.dtype)
    return [
        "const int64_t n = m[0], classes = m[1], sl = m[2];",
        f"{ot} *o = ({ot} *)out;",
        "for (int64_t i = 0; i < n; i++) {",
        f"    const int64_t label = (int64_t)*(const {lt} *)(x + i * sl);",
        "    if (label < 0 || label >= classes) return 1;",
        "    for (int64_t j = 0; j < classes; j++)",
        f"        o[i * classes + j] = j == label ? {one} : {zero};",
        "}",
        "return 0;",
    ]
