"""Thin strokes on generated ground truths (sllen.data.strokes) and the --detail-strokes option."""

import numpy as np
import pytest
import torch

from sllen.data.detail import add_detail
from sllen.data.procedural import SyntheticPairDataset
from sllen.data.strokes import _stroke_alpha, add_strokes
from sllen.runtime.errors import InputError
from sllen.train.config import TrainConfig


def test_a_segment_covers_a_line_of_its_width() -> None:
    a, b = np.float32([[10.5, 5.0]]), np.float32([[10.5, 25.0]])  # along row 10's centre
    alpha, (ys, xs) = _stroke_alpha(a, b, 1.0, 32, 32)
    full = np.zeros((32, 32), np.float32)
    full[ys, xs] = alpha
    assert np.all(full[10, 6:24] == 1.0)
    assert np.all(full[8] == 0.0) and np.all(full[12] == 0.0)
    assert 19 < full.sum() < 23  # 20 pixels long, one wide, soft ends
    assert _stroke_alpha(a - 100, b - 100, 1.0, 32, 32) is None  # off the image


def test_strokes_are_seeded_thin_and_stand_out_from_their_ground() -> None:
    for level, darker in ((0.8, True), (0.1, False)):
        flat = np.full((128, 128, 3), level, np.float32)
        out = add_strokes(np.random.default_rng(4), flat)
        assert np.array_equal(out, add_strokes(np.random.default_rng(4), flat))
        assert out.dtype == np.float32 and out.min() >= 0.0 and out.max() <= 1.0
        changed = np.abs(out - flat).max(axis=2) > 1e-3
        assert 0.005 < changed.mean() < 0.25  # lines, not areas
        shift = (out - flat).mean(axis=2)[changed]
        assert (shift < 0).mean() > 0.9 if darker else (shift > 0).mean() > 0.9
        # thin: nearly every changed pixel has an unchanged one within two pixels
        near = np.zeros_like(changed)
        for dy in range(-2, 3):
            for dx in range(-2, 3):
                near |= np.roll(~changed, (dy, dx), axis=(0, 1))
        assert near[changed].mean() > 0.95


def test_detail_strokes_zero_keeps_the_old_pairs_and_one_adds_lines_on_top() -> None:
    flat = np.full((96, 128, 3), 0.5, np.float32)
    for seed in range(3):
        old = add_detail(np.random.default_rng(seed), flat, 0.0)
        assert np.array_equal(old, add_detail(np.random.default_rng(seed), flat, 0.0, 0.0))
        lined = add_detail(np.random.default_rng(seed), flat, 0.0, 1.0)
        changed = np.abs(lined - old).max(axis=2) > 1e-6
        assert 0.0 < changed.mean() < 0.3  # the same picture with strokes on it


def test_detail_strokes_reaches_the_dataset_and_is_checked(tmp_path) -> None:
    a = SyntheticPairDataset(1, 64, seed=5, scene_detail=True, detail_strokes=1.0)
    b = SyntheticPairDataset(1, 64, seed=5, scene_detail=True)
    assert not torch.equal(a[0]["high"], b[0]["high"])
    assert TrainConfig(out=tmp_path, scene_detail=True, detail_strokes=0.7).detail_strokes == 0.7
    with pytest.raises(InputError, match="add --scene-detail"):
        TrainConfig(out=tmp_path, detail_strokes=0.5)
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        TrainConfig(out=tmp_path, scene_detail=True, detail_strokes=1.5)
