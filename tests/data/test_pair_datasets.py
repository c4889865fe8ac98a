"""Paired low/high datasets from fixture folders in the real datasets' layouts."""

import json

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from sllen.data.augment import PairedAugment
from sllen.data.pair_datasets import (
    PairedDataset,
    PairedFolder,
    detect_layout,
    find_paired,
    find_pairs,
    lol_dataset,
    lsrw_dataset,
)
from sllen.data.samples import write_sample_pairs


def _write_pair(folder, stem, size=(12, 16), low_suffix=".png", high_suffix=".png", seed=0):
    rng = np.random.default_rng(seed)
    high = rng.integers(100, 256, (*size, 3), dtype=np.uint8)
    (folder / "low").mkdir(parents=True, exist_ok=True)
    (folder / "high").mkdir(parents=True, exist_ok=True)
    Image.fromarray(high).save(folder / "high" / f"{stem}{high_suffix}")
    Image.fromarray(high // 8).save(folder / "low" / f"{stem}{low_suffix}")


def _lol(root):
    for i in (1, 2, 10):
        _write_pair(root / "LOLdataset" / "our485", str(i), seed=i)
    for i in (5, 7):
        _write_pair(root / "LOLdataset" / "eval15", str(i), seed=i)
    return root


def _lsrw(root):
    for camera, n in (("Huawei", 2), ("Nikon", 3)):
        for i in range(n):
            _write_pair(root / "LSRW" / "Training data" / camera, f"{i}", low_suffix=".jpg")
        _write_pair(root / "LSRW" / "Eval" / camera, "100")
    return root


def test_lol_splits_and_items(tmp_path):
    _lol(tmp_path)
    for root in (tmp_path, tmp_path / "LOLdataset"):
        train, evals = lol_dataset(root), lol_dataset(root, "eval")
        assert (len(train), len(evals)) == (3, 2)
    item = train[0]
    assert set(item) == {"low", "high", "name"}
    assert item["name"] == "1"
    for key in ("low", "high"):
        assert item[key].dtype == torch.float32 and item[key].shape == (3, 12, 16)
        assert 0 <= item[key].min() and item[key].max() <= 1
    assert item["low"].mean() < item["high"].mean() / 4
    assert [train[i]["name"] for i in range(3)] == ["1", "10", "2"]
    with pytest.raises(ValueError, match="split"):
        lol_dataset(tmp_path, "test")


def test_lsrw_concatenates_cameras(tmp_path):
    _lsrw(tmp_path)
    train = lsrw_dataset(tmp_path)
    assert len(train) == 5
    assert [p.name for p in train.pairs] == [
        "Huawei/0", "Huawei/1", "Nikon/0", "Nikon/1", "Nikon/2",
    ]  # fmt: skip
    assert len(lsrw_dataset(tmp_path / "LSRW", "eval")) == 2
    assert train[4]["low"].shape == (3, 12, 16)
    with pytest.raises(ValueError, match="LSRW"):
        lsrw_dataset(tmp_path / "LSRW" / "Eval")


def test_generic_folder_matches_by_stem_across_suffixes(tmp_path):
    _write_pair(tmp_path, "a", low_suffix=".jpg")
    _write_pair(tmp_path, "b", high_suffix=".bmp")
    ds = PairedFolder(tmp_path)
    assert [p.name for p in ds.pairs] == ["a", "b"]
    assert ds[1]["high"].shape == (3, 12, 16)


def test_normal_is_accepted_for_high(tmp_path):
    _write_pair(tmp_path, "x")
    (tmp_path / "high").rename(tmp_path / "Normal")
    (tmp_path / "low").rename(tmp_path / "Low")
    assert len(PairedFolder(tmp_path)) == 1


def test_mismatched_folders_name_the_unmatched_files(tmp_path):
    for stem in ("1", "2", "3"):
        _write_pair(tmp_path, stem)
    (tmp_path / "low" / "2.png").unlink()
    (tmp_path / "high" / "3.png").rename(tmp_path / "high" / "33.png")
    with pytest.raises(ValueError) as info:
        PairedFolder(tmp_path)
    message = str(info.value)
    assert "in low/ without a match: 3" in message
    assert "in high/ without a match: 2, 33" in message
    (tmp_path / "high").rename(tmp_path / "normal")  # LOL's public copies: the message says so
    with pytest.raises(ValueError, match="normal/ without a match: 2, 33"):
        PairedFolder(tmp_path)


def test_empty_missing_and_duplicate_folders(tmp_path):
    (tmp_path / "empty" / "low").mkdir(parents=True)
    (tmp_path / "empty" / "high").mkdir()
    with pytest.raises(ValueError, match="no images"):
        PairedFolder(tmp_path / "empty")
    with pytest.raises(ValueError, match="low/ and high/"):
        PairedFolder(tmp_path / "nowhere")
    _write_pair(tmp_path / "dup", "a")
    _write_pair(tmp_path / "dup", "a", low_suffix=".jpg")
    with pytest.raises(ValueError, match="two images named 'a'"):
        PairedFolder(tmp_path / "dup")


def test_pairs_of_different_size_are_refused_when_listed(tmp_path):
    # They were found only when a training step drew them, an hour into a run.
    for stem in ("a", "b", "c"):
        _write_pair(tmp_path, stem)
    Image.new("RGB", (5, 7)).save(tmp_path / "low" / "b.png")
    (tmp_path / "high").rename(tmp_path / "normal")
    with pytest.raises(ValueError) as info:
        find_pairs(tmp_path)
    assert str(info.value) == (
        f"{tmp_path}: low/ and normal/ differ in size for 1 pair: b (5x7 and 16x12)"
    )
    with pytest.raises(ValueError, match="differ in size for 1 pair: b"):
        find_paired(tmp_path, "train")


def test_a_pair_of_different_size_made_by_hand_fails_when_read(tmp_path):
    _write_pair(tmp_path, "a")
    pairs = find_pairs(tmp_path)
    Image.new("RGB", (5, 5)).save(tmp_path / "low" / "a.png")
    with pytest.raises(ValueError, match="differ in size"):
        PairedDataset(pairs)[0]


def _exif(orientation):
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif


def _save(image, path, orientation, exif_last):
    image.save(path, exif=_exif(orientation))
    if exif_last:  # an eXIf chunk after the pixels (Pillow writes it before them)
        data = path.read_bytes()
        start = data.index(b"eXIf") - 4
        end = start + 12 + int.from_bytes(data[start : start + 4], "big")
        chunk, data = data[start:end], data[:start] + data[end:]
        iend = data.index(b"IEND") - 4
        path.write_bytes(data[:iend] + chunk + data[iend:])


@pytest.mark.parametrize(
    ("suffix", "exif_last"), [(".jpg", False), (".png", False), (".png", True), (".tif", False)]
)
def test_sizes_are_compared_upright_as_the_reader_turns_them(tmp_path, suffix, exif_last):
    # A phone's portrait photo stores landscape pixels and orientation 6 (or 5, 7, 8): its
    # upright size is what the reader returns and what must match the other image. (A TIFF:
    # Pillow 11+ reports its size upright already; it was turned twice and refused.)
    _write_pair(tmp_path, "a", size=(12, 16))
    (tmp_path / "low" / "a.png").unlink()
    low = tmp_path / "low" / f"a{suffix}"
    _save(Image.new("RGB", (12, 16), 9), low, 6, exif_last)  # 12 wide, 16 high: 16x12 upright
    (pair,) = find_pairs(tmp_path)
    assert PairedDataset([pair])[0]["low"].shape == (3, 12, 16)
    _save(Image.new("RGB", (16, 12), 9), low, 8, exif_last)  # as the high image: 12x16 upright
    with pytest.raises(ValueError, match=r"a \(12x16 and 16x12\)"):
        find_pairs(tmp_path)
    with pytest.raises(ValueError, match="differ in size"):
        PairedDataset([pair])[0]  # the reader agrees


def test_sizes_are_read_from_the_headers_only(tmp_path, monkeypatch):
    from PIL import ImageFile

    # 485 LOL pairs take 0.3 s so; decoding them would take seconds.
    for stem in ("a", "b"):
        _write_pair(tmp_path, stem, high_suffix=".jpg")
    decoded = []
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda im: decoded.append(im))
    assert len(find_pairs(tmp_path)) == 2
    assert not decoded


def test_layout_detection(tmp_path):
    _lol(tmp_path / "lol")
    _lsrw(tmp_path / "lsrw")
    _write_pair(tmp_path / "plain", "a")
    assert detect_layout(tmp_path / "lol") == "lol"
    assert detect_layout(tmp_path / "lol" / "LOLdataset") == "lol"
    assert detect_layout(tmp_path / "lsrw") == "lsrw"
    assert detect_layout(tmp_path / "plain") == "folder"
    assert len(find_paired(tmp_path / "lol", "eval")) == 2
    assert len(find_paired(tmp_path / "lsrw")) == 5
    assert len(find_paired(tmp_path / "plain", "eval")) == 1
    (tmp_path / "other").mkdir()
    with pytest.raises(ValueError, match="no paired layout"):
        detect_layout(tmp_path / "other")


def test_no_layout_messages_say_what_is_wrong(tmp_path):
    with pytest.raises(ValueError) as info:
        detect_layout(tmp_path / "nowhere")
    assert str(info.value) == f"{tmp_path / 'nowhere'}: no such folder"
    (tmp_path / "afile").write_text("x")
    with pytest.raises(ValueError, match="afile: a file, not a folder"):
        detect_layout(tmp_path / "afile")
    (tmp_path / "other").mkdir()
    with pytest.raises(ValueError, match=r"and low/ \+ high/ or normal/\)$"):
        detect_layout(tmp_path / "other")


def test_split_folders_of_pairs_are_named_as_what_to_pass(tmp_path):
    # LOL's public copies: train/ and test/, each with low/ + normal/.
    root = tmp_path / "LOLn"
    for split in ("test", "train"):
        _write_pair(root / split, "1")
        (root / split / "high").rename(root / split / "normal")
    (root / ".DS_Store").write_bytes(b"\0")
    hint = f"; test/, train/ in it hold pairs: pass one of them by name, e.g. {root / 'train'}"
    with pytest.raises(ValueError) as info:
        detect_layout(root)
    assert str(info.value).endswith(hint)
    with pytest.raises(ValueError) as info:  # evaluation: no plain folder of images either
        find_pairs(root)
    assert str(info.value).endswith(hint)
    assert len(find_pairs(root / "train")) == 1
    Image.new("RGB", (8, 8)).save(root / "photo.png")  # images of its own: a plain folder
    assert find_pairs(root) is None


def test_transform_is_seeded_per_item_and_epoch(tmp_path):
    _lol(tmp_path)
    ds = lol_dataset(tmp_path, transform=PairedAugment(crop_size=8), seed=3)
    a, b = ds[1], ds[1]
    assert a["low"].shape == (3, 8, 8)
    assert torch.equal(a["low"], b["low"]) and torch.equal(a["high"], b["high"])
    crops = set()
    for epoch in range(6):
        ds.set_epoch(epoch)
        crops.add(ds[1]["high"].sum().item())
    assert len(crops) > 1


def test_default_collate_batches_items(tmp_path):
    _lol(tmp_path)
    batch = next(iter(DataLoader(lol_dataset(tmp_path), batch_size=2)))
    assert batch["low"].shape == (2, 3, 12, 16) and batch["name"] == ["1", "10"]


def test_find_pairs_lists_name_low_high_or_none(tmp_path):
    _lol(tmp_path / "lol")
    pairs = find_pairs(tmp_path / "lol")  # evaluation's default split
    assert [name for name, _, _ in pairs] == ["5", "7"]
    name, low, high = pairs[0]
    assert low.parent.name == "low" and high.name == "5.png"
    assert len(find_pairs(tmp_path / "lol", "train")) == 3
    (tmp_path / "photos").mkdir()
    assert find_pairs(tmp_path / "photos") is None
    assert find_pairs(tmp_path / "missing") is None


def test_sample_pairs_form_a_reproducible_paired_folder(tmp_path):
    a = write_sample_pairs(tmp_path / "a", 3, (24, 32), seed=5)
    write_sample_pairs(tmp_path / "b", 2, (24, 32), seed=5)
    ds = PairedFolder(a)
    assert len(ds) == 3 and ds[0]["low"].shape == (3, 24, 32)
    assert ds[0]["low"].mean() < ds[0]["high"].mean()
    assert torch.equal(ds[1]["low"], PairedFolder(tmp_path / "b")[1]["low"])
    manifest = json.loads((a / "synthesis.json").read_text())
    assert manifest["seed"] == 5 and set(manifest["pairs"]) == {"0000", "0001", "0002"}
