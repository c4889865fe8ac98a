"""Confusion matrix and mean intersection-over-union for semantic segmentation (pure numpy).

Protocol (the PASCAL VOC one):

* ``pred`` and ``target`` are integer label maps of the same shape (any shape, e.g. H x W),
  values in ``0 .. num_classes - 1``. Pixels whose **target** equals ``ignore_index``
  (255 = the VOC "void" border) are dropped, whatever the prediction there. Any other
  out-of-range label, in ``target`` or in ``pred`` at a kept pixel, is a ValueError.
* Confusion matrix ``conf[t, p]`` = number of kept pixels of true class t predicted as p
  (rows = ground truth, columns = prediction), int64.
* **Accumulate over the whole data set first** (sum the per-image matrices), then compute
  IoU once: dataset mIoU, not the mean of per-image mIoUs.
* ``IoU_c = TP_c / (TP_c + FP_c + FN_c)`` = ``conf[c, c] / (row_c + col_c - conf[c, c])``.
  Classes with ``TP + FP + FN = 0`` (absent from both the ground truth and the prediction over
  the whole accumulated set) get IoU NaN and are **excluded from the mean**; a class present
  in either gets a number (0 if never hit). mIoU is the mean over the remaining classes, NaN if
  there are none. Reported as a fraction in [0, 1] (multiply by 100 for papers' percentages).
"""

from __future__ import annotations

import numpy as np

__all__ = ["confusion_matrix", "miou"]


def _as_labels(labels: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(labels)
    if not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must be an integer label map, got dtype {arr.dtype}")
    return arr.astype(np.int64, copy=False)


def confusion_matrix(
    pred: np.ndarray,
    target: np.ndarray,
    num_classes: int,
    ignore_index: int | None = 255,
) -> np.ndarray:
    """``(num_classes, num_classes)`` int64 confusion matrix, rows = target, cols = prediction.

    Pixels with ``target == ignore_index`` are skipped (``ignore_index=None`` keeps all).
    Sum the matrices of all images before calling :func:`miou`.

    Raises:
        ValueError: shapes differ, ``num_classes < 1``, or a kept label is out of range.
        TypeError: non-integer label maps.
    """
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    p = _as_labels(pred, "pred")
    t = _as_labels(target, "target")
    if p.shape != t.shape:
        raise ValueError(f"pred and target must have the same shape, got {p.shape} and {t.shape}")
    p, t = p.ravel(), t.ravel()
    if ignore_index is not None:
        keep = t != ignore_index
        p, t = p[keep], t[keep]
    for arr, name in ((t, "target"), (p, "pred")):
        if arr.size and (arr.min() < 0 or arr.max() >= num_classes):
            bad = arr[(arr < 0) | (arr >= num_classes)][0]
            raise ValueError(
                f"{name} has label {bad} outside 0..{num_classes - 1}"
                + (f" (and not ignore_index={ignore_index})" if name == "target" else "")
            )
    counts = np.bincount(t * num_classes + p, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes).astype(np.int64, copy=False)


def miou(conf: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean IoU and per-class IoU from an (accumulated) confusion matrix.

    Returns ``(mean_iou, per_class_iou)``: ``per_class_iou`` is float64 of length
    ``num_classes`` with NaN for classes absent from both prediction and ground truth; those
    are excluded from ``mean_iou`` (NaN if every class is absent).
    """
    c = np.asarray(conf)
    if c.ndim != 2 or c.shape[0] != c.shape[1]:
        raise ValueError(f"conf must be a square (K, K) matrix, got shape {c.shape}")
    c = c.astype(np.float64)
    tp = np.diag(c)
    union = c.sum(axis=0) + c.sum(axis=1) - tp
    per_class = np.full(c.shape[0], np.nan)
    present = union > 0
    per_class[present] = tp[present] / union[present]
    mean = float(per_class[present].mean()) if present.any() else float("nan")
    return mean, per_class
