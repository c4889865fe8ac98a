"""sllen.data: images, synthetic low light, procedural scenes, datasets and loaders.

Conventions (every module follows them):
- float image: numpy float32 HxWx3 RGB in [0, 1]; image files are read and written by the
  one image reader of sllen, sllen.runtime.images (read_image, write_image, list_images).
- SS sample: {"image": float32 3xHxW in [0, 1], "label": int64 HxW, 255 = ignore}.
- LLE sample: {"low": float32 3xHxW, "high": float32 3xHxW} (+ "name" for files).
- Randomness: functions take a numpy Generator (or a seed); dataset item i draws from
  item_rng(seed, i, epoch), so it is the same in every process and changes with set_epoch.

The numpy-only modules (synthesis, camera, scenes, pair_layouts, samples, gradient_level,
seeding) never import torch, and the names below load lazily, so ``from sllen.data.synthesis
import ...`` and evaluation's pair discovery work on machines without torch (calibration and
engine-only evaluation).
"""

from __future__ import annotations

from sllen._lazy import lazy_exports

_EXPORTS = {
    "augment": ("PairedAugment", "pad_to", "random_crop", "random_flip"),
    "camera": ("CameraParams", "camera_darken", "sample_camera", "synthesize_camera_low"),
    "convert": ("image_to_tensor", "tensor_to_image"),
    "gradient_level": ("estimate_gradient_level", "gradient_level"),
    "pair_datasets": (
        "PairedDataset",
        "PairedFolder",
        "find_paired",
        "lol_dataset",
        "lsrw_dataset",
    ),
    "pair_layouts": ("ImagePair", "detect_layout", "find_pairs"),
    "procedural": ("SceneSegmentationDataset", "SyntheticPairDataset"),
    "samples": ("write_sample_pairs",),
    "sampler": ("InfiniteLoader", "alternate", "build_loader", "cycle_batches"),
    "scenes": ("generate_scene",),
    "seeding": ("item_rng",),
    "synthesis": ("SynthesisParams", "darken", "sample_params", "synthesize_low"),
    "voc": ("VOC_CLASSES", "VOCSegmentation"),
}
__all__, __getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
