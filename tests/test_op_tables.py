"""Every op is one row in several tables; this fails when a row is missing from any of them."""

import pytest

from eqsat.grad import NON_DIFFERENTIABLE, VJP
from eqsat.ops import OPS, OpDef
from eqsat.sympy_bridge import NO_SYMPY_REASON, SYMPY

BACKEND_INDEPENDENT = True  # no compiled function here: one run covers every backend

KINDS = {"elemwise", "reduce", "contract", "shape", "index", "alloc", "nnet"}


@pytest.mark.parametrize("name", sorted(OPS))
def test_op_has_semantics(name):
    row = OPS[name]
    assert isinstance(row, OpDef) and row.name == name
    assert row.kind in KINDS
    assert callable(row.impl), f"{name} has no NumPy implementation"
    assert callable(row.infer), f"{name} has no type rule"


@pytest.mark.parametrize("name", sorted(OPS))
def test_op_has_gradient_or_is_marked(name):
    assert (name in VJP) != (name in NON_DIFFERENTIABLE), (
        f"{name} needs a VJP row in eqsat/grad.py or a place in NON_DIFFERENTIABLE (not both)"
    )


@pytest.mark.parametrize("name", sorted(OPS))
def test_op_has_sympy_form_or_a_reason(name):
    assert name in SYMPY, f"{name} has no row in eqsat/sympy_bridge.SYMPY"
    if SYMPY[name] is None:
        assert NO_SYMPY_REASON.get(name), f"{name} lacks a sympy form without saying why"


def test_no_rows_for_unknown_ops():
    assert set(VJP) <= set(OPS)
    assert set(SYMPY) <= set(OPS)


@pytest.mark.parametrize("name", sorted(OPS))
def test_op_has_a_c_rendering_or_runs_on_the_host(name):
    from eqsat.codegen.c_ops import EXPR
    from eqsat.codegen.plan import CONTRACTIONS, REDUCTIONS, VIEWS

    kind = OPS[name].kind
    if kind == "elemwise":
        assert name in EXPR, f"elementwise op {name} needs a row in eqsat/codegen/c_ops.EXPR"
    elif name in REDUCTIONS or name in CONTRACTIONS or name in VIEWS:
        pass  # fused reductions, BLAS calls and strided reads
    else:  # the NumPy implementation, as a host step
        assert kind in ("reduce", "shape", "index", "alloc", "nnet"), name


def test_no_c_rows_for_unknown_ops():
    from eqsat.codegen.c_ops import EXPR

    assert set(EXPR) <= set(OPS)
