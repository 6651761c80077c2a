"""The report's table "the same nominal optimizer in torch and optax": each framework passes in its own
convention, and the two conventions are as far apart as their named causes make them."""

from __future__ import annotations

import json

import pytest
from jsonschema import Draft202012Validator

from backprop_conformance.adapters import load_adapter
from backprop_conformance.report.content import _optimizer_blocks
from backprop_conformance.report.document import REPORT_SCHEMA
from backprop_conformance.report.optimizers import optimizer_comparison
from backprop_conformance.report.records import LoadedAdapter

pytest.importorskip("torch")
pytest.importorskip("optax")


@pytest.fixture(scope="module")
def comparison():
    specs = ("torch-float64", "jax-float64", "reference")
    return optimizer_comparison([LoadedAdapter(spec, load_adapter(spec)) for spec in specs])


def _row(comparison, configuration):
    return next(row for row in comparison["rows"] if row["configuration"] == configuration)


def test_each_framework_passes_in_its_own_convention(comparison):
    for row in comparison["rows"]:
        verdicts = {entry["adapter"]: (entry["convention"], entry["verdict"]) for entry in row["adapters"]}
        refused = {c for c, text in row["conventions"].items() if text.startswith("refused")}
        expected = {label: (convention, "pass") for label, convention in
                    (("torch float64", "torch"), ("jax float64", "optax")) if convention not in refused}
        if "torch" not in refused:  # the reference adapter's train takes no optimizer: SGD only
            expected["reference float64"] = ("torch", "not applicable")
        assert verdicts == expected, row["configuration"]


@pytest.mark.parametrize(("configuration", "apart", "rel"), [  # max |theta_torch - theta_optax| / max |theta|
    ("sgd(lr=0.1)", 0.0, 1e-5),
    ("sgd(lr=0.1, momentum=0.9, nesterov=True)", 0.0, 1e-5),
    ("adam(lr=0.001)", 0.0, 1e-5),  # the same rule: rounding only
    ("adam(lr=0.001, amsgrad=True)", 4.40532e-3, 1e-5),
    ("adamw(lr=0.001)", 16 * 1e-3 * (1e-2 - 1e-4), 5e-3),  # 16 steps of lr (wd_torch - wd_optax) theta
    ("rmsprop(lr=0.01)", 0.349263, 1e-5),  # eps and alpha together: adapters.divergences' "0.35 apart"
    ("adagrad(lr=0.01)", 4.45302e-2, 1e-5),
])
def test_the_conventions_are_as_far_apart_as_their_causes_make_them(comparison, configuration, apart, rel):
    measured = _row(comparison, configuration)["apart"]
    assert measured == pytest.approx(apart, rel=rel, abs=1e-15)  # abs: where both are the same rule


def test_a_setting_one_side_cannot_express_is_refused_there_and_not_compared(comparison):
    dampened = _row(comparison, "sgd(lr=0.1, momentum=0.9, dampening=0.5)")
    assert dampened["apart"] is None and dampened["conventions"]["optax"].startswith("refused: dampening=0.5")
    rooted = _row(comparison, "adam(lr=0.001, eps_root=1e-08)")
    assert rooted["apart"] is None and "eps_root" in rooted["conventions"]["torch"]
    for configuration, setting in (("adam(lr=0.001, nesterov=True)", "nesterov=True"),
                                   ("rmsprop(lr=0.01, bias_correction=True)", "bias_correction=True")):
        row = _row(comparison, configuration)
        assert row["apart"] is None and row["conventions"]["torch"].startswith(f"refused: {setting}"), row
        assert row["conventions"]["optax"].startswith(f"{configuration[:configuration.index('(')]}(optax: "), row
        assert setting in row["conventions"]["optax"], row


def test_the_comparison_fits_the_report_schema_and_renders(comparison):
    schema = json.loads(REPORT_SCHEMA.read_text())
    Draft202012Validator(schema["properties"]["optimizers"]).validate(comparison)
    table = next(block for block in _optimizer_blocks({"optimizers": comparison}) if block[0] == "table")
    assert table[1][:3] == ["configuration", "torch vs optax", "why"]
    assert len(table[2]) == len(comparison["rows"])


def test_an_adapter_of_both_conventions_is_judged_in_each_in_its_own_column():
    from backprop_conformance.adapters.protocol import Adapter
    from tests.optimizer_adapters import NumpyOptimizers

    class BothConventions(NumpyOptimizers):
        name = "numpy optimizers (both conventions)"
        optimizer_conventions = ("torch", "optax")

    loaded = LoadedAdapter("both", Adapter(BothConventions()))
    comparison = optimizer_comparison([loaded])
    for row in comparison["rows"]:
        expressible = {c for c, text in row["conventions"].items() if not text.startswith("refused")}
        verdicts = {entry["convention"]: entry["verdict"] for entry in row["adapters"]}
        assert verdicts == dict.fromkeys(expressible, "pass"), row["configuration"]
    header = next(block for block in _optimizer_blocks({"optimizers": comparison}) if block[0] == "table")[1]
    assert header[3:] == [f"{loaded.label} (torch)", f"{loaded.label} (optax)"]


def test_the_case_is_described_without_a_learning_rate_of_its_own(comparison):
    assert "learning rate" not in comparison["case"] and "each row's lr" in comparison["case"]
    assert "7 samples, 16 shuffled batches of at most 2" in comparison["case"]
