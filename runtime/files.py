"""Atomic file writes: nothing half-written is ever left under a final name.

Every file sllen writes (weights, checkpoints, ONNX files, engines and their metadata, reports,
images) goes through :func:`atomic_write`: the content goes to a hidden temporary file in the
destination folder, which is renamed over the destination only when complete (a rename within
one folder is atomic) and removed on any failure or Ctrl-C. Standard library only, so the
runtime, sllen.calib and the rest of sllen share it (sllen.fileio re-exports it).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def umask() -> int:
    """The process umask (reading it means setting it; it is put back at once)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(
    path: str | os.PathLike[str], write: Callable[[Path], None], *, suffix: str = ".tmp"
) -> Path:
    """Call ``write(tmp)`` to fill a temporary file, then rename it to ``path``.

    ``suffix``: the temporary file's suffix, for writers that pick the format from it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o666 & ~umask())  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes | bytearray | memoryview) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """UTF-8 text, atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))
