"""Optimizers as immutable, validated specs: which update rule, in whose convention, with what settings.

``Optimizer("adam", lr=1e-3)`` is torch.optim.Adam's rule at torch's
defaults; ``Optimizer("adam", convention="optax", lr=1e-3)`` is
``optax.adam``'s. Hyperparameters keep torch's names (``lr``, ``momentum``,
``dampening``, ``nesterov``, ``weight_decay``, ``betas``, ``eps``,
``amsgrad``, ``alpha``, ``centered``, ``lr_decay``,
``initial_accumulator_value``) plus optax's own where torch has none
(``eps_root``; rmsprop's ``initial_scale``, ``eps_in_sqrt`` and
``bias_correction``; ``nesterov`` also on adam, adamw and rmsprop), so that
an adapter can read them off the spec; one the rule does not have stays None. Every
default is the convention's own (``DEFAULTS``), and a setting a convention
cannot express is refused by name, never silently dropped. The update rules
themselves are in ``reference.optimizer_rules``.

Where the two conventions differ at the same nominal settings
(``adapters.divergences`` has the list, each with its number and its test):

- rmsprop: eps outside the root (torch) or inside it (optax); alpha 0.99 or 0.9;
- adagrad: the accumulator starts at 0 or 0.1; eps 1e-10 outside or 1e-7 inside the root;
- sgd: torch's first momentum step ignores dampening; optax has no dampening;
- adam with amsgrad: the maximum of the raw v (torch) or of the bias-corrected v (optax);
- adamw: weight decay 1e-2 (torch) or 1e-4 (optax); optax's eps_root has no torch counterpart;
- optax's Nesterov Adam (NAdam without its momentum schedule), rmsprop's bias correction and
  initial_scale: no torch counterpart either (torch.optim.NAdam is another rule); optax's
  rmsprop with eps_in_sqrt=False is torch's rule at the same alpha, as long as initial_scale is 0
  and neither bias_correction nor nesterov is set.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop", "adagrad")
OPTIMIZER_CONVENTIONS = ("torch", "optax")

#: Each rule's hyperparameters and their defaults, per convention. ``None`` for lr: optax has no default.
_ADAM = {"betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0, "amsgrad": False, "eps_root": 0.0,
         "nesterov": False}
_RMSPROP = {"alpha": 0.99, "eps": 1e-8, "weight_decay": 0.0, "momentum": 0.0, "centered": False, "nesterov": False,
            "initial_scale": 0.0, "eps_in_sqrt": False, "bias_correction": False}
DEFAULTS: dict[str, dict[str, dict[str, Any]]] = {
    "torch": {
        "sgd": {"lr": 1e-3, "momentum": 0.0, "dampening": 0.0, "nesterov": False, "weight_decay": 0.0},
        "adam": {"lr": 1e-3, **_ADAM},
        "adamw": {"lr": 1e-3, **_ADAM, "weight_decay": 1e-2},
        "rmsprop": {"lr": 1e-2, **_RMSPROP},
        "adagrad": {"lr": 1e-2, "lr_decay": 0.0, "weight_decay": 0.0, "initial_accumulator_value": 0.0,
                    "eps": 1e-10},
    },
    "optax": {
        "sgd": {"lr": None, "momentum": 0.0, "dampening": 0.0, "nesterov": False, "weight_decay": 0.0},
        "adam": {"lr": None, **_ADAM},
        "adamw": {"lr": None, **_ADAM, "weight_decay": 1e-4},
        "rmsprop": {"lr": None, **_RMSPROP, "alpha": 0.9, "eps_in_sqrt": True},
        "adagrad": {"lr": None, "lr_decay": 0.0, "weight_decay": 0.0, "initial_accumulator_value": 0.1,
                    "eps": 1e-7},
    },
}
#: Settings a convention has no way to express: (convention, rule, hyperparameter) -> why.
INEXPRESSIBLE = {
    ("optax", "sgd", "dampening"): "optax.sgd has no dampening (its trace adds the whole gradient)",
    ("optax", "adagrad", "lr_decay"): "optax.adagrad has no lr_decay (use a schedule outside this spec)",
    ("optax", "adamw", "amsgrad"): "optax.adamw has no amsgrad",
    ("torch", "adam", "eps_root"): "torch.optim.Adam has no eps inside the root (optax's eps_root)",
    ("torch", "adamw", "eps_root"): "torch.optim.AdamW has no eps inside the root (optax's eps_root)",
    ("torch", "adam", "nesterov"): "torch.optim.Adam has no Nesterov momentum (torch.optim.NAdam is another rule, "
                                   "with a momentum schedule)",
    ("torch", "adamw", "nesterov"): "torch.optim.AdamW has no Nesterov momentum",
    ("torch", "rmsprop", "nesterov"): "torch.optim.RMSprop has no Nesterov momentum",
    ("torch", "rmsprop", "initial_scale"): "torch.optim.RMSprop starts its mean square at 0",
    ("torch", "rmsprop", "eps_in_sqrt"): "torch.optim.RMSprop adds eps outside the root",
    ("torch", "rmsprop", "bias_correction"): "torch.optim.RMSprop has no bias correction",
}
_FLAGS = ("nesterov", "amsgrad", "centered", "eps_in_sqrt", "bias_correction")


def _number(value: Any, field: str) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{field}={value!r} must be a real number")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{field}={value!r} must be finite")
    return value


def _in(value: float, field: str, low: float, high: float | None = None, open_high: bool = True,
        why: str = "") -> None:
    above = high is None or (value < high if open_high else value <= high)
    if not (value >= low and above):
        bound = "" if high is None else (f", < {high}" if open_high else f", <= {high}")
        raise ValueError(f"{field}={value!r} must be >= {low}{bound}" + (f": {why}" if why else ""))


@dataclass(frozen=True)
class Optimizer:
    """An update rule (``name``) in a ``convention``, with its hyperparameters under torch's names."""

    name: str
    convention: str = "torch"
    lr: float | None = None
    momentum: float | None = None
    dampening: float | None = None
    nesterov: bool | None = None
    weight_decay: float | None = None
    betas: tuple[float, float] | None = None
    eps: float | None = None
    amsgrad: bool | None = None
    alpha: float | None = None
    centered: bool | None = None
    lr_decay: float | None = None
    initial_accumulator_value: float | None = None
    eps_root: float | None = None
    initial_scale: float | None = None
    eps_in_sqrt: bool | None = None
    bias_correction: bool | None = None

    def __post_init__(self) -> None:
        if self.name not in OPTIMIZERS:
            raise ValueError(f"name={self.name!r} is not one of {', '.join(OPTIMIZERS)}")
        if self.convention not in OPTIMIZER_CONVENTIONS:
            raise ValueError(f"convention={self.convention!r} is not one of {', '.join(OPTIMIZER_CONVENTIONS)}")
        defaults = DEFAULTS[self.convention][self.name]
        for key in HYPERPARAMETERS:
            given = getattr(self, key)
            if key not in defaults:
                if given is not None:
                    raise ValueError(f"{self.name} has no hyperparameter {key}={given!r} "
                                     f"(it takes {', '.join(defaults)})")
                continue
            value = self._checked(key, defaults[key] if given is None else given)
            reason = INEXPRESSIBLE.get((self.convention, self.name, key))
            if reason is not None and value != defaults[key]:
                raise ValueError(f"{key}={given!r} cannot be expressed in the {self.convention} convention: {reason}")
            object.__setattr__(self, key, value)
        if self.name != "sgd" and self.eps == 0 and not self.eps_root and not self.initial_accumulator_value:
            start = " with initial_accumulator_value=0.0" if self.name == "adagrad" else ""
            raise ValueError(f"eps={self.eps!r}: {self.name}{start} would divide 0 by 0 wherever a gradient entry "
                             f"has been 0 from the first step (a dead unit); give eps > 0"
                             + (" or initial_accumulator_value > 0" if start else ""))
        self._check_nesterov()

    def _check_nesterov(self) -> None:
        if not self.nesterov:
            return
        if self.name == "sgd" and not (self.momentum > 0 and self.dampening == 0):  # type: ignore[operator]
            raise ValueError(f"nesterov=True needs momentum > 0 and dampening = 0, got momentum={self.momentum!r}, "
                             f"dampening={self.dampening!r}")
        if self.name == "rmsprop" and not self.momentum > 0:  # type: ignore[operator]
            raise ValueError(f"nesterov=True needs momentum > 0, got momentum={self.momentum!r}: optax's rmsprop "
                             f"has no trace to look ahead on without it")
        if self.amsgrad:
            raise ValueError("nesterov=True cannot be expressed with amsgrad=True in the optax convention: "
                             "optax.amsgrad has no nesterov")

    def _checked(self, key: str, value: Any) -> Any:
        if key == "lr" and value is None:
            raise ValueError(f"{self.name} in the optax convention needs lr: optax has no default learning rate")
        if key in _FLAGS:
            if not isinstance(value, (bool, np.bool_)):
                raise TypeError(f"{key}={value!r} must be True or False")
            return bool(value)
        if key == "betas":
            if not isinstance(value, (tuple, list, np.ndarray)) or len(value) != 2:
                raise ValueError(f"betas={value!r} must be a pair (beta1, beta2)")
            pair = tuple(_number(beta, f"betas[{i}]") for i, beta in enumerate(value))
            for i, beta in enumerate(pair):
                _in(beta, f"betas[{i}]", 0.0, 1.0)
            return pair
        value = _number(value, key)
        if key == "lr" and not value > 0:
            raise ValueError(f"lr={value!r} must be > 0")
        if key in ("alpha",):
            _in(value, key, 0.0, 1.0)
        elif key == "dampening":
            _in(value, key, 0.0, 1.0, open_high=False)
        elif key == "momentum":  # torch and optax take any momentum >= 0
            _in(value, key, 0.0, 1.0, open_high=False,
                why="above 1 the momentum buffer grows as momentum^t and the steps diverge")
        else:
            _in(value, key, 0.0)
        return value

    @property
    def hyperparameters(self) -> dict[str, Any]:
        """The rule's hyperparameters (defaults filled in), in the order of ``DEFAULTS``."""
        return {key: getattr(self, key) for key in DEFAULTS[self.convention][self.name]}

    def _expressible(self) -> dict[str, Any]:
        """The hyperparameters less those the convention cannot express (always at their neutral defaults)."""
        return {key: value for key, value in self.hyperparameters.items()
                if (self.convention, self.name, key) not in INEXPRESSIBLE}

    def describe(self) -> str:
        """``adam(torch: lr=0.001, betas=(0.9, 0.999), ...)``: the settings the convention can express."""
        settings = ", ".join(f"{key}={value!r}" for key, value in self._expressible().items())
        return f"{self.name}({self.convention}: {settings})"

    def to_json(self) -> dict[str, Any]:
        """The spec as JSON data: ``{"name", "convention", and every hyperparameter}`` (betas a list)."""
        settings = {key: list(value) if key == "betas" else value for key, value in self.hyperparameters.items()}
        return {"name": self.name, "convention": self.convention, **settings}

    def __repr__(self) -> str:
        settings = "".join(f", {key}={value!r}" for key, value in self._expressible().items())
        return f"Optimizer({self.name!r}, convention={self.convention!r}{settings})"


HYPERPARAMETERS = tuple(field.name for field in fields(Optimizer) if field.name not in ("name", "convention"))


def check_optimizer(value: Any) -> Optimizer:
    """Return ``value`` as an Optimizer: a float is plain gradient descent at that learning rate."""
    if isinstance(value, Optimizer):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"optimizer={value!r} must be an Optimizer or a learning rate")
    return Optimizer("sgd", lr=value)
