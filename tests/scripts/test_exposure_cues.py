"""scripts/exposure_cues.py: a model's brightness decision against the ground truth's."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sllen.runtime.images import write_image

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "exposure_cues.py"


def _module():
    spec = importlib.util.spec_from_file_location("exposure_cues", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up there
    spec.loader.exec_module(module)
    return module


def test_summary_of_a_biased_and_of_an_overconfident_guess() -> None:
    m = _module()
    gt = np.random.default_rng(0).normal(-2.0, 0.6, 50)
    biased = m.summarize(gt + 0.3, gt)
    assert biased.bias == pytest.approx(0.3) and biased.spread == pytest.approx(0.0, abs=1e-9)
    assert biased.shrink == pytest.approx(1.0) and biased.r == pytest.approx(1.0)
    # Guesses that vary twice as much as the truth: halving their deviations fixes them.
    loud = m.summarize(2.0 * gt, gt)
    assert loud.shrink == pytest.approx(0.5)
    assert loud.spread_shrunk == pytest.approx(0.0, abs=1e-9) and loud.spread > 0.5
    assert loud.out_spread == pytest.approx(2.0 * loud.gt_spread)


def test_cues_read_brightness_noise_highlights_and_black() -> None:
    m = _module()
    rng = np.random.default_rng(1)
    flat = np.full((32, 32, 3), 0.2, np.float32)
    noisy = np.clip(flat + rng.normal(0.0, 0.05, flat.shape), 0, 1).astype(np.float32)
    lamp = flat.copy()
    lamp[:4, :4] = 1.0
    half_black = flat.copy()
    half_black[:16] = 0.0
    assert m.cues(noisy)["noise"] > m.cues(flat)["noise"] + 5
    assert m.cues(lamp)["highlights"] > m.cues(flat)["highlights"] + 1
    assert m.cues(flat * 2)["input"] > m.cues(flat)["input"]
    assert m.cues(half_black)["black"] == pytest.approx(0.5) and m.cues(flat)["black"] == 0.0
    assert m.brightness(flat) == pytest.approx(np.log2(m.luminance(flat).mean()), abs=1e-4)


def test_command_on_a_small_folder(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    for sub in ("low", "high"):
        (tmp_path / sub).mkdir()
    for i in range(3):
        high = rng.uniform(0.1, 0.9, (24, 32, 3)).astype(np.float32)
        write_image(tmp_path / "high" / f"{i}.png", high)
        write_image(tmp_path / "low" / f"{i}.png", high * 0.1)
    r = subprocess.run(
        [sys.executable, str(SCRIPT), str(tmp_path), "--every", "1", "--threads", "1"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("3 pairs")
    assert "shrink" in r.stdout and r.stdout.count("cue ") == 4
