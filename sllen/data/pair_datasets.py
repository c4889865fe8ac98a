"""torch Datasets of low/normal-light pairs found by sllen.data.pair_layouts (layouts there).

Items: ``{"low": 3xHxW float32, "high": 3xHxW float32, "name": str}``, both in [0, 1]. Pairs
whose images differ in size are refused when listed (pair_layouts reads the headers); reading
checks again, for a pair a header misstates or a list made by hand. ``transform(sample,
rng)`` (e.g. augment.PairedAugment) runs on the tensors with the item's generator from
(seed, epoch, index), so crops are reproducible and change with ``set_epoch``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from torch.utils.data import Dataset

from sllen.runtime.errors import InputError
from sllen.runtime.images import read_image

from .augment import Transform
from .convert import image_to_tensor
from .pair_layouts import (
    ImagePair,
    detect_layout,
    find_pairs,
    lol_pairs,
    lsrw_pairs,
    pair_folder,
)
from .seeding import EpochMixin

__all__ = [  # find_pairs and detect_layout re-exported: callers reach them from here too
    "PairedDataset",
    "PairedFolder",
    "detect_layout",
    "find_paired",
    "find_pairs",
    "lol_dataset",
    "lsrw_dataset",
]


class PairedDataset(EpochMixin, Dataset):
    """Low/normal pairs from a list of ImagePair; items as in the module docstring."""

    def __init__(
        self, pairs: Sequence[ImagePair], transform: Transform | None = None, seed: int = 0
    ) -> None:
        if not pairs:
            raise InputError("a paired dataset needs at least one pair")
        self.pairs = list(pairs)
        self.transform = transform
        self.seed = seed

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict:
        name, low_path, high_path = self.pairs[index]
        low, high = read_image(low_path), read_image(high_path)
        if low.shape != high.shape:
            raise InputError(
                f"pair {name!r}: low {low.shape[:2]} and high {high.shape[:2]} differ in size"
            )
        sample = {"low": image_to_tensor(low), "high": image_to_tensor(high), "name": name}
        if self.transform is not None:
            sample = self.transform(sample, self.rng_for(index))
        return sample


class PairedFolder(PairedDataset):
    """Any folder with low/ and high/ subfolders."""

    def __init__(
        self, root: str | os.PathLike[str], transform: Transform | None = None, seed: int = 0
    ) -> None:
        self.root = Path(root)
        super().__init__(pair_folder(self.root), transform, seed)


def lol_dataset(
    root: str | os.PathLike[str],
    split: str = "train",
    transform: Transform | None = None,
    seed: int = 0,
) -> PairedDataset:
    """LOL: our485 (train) or eval15 (eval)."""
    return PairedDataset(lol_pairs(root, split), transform, seed)


def lsrw_dataset(
    root: str | os.PathLike[str],
    split: str = "train",
    transform: Transform | None = None,
    seed: int = 0,
) -> PairedDataset:
    """LSRW: all cameras of "Training data" (train) or "Eval" (eval), concatenated."""
    return PairedDataset(lsrw_pairs(root, split), transform, seed)


def find_paired(
    root: str | os.PathLike[str],
    split: str = "train",
    transform: Transform | None = None,
    seed: int = 0,
) -> PairedDataset:
    """The paired dataset of ``split`` in ``root``, whatever its layout (see pair_layouts.py)."""
    detect_layout(root)  # raises with the list of layouts looked for
    # None only without a layout (detect_layout raised); `or []` gets the same InputError
    return PairedDataset(find_pairs(root, split) or [], transform, seed)
