"""``reference.Optimizer`` specs in the optax convention, as optax's own transforms.

=========  ================================================================================
sgd        ``optax.sgd(lr, momentum=momentum or None, nesterov=nesterov)``
adam       ``optax.adam(lr, b1, b2, eps, eps_root, nesterov=nesterov)``; with amsgrad ``optax.amsgrad(...)``
adamw      ``optax.adamw(lr, b1, b2, eps, eps_root, weight_decay=weight_decay, nesterov=nesterov)``
rmsprop    ``optax.rmsprop(lr, decay=alpha, eps=eps, initial_scale, eps_in_sqrt, centered,
           momentum=momentum or None, nesterov, bias_correction)``
adagrad    ``optax.adagrad(lr, initial_accumulator_value, eps)``
=========  ================================================================================

Coupled weight decay (all but adamw) is ``optax.chain(optax.add_decayed_weights(weight_decay), tx)``:
the decay is added to the gradient before the rule, as torch's ``weight_decay`` does.
The spec is the reference's, so these are optax's numbers for the settings the
reference's optax convention computes (``reference.optimizer_rules``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from backprop_conformance.adapters.protocol import Unsupported
from backprop_conformance.reference.optimizers import Optimizer


def optax_transform(optimizer: Optimizer) -> Any:
    """Return the ``optax.GradientTransformation`` of ``optimizer`` (optax convention only)."""
    if optimizer.convention != "optax":
        raise Unsupported(f"optax implements the optax convention of {optimizer.name}, not the "
                          f"{optimizer.convention} one")
    import optax

    o = optimizer
    if o.name == "sgd":
        transform = optax.sgd(o.lr, momentum=o.momentum or None, nesterov=o.nesterov)
    elif o.name in ("adam", "adamw"):
        b1, b2 = o.betas  # type: ignore[misc]
        if o.name == "adamw":
            transform = optax.adamw(o.lr, b1=b1, b2=b2, eps=o.eps, eps_root=o.eps_root, weight_decay=o.weight_decay,
                                    nesterov=o.nesterov)
        elif o.amsgrad:  # optax.amsgrad has no nesterov (the spec refuses both)
            transform = optax.amsgrad(o.lr, b1=b1, b2=b2, eps=o.eps, eps_root=o.eps_root)
        else:
            transform = optax.adam(o.lr, b1=b1, b2=b2, eps=o.eps, eps_root=o.eps_root, nesterov=o.nesterov)
    elif o.name == "rmsprop":
        transform = optax.rmsprop(o.lr, decay=o.alpha, eps=o.eps, initial_scale=o.initial_scale,
                                  eps_in_sqrt=o.eps_in_sqrt, centered=o.centered, momentum=o.momentum or None,
                                  nesterov=o.nesterov, bias_correction=o.bias_correction)
    else:
        transform = optax.adagrad(o.lr, initial_accumulator_value=o.initial_accumulator_value, eps=o.eps)
    if o.name != "adamw" and o.weight_decay:
        transform = optax.chain(optax.add_decayed_weights(o.weight_decay), transform)
    return transform


@functools.lru_cache(maxsize=64)
def optax_update_function(optimizer: Optimizer, jit: bool) -> tuple[Any, Callable[..., Any]]:
    """Return ``(transform, update)``: ``update(grads, state, layers) -> (layers, state)``, jitted if ``jit``.

    Cached per spec (a frozen, hashable dataclass): a schedule's steps share
    one compilation per params shape.
    """
    import jax
    import optax

    transform = optax_transform(optimizer)

    def update(grads: Any, state: Any, layers: Any) -> Any:
        updates, state = transform.update(grads, state, layers)
        return optax.apply_updates(layers, updates), state

    return transform, jax.jit(update) if jit else update
