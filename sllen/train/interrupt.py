"""Ctrl-C during training: finish the step, save a checkpoint, then stop.

Interrupting mid-step would leave the model half-updated (the SS stage stepped, the LLE stage
not), and stopping without a save threw away everything since the last checkpoint (up to
``--save-every`` steps: minutes to hours on a CPU).
"""

from __future__ import annotations

import signal
import threading
from typing import Any


class StopAfterStep:
    """Ctrl-C during training asks to stop after the current step (which then saves a
    checkpoint); a second Ctrl-C stops at once. Only in the main thread of a single process:
    distributed ranks stop as torchrun tells them."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled and threading.current_thread() is threading.main_thread()
        self.asked = False
        self._previous: Any = None

    def _handler(self, signum: int, frame: Any) -> None:
        if self.asked:
            raise KeyboardInterrupt
        self.asked = True

    def __enter__(self) -> StopAfterStep:
        if self.enabled:
            self._previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            signal.signal(signal.SIGINT, self._previous)
