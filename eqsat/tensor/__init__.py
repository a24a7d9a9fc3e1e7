"""`import eqsat.tensor as T`: Theano's tensor namespace."""

from eqsat.grad import grad, hessian, jacobian
from eqsat.graph import Constant, Type, Variable
from eqsat.ops import constant
from eqsat.tensor import methods as _methods  # installs x + y, x.sum(), ...
from eqsat.tensor import nnet
from eqsat.tensor.basic import *
from eqsat.tensor.basic import abs_, as_tensor_variable, max, min, round, sum
from eqsat.tensor.indexing import inc_subtensor, set_subtensor
from eqsat.tensor.nnet import sigmoid, softplus
from eqsat.tensor.variables import *

TensorVariable = Variable
TensorConstant = Constant
TensorType = Type
__all__ = [n for n in dir() if not n.startswith("_")]
