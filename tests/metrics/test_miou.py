"""Confusion matrix / mIoU: hand-computed known answers, ignore pixels, accumulation."""

from __future__ import annotations

import numpy as np
import pytest

from sllen.metrics.miou import confusion_matrix, miou


def test_known_answer_with_ignore_pixels() -> None:
    target = np.array([[0, 0, 1, 1], [2, 2, 255, 255]])
    pred = np.array([[0, 1, 1, 1], [2, 0, 7, 2]])  # 7 sits on an ignored pixel: allowed
    conf = confusion_matrix(pred, target, num_classes=3)
    expected = np.array(
        [
            [1, 1, 0],  # true 0: one hit, one predicted as 1
            [0, 2, 0],
            [1, 0, 1],  # true 2: one hit, one predicted as 0
        ]
    )
    np.testing.assert_array_equal(conf, expected)
    assert conf.dtype == np.int64
    mean, per_class = miou(conf)
    # IoU0 = 1 / (2 + 2 - 1) = 1/3, IoU1 = 2 / (2 + 3 - 2) = 2/3, IoU2 = 1 / (2 + 1 - 1) = 1/2
    np.testing.assert_allclose(per_class, [1 / 3, 2 / 3, 1 / 2])
    assert mean == pytest.approx((1 / 3 + 2 / 3 + 1 / 2) / 3)


def test_absent_classes_excluded_from_mean() -> None:
    target = np.array([[0, 0, 1, 1]])
    pred = np.array([[0, 0, 1, 3]])
    _, per_class = miou(confusion_matrix(pred, target, num_classes=5))
    # class 2 and 4: absent from both -> NaN; class 3: only predicted -> IoU 0, counted.
    assert np.isnan(per_class[2]) and np.isnan(per_class[4])
    np.testing.assert_allclose(per_class[[0, 1, 3]], [1.0, 0.5, 0.0])
    mean, _ = miou(confusion_matrix(pred, target, num_classes=5))
    assert mean == pytest.approx(0.5)


def test_accumulation_is_dataset_level() -> None:
    t1, p1 = np.array([0, 0, 0, 1]), np.array([0, 0, 0, 0])
    t2, p2 = np.array([1, 1]), np.array([1, 1])
    conf = confusion_matrix(p1, t1, 2) + confusion_matrix(p2, t2, 2)
    mean, per_class = miou(conf)
    # summed conf [[3, 0], [1, 2]]: IoU0 = 3/4, IoU1 = 2/3
    np.testing.assert_allclose(per_class, [3 / 4, 2 / 3])
    assert mean == pytest.approx((3 / 4 + 2 / 3) / 2)
    per_image = (miou(confusion_matrix(p1, t1, 2))[0] + miou(confusion_matrix(p2, t2, 2))[0]) / 2
    assert per_image != pytest.approx(mean)  # the protocol is not the per-image mean


def test_perfect_and_all_ignored() -> None:
    labels = np.array([[0, 1], [2, 2]])
    mean, per_class = miou(confusion_matrix(labels, labels, 3))
    assert mean == 1.0
    np.testing.assert_array_equal(per_class, [1.0, 1.0, 1.0])
    conf = confusion_matrix(np.zeros((2, 2), np.int64), np.full((2, 2), 255), 3)
    assert conf.sum() == 0
    mean, per_class = miou(conf)
    assert np.isnan(mean) and np.isnan(per_class).all()


def test_custom_and_disabled_ignore_index() -> None:
    target = np.array([0, -1, 1])
    pred = np.array([0, 1, 1])
    np.testing.assert_array_equal(
        confusion_matrix(pred, target, 2, ignore_index=-1), [[1, 0], [0, 1]]
    )
    with pytest.raises(ValueError, match="target"):
        confusion_matrix(np.array([0, 1]), np.array([0, 255]), 2, ignore_index=None)


def test_validation() -> None:
    with pytest.raises(ValueError, match="same shape"):
        confusion_matrix(np.zeros((2, 2), np.int64), np.zeros((2, 3), np.int64), 2)
    with pytest.raises(ValueError, match="pred has label 5"):
        confusion_matrix(np.array([5]), np.array([0]), 2)
    with pytest.raises(ValueError, match="target has label 3"):
        confusion_matrix(np.array([0]), np.array([3]), 2)
    with pytest.raises(TypeError, match="integer"):
        confusion_matrix(np.array([0.0]), np.array([0]), 2)
    with pytest.raises(ValueError, match="num_classes"):
        confusion_matrix(np.array([0]), np.array([0]), 0)
    with pytest.raises(ValueError, match="square"):
        miou(np.zeros((2, 3)))


def test_uint8_label_maps() -> None:
    target = np.array([[0, 1], [255, 1]], dtype=np.uint8)
    pred = np.array([[0, 1], [0, 0]], dtype=np.uint8)
    np.testing.assert_array_equal(confusion_matrix(pred, target, 2), [[1, 0], [1, 1]])
