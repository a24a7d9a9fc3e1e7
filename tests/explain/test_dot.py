"""graph_dot: the DOT text of small graphs whose pictures are known by hand."""

import re
import shutil
import subprocess

import numpy as np
import pytest

import eqsat
import eqsat.tensor as T
from eqsat.codegen.compile import compiler
from eqsat.explain.dot import graph_dot
from eqsat.ops import constant

BACKEND_INDEPENDENT = True

NODE = re.compile(r"^\s*(\w+) \[(.*)\];$")
EDGE = re.compile(r"^\s*(\w+) -> (\w+)(?: \[(.*)\])?;$")
ATTR = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def unquote(text: str) -> str:
    """A DOT string's value: `\\n` a newline, `\\"` a quote, `\\\\` a backslash."""
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), text)


def parse(dot: str) -> dict:
    """Nodes {id: attrs}, edges [(tail, head, attrs)] and clusters {label: [node ids]}."""
    nodes, edges, clusters = {}, [], {}
    current, label = None, ""
    for line in dot.splitlines():
        if line.strip().startswith("subgraph cluster_"):
            current = []
            continue
        if line.strip() == "}" and current is not None:
            clusters[label] = current
            current = None
            continue
        if line.strip().startswith("graph [") and current is not None:
            label = unquote(dict(ATTR.findall(line))["label"])
            continue
        if m := EDGE.match(line):
            attrs = {k: unquote(v) for k, v in ATTR.findall(m.group(3) or "")}
            edges.append((m.group(1), m.group(2), attrs))
        elif (m := NODE.match(line)) and m.group(1) not in ("graph", "node", "edge"):
            nodes[m.group(1)] = {k: unquote(v) for k, v in ATTR.findall(m.group(2))}
            if current is not None:
                current.append(m.group(1))
    return {"nodes": nodes, "edges": edges, "clusters": clusters}


def by_label(g: dict, label: str) -> list[str]:
    return [n for n, a in g["nodes"].items() if a["label"] == label]


def edge_set(g: dict) -> set[tuple[str, str]]:
    labels = {n: a["label"] for n, a in g["nodes"].items()}
    return {(labels[t], labels[h]) for t, h, _ in g["edges"]}


def test_small_graph_nodes_and_edges():
    x = T.dvector("x")
    z = T.exp(x) + 1.0
    g = parse(graph_dot([z], names=["z"]))
    labels = sorted(a["label"] for a in g["nodes"].values())
    assert labels == sorted(["x\nfloat64[?]", "exp", "add", "1.0", "z"])
    assert edge_set(g) == {
        ("x\nfloat64[?]", "exp"),
        ("exp", "add"),
        ("1.0", "add"),
        ("add", "z"),
    }
    assert g["clusters"] == {}


def test_shared_subterm_is_drawn_once_and_scalar_constants_per_use():
    x = T.dvector("x")
    e = T.exp(x)
    out = (e * e) * 2.0 + 2.0
    g = parse(graph_dot([out]))
    assert len(by_label(g, "exp")) == 1
    exp_node = by_label(g, "exp")[0]
    assert sum(1 for t, _, _ in g["edges"] if t == exp_node) == 2  # both operands of e * e
    assert len(by_label(g, "2.0")) == 2  # one small node per use
    assert by_label(g, "output 0")  # unnamed outputs get a default label


def test_operand_order_is_labelled_for_non_commutative_ops():
    a, b = T.dvector("a"), T.dvector("b")
    g = parse(graph_dot([a - b, a + b]))
    names = {v["label"].split("\n")[0]: k for k, v in g["nodes"].items()}
    sub = by_label(g, "sub")[0]
    into_sub = {t: attrs.get("label") for t, h, attrs in g["edges"] if h == sub}
    assert into_sub == {names["a"]: "0", names["b"]: "1"}
    add = by_label(g, "add")[0]
    assert all("label" not in attrs for _, h, attrs in g["edges"] if h == add)


def test_params_in_label_and_huge_constants_collapsed():
    x = T.dmatrix("x")
    big = constant(np.arange(1000.0))
    g = parse(graph_dot([T.sum(x, axis=0) + big]))
    assert by_label(g, "sum\naxis=(0,)\nkeepdims=False")
    [const] = [a["label"] for a in g["nodes"].values() if "float64[1000]" in a["label"]]
    assert len(const) < 60 and "999" in const


def test_one_cluster_per_kernel_holding_exactly_its_nodes():
    x = T.dvector("x")
    e = T.exp(x)
    s = T.log(e + 1.0)
    t = T.sum(s * 3.0)
    k0 = [e.owner, (e + 1.0).owner]
    k1 = [s.owner, (s * 3.0).owner, t.owner]
    groups = {id(n): "k0" for n in k0} | {id(n): "k1" for n in k1}
    g = parse(graph_dot([t], names=["t"], groups=groups))
    assert set(g["clusters"]) == {"k0", "k1"}
    clusters = g["clusters"].items()
    labels = {name: sorted(g["nodes"][n]["label"] for n in ids) for name, ids in clusters}
    # a vector's full sum is a sum over its axis 0
    assert labels == {"k0": ["add", "exp"], "k1": ["log", "mul", "sum\naxis=(0,)\nkeepdims=False"]}
    outside = set(g["nodes"]) - {n for ids in g["clusters"].values() for n in ids}
    assert sorted(g["nodes"][n]["label"] for n in outside) == ["1.0", "3.0", "t", "x\nfloat64[?]"]


@pytest.mark.skipif(not compiler(), reason="no C compiler")
def test_clusters_follow_a_real_kernel_plan():
    x = T.dvector("x")
    y = T.dvector("y")
    f = eqsat.function([x, y], [T.exp(x) * y + 1.0, T.dot(x, y)], mode="c")
    plan = f.thunk.plan
    groups = {id(n): k.name for k in plan.kernels for n in k.nodes}
    g = parse(graph_dot(f.maker.fgraph.outputs, groups=groups))
    expected = {k.name: sorted(n.op for n in k.nodes) for k in plan.kernels}
    got = {
        name: sorted(g["nodes"][n]["label"].split("\n")[0] for n in ids)
        for name, ids in g["clusters"].items()
    }
    assert got == expected
    assert any("exp" in ops for ops in got.values())
    # the contraction is a BLAS call, not part of any kernel box
    assert not any("dot" in ops for ops in got.values())


def test_labels_are_escaped():
    x = T.dvector('a"b\\c\n<d>')
    text = graph_dot([T.exp(x)], names=['out "1"'], title='t"itle')
    g = parse(text)
    assert by_label(g, 'a"b\\c\n<d>\nfloat64[?]')
    assert by_label(g, 'out "1"')
    for line in text.splitlines():  # no quote left unescaped: every attribute parses
        if "[" in line and "=" in line:
            assert line.count('"') - line.count('\\"') == 2 * len(ATTR.findall(line))


def test_deterministic_text():
    def build():
        x = T.dvector("x")
        return graph_dot([T.exp(x) * 2.0, T.log(x)], names=["a", "b"])

    assert build() == build()


def test_output_that_is_an_input():
    x = T.dvector("x")
    g = parse(graph_dot([x], names=["same"]))
    assert edge_set(g) == {("x\nfloat64[?]", "same")}


def test_bad_outputs_named():
    with pytest.raises(TypeError, match=r"outputs\[1\]"):
        graph_dot([T.dvector("x"), 3.0])


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz is not installed")
def test_graphviz_accepts_it():
    x = T.dvector("x<script>")
    e = T.exp(x)
    out = T.sum(e * 2.0)
    groups = {id(e.owner): 'kernel "0" <b>'}
    text = graph_dot([out, e], names=["s", "e & f"], groups=groups, title="t")
    done = subprocess.run(["dot", "-Tsvg"], input=text, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    svg = done.stdout
    assert "&lt;script&gt;" in svg and "<script" not in svg
    assert "kernel &quot;0&quot; &lt;b&gt;" in svg or 'kernel "0" &lt;b&gt;' in svg
    assert "e &amp; f" in svg
