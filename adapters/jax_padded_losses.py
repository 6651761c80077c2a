"""The padded JAX path's losses: one ``jax.lax.switch`` branch per loss, over the real entries only.

``adapters.jax_padded`` says why the padding changes no result; here each
loss masks out the padded samples and output units the unpadded shapes cut.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from backprop_conformance.adapters.jax_functions import _elementwise_loss

#: Run-time codes of the losses in the padded loss-and-gradients function.
#: cross_entropy with label smoothing > 0 has a code of its own: optax.smooth_labels then softmax_cross_entropy.
LOSS_CODES = {"mse": 0, "bce": 1, "cross_entropy": 2, "huber": 3, "bce_with_logits": 4, "cross_entropy_smoothed": 5}


class _Objective(NamedTuple):
    """A network's loss, reduction and padded targets as run-time arrays (a pytree of the padded loss).

    ``loss`` is the ``LOSS_CODES`` entry and ``parameter`` its parameter
    (huber's delta, cross-entropy's label smoothing; 0 where none); ``mean`` is 1 for
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
    parameter: Any


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
    import jax
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

    def smoothed(z: Any, a: Any, objective: _Objective, real_samples: Any, real_outputs: Any) -> tuple[Any, Any]:
        # Smoothed over the real classes only (smooth_labels counts them through where=), as unpadded.
        one_hot = jax.nn.one_hot(objective.labels, z.shape[-1], dtype=z.dtype)
        targets = optax.smooth_labels(one_hot, objective.parameter, where=real_outputs)
        per_sample = optax.softmax_cross_entropy(z, targets, where=real_outputs)
        return _masked_sum(per_sample, real_samples)

    def huber(z: Any, a: Any, objective: _Objective, real_samples: Any, real_outputs: Any) -> tuple[Any, Any]:
        real = real_samples[:, None] & real_outputs
        return _masked_sum(optax.huber_loss(a, objective.targets, delta=objective.parameter), real)

    branches = {"mse": elementwise("mse"), "bce": elementwise("bce"), "cross_entropy": cross_entropy, "huber": huber,
                "bce_with_logits": elementwise("bce_with_logits"), "cross_entropy_smoothed": smoothed}
    return [branches[name] for name in LOSS_CODES]
