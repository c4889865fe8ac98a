"""PASCAL VOC 2012 semantic segmentation, read from the devkit's own layout.

``root`` may be the VOC2012 folder (holding JPEGImages/, SegmentationClass/ and
ImageSets/Segmentation/), the VOCdevkit folder above it, or the folder holding VOCdevkit/.
``split`` names a list in ImageSets/Segmentation/ ("train", "val", "trainval", or any other
list placed there, such as SBD's "train_aug" together with ``label_dir="SegmentationClassAug"``).

Labels are the palette indices of the PNGs in the label folder, read in Pillow mode "P" (or
"L") without any colour conversion: 0 = background, 1..20 = VOC_CLASSES, 255 = the "void"
border and difficult regions, which the segmentation loss ignores. RGB label images are
refused, since colours would have to be mapped back to indices.

Items: ``{"image": 3xHxW float32 in [0, 1], "label": HxW int64, "name": image id}``;
``transform(sample, rng)`` (e.g. augment.PairedAugment) gets the item's generator from
(seed, epoch, index).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from sllen.runtime.errors import InputError
from sllen.runtime.images import ImageError, read_image

from .augment import Transform
from .convert import image_to_tensor
from .seeding import EpochMixin

VOC_CLASSES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
    "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
    "sheep", "sofa", "train", "tvmonitor",
)  # fmt: skip
IGNORE_INDEX = 255


def find_voc_root(root: str | os.PathLike[str]) -> Path:
    """The VOC2012 folder at, or below, ``root``."""
    root = Path(root)
    for cand in (root, root / "VOC2012", root / "VOCdevkit" / "VOC2012"):
        if (cand / "JPEGImages").is_dir() and (cand / "ImageSets" / "Segmentation").is_dir():
            return cand
    raise InputError(
        f"{root}: no VOC2012 tree (JPEGImages/ and ImageSets/Segmentation/) here, "
        "in VOC2012/ or in VOCdevkit/VOC2012/"
    )


def read_label(path: str | os.PathLike[str]) -> np.ndarray:
    """A palette (or grayscale) label PNG as int64 HxW class indices."""
    try:
        with Image.open(path) as im:
            mode, label = im.mode, np.asarray(im, dtype=np.int64)
    except FileNotFoundError:
        raise ImageError(f"{path}: no such file") from None
    except (OSError, SyntaxError, ValueError) as err:
        raise ImageError(f"{path}: unreadable label image ({err})") from None
    if mode not in ("P", "L"):
        raise ImageError(f"{path}: label image has mode {mode}, expected palette indices (P)")
    return label


class VOCSegmentation(EpochMixin, Dataset):
    """VOC 2012 segmentation split; items as in the module docstring."""

    def __init__(
        self,
        root: str | os.PathLike[str],
        split: str = "train",
        transform: Transform | None = None,
        seed: int = 0,
        label_dir: str = "SegmentationClass",
    ) -> None:
        self.root = find_voc_root(root)
        list_file = self.root / "ImageSets" / "Segmentation" / f"{split}.txt"
        if not list_file.is_file():
            available = sorted(p.stem for p in list_file.parent.glob("*.txt"))
            raise InputError(f"{list_file}: no such split list (available: {available})")
        self.ids = [line.split()[0] for line in list_file.read_text().splitlines() if line.strip()]
        if not self.ids:
            raise InputError(f"{list_file}: the split list is empty")
        self.label_dir = self.root / label_dir
        missing = [
            i
            for i in self.ids
            if not (self.root / "JPEGImages" / f"{i}.jpg").is_file()
            or not (self.label_dir / f"{i}.png").is_file()
        ]
        if missing:
            raise InputError(
                f"{list_file}: {len(missing)} ids without a JPEGImages/<id>.jpg or "
                f"{label_dir}/<id>.png, first: {', '.join(missing[:5])}"
            )
        self.split, self.transform, self.seed = split, transform, seed

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> dict:
        name = self.ids[index]
        image = read_image(self.root / "JPEGImages" / f"{name}.jpg")
        label = read_label(self.label_dir / f"{name}.png")
        if label.shape != image.shape[:2]:
            raise InputError(f"{name}: image {image.shape[:2]} and label {label.shape} differ")
        sample = {"image": image_to_tensor(image), "label": torch.from_numpy(label), "name": name}
        if self.transform is not None:
            sample = self.transform(sample, self.rng_for(index))
        return sample
