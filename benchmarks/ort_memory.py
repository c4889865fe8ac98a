"""Peak memory and latency of ONNX Runtime FP32 on the CPU: sllen's backend in bands
("bands": ``bands="on"``: rows, columns for a panorama over twice as wide as tall; "rows":
rows only, as before 2026-12-07) and on whole frames ("whole": ``bands="off"``), and the file opened
as is with ONNX Runtime's planned buffer reuse ("before": how sllen opened it until
2026-12-03). The backend's default (``auto``) is "whole" below 1080p and "bands" from 1080p up.

    python benchmarks/ort_memory.py [--model FILE] [--threads 2] [--calls 3] [--out DIR]
        [--resolution WxH ...] [--modes before,whole,bands,rows] [--rounds N]

Each case runs in a fresh process (so its peak RSS is its own): open the session, one warm-up
call, ``--calls`` timed calls on a dark frame of that size; the process reports its VmHWM (the
whole process: interpreter, libraries, model, activations) and the median call. Cases go size
by size, the modes in turn, so all see the same load. Writes table.md, bench.json and
memory.png (peak RSS against megapixels) into ``--out``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path

SIZES = ["1280x720", "1920x1080", "2560x1440", "3840x2160"]

# One case, run with `python -c`: prints a JSON line.
CASE = r"""
import json, statistics, sys, time
import numpy as np
mode, model, threads, width, height, calls = sys.argv[1:7]
threads, width, height, calls = int(threads), int(width), int(height), int(calls)
# The network takes multiples of 16; the runtime pads frames to them (1080 -> 1088).
height, width = -(-height // 16) * 16, -(-width // 16) * 16
x = (np.random.default_rng(0).random((1, 3, height, width), dtype=np.float32) * 0.25)
if mode == "before":
    import onnxruntime as ort
    from sllen.runtime.backends.onnxruntime import session_options
    opts = session_options(threads)
    opts.enable_mem_reuse = True
    s = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
    run = lambda: s.run(["output"], {"input": x})[0]
else:  # "whole": the backend on whole frames; "bands": in bands; "rows": in row bands only
    from sllen.runtime.backends.banded import BandedModel
    from sllen.runtime.backends.onnxruntime import OnnxRuntimeBackend
    if mode == "rows":
        BandedModel.axis = "rows"  # as before 2026-12-07: rows whatever the frame's shape
    bands = "off" if mode == "whole" else "on"
    b = OnnxRuntimeBackend(model, device="cpu", threads=threads, bands=bands)
    run = lambda: b.infer(x).image
def status(key):
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) // 1024 for l in f if l.startswith(key))
resident = status("VmRSS")
run()
times = []
for _ in range(calls):
    t = time.perf_counter(); run(); times.append(time.perf_counter() - t)
print(json.dumps({"mode": mode, "size": f"{width}x{height}", "resident_mb": resident,
    "peak_mb": status("VmHWM"), "median_s": statistics.median(times), "times_s": times}))
"""


def load_average() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def main() -> None:
    from sllen.runtime.bundled import bundled_onnx

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=bundled_onnx())
    ap.add_argument("--resolution", action="append", help=f"WxH (default: {', '.join(SIZES)})")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--calls", type=int, default=3)
    ap.add_argument("--before-max", type=int, default=3840 * 2160, help="pixels")
    ap.add_argument("--rounds", type=int, default=1, help="repeat the sweep (order alternates)")
    ap.add_argument(
        "--modes",
        default="before,whole,bands",
        help="comma-separated: before, whole, bands, rows (bands of rows whatever the shape)",
    )
    ap.add_argument("--out", type=Path, default=Path("bench-ort-memory"))
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    sizes = [tuple(int(v) for v in s.split("x")) for s in (args.resolution or SIZES)]
    record = {
        "command": shlex.join([Path(sys.executable).name, *sys.argv]),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
        "load_before": load_average(),
        "cases": [],
    }
    order = []
    for r in range(args.rounds):  # before/now alternate which goes first, round by round
        chosen = args.modes.split(",")
        modes = chosen if r % 2 == 0 else chosen[::-1]
        for w, h in sizes:
            order += [(w, h, m) for m in modes if m != "before" or w * h <= args.before_max]
    for w, h, mode in order:
        argv = [mode, str(args.model), str(args.threads), str(w), str(h), str(args.calls)]
        done = subprocess.run([sys.executable, "-c", CASE, *argv], capture_output=True, text=True)
        if done.returncode != 0:
            print(f"{mode} {w}x{h}: failed: {done.stderr.strip()[-300:]}", file=sys.stderr)
            continue
        case = json.loads(done.stdout.strip().splitlines()[-1])
        record["cases"].append(case)
        print(
            f"{mode:6s} {w}x{h}: peak {case['peak_mb']} MiB (resident before the first "
            f"call {case['resident_mb']} MiB), median {case['median_s']:.2f} s",
            flush=True,
        )
    record["load_after"] = load_average()
    (args.out / "bench.json").write_text(json.dumps(record, indent=1))
    rows = ["| mode | input | megapixels | peak RSS MiB | median s |", "|---|---|---|---|---|"]
    for c in record["cases"]:
        w, h = (int(v) for v in c["size"].split("x"))
        rows.append(
            f"| {c['mode']} | {c['size']} | {w * h / 1e6:.2f} | {c['peak_mb']:,} | "
            f"{c['median_s']:.2f} |"
        )
    (args.out / "table.md").write_text("\n".join(rows) + "\n")
    print("\n".join(rows))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, ax = plt.subplots(figsize=(6, 4))
    for mode, style in (("before", "o--"), ("whole", "^-."), ("bands", "s-"), ("rows", "d:")):
        pts = [
            (int(c["size"].split("x")[0]) * int(c["size"].split("x")[1]) / 1e6, c["peak_mb"])
            for c in record["cases"]
            if c["mode"] == mode
        ]
        if pts:
            ax.plot(*zip(*pts, strict=True), style, label=mode)
    ax.set_xlabel("megapixels")
    ax.set_ylabel("peak RSS (MiB, whole process)")
    ax.set_title(f"ONNX Runtime FP32, {args.threads} threads, {args.model.name}")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.out / "memory.png", dpi=120)


if __name__ == "__main__":
    main()
