"""The agreement report: schema, Markdown and HTML, figures, determinism, atomic writes and the CLI."""

from __future__ import annotations

import collections
import json
from pathlib import Path

import jsonschema
import matplotlib.image
import numpy as np
import pytest

from backprop_conformance import reference
from backprop_conformance.adapters import AdapterUnavailable, load_adapter
from backprop_conformance.cli import main
from backprop_conformance.common import publish as publish_module
from backprop_conformance.common.machine import openblas, simd_features
from backprop_conformance.reference import Network
from backprop_conformance.report import figures
from backprop_conformance.report.cases import SweepCase, _stratified, describe_network, sampled_cases
from backprop_conformance.report.document import FIGURE_FILES, HTML_FILE, JSON_FILE, MARKDOWN_FILE, REPORT_SCHEMA
from backprop_conformance.report.publish import generate
from backprop_conformance.report.records import LoadedAdapter, compare_case, expand_specs
from backprop_conformance.report.render_html import render_html
from backprop_conformance.suite.case import ACTIVATION_SPECS, Case
from backprop_conformance.suite.comparisons import QUANTITIES

SCHEMA = json.loads(REPORT_SCHEMA.read_text())
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: The tiny sweep: the reference always runs; torch and jax join in float32 where installed.
SPECS = ("reference", "torch", "jax")
DTYPES = ("float32",)
EXAMPLES = 3


def _validate(document: dict) -> None:
    jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker()).validate(document)


def _without_timestamps(value):
    """Return ``value`` without the keys that may differ between runs: generated_at and *_seconds."""
    if isinstance(value, dict):
        return {
            key: _without_timestamps(item)
            for key, item in value.items()
            if key != "generated_at" and not key.endswith("_seconds")
        }
    if isinstance(value, list):
        return [_without_timestamps(v) for v in value]
    return value


def _snapshot(directory: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(directory.iterdir())}


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """Return (out_dir, document) of the tiny sweep, generated once for this module."""
    out = tmp_path_factory.mktemp("first") / "reports"
    return out, generate(out, SPECS, DTYPES, seed=0, examples=EXAMPLES)


# -- adapters with something missing or wrong, for the verdicts ---------------------------


class Unavailable:
    """An adapter whose framework is 'not installed here'."""

    def __init__(self):
        raise AdapterUnavailable("the framework is not installed here")


class Crashing:
    """An adapter whose loss_and_gradients raises."""

    name = "crashing"

    def loss_and_gradients(self, network, params, x, y):
        raise RuntimeError("boom")


class DoubledGradients:
    """An adapter with a classic bug: every gradient twice too large."""

    name = "doubled"

    def loss_and_gradients(self, network, params, x, y):
        value, grads = reference.loss_and_gradients(network, params, x, y)
        return value, [(2 * w, None if b is None else 2 * b) for w, b in grads]


# -- the JSON ---------------------------------------------------------------------------


def test_json_validates_against_the_schema(generated):
    out, document = generated
    written = json.loads((out / JSON_FILE).read_text())
    _validate(written)
    assert written == json.loads(json.dumps(document))
    assert next(iter(written)) == "environment"
    assert written["regenerate"] == "make report"


def test_records_cover_every_network_adapter_and_quantity(generated):
    _, document = generated
    available = [a["spec"] for a in document["environment"]["adapters"] if a["status"] == "available"]
    assert "reference" in available
    assert len(document["networks"]) == 3 + EXAMPLES
    seen = collections.Counter((r["network"], r["adapter"], r["quantity"]) for r in document["records"])
    for network in document["networks"]:
        for spec in available:
            for quantity in QUANTITIES:
                assert seen[(network["id"], spec, quantity)] == 1, (network["id"], spec, quantity)
    assert {s["adapter"] for s in document["summary"]} == set(available)


def test_the_reference_against_itself_is_exact(generated):
    _, document = generated
    mine = [r for r in document["records"] if r["adapter"] == "reference" and r["verdict"] == "pass"]
    assert mine and all(r["worst_ratio"] == 0.0 and r["max_abs_error"] == 0.0 for r in mine)


def test_the_default_frameworks_expand_per_dtype():
    specs = expand_specs(["torch", "jax", "reference", "torch-float32"], ["float64", "float32"])
    assert specs == ["torch-float64", "torch-float32", "jax-float64", "jax-float32", "reference"]


# -- the sample -------------------------------------------------------------------------


def test_the_sample_is_seeded_and_stratified():
    first, again = sampled_cases(7, 56), sampled_cases(7, 56)
    for one, other in zip(first, again):
        assert one.case.network == other.case.network
        np.testing.assert_array_equal(one.case.x, other.case.x)
    networks = [c.case.network for c in first]
    combinations = collections.Counter((n.loss, n.reduction, n.bias) for n in networks)
    assert len(combinations) == 28 and set(combinations.values()) == {2}  # 7 loss specs x 2 reductions x bias
    assert set(collections.Counter(n.depth for n in networks).values()) <= {11, 12}
    free_first_layer = [n for n in networks if n.depth > 1 or n.loss_name in ("mse", "huber")]
    assert {n.activations[0] for n in free_first_layer} == set(ACTIVATION_SPECS)
    kinds = collections.Counter(describe_network(c)["schedule"] for c in first)
    assert set(kinds) == {"partial", "exact", "drop_last"} and set(kinds.values()) <= {18, 19}
    assert all(len(c.case.batches) >= 2 for c in first)


# -- verdicts ---------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the bce error bound takes log(0) for a saturated output
def test_outside_model_is_recorded_with_its_reason():
    network = Network((1, 1), ("sigmoid",), "bce")
    # z = 25: sigmoid is within sqrt(u) of 1 but not exactly 1 in float64 (at z = 50 it is, and is compared).
    case = Case(network, [(np.array([[25.0]]), np.array([0.0]))], np.array([[1.0]]), np.array([[1.0]]), 0.1,
                [np.array([0])])
    loaded = LoadedAdapter("reference", load_adapter("reference"))
    records = compare_case(loaded, SweepCase("sample-01", "test", case))
    assert {r["verdict"] for r in records} == {"outside model"}
    assert all("saturated bce" in r["message"] for r in records)


def test_unavailable_crashing_and_wrong_adapters(tmp_path):
    specs = [f"{__name__}:Unavailable", f"{__name__}:Crashing", f"{__name__}:DoubledGradients"]
    document = generate(tmp_path / "out", specs, ["float64"], seed=0, examples=0)
    _validate(json.loads((tmp_path / "out" / JSON_FILE).read_text()))
    unavailable = document["environment"]["adapters"][0]
    assert unavailable["status"] == "unavailable" and "not installed" in unavailable["reason"]
    verdicts = collections.defaultdict(set)
    for record in document["records"]:
        verdicts[(record["adapter"], record["quantity"])].add(record["verdict"])
    assert verdicts[(specs[1], "gradient")] == {"error"}
    assert (specs[1], "output") not in verdicts  # no forward(): nothing of its own to compare
    assert verdicts[(specs[2], "gradient")] == {"fail"}
    assert verdicts[(specs[2], "loss")] == {"pass"}
    failing = next(r for r in document["records"] if r["verdict"] == "fail")
    assert "differs" in failing["message"] and "load_adapter(" in failing["repro"]
    markdown = (tmp_path / "out" / MARKDOWN_FILE).read_text()
    assert "boom" in markdown and "```python" in markdown
    assert "load_adapter('tests.test_report:DoubledGradients')" in markdown


# -- Markdown, HTML and figures ----------------------------------------------------------


def test_markdown_says_it_is_generated_and_shows_the_summary_first(generated):
    out, _ = generated
    markdown = (out / MARKDOWN_FILE).read_text()
    assert markdown.splitlines()[0].startswith("<!-- generated by `make report`")
    assert markdown.index("## Summary") < markdown.index("## Figures") < markdown.index("## Worst cases")
    assert "| adapter | dtype | quantity | pass | fail | outside model | error |" in markdown
    assert "| reference float64 | float64 | gradient | " in markdown
    for section in ("## Tolerance model", "## Known divergences", "## The seeds' errata", "## How to regenerate"):
        assert section in markdown
    for figure in FIGURE_FILES.values():
        assert f"]({figure})" in markdown


def test_html_is_self_contained_with_the_same_summary(generated):
    out, _ = generated
    page = (out / HTML_FILE).read_text()
    assert page.startswith("<!DOCTYPE html>\n<!-- generated by `make report`")
    assert "<h2>Summary</h2><table>" in page.replace("\n", "")
    assert "<td>reference float64</td><td>float64</td><td>gradient</td>" in page
    assert page.count('src="data:image/png;base64,') == len(FIGURE_FILES)
    assert "<style>" in page and "<link" not in page and "<script" not in page


def test_html_escapes_every_string():
    blocks = [("heading", 1, "<b>x</b>"), ("paragraph", "a < b & `c<d>`"), ("table", ["<h>"], [["<td>"]]),
              ("list", ["<li>"]), ("details", "<s>", "x = '<y>'")]
    page = render_html(blocks, {})
    body = page.split("<body>", 1)[1]
    assert "<b>" not in body and "<h>" not in body and "<s>" not in body and "<y>" not in body
    assert "a &lt; b &amp; <code>c&lt;d&gt;</code>" in body


def test_figures_are_readable_pngs_of_fixed_size(generated):
    out, _ = generated
    for name in FIGURE_FILES.values():
        size = figures.OPTIMIZER_FIGURE_SIZE if name == FIGURE_FILES["optimizers"] else figures.FIGURE_SIZE
        width, height = (round(side * figures.DPI) for side in size)
        data = (out / name).read_bytes()
        assert data.startswith(PNG_SIGNATURE)
        image = matplotlib.image.imread(out / name)
        assert image.shape[:2] == (height, width)


def test_figures_without_measurements_still_draw():
    assert figures.error_distribution([], []).startswith(PNG_SIGNATURE)
    assert figures.error_by_size([], {}, []).startswith(PNG_SIGNATURE)
    assert figures.training_curves({"reference": [1.0, 0.5]}, "t").startswith(PNG_SIGNATURE)
    assert figures.optimizer_trajectories({}).startswith(PNG_SIGNATURE)


def test_the_environment_names_the_kernels_that_decide_the_rounding(generated):
    out, document = generated
    environment = document["environment"]
    assert environment["cpu_features"] == simd_features()
    assert environment["numpy_openblas"] == openblas()
    markdown = (out / MARKDOWN_FILE).read_text()
    library, features = environment["numpy_openblas"], environment["cpu_features"]
    shown = ("not loaded, or threadpoolctl missing" if library is None else
             f"{library['architecture']} kernels, {library['num_threads']} threads")
    assert f"| NumPy's OpenBLAS at run time | {shown} |" in markdown
    shown = "unknown" if features is None else ", ".join(features) or "none of those listed"
    assert f"| CPU vector extensions | {shown.replace('_', chr(92) + '_')} |" in markdown  # Markdown escapes "_"
    assert "a correct implementation passes under any kernels" in markdown


# -- determinism and atomicity -----------------------------------------------------------


def test_the_same_seed_gives_the_same_report(generated, tmp_path):
    out, _ = generated
    again = generate(tmp_path / "again", SPECS, DTYPES, seed=0, examples=EXAMPLES)
    first = json.loads((out / JSON_FILE).read_text())
    second = json.loads((tmp_path / "again" / JSON_FILE).read_text())
    assert _without_timestamps(first) == _without_timestamps(second) == _without_timestamps(again)
    for name in FIGURE_FILES.values():
        assert (out / name).read_bytes() == (tmp_path / "again" / name).read_bytes(), name


def test_another_seed_gives_other_networks(generated):
    _, document = generated
    others = [describe_network(c)["description"] for c in sampled_cases(1, EXAMPLES)]
    assert others != [n["description"] for n in document["networks"][3:]]


def _fail_on_third_write(monkeypatch):
    calls = []
    original = publish_module.write_bytes

    def write(path, data):
        calls.append(path)
        if len(calls) == 3:
            raise KeyboardInterrupt("interrupted while writing")
        original(path, data)

    monkeypatch.setattr(publish_module, "write_bytes", write)


def _fail_in_a_figure(monkeypatch):
    def broken(*arguments, **keywords):
        raise RuntimeError("interrupted while drawing")

    monkeypatch.setattr(figures, "training_curves", broken)


@pytest.mark.parametrize("interrupt", [_fail_in_a_figure, _fail_on_third_write], ids=["drawing", "writing"])
def test_an_interrupted_run_leaves_the_previous_report_whole(tmp_path, monkeypatch, interrupt):
    out = tmp_path / "reports"
    generate(out, ["reference"], ["float64"], seed=0, examples=1)
    before = _snapshot(out)
    interrupt(monkeypatch)
    with pytest.raises((RuntimeError, KeyboardInterrupt)):
        generate(out, ["reference"], ["float64"], seed=5, examples=2)
    assert _snapshot(out) == before
    # No staging directory left behind; the writers' lock file stays beside the report.
    assert sorted(p.name for p in tmp_path.iterdir()) == [".reports.lock", "reports"]


def test_an_interrupted_first_run_creates_nothing(tmp_path, monkeypatch):
    _fail_in_a_figure(monkeypatch)
    with pytest.raises(RuntimeError):
        generate(tmp_path / "reports", ["reference"], ["float64"], seed=0, examples=0)
    assert list(tmp_path.iterdir()) == []


# -- the command line ---------------------------------------------------------------------


def test_the_command_writes_the_report(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["report", "--adapter", "reference", "--examples", "1", "--seed", "3", "--out", str(out)]) == 0
    assert {p.name for p in out.iterdir()} == {JSON_FILE, MARKDOWN_FILE, HTML_FILE,
                                               *FIGURE_FILES.values()}
    assert "wrote" in capsys.readouterr().out
    assert json.loads((out / JSON_FILE).read_text())["settings"]["seed"] == 3


def test_the_command_exits_1_when_an_adapter_fails(tmp_path):
    argv = ["report", "--adapter", f"{__name__}:DoubledGradients", "--examples", "0", "--out", str(tmp_path)]
    assert main(argv) == 1


@pytest.mark.parametrize(
    "arguments",
    [
        ["--dtypes", "float16"],
        ["--dtypes", "float32,bfloat16"],
        ["--dtypes", ""],
        ["--examples", "-1"],
        ["--examples", "many"],
        ["--seed", "-3"],
        ["--adapter", "no-such-adapter"],
    ],
)
def test_bad_arguments_print_usage_and_exit_2(arguments, capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        main(["report", *arguments, "--out", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    assert "usage:" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("spec", "message"),
    [("no_such_module_anywhere:Adapter", "cannot import module"), (f"{__name__}:NoSuchAttribute", "no attribute")],
)
def test_an_adapter_that_cannot_load_exits_2_before_anything_is_written(spec, message, capsys, tmp_path):
    assert main(["report", "--adapter", spec, "--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err
    assert error.startswith("backprop report: ") and message in error
    assert not (tmp_path / "out").exists()


def test_stratified_levels_are_balanced():
    levels = _stratified(np.random.default_rng(0), ("a", "b", "c", "d"), 10)
    assert sorted(collections.Counter(levels).values()) == [2, 2, 3, 3]
