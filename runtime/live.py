"""Live enhancement: a camera or stream in, enhanced video out (a file or a stream), low latency.

Three threads, as for a video file, but joined differently:

- capture -> model: a queue of ``queue`` frames (1 by default) that never blocks the capture.
  When the model is slower than the source, the oldest waiting frame is dropped and counted:
  the output falls behind by at most one frame instead of a backlog that grows without end
  (and a network source read too slowly overruns its socket buffer anyway).
- model -> encoder: a short blocking queue; a slow encoder slows the model, which drops.
- The encoder runs x264/x265 with ``tune=zerolatency`` (no look-ahead): a frame is muxed
  when it is encoded, so the latency measured at the muxer is what a viewer gets.

Latency is from the moment a frame left the decoder (``LiveFrame.captured``) to the moment
its enhanced frame was muxed, per frame; the summary gives p50/p99. A run stops at
``duration`` seconds, after ``frames`` output frames, when the source ends, or on Ctrl-C
(SIGINT/SIGTERM in the CLI); every stop closes the output properly, so the file plays.
"""

from __future__ import annotations

import collections
import dataclasses
import math
import queue
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from sllen.runtime.api import FrameEnhancer
from sllen.runtime.enhancer import Enhancer, StageTimes
from sllen.runtime.errors import InputError
from sllen.runtime.run import ProgressFn, RunOptions, _preset, enhance_clip
from sllen.runtime.video.live import (
    TIME_BASE,
    LiveSource,
    is_device,
    is_stream_output,
    redact,
    scheme,
)

LIVE_TUNE = {"libx264": {"tune": "zerolatency"}, "libx265": {"tune": "zerolatency"}}


@dataclass
class LiveOptions:
    duration: float | None = None  # seconds of running, then stop
    frames: int | None = None  # output frames, then stop
    reconnect: int = 3  # attempts after the source drops, before giving up
    timeout: float = 10.0  # seconds a read may wait for data
    queue: int = 1  # frames waiting for the model; beyond that the oldest is dropped
    realtime: bool = False  # a file source: read at its frame rate, as a camera delivers

    def __post_init__(self) -> None:
        if self.duration is not None and not 0 < self.duration < math.inf:  # NaN too
            raise InputError(f"--duration must be positive seconds, got {self.duration}")
        if self.frames is not None and self.frames < 1:
            raise InputError(f"--frames must be at least 1, got {self.frames}")
        if not 0 < self.timeout < math.inf:
            raise InputError(f"--timeout must be positive seconds, got {self.timeout}")
        if self.queue < 1:
            raise InputError(f"the live queue must hold at least 1 frame, got {self.queue}")


@dataclass
class LiveResult:
    source: str
    output: str
    frames_in: int = 0  # frames the source delivered
    frames_out: int = 0  # frames written
    dropped: int = 0  # frames dropped because the model was busy
    reconnects: int = 0
    decode_errors: int = 0
    seconds: float = 0.0
    stopped_by: str = ""  # "duration", "frames", "end", "interrupt" or "error"
    error: str | None = None  # the source gave up (the output so far is still written)
    fps: float | None = None  # the source's frame rate
    latencies: list[float] = field(default_factory=list, repr=False)  # seconds per frame
    times: StageTimes = field(default_factory=StageTimes)

    def latency_ms(self, q: float) -> float | None:
        if not self.latencies:
            return None
        return float(np.percentile(np.asarray(self.latencies), q) * 1000)

    @property
    def drop_rate(self) -> float:
        return self.dropped / self.frames_in if self.frames_in else 0.0


class DropOldest:
    """A queue whose ``put`` does not wait: when full, the oldest item is dropped and counted
    (unless ``put`` is given a ``wait_while``: a file over http, whose frames are all wanted)."""

    def __init__(self, size: int) -> None:
        self._items: collections.deque[Any] = collections.deque()
        self._size = size
        self._cond = threading.Condition()
        self.dropped = 0

    def put(self, item: Any, wait_while: Callable[[], bool] | None = None) -> None:
        """Add `item`; when full, drop the oldest, or with `wait_while` wait for room as long
        as it returns True (a file read over http: every frame is wanted, none is late)."""
        with self._cond:
            while wait_while is not None and len(self._items) >= self._size and wait_while():
                self._cond.wait(0.1)
            if len(self._items) >= self._size:
                self._items.popleft()
                self.dropped += 1
            self._items.append(item)
            self._cond.notify_all()

    def get_many(self, most: int, timeout: float) -> list[Any]:
        """Up to `most` items (at least one, else [] after `timeout` seconds)."""
        with self._cond:
            if not self._items:
                self._cond.wait(timeout)
            out: list[Any] = []
            while self._items and len(out) < most:
                out.append(self._items.popleft())
            self._cond.notify_all()  # room for a waiting put
            return out


def live_output_path(source: str, target: Path) -> Path:
    """Where a live recording goes when ``-o`` names a folder: SOURCE-YYYYmmdd-HHMMSS.mp4."""
    if is_device(source):
        stem = Path(source).name
    else:
        stem = redact(source).split("://", 1)[-1].split("?", 1)[0]
        stem = f"{scheme(source)}-{re.sub(r'[^A-Za-z0-9.]+', '-', stem).strip('-')}"
    return target / f"{stem[:80]}-{datetime.now().strftime('%Y%m%d-%H%M%S')}.mp4"


_END = object()


def run_live(
    source: str,
    output: str | Path,
    enhancer: Enhancer,
    opts: RunOptions,
    live: LiveOptions,
    *,
    progress: ProgressFn | None = None,
) -> LiveResult:
    """Enhance `source` (a stream URL, /dev/videoN, or a file with ``live.realtime``) into
    `output` (a video file path or a stream URL) until a stop condition (module doc)."""
    from sllen.runtime import video

    out_label = redact(str(output)) if is_stream_output(str(output)) else str(output)
    result = LiveResult(redact(source), out_label)
    src = _opened(
        LiveSource(source, timeout=live.timeout, reconnect=live.reconnect, realtime=live.realtime)
    )
    result.fps = float(src.fps)
    frames = FrameEnhancer(enhancer, fps=src.fps, smooth=opts.smooth)
    waiting = DropOldest(live.queue)
    encoded: queue.Queue[Any] = queue.Queue(4)
    stop = threading.Event()  # stop capturing (a stop condition, Ctrl-C, or a failure)
    errors: list[BaseException] = []
    source_error: list[str] = []
    times = result.times

    def capture() -> None:
        wait = (lambda: not stop.is_set()) if src.on_demand else None
        try:
            for frame in src:
                if stop.is_set():
                    break
                waiting.put(frame, wait)
        except video.VideoError as e:
            source_error.append(str(e))
        except BaseException as e:  # noqa: BLE001 - handed to the main thread
            errors.append(e)
        finally:
            waiting.put(_END, lambda: not stop.is_set())  # the end never drops the last frame
            src.close()

    def encode() -> None:
        writer: Any = None
        try:
            while True:
                item = encoded.get()
                if item is _END:
                    break
                frame, image = item
                if writer is None:
                    h, w = image.shape[:2]
                    info = _live_info(result.source, w, h, src.fps, src.sample_aspect_ratio)
                    codec = opts.codec
                    writer = video.VideoWriter(
                        output,
                        info,
                        codec=codec,
                        crf=opts.crf,
                        preset=_preset(opts),
                        pix_fmt=opts.pix_fmt,
                        options=LIVE_TUNE.get(codec),
                    )
                t = time.perf_counter()
                writer.write(image, round(frame.time / TIME_BASE))
                times.encode += time.perf_counter() - t
                result.latencies.append(time.monotonic() - frame.captured)
                result.frames_out += 1
                if progress:
                    progress(result.source, result.frames_out, live.frames)
            if writer is not None:
                writer.close()  # a clean stop of any kind: the file is finished and playable
        except BaseException as e:  # noqa: BLE001 - handed to the main thread
            if writer is not None:
                writer.abort()
            errors.append(e)
            stop.set()

    threads = [threading.Thread(target=capture, daemon=True), threading.Thread(target=encode)]
    start = time.monotonic()
    for t in threads:
        t.start()
    before = dataclasses.replace(enhancer.times)
    sent = 0
    first: float | None = None  # the output's first frame time: --duration is its length too
    try:
        while not errors:
            if live.duration is not None and time.monotonic() - start >= live.duration:
                result.stopped_by = "duration"
                break
            most = enhancer.batch
            if live.frames is not None:
                most = min(most, live.frames - sent)
            batch = waiting.get_many(most, 0.1)
            if not batch:
                continue
            end = batch[-1] is _END
            batch = [f for f in batch if f is not _END]
            if batch and live.duration is not None:
                # Frames buffered while the source was probed carry earlier source times: the
                # wall clock alone made --duration 8 an 8.9 s file.
                first = batch[0].time if first is None else first
                kept = [f for f in batch if f.time - first < live.duration]
                if len(kept) < len(batch):
                    batch, end, result.stopped_by = kept, True, "duration"
            if batch:
                results = enhance_clip([f.image for f in batch], frames, opts.side_by_side)
                for frame, (image8, _) in zip(batch, results, strict=True):
                    _put(encoded, (frame, image8), errors)
                sent += len(batch)
            if end:
                result.stopped_by = result.stopped_by or ("error" if source_error else "end")
                break
            if live.frames is not None and sent >= live.frames:
                result.stopped_by = "frames"
                break
    except KeyboardInterrupt:
        result.stopped_by = "interrupt"  # finish the file with what was enhanced
    finally:
        stop.set()
        _put(encoded, _END, errors)
        threads[1].join()
        threads[0].join(timeout=1.0)  # a read blocked on a dead source ends at its timeout
    if errors:
        raise errors[0]
    if source_error:
        result.error = source_error[0]
    result.seconds = time.monotonic() - start
    result.frames_in = src.frames
    result.dropped = waiting.dropped
    result.reconnects = src.reconnects
    result.decode_errors = src.decode_errors
    delta = enhancer.times.since(before)
    times.pre, times.infer, times.post = delta.pre, delta.infer, delta.post
    times.frames = result.frames_out
    return result


def _opened(src: LiveSource) -> LiveSource:
    """``src.open()`` on a helper thread: FFmpeg's blocking open would hold Ctrl-C and SIGTERM
    until its timeout; the main thread waits in short joins, where the signal is raised. A
    source that opens after the caller gave up is closed (a camera left busy otherwise)."""
    failed: list[BaseException] = []
    abandoned = threading.Event()

    def connect() -> None:
        try:
            src.open()
        except BaseException as e:  # noqa: BLE001 - raised again on the main thread
            failed.append(e)
        else:
            if abandoned.is_set():
                src.close()

    opener = threading.Thread(target=connect, daemon=True)
    opener.start()
    try:
        while opener.is_alive():
            opener.join(0.1)
    except BaseException:
        abandoned.set()
        opener.join(0.5)  # an open finishing just now may have missed the flag
        if not opener.is_alive() and not failed:
            src.close()  # (closing twice is harmless)
        raise
    if failed:
        raise failed[0]
    return src


def _put(q: queue.Queue[Any], item: Any, errors: list[BaseException]) -> None:
    """Put, unless the encoder thread died (then nobody would ever take it)."""
    while not errors:
        try:
            q.put(item, timeout=0.1)
            return
        except queue.Full:
            continue


def _live_info(name: str, width: int, height: int, fps: Any, sar: Any = None) -> Any:
    from sllen.runtime.video import VideoInfo

    return VideoInfo(
        path=name,
        width=width,
        height=height,
        fps=fps,
        time_base=TIME_BASE,
        frame_count=None,
        duration=None,
        codec="",
        pix_fmt=None,
        container="",
        sample_aspect_ratio=sar,  # the pixel shape the source states (anamorphic cameras)
    )
