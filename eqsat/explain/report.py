"""The explain report: every section of schema "eqsat.explain/1" collected from a compiled
function, in the issue's order (function, input graph, saturation, rules, extracted graph,
kernels, timings, run).

A `Report` is a plain dict of JSON values with three views: `str(report)` (text, see text.py),
`to_json()` and `to_html(path)`. The schema is eqsat/explain/schema.json; docs/explain.md says
what each field means.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from eqsat.codegen.plan import Kernel
from eqsat.config import config
from eqsat.explain.inputs import all_shapes, random_inputs
from eqsat.extract import graph_cost, op_cost, type_numel
from eqsat.graph import Constant, Variable, toposort
from eqsat.printing import debug_ids, debugprint

SCHEMA = "eqsat.explain/1"
# Host steps that give views of their input (plan.py): no data moves.
VIEW_OPS = ("dimshuffle", "reshape", "subtensor")
SHAPE_OPS = ("shape", "shape_i")  # read an array's shape, not its data
OPTIMIZER_STAGES = ("insert", "saturate", "freeze", "pop", "extract")


def schema() -> dict:
    """The JSON Schema (draft 2020-12) a report's `to_json()` follows."""
    from importlib.resources import files

    return json.loads(files("eqsat.explain").joinpath("schema.json").read_text("utf-8"))


class Report:
    """What eqsat did to one compiled function; `data` follows schema eqsat.explain/1."""

    def __init__(self, data: dict) -> None:
        self.data = data

    def to_dict(self) -> dict:
        """A copy of the report as plain JSON values."""
        return copy.deepcopy(self.data)

    def to_json(self, indent: int | None = 2) -> str:
        """The report as JSON text (keys in the schema's order)."""
        return json.dumps(self.data, indent=indent, ensure_ascii=False)

    def to_html(self, path: str) -> None:
        """Write the report as one self-contained HTML page, graphs drawn."""
        from eqsat.explain import html

        html.write(self.to_dict(), path)

    def __str__(self) -> str:
        from eqsat.explain import text

        return text.render(self.data)

    def __repr__(self) -> str:
        fn = self.data["function"]
        return f"<eqsat.explain Report: function {fn['index']} {fn['name']!r} ({fn['backend']})>"


def _targets(fg: Any) -> list[Variable]:
    return list(fg.outputs) + [v for _, v in fg.updates]


def _target_names(fg: Any) -> list[str]:
    outs = [f"output {k}" + (f" '{v.name}'" if v.name else "") for k, v in enumerate(fg.outputs)]
    return outs + [f"update {k.name or k!r}" for k, _ in fg.updates]


def _size_hints(fg: Any) -> dict[int, float]:
    """Element counts of the shared values, by id: the optimizer's cost model knows them."""
    return {id(v): float(v.get_value(borrow=True).size) for v in fg.shared}


def _labels(outputs: Sequence[Variable]) -> dict[int, str]:
    """A name for each value of the graph as its debugprint shows it: a leaf by its name or
    value, any other value by its debugprint id ("[id B]"), assigned in debugprint's order."""
    labels: dict[int, str] = {}
    ids = debug_ids()
    stack = list(reversed(outputs))
    while stack:
        v = stack.pop()
        if id(v) in labels:
            continue
        s = next(ids)
        if isinstance(v, Constant):
            labels[id(v)] = repr(v)
        elif v.owner is None:
            labels[id(v)] = v.name or f"[id {s}]"
        else:
            labels[id(v)] = f"[id {s}]"
            stack.extend(reversed(v.owner.inputs))
    return labels


def _dot(outputs: list[Variable], names: list[str], groups: dict[int, str], title: str) -> str:
    from eqsat.explain.dot import graph_dot

    return graph_dot(outputs, names, groups or None, title)


def _graph(outputs: list[Variable], names: list[str], cost: float, groups: dict, title: str):
    return {
        "debugprint": debugprint(outputs, file="str") if outputs else "",
        "ops": len(toposort(outputs)),
        "cost": cost,
        "dot": _dot(outputs, names, groups, title),
    }


def _function(f: Any, index: int) -> dict:
    src = f.source_graph
    return {
        "name": f.name,
        "index": index,
        "backend": f.mode,
        "inputs": [{"name": i.name, "type": str(i.variable.type)} for i in f.ins],
        "outputs": [{"name": v.name, "type": str(v.type)} for v in src.outputs],
        "updates": [{"shared": k.name or repr(k), "type": str(k.type)} for k, _ in src.updates],
    }


def _saturation(record: Any) -> dict | None:
    if record is None:
        return None
    steps = [
        {
            "phase": s.phase,
            "iteration": k,
            "eclasses": getattr(s, "eclasses", None),
            "enodes": s.enodes,
            "matches": s.matches,
            "seconds": s.seconds,
        }
        for k, s in enumerate(record.steps, 1)
    ]
    return {
        "steps": steps,
        "stopped_by": record.stopped_by,
        "eclasses": record.eclasses,
        "enodes": record.enodes,
        "cached": record.cached,
        "fallback": record.fallback,
    }


def _rules(f: Any, before: list[Variable], after: list[Variable], budget_s: float) -> dict:
    record = f.optimization
    if record is None:
        return {"fired": [], "used": []}
    fired = sorted(record.rules_fired.items(), key=lambda kv: (-kv[1], kv[0]))
    from eqsat.explain.derive import derive

    rewrites = derive(
        before, after, record.rules_fired, fast_math=getattr(f, "fast_math", False),
        budget_s=budget_s,
    )  # fmt: skip
    used = [
        {
            "output": r.output,
            "before": r.before,
            "after": r.after,
            "rules": list(r.rules),
            "derived": r.derived,
        }
        for r in rewrites
    ]
    return {"fired": [{"rule": r, "matches": n} for r, n in fired], "used": used}


def _cost_by_op(outputs: list[Variable], hints: dict[int, float], total: float) -> list[dict]:
    """Per op, its nodes' count and summed cost under the optimizer's per-op model. The rows
    add up to the graph's cost; where the optimizer's own total differs (it prices unstable
    forms left in a graph, and sizes it derived in the e-graph), an "(other)" row holds the
    difference."""

    def size(v: Variable) -> float:
        return hints.get(id(v), type_numel(v.type))

    rows: dict[str, list] = {}
    for node in toposort(outputs):
        row = rows.setdefault(node.op, [0, 0.0])
        row[0] += 1
        row[1] += op_cost(node.op, size(node.out), [size(i) for i in node.inputs])
    out = [{"op": op, "count": n, "cost": c} for op, (n, c) in rows.items()]
    out.sort(key=lambda r: (-r["cost"], r["op"]))
    rest = total - sum(r["cost"] for r in out)
    if abs(rest) > 1e-6 * max(1.0, abs(total)):
        out.append({"op": "(other)", "count": 0, "cost": rest})
    return out


def _cost(record: Any, which: str, outputs: list[Variable], hints: dict[int, float]) -> float:
    """The optimizer's figure where it priced the graph, else the plain per-op sum."""
    value = getattr(record, which, 0.0) if record is not None else 0.0
    return value if value > 0 else graph_cost(outputs, hints)


def _nbytes(v: Variable, shapes: dict[int, tuple] | None) -> int | None:
    if shapes is None or id(v) not in shapes:
        return None
    return int(np.prod(shapes[id(v)], dtype=np.int64)) * np.dtype(v.dtype).itemsize


def _total(vs: Sequence[Variable], shapes: dict[int, tuple] | None) -> int | None:
    sizes = [_nbytes(v, shapes) for v in vs]
    return None if any(s is None for s in sizes) else sum(sizes)


def _reduction(kernel: Kernel) -> str | None:
    red = kernel.reduce
    if red is None:
        return None
    axes = ", ".join(str(a) for a in red.p.get("axis", ()))
    keep = ", keepdims" if red.p.get("keepdims") else ""
    return f"{red.op} over axes {axes}{keep}"


def _kernels(
    f: Any,
    labels: dict[int, str],
    shapes: dict[int, tuple] | None,
    seconds: dict[int, float],
    source: bool,
) -> list[dict]:
    if f.mode != "c":  # the NumPy interpreter runs node by node: there is no kernel plan
        return []
    thunk = f.thunk
    out = []
    for k, step in enumerate(thunk.plan.steps):
        if isinstance(step, Kernel):
            rendered = thunk.by_kernel[id(step)]
            row = {
                "name": step.name,
                "kind": "kernel",
                "ops": [n.op for n in step.computed],
                "inputs": [labels.get(id(v), "?") for v in step.inputs],
                "outputs": [labels.get(id(v), "?") for v in step.outputs],
                "reduction": _reduction(step),
                "bytes_read": _total(rendered.inputs, shapes),
                "bytes_written": _total(step.outputs, shapes),
                "source": rendered.source if source else None,
            }
        elif hasattr(step, "node"):  # Call: "blas" or "host", one node
            node = step.node
            view = node.op in VIEW_OPS
            row = {
                "name": node.op,
                "kind": getattr(step, "kind", type(step).__name__.lower()),
                "ops": [node.op],
                "inputs": [labels.get(id(v), "?") for v in node.inputs],
                "outputs": [labels.get(id(node.out), "?")],
                "reduction": None,
                "bytes_read": 0 if view or node.op in SHAPE_OPS else _total(node.inputs, shapes),
                "bytes_written": 0 if view else _total([node.out], shapes),
                "source": None,
            }
        else:  # another step kind (a row pass, ...): what it says of itself
            inner = [thunk.by_kernel[id(x)] for x in getattr(step, "kernels", [])]
            reads, writes = getattr(step, "inputs", None), getattr(step, "outputs", None)
            row = {
                "name": str(getattr(step, "name", type(step).__name__)),
                "kind": str(getattr(step, "kind", type(step).__name__.lower())),
                "ops": [n.op for n in getattr(step, "nodes", [])],
                "inputs": [labels.get(id(v), "?") for v in reads or []],
                "outputs": [labels.get(id(v), "?") for v in writes or []],
                "reduction": None,
                "bytes_read": None if reads is None else _total(reads, shapes),
                "bytes_written": None if writes is None else _total(writes, shapes),
                "source": "\n".join(r.source for r in inner) if source and inner else None,
            }
        row["seconds"] = seconds.get(k)
        out.append(row)
    return out


def _timings(f: Any) -> list[dict]:
    rows = []
    record = f.optimization
    if record is not None and record.cached:
        seconds = f.timings.get("optimize", 0.0)
        rows.append({"stage": "optimize", "seconds": seconds, "cache": "hit"})
    elif record is not None and record.times:
        cache = "miss" if config.opt_cache else None
        rows += [
            {"stage": s, "seconds": record.times[s], "cache": cache}
            for s in OPTIMIZER_STAGES
            if s in record.times
        ]
    if f.mode == "c":
        t = f.thunk.timings
        library = f.thunk.library
        hit = None if library is None else "hit" if library.cache_hit else "miss"
        rows += [
            {"stage": "plan", "seconds": t["plan"], "cache": None},
            {"stage": "codegen", "seconds": t["codegen"], "cache": None},
            {"stage": "compile", "seconds": t["compile"], "cache": hit},
        ]
    return rows


def _values(f: Any, given: Sequence[Any]) -> list[np.ndarray]:
    try:
        return f._bind(tuple(given), {})
    except TypeError as e:
        raise TypeError(f"explain: the inputs given to run the function do not fit it: {e}") from e


def _timed_run(f: Any, arrays: list[np.ndarray]) -> tuple[float, dict[int, float]]:
    """One call's seconds, and per plan step the seconds of the C call or host step it starts
    (a run of kernels compiled as one C call is timed once, on its first kernel)."""
    run = f.thunk.run
    run(*arrays)  # warm: first-touch of memory, lazily made glue
    per_step: dict[int, float] = {}
    if f.mode == "c":
        f.thunk.profile(*arrays)  # the first builds the timed glue and warms it
        _, ticks = f.thunk.profile(*arrays)
        per_step = {steps[0]: s for steps, s in ticks if steps}
    with np.errstate(all="ignore"):
        start = time.perf_counter()
        run(*arrays)
        total = time.perf_counter() - start
    return total, per_step


def build(
    f: Any,
    *,
    source: bool = False,
    run: bool | Sequence[Any] = False,
    derive_budget_s: float = 10.0,
    index: int = 0,
    inputs: Sequence[Any] | None = None,
) -> Report:
    """The report on `f` (see eqsat.explain). `inputs`: values the caller saw `f` called with
    (the CLI records a script's); they give exact byte counts, and `run=True` runs on them."""
    if not hasattr(f, "maker") or not hasattr(f, "source_graph"):
        raise TypeError(f"explain() takes a compiled eqsat function, got {type(f).__name__}")
    if f.source_graph is None:
        raise ValueError(
            "explain() needs the graph as written, which an unpickled function does not keep; "
            "explain the function where it was compiled"
        )
    src, fg = f.source_graph, f.maker.fgraph
    before, after = _targets(src), _targets(fg)
    hints = _size_hints(fg)
    record = f.optimization

    given = run if not isinstance(run, bool) else inputs
    values = _values(f, given) if given is not None else None
    origin = "script" if values is not None else "random"
    if values is None and (run is True or all(None not in i.variable.type.shape for i in f.ins)):
        values = random_inputs(f)  # static shapes: byte counts are exact on any values
    # (copies: the compiled step may write an update into its shared variable's own array)
    arrays = None if values is None else values + [v.get_value() for v in fg.shared]
    shapes, run_section, seconds = None, None, {}
    try:
        if arrays is not None:
            shapes = all_shapes(after, fg.inputs + fg.shared, arrays)
        if run is not False and arrays is not None:
            total, seconds = _timed_run(f, arrays)
            run_section = {"seconds": total, "inputs": origin}
    except Exception as e:
        if run is False:  # values made up only to size the arrays: sizes stay unknown
            shapes = None
        else:
            raise RuntimeError(
                f"explain: running the function on {origin} inputs failed: {e}"
            ) from e

    groups = {}
    if f.mode == "c":
        # a box per fused step: a kernel, or a step that holds one (a row pass, its products too)
        steps = [s for s in f.thunk.plan.steps if hasattr(s, "nodes")]
        groups = {id(n): s.name for s in steps for n in s.nodes}
    names = _target_names(src)
    cost_after = _cost(record, "cost_after", after, hints)
    extracted = _graph(after, names, cost_after, groups, "extracted graph")
    extracted["cost_by_op"] = _cost_by_op(after, hints, cost_after)
    data = {
        "schema": SCHEMA,
        "function": _function(f, index),
        "input_graph": _graph(
            before, names, _cost(record, "cost_before", before, hints), {}, "input graph"
        ),
        "saturation": _saturation(record),
        "rules": _rules(f, before, after, derive_budget_s),
        "extracted_graph": extracted,
        "kernels": _kernels(f, _labels(after), shapes, seconds, source),
        "timings": _timings(f),
        "run": run_section,
    }
    return Report(data)
