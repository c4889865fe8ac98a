"""Photo-like detail on generated ground truths (sllen.data.detail)."""

import numpy as np
import torch

from sllen.data.detail import add_detail, pink_noise
from sllen.data.procedural import SyntheticPairDataset
from sllen.data.scenes import generate_scene


def test_pink_noise_is_normalised_and_mostly_coarse() -> None:
    n = pink_noise(np.random.default_rng(0), 64, 96)
    assert n.shape == (64, 96) and n.dtype == np.float32
    assert abs(float(n.mean())) < 1e-4 and abs(float(n.std()) - 1.0) < 1e-4
    # 1/f: neighbours are strongly correlated, unlike white noise
    assert float(np.corrcoef(n[:, :-1].ravel(), n[:, 1:].ravel())[0, 1]) > 0.5


def test_add_detail_is_seeded_in_range_and_keeps_the_scene() -> None:
    img, _ = generate_scene(np.random.default_rng(3), 96, 128)
    a = add_detail(np.random.default_rng(1), img)
    b = add_detail(np.random.default_rng(1), img)
    assert np.array_equal(a, b) and a.shape == img.shape and a.dtype == np.float32
    assert a.min() >= 0.0 and a.max() <= 1.0 and not np.array_equal(a, img)
    # the falloff keeps the mean brightness: the exposure prior of the scenes is unchanged
    means = [add_detail(np.random.default_rng(s), img).mean() / img.mean() for s in range(20)]
    assert 0.9 < float(np.median(means)) < 1.1


def test_detail_is_off_by_default_and_changes_only_the_ground_truth_draws() -> None:
    plain = SyntheticPairDataset(2, 32, seed=5)
    again = SyntheticPairDataset(2, 32, seed=5, scene_detail=False)
    detailed = SyntheticPairDataset(2, 32, seed=5, scene_detail=True)
    assert torch.equal(plain[1]["high"], again[1]["high"])
    assert not torch.equal(plain[1]["high"], detailed[1]["high"])
    assert detailed[1]["low"].shape == (3, 32, 32)


def test_albedo_zero_removes_only_the_one_over_f_variation() -> None:
    flat = np.full((96, 128, 3), 0.5, np.float32)  # mid grey: nothing clips
    for seed in range(4):
        default = add_detail(np.random.default_rng(seed), flat)
        assert np.array_equal(default, add_detail(np.random.default_rng(seed), flat, 0.1))
        plain = add_detail(np.random.default_rng(seed), flat, 0.0)
        # the same shelves and falloff (same draws): the two differ by the 1/f factor alone
        ratio = default / np.maximum(plain, 1e-6) - 1.0
        assert 0.005 < float(ratio.std()) < 0.15
        assert float(np.abs(ratio).max()) < 0.6  # other shelves would differ several-fold


def test_detail_albedo_reaches_the_dataset_and_needs_scene_detail(tmp_path) -> None:
    import pytest

    from sllen.runtime.errors import InputError
    from sllen.train.config import TrainConfig

    a = SyntheticPairDataset(1, 32, seed=5, scene_detail=True, detail_albedo=0.0)
    b = SyntheticPairDataset(1, 32, seed=5, scene_detail=True)
    assert not torch.equal(a[0]["high"], b[0]["high"])
    with pytest.raises(InputError, match="add --scene-detail"):
        TrainConfig(out=tmp_path, detail_albedo=0.0)
    with pytest.raises(InputError, match=r"\[0, 0.5\]"):
        TrainConfig(out=tmp_path, scene_detail=True, detail_albedo=-1)
