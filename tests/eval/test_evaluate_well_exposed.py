"""sllen-eval scores what sllen-run gives: with --well-exposed keep (the default) an input
already exposed passes through the PyTorch path too; with enhance, the network's result."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from sllen.config import get_preset
from sllen.evaluate import torch_enhancer
from sllen.model.io import save_weights
from sllen.model.sllen import SLLEN
from sllen.runtime.exposure import linear_to_srgb


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    return save_weights(SLLEN(get_preset("tiny")), tmp_path_factory.mktemp("w") / "t.safetensors")


def test_torch_path_keeps_an_exposed_image_unless_told_to_enhance(weights: Path) -> None:
    rng = np.random.default_rng(0)
    lin = np.clip(0.25 * (1 + 0.3 * rng.standard_normal((32, 48, 3))), 0, 1)
    exposed = linear_to_srgb(lin).astype(np.float32)
    keep, name = torch_enhancer(weights, threads=1)
    enhance, _ = torch_enhancer(weights, threads=1, well_exposed="enhance")
    assert np.array_equal(keep(exposed), exposed)
    assert np.abs(enhance(exposed) - exposed).mean() > 0.01  # an untrained network changes it
    dark = (exposed * 0.1).astype(np.float32)
    assert np.array_equal(keep(dark), enhance(dark))  # a dark input: the network's result
    assert name == str(weights)
