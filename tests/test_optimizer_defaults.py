"""Each convention's defaults (``reference.optimizers.DEFAULTS``) read off the frameworks' own signatures, so that
a release of torch or optax that changes a default, or adds a setting, fails here and not silently in a report."""

from __future__ import annotations

import inspect

import pytest

from backprop_conformance.reference.optimizers import DEFAULTS, INEXPRESSIBLE, OPTIMIZERS

TORCH_CLASSES = {"sgd": "SGD", "adam": "Adam", "adamw": "AdamW", "rmsprop": "RMSprop", "adagrad": "Adagrad"}
#: torch.optim's keywords the reference does not model: how a step runs, not what it computes (maximize aside).
TORCH_NOT_MODELLED = {"params", "maximize", "foreach", "capturable", "differentiable", "fused",
                      "decoupled_weight_decay"}
#: optax's names for torch's; betas is (b1, b2).
OPTAX_NAMES = {"lr": "learning_rate", "alpha": "decay"}
#: optax's keywords the reference does not model, per alias (dtypes, masks, and options torch has no name for).
OPTAX_NOT_MODELLED = {
    "sgd": {"accumulator_dtype"},
    "adam": {"mu_dtype"},
    "amsgrad": {"mu_dtype", "bias_correction_mu", "bias_correction_nu"},
    "adamw": {"mu_dtype", "mask"},
    "rmsprop": set(),
    "adagrad": set(),
}
#: Settings optax spells outside the alias: weight_decay through optax.add_decayed_weights (chained in front, none
#: at 0.0), amsgrad through optax.amsgrad (optax.adam at False), which has no nesterov (the spec refuses both).
OPTAX_OUTSIDE = {("sgd", "weight_decay"), ("adam", "weight_decay"), ("adam", "amsgrad"), ("adam", "nesterov"),
                 ("rmsprop", "weight_decay"), ("adagrad", "weight_decay")}


def _defaults(function) -> dict:
    return {key: p.default for key, p in inspect.signature(function).parameters.items()}


def _same(ours, theirs, where: str) -> None:
    if ours is None:  # optax's learning rate: no default
        assert theirs is inspect.Parameter.empty, where
    elif isinstance(ours, bool):
        assert theirs is ours, where
    else:
        assert theirs == pytest.approx(ours, rel=1e-15, abs=0.0), where


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_the_torch_convention_has_torch_optims_own_defaults(name):
    torch = pytest.importorskip("torch")
    theirs = _defaults(getattr(torch.optim, TORCH_CLASSES[name]))
    ours = DEFAULTS["torch"][name]
    for key, value in ours.items():
        if key in theirs:
            _same(value, theirs[key], f"torch.optim.{TORCH_CLASSES[name]}({key}=...)")
        else:  # a setting torch has no name for: refused unless left at its (neutral) default
            assert ("torch", name, key) in INEXPRESSIBLE and value == 0.0, key
    unknown = set(theirs) - set(ours) - TORCH_NOT_MODELLED
    assert not unknown, f"torch.optim.{TORCH_CLASSES[name]} has settings the reference does not know: {unknown}"


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_the_optax_convention_has_optaxs_own_defaults(name):
    optax = pytest.importorskip("optax")
    ours = DEFAULTS["optax"][name]
    aliases = [name, "amsgrad"] if name == "adam" else [name]  # optax.amsgrad is adam(amsgrad=True)
    for alias in aliases:
        theirs = _defaults(getattr(optax, alias))
        modelled = set()
        for key, value in ours.items():
            if key == "betas":
                _same(value[0], theirs["b1"], f"optax.{alias}(b1=...)")
                _same(value[1], theirs["b2"], f"optax.{alias}(b2=...)")
                modelled |= {"b1", "b2"}
                continue
            spelled = OPTAX_NAMES.get(key, key)
            if spelled in theirs:
                if key == "momentum":  # optax's None: no trace, our 0.0
                    assert value == 0.0 and theirs[spelled] is None, f"optax.{alias}(momentum=None)"
                else:
                    _same(value, theirs[spelled], f"optax.{alias}({spelled}=...)")
                modelled.add(spelled)
            else:
                outside = (name, key) in OPTAX_OUTSIDE or ("optax", name, key) in INEXPRESSIBLE
                assert outside and value in (0.0, False), f"optax.{alias} has no {key}"
        unknown = set(theirs) - modelled - OPTAX_NOT_MODELLED[alias]
        assert not unknown, f"optax.{alias} has settings the reference does not know: {unknown}"
