"""onnxruntime's entropy (KL) threshold search, computed for all candidate thresholds at once.

Why our own: `HistogramCollector.get_entropy_threshold` (onnxruntime.quantization.calibrate)
tries every candidate threshold (961 for 2048 bins) one at a time and, for each, sums
histogram slices with Python's built-in `sum` and merges and expands the 128 quantized bins in
Python loops: about 0.9 s per tensor on one core, minutes for a model's few hundred tensors
(11 minutes in walkthrough K on a loaded 2-core CPU). Here the candidates are rows of one
array: the integer steps (the outliers folded into the end bins, the merge into quantized
bins, the expansion back with truncating division) use cumulative sums, which give the same
integers; the float steps (onnxruntime's `smooth_distribution`, `entropy`, `rel_entr`) are
the same float32 operations element by element, and every sum whose order matters (the
normalisations and the divergence) is numpy's sum over that candidate's own 1-D slice, as in
the library. The result is the library's threshold, bit for bit (tests/calib/test_entropy.py
compares them on many histograms). Histograms it was not written for (not integer counts, or
fewer bins than the quantized ones) go to the library's search, as does any candidate on which
the library's own asserts would fail, so those still fail as they would there.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

EPS = 0.0001  # smooth_distribution's default, which the library's search uses
# Candidates per array: their lengths grow by 2 per row, so short chunks pad little, and
# fewer rows for wide histograms (they grow past 40,000 bins as chunks of frames merge) keep
# each array near 2 MB.
CHUNK_ROWS = 128
CHUNK_ELEMENTS = 1 << 18


class _LibraryCase(Exception):
    """A candidate the library's smoothing would assert on: let the library say so."""


def entropy_threshold(histogram: tuple, num_quantized_bins: int) -> tuple[Any, Any]:
    """The (low, high) threshold onnxruntime's `get_entropy_threshold(histogram,
    num_quantized_bins)` returns for a histogram entry (counts, edges, min, max, ...)."""
    hist, edges = histogram[0], histogram[1]
    num_bins = hist.size
    zero, half = num_bins // 2, num_quantized_bins // 2
    counts = np.asarray(hist, dtype=np.int64)
    cumulative = np.concatenate(([0], np.cumsum(counts)))  # sum(hist[:k]) for every k
    i = np.arange(half, zero + 1)
    starts, ends = zero - i, np.minimum(zero + i + 1, num_bins)
    rows = max(1, min(CHUNK_ROWS, CHUNK_ELEMENTS // int((ends - starts).max())))
    kl = np.concatenate(
        [
            _divergences(
                counts, cumulative, starts[k : k + rows], ends[k : k + rows], num_quantized_bins
            )
            for k in range(0, len(i), rows)
        ]
    ).astype(edges.dtype)  # the library keeps each divergence as np.array(div, dtype=edges')
    best = int(np.argmin(kl.astype(np.float64)))
    low, high = edges[starts[best]], edges[ends[best]]
    if low < histogram[2]:
        low = histogram[2]
    if high > histogram[3]:
        high = histogram[3]
    return low, high


def _divergences(
    counts: np.ndarray, cumulative: np.ndarray, starts: np.ndarray, ends: np.ndarray, quant: int
) -> np.ndarray:
    """KL(p || q) of each candidate slice [start, end), as the library computes it."""
    lengths = ends - starts
    width = int(lengths.max())
    col = np.arange(width)
    valid = col < lengths[:, None]
    sliced = np.zeros(valid.shape, np.int64)
    sliced[valid] = np.concatenate([counts[a:b] for a, b in zip(starts, ends, strict=True)])
    rows = np.arange(len(starts))
    p = sliced.copy()
    p[:, 0] += cumulative[starts]  # the outliers below and above fold into the end bins
    p[rows, lengths - 1] += cumulative[-1] - cumulative[ends]

    # merge into `quant` bins of m = length // quant (the remainder into the last), and
    # expand back over the same bins: level = merged count // nonzero bins in it, 0 if none
    merged = lengths // quant
    zeros = np.zeros((len(starts), 1), np.int64)
    sliced_sums = np.concatenate((zeros, np.cumsum(sliced, 1)), 1)
    nonzero_sums = np.concatenate((zeros, np.cumsum(p != 0, 1, dtype=np.int64)), 1)
    bounds = np.arange(quant + 1)[None, :] * merged[:, None]
    quantized = np.diff(np.take_along_axis(sliced_sums, bounds, 1), axis=1)
    quantized[:, -1] += sliced_sums[rows, lengths] - sliced_sums[rows, bounds[:, -1]]
    norm = np.diff(np.take_along_axis(nonzero_sums, bounds, 1), axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        level = np.where(norm != 0, quantized / np.where(norm != 0, norm, 1), 0).astype(np.int64)
    q = np.zeros(valid.shape, np.int64)  # each level over its m bins, 0 past quant * m
    q[col < bounds[:, -1:]] = np.repeat(level.ravel(), np.repeat(merged, quant))

    ps, p_empty = _smooth(p, lengths)
    qs, q_empty = _smooth(q, lengths)
    with np.errstate(divide="ignore", invalid="ignore"):
        # the library's entropy(): 1.0 * pk / sum(pk) (times 1.0 changes no float), then
        # rel_entr, whose masks change nothing here: after smoothing every entry is > 0
        pk = ps / _row_sums(ps, lengths)[:, None]
        qk = qs / _row_sums(qs, lengths)[:, None]
        out = _row_sums(pk * np.log(pk / qk), lengths)
    out[p_empty | q_empty] = np.inf  # smooth_distribution returned None: the library's inf
    return out


def _smooth(x: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """onnxruntime's smooth_distribution of each row (counts, 0 past the row's length), and
    which rows it returns None for (all zeros)."""
    zero = x == 0
    n_zeros = zero.sum(axis=1) - (x.shape[1] - lengths)  # the row's own zeros
    n_nonzeros = lengths - n_zeros
    empty = n_nonzeros == 0
    # eps1 = eps * float(n_zeros) / float(n_nonzeros), in float64 as there
    eps1 = EPS * n_zeros.astype(np.float64) / np.maximum(n_nonzeros, 1).astype(np.float64)
    eps1_32 = eps1.astype(np.float32)
    if np.any(eps1_32[~empty] >= 1.0):  # the library asserts eps1 < 1 and a positive result
        raise _LibraryCase
    # hist += eps * is_zeros + (-eps1) * is_nonzeros, in float32: on a zero 0 + (eps + -0.0),
    # elsewhere count + (0.0 + -eps1): the same floats as eps and count - eps1, and > 0
    hist = np.where(zero, np.float32(EPS), x.astype(np.float32) - eps1_32[:, None])
    return hist, empty


def _row_sums(x: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Each row's sum over its own length, as np.sum sums a 1-D array (pairwise: the order
    is the library's)."""
    return np.array([np.sum(x[r, :n]) for r, n in enumerate(lengths)], dtype=x.dtype)


def fast_entropy_search(library_search: Callable[..., Any]) -> Callable[..., Any]:
    """A drop-in for a collector's `get_entropy_threshold`: integer histograms of the shape
    the library's loop expects go through `entropy_threshold`, anything else to the library."""

    def search(histogram: tuple, num_quantized_bins: int) -> Any:
        hist = np.asarray(histogram[0])
        half = num_quantized_bins // 2
        if hist.ndim != 1 or hist.dtype.kind not in "iu" or hist.size // 2 < half or half < 1:
            return library_search(histogram, num_quantized_bins)
        try:
            return entropy_threshold(histogram, num_quantized_bins)
        except _LibraryCase:
            return library_search(histogram, num_quantized_bins)

    return search
