"""Names with parameters: ``"leaky_relu"``, ``"leaky_relu(negative_slope=0.2)"``, ``"huber(delta=0.5)"``.

An activation or a loss is a string, so that every plain name stays valid
and a spec travels as JSON as it is. Parameters go in parentheses, by name
or (for a name with one parameter) by position: ``"elu(0.5)"`` is
``"elu(alpha=0.5)"``. ``canonical`` writes a spec one way only: the bare
name when every parameter has its default (torch's), else every parameter
that differs, by name, in ``repr`` (which round-trips).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

_SPEC = re.compile(r"^\s*([a-z_]+)\s*(?:\((.*)\))?\s*$")


def _number(text: str, field: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{field}={text.strip()!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"{field}={text.strip()!r} must be finite")
    return value


def parse(spec: str, parameters: Mapping[str, Mapping[str, float]], field: str) -> tuple[str, dict[str, float]]:
    """Return (name, every parameter with its value) for ``spec``; ``parameters`` maps names to their defaults.

    Raises ValueError naming ``field`` (e.g. ``activations[1]``) for unknown
    or repeated parameters and for values that are not finite numbers; whether
    the name itself exists is the caller's check.
    """
    if not isinstance(spec, str):
        raise TypeError(f"{field}={spec!r:.60} must be a name, such as 'relu' or 'leaky_relu(negative_slope=0.2)'")
    match = _SPEC.match(spec)
    if match is None:
        raise ValueError(f"{field}={spec!r} is not of the form 'name' or 'name(parameter=value, ...)'")
    name, inside = match.group(1), match.group(2)
    defaults = dict(parameters.get(name, {}))
    if inside is None or not inside.strip():
        return name, defaults
    if not defaults:
        raise ValueError(f"{field}={spec!r}: {name} takes no parameters")
    given: dict[str, float] = {}
    for position, item in enumerate(part for part in inside.split(",") if part.strip()):
        key, equals, value = item.partition("=")
        if not equals:  # positional: only for a name with one parameter
            if len(defaults) != 1 or position:
                raise ValueError(f"{field}={spec!r}: name the parameters ({', '.join(defaults)})")
            key, value = next(iter(defaults)), item
        key = key.strip()
        if key not in defaults:
            raise ValueError(f"{field}={spec!r}: {name} has no parameter {key!r} (it has {', '.join(defaults)})")
        if key in given:
            raise ValueError(f"{field}={spec!r}: {key} is given twice")
        given[key] = _number(value, f"{field} {key}")
    return name, {**defaults, **given}


def canonical(name: str, values: Mapping[str, float], parameters: Mapping[str, Mapping[str, float]]) -> str:
    """Return the one way ``name`` with these parameter values is written."""
    defaults = parameters.get(name, {})
    changed = [(key, float(values[key])) for key in defaults if float(values[key]) != float(defaults[key])]
    if not changed:
        return name
    return f"{name}({', '.join(f'{key}={value!r}' for key, value in changed)})"


def base(spec: str) -> str:
    """Return a spec's name without its parameters: ``base("huber(delta=0.5)") == "huber"``."""
    return spec.split("(", 1)[0].strip()


class SpecTable(Mapping):
    """Entries by spec: a plain name, or a name with parameters (``"elu(alpha=0.5)"``), whose entry
    ``parameterised[name](**values)`` is built on first use and kept. ``kind`` names the field in errors."""

    def __init__(self, plain: Mapping[str, Any], parameterised: Mapping[str, Callable[..., Any]],
                 parameters: Mapping[str, Mapping[str, float]], kind: str) -> None:
        self._plain, self._parameterised = dict(plain), parameterised
        self._parameters, self._kind = parameters, kind
        self._built: dict[str, Any] = {}

    def __getitem__(self, spec: str) -> Any:
        if spec in self._plain:
            return self._plain[spec]
        if spec not in self._built:
            name, values = parse(spec, self._parameters, self._kind)
            if name not in self._parameterised:
                raise KeyError(spec)
            self._built[spec] = self._parameterised[name](**values)
        return self._built[spec]

    def __iter__(self) -> Iterator[str]:
        return iter(self._plain)

    def __len__(self) -> int:
        return len(self._plain)

    def replaced(self, spec: str, entry: Any) -> SpecTable:
        """Return a copy of the table in which ``spec`` is ``entry`` (how variants swap a piece)."""
        table = SpecTable({**self._plain, spec: entry}, self._parameterised, self._parameters, self._kind)
        table._built = {key: value for key, value in self._built.items() if key != spec}
        return table
