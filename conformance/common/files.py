"""Files written so that no reader sees half of one, and output directories checked before long work.

``write_file_atomically`` writes one file beside its target and renames it
over it. ``check_output_directory`` says, before a sweep of minutes, whether
``--out`` can take a report, naming the path and what is wrong.
``common.publish`` switches a whole report at once.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

#: Free space ``check_output_directory`` asks for: about 8 times a default report (1.1 MB with its
#: figures), so that a report, its staging copy and a margin fit.
MIN_FREE_BYTES = 8 * 2**20


class OutputError(OSError):
    """The output directory cannot take the report; the message names the path and the reason."""


def write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` and flush it to disk, so that a later rename publishes complete bytes."""
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def write_file_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a reader sees the old file or the new one, never a part.

    The bytes go to a temporary file in the same directory (so that the
    rename cannot cross file systems) and are renamed over ``path``.
    """
    path = Path(path)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    try:
        write_bytes(Path(temporary), data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _existing_ancestor(path: Path) -> Path:
    while not path.exists():
        path = path.parent
    return path


def check_output_directory(out_dir: Path) -> None:
    """Raise OutputError unless ``out_dir`` is, or can become, a writable directory with room for a report.

    Checks what can be checked before the work: the path is a directory (or
    does not exist yet and its nearest existing ancestor is one), a file can
    be created in it and removed, and ``MIN_FREE_BYTES`` are free there. A
    full disk during the write itself is still possible, and is reported as
    an OutputError then, with the previous report left as it was.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputError(f"--out {out_dir}: is a file, not a directory")
    if out_dir.is_symlink() and not out_dir.exists():
        raise OutputError(f"--out {out_dir}: is a symlink to {os.readlink(out_dir)}, which does not exist")
    place = out_dir.resolve() if out_dir.exists() else _existing_ancestor(out_dir.absolute())
    if not place.is_dir():
        raise OutputError(f"--out {out_dir}: {place} is a file, not a directory")
    try:
        probe, name = tempfile.mkstemp(prefix=".backprop-write-probe-", dir=place)
        os.close(probe)
        os.unlink(name)
    except OSError as error:
        raise OutputError(f"--out {out_dir}: cannot write in {place}: {error.strerror or error}") from None
    free = shutil.disk_usage(place).free
    if free < MIN_FREE_BYTES:
        raise OutputError(
            f"--out {out_dir}: only {free / 2**20:.1f} MiB free in {place}; a report needs about "
            f"{MIN_FREE_BYTES / 2**20:.0f} MiB"
        )
