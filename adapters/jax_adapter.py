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
compilation     ``jax.jit`` (``jit=True``). Padded (``pad=True``, the
                default): one loss-and-gradients function
                (``_padded_loss_and_gradients_function``) and one forward
                per dtype and precision; every network is padded to a bucket
                shape and its activations, widths, depth and bias
                (``_Structure``), its loss, reduction and targets
                (``_Objective``) travel as run-time arrays, so JAX compiles
                once per bucket: one loss-and-gradients, one forward and one
                sgd update per dtype cover every network of depth <= 8 and
                width <= 16 on <= 16 samples, of every loss and
                reduction. Unpadded
                (``pad=False``): the functions are built once per network
                structure (``_network_functions``) and JAX compiles them once
                per input shape. The sgd update (``_sgd_update_function``) is
                built once per dtype and precision and compiled per params
                shape.
precision       ``jax.enable_x64`` and ``jax.default_matmul_precision``, both
                thread-local context managers entered around every call only.

The pieces live in ``adapters.jax_functions`` (layouts, the exact-shape
functions, the sgd update) and ``adapters.jax_padded`` (padding, and why it
changes no result); this module is the adapter that uses them.

Layout divergence (documented, converted at this boundary): inside JAX the
params follow the JAX/Flax convention, one ``{"kernel", "bias"}`` dict per
layer with ``kernel`` of shape ``(n_in, n_out)``, so that ``z = a @ kernel +
b``. Ours is ``W`` of shape ``(n_out, n_in)``: ``kernel = W.T``.
``to_jax_params`` and ``from_jax_params`` are the only places that transpose.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from backprop_conformance.adapters.jax_functions import (
    JaxParams,
    _import_jax,
    _network_functions,
    _NetworkFunctions,
    _sgd_update_function,
    from_jax_params,
    to_jax_params,
)
from backprop_conformance.adapters.jax_padded import (
    _padded_forward_function,
    _padded_loss_and_gradients_function,
    _Padding,
    _unpadded,
)
from backprop_conformance.adapters.optax_optimizers import optax_update_function
from backprop_conformance.adapters.protocol import DTYPES, Trajectory
from backprop_conformance.reference.network import Network, Params
from backprop_conformance.reference.optimizers import Optimizer
from backprop_conformance.reference.validation import (
    check_batches,
    check_data,
    check_learning_rate,
    check_params,
    check_x,
)

__all__ = ["JaxAdapter", "from_jax_params", "to_jax_params"]


class JaxAdapter:
    """The adapter protocol on JAX and optax, in float32 or float64.

    ``JaxAdapter(dtype="float64", jit=True, matmul_precision="highest", pad=True)``.
    Params and data cross the boundary as NumPy arrays in our layout and come
    back as NumPy arrays of ``dtype``; inputs are never modified.

    ``pad`` (with ``jit``): run every network through the padded functions,
    which compile once per padded shape instead of once per network, loss
    and batch size; their padding contributes exact zeros, and they differ
    from ``pad=False`` (each network's own exact-shape functions) only in the
    order XLA sums the real terms (see the module docstring). Eager calls
    (``jit=False``) are never padded.
    """

    name = "jax"
    #: jax.nn.leaky_relu's gradient at exactly 0 is 1 (torch's and ours: the slope): a known divergence.
    conventions = ("leaky_relu'(0) = 1",)
    #: train(..., optimizer=) runs optax: the optax convention (``reference.optimizers``).
    optimizer_conventions = ("optax",)

    def __init__(
        self, dtype: str = "float64", jit: bool = True, matmul_precision: str = "highest", pad: bool = True
    ) -> None:
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
        self.pad: bool = bool(pad)

    def __repr__(self) -> str:
        return (
            f"JaxAdapter(dtype={self.dtype!r}, jit={self.jit!r}, "
            f"matmul_precision={self.matmul_precision!r}, pad={self.pad!r})"
        )

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

    @property
    def padded(self) -> bool:
        """Return whether calls run the padded functions (``pad`` and ``jit``)."""
        return self.pad and self.jit

    def _functions(self, network: Network) -> _NetworkFunctions:
        """Return the cached exact-shape functions for ``network``'s structure in this adapter's settings."""
        return _network_functions(
            network.activations, network.loss, network.reduction, self.dtype, self.matmul_precision, self.jit
        )

    def _jax_data(self, network: Network, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return x (and float targets) in this dtype; class labels as int32."""
        targets = y.astype(np.int32) if network.loss_name == "cross_entropy" else y.astype(self.dtype)
        return x.astype(self.dtype), targets

    def _jax_layers(self, network: Network, params: Params) -> JaxParams:
        """Return checked params as JAX layers of this dtype, padded when padding."""
        layers = to_jax_params(check_params(network, params), self.dtype)
        return _Padding.of(network, 1).layers(layers, self.dtype) if self.padded else layers

    def _our_params(self, network: Network, layers: JaxParams) -> Params:
        """Return JAX layers (padded when padding) as our (W, b) pairs, cut to the network's shapes."""
        return from_jax_params(_unpadded(layers, network) if self.padded else layers)

    def _loss_and_gradients_call(
        self, network: Network, layers: JaxParams, x: np.ndarray, y: np.ndarray
    ) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        """Return the jitted (or eager) function and the arguments that give (J, grads) on (x, y)."""
        if not self.padded:
            return self._functions(network).loss_and_gradients, (layers, x, y)
        padding = _Padding.of(network, len(x))
        function = _padded_loss_and_gradients_function(self.dtype, self.matmul_precision)
        structure, objective = padding.structure(network, self.dtype), padding.objective(network, y, self.dtype)
        return function, (layers, structure, padding.x(x), objective)

    def jaxpr(self, network: Network, params: Params, x: np.ndarray, y: np.ndarray) -> str:
        """Return the jaxpr that loss_and_gradients traces for these inputs, as text.

        Traced inside this adapter's scope, so it shows what JAX hands to XLA:
        the dtypes, and each ``dot_general``'s ``precision`` (the matmul
        precision is otherwise invisible on a CPU, which ignores it).
        """
        import jax

        layers = self._jax_layers(network, params)
        x, y = self._jax_data(network, *check_data(network, x, y))
        function, arguments = self._loss_and_gradients_call(network, layers, x, y)
        with self._scope():
            return str(jax.make_jaxpr(function)(*arguments))

    def forward(self, network: Network, params: Params, x: np.ndarray) -> np.ndarray:
        """Return the output a_L, shape (m, n_L), as a NumPy array of this dtype."""
        layers = self._jax_layers(network, params)
        x = check_x(network, x).astype(self.dtype)
        with self._scope():
            if not self.padded:
                return np.array(self._functions(network).forward(layers, x))
            padding = _Padding.of(network, len(x))
            forward = _padded_forward_function(self.dtype, self.matmul_precision)
            output = forward(layers, padding.structure(network, self.dtype), padding.x(x))
            return np.array(np.asarray(output)[: len(x), : network.sizes[-1]])

    def loss_and_gradients(
        self, network: Network, params: Params, x: np.ndarray, y: np.ndarray
    ) -> tuple[float, Params]:
        """Return ``(J, grads)`` from ``jax.value_and_grad``, grads in our (W, b) layout."""
        layers = self._jax_layers(network, params)
        x, y = self._jax_data(network, *check_data(network, x, y))
        function, arguments = self._loss_and_gradients_call(network, layers, x, y)
        with self._scope():
            value, grads = function(*arguments)
            return float(value), self._our_params(network, grads)

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
        optimizer: Optimizer | None = None,
    ) -> Trajectory:
        """Return the Trajectory of ``optax.sgd`` (or ``optimizer``'s optax transform, optax convention;
        ``adapters.optax_optimizers``) over ``batches``: each loss taken before its update.

        The batches are followed exactly as given. Unpadded, a partial last
        batch has its own shape, hence its own compilation, once; padded,
        every batch is padded to its bucket and the params stay padded from
        step to step (their padding gets exactly zero gradients, so it stays 0).
        """
        layers = self._jax_layers(network, params)
        x, y = self._jax_data(network, *check_data(network, x, y))
        batches = check_batches(batches, x.shape[0])
        rate = np.asarray(check_learning_rate(learning_rate), dtype=self.dtype)
        with self._scope():
            import optax

            if optimizer is None:
                sgd_update = _sgd_update_function(self.dtype, self.matmul_precision, self.jit)
                state = optax.sgd(rate).init(layers)

                def update(grads: Any, state: Any, layers: Any) -> Any:
                    return sgd_update(grads, state, layers, rate)
            else:
                transform, update = optax_update_function(optimizer, self.jit)
                state = transform.init(layers)
            losses = []
            for batch in batches:
                function, arguments = self._loss_and_gradients_call(network, layers, x[batch], y[batch])
                value, grads = function(*arguments)
                layers, state = update(grads, state, layers)
                losses.append(value)
            return Trajectory(losses=np.array(losses, dtype=np.float64), params=self._our_params(network, layers))
