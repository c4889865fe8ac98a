"""Knowledge distillation loss, Eq. 7: the encoder (teacher) supervises the decoder (student).

Following [32], the features of encoder layer j teach the features of the decoder layer j of the
same size. The teacher is detached: the term moves the decoder toward the encoder, never the
encoder (shared with SSaN) toward the decoder.

Distance: MSE, the squared L2 of feature-distillation "hint" losses (FitNets). Teacher and
student are clean features of one network, not noisy labels, so L1's robustness to outliers
buys nothing, while MSE's gradient shrinks as the student nears the teacher: once roughly
matched, this auxiliary term stops fighting the reconstruction terms instead of pushing with
L1's constant force.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def match_by_shape(
    encoder_feats: Sequence[torch.Tensor], decoder_feats: Sequence[torch.Tensor]
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(teacher, student) pairs of identical shape (B, C, H, W), one-to-one.

    Encoder features are taken in their order (full resolution down); each takes the first
    decoder feature of its shape not yet used. Features without a partner are left out.
    """
    unused = list(decoder_feats)
    pairs: list[tuple[torch.Tensor, torch.Tensor]] = []
    for teacher in encoder_feats:
        for i, student in enumerate(unused):
            if student.shape == teacher.shape:
                pairs.append((teacher, unused.pop(i)))
                break
    return pairs


def distillation_loss(
    encoder_feats: Sequence[torch.Tensor], decoder_feats: Sequence[torch.Tensor]
) -> torch.Tensor:
    """Mean over shape-matched layer pairs of MSE(decoder_j, encoder_j.detach()).

    The mean over pairs (Eq. 7 sums) keeps the term's scale independent of the network depth.

    Raises:
        ValueError: when no encoder feature has the shape of any decoder feature.
    """
    pairs = match_by_shape(encoder_feats, decoder_feats)
    if not pairs:
        raise ValueError(
            "no encoder/decoder feature pair of identical shape: encoder "
            f"{[tuple(f.shape) for f in encoder_feats]}, decoder "
            f"{[tuple(f.shape) for f in decoder_feats]}"
        )
    losses = [F.mse_loss(student, teacher.detach()) for teacher, student in pairs]
    return torch.stack(losses).mean()


class DistillationLoss(nn.Module):
    """Module form of :func:`distillation_loss` (Eq. 7)."""

    def forward(
        self, encoder_feats: Sequence[torch.Tensor], decoder_feats: Sequence[torch.Tensor]
    ) -> torch.Tensor:
        return distillation_loss(encoder_feats, decoder_feats)
