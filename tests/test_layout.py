"""The package's layout: one import root, imports that only go down, stages in order, small modules."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: Source folder of each subpackage of backprop_conformance (pyproject.toml's package-dir).
FOLDERS = {
    "reference": ROOT / "reference",
    "adapters": ROOT / "adapters",
    "common": ROOT / "conformance" / "common",
    "suite": ROOT / "conformance" / "suite",
    "report": ROOT / "conformance" / "report",
    "bench": ROOT / "conformance" / "bench",
    "vectors": ROOT / "conformance" / "vectors",
}
#: What each subpackage may import of the others (itself always).
MAY_IMPORT = {
    "reference": set(),
    "adapters": {"reference"},
    "common": set(),
    "suite": {"reference", "adapters", "common"},
    "report": {"reference", "adapters", "common", "suite"},
    "bench": {"reference", "adapters", "common", "suite"},
    "vectors": {"reference", "common", "suite"},
}
#: The report's pipeline and the benchmark's, in order: a module imports only modules before it.
STAGES = {
    "report": ["cases", "progress", "records", "optimizers", "document", "content", "render_markdown", "render_html",
               "figures", "publish", "command"],
    "bench": ["steppers", "plan", "worker", "peaks", "measure", "tables", "matmuls", "suite_speed", "targets", "render",
              "command"],
    "vectors": ["catalogue", "records", "command"],
}
MAX_LINES = 300
OLD_TOP_LEVEL_NAMES = {"reference", "adapters", "conformance"}


def _imports(path: Path) -> list[tuple[int, str]]:
    """Return (line, absolute module) for every import of ``path``; relative ones resolved in its package."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                raise AssertionError(f"{path}:{node.lineno}: relative import; this project imports absolutely")
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return found


def _package_modules() -> list[Path]:
    modules = sorted({*ROOT.joinpath("conformance").rglob("*.py"), *FOLDERS["reference"].glob("*.py"),
                      *FOLDERS["adapters"].glob("*.py")})
    assert len(modules) > 40
    return modules


def test_nothing_imports_the_old_top_level_names():
    offending = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in [*_package_modules(), *ROOT.joinpath("tests").glob("*.py")]
        for line, module in _imports(path)
        if module.split(".")[0] in OLD_TOP_LEVEL_NAMES
    ]
    assert offending == []


@pytest.mark.parametrize("package", sorted(FOLDERS))
def test_imports_only_go_down(package):
    offending = []
    for path in sorted(FOLDERS[package].glob("*.py")):
        for line, module in _imports(path):
            parts = module.split(".")
            if parts[0] == "backprop_conformance" and len(parts) > 1 and parts[1] != package:
                if parts[1] not in MAY_IMPORT[package]:
                    offending.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert offending == [], f"{package} may import only {sorted(MAY_IMPORT[package])}"


@pytest.mark.parametrize("package", sorted(STAGES))
def test_each_stage_uses_only_the_stages_before_it(package):
    order = STAGES[package]
    folder = FOLDERS[package]
    assert sorted(order) == sorted(p.stem for p in folder.glob("*.py") if p.stem != "__init__")
    offending = []
    for position, stage in enumerate(order):
        for line, module in _imports(folder / f"{stage}.py"):
            parts = module.split(".")
            if parts[:2] == ["backprop_conformance", package] and len(parts) > 2 and parts[2] in order:
                if order.index(parts[2]) >= position:
                    offending.append(f"{stage}.py:{line} imports {module}, a later stage")
    assert offending == []


def test_the_walk_is_not_vacuous():
    """The import walk sees report/records.py's import of report.cases, and would see a climb back up."""
    imported = {module for _, module in _imports(FOLDERS["report"] / "records.py")}
    assert "backprop_conformance.report.cases.SweepCase" in imported


def test_no_module_is_over_300_lines():
    long = {str(path.relative_to(ROOT)): len(path.read_text().splitlines()) for path in _package_modules()}
    assert {path: lines for path, lines in long.items() if lines > MAX_LINES} == {}
