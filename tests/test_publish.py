"""Publishing a report: one atomic switch on any file system, writers in turn, nothing left half-done.

Fault-injection tests mount tmpfs file systems where the machine lets the
test (root, or a user namespace); elsewhere they skip with the reason.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from backprop_conformance.common import publish as publish_module
from backprop_conformance.common.files import OutputError, check_output_directory
from backprop_conformance.common.publish import publish

ROOT = Path(__file__).resolve().parent.parent


def _mount_tmpfs(directory: Path, size: str = "64m", read_only: bool = False) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    options = f"size={size}" + (",ro" if read_only else "")
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(directory)], capture_output=True,
                            text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({result.stderr.strip() or 'mount failed'}): needs root")


@pytest.fixture
def mount(tmp_path):
    """Return a function that mounts a tmpfs at a path; every mount is undone after the test."""
    mounted: list[Path] = []

    def make(name: str, **options) -> Path:
        directory = tmp_path / name
        _mount_tmpfs(directory, **options)
        mounted.append(directory)
        return directory

    yield make
    for directory in reversed(mounted):
        subprocess.run(["umount", "-l", str(directory)], capture_output=True)


def _files(run: str) -> dict[str, bytes]:
    return {"agreement.json": f'{{"run": "{run}"}}\n'.encode(), "agreement.md": f"run {run}\n".encode()}


def _read_consistently(directory: Path) -> tuple[str, str] | None:
    """Return what one open directory holds for both files (None if it vanished meanwhile)."""
    try:
        handle = os.open(directory, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        def read(name: str) -> str:
            with open(name, opener=lambda path, flags: os.open(path, flags, dir_fd=handle)) as file:
                return file.read()

        return read("agreement.json").split('"')[3], read("agreement.md").split()[1]
    except (FileNotFoundError, IndexError):
        return None
    finally:
        os.close(handle)


def test_a_new_directory_is_published_and_other_entries_are_kept(tmp_path):
    out = tmp_path / "reports"
    publish(out, _files("1"), kind="agreement")
    (out / "performance.md").write_text("the bench's")
    publish(out, _files("2"), kind="agreement")
    assert _read_consistently(out) == ("2", "2")
    assert (out / "performance.md").read_text() == "the bench's"
    assert not list(tmp_path.glob(".reports.staging-*"))


def test_a_published_directory_keeps_its_mode_or_gets_the_umasks(tmp_path):
    umask = os.umask(0o022)
    try:
        out = tmp_path / "reports"
        publish(out, _files("1"), kind="agreement")
        assert stat.S_IMODE(out.stat().st_mode) == 0o755  # not mkdtemp's 0700
        out.chmod(0o750)
        publish(out, _files("2"), kind="agreement")
        assert stat.S_IMODE(out.stat().st_mode) == 0o750
    finally:
        os.umask(umask)


def test_owned_files_no_longer_written_are_removed(tmp_path):
    out = tmp_path / "reports"
    publish(out, {**_files("1"), "agreement.interrupted.json": b"{}"}, kind="agreement")
    publish(out, _files("2"), kind="agreement", owned={"agreement.interrupted.json"})
    assert sorted(path.name for path in out.iterdir()) == ["agreement.json", "agreement.md"]


def test_a_mount_point_is_published_into_as_one_symlink_flip(mount):
    out = mount("artifacts")  # --out is the mount point itself: it cannot be renamed or swapped
    for run in ("1", "2", "3"):
        publish(out, _files(run), kind="agreement")
        assert (out / "agreement.json").read_text() == f'{{"run": "{run}"}}\n'
    assert os.readlink(out / "agreement.json") == ".agreement.current/agreement.json"
    assert len(list((out / ".agreement.versions").iterdir())) == 1  # the old versions are gone


def test_a_symlink_into_another_file_system_is_followed(tmp_path, mount):
    volume = mount("volume")
    (volume / "reports").mkdir()
    link = tmp_path / "reports"
    link.symlink_to(volume / "reports")
    for run in ("1", "2"):
        publish(link, _files(run), kind="agreement")
    assert link.is_symlink() and _read_consistently(link) == ("2", "2")
    assert (volume / "reports" / "agreement.md").read_text() == "run 2\n"


def _publish_many(out: str, name: str, count: int) -> None:
    for number in range(count):
        publish(Path(out), _files(f"{name}{number}"), kind="agreement")


@pytest.mark.parametrize("where", ["directory", "mount point"])
def test_two_writers_at_once_never_leave_a_mixed_report(tmp_path, mount, where):
    out = tmp_path / "reports" if where == "directory" else mount("artifacts")
    publish(out, _files("start"), kind="agreement")
    writers = [multiprocessing.get_context("spawn").Process(target=_publish_many, args=(str(out), name, 25))
               for name in ("a", "b")]
    for writer in writers:
        writer.start()
    seen = 0
    while any(writer.is_alive() for writer in writers):
        current = out / ".agreement.current" if where == "mount point" else out
        found = _read_consistently(current)
        if found is not None:
            assert found[0] == found[1], found
            seen += 1
    assert all(writer.exitcode == 0 for writer in writers)
    assert seen > 0
    final = _read_consistently(out / ".agreement.current" if where == "mount point" else out)
    assert final is not None and final[0] == final[1] and final[0] in ("a24", "b24")


def test_an_interrupted_switch_leaves_the_previous_report(tmp_path, monkeypatch):
    out = tmp_path / "reports"
    publish(out, _files("1"), kind="agreement")

    def interrupted(first, second):
        raise KeyboardInterrupt

    monkeypatch.setattr(publish_module, "_exchange", interrupted)
    with pytest.raises(KeyboardInterrupt):
        publish(out, _files("2"), kind="agreement")
    assert _read_consistently(out) == ("1", "1")
    assert not list(tmp_path.glob(".reports.staging-*"))


KILLED_WRITER = """
import sys, time
from pathlib import Path
from backprop_conformance.common import publish as module

original = module.write_bytes
def slow(path, data):
    original(path, data)
    print("staging", flush=True)
    time.sleep(60)
module.write_bytes = slow
module.publish(Path(sys.argv[1]), {"agreement.json": b"killed", "agreement.md": b"killed"}, kind="agreement")
"""


def test_a_writer_killed_mid_staging_is_cleaned_up_by_the_next(tmp_path):
    out = tmp_path / "reports"
    publish(out, _files("1"), kind="agreement")
    writer = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(out)], stdout=subprocess.PIPE, text=True)
    assert writer.stdout.readline().strip() == "staging"
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    assert list(tmp_path.glob(".reports.staging-*")), "the killed writer left its staging directory"
    assert _read_consistently(out) == ("1", "1")
    publish(out, _files("2"), kind="agreement")
    assert not list(tmp_path.glob(".reports.staging-*"))
    assert _read_consistently(out) == ("2", "2")


def test_gitignore_covers_staging_lock_and_interrupted_files():
    names = [".reports.staging-abc123", ".reports.lock", "reports/agreement.interrupted.json"]
    result = subprocess.run(["git", "-C", str(ROOT), "check-ignore", "--no-index", *names], capture_output=True,
                            text=True)
    if result.returncode == 128:
        pytest.skip(f"no git repository here: {result.stderr.strip()}")
    assert sorted(result.stdout.split()) == sorted(names)


# -- the output directory, checked before the work -------------------------------------------


def test_a_file_as_output_directory_is_refused_naming_it(tmp_path):
    target = tmp_path / "report.md"
    target.write_text("not a directory")
    with pytest.raises(OutputError, match=rf"--out {target}: is a file, not a directory"):
        check_output_directory(target)


def test_a_read_only_file_system_is_refused_naming_it(mount):
    read_only = mount("read-only", read_only=True)
    with pytest.raises(OutputError, match=r"cannot write in .*read-only.*Read-only file system"):
        check_output_directory(read_only / "reports")


def test_a_full_disk_is_refused_before_the_work(mount):
    tiny = mount("tiny", size="1m")
    with pytest.raises(OutputError, match=r"only 1\.0 MiB free in .*tiny; a report needs about 8 MiB"):
        check_output_directory(tiny / "reports")


def test_a_full_disk_while_publishing_is_an_output_error_and_keeps_the_report(tmp_path, monkeypatch):
    out = tmp_path / "reports"
    publish(out, _files("1"), kind="agreement")

    def full(path, data):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(publish_module, "write_bytes", full)
    with pytest.raises(OutputError, match=rf"cannot write the report to {out}: No space left on device"):
        publish(out, _files("2"), kind="agreement")
    assert _read_consistently(out) == ("1", "1")
