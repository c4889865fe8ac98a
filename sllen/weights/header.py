"""A safetensors file's header metadata, read without torch or the safetensors package.

``sllen info`` must work in a run-only install (numpy, onnxruntime, PyAV: no torch, no
safetensors). The format's header is specified and tiny: 8 bytes (little-endian u64 N), then N
bytes of JSON whose ``__metadata__`` entry holds the string metadata
(https://github.com/huggingface/safetensors#format); so this reads it with the standard library
instead of adding a dependency to the runtime.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

from sllen.config import ModelConfig
from sllen.runtime.errors import InputError

CONFIG_KEY = "sllen_config"
FORMAT_KEY = "sllen_format"

# The format caps the header at 100 MB; anything larger is not a safetensors file.
MAX_HEADER_BYTES = 100_000_000


class WeightsError(InputError):
    """A weights file that cannot be used (the message is one line, for the CLI)."""


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The ``__metadata__`` strings of a .safetensors file (model config, training info)."""
    path = Path(path)
    if path.is_dir():
        hint = " (a training run's: last.safetensors or best.safetensors in it)"
        raise WeightsError(f"{path} is a folder; name a .safetensors file{hint}")
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    if path.suffix.lower() in (".onnx", ".engine", ".plan"):
        raise WeightsError(
            f"{path} is a deployed model file, not safetensors weights: score or run it with "
            "--model"
        )
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise InputError("file shorter than the 8-byte header length")
            (n,) = struct.unpack("<Q", head)
            if n > MAX_HEADER_BYTES:
                raise InputError(f"header length {n} is not plausible")
            raw = f.read(n)
        if len(raw) < n:
            raise InputError("header cut short")
        header = json.loads(raw)
        if not isinstance(header, dict):
            raise InputError("header is not a JSON object")
        # The header says where each tensor's bytes end: a copy cut short (an interrupted
        # download) is caught here, not only when the tensors are loaded.
        ends = [
            int(v["data_offsets"][1])
            for k, v in header.items()
            if k != "__metadata__" and isinstance(v, dict) and "data_offsets" in v
        ]
        expected = 8 + n + max(ends, default=0)
        size = path.stat().st_size
    except (OSError, ValueError, UnicodeDecodeError, TypeError, IndexError) as e:
        reason = " ".join(str(e).split()) or type(e).__name__
        raise WeightsError(f"{path} is not a readable safetensors file ({reason})") from None
    if size < expected:
        raise WeightsError(
            f"{path} is truncated: {size:,} of the {expected:,} bytes its header describes "
            "(copy or download it again)"
        )
    meta = header.get("__metadata__") or {}
    return {str(k): str(v) for k, v in meta.items()}


def read_config(path: str | os.PathLike) -> ModelConfig:
    """The model config a weights file carries (enough to rebuild the network)."""
    meta = read_metadata(path)
    if CONFIG_KEY not in meta:
        raise WeightsError(f"{path} has no sllen model config: not an sllen weights file")
    try:
        return ModelConfig.from_dict(json.loads(meta[CONFIG_KEY]))
    except (ValueError, TypeError) as e:
        raise WeightsError(f"{path} has an invalid model config ({e})") from None
