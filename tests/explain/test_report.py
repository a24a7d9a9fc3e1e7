"""eqsat.explain(f): the report object, its sections, text and JSON (schema eqsat.explain/1)."""

import json
import pickle

import jsonschema
import numpy as np
import pytest

import eqsat
import eqsat.tensor as T
from eqsat.codegen.compile import compiler
from eqsat.explain.inputs import random_inputs
from eqsat.explain.report import Report, schema
from eqsat.optimizer import Step
from eqsat.runtime.function import watch

BACKEND_INDEPENDENT = True
needs_c = pytest.mark.skipif(not compiler(), reason="no C compiler")


def valid(report: Report) -> dict:
    data = json.loads(report.to_json())
    jsonschema.validate(data, schema(), cls=jsonschema.Draft202012Validator)
    return data


def test_explain_is_the_function_and_the_package_still_imports():
    from eqsat.explain import explain

    assert eqsat.explain is explain
    assert Report.__module__ == "eqsat.explain.report"


def test_schema_is_a_valid_draft_2020_12_schema():
    jsonschema.Draft202012Validator.check_schema(schema())


@needs_c
def test_softplus_report_mode_c():
    x = T.dvector("x")
    f = eqsat.function([x], T.log(1 + T.exp(x)), mode="c", name="sp")
    report = eqsat.explain(f)
    data = valid(report)
    assert data["schema"] == "eqsat.explain/1"
    assert data["function"] == {
        "name": "sp", "index": 0, "backend": "c",
        "inputs": [{"name": "x", "type": str(x.type)}],
        "outputs": [{"name": None, "type": str(x.type)}], "updates": [],
    }  # fmt: skip
    assert "log" in data["input_graph"]["debugprint"]
    assert "exp" in data["input_graph"]["debugprint"]
    assert "softplus" in data["extracted_graph"]["debugprint"]
    assert "log" not in data["extracted_graph"]["debugprint"]
    assert data["input_graph"]["ops"] == 3  # add, exp, log
    assert data["extracted_graph"]["ops"] == 1
    fired = [r["rule"] for r in data["rules"]["fired"]]
    assert "stability/softplus" in fired
    counts = [r["matches"] for r in data["rules"]["fired"]]
    assert counts == sorted(counts, reverse=True)
    # softplus over 1000 nominal elements at 7 flops each (extract.FLOPS), fused: no traffic
    assert data["extracted_graph"]["cost"] == pytest.approx(7000.0)
    assert data["extracted_graph"]["cost_by_op"] == [{"op": "softplus", "count": 1, "cost": 7000.0}]
    (kernel,) = data["kernels"]
    assert kernel["kind"] == "kernel" and kernel["ops"] == ["softplus"]
    assert kernel["inputs"] == ["x"]
    assert kernel["outputs"] == ["[id A]"]  # named as the debugprint names it
    assert data["extracted_graph"]["debugprint"].startswith("softplus [id A]")
    assert kernel["bytes_read"] is None  # x's length is not known without inputs
    assert kernel["source"] is None and kernel["seconds"] is None
    stages = [t["stage"] for t in data["timings"]]
    assert stages == [
        "insert",
        "saturate",
        "freeze",
        "pop",
        "extract",
        "plan",
        "codegen",
        "compile",
    ]
    assert data["run"] is None
    sat = data["saturation"]
    assert [s["iteration"] for s in sat["steps"]] == list(range(1, len(sat["steps"]) + 1))
    assert sat["steps"][-1]["eclasses"] == sat["eclasses"] > 0
    # each step's e-classes: at least one per output's root, never more than its e-nodes
    assert all(0 < s["eclasses"] <= s["enodes"] for s in sat["steps"])
    assert sat["stopped_by"] == "saturated" and sat["fallback"] is None


@needs_c
def test_run_gives_exact_bytes_and_times_each_kernel():
    x = T.dvector("x")
    f = eqsat.function([x], T.exp(x) * 2.0, mode="c")
    data = valid(eqsat.explain(f, run=[np.arange(250.0)], source=True))
    (kernel,) = data["kernels"]
    assert kernel["bytes_read"] == 250 * 8  # x, read once; the 2.0 is inlined
    assert kernel["bytes_written"] == 250 * 8
    assert kernel["seconds"] > 0
    assert "exp(" in kernel["source"]
    assert data["run"]["inputs"] == "script" and data["run"]["seconds"] > 0


@needs_c
def test_static_shapes_give_bytes_without_running():
    x = T.tensor("float64", shape=(5, 3), name="x")
    f = eqsat.function([x], T.exp(x).sum(axis=1), mode="c")
    data = valid(eqsat.explain(f))
    (kernel,) = data["kernels"]
    assert kernel["bytes_read"] == 5 * 3 * 8
    assert kernel["bytes_written"] == 5 * 8
    assert kernel["reduction"] == "sum over axes 1"
    assert data["run"] is None and kernel["seconds"] is None


def test_py_backend_has_no_kernel_plan():
    x = T.dvector("x")
    f = eqsat.function([x], T.log(1 + T.exp(x)), mode="py")
    report = eqsat.explain(f, run=True)
    data = valid(report)
    assert data["function"]["backend"] == "py"
    assert data["kernels"] == []
    assert [t["stage"] for t in data["timings"]] == [
        "insert",
        "saturate",
        "freeze",
        "pop",
        "extract",
    ]
    assert data["run"]["inputs"] == "random" and data["run"]["seconds"] > 0
    assert "6. Kernels: none" in str(report)


def test_exp_cost_by_the_documented_model():
    x = T.dvector("x")
    f = eqsat.function([x], T.exp(x), mode="py")
    g = eqsat.explain(f).to_dict()["extracted_graph"]
    # exp: 10 flops per element, an unknown length priced at 1000 elements
    assert g["cost_by_op"] == [{"op": "exp", "count": 1, "cost": 10_000.0}]
    assert g["cost"] == pytest.approx(10_000.0)


def test_text_sections_in_the_issues_order():
    x = T.dvector("x")
    text = str(eqsat.explain(eqsat.function([x], T.log(1 + T.exp(x)), mode="py")))
    heads = ["1. Function", "2. Input graph", "3. Saturation", "4. Rules", "5. Extracted graph",
             "6. Kernels", "7. Timings"]  # fmt: skip
    places = [text.index(h) for h in heads]
    assert places == sorted(places)
    assert "stability/softplus" in text


def test_updates_and_shared_values_are_left_alone():
    x = T.dmatrix("x")
    w = eqsat.shared(np.ones(7), name="w")
    f = eqsat.function([x], T.dot(x, w), updates=[(w, w + 1.0)], mode="py")
    data = valid(eqsat.explain(f, run=True))
    assert data["function"]["updates"] == [{"shared": "w", "type": str(w.type)}]
    np.testing.assert_array_equal(w.get_value(), np.ones(7))  # the run applied no update


def test_a_run_leaves_an_update_written_in_place_alone():
    x, g = T.dmatrix("x"), T.dmatrix("g")
    w = eqsat.shared(np.ones((5, 3)), name="w")
    f = eqsat.function([x, g], [], updates=[(w, w - 0.1 * T.dot(x.T, g))], mode="c")
    assert f.thunk.in_place  # (the step writes into the array it is given for w)
    valid(eqsat.explain(f, run=True))
    np.testing.assert_array_equal(w.get_value(), np.ones((5, 3)))


def test_random_inputs_fit_the_graphs_shapes():
    x, y = T.dmatrix("x"), T.dvector("y")
    w = eqsat.shared(np.zeros(7), name="w")
    f = eqsat.function([x, y], T.dot(x, w) + y, mode="py")
    vx, vy = random_inputs(f)
    assert vx.shape[1] == 7  # w's length
    assert vy.shape == (vx.shape[0],)  # the sum needs y as long as dot(x, w)
    f(vx, vy)  # and the function accepts them


def test_without_optimizer():
    x = T.dvector("x")
    f = eqsat.function([x], T.exp(x), mode="py", optimizer=None)
    data = valid(eqsat.explain(f))
    assert data["saturation"] is None
    assert data["rules"] == {"fired": [], "used": []}
    assert data["input_graph"]["debugprint"] == data["extracted_graph"]["debugprint"]
    assert "optimizer=None" in str(eqsat.explain(f))


def test_unpickled_function_is_refused_clearly():
    x = T.dvector("x")
    f = pickle.loads(pickle.dumps(eqsat.function([x], T.exp(x), mode="py")))
    with pytest.raises(ValueError, match="unpickled"):
        eqsat.explain(f)
    with pytest.raises(TypeError, match="compiled eqsat function"):
        eqsat.explain(T.exp(x))


def test_json_round_trip_and_to_dict_is_a_copy():
    x = T.dvector("x")
    report = eqsat.explain(eqsat.function([x], T.exp(x), mode="py"))
    assert json.loads(report.to_json()) == report.to_dict()
    report.to_dict()["function"]["name"] = "changed"
    assert report.data["function"]["name"] is None


def test_watch_sees_each_function_compiled_inside_it():
    x = T.dvector("x")
    seen = []
    with watch(seen.append):
        f = eqsat.function([x], T.exp(x), mode="py")
    eqsat.function([x], T.exp(x), mode="py")
    assert seen == [f]


def test_step_pickled_before_eclasses_existed_reads_none():
    old = Step.__new__(Step)
    old.__dict__.update(phase="simplify", enodes=3, seconds=0.1, matches=2)
    assert pickle.loads(pickle.dumps(old)).eclasses is None
