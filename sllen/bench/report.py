"""sllen-bench output: rich tables on the terminal, JSON for machines, a PNG plot, markdown.

Rows measured in one run on one machine are the comparable ones (a shared or throttling
machine moves all of them together), so every row carries its ratio to a reference: the
first row with the same input size and batch (the first row overall when only one size is
benchmarked).
"""

from __future__ import annotations

import datetime as _dt
import importlib
import os
import platform
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

import sllen
from sllen.bench.runner import BenchOptions, CaseResult
from sllen.runtime.backends import installed
from sllen.runtime.errors import InputError

SCHEMA = 1


# --------------------------------------------------------------------------- machine


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(module: str) -> str | None:
    if not installed(module):
        return None
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version({"torch": "torch", "onnxruntime": "onnxruntime"}.get(module, module))
    except PackageNotFoundError:
        return None


def machine_info(results: Sequence[CaseResult] = ()) -> dict[str, Any]:
    info: dict[str, Any] = {
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "sllen": sllen.__version__,
        "numpy": _version("numpy"),
        "torch": _version("torch"),
        "onnxruntime": _version("onnxruntime"),
        "tensorrt": _version("tensorrt"),
    }
    if any(r.device.startswith("cuda") for r in results) and "torch" in sys.modules:
        torch = sys.modules["torch"]
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


# --------------------------------------------------------------------------- numbers


def references(results: Sequence[CaseResult]) -> list[CaseResult | None]:
    """Each row's reference: the first successful row with the same input and batch."""
    first: dict[tuple[Any, ...], CaseResult] = {}
    out: list[CaseResult | None] = []
    for r in results:
        key = (r.input_hw, r.batch)
        if r.stats is not None and key not in first:
            first[key] = r
        out.append(first.get(key) if r.stats is not None else None)
    return out


def ratio(row: CaseResult, ref: CaseResult | None) -> float | None:
    """Mean latency of `row` over its reference's (0.5: twice as fast)."""
    if ref is None or row.stats is None or ref.stats is None or ref.stats.mean <= 0:
        return None
    return row.stats.mean / ref.stats.mean


def speedup(row: CaseResult, ref: CaseResult | None) -> float | None:
    """The reference's mean latency over `row`'s (2.0: twice as fast). The tables show this,
    not `ratio`: a walkthrough read "0.64x" (faster) as slower."""
    x = ratio(row, ref)
    return 1.0 / x if x else None


def size_text(r: CaseResult) -> str:
    h, w = r.hw
    text = f"{w}x{h}"
    if r.input_hw != r.hw:
        text += f" ({r.input_hw[1]}x{r.input_hw[0]})"
    return text + (f" x{r.batch}" if r.batch > 1 else "")


def _f(value: float | None, fmt: str = ".2f", none: str = "-") -> str:
    return none if value is None else format(value, fmt)


def layers_reference(r: CaseResult, results: Sequence[CaseResult]) -> CaseResult | None:
    """The row whose timed mean `r`'s profiling wall time is compared with: `r` itself, but
    for a whole-frame profile beside timed runs in row bands (ONNX Runtime profiles one
    session; the bands run sub-graphs of their own), a row of the same case timed on whole
    frames (--bands off), else None. The profile is kept rather than --layers refused with
    --bands on: which nodes cost most is what a profiling user reads, and the whole frame's
    nodes are the ones the bands run; only its label and comparison must say so."""
    if not r.layers_whole_frame:
        return r
    c = r.config
    for o in results:
        if (
            o.stats is not None
            and not o.timed_in_bands
            and (o.backend, o.hw, o.batch) == (r.backend, r.hw, r.batch)
            and (o.config.model, o.config.device, o.config.threads)
            == (c.model, c.device, c.threads)
        ):
            return o
    return None


def result_dict(
    r: CaseResult, ref: CaseResult | None, top_k: int, layers_ref: CaseResult | None = None
) -> dict[str, Any]:
    """One row as JSON; ``layers_ref``: the row its profile is compared with (layers_reference)."""
    c = r.config
    return {
        "label": r.label,
        "model": c.model or "bundled",
        "backend": r.backend,
        "precision": r.precision or c.precision,
        "attention": c.attention,
        "device": r.device or c.device,
        "threads": c.threads,
        "cuda_graph": c.cuda_graph,
        "bands": c.bands,
        "describe": r.describe,
        "resolution": {"height": r.hw[0], "width": r.hw[1]},
        "input": {"batch": r.batch, "height": r.input_hw[0], "width": r.input_hw[1]},
        "timer": r.timer,
        "latency_ms": r.stats.to_dict() if r.stats else None,
        "host_latency_ms": r.host_stats.to_dict() if r.host_stats else None,
        "throughput_fps": r.throughput,
        "split_ms": r.split_ms,
        "memory": r.memory.to_dict() if r.memory else None,
        "flops_per_frame": r.flops_per_frame,
        "achieved_gflops": r.achieved_gflops,
        "peak_gflops": r.peak_gflops,
        "peak_source": r.peak_source,
        "pct_of_peak": r.pct_of_peak,
        "ratio_to_reference": ratio(r, ref),
        "speedup_over_reference": speedup(r, ref),
        "harness_overhead_ms": r.harness_overhead_ms,
        "harness_overhead_pct": r.harness_overhead_pct,
        "layers": r.layers.to_dict(top_k) if r.layers else None,
        "layers_overhead_pct": r.layers_overhead_over(layers_ref) if layers_ref else None,
        "layers_whole_frame": r.layers_whole_frame,
        "timed_in_bands": r.timed_in_bands,
        "layers_error": r.layers_error,
        "error": r.error,
        "extra": r.extra,
    }


def to_json(
    results: Sequence[CaseResult], opts: BenchOptions, command: str | None = None
) -> dict[str, Any]:
    refs = references(results)
    return {
        "schema": SCHEMA,
        "tool": "sllen-bench",
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": command if command is not None else " ".join(sys.argv),
        "machine": machine_info(results),
        "options": {
            "batch": opts.batch,
            "warmup": opts.warmup,
            "iterations": opts.iterations,
            "duration": opts.duration,
            "layers": opts.layers,
            "top_k": opts.top_k,
        },
        "results": [
            result_dict(r, ref, opts.top_k, layers_reference(r, results))
            for r, ref in zip(results, refs, strict=True)
        ],
    }


def write_json(data: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    from sllen.runtime.files import atomic_write_json

    return atomic_write_json(path, data, default=str)


# --------------------------------------------------------------------------- terminal


def latency_table(results: Sequence[CaseResult]) -> Table:
    table = Table(title="latency per batch (ms)", title_justify="left")
    for name in ("#", "backend / precision", "input", "mean", "p50", "p90", "p99", "min"):
        table.add_column(name, justify="left" if name.startswith(("b", "i")) else "right")
    table.add_column("max", justify="right")
    table.add_column("fps", justify="right")
    table.add_column("speed-up", justify="right")
    for i, (r, ref) in enumerate(zip(results, references(results), strict=True), 1):
        if r.stats is None:
            table.add_row(
                str(i), escape(r.label), size_text(r), f"[red]{escape(r.error or '')}[/]", *[""] * 7
            )
            continue
        s = r.stats
        x = speedup(r, ref)
        table.add_row(
            str(i),
            escape(r.label),
            size_text(r),
            *(_f(v) for v in (s.mean, s.p50, s.p90, s.p99, s.min, s.max)),
            _f(r.throughput, ".1f"),
            "ref" if ref is r else _f(x, ".2f") + "x",
        )
    return table


def resource_table(results: Sequence[CaseResult]) -> Table:
    table = Table(title="where the time goes, memory, FLOPs", title_justify="left")
    columns = ("#", "h2d ms", "compute ms", "d2h ms", "peak RSS MB", "+RSS MB", "GPU MB")
    for name in columns + ("GFLOP/frame", "GFLOP/s", "% GEMM (est.)", "runs"):
        table.add_column(name, justify="right")
    for i, r in enumerate(results, 1):
        if r.stats is None:
            continue
        sp = r.split_ms or {}
        m = r.memory
        table.add_row(
            str(i),
            _f(sp.get("h2d")),
            _f(sp.get("compute")),
            _f(sp.get("d2h")),
            _f(m.peak_rss_mb if m else None, ".0f"),
            _f(m.added_rss_mb if m else None, ".0f"),
            _f(m.gpu_peak_mb if m else None, ".0f"),
            _f(r.flops_per_frame / 1e9 if r.flops_per_frame else None, ".1f", "n/a"),
            _f(r.achieved_gflops, ".1f", "n/a"),
            _f(r.pct_of_peak, ".0f", "n/a"),
            str(r.stats.n),
        )
    return table


def layer_table(r: CaseResult, index: int, top_k: int) -> Table | None:
    if r.layers is None:
        return None
    lp = r.layers
    table = Table(
        title=escape(
            f"#{index} {r.label} {size_text(r)}: top {top_k} of {len(lp.rows)}, {lp.source}"
            + (", whole frame (bands off for the profile)" if r.layers_whole_frame else "")
        ),
        title_justify="left",
    )
    for name in ("layer", "op", "ms/run", "share", "calls/run"):
        table.add_column(name, justify="left" if name in ("layer", "op") else "right")
    for row in lp.top(top_k):
        table.add_row(
            escape(row.name),
            escape(row.kind),
            f"{row.ms_per_run:.3f}",
            f"{100 * row.share:.1f}%",
            f"{row.calls_per_run:g}",
        )
    return table


def print_report(
    results: Sequence[CaseResult], opts: BenchOptions, console: Console | None = None
) -> None:
    console = console or Console()
    console.print(latency_table(results))
    ok = [r for r in results if r.stats is not None]
    if ok:  # where the time went: nothing to say when no case ran
        console.print(resource_table(results))
    peaks = sorted({r.peak_source for r in ok if r.peak_source})
    notes = [
        "speed-up: the mean latency of the first row with the same input size over this "
        "row's (2.00x: twice as fast; rows of one run are the comparable ones)",
        f"timer: {', '.join(sorted({r.timer for r in ok})) or '-'}; warm-up {opts.warmup}, "
        f"up to {opts.iterations} timed iterations"
        + (f" or {opts.duration:g} s" if opts.duration else ""),
    ]
    if peaks:
        notes.append(
            f"% GEMM (est.): achieved FLOP/s over the best dense GEMM measured in this run "
            f"({'; '.join(peaks)}); an estimate of the machine's reachable rate, not a "
            "datasheet peak (INT8 rows and a disturbed reference can exceed 100%)"
        )
    overhead = [r.harness_overhead_pct for r in ok if r.harness_overhead_pct is not None]
    if overhead:
        notes.append(f"timing harness overhead: at most {max(overhead):.2g}% of the latency")
    mem = sorted({r.memory.rss_method for r in ok if r.memory and r.memory.rss_method})
    if mem:
        torch_in = (
            "; torch included (loaded to count FLOPs: --no-flops leaves it out)"
            if opts.flops and installed("torch")
            else ""
        )
        notes.append(f"peak RSS: {'; '.join(mem)}{torch_in}")
    for note in notes:
        console.print(f"[dim]{escape(note)}[/]")
    for i, r in enumerate(results, 1):
        if r.layers_error:
            console.print(f"[yellow]#{i} --layers: {escape(r.layers_error)}[/]")
        table = layer_table(r, i, opts.top_k)
        if table is None:
            continue
        console.print(table)
        lp = r.layers
        assert lp is not None
        if lp.blocks:
            blocks = ", ".join(f"{b.name} {b.ms_per_run:.2f}" for b in lp.blocks)
            console.print(f"[dim]blocks (ms/run, incl. children): {escape(blocks)}[/]")
        console.print(
            f"[dim]{escape(lp.note)}; layers sum {lp.layer_ms_per_run:.2f} ms/run, wall while "
            f"profiling {lp.wall_ms_per_run:.2f} ms/run{_layers_comparison(r, results)}[/]"
        )


def _layers_comparison(r: CaseResult, results: Sequence[CaseResult]) -> str:
    """How the profiling wall time compares with a timed mean of the same path."""
    ref = layers_reference(r, results)
    if ref is None:
        return (
            " (not compared with the timed mean, which ran in row bands: add --bands off for "
            "a whole-frame mean)"
        )
    extra = r.layers_overhead_over(ref)
    if extra is None:
        return ""
    if ref is r:
        return f" ({extra:+.1f}% over the timed mean)"
    return f" ({extra:+.1f}% over the timed mean of #{results.index(ref) + 1}, whole frames)"


# --------------------------------------------------------------------------- plot


# matplotlib's Agg canvas writes these (JPEG through Pillow, a matplotlib dependency)
PLOT_FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf", ".jpg": "jpg", ".jpeg": "jpg"}


def plot_format(path: str | os.PathLike[str]) -> str:
    """The picture format its name asks for (PNG without a suffix); a one-line error for a
    suffix no picture has, so `--plot run.jpg` never holds PNG bytes."""
    suffix = Path(path).suffix.lower()
    if not suffix:
        return "png"
    if suffix not in PLOT_FORMATS:
        raise InputError(
            f"--plot {path}: write .png, .svg, .pdf or .jpg (the format follows the name)"
        )
    return PLOT_FORMATS[suffix]


def check_plot(path: str | os.PathLike[str]) -> str:
    """Before the benchmark: the format `--plot` asks for, and the matplotlib that draws it
    (missing, the one line naming sllen[eval] came after minutes of benchmark)."""
    fmt = plot_format(path)
    # the modules plot() imports; a ModuleNotFoundError becomes the CLI's extra hint
    importlib.import_module("matplotlib.backends.backend_agg")
    importlib.import_module("matplotlib.figure")
    return fmt


def plot(results: Sequence[CaseResult], path: str | os.PathLike[str], title: str = "") -> Path:
    """A picture (PNG, or the format the name's suffix gives): mean latency (min..p90 as
    error bars) against frame size, one line per configuration; with one frame size, one bar
    per configuration (a line of one point says nothing)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from sllen.runtime.files import atomic_write

    fig = Figure(figsize=(8, 5), dpi=120)
    FigureCanvasAgg(fig)  # the Agg canvas, without touching pyplot's global backend
    ax = fig.add_subplot(1, 1, 1)
    lines: dict[str, list[CaseResult]] = {}
    for r in results:
        if r.stats is not None:
            lines.setdefault(r.label, []).append(r)
    if len({r.hw for rows in lines.values() for r in rows}) == 1:
        _bars(ax, lines)
    else:
        _lines(ax, lines)
    ax.set_ylabel("latency per batch, ms (mean; bars: min..p90)")
    ax.grid(True, which="both", alpha=0.3)
    ax.set_title(title or f"sllen-bench, {cpu_name()}", fontsize=9)
    fig.tight_layout()
    fmt = plot_format(path)
    return atomic_write(path, lambda tmp: fig.savefig(str(tmp), format=fmt))


def _spread(rows: Sequence[CaseResult]) -> tuple[list[float], list[float], list[float]]:
    """Means and the (below, above) error bars: min..p90 around the mean."""
    ys = [r.stats.mean for r in rows if r.stats]
    lo = [max(0.0, r.stats.mean - r.stats.min) for r in rows if r.stats]
    hi = [max(0.0, r.stats.p90 - r.stats.mean) for r in rows if r.stats]
    return ys, lo, hi


def _bars(ax: Any, lines: dict[str, list[CaseResult]]) -> None:
    labels = list(lines)
    ys, lo, hi = _spread([rows[0] for rows in lines.values()])
    ax.bar(range(len(labels)), ys, yerr=[lo, hi], capsize=4, color="#4878a8")
    ax.set_xticks(range(len(labels)), labels, rotation=20, ha="right", fontsize=8)
    h, w = next(iter(lines.values()))[0].hw
    ax.set_xlabel(f"configuration at {w}x{h}")


def _lines(ax: Any, lines: dict[str, list[CaseResult]]) -> None:
    from matplotlib.ticker import NullLocator, ScalarFormatter

    sizes: dict[float, str] = {}
    for label, rows in lines.items():
        rows = sorted(rows, key=lambda r: r.hw[0] * r.hw[1])
        xs = [r.hw[0] * r.hw[1] / 1e6 for r in rows]
        ys, lo, hi = _spread(rows)
        ax.errorbar(xs, ys, yerr=[lo, hi], marker="o", capsize=3, label=label)
        for r, x in zip(rows, xs, strict=True):
            sizes[x] = f"{r.hw[1]}x{r.hw[0]}"
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(list(sizes), list(sizes.values()))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.yaxis.set_major_formatter(ScalarFormatter())
    ax.yaxis.set_minor_formatter(ScalarFormatter())
    ax.set_xlabel("frame size")
    if lines:
        ax.legend(fontsize=8)


# --------------------------------------------------------------------------- markdown


def markdown_table(results: Sequence[CaseResult]) -> str:
    """The latency rows as a GitHub markdown table (docs/performance.md)."""
    head = (
        "| # | backend / precision | input | mean ms | p50 | p90 | p99 | fps | speed-up | "
        "GFLOP/frame | GFLOP/s | % GEMM (est.) | +RSS MB | runs |"
    )
    columns = head.count("|") - 1
    lines = [head, "|" + "---|" * columns]
    for i, (r, ref) in enumerate(zip(results, references(results), strict=True), 1):
        if r.stats is None:
            lines.append(f"| {i} | {r.label} | {size_text(r)} | {r.error} |" + " |" * (columns - 4))
            continue
        s = r.stats
        x = speedup(r, ref)
        lines.append(
            f"| {i} | {r.label} | {size_text(r)} | {s.mean:.1f} | {s.p50:.1f} | {s.p90:.1f} | "
            f"{s.p99:.1f} | {_f(r.throughput, '.2f')} | "
            f"{'ref' if ref is r else _f(x, '.2f') + 'x'} | "
            f"{_f(r.flops_per_frame / 1e9 if r.flops_per_frame else None, '.1f', 'n/a')} | "
            f"{_f(r.achieved_gflops, '.1f', 'n/a')} | {_f(r.pct_of_peak, '.0f', 'n/a')} | "
            f"{_f(r.memory.added_rss_mb if r.memory else None, '.0f')} | {s.n} |"
        )
    return "\n".join(lines)
