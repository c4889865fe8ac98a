"""SS-stage loss: pixel-wise cross-entropy of the U-Net segmentation head (SSaN).

The paper (Sec. II-C) trains SSaN with "the same loss as Ref. [29]", the U-Net paper: a
pixel-wise softmax cross-entropy. U-Net's border weight map is specific to cell segmentation
and is not used here.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

IGNORE_INDEX = 255  # PASCAL VOC marks object borders and "void" pixels with 255


def segmentation_loss(
    logits: torch.Tensor, labels: torch.Tensor, ignore_index: int = IGNORE_INDEX
) -> torch.Tensor:
    """Mean cross-entropy over the labelled pixels of a batch.

    Args:
        logits: B x K x H x W class scores (before softmax).
        labels: B x H x W integer class indices in [0, K) or ``ignore_index``.
        ignore_index: label value that contributes nothing.

    Returns:
        Scalar tensor. A batch whose pixels are all ignored gives 0 (still attached to the graph)
        instead of torch's NaN from 0 / 0, so one unlabelled crop cannot poison the weights.
    """
    if logits.dim() != 4 or labels.dim() != 3:
        raise ValueError(
            f"expected logits BxKxHxW and labels BxHxW, got {tuple(logits.shape)} and "
            f"{tuple(labels.shape)}"
        )
    if logits.shape[0] != labels.shape[0] or logits.shape[2:] != labels.shape[1:]:
        raise ValueError(
            f"logits {tuple(logits.shape)} and labels {tuple(labels.shape)} differ in batch or size"
        )
    labels = labels.long()
    total = F.cross_entropy(logits, labels, ignore_index=ignore_index, reduction="sum")
    # Divide by the labelled-pixel count ourselves: identical to reduction="mean" when there is
    # at least one labelled pixel, and 0 rather than NaN when there is none.
    count = (labels != ignore_index).sum().clamp_min(1)
    return total / count


class SegmentationLoss(nn.Module):
    """Module form of :func:`segmentation_loss` (the SS stage of Algorithm 1)."""

    def __init__(self, ignore_index: int = IGNORE_INDEX) -> None:
        super().__init__()
        self.ignore_index = ignore_index

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return segmentation_loss(logits, labels, self.ignore_index)

    def extra_repr(self) -> str:
        return f"ignore_index={self.ignore_index}"
