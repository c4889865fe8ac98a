"""Moved to :mod:`sllen.runtime.engine_meta` (the runtime reads engine metadata without torch).

This name stays so ``sllen.export.engine_meta`` imports keep working; the objects are the same
(``sllen.export.engine_meta.EngineIncompatibleError is sllen.runtime.engine_meta.
EngineIncompatibleError``).
"""

from sllen.runtime.engine_meta import *  # noqa: F403
