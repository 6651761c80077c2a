"""Fresh environments for the tests that install the package as a user would.

``build_wheel`` builds a wheel from a copy of the repository's files (those
git tracks, plus new ones it does not ignore), never from the working tree
itself, so nothing left behind by a build or an editable install leaks in.
``Environment`` is a new virtual environment (no pip, no site packages of
this interpreter) holding that wheel and a chosen set of distributions,
linked from this interpreter's site-packages with their own dependencies,
so that a test decides exactly what sits beside the package.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
SITE_PACKAGES = Path(sysconfig.get_paths()["purelib"])


def _source_files() -> list[str]:
    """Return the repository's files as git sees them (tracked, or new and not ignored)."""
    listed = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "--cached", "--others", "--exclude-standard"],
        capture_output=True, text=True, check=True,
    ).stdout.splitlines()
    return [name for name in listed if (ROOT / name).is_file()]


def build_wheel(directory: Path) -> Path:
    """Return the path of a wheel built from a clean copy of the repository in ``directory``."""
    source = directory / "source"
    for name in _source_files():
        target = source / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)
    dist = directory / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
         "--disable-pip-version-check", "-w", str(dist), str(source)],
        check=True, capture_output=True, text=True,
    )
    (wheel,) = dist.glob("backprop_conformance-*.whl")
    return wheel


def wheel_top_level(wheel: Path) -> set[str]:
    """Return the first path component of every file in the wheel."""
    with zipfile.ZipFile(wheel) as archive:
        return {name.split("/", 1)[0] for name in archive.namelist()}


def wheel_files(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())


def _closure(names: list[str]) -> dict[str, importlib.metadata.Distribution]:
    """Return the installed distributions ``names`` and everything they require here, by canonical name."""
    found: dict[str, importlib.metadata.Distribution] = {}
    pending = list(names)
    while pending:
        name = canonicalize_name(pending.pop())
        if name in found:
            continue
        distribution = importlib.metadata.distribution(name)
        found[name] = distribution
        for text in distribution.requires or []:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                pending.append(requirement.name)
    return found


class Environment:
    """A new virtual environment with ``distributions`` (with their dependencies) and the wheel, if given."""

    def __init__(self, directory: Path, wheel: Path | None, distributions: list[str]) -> None:
        self.directory = directory
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(directory)], check=True)
        self.python = directory / "bin" / "python"
        site = Path(subprocess.run(
            [str(self.python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True, text=True, check=True,
        ).stdout.strip())
        for distribution in _closure(distributions).values():
            entries = {Path(str(path)).parts[0] for path in distribution.files or []}
            for entry in entries:
                if entry == ".." or entry.startswith("__editable__") or not (SITE_PACKAGES / entry).exists():
                    continue
                if not (site / entry).exists():
                    os.symlink(SITE_PACKAGES / entry, site / entry)
        if wheel is not None:
            subprocess.run(
                [sys.executable, "-m", "pip", "--python", str(self.python), "install", "--quiet", "--no-deps",
                 "--no-index", "--disable-pip-version-check", str(wheel)],
                check=True, capture_output=True, text=True,
            )

    def run(self, *command: str, cwd: Path, extra_env: dict[str, str] | None = None,
            timeout: float = 600) -> subprocess.CompletedProcess:
        """Run ``command`` (its first word a program of this environment's bin/) in ``cwd``."""
        program = self.directory / "bin" / command[0]
        environment = {
            key: value for key, value in os.environ.items()
            if key not in ("PYTHONPATH", "VIRTUAL_ENV", "CI", "PYTEST_ADDOPTS", "PYTEST_XDIST_WORKER")
            and not key.startswith(("PYTEST_", "HYPOTHESIS_"))
        }
        environment |= {"PATH": f"{self.directory / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}
        environment |= extra_env or {}
        return subprocess.run([str(program), *command[1:]], cwd=cwd, env=environment, capture_output=True,
                              text=True, timeout=timeout)
