"""PASCAL VOC 2012 reader on a fixture devkit tree with palette labels and 255 borders."""

import numpy as np
import pytest
import torch
from PIL import Image

from sllen.data.voc import VOC_CLASSES, VOCSegmentation, find_voc_root, read_label
from sllen.runtime.images import ImageError


def _voc_palette():
    # The devkit's colour map: bits of the index spread over R, G, B.
    palette = []
    for i in range(256):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        palette += [r, g, b]
    return palette


def _label(h, w, cls):
    label = np.zeros((h, w), dtype=np.uint8)
    label[2:-2, 3:-3] = 255  # the void border around the object
    label[3:-3, 4:-4] = cls
    return label


def _make_voc(root, ids=("2007_000032", "2007_000039", "2007_000063")):
    base = root / "VOCdevkit" / "VOC2012"
    for folder in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (base / folder).mkdir(parents=True)
    for i, name in enumerate(ids):
        h, w = 10 + i, 14
        Image.fromarray(np.full((h, w, 3), 40 * i, np.uint8)).save(
            base / "JPEGImages" / f"{name}.jpg"
        )
        im = Image.fromarray(_label(h, w, cls=i + 1), mode="P")
        im.putpalette(_voc_palette())
        im.save(base / "SegmentationClass" / f"{name}.png")
    (base / "ImageSets/Segmentation/train.txt").write_text("\n".join(ids[:2]) + "\n")
    (base / "ImageSets/Segmentation/val.txt").write_text(ids[2] + "\n\n")
    return base


def test_root_may_be_any_of_the_three_levels(tmp_path):
    base = _make_voc(tmp_path)
    for root in (tmp_path, tmp_path / "VOCdevkit", base):
        assert find_voc_root(root) == base
        assert len(VOCSegmentation(root, "train")) == 2
    with pytest.raises(ValueError, match="VOC2012"):
        find_voc_root(tmp_path / "VOCdevkit" / "VOC2012" / "JPEGImages")


def test_items_keep_palette_indices_and_ignore_border(tmp_path):
    _make_voc(tmp_path)
    item = VOCSegmentation(tmp_path, "val")[0]
    assert set(item) == {"image", "label", "name"} and item["name"] == "2007_000063"
    assert item["image"].shape == (3, 12, 14) and item["image"].dtype == torch.float32
    assert item["label"].shape == (12, 14) and item["label"].dtype == torch.int64
    assert torch.equal(item["label"], torch.from_numpy(_label(12, 14, 3)).long())
    assert set(item["label"].unique().tolist()) == {0, 3, 255}
    assert len(VOC_CLASSES) == 21 and VOC_CLASSES[15] == "person"


def test_missing_split_and_missing_files_are_reported(tmp_path):
    base = _make_voc(tmp_path)
    with pytest.raises(ValueError, match=r"available: \['train', 'val'\]"):
        VOCSegmentation(tmp_path, "trainval")
    (base / "ImageSets/Segmentation/trainval.txt").write_text("2007_000032\n2008_999999\n")
    with pytest.raises(ValueError, match="2008_999999"):
        VOCSegmentation(tmp_path, "trainval")


def test_rgb_labels_are_refused(tmp_path):
    Image.new("RGB", (4, 4)).save(tmp_path / "rgb.png")
    with pytest.raises(ImageError, match="mode RGB"):
        read_label(tmp_path / "rgb.png")
    (tmp_path / "junk.png").write_text("junk")
    with pytest.raises(ImageError, match="junk.png"):
        read_label(tmp_path / "junk.png")
