"""The pytest plugin (entry point ``pytest11``): Hypothesis profiles and options."""

from __future__ import annotations

from conformance.profiles import register_profiles

register_profiles()
