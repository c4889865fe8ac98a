"""sllen-run never replaces a file without being told: an output that exists may be the user's
own photo (``-o mine.jpg``) or another input's result (``clip.avi`` and later ``clip.webm``
both give ``clip.mp4``), and sllen cannot tell those from its own earlier results. As ffmpeg
does: ask on a terminal, else stop before any work; ``--overwrite`` (``-y``) replaces,
``--resume`` skips."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path

from sllen.runtime.errors import InputError

# the one line a script sees, and the hint after a "no" on a terminal
_HINT = "--overwrite replaces, --resume skips"


def existing_outputs(outputs: Iterable[Path]) -> list[Path]:
    """The outputs that are there already (a folder in a file's place counts: writing would
    fail on it after the work)."""
    return [path for path in outputs if path.exists() or path.is_symlink()]


def confirm_replace(existing: list[Path], overwrite: bool) -> None:
    """Return when the run may replace ``existing``; else raise InputError (nothing written)."""
    if not existing or overwrite:
        return
    what = (
        f"{existing[0]} exists"
        if len(existing) == 1
        else f"{len(existing)} outputs exist ({existing[0]}, ...)"
    )
    if _interactive():
        import typer

        if typer.confirm(f"{what}: replace?", default=False, err=True):
            return
        raise InputError(f"nothing replaced ({_HINT})")
    raise InputError(f"{what}: {_HINT}")


def _interactive() -> bool:
    """A person can answer: both the question's stream and the answer's are a terminal."""
    try:
        return sys.stdin.isatty() and sys.stderr.isatty()
    except (AttributeError, ValueError):  # closed or replaced streams
        return False
