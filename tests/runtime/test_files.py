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


def test_make_folder_reports_the_topmost_folder_it_created(tmp_path: Path) -> None:
    assert files.make_folder(tmp_path / "a" / "b" / "c") == tmp_path / "a"
    assert (tmp_path / "a" / "b" / "c").is_dir()
    assert files.make_folder(tmp_path / "a" / "b") is None  # existed
    assert files.topmost_missing(tmp_path / "a" / "x" / "y") == tmp_path / "a" / "x"


@pytest.mark.parametrize("failure", [RuntimeError("bad model"), KeyboardInterrupt(), SystemExit(2)])
def test_a_failed_block_takes_away_the_empty_folders_it_created(
    tmp_path: Path, failure: BaseException
) -> None:
    created = files.make_folder(tmp_path / "out" / "sub")
    (tmp_path / "out" / "sub" / "deeper").mkdir()
    with pytest.raises(type(failure)), files.removed_if_left_empty(created):
        raise failure
    assert not (tmp_path / "out").exists()


def test_files_written_and_folders_that_existed_are_kept(tmp_path: Path) -> None:
    created = files.make_folder(tmp_path / "out" / "a")
    (tmp_path / "out" / "b").mkdir()
    (tmp_path / "out" / "b" / "done.png").write_bytes(b"x")
    with pytest.raises(SystemExit), files.removed_if_left_empty(created):
        raise SystemExit(2)
    assert (tmp_path / "out" / "b" / "done.png").exists()
    assert not (tmp_path / "out" / "a").exists()  # empty: taken away
    existing = tmp_path / "mine"
    existing.mkdir()
    with pytest.raises(RuntimeError), files.removed_if_left_empty(files.make_folder(existing)):
        raise RuntimeError
    assert existing.is_dir()


def test_a_successful_block_keeps_an_empty_folder(tmp_path: Path) -> None:
    created = files.make_folder(tmp_path / "out")
    with files.removed_if_left_empty(created):
        pass
    with pytest.raises(SystemExit), files.removed_if_left_empty(created):
        raise SystemExit(0)
    assert (tmp_path / "out").is_dir()


def test_a_mkdir_that_fails_half_way_leaves_no_parents(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        files.make_folder(tmp_path / "a" / "b" / ("x" * 300))  # name too long for the file system
    assert list(tmp_path.iterdir()) == []


def test_check_output_file_says_why_before_any_work(tmp_path: Path) -> None:
    from sllen.runtime.errors import InputError

    assert files.check_output_file(tmp_path / "new" / "deeper" / "r.json", "--json")
    with pytest.raises(InputError, match=r"^--json .*: that is a folder; name a file$"):
        files.check_output_file(tmp_path, "--json")
    (tmp_path / "f").write_text("x")
    with pytest.raises(InputError, match="is a file, not a folder"):
        files.check_output_file(tmp_path / "f" / "r.json", "--plot")
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        try:
            with pytest.raises(InputError, match="is not writable"):
                files.check_output_file(locked / "sub" / "r.json", "--json")
        finally:
            locked.chmod(0o700)


def test_leftovers_of_a_killed_writer_are_found_and_only_they(tmp_path: Path) -> None:
    target = tmp_path / "clip.mp4"
    left = AtomicFile(target, suffix=".mp4")  # a writer killed before publish or discard
    assert left.tmp is not None and left.tmp.exists()
    other = AtomicFile(tmp_path / "clip.mp4.bak")  # another file's, kept
    mine = tmp_path / ".clip.mp4.settings"  # not a temporary file's name, kept
    mine.write_text("x")
    backup = tmp_path / ".clip.mp4.20240101.bak"  # eight characters, but a suffix of its own
    backup.write_text("x")
    assert files.remove_leftovers(target) == [left.tmp]
    assert not left.tmp.exists() and other.tmp is not None and other.tmp.exists()
    assert mine.exists() and backup.exists()
    assert files.remove_leftovers(tmp_path / "none.png") == []


# 255 bytes in all: 251 ASCII bytes, or 83 three-byte CJK characters + ".jpg" (253 bytes)
LONG_NAMES = ["a" * 251 + ".jpg", "夜" * 83 + ".jpg"]


@pytest.mark.parametrize("name", LONG_NAMES, ids=["ascii", "utf8"])
def test_a_name_near_name_max_is_written(tmp_path: Path, name: str) -> None:
    assert len(os.fsencode(name)) <= files._name_max(tmp_path) == 255
    seen: list[Path] = []

    def write(tmp: Path) -> None:
        seen.append(tmp)
        tmp.write_bytes(b"x")

    target = atomic_write(tmp_path / name, write, suffix=".jpg")  # was: File name too long
    assert target.read_bytes() == b"x"
    tmp = seen[0]
    # hidden, the format's suffix kept (tifffile and pypng go by it), within NAME_MAX
    assert tmp.name.startswith(".") and tmp.name.endswith(".jpg")
    assert len(os.fsencode(tmp.name)) <= 255
    assert [p.name for p in tmp_path.iterdir()] == [name]


def test_long_names_temporaries_are_distinct_and_their_leftovers_found(tmp_path: Path) -> None:
    one, two = tmp_path / ("b" * 250 + "1.png"), tmp_path / ("b" * 250 + "2.png")
    left_one, left_two = AtomicFile(one, suffix=".png"), AtomicFile(two, suffix=".png")
    assert left_one.tmp is not None and left_two.tmp is not None
    # the shortened stems differ although the names share their first 250 bytes
    assert left_one.tmp.name[:-13] != left_two.tmp.name[:-13]
    assert files.remove_leftovers(one) == [left_one.tmp]
    assert left_two.tmp.exists()


def test_temp_name_parts() -> None:
    assert files.temp_name_parts("clip.mp4", ".mp4") == (".clip.mp4.", ".mp4")
    prefix, suffix = files.temp_name_parts("é" * 127 + ".tif", ".tif")  # 258 bytes
    assert suffix == ".tif" and prefix.endswith(".") and "~" in prefix
    assert len(os.fsencode(prefix)) + 8 + len(suffix) == 255  # cut on a character boundary
    prefix, suffix = files.temp_name_parts("x" + "." + "s" * 250, "." + "s" * 250)
    assert suffix == ".tmp" and len(os.fsencode(prefix)) + 8 + 4 <= 255


def test_check_writable_tries_each_folder_once_with_a_real_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # os.access says yes to root in /sys or on a read-only mount: the run found out only when
    # it wrote, after minutes of inference
    from sllen.runtime.errors import WriteError

    tried: list[Path] = []
    mkstemp = files.tempfile.mkstemp

    def trial(**kw):
        tried.append(Path(kw["dir"]))
        if Path(kw["dir"]).name == "ro":
            raise PermissionError(13, "Permission denied")
        return mkstemp(**kw)

    monkeypatch.setattr(files.tempfile, "mkstemp", trial)
    (tmp_path / "ro").mkdir()
    many = [tmp_path / f"{i}.png" for i in range(1000)]
    new = [tmp_path / "new" / "a" / "x.png", tmp_path / "new" / "b" / "y.png"]  # not there yet
    files.check_writable([*many, *new])
    assert tried == [tmp_path]  # one trial for the folder, its missing subfolders included
    assert list(tmp_path.iterdir()) == [tmp_path / "ro"]  # the trial file went again
    with pytest.raises(WriteError, match=r"ro/a\.png: cannot write \(.*ro is not writable: Perm"):
        files.check_writable([tmp_path / "ok.png", tmp_path / "ro" / "a.png"])
