"""sllen.runtime.files: the one atomic writer, and reading the umask without changing it."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

from sllen.runtime import files
from sllen.runtime.files import AtomicFile, atomic_write, umask


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_umask_is_read_without_setting_it(monkeypatch: pytest.MonkeyPatch) -> None:
    mask = os.umask(0o022)  # the test's own read-by-setting, single-threaded here
    os.umask(mask)

    def no_umask(_: int) -> int:
        raise AssertionError("os.umask changes the mask for every thread")

    monkeypatch.setattr(os, "umask", no_umask)
    assert umask() == mask


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/self/status is Linux")
def test_umask_follows_a_later_change(tmp_path: Path) -> None:
    assert files._PROC_WORKS
    old = os.umask(0o027)
    try:
        assert umask() == 0o027
        target = atomic_write(tmp_path / "report.json", lambda tmp: tmp.write_text("{}"))
    finally:
        os.umask(old)
    assert _mode(target) == 0o640


def test_umask_falls_back_to_the_import_time_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(files, "_PROC_STATUS", "/nonexistent/status")
    assert umask() == files._IMPORT_UMASK


def test_atomic_file_publishes_with_the_usual_permissions(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "clip.mp4"
    with AtomicFile(target, suffix=".mp4") as tmp:
        # A hidden file beside the target, with the suffix a library picks the format from.
        assert tmp.parent == target.parent and tmp.name.startswith(".") and tmp.suffix == ".mp4"
        assert not target.exists()
        tmp.write_bytes(b"video")
    assert target.read_bytes() == b"video"
    assert _mode(target) == 0o666 & ~umask()  # not mkstemp's 0600
    assert [p.name for p in target.parent.iterdir()] == ["clip.mp4"]


def test_atomic_file_removes_the_temporary_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "clip.mp4"
    target.write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt):
        with AtomicFile(target, suffix=".mp4") as tmp:
            tmp.write_bytes(b"half")
            raise KeyboardInterrupt
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["clip.mp4"]


def test_atomic_file_by_hand(tmp_path: Path) -> None:
    # A writer whose life spans several calls publishes or discards itself.
    kept, dropped = AtomicFile(tmp_path / "a.bin"), AtomicFile(tmp_path / "b.bin")
    assert kept.tmp is not None and dropped.tmp is not None
    kept.tmp.write_bytes(b"a")
    assert kept.publish() == tmp_path / "a.bin"
    dropped.discard()
    dropped.discard()  # twice is harmless
    assert [p.name for p in tmp_path.iterdir()] == ["a.bin"]
    with pytest.raises(RuntimeError, match="already published"):
        kept.publish()
