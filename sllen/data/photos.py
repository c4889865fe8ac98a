"""A folder of normal-light photographs, the ground truths of generated low-light pairs.

``sllen-train --lle-photos DIR`` darkens these with the chosen ``--degradation`` on the fly
(``procedural.SyntheticPairDataset`` with this as its source): training on one's own
well-exposed photographs needs no low-light captures. The folder is searched recursively;
hidden files (macOS "._" forks) are skipped. Items are float32 HxWx3 RGB arrays in [0, 1].
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from torch.utils.data import Dataset

from sllen.runtime.errors import InputError, MissingFileError
from sllen.runtime.images import IMAGE_SUFFIXES, read_image


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


class PhotoFolder(Dataset):
    """The photographs in ``paths`` (from ``find_photos``), read when indexed."""

    def __init__(self, paths: list[Path]) -> None:
        if not paths:
            raise InputError("a photo folder needs at least one image")
        self.paths = list(paths)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> np.ndarray:
        return read_image(self.paths[index])
