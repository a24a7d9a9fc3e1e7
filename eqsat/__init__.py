"""eqsat: Theano's API, an equality-saturation optimizer, and compiled kernels.

import eqsat as theano
import eqsat.tensor as T
"""

from eqsat import tensor
from eqsat.config import config
from eqsat.explain import explain  # the function: it shadows the submodule's attribute
from eqsat.grad import grad
from eqsat.printing import debugprint, pp
from eqsat.runtime import (
    Function,
    In,
    MissingInputError,
    SharedVariable,
    UnusedInputError,
    function,
    shared,
)

Param = In  # Theano's older name
__version__ = "0.1.0"
__all__ = [
    "Function",
    "In",
    "MissingInputError",
    "Param",
    "SharedVariable",
    "UnusedInputError",
    "config",
    "debugprint",
    "explain",
    "function",
    "grad",
    "pp",
    "shared",
    "tensor",
]
