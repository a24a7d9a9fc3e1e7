"""The HTML page: both graphs drawn (or their DOT text), the tables, escaping, no outside links."""

import copy
import html
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from eqsat.explain import html as page

BACKEND_INDEPENDENT = True

HAS_DOT = shutil.which("dot") is not None

INPUT_DOT = """digraph G {
  i0 [label="x<script>alert(1)</script>\\nfloat64[?]"];
  n0 [label="exp"];
  c0 [label="1.0"];
  n1 [label="add"];
  n2 [label="log"];
  o0 [label="out0"];
  i0 -> n0; n0 -> n1; c0 -> n1; n1 -> n2; n2 -> o0;
}
"""

EXTRACTED_DOT = """digraph G {
  i0 [label="x<script>alert(1)</script>\\nfloat64[?]"];
  o0 [label="out0"];
  subgraph cluster_0 {
    graph [label="kernel_k0"];
    n0 [label="softplus_node"];
  }
  i0 -> n0; n0 -> o0;
}
"""


def sample() -> dict:
    """A small report of schema eqsat.explain/1, written by hand."""
    return {
        "schema": "eqsat.explain/1",
        "function": {
            "name": "f<script>alert(1)</script>",
            "index": 3,
            "backend": "c",
            "inputs": [{"name": "x<script>alert(1)</script>", "type": "float64[?]"}],
            "outputs": [{"name": None, "type": "float64[?]"}],
            "updates": [{"shared": "w_shared", "type": "float64[4]"}],
        },
        "input_graph": {"debugprint": "log [id A]\n └─ add [id B]", "ops": 3, "cost": 12.5,
                        "dot": INPUT_DOT},
        "saturation": {
            "steps": [
                {"phase": "simplify", "iteration": 0, "eclasses": 7, "enodes": 9, "matches": 4,
                 "seconds": 0.0021},
                {"phase": "expand", "iteration": 1, "eclasses": 8, "enodes": 11, "matches": 2,
                 "seconds": 0.5},
            ],
            "stopped_by": "saturated_bound_xyz",
            "eclasses": 8,
            "enodes": 11,
            "cached": False,
            "fallback": None,
        },
        "rules": {
            "fired": [{"rule": "stability/log1p_exp", "matches": 4321},
                      {"rule": "arith/add_comm", "matches": 2}],
            "used": [{"output": 0, "before": "log(1 + exp(x))", "after": "softplus(x)",
                      "rules": ["arith/add_comm", "stability/log1p_exp"], "derived": True}],
        },
        "extracted_graph": {
            "debugprint": "softplus [id A]", "ops": 1, "cost": 4.25, "dot": EXTRACTED_DOT,
            "cost_by_op": [{"op": "softplus_op", "count": 1, "cost": 4.25}],
        },
        "kernels": [
            {"name": "k0", "kind": "kernel", "ops": ["softplus"], "inputs": ["x"],
             "outputs": ["out0"], "reduction": None, "bytes_read": 3072, "bytes_written": 100,
             "source": "void k0(void) { if (a < b && c > d) {} }", "seconds": 0.0021},
            {"name": "gemv_call", "kind": "blas", "ops": ["gemv"], "inputs": ["x"],
             "outputs": ["y"], "reduction": None, "bytes_read": None, "bytes_written": None,
             "source": None, "seconds": None},
        ],
        "timings": [{"stage": "saturate", "seconds": 1.5, "cache": None},
                    {"stage": "compile", "seconds": 0.0003, "cache": "hit"}],
        "run": {"seconds": 0.25, "inputs": "random"},
    }  # fmt: skip


def section(text: str, sid: str) -> str:
    m = re.search(rf'<section id="{sid}">(.*?)</section>', text, re.S)
    assert m, f"no section {sid}"
    return m.group(1)


def rows(fragment: str) -> list[list[str]]:
    """The text of each table body row's cells, tags removed and entities decoded."""
    out = []
    for tr in re.findall(r"<tr>(.*?)</tr>", fragment, re.S):
        cells = re.findall(r"<td[^>]*>(.*?)</td>", tr, re.S)
        if cells:
            out.append([html.unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in cells])
    return out


class Balance(HTMLParser):
    """Checks that every non-void element is closed in order."""

    VOID = {"meta", "br", "img", "hr", "link", "input", "col", "wbr", "source"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:]}")
        else:
            self.stack.pop()


def test_sections_in_report_order_and_well_formed():
    text = page.render(sample())
    order = ["function", "input-graph", "saturation", "rules", "extracted-graph", "kernels",
             "timings"]  # fmt: skip
    positions = [text.index(f'<section id="{sid}">') for sid in order]
    assert positions == sorted(positions)
    checker = Balance()
    checker.feed(text)
    assert checker.errors == [] and checker.stack == []


@pytest.mark.skipif(not HAS_DOT, reason="Graphviz is not installed")
def test_both_graphs_drawn_as_svg():
    text = page.render(sample())
    before, after = section(text, "input-graph"), section(text, "extracted-graph")
    assert "<svg" in before and "<svg" in after
    assert ">exp<" in before and ">log<" in before  # node labels are SVG text
    assert ">softplus_node<" in after and ">kernel_k0<" in after  # the kernel box is labelled
    assert "softplus_node" not in before
    ids = re.findall(r'\bid="([^"]+)"', text)
    assert len(ids) == len(set(ids))  # two SVGs on one page, no clashing ids


def test_fallback_without_graphviz(monkeypatch):
    monkeypatch.setattr(page.shutil, "which", lambda name: None)
    text = page.render(sample())
    assert "<svg" not in text
    for sid, dot in (("input-graph", INPUT_DOT), ("extracted-graph", EXTRACTED_DOT)):
        body = section(text, sid)
        assert "not installed" in body
        m = re.search(r'<pre class="dot"[^>]*>(.*?)</pre>', body, re.S)
        assert m and html.unescape(m.group(1)) == dot


def test_failing_dot_falls_back(monkeypatch, tmp_path):
    fake = tmp_path / "dot"
    fake.write_text("#!/bin/sh\necho 'Error: syntax error in line 1' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setattr(page.shutil, "which", lambda name: str(fake))
    text = page.render(sample())
    assert "<svg" not in text
    assert "dot failed (Error: syntax error in line 1)" in section(text, "input-graph")
    assert '<pre class="dot"' in section(text, "extracted-graph")


def test_tables_hold_the_values():
    text = page.render(sample())
    assert rows(section(text, "function")) == [
        ["input", "x<script>alert(1)</script>", "float64[?]"],
        ["output", "output 0", "float64[?]"],
        ["update", "w_shared", "float64[4]"],
    ]
    sat = section(text, "saturation")
    assert rows(sat) == [
        ["simplify", "0", "7", "9", "4", "2.10 ms"],
        ["expand", "1", "8", "11", "2", "500.00 ms"],
    ]
    assert "saturated_bound_xyz" in sat
    rules = rows(section(text, "rules"))
    assert ["0", "log(1 + exp(x))", "⇒", "softplus(x)",
            "arith/add_comm → stability/log1p_exp", "yes"] in rules  # fmt: skip
    assert ["stability/log1p_exp", "4,321", ""] in rules
    assert ["softplus_op", "1", "4.25", ""] in rows(section(text, "extracted-graph"))
    kernels = rows(section(text, "kernels"))
    # 3072 bytes in decimal kilobytes, as the text report writes them: 3.07 kB
    want = ["k0", "kernel", "softplus", "x", "out0", "", "3.07 kB", "100 B", "2.10 ms"]
    assert kernels[0] == want
    assert kernels[1][:2] == ["gemv_call", "blas"]
    timings = section(text, "timings")
    assert rows(timings) == [["saturate", "1.50 s", ""], ["compile", "300.0 µs", "hit"]]
    assert "250.00 ms" in timings


def test_source_in_details_escaped():
    kernels = section(page.render(sample()), "kernels")
    m = re.search(r"<details><summary>source of <code>k0</code></summary><pre>(.*?)</pre>", kernels)
    assert m and m.group(1) == "void k0(void) { if (a &lt; b &amp;&amp; c &gt; d) {} }"
    assert kernels.count("<details>") == 1  # the BLAS call has no source


def test_text_is_escaped(monkeypatch):
    monkeypatch.setattr(page.shutil, "which", lambda name: None)
    text = page.render(sample())
    assert "<script" not in text.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text


def test_self_contained():
    text = page.render(sample())
    assert "http://" not in text and "https://" not in text
    assert not re.search(r"<script|<link|<iframe|<img|\bsrc=|@import|url\(", text, re.I)
    assert "<style>" in text  # the CSS is inline


def test_not_optimized_and_no_kernels():
    data = copy.deepcopy(sample())
    data["saturation"] = None
    data["kernels"] = []
    data["run"] = None
    text = page.render(data)
    assert "Not optimized" in section(text, "saturation")
    assert "no kernel plan" in section(text, "kernels")


def test_bad_input_named():
    with pytest.raises(ValueError, match="schema"):
        page.render({"schema": "other/2"})
    with pytest.raises(TypeError, match="data"):
        page.render(["not", "a", "dict"])


def test_write(tmp_path):
    path = tmp_path / "r.html"
    page.write(sample(), str(path))
    assert path.read_text(encoding="utf-8") == page.render(sample())


def test_slow_dot_falls_back(monkeypatch):
    def too_slow(cmd, **kwargs):
        raise subprocess.TimeoutExpired(cmd, kwargs.get("timeout"))

    monkeypatch.setattr(page.shutil, "which", lambda name: "/opt/graphviz/bin/dot")
    monkeypatch.setattr(page.subprocess, "run", too_slow)
    body = section(page.render(sample()), "input-graph")
    assert "took longer than" in body and '<pre class="dot"' in body


SCREENSHOT = Path(__file__).resolve().parents[2] / "tools" / "screenshot_report.py"


def test_screenshot_tool_says_when_chromium_is_missing(tmp_path):
    page.write(sample(), str(tmp_path / "r.html"))
    done = subprocess.run(
        [sys.executable, str(SCREENSHOT), str(tmp_path / "r.html"), str(tmp_path / "r.png")],
        env={**os.environ, "PATH": str(tmp_path)},  # nothing to find there
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 3
    assert "Chromium is not installed" in done.stderr
    assert not (tmp_path / "r.png").exists()


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Chromium is not installed")
def test_screenshot_tool_writes_a_png(tmp_path):
    page.write(sample(), str(tmp_path / "r.html"))
    png = tmp_path / "r.png"
    cmd = [sys.executable, str(SCREENSHOT), str(tmp_path / "r.html"), str(png)]
    done = subprocess.run([*cmd, "--height", "800"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("width_pt, wide", [(300, False), (5000, True)])
def test_very_wide_graphs_scroll_instead_of_shrinking(monkeypatch, width_pt, wide):
    svg = f'<?xml version="1.0"?>\n<svg width="{width_pt}pt" height="80pt"><g id="graph0"/></svg>'

    def fake_dot(cmd, **kwargs):
        return subprocess.CompletedProcess(cmd, 0, stdout=svg, stderr="")

    monkeypatch.setattr(page.shutil, "which", lambda name: "/opt/graphviz/bin/dot")
    monkeypatch.setattr(page.subprocess, "run", fake_dot)
    body = section(page.render(sample()), "input-graph")
    assert ('class="graph-box wide"' in body) is wide
    assert '<g id="input-graph-graph0"/>' in body and "<?xml" not in body
