"""Enhancement from a program that already has frames: open once, enhance numpy frames.

For a capture loop (a detector, a robot, a notebook) that holds frames as numpy arrays::

    from sllen.runtime import open_enhancer

    with open_enhancer("sllen-int8.engine", fps=30) as enhance:   # None: the bundled model
        for frame in camera:                                      # uint8 HxWx3 RGB
            bright = enhance(frame)                               # uint8 HxWx3 RGB

The same backends (TensorRT, ONNX Runtime, PyTorch), padding, tiling, batching and temporal
smoothing as ``sllen-run``: :class:`FrameEnhancer` is what ``sllen-run`` itself drives for
video and live streams. :class:`EnhancerSpec` is how to open a model, as plain picklable data,
so Ray workers (``sllen-run --ray``) open exactly what a local run opens.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from sllen.runtime.backends.base import Backend, BackendInfo, check_device
from sllen.runtime.enhancer import Enhancer, StageTimes
from sllen.runtime.errors import InputError
from sllen.runtime.exposure import check_exposure
from sllen.runtime.preprocess import to_float, to_uint8
from sllen.runtime.temporal import DEFAULT_SMOOTHING, TemporalSmoother
from sllen.runtime.well_exposed import DEFAULT_MODE, ClipKeepWeight, check_mode

CHANNELS = ("rgb", "bgr")


# Backend options: (the backend each applies to, its default, its sllen-run flag). Set on
# another backend it would do nothing, so it is refused; left at its default it asks nothing.
BACKEND_OPTIONS: dict[str, tuple[str, Any, str]] = {
    "precision": ("pytorch", "auto", "--precision"),
    "attention": ("pytorch", "auto", "--attention"),
    "bands": ("onnxruntime", "auto", "--bands"),
    "cuda_graph": ("tensorrt", False, "--cuda-graph"),
    "plugin_library": ("tensorrt", None, "--plugin"),
}
_BACKEND_WORDS = {  # {asked}: how to ask for the backend (the bundled model runs on either)
    "pytorch": "the pytorch backend (.safetensors weights, or {asked})",
    "onnxruntime": "ONNX Runtime (the onnxruntime backend, .onnx files)",
    "tensorrt": "TensorRT engines (the tensorrt backend, .engine files)",
}
_OPTION_NOTES = {
    "precision": ": ONNX and engine files carry their own precision (sllen-export --fp16 / --int8)"
}


def backend_options(
    backend: str, options: Mapping[str, Any], *, cli: bool = False, reason: str = ""
) -> dict[str, Any]:
    """The ``options`` that go to ``backend`` (the resolved name, not "auto"); an InputError
    for one set for another backend, named as sllen-run's flag (``cli``) or as the keyword.
    Options this table does not know go through (the backend's TypeError names them)."""
    kept: dict[str, Any] = {}
    for key, value in options.items():
        owner, default, flag = BACKEND_OPTIONS.get(key, (backend, None, ""))
        if owner == backend:
            kept[key] = value
        elif value != default:
            name = flag if cli else f"{key}={value!r}"
            asked = f"--backend {owner}" if cli else f'backend="{owner}"'
            where = _BACKEND_WORDS[owner].format(asked=asked)
            why = f" ({reason})" if reason else ""
            raise InputError(
                f"{name} applies to {where}; this run uses {backend}{why}"
                + _OPTION_NOTES.get(key, "")
            )
    return kept


@dataclass(frozen=True)
class EnhancerSpec:
    """Everything needed to open a model the way ``sllen-run`` does (picklable).

    ``options`` go to the backend as they are: tensorrt ``cuda_graph``, ``plugin_library``;
    onnxruntime ``bands``; pytorch ``precision``, ``attention``.
    """

    model: str | None = None  # .engine, .onnx or .safetensors; None: the bundled model
    backend: str = "auto"
    device: str = "auto"
    threads: int | None = None
    batch: int = 1
    tile: tuple[int, int] | None = None  # (height, width): enhance in tiles of at most this
    segmentation: bool = False
    exposure: float = 0.0  # stops (EV) on the enhanced image; 0: the model's own brightness
    well_exposed: str = DEFAULT_MODE  # keep: well-exposed frames pass through; enhance: never
    self_ensemble: bool = False  # the mean of four flipped inferences (4x the time)
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_exposure(self.exposure)  # before a model is opened, on the driver too
        check_device(self.device)
        check_mode(self.well_exposed)
        if self.threads is not None and not (
            isinstance(self.threads, (int, np.integer)) and self.threads >= 1
        ):
            raise InputError(f"--threads must be at least 1, not {self.threads!r}")
        if not (isinstance(self.batch, (int, np.integer)) and self.batch >= 1):
            raise InputError(f"--batch must be at least 1, not {self.batch!r}")
        if self.tile is not None and not (
            isinstance(self.tile, (tuple, list))
            and len(self.tile) == 2
            and all(isinstance(v, (int, np.integer)) and v >= 16 for v in self.tile)
        ):
            raise InputError(
                f"tile must be (height, width) in pixels, each at least 16, not {self.tile!r}"
            )

    def open_backend(self) -> Backend:
        from sllen.runtime.backends import choose_backend, open_backend

        # as sllen-run refuses them: open_backend would drop precision, the other backends'
        # options would raise TypeError
        name, reason = choose_backend(self.model, self.backend)
        options = backend_options(name, self.options, reason=reason)
        return open_backend(
            self.model, self.backend, device=self.device, threads=self.threads, **options
        )

    def enhancer(self, backend: Backend) -> Enhancer:
        return Enhancer(
            backend,
            batch=self.batch,
            tile=self.tile,
            segmentation=self.segmentation,
            exposure=self.exposure,
            well_exposed=self.well_exposed,
            self_ensemble=self.self_ensemble,
        )


class FrameEnhancer:
    """Enhance numpy frames one at a time or as a stream (module doc for an example).

    Frames are HxWx3, uint8 (returned as uint8) or float in [0, 1] (returned as float32),
    RGB or, with ``channels="bgr"``, OpenCV's BGR. Frames of any size; a stream may change
    size (that starts a new scene for the smoothing).

    ``fps`` turns on temporal smoothing (steady brightness from frame to frame, and the
    well-exposed crossfade's weight from the clip's light over a second rather than each
    frame's, as sllen-run does for video; ``smooth=False`` keeps both off): frames given to
    one enhancer are then one clip, in order; call :meth:`reset` at a cut or a new clip.
    Without ``fps`` every frame stands alone. Not thread-safe: one clip, one thread.
    """

    def __init__(
        self,
        enhancer: Enhancer,
        *,
        fps: float | Fraction | None = None,
        smooth: bool | None = None,
        channels: str = "rgb",
        owned: Backend | None = None,
    ) -> None:
        if channels not in CHANNELS:
            raise InputError(f"channels must be 'rgb' or 'bgr', not {channels!r}")
        if smooth and fps is None:
            raise InputError("temporal smoothing needs the frame rate: give fps=")
        on = fps is not None and (DEFAULT_SMOOTHING if smooth is None else smooth)
        self.enhancer = enhancer
        # fps=0 or a negative rate is refused by the smoother (InputError), not read as 1 fps.
        self.smoother = TemporalSmoother(fps, enabled=on) if fps is not None else None
        # the well-exposed crossfade follows the clip's light, not each frame's (smoothed too)
        self._keep = ClipKeepWeight(float(fps)) if on and fps is not None else None
        self._shape: tuple[int, ...] | None = None
        self.smoothing = on
        self.channels = channels
        self._owned = owned  # the backend open_enhancer opened (closed with this object)

    @property
    def info(self) -> BackendInfo:
        return self.enhancer.backend.info

    @property
    def batch(self) -> int:
        return self.enhancer.batch

    @property
    def times(self) -> StageTimes:
        return self.enhancer.times

    def reset(self) -> None:
        """A new clip (or a cut the scene detector would miss): forget the brightness history."""
        if self.smoother is not None:
            self.smoother.reset()
        if self._keep is not None:
            self._keep.reset()

    # ----------------------------------------------------------------- float core

    def enhance_float(
        self, frames: Sequence[np.ndarray]
    ) -> list[tuple[np.ndarray, np.ndarray | None]]:
        """Float RGB HxWx3 frames in [0, 1], in clip order -> (float image, labels or None)."""
        if self._keep is not None:  # a new size is a new scene (as for the smoothing)
            for f in frames:
                if f.shape[:2] != self._shape:
                    self._shape = f.shape[:2]
                    self._keep.reset()
        results = self.enhancer.enhance(list(frames), keep=self._keep)
        out = []
        for x, r in zip(frames, results, strict=True):
            t = time.perf_counter()
            image = self.smoother.apply(x, r.image) if self.smoother is not None else r.image
            self.enhancer.times.post += time.perf_counter() - t
            out.append((image, r.labels))
        return out

    # ----------------------------------------------------------------- numpy frames in/out

    def _to_float(self, frame: np.ndarray) -> np.ndarray:
        a = np.asarray(frame)
        if a.ndim != 3 or a.shape[2] != 3 or a.shape[0] == 0 or a.shape[1] == 0:
            raise InputError(f"expected an HxWx3 frame, got shape {a.shape}")
        if a.dtype != np.uint8 and not np.issubdtype(a.dtype, np.floating):
            raise InputError(f"expected a uint8 or float frame, got {a.dtype}")
        if a.dtype != np.uint8 and not np.isfinite(a).all():
            raise InputError("the frame has NaN or infinite values (floats go in as [0, 1])")
        if self.channels == "bgr":
            a = a[..., ::-1]
        if a.dtype != np.uint8:  # the network was trained on [0, 1]: what lies outside clips
            return np.clip(a, 0.0, 1.0).astype(np.float32, copy=False)  # clip made the copy
        return np.ascontiguousarray(to_float(a))

    def _from_float(self, image: np.ndarray, like: np.ndarray) -> np.ndarray:
        out = to_uint8(image) if like.dtype == np.uint8 else image.astype(np.float32, copy=False)
        return np.ascontiguousarray(out[..., ::-1]) if self.channels == "bgr" else out

    def enhance_many(self, frames: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Enhance a list of frames (batched ``batch`` at a time), in clip order."""
        # As arrays first: the output's dtype follows the input's, and a PIL image or a torch
        # tensor has no numpy dtype (a torch uint8 frame came back as float).
        arrays = [np.asarray(f) for f in frames]
        done = self.enhance_float([self._to_float(a) for a in arrays])
        return [self._from_float(img, a) for (img, _), a in zip(done, arrays, strict=True)]

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        """Enhance one frame."""
        return self.enhance_many([frame])[0]

    enhance = __call__

    def segment(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(enhanced frame, uint8 HxW class per pixel); needs ``segmentation=True``."""
        ((image, labels),) = self.enhance_float([self._to_float(frame)])
        if labels is None:
            raise InputError("open the enhancer with segmentation=True to get the semantic map")
        return self._from_float(image, np.asarray(frame)), labels

    def stream(self, frames: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        """Enhance an iterator of frames lazily, ``batch`` frames per inference, in order."""
        pending: list[np.ndarray] = []
        for frame in frames:
            pending.append(frame)
            if len(pending) >= self.batch:
                yield from self.enhance_many(pending)
                pending = []
        if pending:
            yield from self.enhance_many(pending)

    # ----------------------------------------------------------------- lifetime

    def close(self) -> None:
        if self._owned is not None:
            owned, self._owned = self._owned, None
            owned.close()

    def __enter__(self) -> FrameEnhancer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_enhancer(
    model: str | Path | None = None,
    *,
    backend: str = "auto",
    device: str = "auto",
    threads: int | None = None,
    batch: int = 1,
    tile: tuple[int, int] | None = None,
    fps: float | Fraction | None = None,
    smooth: bool | None = None,
    channels: str = "rgb",
    segmentation: bool = False,
    exposure: float = 0.0,
    well_exposed: str = DEFAULT_MODE,
    self_ensemble: bool = False,
    **options: Any,
) -> FrameEnhancer:
    """Open `model` (None: the bundled model) for frames; close it (or use ``with``) after.

    The arguments are sllen-run's: ``backend`` auto/tensorrt/onnxruntime/pytorch, ``device``
    auto/cpu/cuda/cuda:N, ``threads`` for CPU inference, ``batch`` frames per inference (for
    :meth:`FrameEnhancer.stream` and ``enhance_many``), ``tile`` (height, width) to bound
    memory, ``fps`` for temporal smoothing, ``channels`` "rgb" or "bgr", ``exposure`` in stops
    (-1 halves the light of the enhanced image, +1 doubles it), ``well_exposed`` "keep" (a
    frame already exposed passes through, runtime/well_exposed.py) or "enhance",
    ``self_ensemble`` (the mean of four flipped inferences: cleaner, 4x the time), and
    backend options (``cuda_graph=True``, ``plugin_library=...``, ``precision="fp16"``, ONNX
    Runtime ``bands="on"``).
    """
    spec = EnhancerSpec(
        model=str(model) if model is not None else None,
        backend=backend,
        device=device,
        threads=threads,
        batch=batch,
        tile=tile,
        segmentation=segmentation,
        exposure=exposure,
        well_exposed=well_exposed,
        self_ensemble=self_ensemble,
        options=options,
    )
    runner = spec.open_backend()
    try:
        enhancer = spec.enhancer(runner)
        return FrameEnhancer(enhancer, fps=fps, smooth=smooth, channels=channels, owned=runner)
    except BaseException:
        runner.close()
        raise
