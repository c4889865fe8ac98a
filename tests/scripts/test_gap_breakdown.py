"""scripts/gap_breakdown.py: each oracle column removes exactly the error it names."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sllen.runtime.images import write_image

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "gap_breakdown.py"
_spec = importlib.util.spec_from_file_location("gap_breakdown", SCRIPT)
assert _spec is not None and _spec.loader is not None
gap = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gap)


@pytest.fixture
def gt() -> np.ndarray:
    rng = np.random.default_rng(0)
    base = rng.uniform(0.1, 0.8, (48, 64, 1))
    tint = rng.uniform(0.7, 1.1, (48, 64, 3))
    return np.clip(base * tint, 0, 1)


def test_an_exposure_error_is_removed_by_gt_mean_and_not_by_the_colour_swap(gt: np.ndarray) -> None:
    row = gap.breakdown(gt * 0.6, gt)
    assert row["plain"] < 25
    assert row["GT-mean"] > 60 and row["tone curve"] > 35
    assert row["GT luma"] > 60  # the luma was the only error
    assert row["GT chroma"] > 60  # GT-mean already fixed it


def test_a_gamma_error_is_a_tone_curve_not_an_exposure(gt: np.ndarray) -> None:
    row = gap.breakdown(gt**1.8, gt)
    assert row["GT-mean"] < 30
    assert row["tone curve"] > row["GT-mean"] + 5


def test_a_colour_error_is_left_by_gt_mean_and_removed_by_gt_chroma(gt: np.ndarray) -> None:
    grey = (gt @ gap.LUMA)[..., None]
    washed = grey + 0.4 * (gt - grey)  # same luma, less saturated
    row = gap.breakdown(washed, gt)
    assert row["GT-mean"] < 40
    assert row["GT chroma"] > 60
    # the fixture's colour is per-pixel noise: averaging it away loses most of it again
    assert row["GT colour 15px"] < row["GT chroma"] - 10


def test_smooth_colour_survives_the_15px_average() -> None:
    yy, xx = np.mgrid[0:48, 0:64] / 64.0
    smooth = np.stack([0.2 + 0.5 * xx, 0.3 + 0.2 * yy, 0.6 - 0.4 * xx], axis=-1)
    grey = (smooth @ gap.LUMA)[..., None]
    row = gap.breakdown(grey + 0.4 * (smooth - grey), smooth)
    assert row["GT colour 15px"] > row["GT-mean"] + 15
    assert row["GT luma"] < 40  # the chroma error is still there


def test_isotonic_is_the_weighted_least_squares_non_decreasing_fit() -> None:
    np.testing.assert_allclose(gap.isotonic(np.array([1.0, 2.0, 5.0]), np.ones(3)), [1, 2, 5])
    fit = gap.isotonic(np.array([1.0, 3.0, 2.0, 4.0, 0.5]), np.ones(5))
    np.testing.assert_allclose(fit, [1.0, 2.375, 2.375, 2.375, 2.375])
    # weights pull the pooled value: 3 (weight 3) and 1 (weight 1) pool at 2.5
    np.testing.assert_allclose(gap.isotonic(np.array([3.0, 1.0]), np.array([3.0, 1.0])), [2.5, 2.5])


def test_the_tone_curve_does_at_least_as_well_as_a_gain(gt: np.ndarray) -> None:
    # a gain is a non-decreasing curve: the best such curve cannot be much worse (bins: 64)
    rng = np.random.default_rng(2)
    for k in range(5):
        out = np.clip(gt * rng.uniform(0.3, 1.2) + rng.normal(0, 0.05, gt.shape), 0, 1)
        row = gap.breakdown(out, gt)
        assert row["tone curve"] >= row["GT-mean"] - 0.2, (k, row)


def test_ycc_round_trip(gt: np.ndarray) -> None:
    np.testing.assert_allclose(gap.to_rgb(gap.to_ycc(gt)), gt, atol=1e-9)


def test_box_mean_keeps_a_constant_and_averages_a_spike() -> None:
    flat = np.full((9, 9, 2), 0.3)
    np.testing.assert_allclose(gap.box_mean(flat, 5), flat, atol=1e-12)
    spike = np.zeros((9, 9, 1))
    spike[4, 4] = 25.0
    assert gap.box_mean(spike, 5)[4, 4, 0] == pytest.approx(1.0)


def test_chroma_scaling_keeps_luma_and_the_loss_is_lowest_at_the_right_saturation(
    gt: np.ndarray,
) -> None:
    np.testing.assert_allclose(gap.chroma_scaled(gt, 1.0), gt, atol=1e-9)
    half = gap.chroma_scaled(gt, 0.5)
    np.testing.assert_allclose(half @ gap.LUMA, gt @ gap.LUMA, atol=1e-6)
    washed = gap.chroma_scaled(gt, 0.5)
    losses = [gap.smooth_l1(gap.chroma_scaled(washed, f), gt) for f in (1.0, 2.0, 3.0)]
    assert losses[1] < losses[0] and losses[1] < losses[2]


def test_at_level_sets_the_mean_grey(gt: np.ndarray) -> None:
    out = gap.at_level(gt * 0.5, 0.3)
    assert abs(float((out @ gap.LUMA).mean()) - 0.3) < 1e-3


def _paired_folder(root: Path, names: list[str]) -> None:
    rng = np.random.default_rng(1)
    for name in names:
        high = rng.uniform(0.2, 0.8, (32, 32, 3)).astype(np.float32)
        write_image(root / "low" / f"{name}.png", high * 0.1)
        write_image(root / "high" / f"{name}.png", high)


def _script(*args: str) -> str:
    cmd = [sys.executable, str(SCRIPT), *args, "--threads", "1"]
    return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout


def test_cli_prints_a_row_per_pair_and_the_means(tmp_path: Path) -> None:
    _paired_folder(tmp_path, ["0", "1"])
    lines = _script(str(tmp_path)).splitlines()
    assert [ln.split()[0] for ln in lines[2:5]] == ["0", "1", "mean"]
    assert lines[-2].startswith("one exposure for all")
    assert lines[-1].startswith("smooth L1 of the outputs with chroma x 0.5 / 1 / 1.5: ")


def test_cli_holdout_scores_the_pairs_training_holds_out(tmp_path: Path) -> None:
    _paired_folder(tmp_path, [f"p{i}" for i in range(4)])
    stdout = _script(str(tmp_path), "--holdout", "2")
    from sllen.data.pair_layouts import find_pairs
    from sllen.train.data import holdout_split

    held = [p.name for p in holdout_split(find_pairs(tmp_path, "train") or [], 2)[1]]
    rows = [ln.split()[0] for ln in stdout.splitlines()[2:-3]]
    assert rows == held and len(rows) == 2


def test_cli_rejects_an_unpaired_folder(tmp_path: Path) -> None:
    write_image(tmp_path / "a.png", np.zeros((8, 8, 3), np.float32))
    r = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path)], capture_output=True, text=True)
    assert r.returncode != 0 and "no low/" in r.stderr and "Traceback" not in r.stderr
