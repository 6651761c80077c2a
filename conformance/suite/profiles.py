"""The suite's Hypothesis settings: three profiles, applied to the suite's own tests only.

``dev``       quick local runs (the default outside CI), 40 examples;
``ci``        60 examples, derandomized (the same cases on every run) and no
              example database (the default when the environment sets ``CI``);
``thorough``  1000 examples, for a release or a new adapter.

Chosen with ``--conformance-profile`` (``backprop check --profile``), and
``--conformance-max-examples`` overrides the count. The settings are built
on Hypothesis's own ``default`` profile, not on whatever profile the host
project loaded, and reach the suite's tests through the ``suite_test``
decorator; nothing here registers or loads a global profile, so another
project's Hypothesis tests in the same environment (and Hypothesis's own
``ci`` profile, which it loads when ``CI`` is set) are never touched.

Every profile has no deadline (JAX compiles on a first call), no
``@reproduce_failure`` blob and no explain phase (their advice points into
the suite's own code, which a user of the installed package cannot edit),
one bug per test (the shrunk one), and tolerates rejected cases (cases
outside the tolerance model are rejected, and must not fail a run).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

from hypothesis import HealthCheck, Phase, settings

Test = TypeVar("Test", bound=Callable[..., Any])

PHASES = (Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink)
COMMON: dict[str, Any] = {
    "deadline": None,
    "print_blob": False,
    "report_multiple_bugs": False,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
}
PROFILES: dict[str, dict[str, Any]] = {
    "dev": {"max_examples": 40},
    "ci": {"max_examples": 60, "derandomize": True, "database": None},
    "thorough": {"max_examples": 1000},
}

_ACTIVE: list[settings] = []


def default_profile_name() -> str:
    """Return ``ci`` when the environment sets ``CI`` (as CI services do), else ``dev``."""
    return "ci" if os.environ.get("CI") else "dev"


def suite_settings(name: str, max_examples: int | None = None, shrink: bool = True) -> settings:
    """Return the settings of profile ``name``, on Hypothesis's defaults, with the overrides given."""
    if name not in PROFILES:
        raise ValueError(f"profile={name!r} is not one of {', '.join(PROFILES)}")
    values = {**COMMON, **PROFILES[name], "phases": PHASES if shrink else PHASES[:-1]}
    if max_examples is not None:
        values["max_examples"] = max_examples
    return settings(settings.get_profile("default"), **values)


def activate(name: str | None = None, max_examples: int | None = None, shrink: bool = True) -> settings:
    """Make these the settings ``suite_test`` applies from now on (the suite's conftest calls it); return them."""
    _ACTIVE[:] = [suite_settings(name or default_profile_name(), max_examples, shrink)]
    return _ACTIVE[0]


def active() -> settings:
    """Return the settings ``suite_test`` applies: those activated, else the default profile's."""
    return _ACTIVE[0] if _ACTIVE else suite_settings(default_profile_name())


def suite_test(test: Test) -> Test:
    """Decorate a suite test (above ``@given``) with the suite's active settings."""
    return settings(active())(test)
