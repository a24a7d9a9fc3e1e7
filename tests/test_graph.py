"""The IR: Types, hash-consed Apply nodes, graph walks and clone_replace."""

import numpy as np
import pytest

import eqsat as theano
import eqsat.tensor as T
from eqsat.graph import Apply, Constant, Type, Variable, ancestors, clone_replace, graph_inputs
from eqsat.graph import toposort as toposort_

# ------------------------------------------------------------------ Type


def test_type_equality_and_hash():
    a, b = Type("float64", (None, 3)), Type(np.float64, [None, 3])
    assert a == b and hash(a) == hash(b)
    assert a.dtype == "float64" and a.shape == (None, 3)
    assert len({a, b}) == 1
    for other in (Type("float32", (None, 3)), Type("float64", (None, None)),
                  Type("float64", (None, 3, 1)), "float64"):  # fmt: skip
        assert a != other


@pytest.mark.parametrize(
    ("shape", "broadcastable"),
    [((), ()), ((None,), (False,)), ((1,), (True,)), ((1, None, 4, 1), (True, False, False, True))],
)
def test_type_broadcastable(shape, broadcastable):
    t = Type("int32", shape)
    assert t.broadcastable == broadcastable
    assert t.ndim == len(shape)
    assert Type.from_broadcastable("int32", broadcastable) == Type(
        "int32", [1 if b else None for b in broadcastable]
    )


def test_type_validates_shape():
    with pytest.raises(ValueError):
        Type("float64", (2, -1))
    with pytest.raises(TypeError):
        Type("not-a-dtype", ())


def test_variable_type_follows_constructor():
    x = T.dcol("x")
    assert x.type == Type.from_broadcastable("float64", (False, True))
    assert x.type == T.dcol().type
    assert x.type != T.drow().type
    assert x.type != T.fcol().type


# ------------------------------------------------------------------ hash-consing
SAME = {
    "x + y": lambda x, y, z: x + y,
    "exp(x) * 2": lambda x, y, z: T.exp(x) * 2,
    "sum(x, axis=0)": lambda x, y, z: x.sum(axis=0),
    "x[1:3, 0]": lambda x, y, z: x[1:3, 0],
    "dot(x, y.T)": lambda x, y, z: T.dot(x, y.T),
    "switch(x > 0, y, z)": lambda x, y, z: T.switch(x > 0, y, z),
}


@pytest.mark.parametrize("case", list(SAME))
def test_same_expression_twice_is_one_variable(case):
    x, y, z = T.dmatrices("x", "y", "z")
    build = SAME[case]
    first, second = build(x, y, z), build(x, y, z)
    assert first is second
    assert first.owner is second.owner


def test_axis_spellings_hash_cons_together():
    x = T.dmatrix("x")
    assert x.sum(axis=0) is x.sum(axis=-2) is T.sum(x, axis=(0,))


DIFFERENT = {
    "add-vs-mul": (lambda x, y, z: x + y, lambda x, y, z: x * y),
    "operand-order": (lambda x, y, z: x - y, lambda x, y, z: y - x),
    "other-input": (lambda x, y, z: x + y, lambda x, y, z: x + z),
    "other-axis": (lambda x, y, z: x.sum(axis=0), lambda x, y, z: x.sum(axis=1)),
    "keepdims": (lambda x, y, z: x.max(axis=0), lambda x, y, z: x.max(axis=0, keepdims=True)),
    "constant-value": (lambda x, y, z: x + 1, lambda x, y, z: x + 2),
    "constant-dtype": (lambda x, y, z: T.cast(x, "float32"), lambda x, y, z: T.cast(x, "int32")),
    "index": (lambda x, y, z: x[0], lambda x, y, z: x[1]),
}


@pytest.mark.parametrize("case", list(DIFFERENT))
def test_different_expressions_are_different_variables(case):
    x, y, z = T.dmatrices("x", "y", "z")
    a, b = DIFFERENT[case]
    assert a(x, y, z) is not b(x, y, z)


def test_equal_named_inputs_are_different():
    """Hash-consing is structural over node identity; two inputs named alike stay apart."""
    x1, x2 = T.dvector("x"), T.dvector("x")
    assert x1 + 1 is not x2 + 1


def test_small_constants_are_shared():
    assert T.constant(2.0) is T.constant(2.0)
    assert T.constant(np.array([1, 2])) is T.constant(np.array([1, 2]))
    assert T.constant(2.0) is not T.constant(2)
    assert T.constant(2.0, dtype="float32") is not T.constant(2.0, dtype="float64")


def test_constant_data_is_read_only():
    c = T.constant(np.arange(3.0))
    assert isinstance(c, Constant)
    with pytest.raises(ValueError):
        c.data[0] = 5.0
    with pytest.raises(TypeError):
        T.constant("abc")


def test_apply_structure():
    x, y = T.dvectors("x", "y")
    out = x * y
    node = out.owner
    assert isinstance(node, Apply)
    assert node.op == "mul"
    assert node.inputs == (x, y)
    assert node.outputs == (out,) and node.out is out
    assert out.type == x.type
    assert x.owner is None
    assert x.sum(axis=0).owner.p == {"axis": (0,), "keepdims": False}


# ------------------------------------------------------------------ graph walks
def _check_topological(order):
    position = {id(node): n for n, node in enumerate(order)}
    assert len(position) == len(order), "a node appears twice"
    for node in order:
        for inp in node.inputs:
            if inp.owner is not None:
                assert position[id(inp.owner)] < position[id(node)]


def test_toposort_puts_inputs_first():
    x, y = T.dvectors("x", "y")
    s = T.exp(x) + y
    outs = [s * s + T.log(s), s.sum(), (x * y).dimshuffle(0, "x")]
    order = toposort_(outs)
    _check_topological(order)
    assert {n.op for n in order} == {"exp", "add", "mul", "log", "sum", "dimshuffle"}
    assert len(order) == 8
    assert sum(n is s.owner for n in order) == 1


def test_toposort_of_inputs_is_empty():
    assert toposort_([T.dvector()]) == []


def _chain(depth):
    x = T.dscalar("x")
    y = x
    for n in range(depth):
        y = y * 1.0 + (n % 3)
    return x, y


def test_deep_chain_without_recursion_errors(mode):
    depth = 2500  # two nodes per level: 5000 nodes
    x, y = _chain(depth)
    order = toposort_([y])
    assert len(order) == 2 * depth
    _check_topological(order)
    assert x in graph_inputs([y])
    z = T.dscalar("z")
    (w,) = clone_replace([y], {x: z})
    assert x not in graph_inputs([w]) and z in graph_inputs([w])
    f = theano.function([z], w, mode=mode)
    want = 0.5 + sum(n % 3 for n in range(depth))
    assert float(f(0.5)) == want


def test_ancestors_and_graph_inputs():
    x, y = T.dvectors("x", "y")
    unused = T.dvector("unused")
    s = x + y
    out = T.exp(s) * 2
    anc = ancestors([out])
    ids = [id(v) for v in anc]
    assert len(set(ids)) == len(ids)
    for v in (x, y, s, T.exp(s), out):
        assert v in anc
    assert unused not in anc
    for v in anc:  # inputs before users
        if v.owner is not None:
            assert all(anc.index(i) < anc.index(v) for i in v.owner.inputs)
    roots = graph_inputs([out])
    assert x in roots and y in roots
    assert all(v.owner is None for v in roots)
    assert any(isinstance(v, Constant) and v.data.size == 1 and v.data.item() == 2.0 for v in roots)
    assert graph_inputs([x]) == [x]
    assert ancestors([x]) == [x]


def test_ancestors_of_several_outputs():
    x, y = T.dvectors("x", "y")
    anc = ancestors([x + 1, y])
    assert y in anc and x in anc


# ------------------------------------------------------------------ clone_replace
def test_clone_replace_replaces_and_keeps_originals(mode):
    x, y = T.dvectors("x", "y")
    z = T.dvector("z")
    out = T.exp(x) * y + x
    before = toposort_([out])
    (new,) = clone_replace([out], {x: z * 2})
    assert new is not out
    assert toposort_([out]) == before
    assert set(graph_inputs([out])) >= {x, y}
    assert x not in ancestors([new]) and z in ancestors([new])
    a, b = np.array([0.5, -1.0]), np.array([2.0, 3.0])
    got = theano.function([z, y], new, mode=mode)(a, b)
    np.testing.assert_allclose(got, np.exp(2 * a) * b + 2 * a)
    np.testing.assert_allclose(theano.function([x, y], out, mode=mode)(a, b),
                               np.exp(a) * b + a)  # fmt: skip


def test_clone_replace_reinfers_types():
    x, y = T.dvectors("x", "y")
    expr = T.exp(x) * x
    (as_float32,) = clone_replace([expr], {x: T.fvector()})
    assert as_float32.dtype == "float32"
    (as_matrix,) = clone_replace([expr + y], [(x, T.dmatrix())])
    assert as_matrix.ndim == 2
    (as_int,) = clone_replace([x.shape[0] + T.argmax(x)], {x: T.lvector()})
    assert as_int.dtype == "int64"
    (static,) = clone_replace([x + y], {x: T.constant(np.zeros(3))})
    assert static.type.shape == (3,)


@pytest.mark.parametrize(
    "build",
    [lambda v: v * 2, lambda v: 2.5 + v, lambda v: T.maximum(v, 0), lambda v: (v + 1).sum()],
    ids=["v*2", "2.5+v", "maximum(v,0)", "sum(v+1)"],
)
def test_clone_replace_types_match_a_fresh_build(build):
    """Rebuilding on a new input gives the type that building on it directly gives: bare
    Python numbers keep yielding to the tensor's dtype (float32 * 2 stays float32)."""
    x, new = T.dvector("x"), T.fvector("new")
    (cloned,) = clone_replace([build(x)], {x: new})
    assert cloned.type == build(new).type


def test_clone_replace_intermediate_and_untouched():
    x, y = T.dvectors("x", "y")
    s = x + y
    out = T.log(s) * y
    c = T.dvector("c")
    (new,) = clone_replace([out], {s: c})
    assert x not in ancestors([new]) and c in ancestors([new]) and y in ancestors([new])
    other = T.exp(y)
    assert clone_replace([other], {x: c}) == [other]
    assert clone_replace([s], {s: c}) == [c]


def test_clone_replace_rebuilt_graph_is_hash_consed():
    x, y = T.dvectors("x", "y")
    (new,) = clone_replace([T.exp(x) + 1], {x: y})
    assert new is T.exp(y) + 1


def test_clone_replace_incompatible_replacement_fails():
    x, y = T.dvectors("x", "y")
    with pytest.raises(TypeError):
        clone_replace([T.dot(x, y)], {x: T.dtensor3()})


def test_variable_is_hashable_by_identity():
    x = T.dvector("x")
    d = {x: 1, x + 1: 2}
    assert d[x] == 1 and d[x + 1] == 2
    assert isinstance(x, Variable)
