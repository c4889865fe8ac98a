"""Paired augmentation keeps images and labels registered pixel for pixel."""

import numpy as np
import pytest
import torch

from sllen.data.augment import PairedAugment, pad_to, random_crop, random_flip


def _coded_sample(h, w):
    """Pixels that say where they came from: channel 0 = row, 1 = column, label = r * w + c."""
    rows, cols = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    image = torch.stack([rows, cols, rows + cols]).float()
    return {
        "low": image.clone(),
        "high": image * 2,
        "label": rows * w + cols,
        "name": "coded",
    }


def _assert_aligned(sample, w):
    low, high, label = sample["low"], sample["high"], sample["label"]
    assert torch.equal(high, low * 2)
    expected = low[0].long() * w + low[1].long()
    assert torch.equal(label, expected)


@pytest.mark.parametrize("seed", range(8))
def test_crop_flip_rotate_keep_alignment(seed):
    sample = _coded_sample(20, 30)
    aug = PairedAugment(crop_size=12, hflip=True, vflip=True, rot90=True)
    out = aug(sample, np.random.default_rng(seed))
    assert out["low"].shape == (3, 12, 12) and out["label"].shape == (12, 12)
    assert out["label"].dtype == torch.int64 and out["name"] == "coded"
    _assert_aligned(out, 30)


def test_crop_takes_one_window_of_the_original():
    sample = _coded_sample(20, 30)
    out = random_crop(sample, (5, 7), np.random.default_rng(1))
    y, x = int(out["low"][0, 0, 0]), int(out["low"][1, 0, 0])
    assert torch.equal(out["low"], sample["low"][:, y : y + 5, x : x + 7])
    # the crop owns its memory, so a worker does not ship the whole image
    assert out["low"].untyped_storage().nbytes() == out["low"].numel() * 4


def test_crop_covers_all_offsets_over_seeds():
    sample = _coded_sample(6, 6)
    corners = {
        tuple(int(v) for v in random_crop(sample, 4, np.random.default_rng(s))["low"][:2, 0, 0])
        for s in range(60)
    }
    assert corners == {(y, x) for y in range(3) for x in range(3)}


def test_small_images_are_padded_by_reflection():
    sample = _coded_sample(5, 4)
    padded = pad_to(sample, 9, 6)
    rows = padded["low"][0, :, 0].long().tolist()
    cols = padded["low"][1, 0, :].long().tolist()
    assert rows == [2, 1, 0, 1, 2, 3, 4, 3, 2]  # numpy "reflect"
    assert cols == [1, 0, 1, 2, 3, 2]
    _assert_aligned(padded, 4)
    tiny = pad_to(_coded_sample(2, 1), 7, 3)  # pad much larger than the image
    assert tiny["low"][0, :, 0].long().tolist() == [0, 1, 0, 1, 0, 1, 0]  # 2 before, 3 after
    assert torch.equal(tiny["low"][1], torch.zeros(7, 3))
    out = random_crop(_coded_sample(3, 3), 8, np.random.default_rng(0))
    assert out["low"].shape == (3, 8, 8)
    _assert_aligned(out, 3)


def test_flip_options():
    sample = _coded_sample(4, 6)
    seen = set()
    for seed in range(30):
        out = random_flip(sample, np.random.default_rng(seed), hflip=True, vflip=False)
        assert torch.equal(out["low"][0], sample["low"][0])  # rows never move
        seen.add(bool(torch.equal(out["low"], sample["low"].flip(-1))))
        _assert_aligned(out, 6)
    assert seen == {True, False}
    same = random_flip(sample, np.random.default_rng(0), hflip=False, vflip=False, rot90=False)
    assert torch.equal(same["low"], sample["low"])


def test_same_generator_same_result_and_input_untouched():
    sample = _coded_sample(16, 16)
    before = {k: v.clone() for k, v in sample.items() if isinstance(v, torch.Tensor)}
    aug = PairedAugment(crop_size=8, vflip=True, rot90=True)
    a = aug(sample, np.random.default_rng(9))
    b = aug(sample, np.random.default_rng(9))
    assert all(torch.equal(a[k], b[k]) for k in before)
    assert all(torch.equal(sample[k], before[k]) for k in before)


def test_mismatched_sizes_are_refused():
    bad = {"low": torch.zeros(3, 8, 8), "high": torch.zeros(3, 8, 9)}
    with pytest.raises(ValueError, match="differ in size"):
        random_crop(bad, 4, np.random.default_rng(0))
    with pytest.raises(ValueError, match="no image"):
        random_crop({"name": "x"}, 4, np.random.default_rng(0))
