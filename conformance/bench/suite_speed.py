"""``backprop bench --suite``: the conformance suite's throughput, in cases per second.

Hypothesis draws cases from ``suite.strategies.cases()`` and each goes
through ``suite.comparisons.compare_loss_and_gradients`` for torch and JAX
(jitted), i.e. three-way gradient conformance with the reference. Any
adapter's throughput alone, a program behind ``--command`` included::

    python -m backprop_conformance.bench.suite_speed "command:./mlp" --examples 300
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from typing import Any

from backprop_conformance.bench.plan import SUITE_ADAPTERS
from backprop_conformance.reference.backprop import _loss_and_gradients
from backprop_conformance.reference.seeds import example


def _failed(adapter: Any, case: Any, measurements: Any) -> str:
    """Judge a failing case as the suite does: a known divergence where its diagnosis is one of the adapter's
    declared conventions (JAX's leaky_relu'(0) = 1), a failure otherwise. The diagnosis is timed with the case."""
    from backprop_conformance.suite.diagnosis import explain_failure

    _, convention = explain_failure(case, "loss_and_gradients", adapter.dtype, measurements, adapter.conventions)
    return "fail" if convention is None else "known divergence"


def suite_throughput(examples: int, specs: Sequence[str] = SUITE_ADAPTERS) -> dict:
    """Return how many Hypothesis cases per second go through three-way gradient conformance.

    Each case from ``suite.strategies.cases()`` (derandomized, so every
    pass draws the same cases) goes through ``compare_loss_and_gradients`` for
    every adapter in ``specs``; each of those computes the reference's
    gradients, the tolerance model's bounds and the adapter's gradients.
    The adapters are first warmed up on document 000's network: a
    framework's one-off start-up (JAX's backend, and the padded adapter's one
    compilation per dtype, which serves every drawn network) is timed apart,
    as ``warm_up_seconds``. Then two
    passes over the same cases: the ``first`` pays every compilation JAX
    still needs for them, as a fresh test session does; the ``repeated``
    one finds them all compiled, as every later test of a session does.
    """
    from hypothesis import HealthCheck, Phase, given, settings

    from backprop_conformance.adapters.loading import load_adapter
    from backprop_conformance.adapters.protocol import AdapterUnavailable, Unsupported
    from backprop_conformance.suite.case import Case
    from backprop_conformance.suite.comparisons import OutsideModel, compare_loss_and_gradients
    from backprop_conformance.suite.strategies import cases

    adapters, unavailable = [], {}
    for spec in specs:
        try:
            adapters.append(load_adapter(spec))
        except AdapterUnavailable as reason:
            unavailable[spec] = str(reason)

    def one_pass() -> dict:
        seconds = {adapter.label: 0.0 for adapter in adapters}
        kinds = ("pass", "fail", "known divergence", "outside model", "not applicable", "error")
        outcomes = {adapter.label: dict.fromkeys(kinds, 0) for adapter in adapters}
        reference_seconds, drawn = [0.0], [0]

        @settings(
            max_examples=examples, derandomize=True, database=None, deadline=None,
            phases=[Phase.generate], suppress_health_check=list(HealthCheck),
        )
        @given(case=cases())
        def check_case(case: Any) -> None:
            drawn[0] += 1
            start = time.perf_counter()
            _loss_and_gradients(case.network, case.params, case.x, case.y)
            reference_seconds[0] += time.perf_counter() - start
            for adapter in adapters:
                start = time.perf_counter()
                try:
                    measurements = compare_loss_and_gradients(adapter, case)
                    outcome = "pass" if all(m.passed for m in measurements) else _failed(adapter, case, measurements)
                except OutsideModel:
                    outcome = "outside model"
                except Unsupported:
                    outcome = "not applicable"
                except Exception:  # counted, not raised: this measures speed, the suite judges correctness
                    outcome = "error"
                seconds[adapter.label] += time.perf_counter() - start
                outcomes[adapter.label][outcome] += 1

        start = time.perf_counter()
        check_case()
        total = time.perf_counter() - start
        return {
            "cases": drawn[0],
            "seconds": total,
            "cases_per_second": drawn[0] / total if total else None,
            "adapter_checks_per_second": drawn[0] * len(adapters) / total if total else None,
            "seconds_by_adapter": seconds,
            "reference_gradient_seconds": reference_seconds[0],
            "hypothesis_and_other_seconds": total - sum(seconds.values()) - reference_seconds[0],
            "outcomes": outcomes,
        }

    warm_up, start = example("000"), time.perf_counter()
    for adapter in adapters:
        compare_loss_and_gradients(adapter, Case(warm_up.network, warm_up.params, warm_up.x, warm_up.y))
    warm_up_seconds = time.perf_counter() - start
    first = one_pass()
    return {
        "adapters": [adapter.label for adapter in adapters],
        "unavailable": unavailable,
        "examples": examples,
        "warm_up_seconds": warm_up_seconds,
        "first": first,
        "repeated": one_pass(),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Print ``suite_throughput`` for the given adapter specs as JSON."""
    parser = argparse.ArgumentParser(prog="python -m backprop_conformance.bench.suite_speed",
                                     description="The suite's throughput, in cases per second, for adapters.")
    parser.add_argument("specs", nargs="*", default=list(SUITE_ADAPTERS), metavar="SPEC")
    parser.add_argument("--examples", type=int, default=300, metavar="N", help="cases drawn per pass (300)")
    arguments = parser.parse_args(argv)
    print(json.dumps(suite_throughput(arguments.examples, arguments.specs), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
