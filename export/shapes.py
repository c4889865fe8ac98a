"""Moved to :mod:`sllen.runtime.shapes` (the runtime checks shapes without torch).

This name stays so ``sllen.export.shapes`` imports keep working; the objects are the same.
"""

from sllen.runtime.shapes import *  # noqa: F403
