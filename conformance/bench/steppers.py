"""The steppers ``backprop bench`` times: each holds its state and runs ``steps(k)``, chained.

Frameworks are imported when a stepper is built, in the worker that times it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from backprop_conformance.reference.backprop import Workspace, loss_and_gradients
from backprop_conformance.reference.network import Network, Params
from backprop_conformance.reference.optimizer_rules import init_state
from backprop_conformance.reference.optimizers import Optimizer
from backprop_conformance.reference.training import _optimizer_train_step, _train_step, optimizer_step, sgd_step
from backprop_conformance.reference.validation import check_data, check_params


def adam(convention: str, learning_rate: float) -> Optimizer:
    """The optimizer of the bench's Adam steps: Adam at the convention's defaults."""
    return Optimizer("adam", convention, lr=learning_rate)


class ReferencePublicStepper:
    """``reference.sgd_step`` called as a user would: validation on every call."""

    def __init__(self, network: Network, params: Params, x: np.ndarray, y: np.ndarray, learning_rate: float) -> None:
        self.network, self.state, self.x, self.y, self.learning_rate = network, params, x, y, learning_rate

    def steps(self, count: int) -> None:
        for _ in range(count):
            self.state = sgd_step(self.network, self.state, self.x, self.y, self.learning_rate)

    def params(self) -> Params:
        return self.state


class ReferenceTrainStepper(ReferencePublicStepper):
    """One iteration of ``reference.train`` (``_train_step``) on arrays validated once, as ``train`` runs it."""

    def __init__(self, network: Network, params: Params, x: np.ndarray, y: np.ndarray, learning_rate: float) -> None:
        x, y = check_data(network, x, y)
        super().__init__(network, check_params(network, params), x, y, learning_rate)
        self.workspace: Workspace | None = None

    def steps(self, count: int) -> None:
        for _ in range(count):
            _, self.workspace = _train_step(
                self.network, self.state, self.x, self.y, self.learning_rate, self.workspace
            )


class ReferenceGradientsStepper(ReferencePublicStepper):
    """``reference.loss_and_gradients`` called as a user would (no update: its params() applies one, untimed)."""

    def steps(self, count: int) -> None:
        for _ in range(count):
            self.grads = loss_and_gradients(self.network, self.state, self.x, self.y)[1]

    def params(self) -> Params:
        return [(w - self.learning_rate * dw, None if b is None else b - self.learning_rate * db)
                for (w, b), (dw, db) in zip(self.state, self.grads)]


class ReferenceAdamPublicStepper(ReferencePublicStepper):
    """``reference.optimizer_step`` with Adam (torch's convention), as a user would call it, state carried."""

    def __init__(self, network: Network, params: Params, x: np.ndarray, y: np.ndarray, learning_rate: float) -> None:
        super().__init__(network, params, x, y, learning_rate)
        self.optimizer, self.optimizer_state = adam("torch", learning_rate), None

    def steps(self, count: int) -> None:
        for _ in range(count):
            self.state, self.optimizer_state = optimizer_step(self.network, self.state, self.x, self.y,
                                                              self.optimizer, self.optimizer_state)


class ReferenceAdamTrainStepper(ReferenceTrainStepper):
    """One iteration of ``reference.train`` with Adam (torch's convention) on arrays validated once."""

    def __init__(self, network: Network, params: Params, x: np.ndarray, y: np.ndarray, learning_rate: float) -> None:
        super().__init__(network, params, x, y, learning_rate)
        self.optimizer = adam("torch", learning_rate)
        self.optimizer_state = init_state(self.optimizer, self.state)

    def steps(self, count: int) -> None:
        for _ in range(count):
            _, self.state, self.optimizer_state, self.workspace = _optimizer_train_step(  # as train steps
                self.network, self.state, self.x, self.y, self.optimizer, self.optimizer_state, self.workspace,
                ("params", "state"))


class TorchStepper:
    """torch eager: ``nn.Sequential``, torch's loss module, ``backward()``, ``optim.SGD``."""

    def __init__(
        self, network: Network, params: Params, x: np.ndarray, y: np.ndarray, learning_rate: float, dtype: str,
        rule: str = "sgd",
    ) -> None:
        import torch

        from backprop_conformance.adapters.torch_adapter import activation_module, loss_module
        from backprop_conformance.adapters.torch_optimizers import torch_optimizer

        self.torch = torch
        torch_dtype = getattr(torch, dtype)
        modules = []
        with torch.no_grad():
            for (weight, bias), activation in zip(params, network.activations):
                layer = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None, dtype=torch_dtype)
                layer.weight.copy_(torch.from_numpy(weight))
                if bias is not None:
                    layer.bias.copy_(torch.from_numpy(bias))
                modules += [layer, activation_module(torch.nn, activation)]
        self.model = torch.nn.Sequential(*modules)
        self.loss = loss_module(torch.nn, network.loss, network.reduction)
        self.optimizer = (torch.optim.SGD(self.model.parameters(), lr=learning_rate) if rule == "sgd" else
                          torch_optimizer(torch, adam("torch", learning_rate), self.model.parameters()))
        self.x = torch.as_tensor(x, dtype=torch_dtype)
        self.y = torch.as_tensor(y, dtype=torch.int64 if network.loss_name == "cross_entropy" else torch_dtype)

    def steps(self, count: int) -> None:
        model, loss, optimizer, x, y = self.model, self.loss, self.optimizer, self.x, self.y
        for _ in range(count):
            optimizer.zero_grad()
            loss(model(x), y).backward()
            optimizer.step()

    def params(self) -> Params:
        layers = list(self.model)[::2]
        return [
            (
                layer.weight.detach().numpy().astype(np.float64),
                None if layer.bias is None else layer.bias.detach().numpy().astype(np.float64),
            )
            for layer in layers
        ]


class JaxStepper:
    """jax.jit: one compiled function for value_and_grad and the optax.sgd update."""

    def __init__(
        self, network: Network, params: Params, x: np.ndarray, y: np.ndarray, learning_rate: float, dtype: str,
        rule: str = "sgd",
    ) -> None:
        import jax
        import jax.numpy as jnp
        import optax

        from backprop_conformance.adapters.optax_optimizers import optax_transform

        self.jax, self.dtype = jax, dtype
        activations = {"identity": lambda z: z, "sigmoid": jax.nn.sigmoid, "tanh": jnp.tanh, "relu": jax.nn.relu}

        def objective(layers: list, x: Any, y: Any) -> Any:
            a = x
            for layer, name in zip(layers, network.activations):
                z = a @ layer["kernel"] + layer["bias"] if "bias" in layer else a @ layer["kernel"]
                a = activations[name](z)
            if network.loss_name == "mse":
                elementwise = optax.squared_error(a, y)
            elif network.loss_name == "bce":  # on the logits, as the JAX adapter
                elementwise = optax.sigmoid_binary_cross_entropy(z, y)
            else:
                elementwise = optax.softmax_cross_entropy_with_integer_labels(z, y)
            return jnp.mean(elementwise) if network.reduction == "mean" else jnp.sum(elementwise)

        optimizer = optax.sgd(learning_rate) if rule == "sgd" else optax_transform(adam("optax", learning_rate))

        def step(layers: list, state: Any, x: Any, y: Any) -> Any:
            value, grads = jax.value_and_grad(objective)(layers, x, y)
            updates, state = optimizer.update(grads, state, layers)
            return optax.apply_updates(layers, updates), state, value

        self.step = jax.jit(step, donate_argnums=(0, 1))
        with self._scope():
            # JAX/Flax layout: kernel = W^T, (n_in, n_out).
            self.layers = [
                {"kernel": jnp.asarray(weight.T, dtype=dtype)}
                | ({} if bias is None else {"bias": jnp.asarray(bias, dtype=dtype)})
                for weight, bias in params
            ]
            self.state = optimizer.init(self.layers)
            self.x = jnp.asarray(x, dtype=dtype)
            self.y = jnp.asarray(y, dtype=jnp.int32 if network.loss_name == "cross_entropy" else dtype)

    def _scope(self) -> Any:
        return self.jax.enable_x64(self.dtype == "float64")

    def steps(self, count: int) -> None:
        with self._scope():
            layers, state = self.layers, self.state
            for _ in range(count):
                layers, state, _ = self.step(layers, state, self.x, self.y)
            self.layers, self.state = self.jax.block_until_ready((layers, state))

    def params(self) -> Params:
        return [
            (np.asarray(layer["kernel"], dtype=np.float64).T.copy(),
             np.asarray(layer["bias"], dtype=np.float64) if "bias" in layer else None)
            for layer in self.layers
        ]

    def compiled_memory(self) -> dict[str, int] | None:
        """Return XLA's buffer sizes for one compiled step (``memory_analysis``), if it reports them."""
        with self._scope():
            try:
                stats = self.step.lower(self.layers, self.state, self.x, self.y).compile().memory_analysis()
            except Exception:  # not every backend or version reports it
                return None
        if stats is None:
            return None
        names = ("argument_size_in_bytes", "output_size_in_bytes", "alias_size_in_bytes", "temp_size_in_bytes")
        return {name: int(getattr(stats, name)) for name in names}


def torch_float64(*arguments: Any) -> TorchStepper:
    return TorchStepper(*arguments, dtype="float64")


def torch_float32(*arguments: Any) -> TorchStepper:
    return TorchStepper(*arguments, dtype="float32")


def jax_float64(*arguments: Any) -> JaxStepper:
    return JaxStepper(*arguments, dtype="float64")


def jax_float32(*arguments: Any) -> JaxStepper:
    return JaxStepper(*arguments, dtype="float32")


def torch_adam_float64(*arguments: Any) -> TorchStepper:
    return TorchStepper(*arguments, dtype="float64", rule="adam")


def jax_adam_float64(*arguments: Any) -> JaxStepper:
    return JaxStepper(*arguments, dtype="float64", rule="adam")
