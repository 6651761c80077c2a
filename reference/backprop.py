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
changes a single bit of any result. Two devices recur. A product such as
``a @ W.T`` lands in a fresh array, which the next operation may overwrite
instead of allocating another: a new large array costs page faults, often
more than the arithmetic. ``+ b`` does so explicitly (``out=``); for
``(delta @ W) * f'`` NumPy does it by itself when the product is a
temporary of the same shape ("temporary elision", 256 KiB and up). And the
backward pass hands f' the stored activation, which saves sigmoid' one exp
(f' itself is computed from z where the output alone would lose digits).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from reference.activations import ACTIVATION_FUNCTIONS
from reference.losses import LOSS_FUNCTIONS, normaliser
from reference.network import Network, Params
from reference.validation import check_data, check_params, check_x


def _forward(network: Network, params: Params, x: np.ndarray) -> tuple[list, list]:
    """Return the pre-activations ``[z_1..z_L]`` and activations ``[a_0..a_L]``."""
    zs, activations = [], [x]
    for (weight, bias), name in zip(params, network.activations):
        z = activations[-1] @ weight.T
        if bias is not None:  # z + b, into the fresh product when that keeps its dtype (speed)
            z = np.add(z, bias, out=z) if z.dtype == np.result_type(z, bias) else z + bias
        zs.append(z)
        activations.append(ACTIVATION_FUNCTIONS[name].function(z))
    return zs, activations


def _loss(network: Network, params: Params, x: np.ndarray, y: np.ndarray) -> Any:
    """Return J for unchecked arrays of any dtype."""
    zs, activations = _forward(network, params, x)
    value, _ = LOSS_FUNCTIONS[network.loss]
    n = normaliser(network.loss, network.reduction, x.shape[0], network.sizes[-1])
    return value(zs[-1], activations[-1], y) / n


def _loss_and_gradients(
    network: Network, params: Params, x: np.ndarray, y: np.ndarray
) -> tuple[float, Params]:
    """Return J and its gradients by the layer-wise chain rule, on unchecked arrays."""
    zs, activations = _forward(network, params, x)
    value, output_delta = LOSS_FUNCTIONS[network.loss]
    n = normaliser(network.loss, network.reduction, x.shape[0], network.sizes[-1])
    output_activation = ACTIVATION_FUNCTIONS[network.activations[-1]]
    delta = output_delta(zs[-1], activations[-1], y, output_activation) / n
    grads: Params = [None] * network.depth  # type: ignore[list-item]
    for index in reversed(range(network.depth)):
        weight, bias = params[index]
        d_weight = delta.T @ activations[index]
        d_bias = delta.sum(axis=0) if bias is not None else None
        grads[index] = (d_weight, d_bias)
        if index > 0:
            previous = ACTIVATION_FUNCTIONS[network.activations[index - 1]]
            # f'_{l-1}(z_{l-1}), given a_{l-1} = activations[index]; one expression, for the elision (speed).
            delta = (delta @ weight) * previous.derivative(zs[index - 1], activations[index])
    return float(value(zs[-1], activations[-1], y) / n), grads


def forward(network: Network, params: Any, x: Any) -> np.ndarray:
    """Return the network's output a_L, shape (m, n_L) (logits for cross_entropy)."""
    params = check_params(network, params)
    _, activations = _forward(network, params, check_x(network, x))
    return activations[-1]


def loss(network: Network, params: Any, x: Any, y: Any) -> float:
    """Return the loss J of the batch (x, y), reduced as the network says."""
    params = check_params(network, params)
    x, y = check_data(network, x, y)
    return float(_loss(network, params, x, y))


def loss_and_gradients(network: Network, params: Any, x: Any, y: Any) -> tuple[float, Params]:
    """Return ``(J, grads)``: the loss and dJ/dW, dJ/db in the params' structure.

    This is the oracle every adapter is judged against.
    """
    params = check_params(network, params)
    x, y = check_data(network, x, y)
    return _loss_and_gradients(network, params, x, y)
