"""Weights on disk: safetensors with the model's JSON config in the file's header metadata.

One file carries everything needed to rebuild the network (no pickle anywhere: safetensors
cannot execute code). Loading checks names and shapes against the config and fails with one
clear line on a missing, truncated, foreign or mismatched file.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from sllen.config import ModelConfig
from sllen.model.sllen import SLLEN
from sllen.runtime.errors import WriteError, os_error_code  # noqa: F401 - WriteError re-exported
from sllen.runtime.files import atomic_write
from sllen.weights.header import (  # noqa: F401 - re-exported: the model's file API
    CONFIG_KEY,
    FORMAT_KEY,
    WeightsError,
    read_config,
    read_metadata,
)

FORMAT_VERSION = "1"
# Config fields that hold no tensors and only change inference (the guided refinement): a file
# saved before they existed, or with other values, still loads into a model that has them.
INFERENCE_ONLY = (
    "refine_radius",
    "refine_eps",
    "refine_chroma_radius",
    "refine_chroma_eps",
    "refine_chroma_noise",
)


def save_weights(
    model: SLLEN,
    path: str | os.PathLike,
    metadata: dict[str, str] | None = None,
    dtype: torch.dtype | None = None,
) -> Path:
    """Write ``model``'s weights and config atomically (temporary file, then rename).

    ``dtype`` (e.g. torch.float16) stores floating tensors at that precision to save space;
    loading always returns float32 weights.
    """
    tensors = {}
    for k, v in model.state_dict().items():
        v = v.detach().to("cpu")
        if dtype is not None and v.is_floating_point():
            v = v.to(dtype)
        tensors[k] = v.contiguous()
    meta = {CONFIG_KEY: model.config.to_json(), FORMAT_KEY: FORMAT_VERSION}
    meta.update(metadata or {})
    return save_tensors(tensors, path, meta)


def save_tensors(
    tensors: dict[str, torch.Tensor], path: str | os.PathLike, metadata: dict[str, str]
) -> Path:
    """``tensors`` as a safetensors file, atomically (nothing half-written is left); a failure
    of the operating system raises WriteError naming ``path``."""
    try:
        return atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata=metadata))
    except OSError as e:  # the temporary file could not be made or renamed
        raise WriteError(path, e.errno, e.strerror or str(e)) from None
    except SafetensorError as e:
        code = os_error_code(e)
        if code is None:  # not the disk's fault (a bad tensor): a bug, shown as such
            raise
        raise WriteError(path, code, os.strerror(code)) from None


# The sllen-train option that sets each model field, for a mismatch message (fields no
# option sets are named plainly).
OPTION_OF = {
    "preset": "--preset",
    "encoder_channels": "--width",
    "hseb_channels": "--width",
    "rsaeb_hidden": "--width",
    "use_hsbab": "--no-hsbab",
    "use_rsaeb": "--no-rsaeb",
    "num_classes": "--num-classes",
    "refine_radius": "--refine-radius",
    "refine_chroma_radius": "--refine-chroma-radius",
    "shared_encoder": "--schedule",
}


def load_weights(
    path: str | os.PathLike, expected: ModelConfig | None = None, device: str = "cpu"
) -> SLLEN:
    """Build the network from the file's config and load its weights (float32, eval mode).

    ``expected``: refuse a file whose config differs (e.g. another preset) with a message
    naming the first differing field; the model is then built with ``expected``'s
    inference-only fields (``INFERENCE_ONLY``), the file's tensors being the same either way.
    """
    path = Path(path)
    config = read_config(path)
    if expected is not None:
        config = config.replace(**{k: getattr(expected, k) for k in INFERENCE_ONLY})
    if expected is not None and config != expected:
        diff = [k for k, v in expected.to_dict().items() if config.to_dict()[k] != v]
        options = sorted({OPTION_OF.get(k, k) for k in diff})
        if config.preset == expected.preset:
            what = f"a '{config.preset}' model built with other options"
        else:
            what = f"a '{config.preset}' model, expected '{expected.preset}'"
        raise WeightsError(
            f"{path} holds {what} (differs in: {', '.join(diff)}; the options: "
            f"{', '.join(options)})"
        )
    model = SLLEN(config)
    want = model.state_dict()
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            names = set(f.keys())
            missing = sorted(set(want) - names)
            unexpected = sorted(names - set(want))
            if missing or unexpected:
                what = f"missing {missing[:3]}" if missing else f"unexpected {unexpected[:3]}"
                raise WeightsError(f"{path} does not match its config: {what}")
            state = {}
            for k in want:
                t = f.get_tensor(k)
                if tuple(t.shape) != tuple(want[k].shape):
                    raise WeightsError(
                        f"{path}: tensor {k} has shape {tuple(t.shape)}, "
                        f"expected {tuple(want[k].shape)}"
                    )
                state[k] = t.to(want[k].dtype)
    except (SafetensorError, OSError, RuntimeError) as e:
        raise WeightsError(f"{path} is truncated or corrupt ({e})") from None
    model.load_state_dict(state)
    return model.to(device).eval()
