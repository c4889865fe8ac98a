"""uint8/float HxWx3 frames <-> the network's float32 NCHW batches, padded to a multiple of 16.

Padding reflects the border (no dark frame around the picture for the network to "correct");
frames smaller than the padding needs fall back to edge replication, which numpy's reflect
cannot do when the pad is wider than the image.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from sllen.runtime.shapes import MULTIPLE, round_up


def padded_size(height: int, width: int, multiple: int = MULTIPLE) -> tuple[int, int]:
    """The padded size the backend is fed for a frame of height x width."""
    return round_up(height, multiple), round_up(width, multiple)


def to_float(frame: np.ndarray) -> np.ndarray:
    """uint8 (or float in [0,1]) HxWx3 -> float32 HxWx3 in [0, 1]."""
    if frame.dtype == np.uint8:
        return frame.astype(np.float32) * np.float32(1 / 255)
    return np.asarray(frame, dtype=np.float32)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """float HxWx3 in [0,1] -> uint8, rounded (not truncated: truncation darkens by 0.5 LSB)."""
    return np.clip(image * 255.0 + 0.5, 0, 255).astype(np.uint8)


def pad_frame(image: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """Pad float HxWx3 at the bottom/right to `hw`."""
    h, w = image.shape[:2]
    ph, pw = hw[0] - h, hw[1] - w
    if ph == 0 and pw == 0:
        return image
    mode: Literal["reflect", "edge"] = "reflect" if ph < h and pw < w else "edge"
    return np.pad(image, ((0, ph), (0, pw), (0, 0)), mode=mode)


def to_batch(images: list[np.ndarray], hw: tuple[int, int] | None = None) -> np.ndarray:
    """Float HxWx3 images of one size -> float32 NCHW padded to a multiple of 16 (or to `hw`)."""
    h, w = images[0].shape[:2]
    target = hw or padded_size(h, w)
    batch = np.empty((len(images), 3, *target), dtype=np.float32)
    for i, image in enumerate(images):
        batch[i] = pad_frame(image, target).transpose(2, 0, 1)
    return batch


def from_batch(batch: np.ndarray, hw: tuple[int, int]) -> list[np.ndarray]:
    """Float NCHW -> float HxWx3 images cropped back to `hw`."""
    h, w = hw
    return [np.ascontiguousarray(b[:, :h, :w].transpose(1, 2, 0)) for b in batch]


def quarter_turns(rotation: float) -> int:
    """A display rotation in degrees as 0-3 quarter turns counter-clockwise."""
    return round(rotation / 90) % 4


def beside(left: np.ndarray, right: np.ndarray, rotation: int = 0) -> np.ndarray:
    """`left` and `right` side by side as a viewer shows them: a video's frames are stored
    unrotated, and its display matrix turns them by `rotation` degrees counter-clockwise, so
    a phone's portrait clip (-90) needs its halves stacked (left on the bottom) to be shown
    side by side."""
    k = quarter_turns(rotation)
    shown = np.concatenate([np.rot90(left, k), np.rot90(right, k)], axis=1)
    return np.ascontiguousarray(np.rot90(shown, -k))
