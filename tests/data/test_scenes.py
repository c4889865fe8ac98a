"""Procedural scenes: shapes, labels, determinism, colour statistics, class identity."""

import numpy as np
import pytest

from sllen.data.scenes import class_style, generate_scene


def _scenes(n, size=64, num_classes=8):
    return [generate_scene(np.random.default_rng(s), size, size, num_classes) for s in range(n)]


def _saturation(img):
    mx, mn = img.max(axis=-1), img.min(axis=-1)
    return (mx - mn) / np.maximum(mx, 1e-6)


def test_shapes_types_and_label_range():
    img, label = generate_scene(np.random.default_rng(0), 48, 80, num_classes=5)
    assert img.shape == (48, 80, 3) and img.dtype == np.float32
    assert label.shape == (48, 80) and label.dtype == np.int64
    assert img.min() >= 0 and img.max() <= 1
    assert label.min() >= 0 and label.max() < 5


def test_same_generator_state_same_scene():
    a = generate_scene(np.random.default_rng(3), 40, 40)
    b = generate_scene(np.random.default_rng(3), 40, 40)
    c = generate_scene(np.random.default_rng(4), 40, 40)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


def test_scenes_hold_several_classes_and_every_class_occurs():
    scenes = _scenes(24)
    labels = np.stack([s[1] for s in scenes])
    assert np.median([len(np.unique(lab)) for lab in labels]) >= 4
    freq = np.bincount(labels.ravel(), minlength=8) / labels.size
    assert 0.2 < freq[0] < 0.8  # background neither swamps nor vanishes
    assert freq[1:].min() > 0.01


def test_many_classes_get_generated_styles():
    labels = np.stack([s[1] for s in _scenes(12, num_classes=21)])
    assert labels.max() <= 20 and len(np.unique(labels)) >= 15
    assert class_style(30) == class_style(30) and class_style(30) != class_style(31)


def test_colour_statistics_look_natural():
    imgs = np.stack([s[0] for s in _scenes(32)])
    sat = _saturation(imgs)
    assert (sat > 0.5).mean() > 0.15  # vivid colours
    assert (sat < 0.15).mean() > 0.05  # greys and muted colours
    means = imgs.mean(axis=(1, 2, 3))
    assert means.std() > 0.08  # dim and bright scenes, not all mid-grey
    assert means.min() < 0.3 and means.max() > 0.5
    assert imgs.std(axis=(1, 2, 3)).min() > 0.02  # no flat scenes


def test_classes_keep_their_colours_across_scenes():
    scenes = _scenes(32)
    imgs = np.stack([s[0] for s in scenes])
    labels = np.stack([s[1] for s in scenes])
    sat = _saturation(imgs)
    assert np.median(sat[labels == 1]) > 0.6  # vivid orange
    assert np.median(sat[labels == 5]) < 0.15  # greys


def test_bad_arguments_are_refused():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError):
        generate_scene(rng, 2, 64)
    with pytest.raises(ValueError):
        generate_scene(rng, 64, 64, num_classes=1)
    with pytest.raises(ValueError):
        generate_scene(rng, 64, 64, num_classes=256)
    with pytest.raises(ValueError):
        class_style(0)
