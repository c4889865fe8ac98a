"""sllen-run: enhance images, folders, globs and videos with any backend."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
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
    ctx: typer.Context,
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
    output: Annotated[
        str,
        Opt(
            "--output",
            "--out",  # the name sllen-export and sllen-train use
            "-o",
            help="Output folder; with one input, a file name also works (-o night.jpg). "
            "Live sources also take a video file or a stream URL "
            "(udp://HOST:PORT sends MPEG-TS, rtsp://... pushes to a server).",
        ),
    ] = "enhanced",
    side_by_side: Annotated[
        bool, Opt("--side-by-side", help="Write input and result side by side.")
    ] = False,
    segmentation: Annotated[
        bool, Opt("--segmentation", help="Also write the semantic map (NAME.segmentation.*).")
    ] = False,
    exposure: Annotated[
        float,
        Opt(
            help="Exposure compensation of the result in stops (EV), as on a camera: -1 halves "
            "the light, +1 doubles it (highlights clip); 0 keeps the model's own brightness.",
        ),
    ] = 0.0,
    well_exposed: Annotated[
        str,
        Opt(
            help="keep: a frame that is already well exposed (mean near middle grey) comes out "
            "as it went in, a dim one partly so; enhance: the model's result for every frame.",
        ),
    ] = "keep",
    self_ensemble: Annotated[
        bool,
        Opt(
            "--self-ensemble",
            help="Average the results of four flipped copies of each frame: a little cleaner "
            "(LOL: +0.15 dB), four times the inference time.",
        ),
    ] = False,
    quality: Annotated[
        int,
        Opt(
            help="Photo quality for JPEG, lossy WebP, HEIC and AVIF outputs, 1-100 (90 up: "
            "JPEG keeps full colour resolution)."
        ),
    ] = 95,
    codec: Annotated[str, Opt(help="Video codec (PyAV/FFmpeg encoder name).")] = "libx264",
    crf: Annotated[
        int, Opt(help="Video quality for x264/x265/VP9/SVT-AV1 (lower is better).")
    ] = 18,
    encoder_preset: Annotated[
        str | None,
        Opt(help="Encoder speed preset (x264/x265: veryfast by default; medium packs tighter)."),
    ] = None,
    pix_fmt: Annotated[
        str,
        Opt(
            help="Video pixel format: yuv420p plays everywhere (an odd width or height is "
            "padded by a pixel); yuv444p keeps full colour and the exact size, in fewer players."
        ),
    ] = "yuv420p",
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
    bands: Annotated[
        str,
        Opt(
            help="ONNX Runtime on the CPU: run the full- and half-resolution layers in bands "
            "(exact, about half the memory, 13-44% slower): auto (frames whose whole run would "
            "need over 1 GiB: 1080p and up, or most of the free memory), on, off."
        ),
    ] = "auto",
    cuda_graph: Annotated[
        bool, Opt("--cuda-graph", help="TensorRT: capture a CUDA graph per input shape.")
    ] = False,
    plugin: Annotated[
        Path | None, Opt(help="TensorRT: the attention plugin library (.so), if not found.")
    ] = None,
    attention: Annotated[str, Opt(help="PyTorch backend: auto, kernel or sdpa.")] = "auto",
    duration: Annotated[
        float | None, Opt(help="Live: stop after this many seconds (else Ctrl-C).")
    ] = None,
    frames: Annotated[int | None, Opt(help="Live: stop after this many output frames.")] = None,
    reconnect: Annotated[
        int | None,
        Opt(help="Live: reconnect attempts when the source drops or stalls (0: stop; default 3)."),
    ] = None,
    timeout: Annotated[
        float | None,
        Opt(help="Live: seconds without data before the source counts as lost (default 10)."),
    ] = None,
    ray: Annotated[
        str | None,
        Opt(
            "--ray",
            metavar="[ADDRESS]",
            help="Run on Ray: --ray alone starts a local instance; --ray ADDRESS joins a "
            "cluster (auto, HOST:PORT, ray://HOST:10001); needs the ray extra.",
        ),
    ] = None,
    workers: Annotated[
        int | None, Opt(help="Ray: model workers (default: as many as the cluster holds).")
    ] = None,
    resume: Annotated[
        bool, Opt("--resume", help="Skip inputs whose output exists (finish a stopped run).")
    ] = False,
    overwrite: Annotated[
        bool,
        Opt(
            "--overwrite",
            "-y",
            help="Replace outputs that exist (a rerun). Without it sllen asks on a terminal "
            "and stops elsewhere.",
        ),
    ] = False,
    quiet: Annotated[bool, Opt("--quiet", "-q", help="No progress bar or summary.")] = False,
) -> None:
    """Enhance low-light images, videos and live streams; results keep names, formats, frame
    rate and audio."""
    from sllen.cli._replace import confirm_replace, existing_outputs
    from sllen.runtime.api import EnhancerSpec, backend_options
    from sllen.runtime.backends import choose_backend
    from sllen.runtime.files import check_writable, removed_if_left_empty
    from sllen.runtime.inputs import (
        VIDEO_SUFFIXES,
        check_output_name,
        collect_inputs,
        output_folder,
        output_paths,
        refuse_std_streams,
    )
    from sllen.runtime.run import RunOptions, prepare_output
    from sllen.runtime.video.live import check_protocol, is_live, is_stream_output

    # a run that fails before writing anything (a bad model, no TensorRT, Ctrl-C) takes away
    # the output folder it created
    with contextlib.ExitStack() as cleanup:
        console = Console(stderr=True, highlight=False, soft_wrap=True)
        refuse_std_streams(inputs, output)
        if workers is not None and ray is None:
            raise InputError("--workers sets the Ray workers: add --ray")
        if resume and overwrite:
            raise InputError("--resume skips outputs that exist, --overwrite replaces: choose one")
        live = [i for i in inputs if is_live(i)]
        if live or is_stream_output(output):
            if len(inputs) != 1:
                raise InputError("a live source (or a stream output) runs alone: give one input")
            if ray is not None or resume:
                raise InputError("--ray and --resume are for files, not live sources")
            for url in (*live, output):  # srt:// without libsrt: before the model loads
                check_protocol(url)
            if Path(output).suffix.lower() in VIDEO_SUFFIXES:  # a recording into a named file
                confirm_replace(existing_outputs([Path(output)]), overwrite, live=True)
        else:
            given = [
                flag
                for flag, value in (
                    ("--duration", duration),
                    ("--frames", frames),
                    ("--reconnect", reconnect),
                    ("--timeout", timeout),
                )
                if value is not None
            ]
            if given:
                verb = "applies" if len(given) == 1 else "apply"
                raise InputError(
                    f"{' and '.join(given)} {verb} to live sources (URLs, /dev/videoN), "
                    "not to files"
                )
        typed = _typed(ctx)
        if codec != "libx264":  # the codec first: the output's container is judged by it
            from sllen.runtime.video.writer import check_crf, check_encoder

            check_encoder(codec, start=ray is None)  # Ray: the workers encode, on their GPUs
            if "crf" in typed:  # an encoder without a CRF ignored it
                check_crf(codec)
        if not (live or is_stream_output(output)):
            sources = collect_inputs(inputs, output)  # a glob's earlier results are not inputs
            check_output_name(output, inputs)  # as typed: "-o out.xyz/" means a folder
            _check_media_options(sources, typed)
            outputs = output_paths(sources, Path(output), codec)  # refused before loading
            if not resume:  # --resume skips them
                confirm_replace(existing_outputs(outputs.values(), segmentation), overwrite)
            folder = output_folder(sources, Path(output))
            cleanup.enter_context(removed_if_left_empty(prepare_output(folder)))
            check_writable(outputs.values())  # /sys, a read-only mount: before minutes of work
        name, reason = choose_backend(model, backend)
        requested = {
            "precision": precision,
            "attention": attention,
            "bands": bands,
            "cuda_graph": cuda_graph,
            "plugin_library": plugin,
        }
        # one that cannot apply to this backend is refused, not silently ignored
        options = backend_options(name, requested, cli=True, reason=reason)
        spec = EnhancerSpec(
            model=str(model) if model is not None else None,
            backend=name,
            device=device,
            threads=threads,
            batch=batch,
            tile=_parse_tile(tile),
            segmentation=segmentation,
            exposure=exposure,
            well_exposed=well_exposed,
            self_ensemble=self_ensemble,
            options=options,
        )
        opts = RunOptions(
            output=Path(output),
            side_by_side=side_by_side,
            segmentation=segmentation,
            codec=codec,
            crf=crf,
            encoder_preset=encoder_preset,
            smooth=smooth,
            quality=quality,
            pix_fmt=pix_fmt,
            skip_existing=resume,
        )
        progress = _Progress(console, enabled=not quiet and console.is_terminal)

        def note(line: str) -> None:  # a big photo's start and tiles (runtime/big_images.py)
            console.print(line, markup=False)

        finished: list[Path] = []  # for the line a Ctrl-C leaves

        def report(result) -> None:
            if not result.error and not result.skipped and result.output is not None:
                finished.append(result.output)
            if result.error:
                err_console.print(f"[bold red]error:[/] {escape(result.error)}", markup=True)
            elif not quiet:
                note = " (already there: skipped)" if result.skipped else ""
                console.print(f"{result.source} -> {result.output}{note}", markup=False)

        if live or is_stream_output(output):
            from sllen.cli._live import run_live_command
            from sllen.runtime.live import LiveOptions

            if segmentation:
                raise InputError("--segmentation is for files, not live streams")
            live_opts = LiveOptions(
                duration=duration,
                frames=frames,
                reconnect=LiveOptions.reconnect if reconnect is None else reconnect,
                timeout=LiveOptions.timeout if timeout is None else timeout,
                realtime=not live,  # a file streamed out goes at its own frame rate
            )
            run_live_command(inputs[0], output, spec, opts, live_opts, console, progress, quiet)
            return
        # a Ctrl-C in a run of several files says what is kept and how to finish
        guard = _interrupt_names(finished, len(sources), overwrite)
        with guard if len(sources) > 1 else contextlib.nullcontext():
            _run_files(
                sources, spec, opts, ray, workers, reason, console, progress, report, note, quiet
            )


def _run_files(
    sources: list[Path],
    spec: Any,
    opts: Any,
    ray: str | None,
    workers: int | None,
    reason: str,
    console: Console,
    progress: _Progress,
    report: Callable[[Any], None],
    note: Callable[[str], None],
    quiet: bool,
) -> None:
    """The files, on Ray or here, then the summary."""
    if ray is not None:
        from sllen.runtime.distributed import run_files_ray

        def opened(described: str, planned: int) -> None:
            console.print(
                f"backend: {described} [dim]({reason})[/], on Ray: {_count(planned, 'worker')}"
            )

        with progress.bar:
            summary = run_files_ray(
                sources,
                spec,
                opts,
                address=None if ray == "local" else ray,
                workers=workers,
                progress=progress,
                on_result=report,
                on_open=None if quiet else opened,
            )
        _finish(console, summary, quiet)
        return
    from sllen.runtime.run import run_files

    with spec.open_backend() as runner:
        if not quiet:
            console.print(f"backend: {runner.info.describe()} [dim]({reason})[/]")
        enhancer = spec.enhancer(runner)
        with progress.bar:
            summary = run_files(
                sources, enhancer, opts, progress=progress, on_result=report,
                notes=None if quiet else note,
            )  # fmt: skip
    _finish(console, summary, quiet)


@contextlib.contextmanager
def _interrupt_names(finished: list[Path], total: int, overwrite: bool) -> Iterator[None]:
    """A Ctrl-C in a run of several files says what was kept and how to finish: a bare
    "interrupted" left a walkthrough to list the folder to find out."""
    try:
        yield
    except KeyboardInterrupt:
        if not finished:
            raise
        last = f", last {finished[-1]}" if len(finished) > 1 else f" ({finished[0]})"
        raise KeyboardInterrupt(
            f"{len(finished)} of {_count(total, 'file')} done and kept{last}; "
            "the same command with --resume"
            + (" in place of --overwrite" if overwrite else "")
            + " finishes the rest"
        ) from None


def _typed(ctx: typer.Context) -> set[str]:
    """The options given on the command line (a default typed out counts: it was asked for).
    By the source's name: typer may bring its own copy of click's ParameterSource."""
    return {
        n for n in ctx.params if getattr(ctx.get_parameter_source(n), "name", "") == "COMMANDLINE"
    }


# options that only one kind of file takes, by parameter name -> as the user typed them
_VIDEO_ONLY = {
    "codec": "--codec",
    "crf": "--crf",
    "encoder_preset": "--encoder-preset",
    "smooth": "--smooth/--no-smooth",
    "pix_fmt": "--pix-fmt",
}


def _check_media_options(sources: list[Path], typed: set[str]) -> None:
    """Options for one kind of file, given to a run without that kind, are refused rather
    than silently ignored (``--codec`` on a photo, ``--quality`` on a video)."""
    from sllen.runtime.inputs import is_video

    given = [flag for name, flag in _VIDEO_ONLY.items() if name in typed]
    videos = sum(map(is_video, sources))
    if given and not videos:
        inputs = "the input is an image" if len(sources) == 1 else "the inputs are images"
        raise InputError(f"{' and '.join(given)}: for videos, but {inputs}")
    if "quality" in typed and videos == len(sources):
        inputs = "the input is a video" if len(sources) == 1 else "the inputs are videos"
        raise InputError(f"--quality: for photos (--crf sets a video's), but {inputs}")


def _finish(console: Console, summary, quiet: bool) -> None:
    if not quiet:
        _print_summary(console, summary)
    if summary.failed:
        if len(summary.results) > 1:  # one file's own error line says it all
            err_console.print(
                f"[bold red]error:[/] {len(summary.failed)} of "
                f"{_count(len(summary.results), 'file')} failed",
                markup=True,
            )
        raise SystemExit(EXIT_BAD_INPUT)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _print_summary(console: Console, summary) -> None:
    done = [r for r in summary.results if not r.error and not r.skipped]
    skipped = sum(r.skipped for r in summary.results)
    if skipped:
        exist = "its output exists" if skipped == 1 else "their outputs exist"
        console.print(f"{_count(skipped, 'file')} skipped: {exist} (--resume)")
    if not done:
        return
    ms = summary.times.per_frame_ms()
    title = f"{_count(len(done), 'file')}, {_count(summary.frames, 'frame')}"
    table = Table(title=f"{title} in {summary.wall:.1f} s")
    for stage in ms:
        table.add_column(f"{stage} ms", justify="right")
    table.add_column("end-to-end fps", justify="right")
    fps = summary.frames / summary.wall if summary.wall else 0.0
    rate = f"{fps:.2f}" if fps >= 1 else f"{fps:.3g}"  # 0.00265 for a 12 MP photo, not 0.00
    table.add_row(*(f"{v:.1f}" for v in ms.values()), rate)
    console.print(table)
    from sllen.runtime.inputs import is_video

    if any(is_video(r.source) for r in done):
        console.print(
            "[dim]per frame; video stages run concurrently, so they add up to more than the "
            "wall time[/]"
        )
    else:
        console.print("[dim]per frame[/]")


def _ray_argv(argv: list[str]) -> list[str]:
    """`--ray` takes an optional address, which click cannot express: the word after it is
    the address when it looks like one (auto, local, HOST:PORT, ray://...) and is not a
    file; otherwise `--ray` stands alone (a local instance)."""
    import re

    out: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--ray":
            nxt = argv[i + 1] if i + 1 < len(argv) else ""
            looks = nxt in ("auto", "local") or "://" in nxt or re.fullmatch(r"[\w.-]+:\d+", nxt)
            if looks and not Path(nxt).exists():
                out.append(f"--ray={nxt}")
                i += 2
                continue
            out.append("--ray=local")
        else:
            out.append(arg)
        i += 1
    return out


def main() -> None:
    import sys

    sys.argv[1:] = _ray_argv(sys.argv[1:])
    run_single(run_command)


if __name__ == "__main__":
    main()
