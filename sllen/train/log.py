"""The training log (log.csv): its columns, and a resumed run's rows after its checkpoint; the
progress shown while training (a bar on a terminal, plain lines in a log file)."""

from __future__ import annotations

import csv
import time
from pathlib import Path
from typing import IO, Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)

from sllen.runtime.files import atomic_write_text

LOG_FIELDS = [
    "step",
    "time_s",
    "lr",
    "ss_ce",
    "lle_total",
    "smooth_l1",
    "perceptual",
    "distillation",
    "illumination_tv",
    "gradient",
    "ssim",  # 1 - SSIM of the batch, when --w-ssim > 0 (not in Eq. 11)
    "exposure",  # per-channel mean L1, when --w-exposure > 0 (not in Eq. 11)
    "spread",  # brightness spread over the batch, when --w-spread > 0 (not in Eq. 11)
    "val_psnr",
    "val_ssim",
    # The same after GT-mean rescaling (sllen.metrics.gt_mean): on real pairs plain PSNR swings
    # with the exposure the model guesses, this one follows the restoration.
    "val_psnr_gm",
    "val_ssim_gm",
]


def log_fields(path: Path) -> list[str]:
    """The columns of an existing log (a resumed run appends under the header it has, so an
    older log without the newer columns stays aligned); LOG_FIELDS for a new one."""
    with open(path, newline="") as f:
        header = next(csv.reader(f), None)
    return header if header and header[0] == "step" else LOG_FIELDS


def truncate_log(path: Path, step: int) -> None:
    """Drop the rows after ``step`` (the checkpoint a run resumes from): a run stopped between
    checkpoints logged steps that the resumed run trains again, and the curve must not hold
    both."""
    lines = path.read_text().splitlines(keepends=True)
    kept = lines[:1] + [
        line
        for line in lines[1:]
        if line.split(",", 1)[0].isdigit() and int(line.split(",", 1)[0]) <= step
    ]
    if len(kept) != len(lines):
        atomic_write_text(path, "".join(kept))


def open_log(path: Path, resume: bool, step: int) -> tuple[IO[str], csv.DictWriter]:
    """The log, open for the run's rows: a resumed run's goes on after its checkpoint's step,
    under the header it has; any other run's starts anew (a log left without a checkpoint by
    a run that stopped before its first save is replaced)."""
    new = not (resume and path.exists())
    if not new:
        truncate_log(path, step)
    f = open(path, "w" if new else "a", newline="")  # noqa: SIM115 - the caller closes it
    writer = csv.DictWriter(
        f, fieldnames=LOG_FIELDS if new else log_fields(path), extrasaction="ignore"
    )
    if new:
        writer.writeheader()
    return f, writer


def progress_bar(console: Console, quiet: bool) -> Progress | StepLines:
    """The run's bar: steps done of all, time left, and the last losses in its info field;
    where the console is neither a terminal nor a notebook (rich's own widget), plain lines."""
    if not (console.is_terminal or console.is_jupyter or quiet):
        return StepLines(console)
    return Progress(
        TextColumn("[bold]train"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[info]}"),
        console=console,
        disable=quiet,
        transient=False,
    )


class StepLines:
    """Progress for a log file or a pipe (nohup, a job scheduler), as rich's Progress is driven
    (add_task, update): rich draws no bar there and printed one line when the run ended, after
    its last message ("interrupted ...: checkpoint saved"); this prints a line at every
    twentieth of the run instead (and one 10 steps in), with the speed and the time left."""

    PARTS = 20
    EARLY = 10  # steps into this start: a first line with the speed

    def __init__(self, console: Console) -> None:
        self.console = console
        self.total = self.first = self.shown = 0
        self.t0 = time.monotonic()

    def __enter__(self) -> StepLines:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def add_task(
        self, description: str, *, total: int, completed: int = 0, **fields: Any
    ) -> TaskID:
        self.total, self.first, self.shown = total, completed, completed
        self.t0 = time.monotonic()
        return TaskID(0)

    def update(
        self,
        task: TaskID,
        *,
        completed: int | None = None,
        total: int | None = None,
        info: str = "",
    ) -> None:
        if total is not None:
            self.total = total
        if completed is None or completed <= self.shown:
            return
        early = completed - self.first == self.EARLY  # the speed, before the first twentieth
        if completed % max(1, self.total // self.PARTS) and completed < self.total and not early:
            return
        self.shown = completed
        per_step = (time.monotonic() - self.t0) / max(1, completed - self.first)
        left = round(per_step * max(0, self.total - completed))
        self.console.print(
            f"step {completed}/{self.total}  {info}  ({per_step:.2f} s/step, "
            f"{left // 60} min {left % 60:02d} s left)".replace("    ", "  "),
            markup=False,
            highlight=False,
        )
