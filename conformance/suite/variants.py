"""The catalogue of named deviations from exact math: each one entry of data.

A ``Variant`` is the reference computation with one thing changed: a piece of
the pass swapped (``rules``: an activation's derivative, a loss, the
normaliser; ``reference.backprop.Rules``), the gradients transformed, the
learning rate or the schedule changed, the gradients accumulated, or the
whole pass computed in float32. When a comparison fails, ``suite.diagnosis``
computes the variants that apply and says which one the adapter's numbers
match. A *convention* is a variant a framework follows by design (an
adapter lists it in ``conventions``): matching it is "known divergence:
<name>", not a failure.

Adding a variant is one entry in ``CATALOGUE`` and its test in
``tests/test_variants.py`` (an optimizer's, tagged "optimizer", in
``tests/test_optimizer_variants.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from backprop_conformance.reference.activations import ACTIVATION_FUNCTIONS, sigmoid, tanh
from backprop_conformance.reference.backprop import REFERENCE_RULES, Rules
from backprop_conformance.reference.network import Network, Params
from backprop_conformance.suite.case import Case
from backprop_conformance.suite.variant_optimizers import (
    adam_like,
    adamw_decay,
    bias_correction_one_step_off,
    coupled_decay,
    dampened_torch_momentum,
    decay_after_the_step,
    decay_without_lr,
    eps_on_the_wrong_side,
    momentum_buffer_from_zero,
    no_bias_correction,
    with_eps,
)
from backprop_conformance.suite.variant_rules import (
    ELEMENT_MEANS,
    LABEL_SMOOTHING,
    above_softplus_threshold,
    bce_values,
    bias_mean,
    dead,
    dead_relu,
    drop_partial,
    leaky_derivative_one_at_zero,
    leaky_keras,
    mse_delta_times,
    naive_softplus,
    partial_batches,
    per_sample_normaliser,
    relu_derivative_at_zero,
    smooth_l1,
    smoothed,
    smoothed_twice,
    square_layer,
    torch_bce,
    torch_softplus,
    torch_softplus_derivative,
    transposed_square,
    uses,
    uses_derivative,
    with_activation,
    with_loss,
)


@dataclass(frozen=True)
class Variant:
    """One named deviation: what it changes, where it can show, and how the reference computes it."""

    name: str
    description: str
    #: The quantities it can change: of "output", "loss", "gradient", "update", "trajectory".
    changes: frozenset[str]
    #: (case, adapter dtype) -> whether it can change this case's numbers at all.
    applies: Callable[[Case, str], bool] = lambda case, dtype: True
    #: (adapter dtype, network) -> the pieces of the pass.
    rules: Callable[[str, Network], Rules] | None = None
    #: (network, grads, batch size) -> the gradients the variant hands on.
    grads: Callable[[Network, Params, int], Params] | None = None
    learning_rate: Callable[[float], float] | None = None
    schedule: Callable[[list], list] | None = None
    accumulate: bool = False
    #: (optimizer, state, params, grads) -> (params, state): the variant's optimizer step (optimizer cases).
    update: Callable[..., tuple] | None = None
    #: Compute the pass in this dtype (its results then also exactly representable in it).
    dtype: str | None = None
    #: Where it is seen, for the message: "autograd's np.maximum".
    seen_in: str = ""
    #: Of the exact comparison's allowance: 2 where both sides carry their own rounding.
    tolerance: float = 1.0
    tags: tuple[str, ...] = field(default=())

    def says(self) -> str:
        """Return the variant as the diagnosis states it: ``relu'(0) = 0.5 (autograd's np.maximum)``."""
        return f"{self.name} ({self.seen_in})" if self.seen_in else self.name


EVERYWHERE = frozenset({"loss", "gradient", "update", "trajectory"})
STEPS = frozenset({"gradient", "update", "trajectory"})
TRAINED = frozenset({"trajectory"})
#: A variant of an activation's values also changes the forward output.
WITH_OUTPUT = EVERYWHERE | {"output"}

CATALOGUE: tuple[Variant, ...] = (
    Variant("relu'(0) = 0.5", "relu's derivative at exactly 0 taken as 1/2 instead of 0", STEPS, dead_relu,
            rules=with_activation("relu", relu_derivative_at_zero(0.5)), seen_in="autograd's np.maximum"),
    Variant("relu'(0) = 1", "relu's derivative at exactly 0 taken as 1 instead of 0 (z >= 0)", STEPS, dead_relu,
            rules=with_activation("relu", relu_derivative_at_zero(1.0))),
    Variant("mse without its factor 2", "dJ/da = (a - y) / N instead of 2 (a - y) / N", STEPS,
            lambda case, dtype: case.network.loss_name == "mse", rules=with_loss("mse", delta=mse_delta_times(1.0))),
    Variant("mse with a factor 1/2", "J = (1/2N) sum (a - y)^2, as optax.l2_loss", EVERYWHERE,
            lambda case, dtype: case.network.loss_name == "mse",
            rules=with_loss("mse", value=lambda z, a, y: 0.5 * np.sum((a - y) ** 2), delta=mse_delta_times(1.0))),
    Variant("a mean over samples instead of over all elements", "N = m instead of m n_L for mse and bce",
            EVERYWHERE,
            lambda case, dtype: case.network.loss_name in ELEMENT_MEANS and case.network.reduction == "mean"
            and case.network.sizes[-1] > 1,
            rules=lambda dtype, network: Rules(REFERENCE_RULES.activations, REFERENCE_RULES.losses,
                                               per_sample_normaliser)),
    Variant("loss and gradients computed in float32", "a float64 claim whose pass runs in float32",
            frozenset({"loss", "gradient"}),
            lambda case, dtype: dtype == "float64", dtype="float32", tolerance=2.0,
            seen_in="Keras 3 on JAX computes float64 means in float32"),
    Variant("the learning rate rounded to float32", "theta - float32(lr) dJ/dtheta beside float64 params",
            frozenset({"update", "trajectory"}),
            lambda case, dtype: dtype == "float64" and float(np.float32(case.learning_rate)) != case.learning_rate,
            learning_rate=lambda rate: float(np.float32(rate)), seen_in="tinygrad, Keras"),
    Variant("probabilities clipped at eps", "bce's logs of p clipped to [eps, 1 - eps], eps float32's",
            frozenset({"loss"}), lambda case, dtype: case.network.loss_name == "bce",
            rules=with_loss("bce", dtype_dependent=bce_values(
                lambda p, eps: (np.log(np.clip(p, eps, 1 - eps)), np.log(1 - np.clip(p, eps, 1 - eps))))),
            seen_in="scikit-learn's log-loss"),
    Variant("-log(p + eps)", "bce as -(y log(p + eps) + (1 - y) log(1 - p + eps)), eps float32's",
            frozenset({"loss"}), lambda case, dtype: case.network.loss_name == "bce",
            rules=with_loss("bce", dtype_dependent=bce_values(
                lambda p, eps: (np.log(p + eps), np.log(1 - p + eps)))), seen_in="numpy-ml"),
    Variant(f"label smoothing {LABEL_SMOOTHING}", "cross-entropy against (1 - e) one_hot + e / K", EVERYWHERE,
            lambda case, dtype: case.network.loss == "cross_entropy",
            rules=with_loss("cross_entropy", value=smoothed(True), delta=smoothed(False))),
    Variant("sigmoid' without the square", "sigmoid'(z) as s instead of s - s^2", STEPS,
            lambda case, dtype: uses_derivative(case, "sigmoid"),
            rules=with_activation("sigmoid", lambda spec: lambda z, a=None: sigmoid(z))),
    Variant("tanh' without the square", "tanh'(z) as 1 - t instead of 1 - t^2", STEPS,
            lambda case, dtype: uses_derivative(case, "tanh"),
            rules=with_activation("tanh", lambda spec: lambda z, a=None: 1.0 - tanh(z))),
    Variant("a transposed weight gradient", "dW^T where W is square (elsewhere the shape would differ)", STEPS,
            square_layer, grads=transposed_square),
    Variant("the bias gradient as a mean", "db = mean over the batch of delta instead of the sum", STEPS,
            lambda case, dtype: case.network.bias and len(case.x) > 1, grads=bias_mean),
    Variant("gradients accumulated across iterations", "no zero_grad(): each step adds to the last's gradients",
            frozenset({"trajectory"}), lambda case, dtype: len(case.batches) > 1, accumulate=True),
    Variant("batches taken in reverse", "the schedule followed from its last batch to its first",
            frozenset({"trajectory"}), lambda case, dtype: len(case.batches) > 1,
            schedule=lambda batches: list(reversed(batches))),
    Variant("the last partial batch dropped", "only full batches trained on (drop_last)", frozenset({"trajectory"}),
            partial_batches, schedule=drop_partial),
    Variant("gelu with the tanh approximation", "gelu computed as z (1 + tanh(sqrt(2/pi) (z + 0.044715 z^3))) / 2",
            WITH_OUTPUT, uses("gelu"), seen_in="jax.nn.gelu's default, approximate=True",
            rules=with_activation("gelu", lambda spec: ACTIVATION_FUNCTIONS["gelu_tanh"].derivative,
                                   lambda spec: ACTIVATION_FUNCTIONS["gelu_tanh"].function)),
    Variant("softplus as log(1 + exp(z))", "softplus without log1p or a threshold: 0 below z of about -37, inf "
            "above 709", WITH_OUTPUT, uses("softplus"), rules=with_activation(
                "softplus", lambda spec: ACTIVATION_FUNCTIONS["softplus"].derivative, naive_softplus)),
    Variant("leaky_relu's slope 0.2", "leaky_relu at 0.2, Keras's default, where torch's 0.01 was asked", WITH_OUTPUT,
            lambda case, dtype: "leaky_relu" in case.network.activations, seen_in="Keras",
            rules=with_activation("leaky_relu", leaky_keras("derivative"), leaky_keras("function"))),
    Variant("huber divided by delta", "huber(delta) / delta: torch's SmoothL1Loss(beta=delta) taken for HuberLoss",
            EVERYWHERE, lambda case, dtype: case.network.loss_name == "huber" and case.network.loss != "huber",
            rules=with_loss("huber", from_spec=smooth_l1), seen_in="torch.nn.SmoothL1Loss"),
    Variant("label smoothing applied twice", "targets smoothed by the loss and again by the caller", EVERYWHERE,
            lambda case, dtype: case.network.loss_name == "cross_entropy" and case.network.loss != "cross_entropy",
            rules=with_loss("cross_entropy", from_spec=smoothed_twice)),
    Variant("softplus threshold 20", "softplus(z) = z above z = 20, and its derivative exactly 1 there", WITH_OUTPUT,
            above_softplus_threshold, seen_in="torch.nn.Softplus(threshold=20)", tags=("convention",),
            rules=with_activation("softplus", torch_softplus_derivative, torch_softplus)),
    Variant("leaky_relu'(0) = 1", "leaky_relu's derivative at exactly 0 taken as 1 instead of the slope", STEPS,
            dead("leaky_relu"), seen_in="jax.nn.leaky_relu", tags=("convention",),
            rules=with_activation("leaky_relu", leaky_derivative_one_at_zero)),
    Variant("torch BCELoss clamp", "BCELoss on rounded probabilities: logs clamped at -100, gradient floor 1e-12",
            EVERYWHERE, lambda case, dtype: case.network.loss_name == "bce",
            rules=with_loss("bce", dtype_dependent=torch_bce), seen_in="torch.nn.BCELoss", tags=("convention",)),
    # -- the optimizers' classic bugs (suite.variant_optimizers) --
    Variant("no bias correction", "Adam's m and v used without dividing by 1 - beta^t", TRAINED, adam_like,
            update=no_bias_correction, tags=("optimizer",)),
    Variant("bias correction one step off", "1 - beta^(t + 1) instead of 1 - beta^t", TRAINED, adam_like,
            update=bias_correction_one_step_off, tags=("optimizer",)),
    Variant("eps on the wrong side of the root", "sqrt(v + eps) where the convention has sqrt(v) + eps, or the "
            "other way round", TRAINED, with_eps, update=eps_on_the_wrong_side, tags=("optimizer",)),
    Variant("AdamW's decay not multiplied by lr", "theta (1 - weight_decay) instead of theta (1 - lr weight_decay)",
            TRAINED, adamw_decay, update=decay_without_lr, tags=("optimizer",)),
    Variant("the momentum buffer started at zero", "torch's first momentum buffer (1 - dampening) g instead of g",
            TRAINED, dampened_torch_momentum, update=momentum_buffer_from_zero, tags=("optimizer",)),
    Variant("weight decay applied after the step", "theta' - lr weight_decay theta' after the rule instead of "
            "g + weight_decay theta before it", TRAINED, coupled_decay, update=decay_after_the_step,
            tags=("optimizer",)),
)
BY_NAME = {variant.name: variant for variant in CATALOGUE}
