"""scripts/light_insert.py: a pasted light's effect on the rest of the picture."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np

from sllen.runtime.images import write_image

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "light_insert.py"
_spec = importlib.util.spec_from_file_location("light_insert", SCRIPT)
assert _spec is not None and _spec.loader is not None
light = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(light)


def test_the_window_and_the_changes_it_measures() -> None:
    image = np.full((240, 320, 3), 0.1, np.float32)
    lit, mask = light.with_window(image)
    assert mask.sum() == 40 * 12 and np.all(lit[mask] == 1.0) and np.all(lit[~mask] == 0.1)
    # a result that halves everything near the window and leaves the far picture alone
    result = np.full((240, 320, 3), 0.5, np.float32)
    near_dark = result.copy()
    ys, xs = np.nonzero(mask)
    near_dark[ys.min() - 30 : ys.max() + 31, xs.min() - 30 : xs.max() + 31] = 0.5 * 0.5**0.45
    near, far = light.changes(result, near_dark, mask)
    assert abs(near + 0.5) < 0.05 and abs(far) < 1e-6


def test_runs_the_bundled_model_over_a_folder(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    write_image(tmp_path / "a.png", rng.uniform(0.0, 0.1, (240, 256, 3)).astype(np.float32))
    write_image(tmp_path / "small.png", np.zeros((64, 64, 3), np.float32))
    r = subprocess.run(
        [sys.executable, str(SCRIPT), str(tmp_path), "--threads", "1"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    assert "small.png: smaller than" in r.stderr and "1 photographs: with the light" in r.stdout
