"""scripts/package_weights.py: FP16 storage, metadata kept, the refinement switched on."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch

from sllen.config import get_preset
from sllen.model.io import load_weights, read_metadata, save_weights
from sllen.model.sllen import SLLEN

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "package_weights.py"


def test_refine_radius_set_and_tensors_kept(tmp_path: Path) -> None:
    torch.manual_seed(0)
    src = save_weights(SLLEN(get_preset("tiny")), tmp_path / "run.safetensors", {"steps": "7"})
    dst = tmp_path / "bundled.safetensors"
    args = [sys.executable, str(SCRIPT), str(src), str(dst), "--refine-radius", "2"]
    args += ["--refine-chroma-radius", "6"]
    r = subprocess.run(args, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    before, after = load_weights(src), load_weights(dst)
    assert after.config == before.config.replace(refine_radius=2, refine_chroma_radius=6)
    assert after.refine is not None and after.refine.chroma_radius == 6
    for k, v in before.state_dict().items():  # FP16 storage: within its rounding
        torch.testing.assert_close(after.state_dict()[k], v, atol=1e-3, rtol=1e-3)
    meta = read_metadata(dst)
    assert meta["steps"] == "7" and meta["stored_dtype"] == "float16"
    assert meta["packaged_from"] == "run.safetensors"
