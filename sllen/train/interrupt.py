"""Ctrl-C or SIGTERM during training: finish the step, save a checkpoint, then stop.

Interrupting mid-step would leave the model half-updated (the SS stage stepped, the LLE stage
not), and stopping without a save threw away everything since the last checkpoint (up to
``--save-every`` steps: minutes to hours on a CPU). Job schedulers (SLURM, docker stop,
systemd, Kubernetes) stop a job with SIGTERM, so it stops a run as Ctrl-C does; left at its
default it killed the process (exit 143) with nothing saved.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sllen.runtime.signals import restore_handler, sigterm_as_ctrl_c

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """The run stopped at a signal after saving its checkpoint and saying so: the command line
    exits 130 without a second "interrupted" line."""


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()  # signal.signal needs it


@contextmanager
def sigterm_interrupts(enabled: bool) -> Iterator[None]:
    """Outside the training steps (set-up, the first log lines) SIGTERM stops as Ctrl-C does
    there: a KeyboardInterrupt, nothing written yet. The previous handler comes back after."""
    if not (enabled and _main_thread()):
        yield
        return
    with sigterm_as_ctrl_c():
        yield


# A repeat within this many seconds is the same stop: SLURM's scancel signals every process
# of a job, torchrun and its ranks alike, and torchrun then forwards its copy to the ranks.
REPEAT_S = 2.0


def launched_by_a_manager() -> bool:
    """Under torchrun (any process count) or a SLURM job, where one stop can arrive twice."""
    return any(k in os.environ for k in ("TORCHELASTIC_RUN_ID", "SLURM_JOB_ID"))


class StopAfterStep:
    """Ctrl-C or SIGTERM during training asks to stop after the current step (which then saves
    a checkpoint); a second one, given later, stops at once. Main thread only (signal.signal);
    under torchrun every rank listens and they agree on the step (sllen.train.ddp)."""

    def __init__(self, enabled: bool, repeat_s: float = REPEAT_S) -> None:
        self.enabled = enabled and _main_thread()
        self.repeat_s = repeat_s  # 0 in a plain process: a second Ctrl-C is meant
        self.asked = False
        self.signal_name = ""  # of the first signal: what the stop message names
        self._asked_at = 0.0
        self._previous: dict[int, Any] = {}

    def _handler(self, signum: int, frame: Any) -> None:
        now = time.monotonic()
        if self.asked:
            if now - self._asked_at >= self.repeat_s:
                raise KeyboardInterrupt
            return
        self.asked, self._asked_at = True, now
        self.signal_name = signal.Signals(signum).name

    def __enter__(self) -> StopAfterStep:
        if self.enabled:
            for sig in STOP_SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handler)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, previous in self._previous.items():
            restore_handler(sig, previous)
        self._previous = {}
