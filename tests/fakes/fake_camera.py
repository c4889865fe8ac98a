"""A fake network camera: an H.264 MPEG-TS stream sent over UDP to 127.0.0.1 (loopback only).

Real cameras repeat a keyframe every second or two, so a receiver that joins late (or
reconnects) decodes from the next one; this one does too (``gop`` frames).
"""

from __future__ import annotations

import socket
import threading
import time
from fractions import Fraction

import av
import numpy as np


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class FakeCamera(threading.Thread):
    """Sends `size` (w, h) frames at `fps` to udp://127.0.0.1:`port` until `stop()` (or for
    `seconds`); ``pause(after, seconds)`` goes silent once, as a camera that drops."""

    def __init__(
        self,
        port: int,
        *,
        size: tuple[int, int] = (160, 96),
        fps: int = 25,
        gop: int = 12,
        seconds: float = 60.0,
        pause: tuple[float, float] | None = None,
    ) -> None:
        super().__init__(daemon=True)
        self.port, self.size, self.fps, self.gop = port, size, fps, gop
        self.seconds, self.pause = seconds, pause
        self.sent = 0
        self._halt = threading.Event()

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=5)

    def run(self) -> None:
        w, h = self.size
        url = f"udp://127.0.0.1:{self.port}?pkt_size=1316"
        out = av.open(url, "w", format="mpegts")
        stream = out.add_stream("libx264", rate=self.fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"tune": "zerolatency", "preset": "ultrafast", "g": str(self.gop)}
        rng = np.random.default_rng(0)
        base = rng.integers(0, 60, (h, w, 3), dtype=np.uint8)  # a dark, textured scene
        start = time.monotonic()
        paused = False
        try:
            i = 0
            while not self._halt.is_set() and time.monotonic() - start < self.seconds:
                if self.pause and not paused and time.monotonic() - start >= self.pause[0]:
                    paused = True
                    if self._halt.wait(self.pause[1]):
                        break
                    start += self.pause[1]
                frame = av.VideoFrame.from_ndarray(np.roll(base, 2 * i, axis=1), format="rgb24")
                frame.pts, frame.time_base = i, Fraction(1, self.fps)
                out.mux(stream.encode(frame))
                self.sent += 1
                i += 1
                time.sleep(max(0.0, start + i / self.fps - time.monotonic()))
            out.mux(stream.encode(None))
        finally:
            out.close()
