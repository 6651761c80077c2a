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
``--conformance-no-shrink``        report the first failing example as drawn.
"""

from __future__ import annotations

import argparse

import pytest

PROFILE_NAMES = ("dev", "ci", "thorough")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is below 1")
    return value


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
        type=_positive_int,
        default=None,
        metavar="N",
        help="Hypothesis examples per suite test, instead of the profile's",
    )
    group.addoption(
        "--conformance-no-shrink",
        action="store_true",
        default=False,
        help="report the first failing example as drawn, without shrinking it",
    )
