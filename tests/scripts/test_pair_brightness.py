"""scripts/pair_brightness.py: the correlation of a paired set's input and target brightness."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sllen.runtime.images import write_image

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "pair_brightness.py"


def test_a_fixed_gain_correlates_and_a_chosen_exposure_does_not(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for name, gain in (("fixed", lambda i: 8.0), ("chosen", lambda i: [3, 12, 5, 9, 4][i])):
        for i, level in enumerate((0.02, 0.04, 0.06, 0.08, 0.05)):
            low = np.clip(rng.uniform(0.5, 1.5, (16, 16, 3)) * level, 0, 1)
            high = low * gain(i)
            write_image(tmp_path / name / "low" / f"{i}.png", low.astype(np.float32))
            write_image(tmp_path / name / "high" / f"{i}.png", high.astype(np.float32))
    r = subprocess.run(
        [sys.executable, str(SCRIPT), str(tmp_path / "fixed"), str(tmp_path / "chosen")],
        capture_output=True,
        text=True,
        check=True,
    )
    fixed, chosen = r.stdout.splitlines()
    assert "5 pairs" in fixed and "r(mean low, mean high) = 1.00" in fixed
    assert "ratio 10/50/90%: 8.0 / 8.0 / 8.0" in fixed
    levels = np.log2(np.array([0.02, 0.04, 0.06, 0.08, 0.05]))  # x 8: the same spread in stops
    assert float(fixed.split("high spread ")[1]) == pytest.approx(levels.std(), abs=0.05)
    assert "= 1.00" not in chosen.split(";")[0]


def test_generated_pairs_are_summarised_like_a_folder() -> None:
    # sllen-train's own pairs (the bundled model's recipe): their line has the folder's fields.
    r = subprocess.run(
        [sys.executable, str(SCRIPT), "--generated", "4"], capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("generated: 4 pairs; r(mean low, mean high) = ")
    assert "median high 0." in r.stdout
    spread = float(r.stdout.split("high spread ")[1])
    r = subprocess.run(
        [sys.executable, str(SCRIPT), "--generated", "4", "--gt-exposure", "2"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    assert float(r.stdout.split("high spread ")[1]) != spread  # the option reaches the pairs
    r = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True)
    assert r.returncode == 2 and "give paired folders" in r.stderr
