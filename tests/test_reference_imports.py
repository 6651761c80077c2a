"""The dependency rule: ``reference/`` imports NumPy and the standard library only."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from backprop_conformance import reference

REFERENCE_DIRECTORY = Path(reference.__file__).parent
ALLOWED_OUTSIDE_THE_STANDARD_LIBRARY = {"numpy", "reference", "__future__"}


def _top_level(module: str) -> str:
    """Return the import's top-level name; ``backprop_conformance.<package>`` counts as that package."""
    parts = module.split(".")
    return parts[1] if parts[0] == "backprop_conformance" and len(parts) > 1 else parts[0]


def _imported_top_level_modules(path: Path) -> list[tuple[int, str]]:
    """Return (line, top-level module) for every import in the file; relative imports count as reference."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, _top_level(alias.name)) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append((node.lineno, "reference" if node.level > 0 else _top_level(node.module)))
    return found


def test_every_reference_module_imports_only_numpy_and_the_standard_library():
    sources = sorted(REFERENCE_DIRECTORY.glob("*.py"))
    assert {"backprop.py", "oracles.py", "explain.py", "__init__.py"} <= {path.name for path in sources}
    offending = [
        f"{path.name}:{line} imports {module}"
        for path in sources
        for line, module in _imported_top_level_modules(path)
        if module not in ALLOWED_OUTSIDE_THE_STANDARD_LIBRARY and module not in sys.stdlib_module_names
    ]
    assert offending == [], "reference/ must import only NumPy and the standard library: " + "; ".join(offending)


def test_the_import_walk_sees_numpy_and_would_see_a_framework(tmp_path):
    """The walk is not vacuous: it finds numpy in backprop.py and would flag a framework."""
    assert "numpy" in {module for _, module in _imported_top_level_modules(REFERENCE_DIRECTORY / "backprop.py")}
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import os.path\nfrom torch import nn\nfrom . import losses\nimport jax.numpy as jnp\n"
        "from backprop_conformance.reference import network\nfrom backprop_conformance.suite import plugin\n"
    )
    assert _imported_top_level_modules(sample) == [
        (1, "os"), (2, "torch"), (3, "reference"), (4, "jax"), (5, "reference"), (6, "suite"),
    ]


def test_importing_reference_loads_no_framework_or_test_library():
    code = (
        "import sys\nfrom backprop_conformance import reference\nimport backprop_conformance.reference.seeds\n"
        "loaded = {'torch', 'jax', 'hypothesis', 'pytest', 'scipy'} & {m.split('.')[0] for m in sys.modules}\n"
        "print(sorted(loaded))\n"
    )
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert completed.stdout.strip() == "[]", completed.stdout + completed.stderr
