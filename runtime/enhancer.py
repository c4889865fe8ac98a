"""Frames in, enhanced frames out, through any backend: padding, batching, tiling, timings.

:class:`Enhancer` takes float RGB frames (HxWx3 in [0, 1]) of any size, pads them to what the
model accepts, batches frames of one size, tiles frames larger than the model's maximum (an
engine's optimization profile, or ``tile`` to bound memory), and crops the results back;
``well_exposed`` keeps frames that are already exposed as they are (runtime/well_exposed.py),
then ``exposure`` moves the result's brightness by whole or fractional stops (runtime/exposure.py);
``self_ensemble`` averages four flipped inferences per frame (runtime/self_ensemble.py).
It adds up the seconds spent in pre-processing, inference and post-processing so sllen-run
can report where the time goes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from sllen.runtime.backends.base import Backend
from sllen.runtime.errors import InputError
from sllen.runtime.exposure import apply_table, check_exposure, exposure_table
from sllen.runtime.preprocess import from_batch, padded_size, to_batch
from sllen.runtime.self_ensemble import flip_ensemble
from sllen.runtime.tiling import DEFAULT_OVERLAP, enhance_tiled, fit_tiles
from sllen.runtime.well_exposed import DEFAULT_MODE, check_mode, keep_weight, keep_well_exposed


@dataclass
class StageTimes:
    """Seconds per pipeline stage, summed over frames (divide by ``frames``)."""

    frames: int = 0
    decode: float = 0.0
    pre: float = 0.0
    infer: float = 0.0
    post: float = 0.0
    encode: float = 0.0

    STAGES = ("decode", "pre", "infer", "post", "encode")

    def per_frame_ms(self) -> dict[str, float]:
        n = max(self.frames, 1)
        return {s: 1000 * getattr(self, s) / n for s in self.STAGES}

    def add(self, other: StageTimes) -> None:
        self.frames += other.frames
        for s in self.STAGES:
            setattr(self, s, getattr(self, s) + getattr(other, s))

    def since(self, earlier: StageTimes) -> StageTimes:
        """What was added after `earlier` (a ``dataclasses.replace`` copy of this one)."""
        delta = StageTimes(frames=self.frames - earlier.frames)
        for s in self.STAGES:
            setattr(delta, s, getattr(self, s) - getattr(earlier, s))
        return delta


@dataclass
class Enhanced:
    image: np.ndarray  # float32 HxWx3 in [0, 1]
    labels: np.ndarray | None = None  # uint8 HxW class per pixel (with segmentation=True)


class Enhancer:
    def __init__(
        self,
        backend: Backend,
        *,
        batch: int = 1,
        tile: tuple[int, int] | None = None,
        overlap: int = DEFAULT_OVERLAP,
        segmentation: bool = False,
        exposure: float = 0.0,
        well_exposed: str = DEFAULT_MODE,
        self_ensemble: bool = False,
    ) -> None:
        info = backend.info
        if batch < 1:
            raise InputError("--batch must be at least 1")
        if info.max_batch is not None:
            batch = min(batch, info.max_batch)
        if segmentation and not info.has_segmentation:
            raise InputError(
                f"{info.model} has no segmentation output (use the PyTorch backend, the "
                "bundled model, or a file made by sllen-export --segmentation)"
            )
        m = info.multiple
        limit = info.max_hw
        if tile is not None:
            tile = (max(m, tile[0] // m * m), max(m, tile[1] // m * m))
            limit = tile if limit is None else (min(limit[0], tile[0]), min(limit[1], tile[1]))
        self.backend = backend
        self.batch = batch
        self.tile = limit  # frames whose padded size exceeds this are tiled
        self.explicit_tile = tile is not None  # --tile given: no extra pixel budget
        self.overlap = overlap
        self.segmentation = segmentation
        self.exposure = check_exposure(exposure)  # stops; 0: the model's own brightness
        self._exposure_table = exposure_table(exposure) if exposure else None
        self.well_exposed = check_mode(well_exposed)
        self.self_ensemble = self_ensemble  # four flipped inferences per frame, averaged
        self.on_tile: Callable[[int, int], None] | None = None  # (done, total) of a tiled frame
        self.times = StageTimes()

    def _target(self, h: int, w: int) -> tuple[int, int]:
        """The padded size the model gets for an h x w frame (at least the profile minimum)."""
        ph, pw = padded_size(h, w, self.backend.info.multiple)
        lo = self.backend.info.min_hw
        if lo is not None:
            ph, pw = max(ph, lo[0]), max(pw, lo[1])
        return ph, pw

    def tile_for(self, h: int, w: int) -> tuple[int, int] | None:
        """The tile size an h x w frame is cut into, or None when it runs whole."""
        ph, pw = self._target(h, w)
        over_limit = self.tile is not None and (ph > self.tile[0] or pw > self.tile[1])
        budget = None if self.explicit_tile else self.backend.info.max_pixels
        if not over_limit and (budget is None or ph * pw <= budget):
            return None
        limit = self.tile if self.tile is not None else (ph, pw)
        return fit_tiles(ph, pw, limit, budget, self.backend.info.multiple, self.overlap)

    def _run(self, images: list[np.ndarray]) -> list[np.ndarray]:
        """Same-size float HxWx3 images -> float HxWx(3 [+K]) results (image, then logits)."""
        h, w = images[0].shape[:2]
        results: list[np.ndarray] = []
        for first in range(0, len(images), self.batch):
            t0 = time.perf_counter()
            x = to_batch(images[first : first + self.batch], self._target(h, w))
            t1 = time.perf_counter()
            full = flip_ensemble(self._infer, x) if self.self_ensemble else self._infer(x)
            t2 = time.perf_counter()
            results += from_batch(full, (h, w))
            self.times.pre += t1 - t0
            self.times.infer += t2 - t1
            self.times.post += time.perf_counter() - t2
        return results

    def _infer(self, x: np.ndarray) -> np.ndarray:
        """NCHW batch -> NCHW image channels, then the segmentation logits when asked."""
        out = self.backend.infer(x, segmentation=self.segmentation)
        if out.segmentation is None:
            return out.image
        return np.concatenate([out.image, out.segmentation], axis=1)

    def enhance(
        self, frames: list[np.ndarray], keep: Callable[[float], float] | None = None
    ) -> list[Enhanced]:
        """Enhance float HxWx3 frames (any sizes); results in the same order. ``keep``: the
        well-exposed crossfade's weight for a frame's mean linear luminance (a video's
        ClipKeepWeight); by default each frame's own."""
        results: list[np.ndarray | None] = [None] * len(frames)
        # Group frames of one size so they share batches (video frames all do).
        groups: dict[tuple[int, int], list[int]] = {}
        for i, f in enumerate(frames):
            groups.setdefault(f.shape[:2], []).append(i)
        for (h, w), idx in groups.items():
            tile = self.tile_for(h, w)
            if tile is not None:
                for i in idx:
                    results[i] = enhance_tiled(
                        frames[i], self._run, tile, self.overlap, self.batch, 3, self.on_tile
                    )
            else:
                for i, r in zip(idx, self._run([frames[i] for i in idx]), strict=True):
                    results[i] = r
        self.times.frames += len(frames)
        t0 = time.perf_counter()
        weigh = keep or keep_weight
        done = [
            self._split(f, r, weigh) for f, r in zip(frames, results, strict=True) if r is not None
        ]
        self.times.post += time.perf_counter() - t0
        return done

    def _split(
        self, frame: np.ndarray, result: np.ndarray, weigh: Callable[[float], float]
    ) -> Enhanced:
        image = np.clip(result[..., :3], 0.0, 1.0)
        if self.well_exposed == "keep":  # on the whole frame, after tiling: one weight per frame
            image = keep_well_exposed(frame, image, weigh)
        if self._exposure_table is not None:
            image = apply_table(image, self._exposure_table)
        if result.shape[2] == 3:
            return Enhanced(image)
        return Enhanced(image, np.argmax(result[..., 3:], axis=2).astype(np.uint8))
