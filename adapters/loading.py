"""Finding adapters: built-in names, ``package.module:attribute`` and entry points."""

from __future__ import annotations

import importlib
import inspect
from importlib.metadata import entry_points
from typing import Any

from backprop_conformance.adapters.protocol import Adapter, AdapterError, AdapterUnavailable

ENTRY_POINT_GROUP = "backprop_conformance.adapters"
#: ``command:CMD ARGS``: an implementation in any language, as a subprocess (``adapters.command_adapter``).
COMMAND_PREFIX = "command:"

#: Built-in adapters by name: (module, class, keyword arguments).
BUILTIN_ADAPTERS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "reference": ("backprop_conformance.adapters.reference_adapter", "ReferenceAdapter", {}),
    "torch-float32": ("backprop_conformance.adapters.torch_adapter", "TorchAdapter", {"dtype": "float32"}),
    "torch-float64": ("backprop_conformance.adapters.torch_adapter", "TorchAdapter", {"dtype": "float64"}),
    "jax-float32": ("backprop_conformance.adapters.jax_adapter", "JaxAdapter", {"dtype": "float32"}),
    "jax-float64": ("backprop_conformance.adapters.jax_adapter", "JaxAdapter", {"dtype": "float64"}),
}
for _dtype in ("float32", "float64"):  # torch.optim's other implementations of the same rules
    for _path in ("foreach", "fused"):
        BUILTIN_ADAPTERS[f"torch-{_dtype}-{_path}"] = (
            "backprop_conformance.adapters.torch_adapter", "TorchAdapter", {"dtype": _dtype, "optimizer_path": _path})
BUILTIN_ADAPTERS["torch"] = BUILTIN_ADAPTERS["torch-float64"]
BUILTIN_ADAPTERS["jax"] = BUILTIN_ADAPTERS["jax-float64"]

#: What the suite checks when no --adapter is given.
DEFAULT_ADAPTERS = ("torch-float32", "torch-float64", "jax-float32", "jax-float64")


def _resolve(target: Any, spec: str) -> Adapter:
    """Turn an instance, a class or a zero-argument factory into an Adapter."""
    if inspect.isclass(target) or (callable(target) and not hasattr(target, "loss_and_gradients")):
        try:
            target = target()
        except AdapterUnavailable:
            raise
        except TypeError as error:
            raise AdapterError(f"adapter {spec!r} could not be created without arguments: {error}") from None
    adapter = target if isinstance(target, Adapter) else Adapter(target)
    adapter.spec = spec
    return adapter


def _import_attribute(spec: str) -> Any:
    module_name, _, attribute_path = spec.partition(":")
    if not module_name or not attribute_path:
        raise AdapterError(f"adapter {spec!r} is not of the form 'package.module:attribute'")
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as error:
        raise AdapterError(f"adapter {spec!r}: cannot import module {module_name!r} ({error})") from None
    for part in attribute_path.split("."):
        if not hasattr(target, part):
            raise AdapterError(f"adapter {spec!r}: module {module_name!r} has no attribute {attribute_path!r}")
        target = getattr(target, part)
    return target


def load_adapter(spec: Any) -> Adapter:
    """Return an Adapter for ``spec``.

    ``spec`` is an adapter object, class or zero-argument factory; a
    ``"package.module:attribute"`` string naming one; ``"command:CMD ARGS"``,
    a subprocess speaking ``adapters.command_adapter``'s protocol; a built-in name
    (``"reference"``, ``"torch-float32"``, ``"jax"``, ...); or the name of an
    entry point in the group ``backprop_conformance.adapters``. Raises
    AdapterError saying what is missing, or AdapterUnavailable when the
    adapter's framework is not installed here.
    """
    if not isinstance(spec, str):
        return _resolve(spec, repr(spec))
    if spec.startswith(COMMAND_PREFIX):
        from backprop_conformance.adapters.command_adapter import CommandAdapter

        return _resolve(lambda: CommandAdapter(spec[len(COMMAND_PREFIX):]), spec)
    if ":" in spec:
        return _resolve(_import_attribute(spec), spec)
    if spec in BUILTIN_ADAPTERS:
        module_name, class_name, keywords = BUILTIN_ADAPTERS[spec]
        adapter_class = getattr(importlib.import_module(module_name), class_name)
        return _resolve(lambda: adapter_class(**keywords), spec)
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        if entry_point.name == spec:
            return _resolve(entry_point.load(), spec)
    known = sorted(BUILTIN_ADAPTERS) + sorted(e.name for e in entry_points(group=ENTRY_POINT_GROUP))
    raise AdapterError(
        f"adapter {spec!r} is neither 'package.module:attribute' nor a known name ({', '.join(known)})"
    )


def available_adapters(specs: tuple[str, ...] = DEFAULT_ADAPTERS) -> dict[str, Adapter | str]:
    """Return each spec's Adapter, or the reason it is unavailable here."""
    found: dict[str, Adapter | str] = {}
    for spec in specs:
        try:
            found[spec] = load_adapter(spec)
        except AdapterUnavailable as reason:
            found[spec] = str(reason)
    return found
