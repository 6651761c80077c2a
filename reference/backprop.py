"""Forward pass, loss and the layer-wise backward pass: the oracle.

Notation follows the documents, for a batch of ``m`` samples stored as rows:

    a_0 = x
    z_l = a_{l-1} W_l^T + b_l          (document 001: z = W a + b, per column)
    a_l = f_l(z_l)
    J   = (1/N) loss(z_L, a_L, y)

and backwards, with ``delta_l = dJ/dz_l``:

    delta_L = dJ/dz_L                  (reference.losses)
    dW_l    = delta_l^T a_{l-1}        (n_l, n_{l-1}), summed over the batch
    db_l    = sum over the batch of delta_l
    delta_{l-1} = (delta_l W_l) * f'_{l-1}(z_{l-1})

Public functions validate their arguments (``reference.validation``) and
work in float64; the underscored ones do the arithmetic on whatever dtype
they get (complex included, for the complex-step oracle).

Speed, where it shapes a line, is marked "(speed)" in a comment; none of it
changes a single bit of any result (``tests/test_bench.py`` compares with a
plain reimplementation). Two devices recur:

* Every array of a step can be written into a ``Workspace``, the arrays of
  an earlier step of the same shapes, instead of a fresh one (``out=``).
  ``reference.train`` does so from its second iteration on. A fresh large
  array is not free: glibc gives freed memory back to the system, and the
  next step's arrays fault it in again page by page, which at widths of 1024
  cost a third of the step. Without a workspace (``out`` of None) NumPy
  allocates, as usual. relu layers then make no new float array (only
  relu's boolean mask of f', an eighth of one); sigmoid and tanh still make
  their temporaries.
* The backward pass hands f' the stored activation, which saves sigmoid' one
  exp (f' itself is computed from z where the output alone would lose digits).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import numpy as np

from backprop_conformance.reference.activations import ACTIVATION_FUNCTIONS, Activation
from backprop_conformance.reference.losses import LOSS_FUNCTIONS, normaliser
from backprop_conformance.reference.network import Network, Params
from backprop_conformance.reference.overflow import raising
from backprop_conformance.reference.validation import check_data, check_params, check_x


class Workspace(NamedTuple):
    """The arrays of one forward and backward pass, per layer l = 1..L (index l - 1).

    ``zs`` and ``activations`` hold z_l and a_l (the same array for the
    identity), ``deltas`` the delta_l of the hidden layers (the output
    layer's comes from the loss), ``grads`` the (dW_l, db_l) pairs. Passed
    back in as ``out``, every one of them is overwritten (speed). After
    ``reference.training._train_step`` the grads hold learning_rate * dJ/dtheta
    (the update scaled them in place): a workspace is scratch to reuse, not
    a result to read.
    """

    zs: list
    activations: list
    deltas: list
    grads: Params

    @classmethod
    def empty(cls, depth: int) -> Workspace:
        """Return a workspace of Nones: with it, NumPy allocates every array."""
        return cls([None] * depth, [None] * depth, [None] * depth, [(None, None)] * depth)


class Rules(NamedTuple):
    """The pieces a pass is built from: activations, losses and the reduction's normaliser.

    The defaults are the reference's own. ``backprop_conformance.suite.variants``
    builds named deviations from exact math (relu'(0) = 0.5, mse without its
    factor 2, ...) by swapping one piece, so a deviation is computed by this
    same pass, not by a second implementation.
    """

    activations: Mapping[str, Activation] = ACTIVATION_FUNCTIONS
    losses: Mapping[str, tuple[Callable[..., Any], Callable[..., Any]]] = LOSS_FUNCTIONS
    normaliser: Callable[[str, str, int, int], int] = normaliser


REFERENCE_RULES = Rules()


def _forward(
    network: Network, params: Params, x: np.ndarray, out: Workspace | None = None, rules: Rules = REFERENCE_RULES
) -> tuple[list, list]:
    """Return the pre-activations ``[z_1..z_L]`` and activations ``[a_0..a_L]``, into ``out`` if given."""
    out = out or Workspace.empty(network.depth)
    zs, activations = [], [x]
    for index, ((weight, bias), name) in enumerate(zip(params, network.activations)):
        z = np.matmul(activations[-1], weight.T, out=out.zs[index])
        if bias is not None:  # z + b, into the product when that keeps its dtype (speed)
            z = np.add(z, bias, out=z) if z.dtype == np.result_type(z, bias) else z + bias
        zs.append(z)
        activations.append(rules.activations[name].function(z, out=out.activations[index]))
    return zs, activations


def _loss(network: Network, params: Params, x: np.ndarray, y: np.ndarray) -> Any:
    """Return J for unchecked arrays of any dtype."""
    zs, activations = _forward(network, params, x)
    value, _ = LOSS_FUNCTIONS[network.loss]
    n = normaliser(network.loss, network.reduction, x.shape[0], network.sizes[-1])
    return value(zs[-1], activations[-1], y) / n


def _backprop(
    network: Network,
    params: Params,
    x: np.ndarray,
    y: np.ndarray,
    out: Workspace | None = None,
    rules: Rules = REFERENCE_RULES,
) -> tuple[float, Workspace]:
    """Return J and every array of the pass, gradients included, by the layer-wise chain rule.

    On unchecked arrays; ``out``, a workspace of the same shapes and dtypes,
    is overwritten instead of allocating (speed). ``rules``: the pieces of
    the pass (the reference's unless a variant is computed).
    """
    out = out or Workspace.empty(network.depth)
    zs, activations = _forward(network, params, x, out, rules)
    value, output_delta = rules.losses[network.loss]
    n = rules.normaliser(network.loss, network.reduction, x.shape[0], network.sizes[-1])
    output_activation = rules.activations[network.activations[-1]]
    delta = output_delta(zs[-1], activations[-1], y, output_activation) / n
    deltas: list = [None] * network.depth
    grads: Params = [None] * network.depth  # type: ignore[list-item]
    for index in reversed(range(network.depth)):
        weight, bias = params[index]
        d_weight, d_bias = out.grads[index]
        d_weight = np.matmul(delta.T, activations[index], out=d_weight)
        d_bias = None if bias is None else np.sum(delta, axis=0, out=d_bias)
        grads[index] = (d_weight, d_bias)
        if index > 0:
            previous = rules.activations[network.activations[index - 1]]
            delta = np.matmul(delta, weight, out=out.deltas[index - 1])
            # times f'_{l-1}(z_{l-1}), given a_{l-1} = activations[index]; in place, into the product (speed).
            delta *= previous.derivative(zs[index - 1], activations[index])
            deltas[index - 1] = delta
    return float(value(zs[-1], activations[-1], y) / n), Workspace(zs, activations[1:], deltas, grads)


def _loss_and_gradients(
    network: Network, params: Params, x: np.ndarray, y: np.ndarray
) -> tuple[float, Params]:
    """Return J and its gradients by the layer-wise chain rule, on unchecked arrays."""
    value, arrays = _backprop(network, params, x, y)
    return value, arrays.grads


def forward(network: Network, params: Any, x: Any) -> np.ndarray:
    """Return the network's output a_L, shape (m, n_L) (logits for cross_entropy).

    Raises ReferenceOverflow, naming the array, where float64 overflows.
    """
    params, x = check_params(network, params, copy=False), check_x(network, x, copy=False)  # read only (speed)
    with raising("forward", network, params, x, None):
        _, activations = _forward(network, params, x)
    return activations[-1]


def loss(network: Network, params: Any, x: Any, y: Any) -> float:
    """Return the loss J of the batch (x, y), reduced as the network says."""
    params = check_params(network, params, copy=False)  # read only (speed)
    x, y = check_data(network, x, y, copy=False)
    with raising("loss", network, params, x, y):
        return float(_loss(network, params, x, y))


def loss_and_gradients(network: Network, params: Any, x: Any, y: Any) -> tuple[float, Params]:
    """Return ``(J, grads)``: the loss and dJ/dW, dJ/db in the params' structure.

    This is the oracle every adapter is judged against. Raises
    ReferenceOverflow, naming the array, where float64 overflows.
    """
    params = check_params(network, params, copy=False)  # read only (speed)
    x, y = check_data(network, x, y, copy=False)
    with raising("loss_and_gradients", network, params, x, y):
        return _loss_and_gradients(network, params, x, y)

