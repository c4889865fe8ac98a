"""sllen-bench: latency, throughput, memory and FLOP/s across backends, precisions and sizes."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from sllen.cli._errors import EXIT_BAD_INPUT, err_console, run_single, user_errors
from sllen.runtime.errors import InputError, MissingFileError
from sllen.runtime.shapes import parse_size

if TYPE_CHECKING:
    from sllen.bench import BenchConfig

Opt = typer.Option

ALIASES = {
    "360p": (360, 640),
    "480p": (480, 854),
    "720p": (720, 1280),
    "1080p": (1080, 1920),
    "1440p": (1440, 2560),
    "2160p": (2160, 3840),
    "4k": (2160, 3840),
}
MAX_SIDE = 16384
PRECISIONS = ("auto", "fp32", "fp16")
ATTENTIONS = ("auto", "kernel", "sdpa")


def parse_resolution(text: str) -> tuple[int, int]:
    """'1280x720' (WIDTHxHEIGHT) or an alias like '720p' -> (height, width)."""
    key = text.strip().lower()
    if key in ALIASES:
        return ALIASES[key]
    try:
        h, w = parse_size(key)
    except InputError:
        raise InputError(
            f"--resolution must look like 1280x720 (WIDTHxHEIGHT) or one of "
            f"{', '.join(ALIASES)}, not {text!r}"
        ) from None
    if not (16 <= w <= MAX_SIDE and 16 <= h <= MAX_SIDE):
        raise InputError(f"--resolution {text}: width and height must be within 16..{MAX_SIDE}")
    return h, w


def _unique(items: list[str] | None, default: str) -> list[str]:
    return list(dict.fromkeys(items or [default]))


def build_configs(
    models: list[Path] | None,
    backends: list[str] | None,
    precisions: list[str] | None,
    attentions: list[str] | None,
    *,
    device: str = "auto",
    threads: int | None = None,
    cuda_graph: bool = False,
    bands: list[str] | None = None,
) -> list[BenchConfig]:
    """One configuration per model x backend (x precision x attention for PyTorch)."""
    from sllen.bench import BenchConfig
    from sllen.runtime.backends import BACKENDS, backend_for_file, choose_backend
    from sllen.runtime.backends.base import check_device

    check_device(device)  # a typo is one line now, not an error row per configuration
    names = _unique(backends, "auto")
    for name in names:
        if name not in ("auto", *BACKENDS):
            raise InputError(
                f"--backend must be auto or one of {', '.join(BACKENDS)}, not {name!r}"
            )
    precs = _unique(precisions, "auto")
    attns = _unique(attentions, "auto")
    for p in precs:
        if p not in PRECISIONS:
            raise InputError(f"--precision must be one of {', '.join(PRECISIONS)}, not {p!r}")
    for a in attns:
        if a not in ATTENTIONS:
            raise InputError(f"--attention must be one of {', '.join(ATTENTIONS)}, not {a!r}")
    from sllen.runtime.backends.onnxruntime import BANDS

    band_modes = _unique(bands, "auto")
    for b in band_modes:
        if b not in BANDS:
            raise InputError(f"--bands must be auto, on or off, not {b!r}")
    if threads is not None and threads < 1:
        raise InputError("--threads must be at least 1")
    configs = []
    model_list: list[Path | None] = [*models] if models else [None]
    for model in model_list:
        if model is not None and not model.is_file():
            raise MissingFileError(f"{model}: no such model file")
        path = str(model) if model is not None else None
        fitting = [n for n in names if n == "auto" or path is None or backend_for_file(path) == n]
        if not fitting:  # says which backend the file needs, in one line
            choose_backend(path, names[0])
        for requested in fitting:
            name, _ = choose_backend(path, requested)
            variants = (
                [(p, a, "auto") for p in precs for a in attns]
                if name == "pytorch"
                else [("auto", "auto", b) for b in band_modes]
                if name == "onnxruntime"
                else [("auto", "auto", "auto")]
            )
            for p, a, b in variants:
                configs.append(
                    BenchConfig(
                        path, name, p, a, device, threads, cuda_graph and name == "tensorrt", b
                    )
                )
    configs = list(dict.fromkeys(configs))
    unused = [n for n in names if n != "auto" and not any(c.backend == n for c in configs)]
    if unused:  # asked for by name: a table without it would look like a complete answer
        raise InputError(
            f"--backend {unused[0]}: none of the --model files is for it "
            f"(tensorrt runs .engine files, onnxruntime .onnx, pytorch .safetensors)"
        )
    if not any(c.backend == "pytorch" for c in configs):
        if precs != ["auto"]:
            raise InputError(
                "--precision applies to the pytorch backend; ONNX and engine files carry their "
                "own precision (sllen-export --fp16 / --int8)"
            )
        if attns != ["auto"]:
            raise InputError("--attention applies to the pytorch backend")
    if cuda_graph and not any(c.backend == "tensorrt" for c in configs):
        raise InputError("--cuda-graph applies to the tensorrt backend (.engine files)")
    if band_modes != ["auto"] and not any(c.backend == "onnxruntime" for c in configs):
        raise InputError("--bands applies to the onnxruntime backend (.onnx files)")
    return configs


@user_errors
def bench_command(
    model: Annotated[
        list[Path] | None,
        Opt(help="Model file(s): .engine, .onnx or .safetensors (repeatable). Default: bundled."),
    ] = None,
    backend: Annotated[
        list[str] | None,
        Opt(help="auto, tensorrt, onnxruntime or pytorch (repeatable: one row each)."),
    ] = None,
    precision: Annotated[
        list[str] | None, Opt(help="PyTorch backend: auto, fp32 or fp16 (repeatable).")
    ] = None,
    attention: Annotated[
        list[str] | None, Opt(help="PyTorch backend: auto, kernel or sdpa (repeatable).")
    ] = None,
    resolution: Annotated[
        list[str] | None,
        Opt(help="Frame size WIDTHxHEIGHT or 360p/720p/1080p/4k (repeatable). Default 1280x720."),
    ] = None,
    batch: Annotated[int, Opt(help="Frames per inference call.")] = 1,
    warmup: Annotated[int, Opt(help="Untimed calls before timing.")] = 3,
    iterations: Annotated[int, Opt(help="Timed calls per case.")] = 20,
    duration: Annotated[
        float | None, Opt(help="Stop a case's timing after this many seconds (at least 2 calls).")
    ] = None,
    device: Annotated[str, Opt(help="auto, cpu, cuda or cuda:N.")] = "auto",
    threads: Annotated[int | None, Opt(help="CPU threads for inference.")] = None,
    cuda_graph: Annotated[
        bool, Opt("--cuda-graph", help="TensorRT: replay a captured CUDA graph.")
    ] = False,
    bands: Annotated[
        list[str] | None,
        Opt(
            help="ONNX Runtime on the CPU: auto, on or off: band execution of the full- and "
            "half-resolution layers (repeatable: one table row each)."
        ),
    ] = None,
    interleave: Annotated[
        bool,
        Opt(
            "--interleave",
            help="Time size by size, model by model (fairer on a busy machine; reopens models).",
        ),
    ] = False,
    layers: Annotated[
        bool, Opt("--layers", help="Per-layer time from the backend's profiler (top-k table).")
    ] = False,
    top_k: Annotated[int, Opt(help="Rows of the --layers table.")] = 15,
    peak_gflops: Annotated[
        float | None,
        Opt(help="The reference GFLOP/s for '% GEMM (est.)'. Default: a GEMM measured here."),
    ] = None,
    flops: Annotated[
        bool, Opt("--flops/--no-flops", help="Count model FLOPs (needs torch).")
    ] = True,
    json_out: Annotated[Path | None, Opt("--json", help="Write the results as JSON.")] = None,
    plot_out: Annotated[
        Path | None, Opt("--plot", help="Write a PNG of latency against frame size.")
    ] = None,
    quiet: Annotated[bool, Opt("--quiet", "-q", help="No progress lines on stderr.")] = False,
) -> None:
    """Benchmark SLLEN: warm-up, timed iterations, latency percentiles, fps, memory, FLOP/s."""
    from sllen.bench import BenchOptions, run_bench
    from sllen.bench import report as rep

    if batch < 1:
        raise InputError("--batch must be at least 1")
    if iterations < 1:
        raise InputError("--iterations must be at least 1")
    if warmup < 0:
        raise InputError("--warmup cannot be negative")
    if duration is not None and duration <= 0:
        raise InputError("--duration must be positive")
    if top_k < 1:
        raise InputError("--top-k must be at least 1")
    if peak_gflops is not None and peak_gflops <= 0:
        raise InputError("--peak-gflops must be positive")
    from sllen.runtime.files import check_output_file

    for option, out in (("--json", json_out), ("--plot", plot_out)):
        if out is not None:
            check_output_file(out, option)  # before the benchmark, not after it
    if plot_out is not None:
        rep.check_plot(plot_out)  # its format and matplotlib, as for the paths: not after it
    sizes = list(dict.fromkeys(parse_resolution(r) for r in resolution or ["1280x720"]))
    configs = build_configs(
        model,
        backend,
        precision,
        attention,
        device=device,
        threads=threads,
        cuda_graph=cuda_graph,
        bands=bands,
    )
    opts = BenchOptions(
        configs=configs,
        resolutions=sizes,
        batch=batch,
        warmup=warmup,
        iterations=iterations,
        duration=duration,
        layers=layers,
        top_k=top_k,
        flops=flops,
        peak_gflops=peak_gflops,
        interleave=interleave,
    )
    log_console = Console(stderr=True, highlight=False, soft_wrap=True)
    results = run_bench(opts, log=None if quiet else lambda m: log_console.print(m, markup=False))
    # Piped or in a narrow terminal, rich would cut the tables at 80 columns ("back..."): give
    # them the width they need (a terminal wider than that keeps its own width).
    table_console = Console(soft_wrap=False)
    table_console.width = max(table_console.width, 160)
    rep.print_report(results, opts, table_console)
    if json_out is not None:
        rep.write_json(rep.to_json(results, opts), json_out)
        if not quiet:
            log_console.print(f"json: {json_out}", markup=False)
    if plot_out is not None:
        rep.plot(results, plot_out)
        if not quiet:
            log_console.print(f"plot: {plot_out}", markup=False)
    if all(r.error for r in results):
        # the first reason on stderr too: with -q, or stdout in a file, the table is not seen
        first = results[0].error if results else "nothing to run"
        err_console.print(f"error: no case ran: {first}", markup=False, highlight=False)
        raise SystemExit(EXIT_BAD_INPUT)


def main() -> None:
    run_single(bench_command)


if __name__ == "__main__":
    main()
