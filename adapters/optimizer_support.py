"""Whether an implementation can train with a ``reference.Optimizer``: the capability behind ``train``'s
optional ``optimizer`` argument.

An implementation whose ``train`` takes no ``optimizer`` parameter (nor
``**kwargs``) is SGD-only: every case with another optimizer is "not
applicable" for it, with that reason. One that takes it may say which
conventions it implements in ``optimizer_conventions`` (torch.optim:
``("torch",)``, optax: ``("optax",)``; absent: both), and may raise
``Unsupported`` for any spec it cannot run.
"""

from __future__ import annotations

import inspect
from typing import Any

from backprop_conformance.reference.optimizers import OPTIMIZER_CONVENTIONS, Optimizer

#: Why an implementation is not judged with optimizers.
SGD_ONLY = "its train takes no optimizer: plain gradient descent only"


def takes_optimizer(train: Any) -> bool:
    """Return whether ``train`` accepts an ``optimizer`` argument."""
    try:
        parameters = inspect.signature(train).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "optimizer" or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


def optimizer_conventions(implementation: Any) -> tuple[str, ...]:
    """Return the optimizer conventions the implementation declares (all, when it declares none)."""
    declared = getattr(implementation, "optimizer_conventions", OPTIMIZER_CONVENTIONS)
    if not isinstance(declared, (list, tuple)) or not declared or not set(declared) <= set(OPTIMIZER_CONVENTIONS):
        raise ValueError(f"optimizer_conventions={declared!r:.80} must be a non-empty list of "
                         f"{', '.join(OPTIMIZER_CONVENTIONS)}")
    return tuple(dict.fromkeys(declared))  # each once, should one be declared twice


def optimizer_refusal(implementation: Any, optimizer: Optimizer) -> str | None:
    """Return why the implementation cannot train with ``optimizer``, or None when it can."""
    train = getattr(implementation, "train", None)
    if not callable(train) or not takes_optimizer(train):
        return SGD_ONLY
    conventions = optimizer_conventions(implementation)
    if optimizer.convention not in conventions:
        return f"it implements optimizers in the {' and '.join(conventions)} convention, not {optimizer.convention}"
    return None
