"""How much slower ``pytest --collect-only`` is in an unrelated project with this package installed.

    .venv/bin/python -m tests.collect_overhead [ROUNDS]

Builds the wheel, two fresh environments with pytest and Hypothesis (one
with the package, one without), an unrelated project of 200 tests, and
times ``pytest --collect-only -q`` in each, interleaved, ROUNDS times
(default 15). Prints the medians and quartiles. A benchmark, not a test:
these machines are shared and noisy.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from tests.environments import Environment, build_wheel

PROJECT = "\n".join(f"def test_{number}():\n    assert {number} + 1 > {number}\n" for number in range(200))


def main(rounds: int = 15) -> None:
    directory = Path(tempfile.mkdtemp(prefix="collect-overhead-"))
    wheel = build_wheel(directory / "wheel")
    environments = {
        "with backprop-conformance": Environment(directory / "with", wheel, ["numpy", "pytest", "hypothesis"]),
        "without": Environment(directory / "without", None, ["numpy", "pytest", "hypothesis"]),
    }
    project = directory / "project"
    project.mkdir()
    (project / "test_many.py").write_text(PROJECT)
    times: dict[str, list[float]] = {name: [] for name in environments}
    for _ in range(rounds):
        for name, environment in environments.items():
            started = time.perf_counter()
            result = environment.run("python", "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                                     cwd=project)
            times[name].append(time.perf_counter() - started)
            assert result.returncode == 0, result.stderr
    for name, samples in times.items():
        first, median, third = statistics.quantiles(samples, n=4)
        print(f"{name:<28} median {median * 1e3:6.0f} ms  [q1 {first * 1e3:.0f}, q3 {third * 1e3:.0f}] over {rounds}")
    ratio = statistics.median(times["with backprop-conformance"]) / statistics.median(times["without"])
    print(f"ratio of medians: {ratio:.3f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 15)
