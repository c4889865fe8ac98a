"""scripts/tile_consistency.py: tiled against whole-frame results, with the bundled model."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from sllen.runtime.images import write_image

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "tile_consistency.py"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=300
    )


def test_prints_each_comparison_for_pairs(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for i in range(2):
        high = rng.uniform(0.2, 0.9, (64, 96, 3)).astype(np.float32)
        write_image(tmp_path / "high" / f"{i}.png", high)
        write_image(tmp_path / "low" / f"{i}.png", high * 0.08)
    r = run(str(tmp_path), "--tile", "48")
    assert r.returncode == 0, r.stderr
    assert "mean over 2 images, tiles of 48:" in r.stdout
    means = dict(
        line.strip().rsplit(": ", 1) for line in r.stdout.splitlines() if line.endswith(" dB")
    )
    assert set(means) == {
        "plain vs whole",
        "matched vs whole",
        "whole vs GT",
        "plain vs GT",
        "matched vs GT",
    }
    assert all(np.isfinite(float(v.split()[0])) for v in means.values())


def test_unpaired_folder_and_a_bad_tile(tmp_path: Path) -> None:
    write_image(tmp_path / "a.png", np.full((40, 40, 3), 0.05, np.float32))
    r = run(str(tmp_path), "--tile", "32")
    assert r.returncode == 0, r.stderr
    assert "vs GT" not in r.stdout and "plain vs whole" in r.stdout
    bad = run(str(tmp_path), "--tile", "8")
    assert bad.returncode == 2 and "--tile must be at least 16" in bad.stderr
