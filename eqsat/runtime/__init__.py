"""The Theano-style runtime: compiled functions, inputs and shared variables."""

from eqsat.runtime.function import (
    Function,
    In,
    MissingInputError,
    UnusedInputError,
    function,
)
from eqsat.runtime.shared import SharedVariable, shared

__all__ = [
    "Function",
    "In",
    "MissingInputError",
    "SharedVariable",
    "UnusedInputError",
    "function",
    "shared",
]
