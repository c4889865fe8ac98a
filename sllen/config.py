"""Model configuration: dataclasses and named presets.

Presets
- ``paper``: widths as close to the paper as its text allows (U-Net 64..1024, HSEB 32/128/512,
  one 512-wide attention head, 21 VOC classes). Heavy: a GPU model.
- ``edge``: the deployable preset for edge GPUs (Jetson): a quarter of the paper's widths and
  attention heads of size 64, so TensorRT can fuse the attention (head size 16..256, a
  multiple of 8) in FP16; its output goes through the guided refinement (``refine_radius``,
  sllen/model/refine.py), which the paper preset leaves off.
- ``tiny``: a few thousand parameters, for tests.

Ablations (Tables I and II of the paper) are switches: ``use_hsbab=False`` is SLLEN-1,
``use_rsaeb=False`` SLLEN-2, both off SLLEN-3 (a plain U-Net); SLLEN-4 (independent training)
is ``shared_encoder=False`` trained with the ``independent`` schedule.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from sllen.runtime.errors import InputError


@dataclass(frozen=True)
class ModelConfig:
    """Widths and switches of the SLLEN network (see docs/model.md for the reading of Fig. 2)."""

    preset: str = "custom"
    in_channels: int = 3
    num_classes: int = 21
    # U-Net encoder E: one width per level; the last is the bottleneck (F_l). With 5 levels the
    # bottleneck is at 1/16 resolution, so inputs must be multiples of 16.
    encoder_channels: tuple[int, ...] = (64, 128, 256, 512, 1024)
    # HSEB: three 3x3 convolutions with ReLU and max pooling (paper: 32, 128, 512 filters).
    hseb_channels: tuple[int, int, int] = (32, 128, 512)
    # HSBAB: Q, K from F_h, V from F_l, projected to attention_dim and split into heads.
    attention_dim: int = 512
    attention_heads: int = 1
    # IEF F_i: output of this SSaN decoder stage (0 = deepest, 1/8 resolution); 1 = 1/4 scale,
    # the middle of D_s.
    ief_stage: int = 1
    rsaeb_hidden: int = 128
    use_hsbab: bool = True
    use_rsaeb: bool = True
    # False gives SSaN an encoder of its own: SLLEN-4, where SSaN and LLEmN are trained
    # independently (one after the other) and only combined at inference.
    shared_encoder: bool = True
    # Guided-filter refinement of the output at inference (not in the paper; see
    # sllen/model/refine.py): window radius in pixels (0 = off, the paper's network) and ridge;
    # then its colour stage: radius (0 = off), ridge, and the share of the input's fine colour
    # noise (at the output's level) below which colour detail is taken for noise.
    refine_radius: int = 0
    refine_eps: float = 3e-4
    refine_chroma_radius: int = 0
    refine_chroma_eps: float = 1e-2
    refine_chroma_noise: float = 0.25

    def __post_init__(self) -> None:
        object.__setattr__(self, "encoder_channels", tuple(self.encoder_channels))
        object.__setattr__(self, "hseb_channels", tuple(self.hseb_channels))
        if len(self.encoder_channels) < 2:
            raise InputError("encoder_channels needs at least two levels")
        if len(self.hseb_channels) != 3:
            raise InputError("hseb_channels must have three widths (HSEB has three convolutions)")
        if self.attention_dim % self.attention_heads:
            raise InputError(
                f"attention_dim {self.attention_dim} is not divisible by "
                f"attention_heads {self.attention_heads}"
            )
        if not 0 <= self.ief_stage < len(self.encoder_channels) - 1:
            raise InputError(f"ief_stage must be in [0, {len(self.encoder_channels) - 2}]")
        if self.num_classes < 2:
            raise InputError("num_classes must be at least 2")
        if self.refine_radius < 0 or self.refine_eps <= 0:
            raise InputError("refine_radius must be >= 0 and refine_eps > 0")
        if (
            self.refine_chroma_radius < 0
            or self.refine_chroma_radius == 1
            or self.refine_chroma_eps <= 0
            or self.refine_chroma_noise < 0
        ):
            raise InputError(
                "refine_chroma_radius must be 0 or >= 2, refine_chroma_eps > 0 and "
                "refine_chroma_noise >= 0"
            )

    @property
    def depth(self) -> int:
        """Number of 2x downsamplings in the encoder."""
        return len(self.encoder_channels) - 1

    @property
    def size_multiple(self) -> int:
        """Height and width of the network's input must be multiples of this."""
        return 2**self.depth

    @property
    def head_dim(self) -> int:
        return self.attention_dim // self.attention_heads

    @property
    def variant(self) -> str:
        """The paper's name for this ablation (SLLEN, SLLEN-1, SLLEN-2, SLLEN-3)."""
        return {
            (True, True): "SLLEN",
            (False, True): "SLLEN-1",
            (True, False): "SLLEN-2",
            (False, False): "SLLEN-3",
        }[(self.use_hsbab, self.use_rsaeb)]

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["encoder_channels"] = list(self.encoder_channels)
        d["hseb_channels"] = list(self.hseb_channels)
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise InputError(f"unknown model config keys: {', '.join(unknown)}")
        return cls(**d)

    def replace(self, **changes: Any) -> ModelConfig:
        return dataclasses.replace(self, **changes)


PRESETS: dict[str, ModelConfig] = {
    "paper": ModelConfig(preset="paper"),
    "edge": ModelConfig(
        preset="edge",
        encoder_channels=(16, 32, 64, 128, 128),
        hseb_channels=(16, 32, 128),
        attention_dim=128,
        attention_heads=2,
        rsaeb_hidden=64,
        refine_radius=2,
        refine_chroma_radius=8,
    ),
    "tiny": ModelConfig(
        preset="tiny",
        num_classes=8,
        encoder_channels=(4, 8, 8, 16, 16),
        hseb_channels=(4, 8, 16),
        attention_dim=16,
        attention_heads=2,
        rsaeb_hidden=8,
    ),
}


def _round8(width: float) -> int:
    return max(8, 8 * round(width / 8))


def widths(cfg: ModelConfig, factor: float) -> dict[str, Any]:
    """Overrides that make ``cfg``'s convolutions ``factor`` times wider (multiples of 8): the
    U-Net, HSEB and RSAEB widths. The attention keeps its dimension and head size (64 in
    ``edge``: what TensorRT's fused attention and sllen's kernel take)."""
    if not 0.25 <= factor <= 4.0:
        raise InputError(f"--width must be in [0.25, 4], not {factor}")
    return {
        "encoder_channels": tuple(_round8(c * factor) for c in cfg.encoder_channels),
        "hseb_channels": tuple(_round8(c * factor) for c in cfg.hseb_channels),
        "rsaeb_hidden": _round8(cfg.rsaeb_hidden * factor),
    }


def get_preset(name: str, **overrides: Any) -> ModelConfig:
    """Return a named preset, optionally with fields changed (e.g. ``use_hsbab=False``)."""
    try:
        cfg = PRESETS[name]
    except KeyError:
        raise InputError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}") from None
    return cfg.replace(**overrides) if overrides else cfg
