"""The pytest plugin (entry point ``pytest11``): ``--adapter`` and Hypothesis profiles.

``pytest --pyargs backprop_conformance --adapter package.module:attribute`` checks an
implementation; ``--adapter`` repeats, and without it the built-in torch and
JAX adapters run in float32 and float64. An adapter that cannot run here
(framework not installed) is skipped with the reason; one that does not
satisfy the protocol fails every test with what is missing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from backprop_conformance.adapters.loading import DEFAULT_ADAPTERS, load_adapter
from backprop_conformance.adapters.protocol import Adapter, AdapterError, AdapterUnavailable
from backprop_conformance.suite.profiles import register_profiles

register_profiles()

#: The suite's own test modules live here; only their tests are run once per adapter.
SUITE_DIRECTORY = Path(__file__).parent

_LOADED: dict[str, Adapter | Exception] = {}


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add ``--adapter SPEC`` (repeatable)."""
    group = parser.getgroup("backprop-conformance")
    group.addoption(
        "--adapter",
        action="append",
        default=[],
        metavar="SPEC",
        help="adapter to check: package.module:attribute, a built-in name (reference, torch-float32, "
        "jax-float64, ...) or an entry point; repeatable (default: torch and jax in float32 and float64)",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Register the suite's marker."""
    config.addinivalue_line("markers", "conformance: a test of the backprop conformance suite")


def adapter_specs(config: pytest.Config) -> list[str]:
    """Return the adapter specs this run checks."""
    return list(config.getoption("adapter") or DEFAULT_ADAPTERS)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run every suite test that asks for ``adapter`` once per adapter spec."""
    if "adapter" in metafunc.fixturenames and Path(metafunc.module.__file__).parent == SUITE_DIRECTORY:
        specs = adapter_specs(metafunc.config)
        metafunc.parametrize("adapter", specs, ids=specs, indirect=True, scope="session")


def _load(spec: str) -> Adapter | Exception:
    if spec not in _LOADED:
        try:
            _LOADED[spec] = load_adapter(spec)
        except (AdapterUnavailable, AdapterError) as error:
            _LOADED[spec] = error
    return _LOADED[spec]


@pytest.fixture(scope="session")
def adapter(request: Any) -> Adapter:
    """Return the adapter under test; skip if it cannot run here, fail if it is malformed."""
    loaded = _load(request.param)
    if isinstance(loaded, AdapterUnavailable):
        pytest.skip(f"adapter {request.param!r} is unavailable: {loaded}")
    if isinstance(loaded, Exception):
        pytest.fail(str(loaded), pytrace=False)
    return loaded
