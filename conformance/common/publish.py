"""Publishing a report as one atomic switch, on any file system, one writer at a time.

``publish(out_dir, files, owned)`` makes ``out_dir`` hold ``files`` (name
-> bytes), keeping every other entry of the directory (``report`` and
``bench`` share ``reports/``) and removing the ``owned`` names that are no
longer written. A reader sees the old report or the new one, whole.

* **The switch.** The new directory is staged as a sibling of the real
  directory (``.<name>.staging-*``; symlinks are followed, so a symlink into
  another file system stages on that file system): new files written and
  fsynced, the other entries hard-linked (copied where links fail). Then
  one ``renameat2(RENAME_EXCHANGE)`` swaps the two directories (Linux), or
  one rename where the directory did not exist yet, and the old one is
  removed.
* **Versioned.** Where the directory cannot be swapped (it is a mount point,
  its parent is not writable, or the file system or platform has no
  exchange), the report lives in ``<out>/.<kind>.versions/<run>/`` and
  ``<out>/.<kind>.current`` is a symlink to it, flipped by one rename; each
  report file in ``<out>`` is a symlink through it (``agreement.json ->
  .agreement.current/agreement.json``), made once.
* **One writer at a time.** An exclusive ``flock`` on ``.<name>.lock``
  (beside the directory, or inside it when versioned) is held while
  publishing. Staging directories exist only under that lock, so any found
  when it is taken were left by a killed writer, and are removed.
"""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from backprop_conformance.common.files import OutputError, write_bytes

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2
#: errno values meaning "this file system or kernel cannot exchange": fall back to the versioned layout.
_NO_EXCHANGE = {errno.EINVAL, errno.ENOSYS, errno.EXDEV, errno.ENOTSUP, errno.EPERM, errno.EBUSY}


def _exchange(first: Path, second: Path) -> bool:
    """Swap two paths in one system call (Linux renameat2); return False where that is not possible here."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    result = renameat2(_AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE)
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in _NO_EXCHANGE:
        return False
    raise OSError(code, os.strerror(code), str(second))


@contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive flock on ``lock_path`` (where fcntl exists) for the duration."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no serialisation, the switch itself stays atomic
        yield
        return
    with open(lock_path, "a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _remove_stale(directory: Path, pattern: str) -> None:
    for stale in directory.glob(pattern):
        shutil.rmtree(stale, ignore_errors=True)


def _link_or_copy(source: Path, target: Path) -> None:
    if source.is_symlink():
        os.symlink(os.readlink(source), target)
    elif source.is_dir():
        shutil.copytree(source, target, symlinks=True, copy_function=_link_or_copy_file)
    else:
        _link_or_copy_file(source, target)


def _link_or_copy_file(source: str | Path, target: str | Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _directory_mode(real: Path) -> int:
    """Return the mode a published directory gets: the one it had, or what the umask gives a new one."""
    if real.is_dir():
        return stat.S_IMODE(real.stat().st_mode)
    umask = os.umask(0)
    os.umask(umask)
    return 0o777 & ~umask


def _stage(real: Path, files: dict[str, bytes], owned: set[str]) -> Path:
    """Return a staging directory beside ``real``: the new files, and ``real``'s other entries linked in."""
    staging = Path(tempfile.mkdtemp(prefix=f".{real.name}.staging-", dir=real.parent))
    try:
        os.chmod(staging, _directory_mode(real))  # mkdtemp's 0700 would lock others out of the report
        if real.is_dir():
            for entry in real.iterdir():
                if entry.name not in files and entry.name not in owned:
                    _link_or_copy(entry, staging / entry.name)
        for name, data in files.items():
            write_bytes(staging / name, data)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return staging


def _publish_by_switch(real: Path, files: dict[str, bytes], owned: set[str]) -> bool:
    """Publish by swapping in a staged sibling directory; return False where this directory cannot be swapped."""
    existed = real.exists()
    staging = _stage(real, files, owned)
    try:
        if not existed:
            os.rename(staging, real)
            return True
        if not _exchange(staging, real):
            return False
        return True
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # after a swap it holds the old report


def _publish_versioned(real: Path, kind: str, files: dict[str, bytes], owned: set[str]) -> None:
    """Publish into ``real/.<kind>.versions/<run>`` and flip ``real/.<kind>.current`` to it."""
    versions = real / f".{kind}.versions"
    versions.mkdir(exist_ok=True)
    _remove_stale(versions, ".staging-*")
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=versions))
    os.chmod(staging, _directory_mode(versions))
    run = f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}-{staging.name.rsplit('-', 1)[-1]}"
    try:
        for name, data in files.items():
            write_bytes(staging / name, data)
        os.rename(staging, versions / run)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    current = real / f".{kind}.current"
    flip = real / f".{kind}.current.{run}"
    os.symlink(f"{versions.name}/{run}", flip)
    os.replace(flip, current)  # the one switch
    for name in files:  # once: each report file is a symlink through .<kind>.current
        entry, wanted = real / name, f"{current.name}/{name}"
        if not (entry.is_symlink() and os.readlink(entry) == wanted):
            temporary = real / f".{name}.link-{run}"
            os.symlink(wanted, temporary)
            os.replace(temporary, entry)
    for name in owned - set(files):
        if (real / name).is_symlink() or (real / name).is_file():
            (real / name).unlink()
    for old in versions.iterdir():
        if old.name != run:
            shutil.rmtree(old, ignore_errors=True)


def _versioned_here(real: Path, kind: str) -> bool:
    return real.is_dir() and (real / f".{kind}.current").is_symlink()


def publish(out_dir: Path, files: dict[str, bytes], kind: str, owned: set[str] = frozenset()) -> Path:
    """Publish ``files`` into ``out_dir`` as one switch; return the real directory written.

    ``kind`` names the report (``agreement``, ``performance``) for its lock
    and versions; ``owned`` lists other names the report writes at times
    (removed when absent from ``files``). Raises OutputError, naming the
    path, when the directory cannot be written; the previous report is then
    as it was.
    """
    out_dir = Path(out_dir)
    real = out_dir.resolve() if out_dir.exists() else out_dir.absolute()
    owned = set(owned) | set(files)
    try:
        real.parent.mkdir(parents=True, exist_ok=True)
        swappable = os.access(real.parent, os.W_OK) and not (real.exists() and os.path.ismount(real))
        if swappable and not _versioned_here(real, kind):
            with _locked(real.parent / f".{real.name}.lock"):
                _remove_stale(real.parent, f".{real.name}.staging-*")
                if _publish_by_switch(real, files, owned):
                    return real
        real.mkdir(exist_ok=True)
        with _locked(real / f".{kind}.lock"):
            _publish_versioned(real, kind, files, owned)
        return real
    except OSError as error:
        if isinstance(error, OutputError):
            raise
        raise OutputError(f"cannot write the report to {out_dir}: {error.strerror or error}") from None
