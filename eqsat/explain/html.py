"""The explain report as one self-contained HTML page: inline CSS, no scripts, no links out.

The graphs are inline SVG drawn by Graphviz's `dot` when it is installed; without it (or when
it fails) the page shows their DOT text instead, which any Graphviz viewer draws.
"""

from __future__ import annotations

import html
import re
import shutil
import subprocess
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from eqsat.explain.text import nbytes, seconds

SCHEMA = "eqsat.explain/1"
DOT_TIMEOUT_S = 30.0  # a pathological graph must not hang the report
MAX_SCALED_PT = 2400  # wider graphs scroll rather than shrink to the page width
TOP_RULES = 15  # rules-fired rows shown open; the rest fold away

_CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif;
       color: #1f2937; margin: 0; background: #f9fafb; }
main { max-width: 1280px; margin: 0 auto; padding: 16px 24px 48px; }
h1 { font-size: 22px; margin: 8px 0 4px; }
h2 { font-size: 18px; margin: 0 0 8px; border-bottom: 2px solid #e5e7eb; padding-bottom: 4px; }
h3 { font-size: 15px; margin: 14px 0 6px; }
section { background: #fff; border: 1px solid #e5e7eb; border-radius: 8px; padding: 14px 18px;
          margin: 14px 0; }
nav { font-size: 13px; margin: 6px 0 0; }
nav a { color: #2563eb; text-decoration: none; margin-right: 12px; }
.summary { display: flex; flex-wrap: wrap; gap: 8px; margin: 8px 0 0; }
.chip { background: #eef2ff; border: 1px solid #c7d2fe; border-radius: 999px; padding: 2px 10px;
        font-size: 13px; }
.chip b { font-weight: 600; }
.note { color: #6b7280; font-size: 13px; }
.warn { color: #92400e; background: #fffbeb; border: 1px solid #fde68a; border-radius: 6px;
        padding: 6px 10px; font-size: 13px; }
table { border-collapse: collapse; margin: 4px 0 8px; font-size: 13px; }
th, td { border-bottom: 1px solid #e5e7eb; padding: 3px 10px; text-align: left;
         vertical-align: top; }
th { background: #f3f4f6; font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
code, pre, td.code { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace;
                     font-size: 12.5px; }
td.code { white-space: pre-wrap; word-break: break-word; }
td.nowrap { white-space: nowrap; }
td.expr { min-width: 16em; }
td.arrow { color: #6b7280; padding: 3px 2px; }
pre { background: #f8fafc; border: 1px solid #e5e7eb; border-radius: 6px; padding: 8px 10px;
      overflow: auto; max-height: 480px; margin: 6px 0; }
details > summary { cursor: pointer; color: #374151; margin: 4px 0; }
.graph-box { overflow: auto; border: 1px solid #e5e7eb; border-radius: 6px; background: #fff;
         padding: 6px; text-align: center; }
.graph-box svg { max-width: 100%; height: auto; }
.graph-box.wide { text-align: left; max-height: 1200px; }
.graph-box.wide svg { max-width: none; }
.rule { display: inline-block; background: #ecfdf5; border: 1px solid #a7f3d0; border-radius: 4px;
        padding: 0 5px; margin: 1px 2px; font-family: ui-monospace, Menlo, Consolas, monospace;
        font-size: 12px; }
.bar { display: inline-block; height: 9px; background: #93c5fd; border-radius: 2px;
       vertical-align: middle; }
.legend span { display: inline-block; padding: 0 6px; margin-right: 6px; border: 1px solid #9ca3af;
               border-radius: 8px; font-size: 12px; }
"""

_LEGEND = (
    ("input", "#d1fae5"),
    ("elementwise", "#dbeafe"),
    ("reduction", "#fde68a"),
    ("BLAS contraction", "#fecaca"),
    ("shape / indexing", "#e5e7eb"),
    ("fused kernel (box)", "#fff7ed"),
)


def esc(value: Any) -> str:
    """Any value as escaped HTML text (None as an empty string)."""
    return "" if value is None else html.escape(str(value), quote=True)


def seconds_text(s: float | None) -> str:
    """Seconds in the unit that keeps them readable, as the text report writes them."""
    return "" if s is None else seconds(s)


def bytes_text(n: int | None) -> str:
    """A byte count in the text report's decimal units, the exact count on hover."""
    if n is None:
        return ""
    return f'<span title="{n:,} bytes">{nbytes(n)}</span>' if n >= 1000 else f"{n} B"


def number_text(x: float | int | None) -> str:
    if x is None:
        return ""
    if isinstance(x, int) or float(x).is_integer():
        return f"{int(x):,}"
    return f"{x:,.4g}" if abs(x) < 1e4 else f"{x:,.0f}"


# --------------------------------------------------------------------------- graphs
def dot_to_svg(dot_text: str, prefix: str) -> tuple[str | None, str]:
    """The inline SVG of a DOT text, or None and why not. Ids get `prefix` so two graphs on
    one page do not clash; the XML prologue, comments and namespace URLs are dropped, since
    HTML5 needs none of them and the page must not refer to anything outside itself."""
    exe = shutil.which("dot")
    if exe is None:
        return None, "Graphviz (the dot program) is not installed: the graph is shown as DOT text."
    try:
        done = subprocess.run(
            [exe, "-Tsvg"],
            input=dot_text,
            capture_output=True,
            encoding="utf-8",  # Graphviz's default charset, whatever the locale says
            errors="replace",
            timeout=DOT_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        return None, f"dot took longer than {DOT_TIMEOUT_S:g} s: the graph is shown as DOT text."
    except OSError as e:
        return None, f"dot could not run ({e}): the graph is shown as DOT text."
    start = done.stdout.find("<svg")
    if done.returncode != 0 or start < 0:
        why = done.stderr.strip().splitlines()[-1:] or [f"exit code {done.returncode}"]
        return None, f"dot failed ({why[0]}): the graph is shown as DOT text."
    svg = done.stdout[start:]
    svg = re.sub(r"<!--.*?-->", "", svg, flags=re.S)
    svg = re.sub(r'\s+xmlns(:\w+)?="[^"]*"', "", svg)
    svg = re.sub(r'\bid="', f'id="{prefix}-', svg)
    return svg.strip(), ""


def _graph_block(dot_text: str | None, prefix: str) -> str:
    if not dot_text:
        return '<p class="note">No graph.</p>'
    svg, why = dot_to_svg(dot_text, prefix)
    if svg is not None:
        m = re.match(r'<svg[^>]*\bwidth="([\d.]+)pt"', svg)
        # Scaled to the page, a very wide graph's labels would be too small to read: it
        # keeps its own size and scrolls instead.
        wide = " wide" if m and float(m.group(1)) > MAX_SCALED_PT else ""
        picture = _legend() + f'<div class="graph-box{wide}" id="{prefix}-svg">{svg}</div>'
        return picture + f"<details><summary>DOT text</summary><pre>{esc(dot_text)}</pre></details>"
    return f'<p class="warn">{esc(why)}</p><pre class="dot" id="{prefix}-dot">{esc(dot_text)}</pre>'


def _legend() -> str:
    items = "".join(f'<span style="background:{c}">{esc(t)}</span>' for t, c in _LEGEND)
    return f'<p class="legend note">{items}</p>'


# --------------------------------------------------------------------------- tables
Column = tuple[str, Callable[[dict], Any], str]  # header, cell value, css class ("num", "code")


def table(rows: Iterable[dict], columns: Sequence[Column], empty: str = "none") -> str:
    """An HTML table of `rows` (dicts): one column per (header, getter, class)."""
    rows = list(rows)
    if not rows:
        return f'<p class="note">{esc(empty)}</p>'
    head = "".join(f'<th class="{cls}">{esc(h)}</th>' for h, _, cls in columns)
    body = []
    for row in rows:
        cells = "".join(f'<td class="{cls}">{get(row)}</td>' for _, get, cls in columns)
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _bar(value: float, largest: float, width_px: int = 120) -> str:
    px = 0 if largest <= 0 else max(1, round(width_px * value / largest))
    return f'<span class="bar" style="width:{px}px"></span>'


def _section(sid: str, title: str, body: str) -> str:
    return f'<section id="{sid}"><h2>{esc(title)}</h2>{body}</section>'


def _named(items: list[dict], key: str = "name") -> str:
    return ", ".join(esc(i.get(key) or "?") for i in items)


# --------------------------------------------------------------------------- sections
def _role_name(row: dict) -> str:
    default = f"output {row['index']}" if "index" in row else "?"
    return esc(row.get("name") or default)


def _function(fn: dict) -> str:
    rows = [{"role": "input", **i} for i in fn.get("inputs", [])]
    rows += [{"role": "output", "index": n, **o} for n, o in enumerate(fn.get("outputs", []))]
    rows += [{"role": "update", "name": u.get("shared"), **u} for u in fn.get("updates", [])]
    body = f"<p>Backend <b>{esc(fn.get('backend'))}</b>; function #{esc(fn.get('index'))}.</p>"
    cols: list[Column] = [
        ("role", lambda r: esc(r["role"]), ""),
        ("name", _role_name, "code"),
        ("type", lambda r: esc(r.get("type")), "code"),
    ]
    return _section("function", "Function", body + table(rows, cols))


def _graph_section(sid: str, title: str, g: dict, extra: str = "") -> str:
    head = (
        f"<p><b>{number_text(g.get('ops'))}</b> ops, cost <b>{number_text(g.get('cost'))}</b>.</p>"
    )
    debug = g.get("debugprint")
    debug_block = (
        f"<details><summary>debugprint</summary><pre>{esc(debug)}</pre></details>" if debug else ""
    )
    body = head + _graph_block(g.get("dot"), sid) + debug_block + extra
    return _section(sid, title, body)


def _saturation(sat: dict | None) -> str:
    if sat is None:
        return _section("saturation", "Saturation", '<p class="note">Not optimized.</p>')
    chips = [
        ("stopped by", sat.get("stopped_by")),
        ("e-classes", number_text(sat.get("eclasses"))),
        ("e-nodes", number_text(sat.get("enodes"))),
        ("from cache", "yes" if sat.get("cached") else "no"),
    ]
    if sat.get("fallback"):
        chips.append(("fallback", sat["fallback"]))
    summary = "".join(f'<span class="chip">{esc(k)}: <b>{esc(v)}</b></span>' for k, v in chips)
    cols: list[Column] = [
        ("phase", lambda r: esc(r.get("phase")), ""),
        ("iteration", lambda r: number_text(r.get("iteration")), "num"),
        ("e-classes", lambda r: number_text(r.get("eclasses")), "num"),
        ("e-nodes", lambda r: number_text(r.get("enodes")), "num"),
        ("matches", lambda r: number_text(r.get("matches")), "num"),
        ("time", lambda r: seconds_text(r.get("seconds")), "num"),
    ]
    steps = table(sat.get("steps", []), cols, "no saturation steps (e.g. a cached result)")
    return _section("saturation", "Saturation", f'<div class="summary">{summary}</div>{steps}')


def _rule_chain(rules: Sequence[str]) -> str:
    if not rules:
        return '<span class="note">no rule chain found</span>'
    return " → ".join(f'<span class="rule">{esc(r)}</span>' for r in rules)


def _rules(rules: dict | None) -> str:
    rules = rules or {}
    used_cols: list[Column] = [
        ("output", lambda r: number_text(r.get("output")), "num"),
        ("before", lambda r: esc(r.get("before")), "code expr"),
        ("", lambda r: "⇒", "arrow"),
        ("after", lambda r: esc(r.get("after")), "code expr"),
        ("rules", lambda r: _rule_chain(r.get("rules", [])), ""),
        ("derived", lambda r: "yes" if r.get("derived") else "no", ""),
    ]
    used = table(rules.get("used", []), used_cols, "the chosen graph is the input graph")
    fired = rules.get("fired", [])
    largest = max((r.get("matches", 0) for r in fired), default=0)
    fired_cols: list[Column] = [
        ("rule", lambda r: f'<span class="rule">{esc(r.get("rule"))}</span>', ""),
        ("matches", lambda r: number_text(r.get("matches")), "num"),
        ("", lambda r: _bar(r.get("matches", 0), largest), ""),
    ]
    top = table(fired[:TOP_RULES], fired_cols, "no rule fired")
    if len(fired) > TOP_RULES:  # the long tail is mostly canonicalization noise
        rest = table(fired[TOP_RULES:], fired_cols)
        more = f"the other {len(fired) - TOP_RULES} rules"
        top += f"<details><summary>{more}</summary>{rest}</details>"
    total = sum(r.get("matches", 0) for r in fired)
    body = (
        "<h3>Rewrites the chosen graph uses</h3>"
        '<p class="note">Each place where an output differs from the input graph, with the rule '
        "chain that re-derives it (derived: whether that chain was found again, one rule at a "
        "time, in a small e-graph).</p>"
        + used
        + f"<h3>Rules fired ({len(fired)} rules, {number_text(total)} matches)</h3>"
        + top
    )
    return _section("rules", "Rules", body)


def _cost_by_op(rows: list[dict]) -> str:
    largest = max((r.get("cost", 0) for r in rows), default=0)
    cols: list[Column] = [
        ("op", lambda r: esc(r.get("op")), "code"),
        ("count", lambda r: number_text(r.get("count")), "num"),
        ("cost", lambda r: number_text(r.get("cost")), "num"),
        ("", lambda r: _bar(r.get("cost", 0), largest), ""),
    ]
    return "<h3>Cost by op</h3>" + table(rows, cols)


def _kernels(kernels: list[dict]) -> str:
    cols: list[Column] = [
        ("step", lambda r: esc(r.get("name")), "code nowrap"),
        ("kind", lambda r: esc(r.get("kind")), ""),
        ("ops", lambda r: esc(" ".join(r.get("ops", []))), "code"),
        ("reads", lambda r: esc(", ".join(r.get("inputs", []))), "code"),
        ("writes", lambda r: esc(", ".join(r.get("outputs", []))), "code"),
        ("reduction", lambda r: esc(r.get("reduction")), "code"),
        ("bytes read", lambda r: bytes_text(r.get("bytes_read")), "num"),
        ("bytes written", lambda r: bytes_text(r.get("bytes_written")), "num"),
        ("time", lambda r: seconds_text(r.get("seconds")), "num"),
    ]
    body = table(kernels, cols, "no kernel plan (the function runs in Python mode)")
    sources = [
        f"<details><summary>source of <code>{esc(k.get('name'))}</code></summary>"
        f"<pre>{esc(k['source'])}</pre></details>"
        for k in kernels
        if k.get("source")
    ]
    return _section("kernels", "Kernel plan", body + "".join(sources))


def _timings(timings: list[dict], run: dict | None) -> str:
    cols: list[Column] = [
        ("stage", lambda r: esc(r.get("stage")), ""),
        ("time", lambda r: seconds_text(r.get("seconds")), "num"),
        ("cache", lambda r: esc(r.get("cache")), ""),
    ]
    body = table(timings, cols)
    if run:
        body += (
            f"<p>One run on {esc(run.get('inputs'))} inputs took "
            f"<b>{seconds_text(run.get('seconds'))}</b>.</p>"
        )
    return _section("timings", "Timings", body)


def _header(data: dict) -> str:
    fn = data.get("function") or {}
    name = fn.get("name") or f"function #{fn.get('index', '?')}"
    before, after = data.get("input_graph") or {}, data.get("extracted_graph") or {}
    chips = [("backend", fn.get("backend"))]
    chips.append(("ops", f"{number_text(before.get('ops'))} → {number_text(after.get('ops'))}"))
    chips.append(("cost", f"{number_text(before.get('cost'))} → {number_text(after.get('cost'))}"))
    if data.get("saturation"):
        chips.append(("stopped by", data["saturation"].get("stopped_by")))
    kernels = data.get("kernels") or []
    fused = sum(1 for k in kernels if k.get("kind") == "kernel")
    if kernels:
        chips.append(("steps", f"{len(kernels)} ({fused} fused kernels)"))
    summary = "".join(f'<span class="chip">{esc(k)}: <b>{esc(v)}</b></span>' for k, v in chips)
    links = [
        ("function", "function"),
        ("input-graph", "input graph"),
        ("saturation", "saturation"),
        ("rules", "rules"),
        ("extracted-graph", "extracted graph"),
        ("kernels", "kernels"),
        ("timings", "timings"),
    ]
    nav = "".join(f'<a href="#{sid}">{esc(t)}</a>' for sid, t in links)
    return (
        f"<header><h1>eqsat explain: <code>{esc(name)}</code></h1>"
        f'<div class="summary">{summary}</div><nav>{nav}</nav></header>'
    )


def render(data: dict) -> str:
    """The whole HTML page for a report dict of schema eqsat.explain/1."""
    if not isinstance(data, dict):
        raise TypeError(f"render: data must be a report dict, got {type(data).__name__}")
    if data.get("schema") != SCHEMA:
        raise ValueError(f"render: data['schema'] is {data.get('schema')!r}, expected {SCHEMA!r}")
    fn = data.get("function") or {}
    title = fn.get("name") or f"function #{fn.get('index', '?')}"
    extracted = data.get("extracted_graph") or {}
    parts = [
        _header(data),
        _function(fn),
        _graph_section("input-graph", "Input graph", data.get("input_graph") or {}),
        _saturation(data.get("saturation")),
        _rules(data.get("rules")),
        _graph_section(
            "extracted-graph",
            "Extracted graph",
            extracted,
            _cost_by_op(extracted.get("cost_by_op") or []),
        ),
        _kernels(data.get("kernels") or []),
        _timings(data.get("timings") or [], data.get("run")),
    ]
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>eqsat explain: {esc(title)}</title><style>{_CSS}</style></head>\n"
        f"<body><main>\n" + "\n".join(parts) + "\n</main></body></html>\n"
    )


def write(data: dict, path: str) -> None:
    """Render `data` and write the page to `path`."""
    page = render(data)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(page)
