"""Resumable checkpoints without pickle: model and optimizer tensors in safetensors, the rest
in JSON. torch.save/torch.load would pickle the optimizer state; a checkpoint a user downloads
must not be able to run code."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from sllen.model.io import WeightsError, load_weights, save_tensors, save_weights
from sllen.model.sllen import SLLEN
from sllen.runtime.files import atomic_write_json


def optimizer_to_tensors(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], str]:
    """Split an optimizer state dict into named tensors and a JSON remainder."""
    sd = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for idx, st in sd["state"].items():
        for key, val in st.items():
            if torch.is_tensor(val):
                tensors[f"state.{idx}.{key}"] = val.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(idx), {})[key] = val
    return tensors, json.dumps({"param_groups": sd["param_groups"], "scalars": scalars})


def optimizer_from_tensors(
    opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: str
) -> None:
    info = json.loads(meta)
    state: dict[int, dict[str, Any]] = {}
    for name, val in tensors.items():
        _, idx, key = name.split(".", 2)
        state.setdefault(int(idx), {})[key] = val
    for idx, vals in info["scalars"].items():
        state.setdefault(int(idx), {}).update(vals)
    opt.load_state_dict({"state": state, "param_groups": info["param_groups"]})


def save_checkpoint(
    folder: Path,
    model: SLLEN,
    optimizers: dict[str, torch.optim.Optimizer],
    state: dict[str, Any],
) -> None:
    """Write model, optimizers and trainer state; state.json goes last and marks completion."""
    folder.mkdir(parents=True, exist_ok=True)
    save_weights(model, folder / "model.safetensors")
    for name, opt in optimizers.items():
        tensors, meta = optimizer_to_tensors(opt)
        save_tensors(tensors, folder / f"{name}.safetensors", {"optimizer": meta})
    atomic_write_json(folder / "state.json", state, sort_keys=True)


def load_checkpoint(
    folder: Path, model: SLLEN, optimizers: dict[str, torch.optim.Optimizer]
) -> dict[str, Any]:
    state_file = folder / "state.json"
    if not state_file.is_file():
        raise WeightsError(f"no complete checkpoint to resume in {folder}")
    saved = load_weights(folder / "model.safetensors", expected=model.config)
    model.load_state_dict(saved.state_dict())
    from safetensors import safe_open

    for name, opt in optimizers.items():
        path = folder / f"{name}.safetensors"
        with safe_open(str(path), framework="pt") as f:
            meta = (f.metadata() or {})["optimizer"]
        optimizer_from_tensors(opt, load_file(str(path)), meta)
    return json.loads(state_file.read_text())
