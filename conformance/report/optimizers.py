"""The report's optimizer stage: the same nominal optimizer in torch and optax, side by side.

For each configuration (what a user writes: ``torch.optim.RMSprop(p, lr=0.01)``
and ``optax.rmsprop(0.01)``), the reference is run in both conventions on
one fixed case (16 steps over 4 shuffled epochs, a partial batch in each), each
framework adapter is judged against the reference in its own convention
(``suite.comparisons.compare_optimizer_train``), and the two conventions'
final params are compared: how far torch and optax are apart, and why.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from backprop_conformance.adapters.optimizer_support import optimizer_conventions, takes_optimizer
from backprop_conformance.adapters.protocol import Unsupported
from backprop_conformance.reference.network import Network
from backprop_conformance.reference.optimizers import Optimizer
from backprop_conformance.reference.training import batch_schedule, train
from backprop_conformance.report.records import LoadedAdapter
from backprop_conformance.suite.case import Case
from backprop_conformance.suite.comparisons import OutsideModel, compare_optimizer_train

#: (name, the nominal settings both sides are given, why the two conventions differ there).
CONFIGURATIONS: tuple[tuple[str, dict[str, Any], str], ...] = (
    ("sgd", {"lr": 0.1}, "none: the same rule"),
    ("sgd", {"lr": 0.1, "momentum": 0.9, "nesterov": True}, "none: the same rule (no dampening)"),
    ("sgd", {"lr": 0.1, "momentum": 0.9, "dampening": 0.5},
     "optax has no dampening; torch's first buffer is g, undampened"),
    ("adam", {"lr": 1e-3}, "none: the same rule, its terms in another order"),
    ("adam", {"lr": 1e-3, "amsgrad": True},
     "AMSGrad: the maximum of the raw v (torch) or of the bias-corrected v (optax)"),
    ("adam", {"lr": 1e-3, "eps_root": 1e-8}, "eps_root (eps inside the root) is optax's only"),
    ("adam", {"lr": 1e-3, "nesterov": True}, "Nesterov Adam is optax's only (torch.optim.NAdam is another rule)"),
    ("adamw", {"lr": 1e-3}, "default weight decay 1e-2 (torch) and 1e-4 (optax)"),
    ("rmsprop", {"lr": 1e-2}, "eps outside (torch) or inside (optax) the root; alpha 0.99 (torch) or 0.9 (optax)"),
    ("rmsprop", {"lr": 1e-2, "bias_correction": True}, "bias correction of RMSprop's moments is optax's only"),
    ("adagrad", {"lr": 1e-2}, "accumulator from 0 (torch) or 0.1 (optax); eps 1e-10 outside or 1e-7 inside the root"),
)
CONVENTIONS = ("torch", "optax")


def optimizer_case(optimizer: Optimizer | None = None) -> Case:
    """Return the fixed case of the comparison: a 3-5-4-2 network, 7 samples, batches of 2 over 4 epochs."""
    rng = np.random.default_rng(20261202)
    network = Network((3, 5, 4, 2), ("tanh", "sigmoid", "identity"), "mse")
    params = [(rng.uniform(-1, 1, (n_out, n_in)), rng.uniform(-0.5, 0.5, n_out))
              for n_in, n_out in zip(network.sizes[:-1], network.sizes[1:])]
    x, y = rng.uniform(-2, 2, (7, 3)), rng.uniform(-1, 1, (7, 2))
    lr = 0.1 if optimizer is None else optimizer.lr
    return Case(network, params, x, y, lr, batch_schedule(7, 2, epochs=4, seed=5), optimizer=optimizer)


def configuration_label(name: str, settings: dict[str, Any]) -> str:
    """``rmsprop(lr=0.01)``: the configuration as both sides write it."""
    return f"{name}({', '.join(f'{key}={value!r}' for key, value in settings.items())})"


def _spec(name: str, convention: str, settings: dict[str, Any]) -> tuple[Optimizer | None, str | None]:
    try:
        return Optimizer(name, convention, **settings), None
    except ValueError as error:
        return None, str(error)


def _judged(loaded: LoadedAdapter, optimizer: Optimizer) -> dict[str, Any]:
    adapter = loaded.adapter
    entry: dict[str, Any] = {"adapter": loaded.label, "convention": optimizer.convention}
    try:
        measurements = compare_optimizer_train(adapter, optimizer_case(optimizer))  # type: ignore[arg-type]
    except Unsupported as reason:
        return entry | {"verdict": "not applicable", "worst_ratio": None, "reason": str(reason)}
    except OutsideModel as reason:
        return entry | {"verdict": "outside model", "worst_ratio": None, "reason": str(reason)}
    except Exception as error:  # recorded, as the sweep records an adapter's error
        return entry | {"verdict": "error", "worst_ratio": None, "reason": f"{type(error).__name__}: {error}"}
    worst = max(m.ratio for m in measurements)
    verdict = "pass" if all(m.passed for m in measurements) else "fail"
    return entry | {"verdict": verdict, "worst_ratio": float(worst), "reason": None}


def _apart(first: Any, second: Any) -> float:
    """Return max |theta_torch - theta_optax| over max |theta_torch|, over every parameter array."""
    arrays = [(a, b) for pa, pb in zip(first.params, second.params) for a, b in zip(pa, pb) if a is not None]
    scale = max(float(np.max(np.abs(a))) for a, _ in arrays)
    return max(float(np.max(np.abs(a - b))) for a, b in arrays) / scale


def _adapter_conventions(loaded: LoadedAdapter) -> tuple[str, ...]:
    """Return the conventions to judge ``loaded`` in: each it declares, or one where it is SGD-only."""
    implementation = loaded.adapter.implementation  # type: ignore[union-attr]
    try:
        conventions = optimizer_conventions(implementation)
    except ValueError:
        return ()
    if not takes_optimizer(getattr(implementation, "train", None)):
        return conventions[:1]  # one "not applicable" says it: SGD only
    return conventions


def optimizer_comparison(adapters: Sequence[LoadedAdapter]) -> dict[str, Any]:
    """Return the comparison: per configuration, both conventions' specs, how far apart, and each adapter."""
    rows, losses = [], {}
    for name, settings, cause in CONFIGURATIONS:
        label = configuration_label(name, settings)
        specs = {convention: _spec(name, convention, settings) for convention in CONVENTIONS}
        runs = {}
        for convention, (optimizer, _) in specs.items():
            if optimizer is not None:
                case = optimizer_case(optimizer)
                runs[convention] = train(case.network, case.params, case.x, case.y, case.batches, optimizer)
        losses[label] = {convention: [float(v) for v in run.losses] for convention, run in runs.items()}
        judged = []
        for loaded in adapters:
            if loaded.adapter is None or not loaded.adapter.supports("train"):
                continue
            for convention in _adapter_conventions(loaded):
                optimizer = specs[convention][0]
                if optimizer is not None:
                    judged.append(_judged(loaded, optimizer))
        rows.append({
            "configuration": label,
            "conventions": {convention: (optimizer.describe() if optimizer else None) if not reason else
                            f"refused: {reason}" for convention, (optimizer, reason) in specs.items()},
            "apart": _apart(runs["torch"], runs["optax"]) if len(runs) == 2 else None,
            "cause": cause,
            "adapters": judged,
        })
    case = optimizer_case()
    described = (f"{case.network.describe()}; {case.x.shape[0]} samples, {len(case.batches)} shuffled batches of at "
                 f"most {max(len(batch) for batch in case.batches)}, at each row's lr")
    return {"case": described, "rows": rows, "losses": losses}
