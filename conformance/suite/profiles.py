"""Hypothesis settings profiles, registered in this one place.

``dev``       quick local runs (the default outside CI);
``ci``        derandomized, so CI is reproducible, and loaded automatically
              when the environment variable CI is set;
``thorough``  many examples, for a release or a new adapter.

Select one with ``pytest --hypothesis-profile=NAME``. Every profile sets
``deadline=None``: JAX compiles on the first call of each shape.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_COMMON = {
    "deadline": None,
    "print_blob": True,
    # Cases outside the tolerance model are rejected; rejections must not fail a run.
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
}

PROFILES = {
    "dev": settings(max_examples=40, **_COMMON),
    "ci": settings(max_examples=60, derandomize=True, database=None, **_COMMON),
    "thorough": settings(max_examples=1000, **_COMMON),
}


def register_profiles() -> None:
    """Register every profile and load ``ci`` under CI, ``dev`` otherwise."""
    for name, profile in PROFILES.items():
        settings.register_profile(name, profile)
    settings.load_profile("ci" if os.environ.get("CI") else "dev")
