"""numpy float images <-> torch image tensors.

float image: numpy float32 HxWx3 in [0, 1] (channels last). Image tensor: torch float32
3xHxW in [0, 1] (channels first), the layout of dataset samples and of the model.
"""

from __future__ import annotations

import numpy as np
import torch

from sllen.runtime.errors import InputError


def image_to_tensor(img: np.ndarray) -> torch.Tensor:
    """HxWx3 float image -> 3xHxW float32 tensor (a copy, so it owns its memory)."""
    img = np.asarray(img)
    if img.ndim != 3 or img.shape[2] != 3:
        raise InputError(f"expected an HxWx3 image, got shape {img.shape}")
    return torch.from_numpy(np.array(img.transpose(2, 0, 1), dtype=np.float32, order="C"))


def tensor_to_image(t: torch.Tensor) -> np.ndarray:
    """3xHxW tensor -> HxWx3 float32 numpy image."""
    if t.ndim != 3 or t.shape[0] != 3:
        raise InputError(f"expected a 3xHxW tensor, got shape {tuple(t.shape)}")
    return np.ascontiguousarray(t.detach().cpu().float().numpy().transpose(1, 2, 0))
