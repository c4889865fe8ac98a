"""An sllen-export run's files, staged in a hidden folder inside ``--out`` until the run is done.

Every file a run writes (ONNX files, ranges, engines and their metadata, the plugin graph,
the timing cache, parity data, the report) goes first into ``OUT/.sllen-export-XXXXXXXX``,
on the same file system as its final place. Only a finished run moves them into ``OUT``
(renames: nothing is copied), the report last, with Ctrl-C and SIGTERM ignored during those
few renames and a failed rename undoing the ones before it; any failure or interruption
before them removes the staging folder instead. So ``OUT`` holds
the old run's files and report or the new run's, never a mix: an interrupted re-export once
left a new FP32 file beside the old FP16 file and the old report that vouched for both, and
an interrupted first export an unchecked FP32 file under its final name.

Files record paths (an engine's ``onnx_file``, parity's replay commands, the report's
``path``): what was written under the staging folder is rewritten to name ``OUT`` when the
files move, and so are the messages of errors raised while staged. A run killed outright
(SIGKILL, a power cut) leaves its staging folder behind: each run holds an advisory lock on a
file in its own (released by the kernel however the process ends) that names its host, and
the next run on that host into the same ``OUT`` removes the staging folders whose lock it can
take, never a live run's. Without flock (Windows, a file system mounted without locks) such
a folder stays, and is safe to delete.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

from sllen.runtime.errors import InputError, SllenError, WriteError
from sllen.runtime.signals import restore_handler

from .outputs import REPORTS, write_report

STAGING_PREFIX = ".sllen-export-"
_LOCK = ".lock"  # in a staging folder: held while its run lives; never moved into OUT
_TEXT_WITH_PATHS = 1 << 20  # the largest staged JSON that may name files (metadata, reports)


class StagedOutput:
    """``with StagedOutput(out) as stage:`` write into ``stage.folder``, then
    ``stage.commit(report, target)``; leaving the block any other way removes what was staged
    (and ``out`` is made here, so a caller removes it when the run made it)."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.folder = out  # until __enter__ makes the staging folder
        self._lock: int | None = None

    def __enter__(self) -> StagedOutput:
        if self.out.is_symlink() and not self.out.exists():  # mkdir said only "File exists"
            raise InputError(
                f"--out {self.out}: a symbolic link to {os.readlink(self.out)}, "
                "which does not exist"
            )
        try:
            self.out.mkdir(parents=True, exist_ok=True)
            _remove_abandoned(self.out)
            self.folder = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=self.out))
            self._lock = _hold(self.folder / _LOCK)
        except OSError as e:  # --out /proc/x: "[Errno 2] ... '/proc/x'" named no option
            if self.folder != self.out:
                shutil.rmtree(self.folder, ignore_errors=True)
            raise WriteError(f"--out {self.out}", e.errno, e.strerror or str(e)) from None
        seps = {os.sep, (os.altsep or os.sep)}
        name = re.escape(self.folder.name)
        # the staging folder as a path component: dropped, so a path under it names out
        self._component = re.compile(
            "|".join(
                [rf"{re.escape(s)}{name}(?=$|[{re.escape(''.join(seps))}\s'\"])" for s in seps]
                + [rf"(?:^|(?<=[\s'\"=])){name}{re.escape(s)}" for s in seps]
            )
        )
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if exc is not None:
                self._public_error(exc)
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)
            if self._lock is not None:
                os.close(self._lock)
                self._lock = None

    # ------------------------------------------------------------------ paths

    def public(self, value: Any) -> Any:
        """``value`` (text, a path, or a report of dicts and lists) with paths under the
        staging folder turned into the same paths under ``out``."""
        if isinstance(value, str):
            return self._component.sub("", value) if self.folder.name in value else value
        if isinstance(value, Path):
            return Path(self.public(str(value)))
        if isinstance(value, dict):
            return {k: self.public(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self.public(v) for v in value)
        return value

    def _public_error(self, exc: BaseException) -> None:
        """An error raised while staged names ``out``, not the staging folder; an OSError
        of a write into the staging folder becomes one line naming the file (WriteError)."""
        exc.args = tuple(self.public(a) for a in exc.args)
        if not isinstance(exc, OSError):
            return
        staged = isinstance(exc.filename, str) and self.folder.name in exc.filename
        for attr in ("filename", "filename2"):
            if isinstance(getattr(exc, attr), str):
                setattr(exc, attr, self.public(getattr(exc, attr)))
        if staged and exc.errno is not None and not isinstance(exc, SllenError):
            path = Path(exc.filename)
            # a hidden temporary file of the atomic writer: name the folder it was for
            shown = path.parent if path.name.startswith(".") else path
            raise WriteError(shown, exc.errno, exc.strerror or str(exc)) from None

    # ------------------------------------------------------------------ commit

    def commit(self, report: dict[str, Any], target: str) -> dict[str, Any]:
        """Move the staged files into ``out`` and write ``report`` (``target``'s report, an
        engine build's merged into the one there) last; returns the report as written."""
        from sllen.calib.graph import naming_writes

        report = self.public(report)
        for path in self.folder.rglob("*.json"):  # engine metadata, parity reports
            if path.stat().st_size > _TEXT_WITH_PATHS:  # parity's saved tensors: no paths
                continue
            text = path.read_text(encoding="utf-8")
            if self.folder.name in text:
                with naming_writes(path):
                    path.write_text(self.public(text), encoding="utf-8")

        name = REPORTS[target]
        with naming_writes(self.folder / name):  # staged too: a full disk fails before a move
            write_report(self.out, report, target, into=self.folder)
        stale = self._replaced_names(report)
        with _signals_held():  # a few renames: all of them, or (on any failure) none
            _move_all(self.folder, self.out, last=name)
            for old in stale:
                (self.out / old).unlink(missing_ok=True)
            shutil.rmtree(self.folder, ignore_errors=True)  # empty but for the old files
        return report

    @staticmethod
    def _replaced_names(report: dict[str, Any]) -> list[str]:
        """The other name of each precision's file: a file over its budget replaces an older
        one under the normal name (which would pass for it), a file within its budget an
        older ``*.over-budget.onnx`` (which is not this model)."""
        files = report.get("files", {})
        if not files:  # an engine build: engines keep their names
            return []
        from sllen.calib.int8 import over_budget_path

        names = []
        for f in files.values():
            written = Path(f["file"])
            if written.name.endswith(".over-budget.onnx"):
                names.append(written.name.replace(".over-budget.onnx", ".onnx"))
            else:
                names.append(over_budget_path(written).name)
        return names


def _move_all(staged: Path, out: Path, *, last: str) -> None:
    """Rename every staged file to its place under ``out`` (``last``, the report, at the end;
    staged folders merge into those there: parity/<engine>/ beside another engine's). What a
    file replaces is first moved aside into the staging folder, so a rename that fails (a
    folder the user cannot write into, a subfolder that links to another file system) puts
    every file moved so far back: ``out`` keeps the old export, never a mix."""
    files = sorted(
        (p for p in staged.rglob("*") if not p.is_dir() and p != staged / _LOCK),
        key=lambda p: (p.relative_to(staged).as_posix() == last, p.as_posix()),
    )
    aside = Path(tempfile.mkdtemp(prefix=".replaced-", dir=staged))
    done: list[tuple[Path, Path, Path | None]] = []  # (staged, placed, the old file aside)
    made: list[Path] = []  # folders created under out
    try:
        for src in files:
            dst = out / src.relative_to(staged)
            for folder in reversed(dst.relative_to(out).parents[:-1]):
                if not (out / folder).is_dir():
                    (out / folder).mkdir()
                    made.append(out / folder)
            old = None
            if dst.exists() or dst.is_symlink():  # a file, or a folder where a file goes
                old = aside / str(len(done))
                os.replace(dst, old)
            done.append((src, dst, old))
            os.replace(src, dst)
    except BaseException:
        for src, dst, old in reversed(done):
            with contextlib.suppress(OSError):
                if not src.exists():
                    os.replace(dst, src)
                if old is not None:
                    os.replace(old, dst)
        for folder in reversed(made):
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise


def _owner() -> str:
    return f"{socket.gethostname()} {os.getpid()}"


def _hold(path: Path) -> int | None:
    """Hold an exclusive advisory lock on `path` while the returned descriptor is open, the
    file naming this host and process. None where there is no flock (Windows, a file system
    mounted without locks): no cleanup of abandoned folders there, and the export goes on.
    The lock is taken on a temporary name and then renamed, so `path` never exists unlocked
    (a second run starting at that instant would have taken it for abandoned)."""
    try:
        import fcntl
    except ImportError:
        return None
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a fresh file: nobody else holds it
        os.write(fd, _owner().encode())
        os.replace(tmp, path)
    except OSError:  # ENOSYS, ENOLCK, EOPNOTSUPP: no locks on this file system
        os.close(fd)
        tmp.unlink(missing_ok=True)
        return None
    return fd


def _remove_abandoned(out: Path) -> None:
    """Remove the staging folders in `out` of runs on this host that ended without cleaning
    up (SIGKILL, a power cut): those whose lock file names this host and can be locked. A
    live run holds its lock; a folder without one (its run just made it, or a file system
    without locks) and a folder of another host (NFS may lock per host only) are left alone."""
    try:
        import fcntl
    except ImportError:
        return
    host = socket.gethostname()
    for folder in out.glob(STAGING_PREFIX + "*"):
        if folder.is_symlink() or not (folder / _LOCK).is_file():
            continue
        try:
            fd = os.open(folder / _LOCK, os.O_RDWR)
        except OSError:
            continue
        try:
            if os.read(fd, 512).decode(errors="replace").rpartition(" ")[0] != host:
                continue
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # a live run's
            continue
        else:
            shutil.rmtree(folder, ignore_errors=True)
        finally:
            os.close(fd)


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Ctrl-C and SIGTERM are ignored until the block ends (main thread only: signal
    handlers)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held = (signal.SIGINT, signal.SIGTERM)
    previous = {s: signal.signal(s, lambda _n, _f: None) for s in held}
    try:
        yield
    except BaseException:
        for s, handler in previous.items():
            restore_handler(s, handler)
        raise  # the block failed and undid itself: its error, not the held signal, is news
    for s, handler in previous.items():
        restore_handler(s, handler)
    # The block finished: the export is in place, and what is left (its summary and budget
    # verdict) takes milliseconds. Raising the held signal now exited 130, "interrupted", with
    # the complete new export already in --out; so the signal only cuts that summary short
    # if it comes again.
