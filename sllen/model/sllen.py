"""SLLEN: LLEmN (main network) and SSaN (auxiliary network) sharing one U-Net encoder (Fig. 2).

Data flow for an input I (height and width multiples of ``config.size_multiple``):
    feats = E(I); F_l = feats[-1]
    S, D_s stages = D_s(F_l, feats)                        SSaN: segmentation logits
    F_h = HSEB(softmax(S))                                 high-level semantic feature
    F_i = avgpool(D_s stage ``ief_stage``) to F_l's size   intermediate embedding feature
    F_hl = HSBAB(F_h, F_l);  F_r = RSAEB(F_i, F_l)         feature enhancement
    F_f = FFB(F_hl, F_r)                                   feature fusion
    I_hat = sigmoid(D_l(F_f, feats))                       enhanced image in [0, 1]
    I_hat = GuidedRefine(I, I_hat)                         inference only, where configured
Ablations replace a missing branch's output by F_l, as the paper does; without both
branches (SLLEN-3) F_f = F_l and the network is a plain U-Net.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, overload

import torch
import torch.nn.functional as F
from torch import nn

from sllen.config import ModelConfig
from sllen.model.blocks import UNetDecoder, UNetEncoder
from sllen.model.ffb import FFB
from sllen.model.hsbab import HSBAB
from sllen.model.hseb import HSEB
from sllen.model.refine import GuidedRefine
from sllen.model.rsaeb import RSAEB


@dataclass
class SLLENOutput:
    image: torch.Tensor  # enhanced image, B x 3 x H x W in [0, 1]
    segmentation: torch.Tensor | None  # SSaN logits, B x K x H x W
    encoder_features: list[torch.Tensor]  # E's levels, full resolution first (KD teacher)
    decoder_features: list[torch.Tensor]  # D_l's stages, deepest first (KD student)


class SLLEN(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        c = config.encoder_channels
        self.encoder = UNetEncoder(config.in_channels, c)
        self.ss_encoder = None if config.shared_encoder else UNetEncoder(config.in_channels, c)
        self.ss_decoder = UNetDecoder(c, config.num_classes)
        self.hseb: HSEB | None = None
        self.hsbab: HSBAB | None = None
        self.rsaeb: RSAEB | None = None
        self.ffb: FFB | None = None
        if config.use_hsbab:
            self.hseb = HSEB(config.num_classes, config.hseb_channels, config.size_multiple)
            self.hsbab = HSBAB(
                config.hseb_channels[-1], c[-1], config.attention_dim, config.attention_heads
            )
        if config.use_rsaeb:
            ief_channels = c[-2 - config.ief_stage]
            self.rsaeb = RSAEB(ief_channels, c[-1], config.rsaeb_hidden)
        if config.use_hsbab or config.use_rsaeb:
            self.ffb = FFB(c[-1])
        self.lle_decoder = UNetDecoder(c, 3)
        self.refine: GuidedRefine | None = None
        if config.refine_radius:
            self.refine = GuidedRefine(
                config.refine_radius,
                config.refine_eps,
                config.refine_chroma_radius,
                config.refine_chroma_eps,
                config.refine_chroma_noise,
            )
        self.apply(_init_weights)

    # Parameter groups of Algorithm 1: the SS stage updates E and D_s, the LLE stage E and
    # LLEmN's own modules.
    def ss_parameters(self) -> list[nn.Parameter]:
        enc = self.ss_encoder if self.ss_encoder is not None else self.encoder
        return [*enc.parameters(), *self.ss_decoder.parameters()]

    def lle_parameters(self) -> list[nn.Parameter]:
        mods = [self.encoder, self.hseb, self.hsbab, self.rsaeb, self.ffb, self.lle_decoder]
        return [p for m in mods if m is not None for p in m.parameters()]

    @property
    def needs_segmentation(self) -> bool:
        """Whether enhancement depends on SSaN (false only for SLLEN-3)."""
        return self.hsbab is not None or self.rsaeb is not None

    def _check_size(self, x: torch.Tensor) -> None:
        m = self.config.size_multiple
        if not torch.jit.is_tracing() and not torch.compiler.is_compiling():
            if x.shape[-1] % m or x.shape[-2] % m:
                raise ValueError(
                    f"input {tuple(x.shape[-2:])} is not a multiple of {m}; use enhance() "
                    "which pads and crops"
                )

    def segment(self, x: torch.Tensor) -> torch.Tensor:
        """SSaN alone (the SS stage): segmentation logits."""
        self._check_size(x)
        enc = self.ss_encoder if self.ss_encoder is not None else self.encoder
        feats = enc(x)
        logits, _ = self.ss_decoder(feats[-1], feats)
        return logits

    def forward_all(self, x: torch.Tensor, with_segmentation: bool = True) -> SLLENOutput:
        """Everything the LLE stage's losses need."""
        self._check_size(x)
        feats = self.encoder(x)
        f_l = feats[-1]
        seg = None
        f_hl = f_r = f_l
        if self.needs_segmentation or with_segmentation:
            ss_feats = feats if self.ss_encoder is None else self.ss_encoder(x)
            seg, ss_stages = self.ss_decoder(ss_feats[-1], ss_feats)
            if self.hsbab is not None:
                assert self.hseb is not None  # built together (use_hsbab)
                f_hl = self.hsbab(self.hseb(seg), f_l)
            if self.rsaeb is not None:
                f_i = ss_stages[self.config.ief_stage]
                f_i = F.avg_pool2d(f_i, f_i.shape[-1] // f_l.shape[-1])
                f_r = self.rsaeb(f_i, f_l)
        f_f = self.ffb(f_hl, f_r) if self.ffb is not None else f_l
        out, dec_feats = self.lle_decoder(f_f, feats)
        image = torch.sigmoid(out)
        # Inference only: the losses train the network's own output (what was measured).
        if self.refine is not None and not self.training:
            image = self.refine(x, image)
        return SLLENOutput(image, seg, feats, dec_feats)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Enhanced image for an input whose size is a multiple of ``size_multiple``.

        This is the graph that is exported; pre-processing (padding) belongs to the caller.
        """
        return self.forward_all(x, with_segmentation=False).image

    @overload
    def enhance(
        self, x: torch.Tensor, return_segmentation: Literal[False] = ...
    ) -> torch.Tensor: ...

    @overload
    def enhance(
        self, x: torch.Tensor, return_segmentation: Literal[True]
    ) -> tuple[torch.Tensor, torch.Tensor]: ...

    @overload
    def enhance(
        self, x: torch.Tensor, return_segmentation: bool
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]: ...

    @torch.no_grad()
    def enhance(
        self, x: torch.Tensor, return_segmentation: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Public inference call on any H x W: pads to a multiple of 16, runs, crops back.

        Padding reflects the border (no dark frame for the network to react to); images
        smaller than the padding fall back to replicating the edge.
        """
        squeeze = x.dim() == 3
        if squeeze:
            x = x.unsqueeze(0)
        h, w = x.shape[-2:]
        m = self.config.size_multiple
        ph, pw = (-h) % m, (-w) % m
        if ph or pw:
            mode = "reflect" if ph < h and pw < w else "replicate"
            x = F.pad(x, (0, pw, 0, ph), mode=mode)
        out = self.forward_all(x, with_segmentation=return_segmentation)
        image = out.image[..., :h, :w]
        if squeeze:
            image = image[0]
        if not return_segmentation:
            return image
        assert out.segmentation is not None  # forward_all(with_segmentation=True) sets it
        seg = out.segmentation[..., :h, :w]
        return image, seg[0] if squeeze else seg


def _init_weights(m: nn.Module) -> None:
    # He initialisation for the ReLU convolutions: torch's default (a=sqrt(5)) shrinks the
    # signal about 3x per layer, and with no normalisation layers a 20-convolution U-Net then
    # starts out (and trains for a long time) as a constant image.
    if isinstance(m, nn.Conv2d):
        nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
        if m.bias is not None:
            nn.init.zeros_(m.bias)


def build_model(config: ModelConfig) -> SLLEN:
    return SLLEN(config)
