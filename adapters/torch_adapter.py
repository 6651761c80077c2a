"""PyTorch behind the adapter protocol: torch's own layers, losses, autograd and SGD.

Which torch piece implements which part of the math (``reference.conventions``):

    z_l = a_{l-1} W_l^T + b_l      ``torch.nn.Linear(n_in, n_out, bias=network.bias)``;
                                   its ``weight`` is (n_out, n_in) like our W: no transpose
    a_l = f_l(z_l)                 ``nn.Identity``, ``nn.Sigmoid``, ``nn.Tanh``, ``nn.ReLU``, ``nn.GELU``
                                   (exact, or ``approximate="tanh"``), ``nn.SiLU``, ``nn.Softplus``,
                                   ``nn.LeakyReLU(negative_slope)``, ``nn.ELU(alpha)``,
                                   chained in an ``nn.Sequential``
    J                              ``nn.MSELoss``, ``nn.HuberLoss(delta)``, ``nn.BCEWithLogitsLoss``,
                                   ``nn.CrossEntropyLoss(label_smoothing)``, ``nn.BCELoss`` (on the sigmoid's
                                   probabilities), ``nn.CrossEntropyLoss`` (on the logits,
                                   int64 labels), all with ``reduction=network.reduction``
    dJ/dtheta                      ``loss.backward()`` (autograd)
    theta <- theta - lr dJ/dtheta  ``torch.optim.SGD(lr=learning_rate)``, no momentum

Where torch leaves exact math (``nn.BCELoss`` clamps each log at -100, and its
backward divides by ``max(p (1 - p), 1e-12)``, 1e-12 being a float32 constant),
the adapter keeps torch's behaviour: that is what is being checked. ``import torch`` happens when a
``TorchAdapter`` is created, never when this module is imported.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from backprop_conformance.adapters.protocol import DTYPES, AdapterUnavailable, Trajectory
from backprop_conformance.adapters.torch_optimizers import check_path, torch_optimizer
from backprop_conformance.reference.conventions import PARAMETERS
from backprop_conformance.reference.network import Network, Params
from backprop_conformance.reference.optimizers import Optimizer
from backprop_conformance.reference.specs import parse
from backprop_conformance.reference.validation import (
    check_batches,
    check_data,
    check_learning_rate,
    check_params,
    check_x,
)

if TYPE_CHECKING:
    import torch

#: torch.nn module names, and keyword arguments, for our activation and loss names (torch's defaults are ours).
ACTIVATION_MODULES = {
    "identity": ("Identity", {}), "sigmoid": ("Sigmoid", {}), "tanh": ("Tanh", {}), "relu": ("ReLU", {}),
    "gelu": ("GELU", {}), "gelu_tanh": ("GELU", {"approximate": "tanh"}), "silu": ("SiLU", {}),
    "softplus": ("Softplus", {}),  # threshold=20: above it torch returns z (the convention "softplus threshold 20")
    "leaky_relu": ("LeakyReLU", {}), "elu": ("ELU", {}),
}
LOSS_MODULES = {
    "mse": "MSELoss", "bce": "BCELoss", "cross_entropy": "CrossEntropyLoss", "huber": "HuberLoss",
    "bce_with_logits": "BCEWithLogitsLoss",
}


def activation_module(nn: Any, spec: str) -> Any:
    """Return the torch.nn module of an activation spec: ``"leaky_relu(negative_slope=0.2)"`` is LeakyReLU(0.2)."""
    name, values = parse(spec, PARAMETERS, "activation")
    class_name, keywords = ACTIVATION_MODULES[name]
    return getattr(nn, class_name)(**keywords, **values)


def loss_module(nn: Any, spec: str, reduction: str) -> Any:
    """Return the torch.nn loss of a loss spec: ``"huber(delta=0.5)"`` is HuberLoss(delta=0.5)."""
    name, values = parse(spec, PARAMETERS, "loss")
    return getattr(nn, LOSS_MODULES[name])(reduction=reduction, **values)

#: The values torch.set_float32_matmul_precision accepts.
MATMUL_PRECISIONS = ("highest", "high", "medium")


def _import_torch() -> Any:
    """Return the torch module, or raise AdapterUnavailable saying how to install it."""
    try:
        import torch
    except ImportError:
        raise AdapterUnavailable("torch is not installed: pip install 'backprop-conformance[torch]'") from None
    return torch


def _check_device(torch: Any, device: str, dtype: torch.dtype) -> str:
    """Return ``device`` after checking torch can hold tensors of ``dtype`` there."""
    try:
        kind = torch.device(device).type
    except RuntimeError as error:
        raise ValueError(f"device={device!r} is not a torch device: {error}") from None
    if kind == "cuda" and not torch.cuda.is_available():
        raise AdapterUnavailable(
            f"device={device!r} but torch.cuda.is_available() is False "
            f"(torch {torch.__version__}, CUDA build: {torch.version.cuda})"
        )
    try:
        torch.empty(0, dtype=dtype, device=device)
    except (RuntimeError, AssertionError, TypeError) as error:
        raise AdapterUnavailable(f"torch cannot hold {dtype} tensors on device={device!r}: {error}") from None
    return device


@functools.cache
def _uninitialised_linear(torch: Any) -> type:
    """Return a ``torch.nn.Linear`` subclass whose ``reset_parameters`` does nothing.

    Its parameters start as ``torch.empty`` and the caller's weights are copied
    in right after, which is what ``torch.nn.utils.skip_init`` does, without
    skip_init's meta-device round trip (~0.2 ms a layer, more than the forward
    and backward passes of a small network). Skipping the random
    initialisation also leaves torch's global RNG untouched.
    """

    class UninitialisedLinear(torch.nn.Linear):
        def reset_parameters(self) -> None:
            pass

    return UninitialisedLinear


class TorchAdapter:
    """The reference's networks rebuilt from torch.nn modules, in one dtype on one device.

    ``matmul_precision`` is what ``torch.set_float32_matmul_precision`` is set
    to for the duration of each call (the caller's setting is restored after).
    ``optimizer_path`` is which of torch.optim's implementations ``train`` runs
    an optimizer through: "single" (``foreach=False``), "foreach" or "fused"
    (``adapters.torch_optimizers``).
    """

    name = "torch"
    #: BCELoss's clamp at -100 and gradient floor (adapters.divergences): a known divergence, not a failure.
    conventions = ("torch BCELoss clamp", "softplus threshold 20")
    #: train(..., optimizer=) runs torch.optim: the torch convention (``reference.optimizers``).
    optimizer_conventions = ("torch",)

    def __init__(self, dtype: str = "float64", device: str = "cpu", matmul_precision: str = "highest",
                 optimizer_path: str = "single") -> None:
        if dtype not in DTYPES:
            raise ValueError(f"dtype={dtype!r} is not one of {', '.join(DTYPES)}")
        if matmul_precision not in MATMUL_PRECISIONS:
            raise ValueError(
                f"matmul_precision={matmul_precision!r} is not one of {', '.join(MATMUL_PRECISIONS)}"
            )
        self.optimizer_path: str = check_path(optimizer_path)
        self._torch = _import_torch()
        self._torch_dtype = getattr(self._torch, dtype)
        self._linear = _uninitialised_linear(self._torch)
        self.dtype: str = dtype
        self.device: str = _check_device(self._torch, device, self._torch_dtype)
        self.matmul_precision: str = matmul_precision
        self.version: str = self._torch.__version__

    def __repr__(self) -> str:
        return (
            f"TorchAdapter(dtype={self.dtype!r}, device={self.device!r}, "
            f"matmul_precision={self.matmul_precision!r}, optimizer_path={self.optimizer_path!r})"
        )

    # -- the protocol ---------------------------------------------------------------

    def forward(self, network: Network, params: Params, x: np.ndarray) -> np.ndarray:
        """Return the network's output a_L (logits for cross_entropy) as a NumPy array."""
        params, x = check_params(network, params), check_x(network, x)
        with self._float32_matmul_precision(), self._torch.no_grad():
            model = self._model(network, params)
            return self._numpy(model(self._tensor(x)))

    def loss_and_gradients(
        self, network: Network, params: Params, x: np.ndarray, y: np.ndarray
    ) -> tuple[float, Params]:
        """Return ``(J, grads)`` from torch's loss module and ``loss.backward()``."""
        params = check_params(network, params)
        x, y = check_data(network, x, y)
        with self._float32_matmul_precision(), self._recording_gradients():
            model = self._model(network, params)
            loss = self._loss_module(network)(model(self._tensor(x)), self._targets(network, y))
            loss.backward()
            layers = self._linear_layers(model)
            grads = [(layer.weight.grad, None if layer.bias is None else layer.bias.grad) for layer in layers]
            return float(loss.detach()), self._numpy_params(grads)

    def sgd_step(
        self, network: Network, params: Params, x: np.ndarray, y: np.ndarray, learning_rate: float
    ) -> Params:
        """Return the params after one ``torch.optim.SGD`` step on the batch (x, y)."""
        return self.train(network, params, x, y, [np.arange(len(x))], learning_rate).params

    def train(
        self,
        network: Network,
        params: Params,
        x: np.ndarray,
        y: np.ndarray,
        batches: list[np.ndarray],
        learning_rate: float,
        optimizer: Optimizer | None = None,
    ) -> Trajectory:
        """Return the Trajectory of ``torch.optim.SGD`` (or ``optimizer``'s class by ``self.optimizer_path``,
        torch convention; ``adapters.torch_optimizers``) over ``batches``: losses before each step."""
        params = check_params(network, params)
        x, y = check_data(network, x, y)
        learning_rate = check_learning_rate(learning_rate)
        batches = check_batches(batches, x.shape[0])
        torch = self._torch
        with self._float32_matmul_precision(), self._recording_gradients():
            model = self._model(network, params)
            loss_module = self._loss_module(network)
            optimizer = (torch.optim.SGD(model.parameters(), lr=learning_rate, momentum=0.0) if optimizer is None
                         else torch_optimizer(torch, optimizer, model.parameters(), self.optimizer_path))
            inputs, targets = self._tensor(x), self._targets(network, y)
            losses = []
            for batch in batches:
                indices = torch.from_numpy(batch).to(self.device)
                optimizer.zero_grad()
                loss = loss_module(model(inputs[indices]), targets[indices])
                loss.backward()
                optimizer.step()
                losses.append(loss.detach())  # no .item(): one device sync at the end, not per step
            final = [(layer.weight, layer.bias) for layer in self._linear_layers(model)]
            return Trajectory(
                losses=self._numpy(torch.stack(losses)).astype(np.float64), params=self._numpy_params(final)
            )

    # -- building blocks ------------------------------------------------------------

    @contextlib.contextmanager
    def _float32_matmul_precision(self) -> Iterator[None]:
        """Apply ``self.matmul_precision`` for the duration of a call, then restore the caller's.

        On Ampere and later GPUs, "high" and "medium" let float32 matmuls run in
        TF32, whose 10-bit mantissa gives ~1e-3 relative error: any float32
        tolerance derived from float32's epsilon (~1e-7) would flag it, so the
        default is "highest" (true float32). Reports record the attribute.
        The setting is process-wide, hence set and restored around each call.
        Torch refuses to read it once a caller has mixed this legacy API with
        the per-backend ``fp32_precision`` one; its RuntimeError then says so.
        """
        torch = self._torch
        previous = torch.get_float32_matmul_precision()
        torch.set_float32_matmul_precision(self.matmul_precision)
        try:
            yield
        finally:
            torch.set_float32_matmul_precision(previous)

    @contextlib.contextmanager
    def _recording_gradients(self) -> Iterator[None]:
        """Turn autograd on for a call, whatever the caller's no_grad or inference_mode."""
        with self._torch.inference_mode(False), self._torch.enable_grad():
            yield

    def _model(self, network: Network, params: Params) -> torch.nn.Sequential:
        """Return Linear and activation modules in sequence, holding copies of ``params``."""
        nn = self._torch.nn
        modules = []
        with self._torch.no_grad():
            for (weight, bias), activation in zip(params, network.activations):
                n_out, n_in = weight.shape
                layer = self._linear(n_in, n_out, bias=network.bias, dtype=self._torch_dtype, device=self.device)
                layer.weight.copy_(self._torch.from_numpy(weight))
                if bias is not None:
                    layer.bias.copy_(self._torch.from_numpy(bias))
                modules += [layer, activation_module(nn, activation)]
        return nn.Sequential(*modules)

    @staticmethod
    def _linear_layers(model: torch.nn.Sequential) -> list[torch.nn.Linear]:
        """Return the Linear modules of a model from ``_model``: every other module."""
        return list(model[::2])

    def _loss_module(self, network: Network) -> torch.nn.Module:
        """Return the torch loss module of ``network.loss`` with its reduction."""
        return loss_module(self._torch.nn, network.loss, network.reduction)

    def _tensor(self, array: np.ndarray) -> torch.Tensor:
        """Return ``array`` as a tensor of the adapter's dtype on its device."""
        return self._torch.as_tensor(array, dtype=self._torch_dtype, device=self.device)

    def _targets(self, network: Network, y: np.ndarray) -> torch.Tensor:
        """Return targets as torch's loss expects: int64 class indices for cross_entropy."""
        if network.loss_name == "cross_entropy":
            return self._torch.as_tensor(y, dtype=self._torch.int64, device=self.device)
        return self._tensor(y)

    @staticmethod
    def _numpy(tensor: torch.Tensor) -> np.ndarray:
        """Return ``tensor`` as a NumPy array on the host.

        On the CPU the array shares memory with the tensor, which is safe: every
        tensor handed out belongs to a model built for one call and then dropped.
        """
        return tensor.detach().cpu().numpy()

    def _numpy_params(self, pairs: list) -> Params:
        """Return (W, b) tensor pairs as NumPy pairs, None kept for absent biases."""
        return [(self._numpy(weight), None if bias is None else self._numpy(bias)) for weight, bias in pairs]
