"""The JAX building blocks of the exact-shape path: layouts, jax.nn and optax pieces, the sgd update.

Layout divergence (documented, converted at this boundary): inside JAX the
params follow the JAX/Flax convention, one ``{"kernel", "bias"}`` dict per
layer with ``kernel`` of shape ``(n_in, n_out)``, so that ``z = a @ kernel +
b``. Ours is ``W`` of shape ``(n_out, n_in)``: ``kernel = W.T``.
``to_jax_params`` and ``from_jax_params`` are the only places that transpose.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from backprop_conformance.adapters.protocol import AdapterUnavailable
from backprop_conformance.reference.conventions import PARAMETERS
from backprop_conformance.reference.network import Params
from backprop_conformance.reference.specs import base, parse

INSTALL_HINT = "jax is not installed: pip install 'backprop-conformance[jax]'"

JaxParams = list[dict[str, Any]]


def _import_jax() -> None:
    """Import jax, jax.numpy and optax, or raise AdapterUnavailable saying how to install them."""
    try:
        for module in ("jax", "jax.numpy", "optax"):
            importlib.import_module(module)
    except ImportError as error:
        raise AdapterUnavailable(f"{INSTALL_HINT} ({error})") from None


def to_jax_params(params: Params, dtype: str) -> JaxParams:
    """Return our ``(W, b)`` pairs as JAX/Flax layer dicts ``{"kernel": W.T, "bias": b}``.

    Layout boundary: our ``W`` is ``(n_out, n_in)``, a JAX kernel is
    ``(n_in, n_out)``. A layer without bias has no ``"bias"`` key.
    """
    layers = []
    for weight, bias in params:
        layer = {"kernel": np.ascontiguousarray(np.asarray(weight, dtype=dtype).T)}
        if bias is not None:
            layer["bias"] = np.asarray(bias, dtype=dtype)
        layers.append(layer)
    return layers


def from_jax_params(layers: JaxParams) -> Params:
    """Return JAX/Flax layer dicts as our ``(W, b)`` NumPy pairs, ``W = kernel.T``.

    Layout boundary: the inverse of ``to_jax_params``; every array is a fresh,
    writeable NumPy copy.
    """
    return [
        (
            np.array(np.asarray(layer["kernel"]).T),
            np.array(layer["bias"]) if "bias" in layer else None,
        )
        for layer in layers
    ]


class _NetworkFunctions(NamedTuple):
    """The pure (optionally jitted) functions of one network structure."""

    forward: Callable[..., Any]
    loss_and_gradients: Callable[..., Any]


def _activation_functions() -> dict[str, Callable[[Any, Any], Any]]:
    """Return each activation name's JAX function of (z, parameter): leaky_relu's slope, elu's alpha, else unused."""
    import jax
    import jax.numpy as jnp

    return {
        "identity": lambda z, parameter: z,
        "sigmoid": lambda z, parameter: jax.nn.sigmoid(z),
        "tanh": lambda z, parameter: jnp.tanh(z),
        "relu": lambda z, parameter: jax.nn.relu(z),
        "gelu": lambda z, parameter: jax.nn.gelu(z, approximate=False),  # jax's default is the tanh approximation
        "gelu_tanh": lambda z, parameter: jax.nn.gelu(z, approximate=True),
        "silu": lambda z, parameter: jax.nn.silu(z),
        "softplus": lambda z, parameter: jax.nn.softplus(z),
        "leaky_relu": lambda z, parameter: jax.nn.leaky_relu(z, parameter),  # leaky_relu'(0) = 1 in JAX
        "elu": lambda z, parameter: jax.nn.elu(z, parameter),
    }


def activation_parameter(spec: str) -> float:
    """Return the one parameter an activation spec carries (leaky_relu's slope, elu's alpha), else 0."""
    values = parse(spec, PARAMETERS, "activation")[1]
    return float(next(iter(values.values()), 0.0))


def loss_parameter(spec: str) -> float:
    """Return the one parameter a loss spec carries (huber's delta, cross_entropy's label_smoothing), else 0."""
    values = parse(spec, PARAMETERS, "loss")[1]
    return float(next(iter(values.values()), 0.0))


def _forward_pass(activations: tuple[str, ...], layers: JaxParams, x: Any) -> tuple[Any, Any]:
    """Return the output layer's pre-activation z_L (logits) and activation a_L."""
    import jax.numpy as jnp

    functions = _activation_functions()
    a = x
    for layer, spec in zip(layers, activations):
        # (m, n_in) @ (n_in, n_out), the JAX layout; jnp.matmul, not @, so that an eager call on
        # NumPy inputs (jit=False) computes in JAX too, not in NumPy.
        z = jnp.matmul(a, layer["kernel"])
        if "bias" in layer:
            z = z + layer["bias"]
        a = functions[base(spec)](z, activation_parameter(spec))
    return z, a


def _elementwise_loss(loss: str, z: Any, a: Any, y: Any) -> Any:
    """Return the optax loss per element (mse, huber, bce, bce_with_logits) or per sample (cross_entropy)."""
    import jax
    import optax

    name, parameter = base(loss), loss_parameter(loss)
    if name == "mse":
        return optax.squared_error(a, y)
    if name == "huber":
        return optax.huber_loss(a, y, delta=parameter)
    if name in ("bce", "bce_with_logits"):  # on logits: log sigmoid(z) in closed form, never log(0)
        return optax.sigmoid_binary_cross_entropy(z, y)
    if parameter:  # label smoothing: optax.smooth_labels of the one-hot targets
        return optax.softmax_cross_entropy(z, optax.smooth_labels(jax.nn.one_hot(y, z.shape[-1], dtype=z.dtype),
                                                                   parameter))
    return optax.softmax_cross_entropy_with_integer_labels(z, y)


def _reduce(reduction: str, elementwise: Any) -> Any:
    """Return the mean over all entries (every element, or every sample) or the sum."""
    import jax.numpy as jnp

    return jnp.mean(elementwise) if reduction == "mean" else jnp.sum(elementwise)


@functools.lru_cache(maxsize=1024)
def _network_functions(
    activations: tuple[str, ...], loss: str, reduction: str, dtype: str, precision: str, jit: bool
) -> _NetworkFunctions:
    """Return the forward and loss-and-gradients functions of one network structure.

    Cached, so each ``jax.jit`` object is made once and reused: JAX then
    caches one compilation per input shape. Layer widths and the presence of
    biases come from the params' shapes and tree structure, so they need no
    key here; dtype and precision are in the key so that a jit object only
    ever sees one x64 / matmul-precision setting (they are in JAX's own jit
    key too: this is belt and braces).
    """
    import jax

    def forward(layers: JaxParams, x: Any) -> Any:
        return _forward_pass(activations, layers, x)[1]

    def objective(layers: JaxParams, x: Any, y: Any) -> Any:
        z, a = _forward_pass(activations, layers, x)
        return _reduce(reduction, _elementwise_loss(loss, z, a, y))

    loss_and_gradients = jax.value_and_grad(objective)
    if jit:
        return _NetworkFunctions(jax.jit(forward), jax.jit(loss_and_gradients))
    return _NetworkFunctions(forward, loss_and_gradients)


@functools.lru_cache(maxsize=16)
def _sgd_update_function(dtype: str, precision: str, jit: bool) -> Callable[..., Any]:
    """Return ``(grads, state, layers, learning_rate) -> (layers, state)``, one optax.sgd step.

    Kept apart from the gradient so that its compilation depends on the
    params' shapes only: networks that differ in activations, loss or batch
    size share it, which halves the compilations a fuzzer pays for.
    """
    import jax
    import optax

    def sgd_update(grads: JaxParams, state: Any, layers: JaxParams, learning_rate: Any) -> Any:
        updates, state = optax.sgd(learning_rate).update(grads, state, layers)
        return optax.apply_updates(layers, updates), state

    return jax.jit(sgd_update) if jit else sgd_update


# ---------------------------------------------------------------- padded shapes

#: Run-time codes of the activations in the padded functions; ``SKIP`` marks a padding layer.
