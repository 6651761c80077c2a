"""The README's examples run, so they cannot drift from the code."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README, flags=re.DOTALL)


def test_readme_has_the_oracle_example_in_about_ten_lines():
    blocks = python_blocks()
    assert blocks, "README.md has no python example"
    assert len([line for line in blocks[0].splitlines() if line.strip()]) <= 12


def test_readme_python_examples_run(tmp_path):
    for number, block in enumerate(python_blocks()):
        script = tmp_path / f"example_{number}.py"
        script.write_text(block)
        result = subprocess.run([sys.executable, str(script)], cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        assert "dJ/dW1[0,1]" in result.stdout  # explain printed its trace


def test_readme_commands_exist_in_the_makefile_and_ci_runs_the_test_command():
    makefile = (ROOT / "Makefile").read_text()
    for command in re.findall(r"^make (\w+)", README, flags=re.MULTILINE):
        assert re.search(rf"^{command}:", makefile, flags=re.MULTILINE), command
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^make test$", ci, flags=re.MULTILINE)
    assert "make test" in README
