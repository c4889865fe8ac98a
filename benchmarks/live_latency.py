"""Live latency and drop rate: a camera stream over UDP loopback, enhanced as it arrives.

A sender thread plays the bundled sample clip (scaled to --size, looped) as an H.264 MPEG-TS
stream at --fps to udp://127.0.0.1 (a keyframe every second, as IP cameras do); sllen's live
pipeline (sllen.runtime.live.run_live: capture -> drop-oldest queue -> model -> x264
zerolatency) reads it for --seconds and writes a file. Prints frames in/out, the drop rate,
capture-to-output latency p50/p99 and the output frame rate, next to the model's own time per
frame at that size, and writes live_latency.json into --out.

python benchmarks/live_latency.py [--size 640x360] [--fps 25] [--seconds 20] [--threads 2]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import socket
import tempfile
import threading
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

from sllen.runtime import video
from sllen.runtime.backends import open_backend
from sllen.runtime.enhancer import Enhancer
from sllen.runtime.live import LiveOptions, run_live
from sllen.runtime.run import RunOptions
from sllen.runtime.shapes import parse_size
from sllen.samples import sample_clip


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def send(port: int, frames: list[np.ndarray], fps: int, stop: threading.Event) -> None:
    h, w = frames[0].shape[:2]
    out = av.open(f"udp://127.0.0.1:{port}?pkt_size=1316", "w", format="mpegts")
    s = out.add_stream("libx264", rate=fps)
    s.width, s.height, s.pix_fmt = w, h, "yuv420p"
    s.options = {"tune": "zerolatency", "preset": "ultrafast", "g": str(fps)}
    start, i = time.monotonic(), 0
    while not stop.is_set():
        f = av.VideoFrame.from_ndarray(frames[i % len(frames)], format="rgb24")
        f.pts, f.time_base = i, Fraction(1, fps)
        out.mux(s.encode(f))
        i += 1
        time.sleep(max(0.0, start + i / fps - time.monotonic()))
    out.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", default="640x360", help="WIDTHxHEIGHT of the stream")
    ap.add_argument("--fps", type=int, default=25)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--model", default=None, help="an .onnx file (default: the bundled model)")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = ap.parse_args()
    h, w = parse_size(args.size)
    frames = [
        np.asarray(Image.fromarray(f.image).resize((w, h), Image.BILINEAR))
        for f in video.read_frames(sample_clip())
    ]
    with open_backend(args.model, "onnxruntime", threads=args.threads) as backend:
        enhancer = Enhancer(backend)
        probe = frames[0].astype(np.float32) / 255
        enhancer.enhance([probe])  # warm-up
        t = time.perf_counter()
        for _ in range(5):
            enhancer.enhance([probe])
        model_ms = (time.perf_counter() - t) / 5 * 1000
        port, stop = free_port(), threading.Event()
        sender = threading.Thread(target=send, args=(port, frames, args.fps, stop), daemon=True)
        threading.Timer(0.5, sender.start).start()
        with tempfile.TemporaryDirectory() as tmp:
            result = run_live(
                f"udp://127.0.0.1:{port}",
                Path(tmp) / "live.mp4",
                enhancer,
                RunOptions(),
                LiveOptions(duration=args.seconds, timeout=10),
            )
        stop.set()
    row = {
        "size": args.size,
        "source_fps": args.fps,
        "seconds": round(result.seconds, 2),
        "frames_in": result.frames_in,
        "frames_out": result.frames_out,
        "dropped": result.dropped,
        "drop_rate": round(result.drop_rate, 3),
        "latency_p50_ms": round(result.latency_ms(50) or 0, 1),
        "latency_p99_ms": round(result.latency_ms(99) or 0, 1),
        "fps_out": round(result.frames_out / result.seconds, 2),
        "model_ms_per_frame": round(model_ms, 1),
        "threads": args.threads,
        "cpus": os.cpu_count(),
        "load_avg_1min": round(os.getloadavg()[0], 2),
        "date": dt.date.today().isoformat(),
    }
    for k, v in row.items():
        print(f"{k:>20}: {v}")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "live_latency.json").write_text(json.dumps(row, indent=2) + "\n")


if __name__ == "__main__":
    main()
