"""The pytest plugin (entry point ``pytest11``): the suite's command-line options, and nothing else.

Installed with the package, this module is loaded by every pytest run in the
environment, so it is inert: it imports pytest alone, registers no
Hypothesis profile, loads nothing and changes no global state. The suite
itself (``backprop_conformance/suite/conftest.py``) is only imported when
its tests are collected, ``pytest --pyargs backprop_conformance``; it reads
these options, and its Hypothesis settings apply to its own tests only.

Options (all namespaced, so that they clash with no other plugin):

``--adapter SPEC``                 the implementation to check, repeatable;
``--conformance-profile NAME``     ``dev``, ``ci`` or ``thorough`` (default: ``ci``
                                   when the environment sets ``CI``, else ``dev``);
``--conformance-max-examples N``   Hypothesis examples per test, overriding the profile's;
``--conformance-no-shrink``        report the first failing example as drawn;
``--conformance-timeout SECONDS``  per adapter call (default 60; 0: no limit).
"""

from __future__ import annotations

import pytest

# argparse types only: this module may import nothing heavy.
from backprop_conformance.common.arguments import positive_int, seconds

PROFILE_NAMES = ("dev", "ci", "thorough")


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add the suite's options to pytest's command line."""
    group = parser.getgroup("backprop-conformance", "backprop-conformance suite (pytest --pyargs backprop_conformance)")
    group.addoption(
        "--adapter",
        action="append",
        default=[],
        metavar="SPEC",
        help="adapter to check: package.module:attribute, a built-in name (reference, torch-float32, "
        "jax-float64, ...) or an entry point; repeatable (default: torch and jax in float32 and float64)",
    )
    group.addoption(
        "--conformance-profile",
        choices=PROFILE_NAMES,
        default=None,
        help="the suite's Hypothesis settings: dev (40 examples), ci (60, derandomized, no database) or "
        "thorough (1000); default ci when CI is set, else dev. Applies to the suite's tests only",
    )
    group.addoption(
        "--conformance-max-examples",
        type=positive_int,
        default=None,
        metavar="N",
        help="Hypothesis examples per suite test, instead of the profile's",
    )
    group.addoption(
        "--conformance-timeout",
        type=seconds,
        default=None,
        metavar="SECONDS",
        help="seconds each adapter call may take before it fails, naming the adapter and the method "
        "(default 60; 0: no limit)",
    )
    group.addoption(
        "--conformance-no-shrink",
        action="store_true",
        default=False,
        help="report the first failing example as drawn, without shrinking it",
    )
