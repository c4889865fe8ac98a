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
_LIVE_HINT = "--overwrite replaces it"  # a live recording cannot resume


def existing_outputs(outputs: Iterable[Path], segmentation: bool = False) -> list[Path]:
    """The outputs that are there already, with their semantic maps' (``--segmentation``)."""
    paths = list(outputs)
    if segmentation:
        from sllen.runtime.run import segmentation_path

        paths += [segmentation_path(path) for path in paths]
    return [path for path in paths if path.exists() or path.is_symlink()]


def confirm_replace(existing: list[Path], overwrite: bool, live: bool = False) -> None:
    """Return when the run may replace ``existing``; else raise InputError (nothing written).
    A Ctrl-C at the question is a Ctrl-C (exit 130), end of input a "no"."""
    if not existing or overwrite:
        return
    what = (
        f"{existing[0]} exists"
        if len(existing) == 1
        else f"{len(existing)} outputs exist ({existing[0]}, ...)"
    )
    hint = _LIVE_HINT if live else _HINT
    if _interactive():
        sys.stderr.write(f"{what}: replace? [y/N] ")
        sys.stderr.flush()
        answer = sys.stdin.readline()  # "" at end of input (Ctrl-D)
        if answer.strip().lower() in ("y", "yes"):
            return
        if not answer:
            sys.stderr.write("\n")  # the error goes on a line of its own
        raise InputError(f"nothing replaced ({hint})")
    raise InputError(f"{what}: {hint}")


def _interactive() -> bool:
    """A person can answer: both the question's stream and the answer's are a terminal."""
    try:
        return sys.stdin.isatty() and sys.stderr.isatty()
    except (AttributeError, ValueError):  # closed or replaced streams
        return False
