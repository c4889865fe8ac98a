"""Total LLE-stage loss, Eq. 11: a weighted sum of the five terms of Sec. II-C (and two
optional terms that are not the paper's, off by default: SSIM, ``sllen.losses.structural``,
exposure, ``sllen.losses.exposure``, and brightness spread, ``sllen.losses.spread``).

The paper's weights were lost in the text extraction, so they are configuration
(:class:`LossWeights`); a weight of 0 turns its term off. Default weights, chosen so that no
term dominates the gradient reaching the enhanced image (measured on four 256x256 photos, a
noisy 0.15x darkening as the input, and outputs ranging from "copy of the input" and "flat
grey" to "ground truth plus noise"):

- smooth_l1 = 1.0: the anchor; its value is ~0.2-0.3 at initialisation (0.19 for the
  project's SLLEN, whose sigmoid output starts at flat grey).
- gradient = 0.1: an L1 term like smooth L1 in its linear regime, so at weight 1 it pushes the
  pixels as hard as smooth L1 does (gradient norm ~1.5e-3 against ~1e-3) although its value is
  only ~0.01-0.02; and it is not 0 at the ground truth (each image's own gradient level
  differs from G). 0.1 keeps it at ~15-25 % of the reconstruction pull.
- illumination_tv = 0.05: not 0 at the ground truth either (noise in the low image makes
  L = low / R rough), and its gradient concentrates on dark pixels: at eps = 0.05 its norm is
  ~4.5x smooth L1's near convergence and ~11x at an identity-like initialisation; 0.05 brings
  them to ~0.25x and ~0.55x.
- distillation = 0.05: acts on the decoder's features, not on the image, and scales with the
  square of the features. The project's SLLEN at default init has tiny features (KD ~5e-4);
  unit-scale ReLU features that are unrelated give ~0.7, i.e. ~0.03 weighted, ~10-15 % of the
  reconstruction value, so 0.05 keeps it auxiliary as the features grow.
- perceptual = 0.05: L1 of VGG16 relu1_2/2_2/3_3 features is O(1) for unrelated images with
  ImageNet weights (not measurable here: the project ships no VGG weights), so ~0.05 weighted.
  Check the logged raw values at step 0 when you have the weights.
- ssim = 0 (not in Eq. 11): fine-tuning a trained model on LOL 384-pixel crops, 1 - SSIM was
  0.18-0.30 per batch against smooth L1's 0.03-0.08 (measured 2026-12-03); weight 0.2, the one
  tested (docs/reproduce.md), makes it about as large as the anchor, not larger.
- exposure = 0 (not in Eq. 11): an L1 term on the per-channel image means; at weight 1 it
  pushes every pixel as hard as smooth L1 in its linear regime pushes one whose error has
  the image's mean sign.
- spread = 0 (not in Eq. 11): the batch's spread of mean L* / 100 against the ground truths';
  with the edge preset's batches of 8 generated pairs (L14's recipe) the ground truths'
  spread is 0.09-0.15 (8 batches, mean 0.13), and a network that gives every scene one
  brightness pays that much; at weight 1 it logged 0.02-0.04 against smooth L1's 0.06-0.09.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields

import torch
from torch import nn

from .distillation import DistillationLoss
from .exposure import ExposureLoss
from .gradient import GradientLoss
from .illumination import DEFAULT_EPS, IlluminationTVLoss
from .perceptual import PerceptualLoss
from .reconstruction import DEFAULT_BETA, SmoothL1Loss
from .spread import BrightnessSpreadLoss
from .structural import SSIMLoss


@dataclass(frozen=True)
class LossWeights:
    """Weights of Eq. 11's terms; 0 turns a term off. See the module docstring for defaults."""

    smooth_l1: float = 1.0
    perceptual: float = 0.05
    distillation: float = 0.05
    illumination_tv: float = 0.05
    gradient: float = 0.1
    ssim: float = 0.0  # not in Eq. 11: sllen.losses.structural
    exposure: float = 0.0  # not in Eq. 11: sllen.losses.exposure
    spread: float = 0.0  # not in Eq. 11: sllen.losses.spread

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ValueError(f"loss weight {f.name} must be a finite number >= 0, got {value}")

    def nonzero(self) -> tuple[str, ...]:
        """Names of the terms whose weight is not 0, in Eq. 11's order."""
        return tuple(f.name for f in fields(self) if getattr(self, f.name) > 0)


class LLELoss(nn.Module):
    """Eq. 11 for the LLE stage.

    Args:
        weights: per-term weights.
        gradient_level: G of Eq. 10 (see ``sllen.losses.gradient.mean_gradient``); may be None
            only when ``weights.gradient`` is 0.
        perceptual: the VGG16 perceptual loss, or None when no VGG weights are available: the
            term is then skipped and ``skipped["perceptual"]`` says why, for the trainer's log.

    Attributes:
        active: names of the terms that are computed.
        skipped: term name -> reason, for terms with a nonzero weight that cannot be computed.
    """

    def __init__(
        self,
        weights: LossWeights | None = None,
        gradient_level: float | None = None,
        perceptual: PerceptualLoss | None = None,
        *,
        smooth_l1_beta: float = DEFAULT_BETA,
        illumination_eps: float = DEFAULT_EPS,
    ) -> None:
        super().__init__()
        self.weights = weights if weights is not None else LossWeights()
        wanted = self.weights.nonzero()
        self.skipped: dict[str, str] = {}
        if "perceptual" in wanted and perceptual is None:
            self.skipped["perceptual"] = "no VGG16 weights file given"
        if "gradient" in wanted and gradient_level is None:
            raise ValueError("weights.gradient > 0 needs gradient_level (G of Eq. 10)")
        self.active: tuple[str, ...] = tuple(n for n in wanted if n not in self.skipped)
        if not self.active:
            raise ValueError(f"no loss term left to compute (weights {self.weights})")
        # Only the active terms become submodules: a switched-off VGG costs no memory.
        self.terms = nn.ModuleDict()
        if "smooth_l1" in self.active:
            self.terms["smooth_l1"] = SmoothL1Loss(smooth_l1_beta)
        if "perceptual" in self.active:
            assert perceptual is not None  # else skipped above
            self.terms["perceptual"] = perceptual
        if "distillation" in self.active:
            self.terms["distillation"] = DistillationLoss()
        if "illumination_tv" in self.active:
            self.terms["illumination_tv"] = IlluminationTVLoss(illumination_eps)
        if "gradient" in self.active:
            assert gradient_level is not None  # else the ValueError above
            self.terms["gradient"] = GradientLoss(float(gradient_level))
        if "ssim" in self.active:
            self.terms["ssim"] = SSIMLoss()
        if "exposure" in self.active:
            self.terms["exposure"] = ExposureLoss()
        if "spread" in self.active:
            self.terms["spread"] = BrightnessSpreadLoss()

    def forward(
        self,
        enhanced: torch.Tensor,
        target: torch.Tensor,
        low: torch.Tensor,
        enc_feats: Sequence[torch.Tensor] | None = None,
        dec_feats: Sequence[torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Weighted total and the unweighted value of each computed term (plus "total").

        ``enc_feats`` / ``dec_feats`` (encoder features from full resolution down, decoder
        features in any order) are required when the distillation term is active.
        """
        values: dict[str, torch.Tensor] = {}
        for name, term in self.terms.items():
            if name in ("smooth_l1", "perceptual", "ssim", "exposure", "spread"):
                values[name] = term(enhanced, target)
            elif name == "distillation":
                if enc_feats is None or dec_feats is None:
                    raise ValueError(
                        "the distillation term needs enc_feats and dec_feats "
                        "(or set weights.distillation = 0)"
                    )
                values[name] = term(enc_feats, dec_feats)
            elif name == "illumination_tv":
                values[name] = term(enhanced, low)
            else:
                values[name] = term(enhanced)
        total = sum(getattr(self.weights, n) * v for n, v in values.items())
        assert isinstance(total, torch.Tensor)
        logs = {n: float(v.detach()) for n, v in values.items()}
        logs["total"] = float(total.detach())
        return total, logs

    def extra_repr(self) -> str:
        skipped = f", skipped={self.skipped}" if self.skipped else ""
        return f"weights={self.weights}{skipped}"
