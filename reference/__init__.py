"""A hand-written NumPy backprop for small multi-layer perceptrons: the oracle.

Imports NumPy and the standard library only. Conventions (layouts, losses,
kinks, schedules) are written down in ``reference.conventions``.
"""

from backprop_conformance.reference.backprop import forward, loss, loss_and_gradients
from backprop_conformance.reference.explain import ChainTerm, Explanation, explain
from backprop_conformance.reference.network import Network, Params, init_params
from backprop_conformance.reference.optimizer_rules import OptimizerState
from backprop_conformance.reference.optimizers import Optimizer
from backprop_conformance.reference.oracles import (
    chain_rule_gradients,
    complex_step_gradients,
    finite_difference_gradients,
    relative_error,
    worst_relative_error,
)
from backprop_conformance.reference.training import (
    Trajectory,
    batch_schedule,
    iterations_per_epoch,
    optimizer_step,
    sgd_step,
    train,
)

__all__ = [
    "ChainTerm",
    "Explanation",
    "Network",
    "Optimizer",
    "OptimizerState",
    "Params",
    "Trajectory",
    "batch_schedule",
    "chain_rule_gradients",
    "complex_step_gradients",
    "explain",
    "finite_difference_gradients",
    "forward",
    "init_params",
    "iterations_per_epoch",
    "loss",
    "loss_and_gradients",
    "optimizer_step",
    "relative_error",
    "sgd_step",
    "train",
    "worst_relative_error",
]
