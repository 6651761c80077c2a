"""The same networks rebuilt in PyTorch and JAX, and a plug-in point for anyone's code.

Importing this package never imports a framework: ``TorchAdapter`` and
``JaxAdapter`` import theirs when instantiated and raise
``AdapterUnavailable`` (the suite skips them) when it is missing.
"""

from backprop_conformance.adapters.jax_adapter import JaxAdapter
from backprop_conformance.adapters.loading import (
    BUILTIN_ADAPTERS,
    DEFAULT_ADAPTERS,
    ENTRY_POINT_GROUP,
    available_adapters,
    load_adapter,
)
from backprop_conformance.adapters.protocol import (
    Adapter,
    AdapterCallError,
    AdapterError,
    AdapterModifiedInput,
    AdapterProtocol,
    AdapterResultError,
    AdapterTimeout,
    AdapterUnavailable,
    Trajectory,
    Unsupported,
)
from backprop_conformance.adapters.reference_adapter import ReferenceAdapter
from backprop_conformance.adapters.torch_adapter import TorchAdapter

__all__ = [
    "BUILTIN_ADAPTERS",
    "DEFAULT_ADAPTERS",
    "ENTRY_POINT_GROUP",
    "Adapter",
    "AdapterCallError",
    "AdapterError",
    "AdapterModifiedInput",
    "AdapterProtocol",
    "AdapterResultError",
    "AdapterTimeout",
    "AdapterUnavailable",
    "JaxAdapter",
    "ReferenceAdapter",
    "TorchAdapter",
    "Trajectory",
    "Unsupported",
    "available_adapters",
    "load_adapter",
]
