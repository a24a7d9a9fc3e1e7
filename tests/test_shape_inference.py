"""Symbolic shapes (eqsat/shapes.py) and the shape checks a compiled function runs before
anything else. Expected facts come from Theano's semantics (no run-time broadcasting, a dot's
inner axes agree, an alloc is as long as the shape_i it was given) and from NumPy's shapes of
the evaluated graph, never from the module under test."""

from __future__ import annotations

import re
from collections import defaultdict

import numpy as np
import pytest

import eqsat as theano
import eqsat.tensor as T
from eqsat import shapes
from eqsat.graph import Constant, ancestors
from eqsat.ops import apply

OPTIMIZERS = ["default", None]


def groups(s: shapes.Shapes) -> list[set]:
    """checks() as sets of (leaf name, axis) pairs and static ints, for comparisons."""
    return [{m if isinstance(m, int) else (m[0].name, m[1]) for m in g} for g in s.checks()]


def has_group(s: shapes.Shapes, *members) -> bool:
    """Some check group contains all of `members`."""
    return any(set(members) <= g for g in groups(s))


def in_any_group(s: shapes.Shapes, name: str) -> bool:
    return any(isinstance(m, tuple) and m[0] == name for g in groups(s) for m in g)


def assert_groups_are_leaves_and_ints(s: shapes.Shapes, graph_leaves: list) -> None:
    ids = {id(v) for v in graph_leaves}
    for g in s.checks():
        assert len(g) >= 2, g
        for m in g:
            if isinstance(m, int):
                continue
            v, axis = m
            assert v.owner is None and not isinstance(v, Constant), m
            assert id(v) in ids, m
            assert isinstance(axis, int) and 0 <= axis < v.ndim, m


def source_name(s: shapes.Shapes, var, axis: int):
    src = s.source(var, axis)
    return src if src is None or isinstance(src, int) else (src[0].name, src[1])


# --------------------------------------------------------------------------- infer


def test_elemwise_operands_share_a_key():
    x, y = T.dvector("x"), T.dvector("y")
    z = x + y
    s = shapes.infer([z])
    assert s.key(x) is not None
    assert s.key(x) == s.key(y) == s.key(z)
    assert groups(s) == [{("x", 0), ("y", 0)}]


def test_unrelated_inputs_have_different_keys_and_no_checks():
    x, y = T.dvector("x"), T.dvector("y")
    a, b = 2 * x, T.exp(y)
    s = shapes.infer([a, b])
    assert s.key(a) == s.key(x) != s.key(y) == s.key(b)
    assert s.key(x) is not None and s.key(y) is not None
    assert groups(s) == []


def test_elemwise_with_a_broadcastable_row():
    a, r = T.dmatrix("a"), T.row("r")
    z = a * r
    s = shapes.infer([z])
    assert s.key(z) == s.key(a)
    assert s.key(r) != s.key(a)
    assert source_name(s, r, 0) == 1  # declared broadcastable: never equated with a's rows
    assert source_name(s, z, 0) == ("a", 0)
    assert has_group(s, ("a", 1), ("r", 1))
    assert not has_group(s, ("a", 0), ("r", 0))


def test_transitive_equalities_form_one_group():
    x, y, u = T.dvectors("x", "y", "u")
    s = shapes.infer([(x + y) * u])
    assert groups(s) == [{("x", 0), ("y", 0), ("u", 0)}]
    assert s.key(x) == s.key(u)


def test_dot_equates_inner_dims():
    a, b, c = T.dmatrices("a", "b", "c")
    d = T.dot(a, b)
    s = shapes.infer([d])
    assert has_group(s, ("a", 1), ("b", 0))
    assert not has_group(s, ("a", 0), ("b", 1))
    assert source_name(s, d, 0) == ("a", 0)
    assert source_name(s, d, 1) == ("b", 1)
    # an elemwise use of the product equates its outer dims with c's
    e = d + c
    s = shapes.infer([e])
    assert s.key(e) == s.key(c) == s.key(d)
    assert has_group(s, ("a", 0), ("c", 0))
    assert has_group(s, ("b", 1), ("c", 1))
    assert has_group(s, ("a", 1), ("b", 0))


def test_matrix_vector_dot():
    a, v, u = T.dmatrix("a"), T.dvector("v"), T.dvector("u")
    s = shapes.infer([T.dot(a, v) + u])
    assert has_group(s, ("a", 1), ("v", 0))
    assert has_group(s, ("a", 0), ("u", 0))
    assert not has_group(s, ("v", 0), ("u", 0))


def test_alloc_takes_its_dims_from_shape_i():
    x, a = T.dvector("x"), T.dmatrix("a")
    o = T.alloc(0.0, T.shape_i(x, 0), T.shape_i(a, 1))
    s = shapes.infer([o])
    assert source_name(s, o, 0) == ("x", 0)
    assert source_name(s, o, 1) == ("a", 1)
    assert groups(s) == []  # sizes are read, not required equal
    # the same dims reached through an elementwise product of dimshuffles
    p = x.dimshuffle(0, "x") * a.sum(axis=0).dimshuffle("x", 0)
    s = shapes.infer([o, p])
    assert s.key(o) is not None and s.key(o) == s.key(p)


def test_ones_like_has_its_models_key():
    x = T.dmatrix("x")
    o = T.ones_like(x)
    s = shapes.infer([o])
    assert s.key(o) == s.key(x) is not None


def test_alloc_of_a_vector_equates_it_with_the_given_length():
    x, y = T.dvector("x"), T.dvector("y")
    o = T.alloc(y, T.shape_i(x, 0))
    s = shapes.infer([o])
    assert has_group(s, ("x", 0), ("y", 0))
    o2 = T.alloc(y, 5, T.shape_i(x, 0))
    s = shapes.infer([o2])
    assert source_name(s, o2, 0) == 5
    assert has_group(s, ("x", 0), ("y", 0))


def test_alloc_with_a_constant_size_is_static():
    x = T.dvector("x")
    o = T.alloc(x, 4, T.shape_i(x, 0))
    s = shapes.infer([o])
    assert source_name(s, o, 0) == 4
    assert source_name(s, o, 1) == ("x", 0)


def test_dimshuffle_x_is_a_static_one():
    x = T.dvector("x")
    col, row = x.dimshuffle(0, "x"), x.dimshuffle("x", 0)
    s = shapes.infer([col, row])
    assert source_name(s, col, 0) == ("x", 0)
    assert source_name(s, col, 1) == 1
    assert source_name(s, row, 0) == 1
    assert source_name(s, row, 1) == ("x", 0)
    assert s.key(col) != s.key(row)
    a = T.dmatrix("a")
    t = a.T
    s = shapes.infer([t])
    assert source_name(s, t, 0) == ("a", 1)
    assert source_name(s, t, 1) == ("a", 0)


def test_reductions_drop_or_keep_axes():
    a = T.tensor3("a")
    r0 = a.sum(axis=0)
    r1 = a.max(axis=1, keepdims=True)
    r02 = a.prod(axis=(0, 2))
    rall = a.sum()
    m = a.mean(axis=2)
    s = shapes.infer([r0, r1, r02, rall, m])
    assert [source_name(s, r0, i) for i in range(2)] == [("a", 1), ("a", 2)]
    assert [source_name(s, r1, i) for i in range(3)] == [("a", 0), 1, ("a", 2)]
    assert [source_name(s, r02, i) for i in range(1)] == [("a", 1)]
    assert [source_name(s, m, i) for i in range(2)] == [("a", 0), ("a", 1)]
    assert s.key(rall) == "()"
    assert s.key(r0) != s.key(m)


def test_reduction_then_elemwise_equates_the_kept_axis():
    a, v = T.dmatrix("a"), T.dvector("v")
    s = shapes.infer([a.sum(axis=0) + v])
    assert has_group(s, ("a", 1), ("v", 0))
    assert not has_group(s, ("a", 0), ("v", 0))
    s = shapes.infer([a - a.max(axis=1, keepdims=True)])
    assert groups(s) == []


def test_one_hot_last_dim_from_shape_i():
    labels, p = T.ivector("labels"), T.dmatrix("p")
    oh = apply("one_hot", [labels, T.shape_i(p, 1)], dtype="float64")
    s = shapes.infer([oh])
    assert source_name(s, oh, 0) == ("labels", 0)
    assert source_name(s, oh, 1) == ("p", 1)
    # categorical_crossentropy multiplies it with log(p): rows of p and labels agree
    xent = T.nnet.categorical_crossentropy(p, labels)
    s = shapes.infer([xent])
    assert has_group(s, ("labels", 0), ("p", 0))
    assert source_name(s, xent, 0) in (("labels", 0), ("p", 0))


def test_one_hot_with_a_constant_class_count():
    labels = T.ivector("labels")
    oh = apply("one_hot", [labels, T.constant(5, dtype="int64")], dtype="float64")
    s = shapes.infer([oh])
    assert source_name(s, oh, 1) == 5


def test_softmax_keeps_its_input_shape():
    a = T.dmatrix("a")
    sm, lsm = T.nnet.softmax(a), T.nnet.log_softmax(a)
    s = shapes.infer([sm, lsm])
    assert s.key(sm) == s.key(lsm) == s.key(a) is not None


def test_static_shape_joins_a_group_with_its_size():
    x = T.dvector("x")
    c = T.constant(np.arange(3.0))
    s = shapes.infer([x + c])
    assert has_group(s, ("x", 0), 3)


def test_reshape_result_is_opaque():
    x, b = T.dvector("x"), T.dmatrix("b")
    r = T.reshape(x, (2, -1))
    z = r + b
    s = shapes.infer([z])
    assert s.key(r) is None
    assert s.key(z) is None
    assert s.key(b) is None  # b's dims are equal to an opaque one now
    assert s.source(r, 0) is None or s.source(r, 0) == 2
    assert not in_any_group(s, "x")  # x's length is not r's
    assert_groups_are_leaves_and_ints(s, [x, b])


def test_subtensor_result_is_opaque_and_never_equated_with_its_input():
    x, y, u = T.dvectors("x", "y", "u")
    sub = x[1:]
    z = (sub + y) * u
    s = shapes.infer([z])
    assert s.key(sub) is None
    assert s.key(z) is None
    assert s.key(y) is None and s.key(u) is None
    assert not in_any_group(s, "x")  # len(x) - 1 == len(y): x must not be checked against y
    assert has_group(s, ("y", 0), ("u", 0))  # y and u are still required equal
    assert_groups_are_leaves_and_ints(s, [x, y, u])


def test_advanced_index_and_concatenate_are_opaque():
    x, y, w = T.dvectors("x", "y", "w")
    idx = T.lvector("idx")
    g = x[idx]
    cat = T.concatenate([x, y])
    s = shapes.infer([g + w, cat * 2.0])
    assert s.key(g) is None and s.key(cat) is None and s.key(w) is None
    assert not in_any_group(s, "x") and not in_any_group(s, "idx")
    assert_groups_are_leaves_and_ints(s, [x, y, w, idx])


def test_checks_contain_only_leaves_and_ints_for_a_gradient_graph():
    x, labels = T.dmatrix("x"), T.ivector("labels")
    w = theano.shared(np.ones((3, 4)), name="w")
    cost = T.mean(T.nnet.categorical_crossentropy(T.nnet.softmax(T.dot(x, w)), labels))
    g = T.grad(cost, w)
    s = shapes.infer([cost, g])
    assert_groups_are_leaves_and_ints(s, [x, labels, w])
    assert has_group(s, ("x", 1), ("w", 0))
    assert has_group(s, ("x", 0), ("labels", 0))
    assert s.key(g) == s.key(w) is not None


# --------------------------------------------------------------------------- keys vs NumPy


def _mlp():
    x, w, b = T.dmatrix("x"), T.dmatrix("w"), T.dvector("b")
    h = T.tanh(T.dot(x, w) + b)
    out = [h.sum(axis=1), h.mean(), T.grad(h.sum(), w)]
    return [x, w, b], [np.ones((2, 3)), np.ones((3, 4)), np.ones(4)], out


def _softmax_xent():
    x, w, labels = T.dmatrix("x"), T.dmatrix("w"), T.ivector("labels")
    p = T.nnet.softmax(T.dot(x, w))
    cost = T.mean(T.nnet.categorical_crossentropy(p, labels))
    values = [np.ones((5, 3)), np.ones((3, 4)), np.array([0, 1, 2, 3, 0], dtype="int32")]
    return [x, w, labels], values, [cost, *T.grad(cost, [x, w])]


def _outer():
    x, y, a = T.dvector("x"), T.dvector("y"), T.dmatrix("a")
    o = x.dimshuffle(0, "x") * y.dimshuffle("x", 0) + a
    out = [o.sum(axis=0, keepdims=True), T.zeros_like(a) + o, T.grad((o**2).sum(), [x, y])]
    return [x, y, a], [np.ones(3), np.ones(4), np.ones((3, 4))], [out[0], out[1], *out[2]]


def _opaque_mix():
    x, y, a = T.dvector("x"), T.dvector("y"), T.dmatrix("a")
    z = x[1:] * y
    r = T.reshape(a, (-1,))
    cost = z.sum() + (r**2).sum() + T.concatenate([x, y]).sum()
    out = [z, r, cost, *T.grad(cost, [x, y, a])]
    return [x, y, a], [np.ones(4), np.ones(3), np.ones((2, 5))], out


def _logistic():
    x, t = T.dmatrix("x"), T.dvector("t")
    w, b = T.dvector("w"), T.dscalar("b")
    p = 1 / (1 + T.exp(-T.dot(x, w) - b))
    cost = (-t * T.log(p) - (1 - t) * T.log(1 - p)).mean() + 0.01 * (w**2).sum()
    values = [np.ones((6, 3)) * 0.1, np.ones(6) * 0.5, np.ones(3), np.array(0.0)]
    return [x, t, w, b], values, [cost, p > 0.5, *T.grad(cost, [w, b])]


def _matrix_ops():
    a, b, v = T.dmatrix("a"), T.dmatrix("b"), T.dvector("v")
    c = T.dot(a, b.T) + T.outer(v, v)
    d = T.nnet.log_softmax(c, axis=0) - T.max(c, axis=1, keepdims=True)
    return [a, b, v], [np.ones((3, 5)), np.ones((3, 5)), np.ones(3)], [d, T.grad(d.sum(), v)]


CASES = [_mlp, _softmax_xent, _outer, _opaque_mix, _logistic, _matrix_ops]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.__name__.strip("_"))
def test_keys_agree_with_numpy_shapes(case):
    inputs, values, outputs = case()
    s = shapes.infer(outputs)
    named = {id(v): (v, val) for v, val in zip(inputs, values, strict=True)}
    inner = [v for v in ancestors(outputs) if v.owner is not None]
    f = theano.function(inputs, inner, optimizer=None, on_unused_input="ignore")
    results = f(*values)
    actual = {id(v): np.shape(r) for v, r in zip(inner, results, strict=True)}
    actual.update({id(v): np.shape(val) for v, val in zip(inputs, values, strict=True)})
    by_key = defaultdict(list)
    for v in [*inputs, *inner]:
        key = s.key(v)
        if key is None:
            continue
        by_key[key].append(v)
        for axis in range(v.ndim):  # each axis reads a static size or an input's length
            src = s.source(v, axis)
            if isinstance(src, int):
                assert actual[id(v)][axis] == src, (v, axis, src)
            elif src is not None:
                leaf, leaf_axis = src
                assert actual[id(v)][axis] == np.shape(named[id(leaf)][1])[leaf_axis], (v, axis)
    shared_keys = 0
    for key, vs in by_key.items():
        shapes_seen = {actual[id(v)] for v in vs}
        assert len(shapes_seen) == 1, (key, [(v, actual[id(v)]) for v in vs])
        shared_keys += len(vs) > 1
    assert shared_keys, "the case should give some variables equal keys"
    # the inputs' values satisfy every check the graph implies
    for g in s.checks():
        sizes = {m if isinstance(m, int) else np.shape(named[id(m[0])][1])[m[1]] for m in g}
        assert len(sizes) == 1, g


def test_keys_distinguish_dims_of_different_lengths():
    """The cases above use distinct lengths per input axis: two variables whose evaluated shapes
    differ must not share a key (the converse of the check above)."""
    inputs, values, outputs = _softmax_xent()
    s = shapes.infer(outputs)
    inner = [v for v in ancestors(outputs) if v.owner is not None]
    f = theano.function(inputs, inner, optimizer=None, on_unused_input="ignore")
    shape_of = {s.key(v): np.shape(r) for v, r in zip(inner, f(*values), strict=True)}
    keys_by_shape = defaultdict(set)
    for key, shp in shape_of.items():
        if key is not None:
            keys_by_shape[shp].add(key)
    assert len(keys_by_shape) >= 3  # (5,), (5, 4), (3, 4), () ...


# --------------------------------------------------------------------------- runtime checks


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_elementwise_length_mismatch_names_both_inputs(optimizer):
    x, y = T.dvector("x"), T.dvector("y")
    f = theano.function([x, y], x + y, optimizer=optimizer)
    with pytest.raises(ValueError, match="shape mismatch") as info:
        f(np.ones(3), np.ones(4))
    msg = str(info.value)
    assert "input 0 (x)" in msg and "(3,)" in msg
    assert "input 1 (y)" in msg and "(4,)" in msg
    np.testing.assert_array_equal(f(np.arange(3.0), np.ones(3)), [1.0, 2.0, 3.0])


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_dot_inner_mismatch_names_both_inputs(optimizer):
    a, b = T.dmatrix("a"), T.dmatrix("b")
    f = theano.function([a, b], T.dot(a, b), optimizer=optimizer)
    with pytest.raises(ValueError) as info:
        f(np.ones((2, 3)), np.ones((4, 5)))
    msg = str(info.value)
    assert "input 0 (a)" in msg and "(2, 3)" in msg and "axis 1" in msg
    assert "input 1 (b)" in msg and "(4, 5)" in msg and "axis 0" in msg
    av, bv = np.arange(6.0).reshape(2, 3), np.arange(15.0).reshape(3, 5)
    np.testing.assert_allclose(f(av, bv), av @ bv, rtol=1e-15)


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_mismatch_is_caught_even_where_the_optimizer_drops_the_op(optimizer):
    """d sum(x + y) / dx is ones shaped like x + y: the optimized graph needs no y at all, but the
    call is still rejected, as the unoptimized one is."""
    x, y = T.dvector("x"), T.dvector("y")
    f = theano.function([x, y], T.grad((x + y).sum(), x), optimizer=optimizer)
    with pytest.raises(ValueError, match=r"input 0 \(x\).*input 1 \(y\)"):
        f(np.ones(3), np.ones(4))
    np.testing.assert_array_equal(f(np.zeros(3), np.zeros(3)), np.ones(3))


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_static_length_mismatch(optimizer):
    x = T.dvector("x")
    f = theano.function([x], x + T.constant(np.arange(3.0)), optimizer=optimizer)
    with pytest.raises(ValueError, match="static length is 3") as info:
        f(np.ones(4))
    assert "input 0 (x)" in str(info.value)
    np.testing.assert_array_equal(f(np.ones(3)), [1.0, 2.0, 3.0])


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_opaque_dims_raise_no_false_mismatch(optimizer):
    x, y = T.dvector("x"), T.dvector("y")
    f = theano.function([x, y], x[1:] + y, optimizer=optimizer)
    np.testing.assert_array_equal(f(np.arange(4.0), np.ones(3)), [2.0, 3.0, 4.0])


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_shared_variable_resized_out_of_step(optimizer):
    x = T.dvector("x")
    w = theano.shared(np.zeros(3), name="w")
    count = theano.shared(np.zeros(3), name="count")
    f = theano.function(
        [x], (w * x).sum(), updates=[(w, w + x), (count, count + 1)], optimizer=optimizer
    )
    assert f(np.ones(3)) == 0.0
    np.testing.assert_array_equal(w.get_value(), np.ones(3))
    np.testing.assert_array_equal(count.get_value(), np.ones(3))

    w.set_value(np.zeros(4))
    with pytest.raises(ValueError) as info:
        f(np.ones(3))
    msg = str(info.value)
    assert re.search(r"shared variable '?w'? of shape \(4,\)", msg), msg
    assert "input 0 (x)" in msg and "(3,)" in msg
    # nothing was updated by the failed call
    np.testing.assert_array_equal(w.get_value(), np.zeros(4))
    np.testing.assert_array_equal(count.get_value(), np.ones(3))

    w.set_value(np.full(3, 2.0))  # back in step: the function works again
    assert f(np.arange(3.0)) == pytest.approx(6.0)
    np.testing.assert_array_equal(w.get_value(), [2.0, 3.0, 4.0])
    np.testing.assert_array_equal(count.get_value(), np.full(3, 2.0))


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_two_shared_variables_out_of_step(optimizer):
    a = theano.shared(np.ones((2, 3)), name="a")
    b = theano.shared(np.ones((3, 2)), name="b")
    f = theano.function([], T.dot(a, b), updates=[(a, a * 2.0)], optimizer=optimizer)
    np.testing.assert_array_equal(f(), np.full((2, 2), 3.0))
    b.set_value(np.ones((4, 2)))
    with pytest.raises(ValueError) as info:
        f()
    msg = str(info.value)
    assert re.search(r"shared variable '?a'?", msg) and re.search(r"shared variable '?b'?", msg)
    np.testing.assert_array_equal(a.get_value(), np.full((2, 3), 2.0))
