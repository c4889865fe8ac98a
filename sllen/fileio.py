"""Atomic file writes for sllen: the runtime's writer (sllen.runtime.files) plus JSON.

Nothing half-written is ever left under a final name: see sllen.runtime.files. Standard
library only, so sllen.calib can use it too.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from sllen.runtime.files import atomic_write, atomic_write_bytes

__all__ = ["atomic_write", "atomic_write_bytes", "atomic_write_json"]


def atomic_write_json(path: str | os.PathLike, data: Any, **dump_kwargs: Any) -> Path:
    text = json.dumps(data, **{"indent": 2, **dump_kwargs})
    return atomic_write(path, lambda tmp: tmp.write_text(text + "\n"))
