"""Theano's `T.nnet`: activations and losses used to train networks."""

from __future__ import annotations

from typing import Any

from eqsat.graph import Variable
from eqsat.ops import apply, as_variable
from eqsat.tensor import basic as T


def sigmoid(x: Any) -> Variable:
    """1 / (1 + exp(-x)), elementwise."""
    return apply("sigmoid", [x])


def softplus(x: Any) -> Variable:
    """log(1 + exp(x)), elementwise."""
    return apply("softplus", [x])


def relu(x: Any, alpha: float = 0) -> Variable:
    """max(x, 0); with alpha, the leaky form max(x, alpha * x) for 0 <= alpha <= 1."""
    x = as_variable(x)
    return T.maximum(x, 0) if alpha == 0 else T.maximum(x, alpha * x)


def _axis(x: Variable, axis: int) -> int:
    return T.normalize_axis(x, axis)[0]


def softmax(x: Any, axis: int = -1) -> Variable:
    """exp(x) / sum(exp(x)) along `axis` (the last one by default, rows of a matrix)."""
    x = as_variable(x)
    return apply("softmax", [x], axis=_axis(x, axis))


def log_softmax(x: Any, axis: int = -1) -> Variable:
    """log(softmax(x)) computed stably along `axis`."""
    x = as_variable(x)
    return apply("log_softmax", [x], axis=_axis(x, axis))


def binary_crossentropy(output: Any, target: Any) -> Variable:
    """-(target * log(output) + (1 - target) * log(1 - output)), elementwise."""
    output, target = as_variable(output), as_variable(target)
    return -(target * T.log(output) + (1 - target) * T.log(1 - output))


def categorical_crossentropy(coding_dist: Any, true_dist: Any) -> Variable:
    """Cross-entropy of each row of `coding_dist` against one-hot rows or integer labels."""
    coding_dist, true_dist = as_variable(coding_dist), as_variable(true_dist)
    if true_dist.ndim == coding_dist.ndim:
        return -T.sum(true_dist * T.log(coding_dist), axis=-1)
    if true_dist.ndim == coding_dist.ndim - 1 and true_dist.dtype[0] in "iu":
        n = T.shape_i(coding_dist, coding_dist.ndim - 1)
        one_hot = apply("one_hot", [true_dist, n], dtype=coding_dist.dtype)
        return -T.sum(one_hot * T.log(coding_dist), axis=-1)
    raise TypeError(
        f"categorical_crossentropy: true_dist must be one-hot rows like coding_dist "
        f"(ndim {coding_dist.ndim}) or integer labels (ndim {coding_dist.ndim - 1}); "
        f"got {true_dist!r} with ndim={true_dist.ndim}, dtype={true_dist.dtype}"
    )
