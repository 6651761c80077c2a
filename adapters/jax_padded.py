"""The padded JAX path: every network through one compiled loss-and-gradients function per dtype.

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

"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from backprop_conformance.adapters.jax_functions import (
    JaxParams,
    _activation_functions,
    activation_parameter,
    loss_parameter,
)
from backprop_conformance.adapters.jax_padded_losses import LOSS_CODES, _Objective, _padded_loss_branches
from backprop_conformance.reference.conventions import ACTIVATIONS
from backprop_conformance.reference.network import Network

ACTIVATION_CODES = {name: code for code, name in enumerate(ACTIVATIONS)}
SKIP = len(ACTIVATION_CODES)
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
    without; ``parameters[l]`` layer l's activation parameter (leaky_relu's
    slope, elu's alpha; 0 where there is none).
    """

    codes: Any
    widths: Any
    bias: Any
    parameters: Any


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
        codes = [SKIP] * skipped + [ACTIVATION_CODES[name] for name in network.activation_names]
        widths = [network.sizes[0]] + [self.width] * skipped + list(network.sizes[1:])
        parameters = [0.0] * skipped + [activation_parameter(spec) for spec in network.activations]
        return _Structure(
            np.array(codes, dtype=np.int32), np.array(widths, dtype=np.int32), np.asarray(network.bias, dtype=dtype),
            np.array(parameters, dtype=dtype),
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
        padded = labels if network.loss_name == "cross_entropy" else targets
        padded[tuple(slice(0, size) for size in y.shape)] = y
        parameter = loss_parameter(network.loss)
        code = "cross_entropy_smoothed" if network.loss_name == "cross_entropy" and parameter else network.loss_name
        return _Objective(
            np.int32(LOSS_CODES[code]), np.int32(network.reduction == "mean"), targets, labels, np.int32(len(y)),
            np.asarray(parameter, dtype=dtype),
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


def _padded_activation(code: Any, width: Any, parameter: Any, z: Any, a_in: Any) -> Any:
    """Return ``f(z)`` on the layer's real units and 0 on its padded ones; ``a_in`` for a SKIP layer.

    ``jax.lax.switch`` runs exactly one branch, the very function the
    unpadded path applies: the run-time code only picks which one.
    """
    import jax
    import jax.numpy as jnp

    functions = _activation_functions()
    branches = [lambda z, a_in, f=functions[name]: f(z, parameter) for name in ACTIVATION_CODES]
    a = jax.lax.switch(code, [*branches, lambda z, a_in: a_in], z, a_in)
    return jnp.where(jnp.arange(z.shape[-1]) < width, a, jnp.zeros_like(a))


def _padded_forward_pass(layers: JaxParams, structure: _Structure, x: Any) -> tuple[Any, Any]:
    """Return the padded z_L and a_L: every layer padded to a square kernel, SKIP layers first."""
    import jax.numpy as jnp

    a = jnp.where(jnp.arange(x.shape[-1]) < structure.widths[0], x, jnp.zeros_like(x))
    for index, layer in enumerate(layers):
        z = jnp.matmul(a, layer["kernel"]) + structure.bias * layer["bias"]
        a = _padded_activation(structure.codes[index], structure.widths[index + 1], structure.parameters[index], z, a)
    return z, a


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
