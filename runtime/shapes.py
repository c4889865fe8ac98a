"""Explicit, validated TensorRT shape profiles for the SLLEN input tensor.

Sizes on the command line are written WIDTHxHEIGHT everywhere in sllen ("1280x720" is a 720p
landscape frame), as ffmpeg writes them (trtexec's shapes are the tensor's, 1x3x720x1280); in
code they are (height, width) pairs, the order of the NCHW tensor.

Why every height and width must be a multiple of 16: SLLEN's encoder halves the resolution four
times (the attention block runs at 1/16 resolution), so a frame whose sides are not multiples of
16 does not come back to its own size through the decoders. The runtime pads a frame up to the
next multiple of 16 and crops the output back; the profile must therefore be written in padded
sizes. 1080p is the usual trap: 1080 is not a multiple of 16 (1080 / 16 = 67.5), a 1920x1080
frame is padded to 1088 rows, so the default maximum is 1920x1088, not 1920x1080. Users of other
exporters report profiles computed implicitly that break exactly there (ultralytics#17350,
#19541); here the profile is explicit and checked when it is made.

Pure Python (no torch, no TensorRT). MULTIPLE here is the one pad multiple of sllen: SLLEN
downsamples by 16 (four 2x poolings), so every frame is padded to a multiple of it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from sllen.runtime.errors import InputError

MULTIPLE = 16
INPUT_NAME = "input"
CHANNELS = 3

_HW_RE = re.compile(r"^\s*(\d+)\s*[xX]\s*(\d+)\s*$")

HW = tuple[int, int]
NCHW = tuple[int, int, int, int]


def parse_size(text: str) -> HW:
    """Parse "WIDTHxHEIGHT" (e.g. "1280x720") into (height, width) = (720, 1280)."""
    if not isinstance(text, str):
        raise InputError(f"expected a WIDTHxHEIGHT string such as 1280x720, got {text!r}")
    m = _HW_RE.match(text)
    if m is None:
        raise InputError(f"expected WIDTHxHEIGHT such as 1280x720, got {text!r}")
    return int(m.group(2)), int(m.group(1))


def format_size(hw: HW) -> str:
    """(720, 1280) -> "1280x720" (WIDTHxHEIGHT)."""
    return f"{hw[1]}x{hw[0]}"


def round_up(value: int, multiple: int = MULTIPLE) -> int:
    """The smallest multiple of `multiple` that is >= value (1080 -> 1088)."""
    return -(-int(value) // multiple) * multiple


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _as_hw(value: Any, what: str) -> HW:
    if isinstance(value, str):
        h, w = parse_size(value)
    else:
        try:
            h, w = value
        except (TypeError, ValueError):
            raise InputError(
                f"{what} size must be WIDTHxHEIGHT text or a (height, width) pair, got {value!r}"
            ) from None
    if not (_is_int(h) and _is_int(w)):
        raise InputError(f"{what} size must be integers, got {value!r}")
    return h, w


def _check_side(value: int, what: str, side: str) -> None:
    if value <= 0:
        raise InputError(f"{what} {side} must be positive, got {value}")
    if value % MULTIPLE:
        raise InputError(
            f"{what} {side} {value} is not a multiple of {MULTIPLE} (SLLEN downsamples by "
            f"{MULTIPLE}; use the padded size {round_up(value)})"
        )


@dataclass(frozen=True)
class ShapeProfile:
    """One TensorRT optimization profile for the NCHW input "input" (3 channels).

    min/opt/max are (height, width) pairs or "WIDTHxHEIGHT" text; batch is (min, opt, max).
    TensorRT tunes its kernels for `opt`; any frame between min and max (elementwise) runs.
    """

    min: HW
    opt: HW
    max: HW
    batch: tuple[int, int, int] = (1, 1, 1)
    input_name: str = field(default=INPUT_NAME)
    channels: int = field(default=CHANNELS)

    def __post_init__(self) -> None:
        sizes = {}
        for what in ("min", "opt", "max"):
            hw = _as_hw(getattr(self, what), what)
            _check_side(hw[0], what, "height")
            _check_side(hw[1], what, "width")
            sizes[what] = hw
            object.__setattr__(self, what, hw)
        for i, side in enumerate(("height", "width")):
            lo, mid, hi = sizes["min"][i], sizes["opt"][i], sizes["max"][i]
            if not lo <= mid <= hi:
                raise InputError(
                    f"profile {side}s must satisfy min <= opt <= max, got min {lo}, opt {mid}, "
                    f"max {hi}"
                )
        try:
            batch = tuple(self.batch)
        except TypeError:
            raise InputError(f"batch must be (min, opt, max), got {self.batch!r}") from None
        if len(batch) != 3 or not all(_is_int(b) for b in batch):
            raise InputError(f"batch must be three integers (min, opt, max), got {self.batch!r}")
        if batch[0] < 1 or not batch[0] <= batch[1] <= batch[2]:
            raise InputError(f"batch must satisfy 1 <= min <= opt <= max, got {batch}")
        object.__setattr__(self, "batch", batch)
        if not self.input_name:
            raise InputError("input_name must not be empty")
        if self.channels < 1:
            raise InputError(f"channels must be positive, got {self.channels}")

    def for_input(self) -> tuple[NCHW, NCHW, NCHW]:
        """(min, opt, max) NCHW shapes for `profile.set_shape(self.input_name, min, opt, max)`."""
        c = self.channels
        return (
            (self.batch[0], c, *self.min),
            (self.batch[1], c, *self.opt),
            (self.batch[2], c, *self.max),
        )

    def contains(self, height: int, width: int, batch: int = 1) -> bool:
        """Whether an (already padded) input of batch x 3 x height x width fits this profile."""
        return (
            self.batch[0] <= batch <= self.batch[2]
            and self.min[0] <= height <= self.max[0]
            and self.min[1] <= width <= self.max[1]
        )

    def cli_args(self) -> str:
        """The `sllen-export` flags that recreate this profile."""
        args = " ".join(
            f"--{k}-shape {format_size(getattr(self, k))}" for k in ("min", "opt", "max")
        )
        if self.batch != (1, 1, 1):
            args += " --batch " + ",".join(str(b) for b in self.batch)
        return args

    def to_dict(self) -> dict[str, Any]:
        """JSON form stored in engine metadata; shapes are the NCHW tensors TensorRT saw."""
        mn, op, mx = self.for_input()
        return {
            "input": self.input_name,
            "min": list(mn),
            "opt": list(op),
            "max": list(mx),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ShapeProfile:
        """Inverse of `to_dict`."""
        try:
            mn, op, mx = (list(data[k]) for k in ("min", "opt", "max"))
        except (KeyError, TypeError):
            raise InputError(f"not a shape profile record: {data!r}") from None
        if not (len(mn) == len(op) == len(mx) == 4 and mn[1] == op[1] == mx[1]):
            raise InputError(f"not an NCHW shape profile record: {data!r}")
        return cls(
            min=(mn[2], mn[3]),
            opt=(op[2], op[3]),
            max=(mx[2], mx[3]),
            batch=(mn[0], op[0], mx[0]),
            input_name=data.get("input", INPUT_NAME),
            channels=mn[1],
        )

    def __str__(self) -> str:
        b = self.batch
        batch = f", batch {b[0]}..{b[2]} (opt {b[1]})" if b != (1, 1, 1) else ""
        return (
            f"min {format_size(self.min)}, opt {format_size(self.opt)}, "
            f"max {format_size(self.max)}{batch} (WIDTHxHEIGHT)"
        )


# 256x256 covers thumbnails, 1280x720 (720p) is the common video frame TensorRT tunes for, and
# 1920x1088 is 1080p padded to a multiple of 16 (1080 is not one).
DEFAULT_PROFILE = ShapeProfile(min=(256, 256), opt=(720, 1280), max=(1088, 1920))
