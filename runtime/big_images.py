"""Signs of life while one big photo is enhanced on a CPU.

A 34.5 MP photo took 16.5 minutes on a 2-core CPU, and when stderr was not a terminal (a log,
CI) nothing was printed between the "backend:" line and the end: the run looked hung. So a
photo above BIG_PIXELS that runs on the CPU gets one line before its inference starts and,
when it runs in tiles, a line as tiles finish (at most ten) with the time so far and an
estimate of the rest. Ordinary photos, and any photo on a GPU (seconds), stay quiet.
"""

from __future__ import annotations

import time
from collections.abc import Callable

Say = Callable[[str], None]

# Above 8 MP (a 4K frame is 8.3, a phone's photo 12): minutes on a CPU, at the 29 s per MP
# of the 34.5 MP photo on one thread; below it the result line follows soon enough.
BIG_PIXELS = 8_000_000
LINES_PER_PHOTO = 10


def big_image_note(name: str, width: int, height: int, device: str, tiled: bool) -> str | None:
    """The line said before a big photo runs on the CPU (None: not big, or not on the CPU)."""
    if width * height <= BIG_PIXELS or device != "cpu":
        return None
    how = ", in tiles" if tiled else ""
    return (
        f"{name}: {width * height / 1e6:.1f} MP ({width}x{height}){how}: "
        "this takes minutes on a CPU"
    )


def duration(seconds: float) -> str:
    """``42 s``, ``3 min 5 s``, ``1 h 12 min``: as a person reads a wait."""
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s"
    return f"{s // 3600} h {s % 3600 // 60} min"


class TileLines:
    """``on_tile(done, total)`` of a tiled photo -> a line when the share done passes another
    tenth (each tile of six, one in ten of 500), with the time so far and the rest estimated
    from it. Made as the photo's inference starts."""

    def __init__(self, name: str, say: Say, clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self.say = say
        self.clock = clock
        self.start = clock()
        self.shown = 0  # tenths (LINES_PER_PHOTO-ths) already reported

    def __call__(self, done: int, total: int) -> None:
        step = done * LINES_PER_PHOTO // max(total, 1)
        if step <= self.shown:
            return
        self.shown = step
        elapsed = self.clock() - self.start
        line = f"{self.name}: {done} of {total} tiles done after {duration(elapsed)}"
        if done < total:
            line += f", about {duration(elapsed / done * (total - done))} left"
        self.say(line)


def announce(
    name: str, width: int, height: int, device: str, tile: tuple[int, int] | None, say: Say
) -> TileLines | None:
    """Say the note for a big photo; its tile reporter when it runs in tiles (``tile``: the
    enhancer's tile size for it), else None."""
    note = big_image_note(name, width, height, device, tile is not None)
    if note is None:
        return None
    say(note)
    return TileLines(name, say) if tile is not None else None
