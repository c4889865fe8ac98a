"""Default weights that ship inside the package (see README.md in this folder once present)."""

from __future__ import annotations

from pathlib import Path

from sllen.runtime.errors import MissingFileError

DEFAULT_NAME = "sllen-edge.safetensors"


def default_weights() -> Path:
    """Path of the bundled default model; a clear error if this build has none."""
    path = Path(__file__).with_name(DEFAULT_NAME)
    if not path.is_file():
        raise MissingFileError(
            "this sllen build has no bundled default weights yet: pass --weights FILE "
            "(train one with sllen-train)"
        )
    return path
