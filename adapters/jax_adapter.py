"""The networks rebuilt in JAX: pure functions, optax losses, autodiff and optax.sgd.

Which JAX/optax piece implements which part of the math (``reference.conventions``):

forward         ``z_l = a_{l-1} @ kernel_l + bias_l`` with ``jnp.matmul``;
                ``a_l = f_l(z_l)`` with ``jax.nn.sigmoid``, ``jnp.tanh``,
                ``jax.nn.relu`` (relu'(0) = 0, as ours) or the identity.
losses          elementwise ``optax.squared_error(a_L, y)`` (mse),
                ``optax.sigmoid_binary_cross_entropy(z_L, y)`` (bce, on the
                output layer's logits ``z_L``, not on ``a_L``: no clamp, like
                the reference's softplus form),
                ``optax.softmax_cross_entropy_with_integer_labels(z_L, c)``
                (cross_entropy, per sample); then ``jnp.mean`` over all
                elements (mse, bce) or samples (cross_entropy), or ``jnp.sum``.
gradients       ``jax.value_and_grad`` of that loss: reverse-mode autodiff,
                not a hand-written chain rule.
update          ``optax.sgd(learning_rate)``: ``init``, ``update`` and
                ``optax.apply_updates``, i.e. theta + (-learning_rate * grad).
compilation     ``jax.jit`` (``jit=True``): the forward and the loss-and-
                gradients functions are built once per network structure,
                dtype and precision (``_network_functions``), the sgd update
                once per dtype and precision (``_sgd_update_function``); JAX
                then compiles each once per input shape and caches it.
precision       ``jax.enable_x64`` and ``jax.default_matmul_precision``, both
                thread-local context managers entered around every call only.

Layout divergence (documented, converted at this boundary): inside JAX the
params follow the JAX/Flax convention, one ``{"kernel", "bias"}`` dict per
layer with ``kernel`` of shape ``(n_in, n_out)``, so that ``z = a @ kernel +
b``. Ours is ``W`` of shape ``(n_out, n_in)``: ``kernel = W.T``.
``to_jax_params`` and ``from_jax_params`` are the only places that transpose.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import numpy as np

from adapters.protocol import DTYPES, AdapterUnavailable, Trajectory
from reference.network import Network, Params
from reference.validation import (
    check_batches,
    check_data,
    check_learning_rate,
    check_params,
    check_x,
)

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


def _activation_functions() -> dict[str, Callable[[Any], Any]]:
    """Return each activation name's JAX function."""
    import jax
    import jax.numpy as jnp

    return {
        "identity": lambda z: z,
        "sigmoid": jax.nn.sigmoid,
        "tanh": jnp.tanh,
        "relu": jax.nn.relu,
    }


def _forward_pass(activations: tuple[str, ...], layers: JaxParams, x: Any) -> tuple[Any, Any]:
    """Return the output layer's pre-activation z_L (logits) and activation a_L."""
    import jax.numpy as jnp

    functions = _activation_functions()
    a = x
    for layer, name in zip(layers, activations):
        # (m, n_in) @ (n_in, n_out), the JAX layout; jnp.matmul, not @, so that an eager call on
        # NumPy inputs (jit=False) computes in JAX too, not in NumPy.
        z = jnp.matmul(a, layer["kernel"])
        if "bias" in layer:
            z = z + layer["bias"]
        a = functions[name](z)
    return z, a


def _elementwise_loss(loss: str, z: Any, a: Any, y: Any) -> Any:
    """Return the optax loss per element (mse, bce) or per sample (cross_entropy)."""
    import optax

    if loss == "mse":
        return optax.squared_error(a, y)
    if loss == "bce":  # on logits: log sigmoid(z) in closed form, never log(0)
        return optax.sigmoid_binary_cross_entropy(z, y)
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


class JaxAdapter:
    """The adapter protocol on JAX and optax, in float32 or float64.

    ``JaxAdapter(dtype="float64", jit=True, matmul_precision="highest")``.
    Params and data cross the boundary as NumPy arrays in our layout and come
    back as NumPy arrays of ``dtype``; inputs are never modified.
    """

    name = "jax"

    def __init__(self, dtype: str = "float64", jit: bool = True, matmul_precision: str = "highest") -> None:
        if dtype not in DTYPES:
            raise ValueError(f"dtype={dtype!r} is not one of {', '.join(DTYPES)}")
        _import_jax()
        import jax

        try:
            jax.default_matmul_precision(matmul_precision)
        except ValueError:
            raise ValueError(
                f"matmul_precision={matmul_precision!r} is not a jax_default_matmul_precision value "
                "such as 'highest', 'high' or 'default'"
            ) from None
        self.dtype: str = dtype
        self.jit: bool = bool(jit)
        self.matmul_precision: str = matmul_precision

    def __repr__(self) -> str:
        return f"JaxAdapter(dtype={self.dtype!r}, jit={self.jit!r}, matmul_precision={self.matmul_precision!r})"

    @contextlib.contextmanager
    def _scope(self) -> Iterator[None]:
        """Enter this adapter's x64 mode and matmul precision for one call, then restore.

        ``jax.enable_x64`` is JAX's public, thread-local context manager for
        ``jax_enable_x64`` (jax >= 0.8; ``jax.experimental.enable_x64`` was its
        deprecated predecessor, removed in 0.10). Entered per call, it leaves the
        caller's setting as it was. float32 enters x64 *off*, so float32
        results do not depend on the caller's setting either.

        ``jax.default_matmul_precision``: with the default, a float32 matmul
        on a GPU may use TF32 (or bf16 passes on a TPU), about 1e-3 relative
        error, which the suite would rightly judge a wrong gradient. "highest" asks for full
        float32 products. It is read when a function is traced, and both
        settings are part of JAX's jit cache key, so entering the same values
        on every call keeps the compilation cache hitting.
        """
        import jax

        with jax.enable_x64(self.dtype == "float64"), jax.default_matmul_precision(self.matmul_precision):
            yield

    def _functions(self, network: Network) -> _NetworkFunctions:
        """Return the cached functions for ``network``'s structure in this adapter's settings."""
        return _network_functions(
            network.activations, network.loss, network.reduction, self.dtype, self.matmul_precision, self.jit
        )

    def _jax_data(self, network: Network, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return x (and float targets) in this dtype; class labels as int32."""
        targets = y.astype(np.int32) if network.loss == "cross_entropy" else y.astype(self.dtype)
        return x.astype(self.dtype), targets

    def jaxpr(self, network: Network, params: Params, x: np.ndarray, y: np.ndarray) -> str:
        """Return the jaxpr that loss_and_gradients traces for these inputs, as text.

        Traced inside this adapter's scope, so it shows what JAX hands to XLA:
        the dtypes, and each ``dot_general``'s ``precision`` (the matmul
        precision is otherwise invisible on a CPU, which ignores it).
        """
        import jax

        layers = to_jax_params(check_params(network, params), self.dtype)
        x, y = self._jax_data(network, *check_data(network, x, y))
        with self._scope():
            return str(jax.make_jaxpr(self._functions(network).loss_and_gradients)(layers, x, y))

    def forward(self, network: Network, params: Params, x: np.ndarray) -> np.ndarray:
        """Return the output a_L, shape (m, n_L), as a NumPy array of this dtype."""
        layers = to_jax_params(check_params(network, params), self.dtype)
        x = check_x(network, x).astype(self.dtype)
        with self._scope():
            return np.array(self._functions(network).forward(layers, x))

    def loss_and_gradients(
        self, network: Network, params: Params, x: np.ndarray, y: np.ndarray
    ) -> tuple[float, Params]:
        """Return ``(J, grads)`` from ``jax.value_and_grad``, grads in our (W, b) layout."""
        layers = to_jax_params(check_params(network, params), self.dtype)
        x, y = self._jax_data(network, *check_data(network, x, y))
        with self._scope():
            value, grads = self._functions(network).loss_and_gradients(layers, x, y)
            return float(value), from_jax_params(grads)

    def sgd_step(self, network: Network, params: Params, x: np.ndarray, y: np.ndarray, learning_rate: float) -> Params:
        """Return the params after one ``optax.sgd`` step on (x, y), in our layout."""
        x, y = check_data(network, x, y)
        return self.train(network, params, x, y, [np.arange(len(x))], learning_rate).params

    def train(
        self,
        network: Network,
        params: Params,
        x: np.ndarray,
        y: np.ndarray,
        batches: list[np.ndarray],
        learning_rate: float,
    ) -> Trajectory:
        """Return the Trajectory of ``optax.sgd`` over ``batches``: each loss taken before its update.

        The batches are followed exactly as given (a partial last batch has
        its own shape, hence its own compilation, once).
        """
        layers = to_jax_params(check_params(network, params), self.dtype)
        x, y = self._jax_data(network, *check_data(network, x, y))
        batches = check_batches(batches, x.shape[0])
        rate = np.asarray(check_learning_rate(learning_rate), dtype=self.dtype)
        loss_and_gradients = self._functions(network).loss_and_gradients
        sgd_update = _sgd_update_function(self.dtype, self.matmul_precision, self.jit)
        with self._scope():
            import optax

            state = optax.sgd(rate).init(layers)
            losses = []
            for batch in batches:
                value, grads = loss_and_gradients(layers, x[batch], y[batch])
                layers, state = sgd_update(grads, state, layers, rate)
                losses.append(value)
            return Trajectory(losses=np.array(losses, dtype=np.float64), params=from_jax_params(layers))
