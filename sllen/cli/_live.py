"""sllen-run on a live source: where the output goes, a clean stop on signals, the summary."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from sllen.cli._errors import EXIT_BAD_INPUT, err_console
from sllen.runtime.api import EnhancerSpec
from sllen.runtime.errors import InputError
from sllen.runtime.files import removed_if_left_empty
from sllen.runtime.images import IMAGE_SUFFIXES
from sllen.runtime.inputs import VIDEO_SUFFIXES
from sllen.runtime.live import LiveOptions, LiveResult, live_output_path, run_live
from sllen.runtime.run import RunOptions, prepare_output
from sllen.runtime.video.live import is_live, is_stream_output, redact


def live_target(source: str, output: str, codec: str = "libx264") -> tuple[str | Path, Path | None]:
    """-o as a stream URL, a video file (by its suffix), or a folder for a dated recording;
    and the topmost folder created for it (None: none was). Checked before the source is
    opened: a name that cannot hold the recording is one line now, not after the first frame."""
    if is_stream_output(output):
        return output, None
    path = Path(output)
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        raise InputError(
            f"-o {output}: a live source records a video: name a .mp4, .mkv or .ts file, or a "
            "folder"
        )
    if suffix == ".webm" and codec in ("libx264", "h264"):
        raise InputError(
            f"-o {output}: WebM holds VP8/VP9/AV1, not H.264: name a .mp4, .mkv or .ts file, "
            "or add --codec libvpx-vp9"
        )
    if suffix in VIDEO_SUFFIXES:
        return path, prepare_output(path.parent)
    return live_output_path(source, path), prepare_output(path)


def run_live_command(
    source: str,
    output: str,
    spec: EnhancerSpec,
    opts: RunOptions,
    live: LiveOptions,
    console: Console,
    progress: Any,
    quiet: bool,
) -> None:
    if not is_live(source) and not Path(source).is_file():
        raise FileNotFoundError(f"{source}: no such file")
    target, created = live_target(source, output, opts.codec)
    with removed_if_left_empty(created), spec.open_backend() as runner:
        if not quiet:
            console.print(f"backend: {runner.info.describe()}")
            stop = "Ctrl-C stops" if live.duration is None and live.frames is None else ""
            # never the password: console lines end up in journald and docker logs
            shown = redact(source), redact(str(target))
            console.print(f"live: {escape(shown[0])} -> {escape(shown[1])} [dim]{stop}[/]")
        enhancer = spec.enhancer(runner)
        with progress.bar:  # SIGTERM is Ctrl-C here too (user_errors): the recording is finished
            result = run_live(source, target, enhancer, opts, live, progress=progress)
        if not quiet:
            print_live_summary(console, result)
        if result.error:  # inside the with: a source that never sent a frame leaves no folder
            err_console.print(f"[bold red]error:[/] {escape(result.error)}", markup=True)
            raise SystemExit(EXIT_BAD_INPUT)


def print_live_summary(console: Console, r: LiveResult) -> None:
    table = Table(title=f"{r.source} -> {r.output}: {r.frames_out} frames in {r.seconds:.1f} s")
    for column in ("frames in", "dropped", "reconnects", "latency p50 ms", "p99 ms", "fps out"):
        table.add_column(column, justify="right")
    p50, p99 = r.latency_ms(50), r.latency_ms(99)
    table.add_row(
        str(r.frames_in),
        f"{r.dropped} ({100 * r.drop_rate:.0f}%)",
        str(r.reconnects),
        f"{p50:.0f}" if p50 is not None else "-",
        f"{p99:.0f}" if p99 is not None else "-",
        f"{r.frames_out / r.seconds:.1f}" if r.seconds else "-",
    )
    console.print(table)
    console.print(
        f"[dim]stopped by: {r.stopped_by}; frames of a live source are dropped, not queued, "
        "when the model is slower than the source (a video file over http waits)[/]"
    )
