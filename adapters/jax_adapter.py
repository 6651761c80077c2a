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

Padding (``_Padding``): depth to ``_bucket(L, 8)``, every width to one
``_bucket(max(sizes), 16)``, the batch to ``_bucket(m, 16)`` (16, or the next
power of two above). Kernels become square and zero-filled; ``SKIP`` layers
go in front of the real ones, so the last layer is always the output layer.
Why the real numbers are those of the unpadded network:

* ``a_0 = where(real input, x, 0)``; each layer
  ``z = a @ kernel + bias_flag * bias`` with ``bias_flag`` 1 or 0, then
  ``a = where(real unit, f(z), 0)`` with ``f`` chosen by ``jax.lax.switch``
  on the activation code (one branch runs: the unpadded path's function), or
  ``a = a_in`` for SKIP. So every padded unit's activation is exactly 0,
  whatever the padding of the params holds, and it adds ``0 * w = 0`` to each
  real sum; ``b * 1 = b`` and ``b * 0 = 0`` are exact (a sum of -0 may come
  out +0: the two compare equal, and every function here maps them to equal
  values).
* The loss is chosen by ``jax.lax.switch`` on its run-time code
  (``LOSS_CODES``): one branch runs, the unpadded path's optax function. All
  branches take the same operands, so both kinds of targets travel: float
  targets padded to (batch, width) and class labels padded to (batch,); the
  one its loss does not read is zeros, and could hold anything.
  Each branch masks padded samples and output units with ``where=``: it
  returns ``jnp.sum(loss, where=real)`` and the count of real entries (every
  element for mse and bce, every sample for cross_entropy); cross_entropy
  also passes the real-output mask to optax's
  ``softmax_cross_entropy_with_integer_labels(where=...)``, so padded logits
  are left out of the log-sum-exp.
* The reduction is a run-time divisor: ``J = sum / count`` for mean, which is
  how ``jnp.mean(loss, where=real)`` computes it (the same sum, the same
  count, one division), and ``J = sum / 1`` for sum, which is exact.
* Backward: ``where``'s derivative sends exactly 0 to every masked entry, so
  every padded delta is 0, and with it every gradient of a padded kernel
  entry (``a_pad = 0`` or ``delta_pad = 0`` in ``a^T delta``), padded bias,
  SKIP layer and absent bias (times the flag 0). sgd then leaves the padding
  at exactly 0, and training keeps the params padded between steps.

So each real entry is computed from the same real terms plus exact zeros.
What padding does change is the *order* of those terms' sums: XLA's CPU
backend chooses its dot kernel (a YNNPACK fusion or Eigen) and the blocking
of dots and reductions by shape, so a 3x5 @ 5x4 product and the same numbers
zero-padded to 16x16 are summed in different orders. So ``pad=True`` and
``pad=False`` are bitwise identical only where padding changes no shape
(depth 8, widths 16, 16 samples; even there the mse and bce loss value is
its masked sum in another order); elsewhere they differ by rounding (about
a third of drawn float64 cases, in the last bits), within the suite's
tolerance model, which allows any summation order. Within the padded path
the padding is provably inert: garbage in it changes no bit of a result.
``tests/test_jax_amortisation.py`` checks all of this.

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


# ---------------------------------------------------------------- padded shapes

#: Run-time codes of the activations in the padded functions; ``SKIP`` marks a padding layer.
ACTIVATION_CODES = {"identity": 0, "sigmoid": 1, "tanh": 2, "relu": 3}
SKIP = len(ACTIVATION_CODES)
#: Run-time codes of the losses in the padded loss-and-gradients function.
LOSS_CODES = {"mse": 0, "bce": 1, "cross_entropy": 2}
#: The smallest bucket of a padded width or batch size, and of a padded depth: one bucket holds
#: every network the fuzzer draws (depth <= 5, widths <= 16, <= 16 samples), at ~0.3 ms a call.
SMALLEST_WIDTH_BUCKET = 16
SMALLEST_DEPTH_BUCKET = 8


def _bucket(n: int, smallest: int) -> int:
    """Return ``smallest`` if ``n`` fits in it, else the power of two at or above ``n``."""
    return smallest if n <= smallest else 1 << (n - 1).bit_length()


class _Structure(NamedTuple):
    """A network's structure as run-time arrays of a padded depth (a pytree of the padded functions).

    ``codes[l]`` is layer l's ``ACTIVATION_CODES`` entry, or ``SKIP``;
    ``widths[0]`` is the real input width, ``widths[l + 1]`` layer l's real
    output width (the padded width for SKIP); ``bias`` is 1 with biases, 0
    without.
    """

    codes: Any
    widths: Any
    bias: Any


class _Objective(NamedTuple):
    """A network's loss, reduction and padded targets as run-time arrays (a pytree of the padded loss).

    ``loss`` is the ``LOSS_CODES`` entry; ``mean`` is 1 for
    ``reduction="mean"``, 0 for ``"sum"``; ``targets`` are the float targets
    padded to (batch, width) and ``labels`` the class labels padded to
    (batch,), the one the loss does not read all zeros; ``samples`` is the
    real batch size.
    """

    loss: Any
    mean: Any
    targets: Any
    labels: Any
    samples: Any


class _Padding(NamedTuple):
    """The padded depth, width and batch size that one call's arrays are padded to."""

    depth: int
    width: int
    batch: int

    @classmethod
    def of(cls, network: Network, batch: int) -> _Padding:
        """Return the buckets of ``network`` and a batch of ``batch`` samples."""
        return cls(
            _bucket(network.depth, SMALLEST_DEPTH_BUCKET),
            _bucket(max(network.sizes), SMALLEST_WIDTH_BUCKET),
            _bucket(batch, SMALLEST_WIDTH_BUCKET),
        )

    def structure(self, network: Network, dtype: str) -> _Structure:
        """Return the network's structure, SKIP layers first, then the real layers in order."""
        skipped = self.depth - network.depth
        codes = [SKIP] * skipped + [ACTIVATION_CODES[name] for name in network.activations]
        widths = [network.sizes[0]] + [self.width] * skipped + list(network.sizes[1:])
        return _Structure(
            np.array(codes, dtype=np.int32), np.array(widths, dtype=np.int32), np.asarray(network.bias, dtype=dtype)
        )

    def layers(self, layers: JaxParams, dtype: str) -> JaxParams:
        """Return ``layers`` zero-padded to (width, width) kernels and (width,) biases, behind SKIP layers."""
        padded = []
        for _ in range(self.depth - len(layers)):
            padded.append({"kernel": np.zeros((self.width, self.width), dtype), "bias": np.zeros(self.width, dtype)})
        for layer in layers:
            kernel = np.zeros((self.width, self.width), dtype)
            kernel[: layer["kernel"].shape[0], : layer["kernel"].shape[1]] = layer["kernel"]
            bias = np.zeros(self.width, dtype)
            if "bias" in layer:
                bias[: layer["bias"].shape[0]] = layer["bias"]
            padded.append({"kernel": kernel, "bias": bias})
        return padded

    def x(self, x: np.ndarray) -> np.ndarray:
        """Return x zero-padded to (batch, width)."""
        padded = np.zeros((self.batch, self.width), x.dtype)
        padded[: x.shape[0], : x.shape[1]] = x
        return padded

    def objective(self, network: Network, y: np.ndarray, dtype: str) -> _Objective:
        """Return the network's loss, reduction and y: float targets or int32 labels, zero-padded."""
        targets, labels = np.zeros((self.batch, self.width), dtype), np.zeros(self.batch, np.int32)
        padded = labels if network.loss == "cross_entropy" else targets
        padded[tuple(slice(0, size) for size in y.shape)] = y
        return _Objective(
            np.int32(LOSS_CODES[network.loss]), np.int32(network.reduction == "mean"), targets, labels, np.int32(len(y))
        )


def _unpadded(layers: JaxParams, network: Network) -> JaxParams:
    """Return the real layers of padded ``layers`` as NumPy, cut to the network's shapes."""
    real = []
    for layer, n_in, n_out in zip(layers[len(layers) - network.depth :], network.sizes[:-1], network.sizes[1:]):
        unpadded = {"kernel": np.asarray(layer["kernel"])[:n_in, :n_out]}
        if network.bias:
            unpadded["bias"] = np.asarray(layer["bias"])[:n_out]
        real.append(unpadded)
    return real


def _padded_activation(code: Any, width: Any, z: Any, a_in: Any) -> Any:
    """Return ``f(z)`` on the layer's real units and 0 on its padded ones; ``a_in`` for a SKIP layer.

    ``jax.lax.switch`` runs exactly one branch, the very function the
    unpadded path applies: the run-time code only picks which one.
    """
    import jax
    import jax.numpy as jnp

    functions = _activation_functions()
    branches = [lambda z, a_in, f=functions[name]: f(z) for name in ACTIVATION_CODES]
    a = jax.lax.switch(code, [*branches, lambda z, a_in: a_in], z, a_in)
    return jnp.where(jnp.arange(z.shape[-1]) < width, a, jnp.zeros_like(a))


def _padded_forward_pass(layers: JaxParams, structure: _Structure, x: Any) -> tuple[Any, Any]:
    """Return the padded z_L and a_L: every layer padded to a square kernel, SKIP layers first."""
    import jax.numpy as jnp

    a = jnp.where(jnp.arange(x.shape[-1]) < structure.widths[0], x, jnp.zeros_like(x))
    for index, layer in enumerate(layers):
        z = jnp.matmul(a, layer["kernel"]) + structure.bias * layer["bias"]
        a = _padded_activation(structure.codes[index], structure.widths[index + 1], z, a)
    return z, a


def _masked_sum(elementwise: Any, real: Any) -> tuple[Any, Any]:
    """Return the sum of the real entries of ``elementwise`` and their count, in its dtype.

    The two halves of ``jnp.mean(elementwise, where=real)``, computed as it
    computes them (``sum(where=)`` and the mask's sum), so that dividing one by
    the other gives its bits, and dividing by 1 those of ``jnp.sum(where=)``.
    """
    import jax.numpy as jnp

    return jnp.sum(elementwise, where=real), jnp.sum(real, dtype=elementwise.dtype)


def _padded_loss_branches() -> list[Callable[..., tuple[Any, Any]]]:
    """Return, in ``LOSS_CODES`` order, each loss's ``_masked_sum`` over the real samples and output units.

    Every branch takes the same operands ``(z, a, objective, real_samples,
    real_outputs)``, as ``jax.lax.switch`` requires, and reads only the
    targets its loss uses: the float targets (mse, bce) or the class labels
    (cross_entropy). mse and bce call the unpadded path's
    ``_elementwise_loss``; cross_entropy calls its optax function with the
    real-output mask. Each masks out what the unpadded shapes cut.
    """
    import optax

    def elementwise(loss: str) -> Callable[..., tuple[Any, Any]]:
        def branch(z: Any, a: Any, objective: _Objective, real_samples: Any, real_outputs: Any) -> tuple[Any, Any]:
            real = real_samples[:, None] & real_outputs
            return _masked_sum(_elementwise_loss(loss, z, a, objective.targets), real)

        return branch

    def cross_entropy(z: Any, a: Any, objective: _Objective, real_samples: Any, real_outputs: Any) -> tuple[Any, Any]:
        # Padded logits are left out of the log-sum-exp, padded samples out of the sum.
        per_sample = optax.softmax_cross_entropy_with_integer_labels(z, objective.labels, where=real_outputs)
        return _masked_sum(per_sample, real_samples)

    branches = {"mse": elementwise("mse"), "bce": elementwise("bce"), "cross_entropy": cross_entropy}
    return [branches[name] for name in LOSS_CODES]


def _padded_objective(layers: JaxParams, structure: _Structure, x: Any, objective: _Objective) -> Any:
    """Return J over the real samples and output units only, with the loss and reduction of ``objective``.

    ``jax.lax.switch`` runs exactly one loss branch; the reduction is a
    run-time divisor: the count of real entries (mean) or 1 (sum, exact).
    """
    import jax
    import jax.numpy as jnp

    z, a = _padded_forward_pass(layers, structure, x)
    real_samples = jnp.arange(x.shape[0]) < objective.samples
    real_outputs = jnp.broadcast_to(jnp.arange(z.shape[-1]) < structure.widths[-1], z.shape)
    branches = _padded_loss_branches()
    total, count = jax.lax.switch(objective.loss, branches, z, a, objective, real_samples, real_outputs)
    return total / jnp.where(objective.mean, count, jnp.ones_like(count))


@functools.lru_cache(maxsize=16)
def _padded_forward_function(dtype: str, precision: str) -> Callable[..., Any]:
    """Return the jitted ``(layers, structure, x) -> a_L`` of every network, padded."""
    import jax

    def padded_forward(layers: JaxParams, structure: _Structure, x: Any) -> Any:
        return _padded_forward_pass(layers, structure, x)[1]

    return jax.jit(padded_forward)


@functools.lru_cache(maxsize=16)
def _padded_loss_and_gradients_function(dtype: str, precision: str) -> Callable[..., Any]:
    """Return the jitted ``(layers, structure, x, objective) -> (J, grads)`` of every network, padded.

    Activations, depth, widths, bias, batch size, loss and reduction are all
    run-time arguments (``_Structure``, ``_Objective``), so JAX compiles once
    per padded shape: one shape covers every network of depth <= 8 and widths
    <= 16 on batches of <= 16 samples, whatever its loss and reduction.
    """
    import jax

    def padded_objective(layers: JaxParams, structure: _Structure, x: Any, objective: _Objective) -> Any:
        return _padded_objective(layers, structure, x, objective)  # named for jax.log_compiles

    return jax.jit(jax.value_and_grad(padded_objective))


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
        targets = y.astype(np.int32) if network.loss == "cross_entropy" else y.astype(self.dtype)
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
    ) -> Trajectory:
        """Return the Trajectory of ``optax.sgd`` over ``batches``: each loss taken before its update.

        The batches are followed exactly as given. Unpadded, a partial last
        batch has its own shape, hence its own compilation, once; padded,
        every batch is padded to its bucket and the params stay padded from
        step to step (their padding gets exactly zero gradients, so it stays 0).
        """
        layers = self._jax_layers(network, params)
        x, y = self._jax_data(network, *check_data(network, x, y))
        batches = check_batches(batches, x.shape[0])
        rate = np.asarray(check_learning_rate(learning_rate), dtype=self.dtype)
        sgd_update = _sgd_update_function(self.dtype, self.matmul_precision, self.jit)
        with self._scope():
            import optax

            state = optax.sgd(rate).init(layers)
            losses = []
            for batch in batches:
                function, arguments = self._loss_and_gradients_call(network, layers, x[batch], y[batch])
                value, grads = function(*arguments)
                layers, state = sgd_update(grads, state, layers, rate)
                losses.append(value)
            return Trajectory(losses=np.array(losses, dtype=np.float64), params=self._our_params(network, layers))
