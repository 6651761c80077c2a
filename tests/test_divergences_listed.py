"""Every known divergence names tests that exist: the list cannot point at nothing."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from backprop_conformance.adapters.divergences import DIVERGENCES

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("divergence", DIVERGENCES, ids=lambda divergence: divergence.title[:40])
def test_each_divergence_is_demonstrated_by_tests_that_exist(divergence):
    assert divergence.demonstrated_by
    for node in divergence.demonstrated_by:
        path, _, name = node.partition("::")
        function = re.sub(r"\[.*\]$", "", name)
        tree = ast.parse((ROOT / path).read_text())
        defined = {item.name for item in ast.walk(tree) if isinstance(item, ast.FunctionDef)}
        assert function in defined, node
