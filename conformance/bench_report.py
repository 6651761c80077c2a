"""Rendering ``backprop bench``'s document as performance.md: targets, tables, method.

Measuring is ``conformance.bench``; this module only reads the document it
builds (the same dict that becomes performance.json).
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable, Sequence

from conformance.bench import (
    CORETYPE_VARIABLE,
    DEFAULT_OUT,
    IMPLEMENTATIONS,
    LARGE_SIZE_TARGET,
    LEARNING_RATE,
    MEMORY_PROBE_STEPS,
    ONE_CORE,
    OWN_KERNELS,
    QUICK_NOTE,
    REFERENCE_PUBLIC,
    REFERENCE_TRAIN,
    THREAD_GROUPS,
    _quartiles,
)


def command_line(arguments: argparse.Namespace) -> str:
    """Return the command that regenerates this report."""
    words = ["backprop", "bench"]
    if arguments.out != DEFAULT_OUT:
        words += ["--out", arguments.out]
    if arguments.repeats is not None:
        words += ["--repeats", str(arguments.repeats)]
    if arguments.quick:
        words.append("--quick")
    if arguments.suite:
        words.append("--suite")
    if arguments.suite and arguments.suite_examples is not None:
        words += ["--suite-examples", str(arguments.suite_examples)]
    return " ".join(words)


def _ms(seconds: float) -> str:
    milliseconds = seconds * 1e3
    return f"{milliseconds:.3g}" if milliseconds < 100 else f"{milliseconds:.0f}"


def _bytes(count: int | None) -> str:
    if count is None:
        return "-"
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(count) >= scale:
            return f"{count / scale:.3g} {unit}"
    return f"{count} B"


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def targets(document: dict) -> list[dict]:
    """Return the issue's targets, each with the numbers that decide it.

    Large sizes: the reference's train step within LARGE_SIZE_TARGET times
    the fastest float64 framework's, under the environment's OpenBLAS
    kernels and, where the environment names them, under OpenBLAS's own
    choice. Seed sizes: reference.sgd_step faster than torch eager
    (float64). Judged on the libraries' default threads; the one-core group,
    and sgd_step at the large sizes (which copies its arguments every call),
    are reported beside them as context.
    """
    checks = []
    for size in document["sizes"]:
        results = size["implementations"]
        for group in THREAD_GROUPS:
            ratios = size["ratios"].get(group) or {}
            suffix = ONE_CORE if group == "one core" else ""
            if size["kind"] == "large":
                for reference in (REFERENCE_TRAIN, REFERENCE_TRAIN + OWN_KERNELS, REFERENCE_PUBLIC):
                    name = reference + suffix
                    if name not in ratios:
                        continue
                    ratio = ratios[name]
                    checks.append({
                        "size": size["name"], "threads": group, "reference": name,
                        "against": ratios["fastest_float64_framework"], "target": f"<= {LARGE_SIZE_TARGET}x",
                        "ratio": ratio["of_medians"],
                        "per_round": [ratio["per_round_q1"], ratio["per_round_median"], ratio["per_round_q3"]],
                        "met": ratio["of_medians"] <= LARGE_SIZE_TARGET,
                        "context": bool(suffix) or name.startswith(REFERENCE_PUBLIC),
                    })
            torch_name = "torch eager float64" + suffix
            if size["kind"] == "seed" and torch_name in results and REFERENCE_PUBLIC + suffix in results:
                ours, theirs = results[REFERENCE_PUBLIC + suffix], results[torch_name]
                first, median, third = _quartiles([a / b for a, b in zip(ours["samples"], theirs["samples"])])
                checks.append({
                    "size": size["name"], "threads": group, "reference": REFERENCE_PUBLIC + suffix,
                    "against": torch_name, "target": "< 1x", "ratio": ours["median"] / theirs["median"],
                    "per_round": [first, median, third], "met": ours["median"] < theirs["median"],
                    "context": bool(suffix),
                })
    return checks


def _xla_step_bytes(stats: dict[str, int]) -> int:
    """Return the bytes XLA allocates for one step: temporaries and the outputs not aliased to inputs."""
    return stats["temp_size_in_bytes"] + stats["output_size_in_bytes"] - stats["alias_size_in_bytes"]


def _memory_cell(result: dict | None) -> str:
    if result is None:
        return "-"
    parts = []
    if "traced_step_peak_bytes" in result:
        parts.append(f"step {_bytes(result['traced_step_peak_bytes'])} (tracemalloc)")
    if result.get("xla"):
        parts.append(f"step {_bytes(_xla_step_bytes(result['xla']))} (XLA)")
    if result.get("peak_rss_growth_bytes") is not None:
        parts.append(f"RSS +{_bytes(result['peak_rss_growth_bytes'])}")
    return "; ".join(parts) or "-"


def _openblas_words(environment_: dict) -> str:
    """Return e.g. "OpenBLAS 0.3.31, 2 threads, Haswell kernels (OPENBLAS_CORETYPE=Haswell; ...)"."""
    library = environment_.get("openblas") or {}
    words = f"OpenBLAS {library.get('version', '?')}, {environment_['threads']['numpy_openblas']} threads"
    pinned = environment_["threads"]["environment_variables"].get(CORETYPE_VARIABLE)
    if pinned is None:
        return f"{words}, {library.get('architecture')} kernels (its own choice for this CPU)"
    own = {kernels for name, kernels in environment_.get("openblas_kernels_by_implementation", {}).items()
           if OWN_KERNELS in name}
    return (
        f"{words}, {library.get('architecture')} kernels: this environment sets {CORETYPE_VARIABLE}={pinned}; "
        f"rows marked '{OWN_KERNELS.lstrip(', ')}' run without it, on the kernels OpenBLAS picks itself "
        f"({', '.join(sorted(map(str, own))) or 'not measured'})"
    )


def _header(document: dict) -> list[str]:
    environment_ = document["environment"]
    versions, threads = environment_["versions"], environment_["threads"]
    return [
        f"_Generated by `{document['command']}` (conformance/bench.py); do not edit: regenerate with that command._",
        "",
        "# Performance: one training step of the reference, torch eager and jax.jit",
        "",
        f"{document['generated']}{QUICK_NOTE if document['quick'] else ''} on {environment_['cpu']}, "
        f"{threads['cpu_count']} cores; Python {environment_['python']}, numpy {versions['numpy']} "
        f"({_openblas_words(environment_)}), torch {versions['torch']} "
        f"({threads.get('torch_intra_op')} threads), jax {versions['jax']}. "
        f"Load average (1, 5, 15 min) {document['load_average_before']} before, "
        f"{document['load_average_after']} after: on a shared machine other processes take cores, so read "
        "the quartiles, and the one-core rows beside the default ones.",
        "",
        "One step = forward, loss, backward and update, with the model built and the batch in memory. "
        "Times are medians over interleaved rounds in milliseconds, [q1, q3] their quartiles. "
        "Every implementation runs in its own process.",
    ]


def _targets_table(document: dict) -> list[str]:
    rows = [
        [check["size"], check["reference"], check["against"], check["target"], f"{check['ratio']:.2f}",
         "[" + ", ".join(f"{value:.2f}" for value in check["per_round"]) + "]",
         ("yes" if check["met"] else "**no**") + (" (context)" if check["context"] else "")]
        for check in document["targets"]
    ]
    return _table(
        ("size", "reference", "against", "target", "ratio of medians", "per-round ratio [q1, median, q3]", "met"),
        rows,
    )


def _ratio_table(document: dict) -> list[str]:
    rows = []
    for size in document["sizes"]:
        for group in THREAD_GROUPS:
            ratios = size["ratios"].get(group) or {}
            for name, ratio in ratios.items():
                if not isinstance(ratio, dict):
                    continue
                versus = "; ".join(f"{framework}: {value:.2f}" for framework, value in ratio["versus"].items())
                rows.append([
                    size["name"], name, ratios["fastest_float64_framework"], f"{ratio['of_medians']:.2f}",
                    f"{ratio['per_round_median']:.2f} [{ratio['per_round_q1']:.2f}, {ratio['per_round_q3']:.2f}]",
                    versus,
                ])
    return _table(
        ("size", "reference", "fastest float64 framework", "ratio of medians", "per round: median [q1, q3]",
         "ratio to each float64 framework"),
        rows,
    )


def _per_implementation_table(document: dict, names: Sequence[str], cell: Callable[[dict, dict], str]) -> list[str]:
    """Return a table of ``cell(size, result)``, one row per size, one column per measured implementation."""
    names = [name for name in names if any(name in size["implementations"] for size in document["sizes"])]
    if not names:
        return ["(none measured)"]
    rows = []
    for size in document["sizes"]:
        results = size["implementations"]
        rows.append([size["name"]] + [cell(size, results[name]) if name in results else "-" for name in names])
    return _table(["size", *names], rows)


def render_markdown(document: dict) -> str:
    """Return performance.md: targets, ratios, step times, GFLOP/s, memory, suite throughput, method."""
    peak = document["matmul_peak"]
    default_names = [i.name for i in IMPLEMENTATIONS if not i.one_core]
    single_names = [i.name for i in IMPLEMENTATIONS if i.one_core]
    lines = _header(document)
    lines += ["", "## Targets", "", *_targets_table(document)]
    lines += ["", "## Ratios: reference float64 / framework float64", "", *_ratio_table(document)]

    def step_time(size: dict, result: dict) -> str:
        return f"{_ms(result['median'])} [{_ms(result['q1'])}, {_ms(result['q3'])}]"

    lines += ["", "## Step times (ms): median [q1, q3]", "", "Default threads:", ""]
    lines += _per_implementation_table(document, default_names, step_time)
    lines += ["", "Held to one core (the worker's CPU affinity is one CPU, which also sizes XLA's thread pool; "
              "`OPENBLAS_NUM_THREADS=1`, `OMP_NUM_THREADS=1`):", ""]
    lines += _per_implementation_table(document, single_names, step_time)

    def cores(size: dict, result: dict) -> str:
        return f"{statistics.median(result['cpu_per_wall']):.2f}"

    lines += ["", "Cores busy while stepping (process CPU time / wall time, median; spinning threads count):", ""]
    lines += _per_implementation_table(document, default_names + single_names, cores)

    def faults(size: dict, result: dict) -> str:
        return f"{statistics.median(result['page_faults_per_step']):.0f}"

    lines += ["", "Minor page faults per step (median): fresh memory the step touched, each fault a few "
              "microseconds of kernel time; freed memory that the allocator returned to the system faults "
              "again when it is reused.", ""]
    lines += _per_implementation_table(document, default_names + single_names, faults)

    def achieved(size: dict, result: dict) -> str:
        # The pinned reference against the pinned kernels' peak; the rest against the CPU's own kernels'.
        own = result.get("own_kernels") or result["family"] != "reference"
        key = f"numpy_{result['dtype']}"
        best = (peak.get(key + OWN_KERNELS, peak[key]) if own else peak[key])["best_gflops"]
        return f"{result['gflops']:.3g} ({100 * result['gflops'] / best:.0f}%)"

    peaks = "; ".join(
        f"{key.replace('_', ' ', 1)} {value['best_gflops']:.0f} GFLOP/s "
        f"(medians {value['median_gflops_before']:.0f} before, {value['median_gflops_after']:.0f} after)"
        for key, value in peak.items() if isinstance(value, dict)
    )
    lines += [
        "",
        "## Achieved GFLOP/s, and % of the machine's matmul peak",
        "",
        f"Peak: a {peak['matrix_size']}x{peak['matrix_size']} matmul with the default threads, best of "
        f"{peak['repeats']} runs taken before and after the step timings: {peaks}. Each implementation is set "
        "against the NumPy peak of its dtype on the kernels the CPU runs best (OpenBLAS's own choice, where the "
        "environment pins others: then only the reference's pinned rows are set against the pinned peak). "
        "A step's flops are its matmuls' (see below); MFLOP per step: "
        + ", ".join(f"{size['name']} {size['flops_per_step'] / 1e6:.3g}" for size in document["sizes"]) + ".",
        "",
    ]
    lines += _per_implementation_table(document, default_names + single_names, achieved)

    lines += ["", "## Peak memory", ""]
    lines += _per_implementation_table(document, default_names, lambda size, result: _memory_cell(result))
    lines += [
        "",
        "- **tracemalloc** (reference): the most bytes NumPy held at once during one step, beyond what was live "
        "before it: the step's temporaries, gradients and new params, and sgd_step's copies of its arguments.",
        "- **XLA** (jax.jit): `compiled.memory_analysis()` of the step: temporary buffers plus the outputs not "
        "aliased to the donated inputs.",
        "- **RSS +** (all): the worker process's peak resident set while it builds the model and takes a first "
        f"step and {MEMORY_PROBE_STEPS} more, above its resident set before (after the imports and the data; "
        "the peak is reset there through /proc/self/clear_refs): copies of the params, workspaces, allocator "
        "caches, thread pools, compiled code. Coarse (pages, one-off costs included), but measured the same "
        "way for every implementation.",
    ]
    lines += ["", "## Conformance suite throughput (--suite)", ""]
    lines += _suite_lines(document.get("suite"))
    lines += _method_lines(document)
    errors = {f"{size['name']}: {name}": error for size in document["sizes"] for name, error in size["errors"].items()}
    if errors or document["unavailable"]:
        lines += ["", "## Not measured", ""]
        lines += [f"- {name}: {reason}" for name, reason in {**document["unavailable"], **errors}.items()]
    return "\n".join(lines) + "\n"


def _suite_lines(suite: dict | None) -> list[str]:
    if suite is None:
        return ["Not measured: run with `--suite`."]
    first, repeated = suite["first"], suite["repeated"]
    lines = [
        f"{first['cases']} Hypothesis cases from `conformance.strategies.cases()` (derandomized), each through "
        f"`compare_loss_and_gradients` for {', '.join(suite['adapters'])} (three-way: each compares with the "
        "reference, within the tolerance model). A warm-up on document 000's network first takes the one-off "
        f"start-up, {suite['warm_up_seconds']:.2f} s: the frameworks' first calls, JAX's backend and the padded "
        "JAX adapter's one compilation per dtype, which serves every drawn network. First pass, paying whatever "
        f"compilation JAX still needs: **{first['cases_per_second']:.0f} cases/s** ({first['seconds']:.2f} s). "
        "The same cases again, all compiled, as every later test of a session runs: "
        f"**{repeated['cases_per_second']:.0f} cases/s** ({repeated['seconds']:.2f} s; "
        f"{repeated['adapter_checks_per_second']:.0f} adapter checks/s). From a cold start, warm-up included, the "
        f"first pass's {first['cases']} cases run at "
        f"{first['cases'] / (first['seconds'] + suite['warm_up_seconds']):.0f} cases/s.",
        "",
    ]
    rows = [
        [label, f"{first['seconds_by_adapter'][label]:.2f}", f"{repeated['seconds_by_adapter'][label]:.2f}",
         ", ".join(f"{k} {v}" for k, v in repeated["outcomes"][label].items() if v)]
        for label in suite["adapters"]
    ]
    rows.append(["the reference's gradients alone, once per case", f"{first['reference_gradient_seconds']:.2f}",
                 f"{repeated['reference_gradient_seconds']:.2f}", ""])
    rows.append(["Hypothesis's generation and the rest", f"{first['hypothesis_and_other_seconds']:.2f}",
                 f"{repeated['hypothesis_and_other_seconds']:.2f}", ""])
    lines += _table(("where the time goes", "first pass (s)", "repeated (s)", "outcomes"), rows)
    if suite["unavailable"]:
        lines += ["", "Unavailable: " + "; ".join(f"{k}: {v}" for k, v in suite["unavailable"].items())]
    return lines


def _method_lines(document: dict) -> list[str]:
    return [
        "",
        "## How it was measured",
        "",
        "- reference sgd_step is `reference.sgd_step` as a user calls it: it validates and copies its arguments "
        "every call. reference train step is one iteration of `reference.train` (`_train_step`) on arrays "
        "validated once, writing into the previous step's workspace as `train` does (no fresh arrays, so no "
        "page faults, in relu layers). Both float64.",
        f"- NumPy's BLAS kernels: where the environment sets `{CORETYPE_VARIABLE}`, OpenBLAS runs the kernels it "
        f"names instead of detecting the CPU's; rows marked '{OWN_KERNELS.lstrip(', ')}' run in a worker without "
        "the variable (OpenBLAS's own choice), and the NumPy peak is measured both ways. The frameworks' "
        "kernels are their own either way (XLA's, and torch's bundled BLAS).",
        "- torch eager: `nn.Sequential` of `nn.Linear` and activation modules, torch's loss module, `backward()`, "
        "`optim.SGD.step()`, on tensors made once. jax.jit: `value_and_grad` of the optax loss and the "
        "`optax.sgd` update in one jitted function, params and optimizer state donated, compiled before timing "
        "(`first_step_seconds` in performance.json); a timed batch ends with `block_until_ready`.",
        f"- Every implementation chains its steps at learning rate {LEARNING_RATE}; its first step is checked "
        "against `reference.sgd_step` (`agreement_after_one_step` in performance.json: worst relative error).",
        "- Each implementation runs in its own worker process (no thread pool of one library competes with "
        "another's inside a process). The workers take turns round-robin, the first one rotating each round, "
        f"{document['repeats']} rounds; before each turn the benchmark pauses {document['settle_seconds']} s so "
        "that the previous worker's threads stop spinning. A sample is a batch of consecutive steps lasting at least "
        f"{document['sample_seconds'] * 1e3:.0f} ms (calibrated on a warm step), timed inside the worker with "
        "the garbage collector off, divided by the number of steps.",
        "- Ratios divide the reference's median by the fastest float64 framework's of the same thread group; "
        "per-round ratios divide the samples of the same round (taken seconds apart), which cancels slow phases "
        "of a shared machine that hit both.",
        "- GFLOP/s counts the matmuls only: 2 m (2 sum n_in n_out + sum over layers after the first of "
        "n_in n_out) for the forward products, the weight gradients and the backward delta products.",
    ]
