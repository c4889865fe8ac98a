"""scripts/shadow_profile.py: the shadows of a dark capture relative to its ground truth."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np

from sllen.data.synthesis import linear_to_srgb, srgb_to_linear
from sllen.runtime.images import write_image

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "shadow_profile.py"


def _profile():
    spec = importlib.util.spec_from_file_location("shadow_profile", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.profile


def _high(seed: int) -> np.ndarray:
    ramp = np.linspace(0.05, 1.0, 64, dtype=np.float32)
    img = np.broadcast_to(ramp[None, :, None], (64, 64, 3)).copy()
    return img * np.random.default_rng(seed).uniform(0.7, 1.0, 3).astype(np.float32)


def test_an_exposure_change_is_flat_a_black_point_darkens_the_shadows() -> None:
    profile = _profile()
    high = _high(0)
    lin = srgb_to_linear(high)
    scaled = profile(linear_to_srgb(lin * 0.05), high)
    np.testing.assert_allclose(scaled, 1.0, atol=1e-4)
    black = 0.02 * 0.05  # the darkest fiftieth of the capture's range sent to black
    crushed = profile(linear_to_srgb(np.clip(lin * 0.05 - black, 0, 1)), high)
    assert crushed[0] < 0.5 < crushed[4] < 1.0 and crushed[8] == 1.0 < crushed[9]
    lifted = profile(linear_to_srgb(lin * 0.05 + black), high)
    assert lifted[0] > 2.0 and lifted[9] < 1.0


def test_the_command_prints_a_row_per_source(tmp_path: Path) -> None:
    for i in range(2):
        high = _high(i)
        write_image(tmp_path / "high" / f"{i}.png", high)
        write_image(tmp_path / "low" / f"{i}.png", linear_to_srgb(srgb_to_linear(high) * 0.05))
    r = subprocess.run(
        [sys.executable, str(SCRIPT), str(tmp_path), "--every", "1", "--black-point", "0", "6"],
        capture_output=True,
        text=True,
        check=True,
    )
    lines = r.stdout.splitlines()
    assert lines[0].startswith("2 pairs")
    names = [line[:28].strip() for line in lines[1:]]
    assert names == ["real", "simple", "camera, black point 0", "camera, black point 6"]
    real = [float(v) for v in lines[1][28:].split()]
    assert len(real) == 10 and all(abs(v - 1.0) < 0.02 for v in real)
