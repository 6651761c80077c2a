"""The suite's pytest hooks: imported only when the suite's tests are collected.

Its hooks and fixtures apply to the tests of this directory alone: the
``adapter`` fixture, the parametrisation of every test by ``--adapter``, and
the suite's Hypothesis settings (``suite.profiles``). The plugin that every
pytest run in the environment loads (``suite.plugin``) only adds options.
"""

from __future__ import annotations

import importlib.util

import pytest

_MISSING = [name for name in ("hypothesis", "numpy") if importlib.util.find_spec(name) is None]
if _MISSING:
    raise ImportError(
        f"the backprop-conformance suite needs {' and '.join(_MISSING)}, which is not installed here: "
        "pip install 'backprop-conformance[suite]'"
    )

from hypothesis.errors import Unsatisfiable  # noqa: E402

from backprop_conformance.adapters.boundary import DEFAULT_TIMEOUT  # noqa: E402
from backprop_conformance.adapters.loading import DEFAULT_ADAPTERS  # noqa: E402
from backprop_conformance.adapters.protocol import Adapter, AdapterUnavailable  # noqa: E402
from backprop_conformance.suite import profiles, session  # noqa: E402


def pytest_configure(config: pytest.Config) -> None:
    """Activate the suite's Hypothesis settings from the options, before its test modules are imported."""
    profiles.activate(
        config.getoption("conformance_profile", None),
        config.getoption("conformance_max_examples", None),
        shrink=not config.getoption("conformance_no_shrink", False),
    )


def adapter_specs(config: pytest.Config) -> list[str]:
    """Return the adapter specs this run checks."""
    return list(config.getoption("adapter", None) or DEFAULT_ADAPTERS)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run every suite test that asks for ``adapter`` once per adapter spec."""
    if "adapter" in metafunc.fixturenames:
        specs = adapter_specs(metafunc.config)
        metafunc.parametrize("adapter", specs, ids=specs, indirect=True, scope="session")


@pytest.fixture(scope="session")
def adapter(request: pytest.FixtureRequest) -> Adapter:
    """Return the adapter under test; skip if it cannot run here, fail if it is malformed."""
    loaded = session.adapter_for(request.param)
    if isinstance(loaded, AdapterUnavailable):
        pytest.skip(f"adapter {request.param!r} is unavailable: {loaded}")
    if isinstance(loaded, Exception):
        pytest.fail(str(loaded), pytrace=False)
    timeout = request.config.getoption("conformance_timeout", None)
    loaded.timeout = DEFAULT_TIMEOUT if timeout is None else (timeout or None)
    return loaded


@pytest.hookimpl(wrapper=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> object:
    """Turn "Hypothesis found no case to check" into a skip when the adapter declared every case unsupported."""
    try:
        return (yield)
    except Unsatisfiable:
        result = session.results().get(pyfuncitem.nodeid)
        if result is not None and result.not_applicable and not result.worst_ratios:
            reasons = sorted({reason for counts in result.not_applicable.values() for reason in counts})
            pytest.skip(f"not applicable: {'; '.join(reasons)}")
        raise


@pytest.fixture(autouse=True)
def _record_into_this_test(request: pytest.FixtureRequest) -> object:
    """Send what ``suite.judge`` records to this test's result (``suite.session``)."""
    callspec = getattr(request.node, "callspec", None)
    session.start_test(request.node.nodeid, callspec.params.get("adapter", "?") if callspec else "?")
    yield
    session.end_test()
