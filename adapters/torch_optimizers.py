"""``reference.Optimizer`` specs in the torch convention, as ``torch.optim``'s own optimizers.

sgd ``torch.optim.SGD``, adam ``Adam``, adamw ``AdamW``, rmsprop ``RMSprop``,
adagrad ``Adagrad``, each given the spec's hyperparameters under their torch
names (``eps_root`` aside: torch has none, and the spec refuses it) and
``foreach=False``: the single-tensor path, which is what runs on a CPU.

On CUDA torch defaults to the ``foreach`` path (one fused kernel launch per
group of tensors) and offers ``fused=True`` for Adam, AdamW, SGD and Adagrad:
the same equations, grouped differently. They change the rounding, not the
rule: ``_foreach_*`` ops round each elementwise operation as the
single-tensor path does, while the fused kernels compute a whole step in one
kernel in float32 registers (with float32 params) and may contract
multiply-adds into FMAs. Neither is checked here (no GPU on the CI machine);
``adapters.divergences`` lists this.
"""

from __future__ import annotations

from typing import Any

from backprop_conformance.adapters.protocol import Unsupported
from backprop_conformance.reference.optimizers import Optimizer

TORCH_CLASSES = {"sgd": "SGD", "adam": "Adam", "adamw": "AdamW", "rmsprop": "RMSprop", "adagrad": "Adagrad"}


def torch_optimizer(torch: Any, optimizer: Optimizer, parameters: Any) -> Any:
    """Return ``torch.optim.<Class>(parameters, foreach=False, **hyperparameters)`` (torch convention only)."""
    if optimizer.convention != "torch":
        raise Unsupported(f"torch.optim implements the torch convention of {optimizer.name}, not the "
                          f"{optimizer.convention} one")
    settings = {key: value for key, value in optimizer.hyperparameters.items() if key != "eps_root"}
    return getattr(torch.optim, TORCH_CLASSES[optimizer.name])(parameters, foreach=False, **settings)
