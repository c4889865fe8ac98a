"""The progress a training run shows: a bar on a terminal, plain lines in a log file."""

from __future__ import annotations

import io

from rich.console import Console
from rich.progress import Progress

from sllen.train.log import StepLines, progress_bar


def test_a_log_file_gets_plain_lines_and_nothing_after_the_last_message() -> None:
    # Not a terminal (nohup, a scheduler's log): rich drew no bar and printed one line when the
    # run ended, after "interrupted at step N: checkpoint saved"; nothing in between.
    out = io.StringIO()
    console = Console(file=out, force_terminal=False, width=200)
    progress = progress_bar(console, quiet=False)
    assert isinstance(progress, StepLines)
    with progress:
        task = progress.add_task("train", total=40, completed=0, info="")
        for step in range(1, 32):
            progress.update(task, completed=step, info=f"lle_total={step / 100:.2f}")
        console.print("interrupted at step 31: checkpoint saved")
    lines = out.getvalue().splitlines()
    steps = [int(ln.split()[1].split("/")[0]) for ln in lines[:-1]]
    assert steps == [2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30]  # every 1/20
    assert lines[5].startswith("step 12/40  lle_total=0.12  (") and "s/step" in lines[5]
    assert "left)" in lines[5]
    assert lines[-1] == "interrupted at step 31: checkpoint saved"


def test_a_long_run_says_its_speed_ten_steps_in_and_a_resumed_one_counts_from_there() -> None:
    out = io.StringIO()
    progress = progress_bar(Console(file=out, force_terminal=False, width=200), quiet=False)
    with progress:
        task = progress.add_task("train", total=10_000, completed=500, info="")
        for step in range(501, 1001):
            progress.update(task, completed=step)
    steps = [ln.split()[1] for ln in out.getvalue().splitlines()]
    assert steps == ["510/10000", "1000/10000"]


def test_a_terminal_gets_the_bar_and_quiet_gets_nothing() -> None:
    assert isinstance(
        progress_bar(Console(file=io.StringIO(), force_terminal=True), False), Progress
    )
    out = io.StringIO()
    quiet = progress_bar(Console(file=out, force_terminal=False), quiet=True)
    with quiet:
        quiet.update(quiet.add_task("train", total=4, completed=0, info=""), completed=4)
    assert out.getvalue() == ""
