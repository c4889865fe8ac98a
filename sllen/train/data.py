"""The trainer's datasets: real folders when given, procedural scenes otherwise."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

from torch.utils.data import Dataset

from sllen.config import ModelConfig
from sllen.data.augment import PairedAugment
from sllen.data.gradient_level import estimate_gradient_level
from sllen.data.pair_datasets import PairedDataset, detect_layout, find_paired, find_pairs
from sllen.data.pair_layouts import ImagePair
from sllen.data.photos import PhotoFolder, find_photos
from sllen.data.procedural import SceneSegmentationDataset, SyntheticPairDataset
from sllen.data.sampler import InfiniteLoader, SizedDataset, build_loader
from sllen.data.synthesis import Degradation, SynthesisParams
from sllen.data.voc import VOCSegmentation
from sllen.runtime.errors import InputError
from sllen.train.config import TrainConfig

T = TypeVar("T")

# Validation images must never be training images: the synthetic validation set draws from
# a seed far from the training seed.
VAL_SEED_OFFSET = 1_000_003
VAL_SIZE = 192
GRADIENT_LEVEL_SAMPLES = 64


@dataclass
class TrainData:
    ss: SizedDataset
    lle: SizedDataset
    val: SizedDataset


def build_datasets(cfg: TrainConfig, model_cfg: ModelConfig) -> TrainData:
    aug = PairedAugment(cfg.crop_size, hflip=True)
    if cfg.ss_data is not None:
        ss: SizedDataset = VOCSegmentation(cfg.ss_data, "train", transform=aug, seed=cfg.seed)
    else:
        ss = SceneSegmentationDataset(
            cfg.synthetic_length, cfg.crop_size, num_classes=cfg.scene_classes, seed=cfg.seed
        )
    if cfg.lle_data is not None and cfg.val_holdout > 0:
        detect_layout(cfg.lle_data)  # raises with the list of layouts looked for
        pairs = find_pairs(cfg.lle_data, "train") or []
        train_pairs, val_pairs = holdout_split(pairs, cfg.val_holdout)
        lle: SizedDataset = PairedDataset(train_pairs, transform=aug, seed=cfg.seed)
        val: SizedDataset = PairedDataset(val_pairs)
    elif cfg.lle_data is not None:
        lle = find_paired(cfg.lle_data, "train", transform=aug, seed=cfg.seed)
        has_eval = detect_layout(cfg.lle_data) in ("lol", "lsrw")
        # A generic low/high folder has no held-out split: validate on its first images and
        # say so in the docs (users with a real split point --lle-data at LOL or LSRW, or
        # hold training pairs out with --val-holdout).
        val = find_paired(cfg.lle_data, "eval") if has_eval else find_paired(cfg.lle_data)
        val = _Head(val, cfg.val_images)
    else:
        lle, val = _darkened_pairs(cfg)
    if cfg.val_data is not None:
        val = PairedDataset(spread(_all_pairs(cfg.val_data), cfg.val_images))
    return TrainData(ss, lle, val)


def _darkened_pairs(cfg: TrainConfig) -> tuple[SizedDataset, SizedDataset]:
    """Ground truths darkened on the fly: generated scenes, or the photos of --lle-photos.
    Photos validate on held-out photos (--val-holdout) or, without a split, on val_images of
    the training photos darkened by the validation seed."""
    synthesis = SynthesisParams(
        degradation=cast(Degradation, cfg.degradation),
        camera_share=cfg.camera_share,
        bright_share=cfg.bright_share,
        black_point=cfg.black_point,
    )
    train_src: SizedDataset | None = None
    val_src: SizedDataset | None = None
    n_val = cfg.val_images
    if cfg.lle_photos is not None:
        photos = find_photos(cfg.lle_photos)
        if cfg.val_holdout > 0:
            photos, held = holdout_split(photos, cfg.val_holdout)
        else:
            held = spread(photos, cfg.val_images)
        train_src = PhotoFolder(photos, cfg.photo_max_side)
        val_src, n_val = PhotoFolder(held, cfg.photo_max_side), len(held)

    def pairs(length: int, size: int, seed: int, source: SizedDataset | None) -> SizedDataset:
        return SyntheticPairDataset(
            length,
            size,
            seed=seed,
            synthesis_cfg=synthesis,
            source=source,
            num_classes=cfg.scene_classes,
            scene_detail=cfg.scene_detail,
            detail_albedo=cfg.detail_albedo,
            detail_strokes=cfg.detail_strokes,
            gt_exposure=cfg.gt_exposure,
            emitters=cfg.emitters,
            emitter_glow=cfg.emitter_glow,
        )

    return (
        pairs(cfg.synthetic_length, cfg.crop_size, cfg.seed + 1, train_src),
        pairs(n_val, VAL_SIZE, cfg.seed + VAL_SEED_OFFSET, val_src),
    )


def _all_pairs(root: Path) -> list[ImagePair]:
    """Every pair of a folder: a dataset's training split, or a plain low/ + high/ folder."""
    layout = detect_layout(root)
    pairs = find_pairs(root, "train" if layout in ("lol", "lsrw") else "eval")
    if not pairs:
        raise InputError(f"no image pairs found in {root}")
    return pairs


def spread(pairs: list[T], n: int) -> list[T]:
    """n pairs evenly spaced over the list (all of them if n >= len)."""
    if n >= len(pairs):
        return list(pairs)
    return [pairs[int((i + 0.5) * len(pairs) / n)] for i in range(n)]


def holdout_split(pairs: list[T], n: int) -> tuple[list[T], list[T]]:
    """(train, held out): every k-th pair by name order, so the split is spread over the set
    and the same on every machine."""
    if n >= len(pairs):
        raise InputError(f"--val-holdout {n} leaves no training pairs (the set has {len(pairs)})")
    stride = len(pairs) / n
    held = {int(i * stride + stride / 2) for i in range(n)}
    return (
        [p for i, p in enumerate(pairs) if i not in held],
        [p for i, p in enumerate(pairs) if i in held],
    )


class _Head(Dataset):
    def __init__(self, ds: SizedDataset, n: int) -> None:
        self.ds, self.n = ds, min(n, len(ds))

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> Any:
        if not 0 <= i < self.n:
            raise IndexError(i)
        return self.ds[i]


def make_loader(ds: SizedDataset, batch_size: int, seed: int, workers: int, distributed: bool):
    if len(ds) < batch_size:
        raise InputError(f"dataset of {len(ds)} items is smaller than the batch size {batch_size}")
    return build_loader(ds, batch_size, seed=seed, num_workers=workers, distributed=distributed)


def cycle(loader: Any, start_epoch: int = 0) -> Iterator[Any]:
    return InfiniteLoader(loader, start_epoch)


def estimate_level(lle: SizedDataset) -> float:
    """G of the gradient loss, from (up to) 64 well-lit training images, spread over the set."""
    n = min(GRADIENT_LEVEL_SAMPLES, len(lle))
    step = max(len(lle) // n, 1)
    return estimate_gradient_level(lle[i * step]["high"] for i in range(n))


def validation_note(cfg: TrainConfig) -> str | None:
    """A line saying that the pairs validated on are not held out of what is trained on or
    reported, or None: ``best.safetensors`` is chosen on them (build_datasets' defaults)."""
    if cfg.val_holdout > 0 or cfg.val_data is not None:
        return None
    if cfg.lle_photos is not None:
        return (
            f"validating on up to {cfg.val_images} of the training photos of {cfg.lle_photos}, "
            "darkened by a seed of their own (not held out): --val-holdout N holds N out"
        )
    if cfg.lle_data is None:
        return None  # generated scenes validate on scenes of their own
    hold_out = "--val-holdout N validates on N training pairs held out instead"
    if detect_layout(cfg.lle_data) in ("lol", "lsrw"):
        return (
            f"validating on the evaluation split of {cfg.lle_data}: best.safetensors is "
            f"chosen on it, so report last.safetensors' scores there, or {hold_out}"
        )
    return (
        f"validating on the first {cfg.val_images} (at most) training pairs of {cfg.lle_data} (not "
        f"held out): {hold_out}"
    )


def smaller_than_crop(lle: SizedDataset, crop: int) -> str | None:
    """A line saying how many training pairs are smaller than the crop on a side (they are
    padded by reflection: mirrored borders a user should know about), or None. Reads only the
    files' headers."""
    pairs = getattr(lle, "pairs", None)
    if not pairs:
        return None  # generated scenes are made at the crop size
    from PIL import Image

    small, smallest = 0, None
    for pair in pairs:
        try:
            with Image.open(pair.low) as im:
                w, h = im.size
        except OSError:
            continue  # the loader names an unreadable file when it meets it
        if min(w, h) < crop:
            small += 1
            if smallest is None or w * h < smallest[0] * smallest[1]:
                smallest = (w, h)
    if not small or smallest is None:
        return None
    return (
        f"{small} of {len(pairs)} training pairs are smaller than --crop-size {crop} "
        f"(smallest {smallest[0]}x{smallest[1]}): their crops are padded by reflection"
    )
