"""Atomic file writes: nothing half-written is ever left under a final name.

Every file sllen writes (weights, checkpoints, ONNX files, engines and their metadata, reports,
images, videos) goes through :class:`AtomicFile`, mostly by way of :func:`atomic_write`: the
content goes to a hidden temporary file in the destination folder, which is renamed over the
destination only when complete (a rename within one folder is atomic) and removed on any
failure or Ctrl-C. The published file gets the usual permissions (0666 less the umask), not
mkstemp's 0600. Standard library only: the one atomic writer of the runtime, sllen.calib,
sllen.export and the rest of sllen (bytes, text, JSON, or any writer given a temporary path).
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

_PROC_STATUS = "/proc/self/status"


def _umask_from_proc() -> int | None:
    """The umask as Linux reports it (the "Umask:" line, Linux 4.7+), or None."""
    try:
        with open(_PROC_STATUS, encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return None


def _umask_by_setting() -> int:
    # The only portable way to read the umask is to set it and put it back, which changes it
    # for the whole process for a moment: done once, at import, before threads write files.
    mask = os.umask(0)
    os.umask(mask)
    return mask


_proc_mask = _umask_from_proc()
_PROC_WORKS = _proc_mask is not None
_IMPORT_UMASK: int = _proc_mask if _proc_mask is not None else _umask_by_setting()
del _proc_mask


def umask() -> int:
    """The process umask, read without changing it (safe while other threads create files).

    From /proc/self/status on Linux (so a later ``os.umask`` call is seen); elsewhere the
    value read once when this module was imported.
    """
    if _PROC_WORKS:
        mask = _umask_from_proc()
        if mask is not None:
            return mask
    return _IMPORT_UMASK


_RANDOM = 8  # the random characters mkstemp puts between its prefix and suffix
_DIGEST = 8  # hex digits of the full name's hash in a shortened temporary name
NAME_MAX = 255  # bytes in one file name (ext4, XFS, Btrfs, APFS, NTFS): where pathconf cannot say


def _name_max(folder: Path) -> int:
    """The longest file name ``folder``'s file system takes, in bytes (at most 255)."""
    try:
        n = os.pathconf(folder, "PC_NAME_MAX")
    except (AttributeError, OSError, ValueError):  # Windows has no pathconf
        return NAME_MAX
    return min(n, NAME_MAX) if n > 0 else NAME_MAX


def _nbytes(text: str) -> int:
    return len(os.fsencode(text))  # the file system's bytes: a CJK character is 3 in UTF-8


def temp_name_parts(name: str, suffix: str, name_max: int = NAME_MAX) -> tuple[str, str]:
    """(mkstemp prefix, suffix) of a temporary file for ``name`` that fits ``name_max``
    bytes: ``.NAME.`` where it fits, else ``.NAME-CUT~HASH.`` (the name cut at a character
    boundary, then 8 hex digits of the whole name's hash, so files that share a long start
    have distinct temporary names). The suffix stays (tifffile and pypng go by it) unless
    it alone leaves no room, when it becomes ``.tmp``."""
    room = name_max - 2 - _RANDOM  # the two dots and mkstemp's random characters
    if room - _nbytes(suffix) < 1 + 1 + _DIGEST:  # no room for one character, "~" and hash
        suffix = ".tmp"
    room -= _nbytes(suffix)
    if _nbytes(name) <= room:
        return f".{name}.", suffix
    keep = room - 1 - _DIGEST
    cut = name
    while _nbytes(cut) > keep:
        cut = cut[:-1]
    digest = hashlib.sha1(os.fsencode(name)).hexdigest()[:_DIGEST]
    return f".{cut}~{digest}.", suffix


def remove_leftovers(path: str | os.PathLike[str]) -> list[Path]:
    """Remove the temporary files an AtomicFile for ``path`` left behind when its process was
    killed (SIGKILL, a power cut: nothing ran to remove them): ``.NAME.XXXXXXXX.suffix``
    beside ``path`` (``.NAME-CUT~HASH.XXXXXXXX.suffix`` for a long name). For a resumed run,
    which redoes ``path``; returns what was removed."""
    path = Path(path)
    name_max = _name_max(path.parent)
    removed: list[Path] = []
    # mkstemp's eight characters, then the suffix AtomicFile is given: ".tmp" (its default) or
    # the file's own; a user's ".clip.mp4.20240101.bak" does not match
    for given in dict.fromkeys(s for s in (".tmp", path.suffix) if s):
        prefix, suffix = temp_name_parts(path.name, given, name_max)
        pattern = re.compile(rf"{re.escape(prefix)}[a-z0-9_]{{{_RANDOM}}}{re.escape(suffix)}")
        try:
            candidates = list(path.parent.glob(f"{glob.escape(prefix)}*"))
        except OSError:
            return removed
        for leftover in candidates:
            if pattern.fullmatch(leftover.name) and leftover.is_file():
                with contextlib.suppress(OSError):
                    leftover.unlink()
                    removed.append(leftover)
    return removed


class AtomicFile:
    """A temporary file beside ``path`` for a writer that needs a file name (a library that
    opens the file itself), published under ``path`` when complete.

    ``with AtomicFile(path) as tmp: write(tmp)`` renames ``tmp`` to ``path`` when the block
    ends cleanly and removes it on any exception (Ctrl-C included). A writer whose life spans
    several calls keeps the object and calls :meth:`publish` or :meth:`discard` itself.
    ``suffix`` is the temporary file's suffix, for writers that pick the format from it.
    Creating the object creates the destination folder and an empty temporary file; an
    ``OSError`` there means the destination cannot be written.
    """

    def __init__(self, path: str | os.PathLike[str], *, suffix: str = ".tmp") -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # ".NAME." + 8 random characters + suffix would pass NAME_MAX for a name of 241-255
        # bytes (a name that itself fits): such a name's temporary file gets a shortened stem
        prefix, suffix = temp_name_parts(self.path.name, suffix, _name_max(self.path.parent))
        fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=self.path.parent)
        os.close(fd)
        self.tmp: Path | None = Path(tmp)

    def publish(self) -> Path:
        """Give the temporary file the usual permissions and rename it to ``path``; on
        failure it is removed. Returns ``path``."""
        if self.tmp is None:
            raise RuntimeError(f"{self.path}: the temporary file was already published or removed")
        try:
            os.chmod(self.tmp, 0o666 & ~umask())  # mkstemp makes 0600
            os.replace(self.tmp, self.path)
        except BaseException:
            self.discard()
            raise
        self.tmp = None
        return self.path

    def discard(self) -> None:
        """Remove the temporary file (nothing happens when already published or removed)."""
        if self.tmp is not None:
            self.tmp.unlink(missing_ok=True)
            self.tmp = None

    def __enter__(self) -> Path:
        assert self.tmp is not None
        return self.tmp

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.publish()
        else:
            self.discard()


def atomic_write(
    path: str | os.PathLike[str], write: Callable[[Path], object], *, suffix: str = ".tmp"
) -> Path:
    """Call ``write(tmp)`` to fill a temporary file, then rename it to ``path``.

    ``suffix``: the temporary file's suffix, for writers that pick the format from it.
    """
    target = AtomicFile(path, suffix=suffix)
    with target as tmp:
        write(tmp)
    return target.path


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes | bytearray | memoryview) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """UTF-8 text, atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike[str], data: Any, **dump_kwargs: Any) -> Path:
    """JSON (indent 2 unless told otherwise), atomically."""
    text = json.dumps(data, **{"indent": 2, **dump_kwargs})
    return atomic_write_text(path, text + "\n")


def check_output_file(path: str | os.PathLike[str], option: str) -> Path:
    """Say in one line, before any work, why ``path`` (given as ``option``) could not be
    written: it is a folder, a file stands where a folder must be, or the nearest existing
    folder is not writable. Missing folders are fine (they are made when it is written)."""
    from sllen.runtime.errors import InputError

    path = Path(path)
    if path.is_dir():
        raise InputError(f"{option} {path}: that is a folder; name a file")
    _check_nearest_folder(path, path.parent, option)
    return path


def _check_nearest_folder(path: Path, start: Path, option: str) -> None:
    """The nearest existing folder at or above ``start`` must be a folder this user can
    create entries in (write and search permission)."""
    from sllen.runtime.errors import InputError

    nearest = _nearest_existing(start)
    if not nearest.is_dir():
        raise InputError(f"{option} {path}: {nearest} is a file, not a folder")
    if not os.access(nearest, os.W_OK | os.X_OK):
        raise InputError(f"{option} {path}: {nearest} is not writable")


def check_output_folder(path: str | os.PathLike[str], option: str) -> Path:
    """As :func:`check_output_file`, for a folder: say before any work why ``path`` could not
    be made or written into (a file stands there or above it, or it is not writable)."""
    from sllen.runtime.errors import InputError

    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError(f"{option} {path}: that is a file; name a folder")
    _check_nearest_folder(path, path, option)
    return path


def check_writable(paths: Iterable[str | os.PathLike[str]]) -> None:
    """Say in one line, before any work, that a file in ``paths`` could not be written: the
    nearest existing folder of each is tried with a real temporary file (``os.access``
    answers yes to root on a read-only mount or in /sys), once per folder, so a run of
    thousands of files into one folder costs one trial. Missing folders are fine (writers
    make them); raises WriteError naming the first file of the folder that refused."""
    parents: set[Path] = set()
    tried: set[Path] = set()
    for path in map(Path, paths):
        if path.parent in parents:
            continue
        parents.add(path.parent)
        folder = _nearest_existing(path.parent)
        if folder not in tried:
            tried.add(folder)
            _trial_write(path, folder)


def _nearest_existing(start: Path) -> Path:
    while not start.exists() and start != start.parent:
        start = start.parent
    return start


def _trial_write(path: Path, folder: Path) -> None:
    """Create and remove a temporary file in ``folder`` (for ``path``), or raise WriteError.
    Only the creation decides: a folder that takes files but refuses deletes (append-only)
    is not refused for that, and the trial file is removed where it can be."""
    from sllen.runtime.errors import WriteError

    try:
        fd, tmp = tempfile.mkstemp(prefix=".sllen-write-check.", dir=folder)
    except OSError as e:
        raise WriteError(path, e.errno, f"{folder} is not writable: {e.strerror or e}") from None
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(tmp)


def topmost_missing(folder: str | os.PathLike[str]) -> Path | None:
    """The topmost folder that ``mkdir -p folder`` would create (None: ``folder`` exists)."""
    path = Path(folder)
    if path.exists():
        return None
    while not path.parent.exists() and path.parent != path:
        path = path.parent
    return path


def make_folder(folder: str | os.PathLike[str]) -> Path | None:
    """``mkdir -p folder``; returns the topmost folder this call created (None: it existed)."""
    top = topmost_missing(folder)
    with removed_if_left_empty(top):  # a mkdir that fails half-way leaves no parents behind
        Path(folder).mkdir(parents=True, exist_ok=True)
    return top


@contextlib.contextmanager
def removed_if_left_empty(created: Path | None) -> Iterator[None]:
    """If the block fails (an exception, Ctrl-C, a non-zero exit), remove the folders under
    ``created`` (from :func:`make_folder`) that hold no file, ``created`` included: a failed
    command leaves no empty output folder behind. Files written are always kept."""
    try:
        yield
    except BaseException as e:
        if created is not None and not (isinstance(e, SystemExit) and e.code in (0, None)):
            for dirpath, _dirs, _files in os.walk(created, topdown=False):
                with contextlib.suppress(OSError):
                    os.rmdir(dirpath)  # refuses a folder that still holds anything
        raise
