"""A folder of normal-light photographs, the ground truths of generated low-light pairs.

``sllen-train --lle-photos DIR`` darkens these with the chosen ``--degradation`` on the fly
(``procedural.SyntheticPairDataset`` with this as its source): training on one's own
well-exposed photographs needs no low-light captures. The folder is searched recursively;
hidden files (macOS "._" forks) are skipped. Items are float32 HxWx3 RGB arrays in [0, 1],
downscaled so the longer side is at most ``max_side`` (``--photo-max-side``, default 1920):

- a 128-pixel crop of a 12-megapixel photo holds a patch of texture, not a scene; at full-HD
  scale, the size ``sllen-run`` usually enhances, it holds objects and their lighting;
- area averaging removes most of the photo's own sensor noise and demosaicking, which would
  otherwise be ground truth the network learns to keep;
- JPEGs are decoded at 1/2 to 1/8 of their size directly (libjpeg's DCT scaling), so a large
  photo costs a fraction of its full decode on every crop.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from sllen.runtime.errors import InputError, MissingFileError
from sllen.runtime.images import IMAGE_SUFFIXES, ImageError, read_image

DEFAULT_MAX_SIDE = 1920


def find_photos(root: str | os.PathLike[str]) -> list[Path]:
    """Image files anywhere under ``root``, sorted by path (the same order on every machine)."""
    root = Path(root)
    if not root.is_dir():
        raise MissingFileError(f"{root}: not a folder")
    photos = sorted(
        p
        for p in root.rglob("*")
        if p.suffix.lower() in IMAGE_SUFFIXES
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
        and p.is_file()
    )
    if not photos:
        raise InputError(f"{root}: no images found ({', '.join(IMAGE_SUFFIXES)})")
    return photos


def _read_jpeg_reduced(path: Path, max_side: int) -> np.ndarray | None:
    """A large 8-bit JPEG decoded at the smallest DCT scale still >= ``max_side``, then
    area-averaged to it; None for anything else (read_image's general path reads it).
    Here, not in runtime.images: only training may change an image's size while reading."""
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as im:
            if im.format != "JPEG" or im.mode not in ("RGB", "L") or max(im.size) <= max_side:
                return None
            scale = max_side / max(im.size)
            im.draft(im.mode, (max(1, round(im.width * scale)), max(1, round(im.height * scale))))
            im = ImageOps.exif_transpose(im)  # phones store the rotation in EXIF
            scale = max_side / max(im.size)
            if scale < 1:  # the area average on 8 bits, before the float copy is made
                size = (max(1, round(im.width * scale)), max(1, round(im.height * scale)))
                im = im.resize(size, Image.Resampling.BOX)
            rgb = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
    except Exception as e:  # Pillow raises many types for a corrupt file, as read_image says
        raise ImageError(f"{path}: not a readable image ({type(e).__name__}: {e})") from None
    return rgb


def downscale(img: np.ndarray, max_side: int) -> np.ndarray:
    """``img`` (HxWx3) area-averaged to a longer side of ``max_side``; smaller ones unchanged."""
    h, w = img.shape[:2]
    if max_side <= 0 or max(h, w) <= max_side:
        return img
    scale = max_side / max(h, w)
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    t = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None]
    return F.interpolate(t, size=size, mode="area")[0].permute(1, 2, 0).contiguous().numpy()


def read_photo(path: Path, max_side: int = DEFAULT_MAX_SIDE) -> np.ndarray:
    """``path`` as float32 HxWx3 in [0, 1], longer side at most ``max_side`` (0: as stored)."""
    img = _read_jpeg_reduced(path, max_side) if max_side > 0 else None
    return downscale(read_image(path) if img is None else img, max_side)


class PhotoFolder(Dataset):
    """The photographs in ``paths`` (from ``find_photos``), read (and downscaled) when indexed."""

    def __init__(self, paths: list[Path], max_side: int = DEFAULT_MAX_SIDE) -> None:
        if not paths:
            raise InputError("a photo folder needs at least one image")
        if max_side < 0:
            raise InputError(f"--photo-max-side must be >= 0 (0 = full size), got {max_side}")
        self.paths, self.max_side = list(paths), max_side

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> np.ndarray:
        return read_photo(self.paths[index], self.max_side)
