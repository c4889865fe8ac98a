"""The trainer's pieces around the network: one module for both stages, the device."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from sllen.model.sllen import SLLEN
from sllen.runtime.errors import InputError


class Stages(nn.Module):
    """One forward entry for both stages, so DistributedDataParallel sees every call."""

    def __init__(self, model: SLLEN) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, stage: str) -> dict[str, Any]:
        if stage == "ss":
            return {"segmentation": self.model.segment(x)}
        out = self.model.forward_all(x, with_segmentation=False)
        return {
            "image": out.image,
            "encoder": out.encoder_features,
            "decoder": out.decoder_features,
        }


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"--device {name}: no CUDA GPU is available to torch here")
    return dev


def to_numpy_image(t: torch.Tensor) -> np.ndarray:
    return t.detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy()
