"""ONNX Runtime FP32 memory and latency: the attention forms side by side, in one run.

    python benchmarks/attention_memory.py [--old FILE] [--new FILE] [--threads 2] [--out DIR]

The same cases as ``sllen-bench --interleave --model OLD --model NEW --resolution ...``
(sllen.bench's own runner, statistics, peak-RSS reset and report), with one difference that
sllen-bench has no option for: the old file, whose decomposed attention holds N x N scores
per head (N = pixels / 256), runs only up to ``--old-max`` (default 1920x1088; at 4K its
scores alone are 8.4 GB, twice with the softmax's output), while the new file runs at every
size. Size by size, old then new, each opened for its case (one model resident at a time).

``--old``: default, the bundled weights exported with ``attention="decomposed"`` (the form the
bundled ONNX had before ``mha``; needs torch); ``--new``: default, the bundled ONNX. Writes
bench.json (machine, date, command, load average before and after), bench.png (sllen-bench's
plot) and table.md (the markdown rows) into ``--out``.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import os
import shlex
import sys
import tempfile
from pathlib import Path

from rich.console import Console

from sllen.bench import BenchConfig, BenchOptions
from sllen.bench import report as rep
from sllen.bench.runner import run_config
from sllen.cli.bench import parse_resolution
from sllen.runtime.bundled import bundled_onnx

SIZES = ["1280x720", "1920x1080", "2560x1440", "3840x2160"]


def export_decomposed(folder: Path) -> Path:
    """The bundled weights as the decomposed-attention FP32 file (same steps as package_onnx)."""
    from sllen.export.onnx_export import export_onnx
    from sllen.export.simplify import simplify_onnx
    from sllen.model.io import load_weights
    from sllen.weights import default_weights

    raw = export_onnx(
        load_weights(default_weights()), folder / "raw.onnx", attention="decomposed",
        segmentation=True,
    )  # fmt: skip
    out = folder / "sllen-edge-decomposed.onnx"
    simplify_onnx(raw, out)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--old", type=Path, help="decomposed-attention ONNX (default: exported)")
    ap.add_argument("--new", type=Path, default=bundled_onnx())
    ap.add_argument("--resolution", action="append", help=f"WxH (default: {', '.join(SIZES)})")
    ap.add_argument("--old-max", default="1920x1088", help="largest WxH for the old file")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--iterations", type=int, default=5)
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--out", type=Path, default=Path("attention-bench"))
    args = ap.parse_args()
    console = Console(soft_wrap=True, highlight=False)
    args.out.mkdir(parents=True, exist_ok=True)
    tmp = tempfile.TemporaryDirectory()
    old = args.old or export_decomposed(Path(tmp.name))
    sizes = [parse_resolution(r) for r in args.resolution or SIZES]
    oh, ow = parse_resolution(args.old_max)
    configs = [
        BenchConfig(model=str(old), backend="onnxruntime", device="cpu", threads=args.threads),
        BenchConfig(model=str(args.new), backend="onnxruntime", device="cpu", threads=args.threads),
    ]
    opts = BenchOptions(
        configs=configs, resolutions=sizes, warmup=args.warmup, iterations=args.iterations,
        duration=args.duration, interleave=True,
    )  # fmt: skip
    load_before = os.getloadavg()
    started = dt.datetime.now(dt.timezone.utc)
    rows: list[list] = [[] for _ in configs]
    for hw in sizes:
        for i, config in enumerate(configs):
            if i == 0 and hw[0] * hw[1] > oh * ow:
                continue  # the quadratic file stops at --old-max
            one = dataclasses.replace(opts, resolutions=[hw])
            rows[i] += run_config(config, one, lambda m: console.print(m, markup=False))
    results = [r for per in rows for r in per]
    load_after = os.getloadavg()
    rep.print_report(results, opts, Console(soft_wrap=False))
    data = rep.to_json(results, opts, command=shlex.join([sys.executable, *sys.argv]))
    data["started_utc"] = started.isoformat(timespec="seconds")
    data["load_average_before_after"] = [load_before, load_after]
    rep.write_json(data, args.out / "bench.json")
    rep.plot(results, args.out / "bench.png", title=f"ONNX Runtime FP32, {args.threads} threads")
    (args.out / "table.md").write_text(rep.markdown_table(results) + "\n")
    console.print(f"load average before {load_before}, after {load_after}")
    console.print(f"wrote {args.out}/bench.json, bench.png, table.md")
    tmp.cleanup()


if __name__ == "__main__":
    main()
