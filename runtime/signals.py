"""SIGTERM as Ctrl-C, for every long-running command.

Job schedulers and service managers (docker stop, systemd, SLURM, Kubernetes) stop a process
with SIGTERM; left at its default it kills Python at once, so a file being written stays
half-written and a training run loses everything since its last checkpoint. Raised as a
KeyboardInterrupt instead, it takes the path Ctrl-C takes: cleanup, saving, exit 130.
Standard library only (the runtime is the bottom layer); main thread only (signal.signal).
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def sigterm_as_ctrl_c() -> Iterator[None]:
    """Inside the block SIGTERM raises KeyboardInterrupt; the previous handler comes back."""

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        restore_handler(signal.SIGTERM, previous)


def restore_handler(sig: int, previous: Any) -> None:
    """Put back what ``signal.signal`` returned; None, a handler installed outside Python
    (which it cannot put back), becomes the default."""
    signal.signal(sig, signal.SIG_DFL if previous is None else previous)
