"""Perceptual loss on frozen VGG16 features (Eq. 11's perceptual term, after Johnson et al. [31]).

The VGG16 feature extractor is written out here with the same layer indices as torchvision's
``vgg16().features``, so torchvision's checkpoint keys ``features.N.weight`` / ``features.N.bias``
load unchanged, without torchvision installed. Weights are read ONLY from a local file the user
names (``.safetensors``, or torchvision's ``.pth`` read with ``weights_only=True``); nothing is
ever downloaded. Without a file the term is off: :meth:`PerceptualLoss.from_file` returns None.

Distance: L1, not MSE. ReLU activations are unbounded and heavy-tailed (a few channels reach
tens while most are near 0); MSE would be dominated by those few channels and scale with the
square of the activations, which makes its weight hard to set. L1 is also the usual choice in
image restoration (e.g. BasicSR's PerceptualLoss).
"""

from __future__ import annotations

import os
import pickle
import re
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from sllen.runtime.errors import InputError

# torchvision's vgg16 "D" configuration: numbers are 3x3 conv widths (each followed by ReLU),
# "M" a 2x2 max pool. Built in this order it reproduces torchvision's indices 0..30.
_VGG16_CFG: tuple[int | str, ...] = (
    64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M",
)  # fmt: skip

# Index in ``features`` of each ReLU output, named as in the perceptual-loss literature.
VGG16_LAYERS: dict[str, int] = {
    "relu1_1": 1, "relu1_2": 3,
    "relu2_1": 6, "relu2_2": 8,
    "relu3_1": 11, "relu3_2": 13, "relu3_3": 15,
    "relu4_1": 18, "relu4_2": 20, "relu4_3": 22,
    "relu5_1": 25, "relu5_2": 27, "relu5_3": 29,
}  # fmt: skip

DEFAULT_LAYERS: tuple[str, ...] = ("relu1_2", "relu2_2", "relu3_3")

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _build_features() -> nn.Sequential:
    layers: list[nn.Module] = []
    in_ch = 3
    for v in _VGG16_CFG:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            # Not in-place (torchvision uses inplace=True): we keep ReLU outputs as features.
            layers += [nn.Conv2d(in_ch, int(v), kernel_size=3, padding=1), nn.ReLU()]
            in_ch = int(v)
    return nn.Sequential(*layers)


class VGG16Features(nn.Module):
    """torchvision-compatible VGG16 ``features`` with ImageNet normalisation inside.

    ``state_dict()`` keys are exactly torchvision's ``features.N.weight`` / ``features.N.bias``:
    the normalisation constants are non-persistent buffers.
    """

    mean: torch.Tensor  # buffers, registered in __init__
    std: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        self.features = _build_features()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(
        self, x: torch.Tensor, layers: Sequence[str] = DEFAULT_LAYERS
    ) -> list[torch.Tensor]:
        """Features of ``x`` (Bx3xHxW in [0, 1]) at ``layers``, in the order given.

        The forward stops after the deepest requested layer.
        """
        wanted = {VGG16_LAYERS[name]: name for name in layers}
        last = max(wanted)
        out: dict[str, torch.Tensor] = {}
        h = (x - self.mean) / self.std
        for i, layer in enumerate(self.features):
            h = layer(h)
            if i in wanted:
                out[wanted[i]] = h
            if i == last:
                break
        return [out[name] for name in layers]


def _expected_shapes() -> dict[str, tuple[int, ...]]:
    """torchvision's ``features.N.weight/bias`` shapes, from the configuration (no allocation)."""
    shapes: dict[str, tuple[int, ...]] = {}
    index, in_ch = 0, 3
    for v in _VGG16_CFG:
        if v == "M":
            index += 1
            continue
        shapes[f"features.{index}.weight"] = (int(v), in_ch, 3, 3)
        shapes[f"features.{index}.bias"] = (int(v),)
        index, in_ch = index + 2, int(v)
    return shapes


def _one_line(exc: BaseException) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip().splitlines()  # no ANSI colour codes
    first = text[0] if text else ""
    return f"{type(exc).__name__}: {first[:200]}" if first else type(exc).__name__


def _read_tensors(path: Path) -> dict[str, object]:
    """Raw key -> value mapping from a .safetensors file or a torch checkpoint."""
    if not path.is_file():
        raise InputError(f"{path}: VGG16 weights file not found")
    with path.open("rb") as f:
        head = f.read(9)
    # safetensors: 8-byte little-endian header length, then the JSON header "{...".
    is_safetensors = path.suffix == ".safetensors" or head[8:9] == b"{"
    # a torch checkpoint is a zip (torch.save since 1.6) or a bare pickle (protocol 2+: 0x80)
    if not is_safetensors and not (head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"):
        raise InputError(
            f"{path}: not VGG16 weights (neither a .safetensors file nor a torch checkpoint)"
        )
    try:
        if is_safetensors:
            from safetensors.torch import load_file

            obj: object = load_file(str(path), device="cpu")
        else:
            # weights_only: tensors and plain containers only, never arbitrary pickled objects.
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "weights only" not in str(exc).lower():
            raise InputError(f"{path}: unreadable torch checkpoint ({_one_line(exc)})") from exc
        raise InputError(
            f"{path}: refused by torch.load(weights_only=True): it pickles objects other than "
            "tensors; convert it to .safetensors where it was made"
        ) from exc
    except Exception as exc:  # any other reader failure means a truncated or foreign file
        kind = "safetensors" if is_safetensors else "torch checkpoint"
        raise InputError(
            f"{path}: unreadable or truncated VGG16 weights ({kind}; {_one_line(exc)})"
        ) from exc
    if isinstance(obj, dict):
        for wrapper in ("state_dict", "model"):  # common training-checkpoint wrappers
            if isinstance(obj.get(wrapper), dict):
                obj = obj[wrapper]
                break
    if not isinstance(obj, dict):
        raise InputError(f"{path}: holds a {type(obj).__name__}, not a VGG16 state dict")
    return obj


def _features_state_dict(path: Path, raw: dict[str, object]) -> dict[str, torch.Tensor]:
    """Keep the VGG16 ``features`` tensors under torchvision's names, checked against shapes.

    Accepts keys with or without the ``features.`` prefix (and a DataParallel ``module.``
    prefix); ``classifier.*`` keys of a full vgg16 state dict are ignored.
    """
    expected = _expected_shapes()
    found: dict[str, object] = {}
    unexpected: list[str] = []
    for key in raw:
        k = str(key).removeprefix("module.")
        if k.startswith("classifier."):
            continue
        name = "features." + k.removeprefix("features.")
        if name in expected:
            found[name] = raw[key]
        elif k.startswith("features.") or k.split(".")[0].isdigit():
            unexpected.append(str(key))
    missing = [k for k in expected if k not in found]
    if missing:
        raise InputError(
            f"{path}: not VGG16 features weights: missing {len(missing)} of {len(expected)} "
            f"keys (e.g. {', '.join(missing[:3])})"
        )
    if unexpected:  # e.g. vgg16_bn's batch-norm statistics
        raise InputError(
            f"{path}: not plain VGG16 features weights: unexpected keys "
            f"(e.g. {', '.join(unexpected[:3])})"
        )
    state: dict[str, torch.Tensor] = {}
    wrong: list[str] = []
    for name, shape in expected.items():
        value = found[name]
        if not isinstance(value, torch.Tensor) or not value.is_floating_point():
            wrong.append(f"{name} is {type(value).__name__}, not a float tensor")
        elif tuple(value.shape) != shape:
            wrong.append(f"{name} {tuple(value.shape)} != expected {shape}")
        elif not torch.isfinite(value).all():
            wrong.append(f"{name} has NaN/inf values")
        else:
            state[name] = value
    if wrong:
        more = f" (+{len(wrong) - 2} more)" if len(wrong) > 2 else ""
        raise InputError(f"{path}: wrong VGG16 tensors: {'; '.join(wrong[:2])}{more}")
    return state


def read_vgg16_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Validated VGG16 ``features`` state dict (torchvision key names) from a local file.

    Raises:
        InputError (a ValueError): one line naming the file and the problem (missing,
            unreadable/truncated, missing keys, wrong shapes): bad input, not a bug.
    """
    p = Path(path)
    return _features_state_dict(p, _read_tensors(p))


def load_vgg16_features(path: str | os.PathLike) -> VGG16Features:
    """Frozen, eval-mode :class:`VGG16Features` with weights from ``path`` (see
    :func:`read_vgg16_state_dict` for the accepted files and the errors)."""
    model = VGG16Features()
    model.load_state_dict(read_vgg16_state_dict(path))
    return model.requires_grad_(False).eval()


def convert_vgg16_to_safetensors(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """Write the VGG16 ``features`` weights of ``src`` (.pth or .safetensors, full vgg16 or
    features only) to ``dst`` as float32 safetensors with torchvision's key names."""
    from sllen.model.io import save_tensors  # atomic; a full disk names the file

    state = read_vgg16_state_dict(src)
    tensors = {k: v.detach().to(torch.float32).contiguous() for k, v in state.items()}
    return save_tensors(tensors, dst, {"format": "pt", "model": "vgg16.features"})


class PerceptualLoss(nn.Module):
    """Mean over layers of the L1 distance between VGG16 features of enhanced and target.

    ``loss = sum_l w_l * mean|phi_l(enhanced) - phi_l(target)|`` with ``w_l`` = ``layer_weights``
    normalised to sum 1 (equal by default). The VGG stays frozen and in eval mode even when the
    surrounding module is put in training mode; gradients flow to ``enhanced`` only.
    """

    def __init__(
        self,
        features: VGG16Features,
        layers: Sequence[str] = DEFAULT_LAYERS,
        layer_weights: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        layers = tuple(layers)
        unknown = [name for name in layers if name not in VGG16_LAYERS]
        if not layers or unknown:
            raise ValueError(
                f"layers must be a non-empty subset of {', '.join(VGG16_LAYERS)}; got {layers}"
            )
        weights = (
            [1.0] * len(layers) if layer_weights is None else [float(w) for w in layer_weights]
        )
        if len(weights) != len(layers) or any(w < 0 for w in weights) or sum(weights) <= 0:
            raise ValueError(f"layer_weights {layer_weights} do not fit layers {layers}")
        self.features = features.requires_grad_(False).eval()
        self.layers = layers
        self.layer_weights = tuple(w / sum(weights) for w in weights)

    @classmethod
    def from_file(
        cls,
        path: str | os.PathLike | None,
        layers: Sequence[str] = DEFAULT_LAYERS,
        layer_weights: Sequence[float] | None = None,
    ) -> PerceptualLoss | None:
        """The loss with VGG16 weights from ``path``, or None when ``path`` is None.

        None is the training code's signal to turn the perceptual term off (and say so in its
        log); a path that is given but bad raises InputError (a ValueError) instead of
        silently disabling.
        """
        if path is None:
            return None
        return cls(load_vgg16_features(path), layers, layer_weights)

    def train(self, mode: bool = True) -> PerceptualLoss:
        super().train(mode)
        self.features.eval()  # a loss network never changes mode
        return self

    def forward(self, enhanced: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if enhanced.shape != target.shape or enhanced.dim() != 4 or enhanced.shape[1] != 3:
            raise ValueError(
                f"expected two Bx3xHxW images of one shape, got {tuple(enhanced.shape)} and "
                f"{tuple(target.shape)}"
            )
        with torch.no_grad():  # the target needs no graph: saves the activations' memory
            target_feats = self.features(target, self.layers)
        enhanced_feats = self.features(enhanced, self.layers)
        loss = enhanced.new_zeros(())
        for w, fe, ft in zip(self.layer_weights, enhanced_feats, target_feats, strict=True):
            loss = loss + w * F.l1_loss(fe, ft)
        return loss

    def extra_repr(self) -> str:
        return f"layers={self.layers}, layer_weights={self.layer_weights}, criterion=l1"
