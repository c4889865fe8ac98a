"""Geometric augmentation that keeps every image-like entry of a sample aligned.

A sample is a dict (see the package docstring). Its spatial entries are the torch tensors of
shape CxHxW (images: "image", "low", "high") or HxW (the "label"); all must share HxW. Other
entries ("name", ...) pass through untouched. The same crop window, flips and rotation are
applied to all spatial entries, so labels and pairs stay registered pixel for pixel.

Randomness comes from the ``rng`` argument (numpy Generator) only: datasets hand in their
per-item generator, so an augmented item is reproducible. Transforms return a new dict and
never modify their input.

Padding: an image smaller than the crop is first padded by reflection (mirror without
repeating the edge pixel, like numpy's "reflect"; repeated as often as needed, so even tiny
images pad), the same for images and labels, so padded labels describe the padded pixels.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from sllen.runtime.errors import InputError

Sample = dict
# What datasets accept as ``transform``: called as transform(sample, item_generator).
Transform = Callable[[Sample, np.random.Generator], Sample]


def spatial_keys(sample: Sample) -> list[str]:
    """Keys of the HxW and CxHxW tensors; raises if their HxW differ."""
    keys = [k for k, v in sample.items() if isinstance(v, torch.Tensor) and v.ndim in (2, 3)]
    sizes = {tuple(sample[k].shape[-2:]) for k in keys}
    if len(sizes) > 1:
        shapes = {k: tuple(sample[k].shape) for k in keys}
        raise InputError(f"spatial entries of a sample differ in size: {shapes}")
    return keys


def _size(sample: Sample, keys: list[str]) -> tuple[int, int]:
    if not keys:
        raise InputError("sample has no image or label tensors to transform")
    h, w = sample[keys[0]].shape[-2:]
    return int(h), int(w)


def _reflect_index(n: int, before: int, after: int) -> torch.Tensor:
    idx = torch.arange(-before, n + after)
    if n == 1:
        return torch.zeros_like(idx)
    period = 2 * (n - 1)
    idx = idx.remainder(period)
    return torch.where(idx < n, idx, period - idx)


def pad_to(sample: Sample, height: int, width: int) -> Sample:
    """Reflection-pad all spatial entries to at least height x width, centred."""
    keys = spatial_keys(sample)
    h, w = _size(sample, keys)
    ph, pw = max(0, height - h), max(0, width - w)
    if ph == 0 and pw == 0:
        return dict(sample)
    rows = _reflect_index(h, ph // 2, ph - ph // 2)
    cols = _reflect_index(w, pw // 2, pw - pw // 2)
    out = dict(sample)
    for k in keys:
        out[k] = sample[k].index_select(-2, rows).index_select(-1, cols)
    return out


def random_crop(sample: Sample, size: int | tuple[int, int], rng: np.random.Generator) -> Sample:
    """One random size[0] x size[1] window, the same for all spatial entries."""
    ch, cw = (size, size) if isinstance(size, int) else size
    sample = pad_to(sample, ch, cw)
    keys = spatial_keys(sample)
    h, w = _size(sample, keys)
    y = int(rng.integers(0, h - ch + 1))
    x = int(rng.integers(0, w - cw + 1))
    out = dict(sample)
    for k in keys:
        # clone: a view would keep (and send between DataLoader workers) the whole image
        out[k] = sample[k][..., y : y + ch, x : x + cw].clone()
    return out


def random_flip(
    sample: Sample,
    rng: np.random.Generator,
    hflip: bool = True,
    vflip: bool = False,
    rot90: bool = False,
) -> Sample:
    """Random horizontal / vertical flips (p = 0.5 each) and rotation by k * 90 degrees.

    Rotation by 90 or 270 degrees swaps H and W: use it with square crops when batching.
    """
    keys = spatial_keys(sample)
    # Draw all three always, so switching one option leaves the others' draws unchanged.
    do_h, do_v, k = rng.random() < 0.5, rng.random() < 0.5, int(rng.integers(4))
    out = dict(sample)
    for key in keys:
        t = sample[key]
        if hflip and do_h:
            t = t.flip(-1)
        if vflip and do_v:
            t = t.flip(-2)
        if rot90 and k:
            t = torch.rot90(t, k, dims=(-2, -1))
        out[key] = t
    return out


class PairedAugment:
    """Crop (optional) then flips: a ``transform(sample, rng)`` for the datasets."""

    def __init__(
        self,
        crop_size: int | tuple[int, int] | None = None,
        hflip: bool = True,
        vflip: bool = False,
        rot90: bool = False,
    ) -> None:
        self.crop_size = crop_size
        self.hflip, self.vflip, self.rot90 = hflip, vflip, rot90

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        if self.crop_size is not None:
            sample = random_crop(sample, self.crop_size, rng)
        return random_flip(sample, rng, self.hflip, self.vflip, self.rot90)

    def __repr__(self) -> str:
        return (
            f"PairedAugment(crop_size={self.crop_size}, hflip={self.hflip}, "
            f"vflip={self.vflip}, rot90={self.rot90})"
        )
