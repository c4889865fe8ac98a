"""Does a long video keep its memory flat? RSS over time while sllen-run enhances clips.

Makes test clips from the bundled sample (scaled to each size and looped to the frame count),
runs sllen-run's own pipeline (decode -> enhance -> encode threads, ONNX Runtime, the bundled
model) on each, samples the process's RSS every 0.2 s, and reports per clip the RSS after
warm-up (the first 10% of the frames), the peak, and the growth from the end of warm-up to
the end (a leak shows as growth proportional to the frames). Writes video_memory.json and a
plot (RSS against frames done) into --out.

python benchmarks/video_memory.py [--out DIR] [--threads 2] [--sizes 640x360:300,1920x1080:100]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import tempfile
import threading
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

from sllen.runtime import video
from sllen.runtime.backends import open_backend
from sllen.runtime.enhancer import Enhancer
from sllen.runtime.run import RunOptions, run_files
from sllen.samples import sample_clip

WARMUP_FRACTION = 0.1


def rss_mb() -> float:
    """Resident set size of this process now (Linux /proc), in MB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def make_clip(dst: Path, size: tuple[int, int], frames: int) -> Path:
    """The sample clip scaled to size (W, H), looped to `frames` frames, H.264."""
    import av
    from PIL import Image

    src = list(video.read_frames(sample_clip()))
    rate = Fraction(video.probe(sample_clip()).fps).limit_denominator(1000)
    with av.open(str(dst), "w") as out:
        stream = out.add_stream("libx264", rate=rate)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": "ultrafast"}
        for i in range(frames):
            rgb = np.asarray(Image.fromarray(src[i % len(src)].image).resize(size))
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return dst


def run_clip(clip: Path, out: Path, threads: int) -> dict:
    samples: list[tuple[float, int, float]] = []  # (seconds, frames done, RSS MB)
    done = [0]
    stop = threading.Event()

    def sample() -> None:
        t0 = time.perf_counter()
        while not stop.is_set():
            samples.append((time.perf_counter() - t0, done[0], rss_mb()))
            stop.wait(0.2)

    def progress(_name: str, frame: int, _total: int) -> None:
        done[0] = frame

    before = rss_mb()
    sampler = threading.Thread(target=sample, daemon=True)
    with open_backend(None, "onnxruntime", threads=threads) as backend:
        sampler.start()
        summary = run_files([clip], Enhancer(backend), RunOptions(output=out), progress=progress)
        stop.set()
        sampler.join()
    result = summary.results[0]
    if result.error:
        raise RuntimeError(f"{clip}: {result.error}")
    total = result.frames
    warm = [s for s in samples if s[1] >= max(1, int(total * WARMUP_FRACTION))]
    after_warmup = warm[0][2] if warm else samples[-1][2]
    end = samples[-1][2]
    return {
        "clip": clip.name,
        "frames": total,
        "seconds": round(result.seconds, 1),
        "rss_before_mb": round(before, 1),
        "rss_after_warmup_mb": round(after_warmup, 1),
        "rss_end_mb": round(end, 1),
        "rss_peak_mb": round(max(s[2] for s in samples), 1),
        "growth_after_warmup_mb": round(end - after_warmup, 1),
        "samples": [(round(t, 2), f, round(m, 1)) for t, f, m in samples],
    }


def plot(rows: list[dict], path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 4.5), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    for r in rows:
        frames = [s[1] / r["frames"] for s in r["samples"]]
        ax.plot(frames, [s[2] for s in r["samples"]], label=f"{r['clip']} ({r['frames']} frames)")
    ax.set_xlabel("fraction of the frames done")
    ax.set_ylabel("RSS, MB")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("sllen-run memory over a video (ONNX Runtime FP32, bundled model)", fontsize=9)
    fig.tight_layout()
    fig.savefig(str(path), format="png")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("video-memory"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--sizes", default="640x360:300,1920x1080:100", help="WxH:frames,...")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="sllen-vmem-") as tmp:
        for item in args.sizes.split(","):
            dims, frames = item.split(":")
            w, h = (int(v) for v in dims.lower().split("x"))
            clip = make_clip(Path(tmp) / f"clip-{w}x{h}.mp4", (w, h), int(frames))
            row = run_clip(clip, Path(tmp) / "out", args.threads)
            rows.append(row)
            print(
                f"{row['clip']}: {row['frames']} frames in {row['seconds']} s; RSS after "
                f"warm-up {row['rss_after_warmup_mb']} MB, end {row['rss_end_mb']} MB "
                f"(growth {row['growth_after_warmup_mb']:+} MB), peak {row['rss_peak_mb']} MB",
                flush=True,
            )
    meta = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "cpu_count": os.cpu_count(),
        "threads": args.threads,
        "command": "python benchmarks/video_memory.py "
        f"--threads {args.threads} --sizes {args.sizes}",
    }
    (args.out / "video_memory.json").write_text(json.dumps({**meta, "clips": rows}, indent=1))
    plot(rows, args.out / "video_memory.png")
    print(f"wrote {args.out / 'video_memory.json'} and {args.out / 'video_memory.png'}")


if __name__ == "__main__":
    main()
