"""Datasets that need no files: procedural scenes, and synthetic low/normal pairs.

- ``SceneSegmentationDataset``: SS samples ``{"image", "label"}`` from ``generate_scene``.
- ``SyntheticPairDataset``: LLE samples ``{"low", "high"}``. ``high`` is a generated scene, or
  item ``index % len(source)`` of ``source`` (any dataset of normal-light images: its items may
  be 3xHxW tensors, HxWx3 float arrays, or dicts with "high" or "image"), randomly cropped
  (reflection-padded if small) to ``size``; ``low = synthesize_low(high)``. When a dict
  source item also has "label" or "name", they are kept (the label cropped with the image), so
  a darkened VOC gives ``{"low", "high", "label", "name"}`` for segmentation-in-the-dark tests.
  With ``gt_exposure`` S > 0 the ground truth's own exposure is first moved by u stops, u
  uniform in [-S, S] and independent of its content (linear light, clipped at white), as a
  photographer's metering choice moves a real photograph's; the low is made from the result.

Item ``i`` is drawn from ``item_rng(seed, i, epoch)``: the same in every process, new scenes
and new darkening after ``set_epoch``. ``size`` is an int (square) or (height, width).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from sllen.runtime.errors import InputError

from .augment import Transform, random_crop
from .convert import image_to_tensor, tensor_to_image
from .detail import ALBEDO, add_detail
from .emitters import GLOWS, add_emitters, emitter_layer
from .sampler import SizedDataset
from .scenes import generate_scene
from .seeding import EpochMixin
from .synthesis import SynthesisParams, linear_to_srgb, srgb_to_linear, synthesize_low


def _hw(size: int | tuple[int, int]) -> tuple[int, int]:
    h, w = (size, size) if isinstance(size, int) else size
    if h < 1 or w < 1:
        raise InputError(f"size must be positive, got {size}")
    return int(h), int(w)


def _check_length(length: int) -> int:
    if length < 1:
        raise InputError(f"length must be >= 1, got {length}")
    return int(length)


class SceneSegmentationDataset(EpochMixin, Dataset):
    """``length`` procedural scenes with labels in [0, num_classes)."""

    def __init__(
        self,
        length: int,
        size: int | tuple[int, int],
        num_classes: int = 8,
        seed: int = 0,
        transform: Transform | None = None,
    ) -> None:
        self.length, self.size = _check_length(length), _hw(size)
        self.num_classes, self.seed, self.transform = num_classes, seed, transform

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < self.length:
            raise IndexError(index)
        rng = self.rng_for(index)
        image, label = generate_scene(rng, *self.size, num_classes=self.num_classes)
        sample = {"image": image_to_tensor(image), "label": torch.from_numpy(label)}
        return self.transform(sample, rng) if self.transform is not None else sample


MAX_GT_EXPOSURE = 2.0  # stops; the ground truths' exposure spread (gt_exposure) is bounded here


def expose(img: np.ndarray, stops: float) -> np.ndarray:
    """``img`` (float HxWx3 sRGB in [0, 1]) with its linear light times 2**stops, clipped."""
    lin = srgb_to_linear(np.clip(img, 0.0, 1.0)) * np.float32(2.0**stops)
    return linear_to_srgb(np.clip(lin, 0.0, 1.0)).astype(np.float32)


def _source_sample(item: Any) -> dict:
    """A source item as a dict with a "high" tensor (plus "label"/"name" if present)."""
    if isinstance(item, dict):
        key = "high" if "high" in item else "image"
        if key not in item:
            raise InputError(f"source items need a 'high' or 'image' entry, got {list(item)}")
        sample = {"high": item[key]}
        sample.update({k: item[k] for k in ("label", "name") if k in item})
    else:
        sample = {"high": item}
    if isinstance(sample["high"], np.ndarray):
        sample["high"] = image_to_tensor(sample["high"])
    return sample


class SyntheticPairDataset(EpochMixin, Dataset):
    """``length`` (low, high) pairs darkened by ``synthesize_low`` (see module docstring)."""

    def __init__(
        self,
        length: int,
        size: int | tuple[int, int],
        seed: int = 0,
        synthesis_cfg: SynthesisParams | None = None,
        source: SizedDataset | None = None,
        num_classes: int = 8,
        scene_detail: bool = False,
        detail_albedo: float = ALBEDO,
        detail_strokes: float = 0.0,
        gt_exposure: float = 0.0,
        emitters: float = 0.0,
        emitter_glow: str = "scene",
    ) -> None:
        if source is not None and len(source) == 0:
            raise InputError("source dataset is empty")
        if not 0.0 <= gt_exposure <= MAX_GT_EXPOSURE:
            raise InputError(
                f"gt_exposure must be in [0, {MAX_GT_EXPOSURE:g}] stops, not {gt_exposure}"
            )
        self.length, self.size = _check_length(length), _hw(size)
        self.seed, self.synthesis_cfg, self.source = seed, synthesis_cfg, source
        self.num_classes, self.scene_detail = num_classes, scene_detail
        self.detail_albedo, self.detail_strokes = detail_albedo, detail_strokes
        self.gt_exposure = gt_exposure
        if not 0.0 <= emitters <= 1.0:
            raise InputError(f"emitters is a share of the pairs, 0-1, not {emitters}")
        self.emitters = emitters
        if emitter_glow not in GLOWS:
            raise InputError(
                f"emitter glow must be one of {', '.join(GLOWS)}, not {emitter_glow!r}"
            )
        self.emitter_glow = emitter_glow

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < self.length:
            raise IndexError(index)
        rng = self.rng_for(index)
        if self.source is None:
            image, _ = generate_scene(rng, *self.size, num_classes=self.num_classes)
            if self.scene_detail:  # drawn after the scene: off leaves the old pairs unchanged
                image = add_detail(rng, image, self.detail_albedo, self.detail_strokes)
            sample = {"high": image_to_tensor(image)}
        else:
            item = self.source[index % len(self.source)]
            sample = random_crop(_source_sample(item), self.size, rng)
        if self.gt_exposure > 0:  # drawn only when on: off leaves the old pairs unchanged
            stops = rng.uniform(-self.gt_exposure, self.gt_exposure)
            sample["high"] = image_to_tensor(expose(tensor_to_image(sample["high"]), stops))
        low, _ = synthesize_low(tensor_to_image(sample["high"]), rng, self.synthesis_cfg)
        # drawn after the pair and only when on: off, or a pair without, is the old pair
        if self.emitters > 0 and rng.random() < self.emitters:
            high = tensor_to_image(sample["high"])
            layer = emitter_layer(rng, *high.shape[:2])
            low, high = add_emitters(low, high, layer, self.emitter_glow)
            sample["high"] = image_to_tensor(high)
        return {"low": image_to_tensor(low), **sample}
