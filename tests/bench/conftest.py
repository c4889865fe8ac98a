"""A tiny SLLEN as weights and as ONNX, made once for the sllen-bench tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(weights .safetensors, ONNX file) of the tiny preset, random weights."""
    import torch

    from sllen.config import get_preset
    from sllen.export.onnx_export import export_onnx
    from sllen.model.io import save_weights
    from sllen.model.sllen import SLLEN

    folder = tmp_path_factory.mktemp("bench-tiny")
    torch.manual_seed(0)
    model = SLLEN(get_preset("tiny")).eval()
    weights = save_weights(model, folder / "tiny.safetensors")
    onnx_file = export_onnx(model, folder / "tiny.onnx")
    return weights, onnx_file
