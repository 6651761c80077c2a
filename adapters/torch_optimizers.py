"""``reference.Optimizer`` specs in the torch convention, as ``torch.optim``'s own optimizers.

sgd ``torch.optim.SGD``, adam ``Adam``, adamw ``AdamW``, rmsprop ``RMSprop``,
adagrad ``Adagrad``, each given the spec's hyperparameters under their torch
names (those torch has no name for aside, such as ``eps_root``: the spec
refuses them in the torch convention, ``INEXPRESSIBLE``) and one of
torch.optim's three implementations of the same rule (``path``):

    "single"   ``foreach=False``: a loop over the params, one tensor op per
               equation. What torch runs on a CPU by default.
    "foreach"  ``foreach=True``: the same ops on lists of tensors
               (``torch._foreach_*``). What torch runs on CUDA by default.
    "fused"    ``fused=True``: one kernel per step computing every equation
               per entry (SGD, Adam, AdamW and Adagrad; RMSprop has none).

All three run on a CPU, and each is checked there against the reference: in
float64 to 1e-12 and in float32 within the tolerance model
(``tests/test_optimizer_adapters.py``); ``backprop check torch-float32-fused``
runs the suite's optimizer test on one. The fused kernel groups the
operations its own way, so its results differ from the single path's by a
few roundings. On CUDA the foreach and fused kernels are other code again
(float32 registers, multiply-adds possibly contracted into FMAs); with no GPU
on the CI machine those are not checked here, which ``adapters.divergences``
lists.
"""

from __future__ import annotations

from typing import Any

from backprop_conformance.adapters.protocol import Unsupported
from backprop_conformance.reference.optimizers import INEXPRESSIBLE, Optimizer

TORCH_CLASSES = {"sgd": "SGD", "adam": "Adam", "adamw": "AdamW", "rmsprop": "RMSprop", "adagrad": "Adagrad"}
#: torch.optim's implementations of a rule, and the constructor argument that selects each.
PATHS = {"single": {"foreach": False}, "foreach": {"foreach": True}, "fused": {"fused": True}}
#: The rules torch.optim has a fused kernel for.
FUSED = ("sgd", "adam", "adamw", "adagrad")


def check_path(path: object) -> str:
    """Return ``path`` if it names one of torch.optim's implementations (``PATHS``), else raise ValueError."""
    if not isinstance(path, str) or path not in PATHS:
        raise ValueError(f"optimizer_path={path!r} is not one of {', '.join(map(repr, PATHS))}")
    return path


def torch_optimizer(torch: Any, optimizer: Optimizer, parameters: Any, path: str = "single") -> Any:
    """Return ``torch.optim.<Class>(parameters, **PATHS[path], **hyperparameters)`` (torch convention only)."""
    if optimizer.convention != "torch":
        raise Unsupported(f"torch.optim implements the torch convention of {optimizer.name}, not the "
                          f"{optimizer.convention} one")
    if check_path(path) == "fused" and optimizer.name not in FUSED:
        raise Unsupported(f"torch.optim.{TORCH_CLASSES[optimizer.name]} has no fused path (fused=True exists for "
                          f"{', '.join(FUSED)})")
    settings = {key: value for key, value in optimizer.hyperparameters.items()
                if ("torch", optimizer.name, key) not in INEXPRESSIBLE}
    return getattr(torch.optim, TORCH_CLASSES[optimizer.name])(parameters, **PATHS[path], **settings)
