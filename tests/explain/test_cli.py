"""`python -m eqsat.explain`: the command line, run as a user runs it (a subprocess) where the
whole path matters, in-process for the argument errors."""

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from eqsat.codegen.compile import compiler
from eqsat.explain import cli
from eqsat.explain.report import schema

BACKEND_INDEPENDENT = True
ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "logistic_regression.py"
needs_c = pytest.mark.skipif(not compiler(), reason="no C compiler")


def explain(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = {**os.environ, "EQSAT_OPT_CACHE": "0", "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "eqsat.explain", *args],
        capture_output=True, text=True, cwd=cwd, env=env, timeout=300,
    )  # fmt: skip


def valid(data: dict) -> dict:
    jsonschema.validate(data, schema(), cls=jsonschema.Draft202012Validator)
    return data


def section(text: str, number: int) -> str:
    """The text of one numbered section of a text report."""
    start = text.index(f"\n{number}. ")
    end = text.find(f"\n{number + 1}. ", start)
    return text[start : end if end > 0 else None]


def test_expression_softplus_and_the_rule_that_justifies_it():
    done = explain("-e", "log(1 + exp(x))", "--var", "x=dvector")
    assert done.returncode == 0, done.stderr
    text = done.stdout
    assert "log" in section(text, 2)
    assert "softplus [id A]" in section(text, 5)
    # the rewrite the result uses, named with its rule (helper B's derive)
    uses = [line for line in section(text, 4).splitlines() if "⇒" in line]
    assert any("softplus(x)" in u and "stability/softplus" in u for u in uses), uses


@needs_c
def test_json_validates_and_reports_the_gradient():
    done = explain(
        "-e", "log(1 + exp(x))", "--var", "x=dvector", "--grad", "x", "--format", "json",
        "--run", "--mode", "c",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    data = valid(json.loads(done.stdout))
    outputs = data["function"]["outputs"]
    assert len(outputs) == 2
    assert outputs[1]["name"] == "grad of sum(log(1 + exp(x))) w.r.t. x"
    assert data["run"]["inputs"] == "random"
    assert data["kernels"] and all(k["bytes_read"] > 0 for k in data["kernels"])


def test_html_holds_both_graphs(tmp_path):
    out = tmp_path / "report.html"
    done = explain("-e", "log(1 + exp(x))", "--var", "x=dvector", "--format", "html",
                   "--out", str(out))  # fmt: skip
    assert done.returncode == 0, done.stderr
    page = out.read_text()
    assert page.count("<svg") >= 2 or page.count("digraph") >= 2  # drawn, or the DOT text
    assert "softplus" in page and "log" in page
    assert done.stdout == ""


@needs_c
def test_logistic_regression_reports_every_function():
    done = explain("--format", "json", "--mode", "c", str(EXAMPLE), "--steps", "2")
    assert done.returncode == 0, done.stderr
    assert "logistic regression" in done.stderr  # the script's prints, off the JSON
    reports = json.loads(done.stdout)
    assert [r["function"]["name"] for r in reports] == ["train", "predict", "evaluate"]
    assert [r["function"]["index"] for r in reports] == [0, 1, 2]
    for r in reports:
        valid(r)
    train = reports[0]
    assert [u["shared"] for u in train["function"]["updates"]] == ["w", "b"]
    # the stabilizing rewrites: the loss through softplus, the gradient through sigmoid
    after = train["extracted_graph"]["debugprint"]
    assert "softplus" in after and "sigmoid" in after
    assert "log" not in after and "exp" not in after
    used = {rule for u in train["rules"]["used"] for rule in u["rules"]}
    assert {"stability/log_sigmoid", "stability/one_minus_sigmoid"} & used, used
    # the fused kernels, with the ops each fuses
    kernels = [k for k in train["kernels"] if k["kind"] == "kernel"]
    assert len(kernels) >= 2
    assert any("softplus" in k["ops"] and k["reduction"] for k in kernels)
    # x w is a BLAS gemv (alone, or in a step that fuses more around it); the script called
    # train on its data (400 x 784), so that step reads x's 400 * 784 * 8 bytes
    gemv = next(k for k in train["kernels"] if "gemv" in k["ops"])
    assert gemv["bytes_read"] >= 400 * 784 * 8


def test_failing_script_traceback_and_the_reports_before_it(tmp_path):
    script = tmp_path / "fails.py"
    script.write_text(
        "import numpy as np\n"
        "import eqsat, eqsat.tensor as T\n"
        "x = T.dvector('x')\n"
        "f = eqsat.function([x], T.exp(x), name='ex')\n"
        "print('result', f(np.arange(5.0)).sum())\n"
        "raise ValueError('boom')\n"
    )
    done = explain("--format", "json", "--run", str(script))
    assert done.returncode == 1
    assert "Traceback" in done.stderr and "ValueError: boom" in done.stderr
    assert "fails.py" in done.stderr and "runpy" not in done.stderr
    data = valid(json.loads(done.stdout))
    assert data["function"]["name"] == "ex"
    assert data["run"]["inputs"] == "script"
    if data["function"]["backend"] == "c":  # the script's 5 float64s in, 5 out
        (kernel,) = data["kernels"]
        assert (kernel["bytes_read"], kernel["bytes_written"]) == (40, 40)


def test_import_eqsat_leaves_the_report_machinery_unloaded():
    code = "import sys, eqsat; print('eqsat.explain.report' in sys.modules, eqsat.explain.__name__)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.stdout.split() == ["False", "explain"]


@pytest.mark.parametrize(
    "args, message",
    [
        ([], "either SCRIPT.py or -e"),
        (["-e", "exp(x)", "--var", "x=dvectr"], "unknown type 'dvectr'"),
        (["-e", "exp(x)", "--var", "x"], "expected NAME=TYPE"),
        (["-e", "exp(x)", "--var", "x=dvector", "--grad", "y"], "--grad 'y': not a declared"),
        (["-e", "exp(q)", "--var", "x=dvector"], "NameError"),
        (["-e", "exp(x)", "--var", "x=dvector", "--format", "pdf"], "invalid choice"),
        (["no/such/script.py"], "can't open file"),
        (["--var", "x=dvector", "script.py"], "--var and --grad declare"),
    ],
)
def test_bad_usage_exits_2(args, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(args)
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


def test_function_that_matches_none_exits_2(tmp_path, capsys):
    script = tmp_path / "one.py"
    script.write_text(
        "import eqsat, eqsat.tensor as T\n"
        "x = T.dvector('x')\n"
        "eqsat.function([x], T.exp(x), name='ex', mode='py')\n"
    )
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--function", "train", str(script)])
    assert exit_.value.code == 2
    assert "compiled 0 'ex'" in capsys.readouterr().err
    assert cli.main(["--function", "0", str(script)]) == 0
    assert "function 0 'ex'" in capsys.readouterr().out


def test_mode_py_report_says_there_is_no_kernel_plan(capsys):
    assert cli.main(["-e", "exp(x) * 2", "--var", "x=dvector", "--mode", "py"]) == 0
    text = capsys.readouterr().out
    assert "backend: py" in text
    assert "6. Kernels: none" in text
