"""The explain report as text: numbered sections in the issue's order, aligned tables."""

from __future__ import annotations

from collections.abc import Sequence

# What each timing stage is, for readers who do not know the optimizer's insides.
STAGES = {
    "insert": "graph -> e-graph",
    "saturate": "saturation",
    "freeze": "e-graph snapshot",
    "pop": "e-graph release",
    "extract": "extraction -> graph",
    "optimize": "optimizer (from its cache)",
    "plan": "kernel planning",
    "codegen": "C code generation",
    "compile": "C compile and load",
}


def seconds(s: float | None) -> str:
    """A duration with a unit that keeps it short: 12.3 µs, 4.56 ms, 1.23 s."""
    if s is None:
        return "-"
    if s < 1e-3:
        return f"{s * 1e6:.1f} µs"
    if s < 1:
        return f"{s * 1e3:.2f} ms"
    return f"{s:.2f} s"


def nbytes(n: int | None) -> str:
    """A byte count in decimal units: 800 B, 2.51 MB."""
    if n is None:
        return "?"
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n} B"


def plural(n: int, what: str) -> str:
    """A count and its noun: 1 step, 2 steps."""
    return f"{n} {what}{'' if n == 1 else 's'}"


def cost(c: float) -> str:
    """A cost to four significant digits."""
    return f"{c:.4g}"


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], right: str = "") -> list[str]:
    """Lines of an aligned table, indented two spaces; columns whose index is in `right`
    (as digits) are right-aligned (numbers), the last column is never padded."""
    cells = [list(headers)] + [["-" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(r[k]) for r in cells) for k in range(len(headers))]
    lines = []
    for r in cells:
        parts = []
        for k, c in enumerate(r):
            if k == len(r) - 1 and str(k) not in right:
                parts.append(c)
            else:
                parts.append(c.rjust(widths[k]) if str(k) in right else c.ljust(widths[k]))
        lines.append("  " + "  ".join(parts).rstrip())
    return lines


def _indent(text: str) -> list[str]:
    return ["  " + line for line in text.rstrip("\n").splitlines()]


def _function(fn: dict) -> list[str]:
    rows = [("input", i["name"] or f"#{k}", i["type"]) for k, i in enumerate(fn["inputs"])]
    rows += [("output", o["name"] or f"#{k}", o["type"]) for k, o in enumerate(fn["outputs"])]
    rows += [("update", u["shared"], u["type"]) for u in fn["updates"]]
    return ["1. Function", *table(("", "name", "type"), rows), f"  backend: {fn['backend']}"]


def _saturation(sat: dict | None) -> list[str]:
    if sat is None:
        return ["3. Saturation: none (compiled with optimizer=None)"]
    head = (
        f"3. Saturation: stopped by {sat['stopped_by']}; at the end {sat['eclasses']} e-classes, "
        f"{sat['enodes']} e-nodes"
    )
    lines = [head]
    if sat["cached"]:
        lines.append(
            "  (the optimizer's result came from its cache: these are the steps that made it)"
        )
    if sat["fallback"]:
        lines.append(f"  FAILED, the input graph runs unoptimized: {sat['fallback']}")
    rows = [
        (
            s["iteration"],
            s["phase"],
            s["eclasses"],
            s["enodes"],
            s["matches"],
            seconds(s["seconds"]),
        )
        for s in sat["steps"]
    ]
    lines += table(("iteration", "phase", "e-classes", "e-nodes", "matches", "time"), rows, "02345")
    return lines


def _where(fn: dict, k: int) -> str:
    """Which output or update a rewrite is in (rewrites number outputs, then updates)."""
    n_out = len(fn["outputs"])
    return f"output {k}" if k < n_out else f"update {fn['updates'][k - n_out]['shared']}"


def _rules(rules: dict, sat: dict | None, fn: dict) -> list[str]:
    fired = rules["fired"]
    total = sum(r["matches"] for r in fired)
    lines = [f"4. Rules: {len(fired)} fired, {total} matches in all"]
    rows = [(r["rule"], r["matches"]) for r in fired]
    if len(rows) > 20:  # two columns, read down the left one first: half the lines
        half = (len(rows) + 1) // 2
        left, right = rows[:half], rows[half:] + [("", "")]
        rows = [(a, n, "", b, m) for (a, n), (b, m) in zip(left, right, strict=False)]
        lines += table(("rule", "matches", "", "rule", "matches"), rows, "14")
    elif rows:
        lines += table(("rule", "matches"), rows, "1")
    used = rules["used"]
    if sat is None:
        return lines
    lines.append("")
    if not used:
        lines.append("  The extracted graph uses no rewrite: it is the input graph.")
        return lines
    lines.append("  Rewrites the extracted graph uses (where it differs from the input graph):")
    for r in used:
        why = f"   [{', '.join(r['rules'])}]" if r["rules"] else ""
        note = "" if r["derived"] else "   (not re-derived within the budget)"
        lines.append(f"  {_where(fn, r['output'])}: {r['before']}  ⇒  {r['after']}{why}{note}")
    return lines


def _extracted(g: dict, before: dict) -> list[str]:
    change = ""
    if before["cost"] > 0:
        change = f" ({(g['cost'] - before['cost']) / before['cost']:+.1%} against the input graph)"
    lines = [f"5. Extracted graph: {plural(g['ops'], 'op')}, cost {cost(g['cost'])}{change}"]
    lines += _indent(g["debugprint"])
    lines += ["", "  Cost by op:"]
    total = g["cost"] or 1.0
    rows = [
        (r["op"], r["count"], cost(r["cost"]), f"{r['cost'] / total:.1%}") for r in g["cost_by_op"]
    ]
    lines += ["  " + line for line in table(("op", "nodes", "cost", "share"), rows, "123")]
    return lines


def _kernels(kernels: list[dict], backend: str) -> list[str]:
    if backend != "c":
        return [f"6. Kernels: none (backend {backend!r} runs the graph op by op with NumPy)"]
    fused = sum(k["kind"] == "kernel" for k in kernels)
    lines = [f"6. Kernels: {plural(len(kernels), 'step')}, {plural(fused, 'fused kernel')}"]
    rows = [
        (n, k["name"], k["kind"], nbytes(k["bytes_read"]), nbytes(k["bytes_written"]),
         seconds(k["seconds"]), ", ".join(k["ops"]))
        for n, k in enumerate(kernels)
    ]  # fmt: skip
    lines += table(("#", "step", "kind", "read", "written", "time", "ops"), rows, "0345")
    lines += ["", "  What each step reads and writes (values named as in the extracted graph):"]
    for n, k in enumerate(kernels):
        red = f"; {k['reduction']}" if k["reduction"] else ""
        flow = f"{', '.join(k['inputs'])} -> {', '.join(k['outputs'])}"
        lines.append(f"  {n:>{len(str(len(kernels)))}} {k['name']}: {flow}{red}")
    if any(k["seconds"] is None for k in kernels) and any(k["seconds"] for k in kernels):
        lines.append("  (kernels that follow each other are one C call, timed on the first)")
    for k in kernels:
        if k["source"]:
            lines += ["", f"  C source of {k['name']}:", *_indent(k["source"])]
    return lines


def _timings(rows: list[dict], run: dict | None) -> list[str]:
    lines = ["7. Timings"]
    lines += table(
        ("stage", "what", "time", "cache"),
        [(t["stage"], STAGES.get(t["stage"], ""), seconds(t["seconds"]), t["cache"]) for t in rows],
        "2",
    )
    if run is None:
        lines.append("  run: not run (--run times the function and each kernel)")
    else:
        what = "the script's inputs" if run["inputs"] == "script" else "random inputs"
        lines.append(f"  run: {seconds(run['seconds'])} per call, on {what}")
    return lines


def render(data: dict) -> str:
    """The text report of a report dict (schema eqsat.explain/1)."""
    fn = data["function"]
    name = f" {fn['name']!r}" if fn["name"] else ""
    title = f"eqsat.explain: function {fn['index']}{name}"
    g = data["input_graph"]
    parts = [
        [title, "=" * len(title)],
        _function(fn),
        [
            f"2. Input graph: {plural(g['ops'], 'op')}, cost {cost(g['cost'])}",
            *_indent(g["debugprint"]),
        ],
        _saturation(data["saturation"]),
        _rules(data["rules"], data["saturation"], fn),
        _extracted(data["extracted_graph"], g),
        _kernels(data["kernels"], fn["backend"]),
        _timings(data["timings"], data["run"]),
    ]
    return "\n\n".join("\n".join(p) for p in parts) + "\n"
