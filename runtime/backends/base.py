"""The one interface every inference backend follows (in the style of Polygraphy's runners).

A backend is opened on one model file, checks inputs against what the model accepts, runs a
batch, records how long each part took, and is closed (it is a context manager). The
pre/post-processing, tiling and video code only ever see this interface, so TensorRT, ONNX
Runtime and PyTorch are interchangeable behind ``sllen-run`` and ``sllen-bench``.

Contract of :meth:`Backend.infer`:

- ``x``: float32 ``[N, 3, H, W]`` in [0, 1], C-contiguous, H and W multiples of
  ``info.multiple`` (16), inside ``info.min_hw`` .. ``info.max_hw`` when those are set (an
  engine's optimization profile), N at most ``info.max_batch`` when set. Anything else raises
  :class:`InputError` (a ValueError: one line for the CLI).
- returns :class:`Outputs`: ``image`` float32 ``[N, 3, H, W]`` in [0, 1] on the host;
  ``segmentation`` float32 ``[N, K, H, W]`` logits only when asked for and
  ``info.has_segmentation``.
- ``last_timing`` afterwards holds the split of that call (host-to-device, compute,
  device-to-host; seconds). Backends without a device copy report zeros for the copies.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, ClassVar

import numpy as np

# Defined beside the environment checks that raise it (below the backends and cuda_buffers).
from sllen.runtime.env import BackendUnavailableError  # noqa: F401 - part of this interface
from sllen.runtime.errors import InputError  # inputs a model cannot take; a bad device
from sllen.runtime.shapes import MULTIPLE

BACKENDS = ("tensorrt", "onnxruntime", "pytorch")


DEVICES = "auto, cpu, cuda or cuda:N"


def check_device(device: str) -> str:
    """``device`` if it is one of DEVICES; else a one-line InputError before any backend loads
    (a typo would otherwise reach torch's own parser, or run silently on the CPU)."""
    if device in ("auto", "cpu", "cuda") or (device.startswith("cuda:") and device[5:].isdigit()):
        return device
    raise InputError(f"--device must be {DEVICES}, not {device!r}")


@dataclass(frozen=True)
class Outputs:
    image: np.ndarray
    segmentation: np.ndarray | None = None


@dataclass
class Timing:
    """Seconds spent in one ``infer`` call, split like trtexec's H2D / GPU compute / D2H."""

    h2d: float = 0.0
    compute: float = 0.0
    d2h: float = 0.0

    @property
    def total(self) -> float:
        return self.h2d + self.compute + self.d2h


@dataclass(frozen=True)
class BackendInfo:
    """What a backend runs and what it accepts; printed by sllen-run, stored by sllen-bench."""

    backend: str  # one of BACKENDS
    model: str  # the file loaded ("<bundled> ..." for the package's default)
    device: str  # "cpu", "cuda:0", ...
    precision: str  # "fp32", "fp16", "int8"
    detail: str = ""  # provider list, attention implementation, TensorRT version, ...
    multiple: int = MULTIPLE
    min_hw: tuple[int, int] | None = None
    opt_hw: tuple[int, int] | None = None
    max_hw: tuple[int, int] | None = None
    max_batch: int | None = None
    # Frames above this many (padded) pixels are tiled by default: a memory budget, for
    # backends whose memory grows faster than the frame (ONNX Runtime's attention scores).
    max_pixels: int | None = None
    has_segmentation: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        text = f"{self.backend} on {self.device}, {self.precision}, {self.model}"
        return f"{text} ({self.detail})" if self.detail else text


class Backend(ABC):
    """Base class: subclasses load in ``__init__`` and implement ``_infer`` and ``close``."""

    name: ClassVar[str]

    def __init__(self) -> None:
        self.last_timing = Timing()
        self._closed = False

    @property
    @abstractmethod
    def info(self) -> BackendInfo: ...

    def check_input(self, x: np.ndarray) -> None:
        """Refuse an input the model cannot take, with one line that says what is wrong."""
        info = self.info
        if not isinstance(x, np.ndarray) or x.dtype != np.float32:
            raise InputError(f"expected a float32 array, got {getattr(x, 'dtype', type(x))}")
        if x.ndim != 4 or x.shape[1] != 3:
            raise InputError(f"expected shape [N, 3, H, W], got {list(x.shape)}")
        n, _, h, w = x.shape
        if n < 1 or h % info.multiple or w % info.multiple:
            raise InputError(
                f"height and width must be multiples of {info.multiple}, got {h}x{w} "
                "(the runtime's preprocessing pads; see sllen.runtime.preprocess)"
            )
        if info.max_batch is not None and n > info.max_batch:
            raise InputError(f"batch {n} is above the model's maximum {info.max_batch}")
        if info.min_hw is not None and (h < info.min_hw[0] or w < info.min_hw[1]):
            raise InputError(
                f"{h}x{w} is below the model's minimum {info.min_hw[0]}x{info.min_hw[1]}"
            )
        if info.max_hw is not None and (h > info.max_hw[0] or w > info.max_hw[1]):
            raise InputError(
                f"{h}x{w} is above the model's maximum {info.max_hw[0]}x{info.max_hw[1]} "
                "(the runtime tiles larger frames; see sllen.runtime.tiling)"
            )

    def infer(self, x: np.ndarray, *, segmentation: bool = False) -> Outputs:
        if self._closed:
            raise InputError(f"the {self.name} backend is closed: open the model again")
        self.check_input(x)
        if segmentation and not self.info.has_segmentation:
            raise InputError(
                f"{self.info.model} has no segmentation output (use the PyTorch backend, or "
                "a file made by sllen-export --segmentation)"
            )
        self.last_timing = Timing()
        start = time.perf_counter()
        out = self._infer(np.ascontiguousarray(x), segmentation)
        if self.last_timing.total == 0.0:  # a backend that does not split its time
            self.last_timing = Timing(compute=time.perf_counter() - start)
        return out

    @abstractmethod
    def _infer(self, x: np.ndarray, segmentation: bool) -> Outputs:
        """Run one checked batch; set ``self.last_timing`` (a fresh Timing) when it can split."""

    def warmup(self, hw: tuple[int, int], batch: int = 1, iterations: int = 2) -> None:
        """Run a few dummy batches so the first real frame does not pay for lazy setup."""
        x = np.full((batch, 3, *hw), 0.1, dtype=np.float32)
        for _ in range(iterations):
            self.infer(x)

    def close(self) -> None:
        self._closed = True

    def __enter__(self) -> Backend:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
