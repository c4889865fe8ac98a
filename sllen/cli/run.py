"""sllen-run: enhance images, folders, globs and videos with any backend."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from sllen.cli._errors import EXIT_BAD_INPUT, err_console, run_single, user_errors
from sllen.runtime.errors import InputError

Opt = typer.Option


def _parse_tile(text: str | None) -> tuple[int, int] | None:
    """--tile WIDTHxHEIGHT (the one size vocabulary of sllen) -> (height, width)."""
    from sllen.runtime.shapes import parse_size

    if not text:
        return None
    try:
        h, w = parse_size(text)
    except InputError:
        raise InputError(f"--tile must look like 960x540 (WIDTHxHEIGHT), not {text!r}") from None
    if h < 16 or w < 16:
        raise InputError("--tile must be at least 16x16")
    return h, w


class _Progress:
    """A rich progress bar per file: frames, fps and ETA (quiet when stderr is not a terminal)."""

    def __init__(self, console: Console, enabled: bool) -> None:
        self.bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("[cyan]{task.fields[fps]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            disable=not enabled,
            transient=False,
        )
        self.tasks: dict[str, TaskID] = {}

    def __call__(self, name: str, done: int, total: int | None) -> None:
        if name not in self.tasks:
            self.tasks[name] = self.bar.add_task(name, total=total, fps="")
        task = self.tasks[name]
        self.bar.update(task, completed=done, total=total)
        speed = self.bar.tasks[task].speed
        if speed:
            self.bar.update(task, fps=f"{speed:.1f} fps")


@user_errors
def run_command(
    inputs: Annotated[
        list[str], typer.Argument(help="Images, videos, folders or globs.", show_default=False)
    ],
    model: Annotated[
        Path | None,
        Opt(help="Model file: .engine (TensorRT), .onnx or .safetensors. Default: bundled."),
    ] = None,
    backend: Annotated[str, Opt(help="auto, tensorrt, onnxruntime or pytorch.")] = "auto",
    device: Annotated[str, Opt(help="auto, cpu, cuda or cuda:N.")] = "auto",
    precision: Annotated[str, Opt(help="PyTorch backend: auto, fp32 or fp16.")] = "auto",
    output: Annotated[Path, Opt("--output", "-o", help="Output folder.")] = Path("enhanced"),
    side_by_side: Annotated[
        bool, Opt("--side-by-side", help="Write input and result side by side.")
    ] = False,
    segmentation: Annotated[
        bool, Opt("--segmentation", help="Also write the semantic map (NAME.segmentation.*).")
    ] = False,
    codec: Annotated[str, Opt(help="Video codec (PyAV/FFmpeg encoder name).")] = "libx264",
    crf: Annotated[int, Opt(help="Video quality for x264/x265/VP9 (lower is better).")] = 18,
    encoder_preset: Annotated[
        str | None,
        Opt(help="Encoder speed preset (x264/x265: veryfast by default; medium packs tighter)."),
    ] = None,
    smooth: Annotated[
        bool | None,
        Opt(
            "--smooth/--no-smooth",
            help="Temporal brightness smoothing for video.",
            show_default="on",
        ),
    ] = None,
    batch: Annotated[int, Opt(help="Frames per inference batch.")] = 1,
    tile: Annotated[
        str | None, Opt(help="Enhance in tiles of at most WIDTHxHEIGHT (bounds memory).")
    ] = None,
    threads: Annotated[int | None, Opt(help="CPU threads for inference.")] = None,
    cuda_graph: Annotated[
        bool, Opt("--cuda-graph", help="TensorRT: capture a CUDA graph per input shape.")
    ] = False,
    plugin: Annotated[
        Path | None, Opt(help="TensorRT: the attention plugin library (.so), if not found.")
    ] = None,
    attention: Annotated[str, Opt(help="PyTorch backend: auto, kernel or sdpa.")] = "auto",
    quiet: Annotated[bool, Opt("--quiet", "-q", help="No progress bar or summary.")] = False,
) -> None:
    """Enhance low-light images and videos; results keep names, formats, frame rate and audio."""
    from sllen.runtime.backends import choose_backend, open_backend
    from sllen.runtime.enhancer import Enhancer
    from sllen.runtime.run import (
        RunOptions,
        collect_inputs,
        output_paths,
        prepare_output,
        run_files,
    )

    console = Console(stderr=True, highlight=False, soft_wrap=True)
    _one_line_warnings()
    sources = collect_inputs(inputs)
    output_paths(sources, output)  # refuse overwriting an input before loading anything
    prepare_output(output)
    name, reason = choose_backend(model, backend)
    options: dict[str, Any] = {}
    if name == "tensorrt":
        options.update(cuda_graph=cuda_graph, plugin_library=plugin)
    elif cuda_graph or plugin:
        raise InputError("--cuda-graph and --plugin apply to TensorRT engines (--model X.engine)")
    if name == "pytorch":
        options.update(precision=precision, attention=attention)
    elif precision != "auto":
        raise InputError(
            "--precision applies to the pytorch backend; ONNX and engine files "
            "carry their own precision (sllen-export --fp16 / --int8)"
        )
    with open_backend(model, name, device=device, threads=threads, **options) as runner:
        if not quiet:
            console.print(f"backend: {runner.info.describe()} [dim]({reason})[/]")
        enhancer = Enhancer(runner, batch=batch, tile=_parse_tile(tile), segmentation=segmentation)
        opts = RunOptions(
            output=output,
            side_by_side=side_by_side,
            segmentation=segmentation,
            codec=codec,
            crf=crf,
            encoder_preset=encoder_preset,
            smooth=smooth,
        )
        progress = _Progress(console, enabled=not quiet and console.is_terminal)

        def report(result) -> None:
            if result.error:
                err_console.print(f"[bold red]error:[/] {result.error}", markup=True)
            elif not quiet:
                console.print(f"{result.source} -> {result.output}", markup=False)

        with progress.bar:
            summary = run_files(sources, enhancer, opts, progress=progress, on_result=report)
    if not quiet:
        _print_summary(console, summary)
    if summary.failed:
        err_console.print(
            f"[bold red]error:[/] {len(summary.failed)} of {len(summary.results)} files failed",
            markup=True,
        )
        raise SystemExit(EXIT_BAD_INPUT)


def _one_line_warnings() -> None:
    """Library warnings (a truncated video, a codec fallback) as one yellow line each."""
    import warnings

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        err_console.print(f"[yellow]warning:[/] {message}", markup=True)

    warnings.showwarning = show


def _print_summary(console: Console, summary) -> None:
    done = [r for r in summary.results if not r.error]
    if not done:
        return
    ms = summary.times.per_frame_ms()
    table = Table(title=f"{len(done)} files, {summary.frames} frames in {summary.wall:.1f} s")
    for stage in ms:
        table.add_column(f"{stage} ms", justify="right")
    table.add_column("end-to-end fps", justify="right")
    fps = summary.frames / summary.wall if summary.wall else 0.0
    table.add_row(*(f"{v:.1f}" for v in ms.values()), f"{fps:.2f}")
    console.print(table)
    console.print(
        "[dim]per frame; video stages run concurrently, so they add up to more than the "
        "wall time[/]"
    )


def main() -> None:
    run_single(run_command)


if __name__ == "__main__":
    main()
