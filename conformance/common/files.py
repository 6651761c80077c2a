"""Writing generated reports so that no reader ever sees half of one."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path


def _write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` and flush it to disk, so a later rename publishes complete bytes."""
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def write_atomically(out_dir: Path, files: dict[str, bytes], last: str | None = None) -> None:
    """Write ``files`` (name -> bytes) into ``out_dir`` so that no reader ever sees a partial report.

    Everything is written and fsynced into a staging directory beside
    ``out_dir`` (same file system, so ``os.replace`` is an atomic rename), and
    only then renamed into place, ``last`` (the machine-readable file) after
    the rest. If anything fails before the renames, ``out_dir`` is untouched;
    the staging directory is always removed.
    """
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.staging-", dir=out_dir.parent))
    try:
        for name, data in files.items():
            _write_bytes(staging / name, data)
        out_dir.mkdir(exist_ok=True)
        for name in sorted(files, key=lambda name: name == last):
            os.replace(staging / name, out_dir / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def write_file_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a reader sees the old file or the new one, never a part.

    The bytes go to a temporary file in the same directory (so that the rename
    cannot cross file systems) and are renamed over ``path``.
    """
    path = Path(path)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    try:
        _write_bytes(Path(temporary), data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
