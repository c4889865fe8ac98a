"""File-free datasets: deterministic per (seed, epoch, index), correct sample formats."""

import numpy as np
import pytest
import torch

from sllen.data.augment import PairedAugment
from sllen.data.procedural import SceneSegmentationDataset, SyntheticPairDataset, expose
from sllen.data.synthesis import SynthesisParams, srgb_to_linear


def _equal(a, b):
    return a.keys() == b.keys() and all(
        torch.equal(a[k], b[k]) if isinstance(a[k], torch.Tensor) else a[k] == b[k] for k in a
    )


def test_scene_segmentation_samples():
    ds = SceneSegmentationDataset(length=4, size=(24, 32), num_classes=6, seed=1)
    item = ds[2]
    assert set(item) == {"image", "label"}
    assert item["image"].shape == (3, 24, 32) and item["image"].dtype == torch.float32
    assert item["label"].shape == (24, 32) and item["label"].dtype == torch.int64
    assert 0 <= item["label"].min() and item["label"].max() < 6
    assert len(ds) == 4
    with pytest.raises(IndexError):
        ds[4]


def test_items_are_reproducible_and_change_with_epoch_and_seed():
    a = SceneSegmentationDataset(3, 24, seed=5)
    b = SceneSegmentationDataset(3, 24, seed=5)  # as built in another process
    assert _equal(a[1], b[1]) and _equal(a[1], a[1])
    assert not _equal(a[0], a[1])
    assert not _equal(a[1], SceneSegmentationDataset(3, 24, seed=6)[1])
    b.set_epoch(1)
    assert not _equal(a[1], b[1])


def test_scene_transform_gets_the_item_generator():
    ds = SceneSegmentationDataset(2, 32, transform=PairedAugment(crop_size=16), seed=0)
    assert ds[0]["image"].shape == (3, 16, 16) and _equal(ds[0], ds[0])


def test_synthetic_pairs_from_scenes():
    ds = SyntheticPairDataset(length=3, size=32, seed=2)
    item = ds[0]
    assert set(item) == {"low", "high"}
    assert item["low"].shape == item["high"].shape == (3, 32, 32)
    assert item["low"].mean() < item["high"].mean()
    assert torch.equal(item["low"] * 255, torch.round(item["low"] * 255))
    assert _equal(item, SyntheticPairDataset(length=3, size=32, seed=2)[0])


def test_synthesis_config_is_used():
    cfg = SynthesisParams.fixed(exposure=0.1, noise=False)
    item = SyntheticPairDataset(1, 32, synthesis_cfg=cfg)[0]
    lin = lambda t: torch.where(t <= 0.04045, t / 12.92, ((t + 0.055) / 1.055) ** 2.4)  # noqa: E731
    ratio = lin(item["low"]).mean() / lin(item["high"]).mean()
    assert float(ratio) == pytest.approx(0.1, rel=0.02)


def test_source_items_are_cropped_and_labels_kept():
    rng = np.random.default_rng(0)
    voc_like = [
        {"image": torch.rand(3, 40, 50), "label": torch.randint(0, 21, (40, 50)), "name": "a"},
        {"image": torch.rand(3, 20, 20), "label": torch.randint(0, 21, (20, 20)), "name": "b"},
    ]
    ds = SyntheticPairDataset(length=5, size=24, source=voc_like, seed=0)
    for i in range(5):
        item = ds[i]
        assert set(item) == {"low", "high", "label", "name"}
        assert item["high"].shape == (3, 24, 24) and item["label"].shape == (24, 24)
        assert item["name"] == "ab"[i % 2]
    arrays = [rng.random((30, 30, 3)).astype(np.float32)]
    tensors = [torch.rand(3, 30, 30)]
    for source in (arrays, tensors):
        item = SyntheticPairDataset(2, 16, source=source)[1]
        assert set(item) == {"low", "high"} and item["high"].shape == (3, 16, 16)


def test_bad_arguments():
    with pytest.raises(ValueError):
        SceneSegmentationDataset(0, 16)
    with pytest.raises(ValueError):
        SyntheticPairDataset(2, 16, source=[])
    with pytest.raises(ValueError, match="'high' or 'image'"):
        SyntheticPairDataset(1, 16, source=[{"x": torch.zeros(3, 4, 4)}])[0]


def test_expose_scales_linear_light_and_clips_at_white():
    img = np.linspace(0.0, 1.0, 48, dtype=np.float32).reshape(4, 4, 3)
    lin = srgb_to_linear(img)
    np.testing.assert_allclose(srgb_to_linear(expose(img, -1.0)), lin / 2, atol=1e-6)
    brighter = srgb_to_linear(expose(img, 1.0))
    np.testing.assert_allclose(brighter, np.minimum(2 * lin, 1.0), atol=1e-5)
    assert expose(img, 0.0).dtype == np.float32 and np.allclose(expose(img, 0.0), img, atol=1e-6)


def test_gt_exposure_off_keeps_the_pairs_on_moves_each_truth_within_its_range():
    plain = SyntheticPairDataset(12, 24, seed=5)
    off = SyntheticPairDataset(12, 24, seed=5, gt_exposure=0.0)
    on = SyntheticPairDataset(12, 24, seed=5, gt_exposure=1.0)
    ratios = []
    for i in range(12):
        assert _equal(plain[i], off[i])
        a, b = plain[i]["high"].numpy(), on[i]["high"].numpy()
        ratios.append(srgb_to_linear(b).mean() / srgb_to_linear(a).mean())
    ratios = np.array(ratios)
    # Clipping at white can only take light away from a brightened truth.
    assert np.all(ratios >= 0.5 - 1e-4) and np.all(ratios <= 2.0 + 1e-4)
    assert ratios.min() < 0.9 and ratios.max() > 1.1  # both ways, not one fixed gain
    # The low is made from the moved truth: at one noise-free exposure it moves with it.
    fixed = SynthesisParams.fixed(exposure=0.2, inhomogeneous=False, noise=False)
    a = SyntheticPairDataset(12, 24, seed=5, synthesis_cfg=fixed)
    b = SyntheticPairDataset(12, 24, seed=5, synthesis_cfg=fixed, gt_exposure=1.0)
    for i in range(12):
        high = (
            srgb_to_linear(b[i]["high"].numpy()).mean()
            / srgb_to_linear(a[i]["high"].numpy()).mean()
        )
        low = (
            srgb_to_linear(b[i]["low"].numpy()).mean() / srgb_to_linear(a[i]["low"].numpy()).mean()
        )
        assert low == pytest.approx(high, rel=0.05)


def test_gt_exposure_bounds():
    for bad in (-0.5, 2.5, float("nan")):
        with pytest.raises(ValueError, match="gt_exposure must be in"):
            SyntheticPairDataset(2, 16, gt_exposure=bad)
