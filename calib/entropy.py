"""onnxruntime's entropy (KL) threshold search, the same thresholds in a fraction of the time.

Why our own: `HistogramCollector.get_entropy_threshold` (onnxruntime.quantization.calibrate)
tries every candidate threshold (961 for 2048 bins) one at a time and, for each, sums
histogram slices with Python's built-in `sum` and merges and expands the 128 quantized bins in
Python loops: about 0.9 s per tensor of 2048 bins on one core, and the cost grows with the
square of the bins, which reach 40,000 when chunks of frames with wider ranges merge
(11 minutes of a 14-minute export in walkthrough K). Two steps here:

1. A screen: every candidate's divergence in float64 from prefix sums over the histogram, in
   O(quantized bins) per candidate (`_estimates`).
2. The library's float32 divergence, exactly, for the candidates whose estimate is within
   SCREEN_MARGIN of the lowest (`_divergences`): candidates are rows of one array; the
   integer steps (the outliers folded into the end bins, the merge into quantized bins, the
   expansion back with truncating division) use cumulative sums, which give the same
   integers; the float steps (onnxruntime's `smooth_distribution`, `entropy`, `rel_entr`) are
   the same float32 operations element by element, and every sum whose order matters is
   numpy's sum over that candidate's own 1-D slice, as in the library.

The result is the library's threshold, bit for bit (tests/calib/test_entropy.py compares them
on many histograms, and the estimates with the exact values). Histograms it was not written
for (not integer counts, negative counts, fewer bins than the quantized ones, edges neither
float32 nor float64) go to the library's search, as does any histogram with a candidate on
which the library's own asserts would fire, so those still fail as they would there.
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


# The screen: counts below SMALL enter the estimate value by value (a series in eps1 is not
# accurate for them); candidates within SCREEN_MARGIN x (|lowest| + 2) of the lowest estimate
# are computed exactly.
SMALL = 64
SCREEN_MARGIN = 1e-4
ESTIMATE_ROWS = 2048  # candidates per estimate: arrays of rows x (quantized bins + 1), ~2 MB


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
    # Screen every candidate with a float64 estimate from prefix sums (O(bins) per candidate
    # would make a 40,000-bin histogram cost 10^9 operations), then compute the library's
    # float32 divergence exactly for those whose estimate is near the lowest: the library's
    # rounding moves a divergence by about 1e-6 x (KL + 2) (its sums are pairwise, the
    # negative terms add up to at most 1), and the estimate's own error is smaller still (the
    # tests hold it under a tenth of the margin), so the library's minimum is among them.
    prefix = _Prefix(counts)
    estimate = _in_chunks(
        lambda s, e: _estimates(counts, cumulative, prefix, s, e, num_quantized_bins),
        starts,
        ends,
        ESTIMATE_ROWS,
    )
    finite = estimate[np.isfinite(estimate)]
    if finite.size:
        lowest = float(finite.min())
        close = np.flatnonzero(~(estimate > lowest + SCREEN_MARGIN * (abs(lowest) + 2)))
    else:
        close = np.arange(len(starts))  # all empty: the library takes the first
    starts_c, ends_c = starts[close], ends[close]
    rows = max(1, min(CHUNK_ROWS, CHUNK_ELEMENTS // int((ends_c - starts_c).max())))
    kl = _in_chunks(
        lambda s, e: _divergences(counts, cumulative, s, e, num_quantized_bins),
        starts_c,
        ends_c,
        rows,
    ).astype(edges.dtype)  # the library keeps each divergence as np.array(div, dtype=edges')
    best = int(close[int(np.argmin(kl.astype(np.float64)))])  # ties: the first, as there
    low, high = edges[starts[best]], edges[ends[best]]
    if low < histogram[2]:
        low = histogram[2]
    if high > histogram[3]:
        high = histogram[3]
    return low, high


def _in_chunks(
    fn: Callable[[np.ndarray, np.ndarray], np.ndarray],
    starts: np.ndarray,
    ends: np.ndarray,
    rows: int,
) -> np.ndarray:
    """fn over the candidates `rows` at a time, concatenated: bounded arrays."""
    return np.concatenate(
        [fn(starts[k : k + rows], ends[k : k + rows]) for k in range(0, len(starts), rows)]
    )


class _Prefix:
    """Prefix sums over a histogram's counts for the estimate: nonzero bins; for counts of
    SMALL and more, x log x and its first three derivatives' terms; for each smaller count
    value, how many bins hold it."""

    def __init__(self, counts: np.ndarray) -> None:
        big = counts >= SMALL
        x = np.where(big, counts, 1).astype(np.float64)
        log = np.log(x)
        self.nonzero = _prefix(counts != 0)
        self.f0 = _prefix(np.where(big, x * log, 0.0))
        self.f1 = _prefix(np.where(big, log + 1.0, 0.0))
        self.f2 = _prefix(np.where(big, 1.0 / x, 0.0))
        self.f3 = _prefix(np.where(big, 1.0 / x**2, 0.0))
        self.small = np.stack([_prefix(counts == v).astype(np.int32) for v in range(1, SMALL)])


def _prefix(x: np.ndarray) -> np.ndarray:
    return np.concatenate(([0], np.cumsum(x)))


def _xlogx(x: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(x > 0, x * np.log(np.where(x > 0, x, 1.0)), 0.0)


def _estimates(
    counts: np.ndarray,
    cumulative: np.ndarray,
    pr: _Prefix,
    starts: np.ndarray,
    ends: np.ndarray,
    quant: int,
) -> np.ndarray:
    """The divergence of every candidate in float64, in O(quant + SMALL) each: with h the
    smoothed p and g the smoothed q (sums P and G), KL = (sum h log h - sum h log g) / P
    - log P + log G, where g is constant over each merged bin. Smoothing takes eps1 off every
    nonzero count: exact for counts below SMALL (value by value), a series for larger ones."""
    total = cumulative[-1]
    length = ends - starts
    left, right = cumulative[starts], total - cumulative[ends]
    first, last = counts[starts] + left, counts[ends - 1] + right  # p's end bins
    a, b = starts + 1, ends - 1  # the interior
    zeros_p = (length - 2 - (pr.nonzero[b] - pr.nonzero[a])) + (first == 0) + (last == 0)
    nonzero_p = length - zeros_p
    eps1 = _eps1(zeros_p, nonzero_p)
    values = np.arange(1, SMALL)[:, None]
    h_log_h = (
        zeros_p * EPS * np.log(EPS)
        + ((pr.small[:, b] - pr.small[:, a]) * _xlogx(values - eps1[None, :])).sum(0)
        + (pr.f0[b] - pr.f0[a])
        - eps1 * (pr.f1[b] - pr.f1[a])
        + eps1**2 / 2 * (pr.f2[b] - pr.f2[a])
        + eps1**3 / 6 * (pr.f3[b] - pr.f3[a])
        + np.where(first != 0, _xlogx(first - eps1), 0.0)
        + np.where(last != 0, _xlogx(last - eps1), 0.0)
    )
    p_sum = zeros_p * EPS + total - nonzero_p * eps1

    merged = length // quant
    bounds = starts[:, None] + np.arange(quant + 1)[None, :] * merged[:, None]
    rest = ends - bounds[:, -1]  # bins past quant x merged: q is 0 there
    p_block = np.diff(cumulative[bounds], axis=1)  # the sliced counts per merged bin
    quantized = p_block.copy()
    quantized[:, -1] += cumulative[ends] - cumulative[bounds[:, -1]]
    nonzero = np.diff(pr.nonzero[bounds], axis=1)  # of the counts; p's end bins differ:
    nonzero[:, 0] += (first != 0).astype(np.int64) - (counts[starts] != 0)
    p_block[:, 0] += left
    in_block = rest == 0  # the last bin is in the last merged bin, else past them
    nonzero[in_block, -1] += (last[in_block] != 0).astype(np.int64) - (counts[b[in_block]] != 0)
    p_block[in_block, -1] += right[in_block]
    level = _levels(quantized, nonzero)
    zeros_q = merged * (level == 0).sum(1) + rest
    nonzero_q = length - zeros_q
    eps_q = _eps1(zeros_q, nonzero_q)
    # The library smooths every candidate and asserts eps1 < 1 (and a positive result, which
    # float32 eps1 < 1 gives for counts >= 1): where any candidate, screened out or not, would
    # fire it, the library's search runs and fails as it does.
    for eps, nonzero_count in ((eps1, nonzero_p), (eps_q, nonzero_q)):
        if np.any((eps.astype(np.float32) >= 1.0) & (nonzero_count > 0)):
            raise _LibraryCase
    g = np.where(level != 0, level - eps_q[:, None], EPS)
    g_sum = merged * g.sum(1) + rest * EPS
    h_block = (merged[:, None] - nonzero) * EPS + p_block - nonzero * eps1[:, None]
    nonzero_rest = pr.nonzero[ends] - pr.nonzero[bounds[:, -1]]
    nonzero_rest += np.where(in_block, 0, (last != 0).astype(np.int64) - (counts[b] != 0))
    p_rest = cumulative[ends] - cumulative[bounds[:, -1]] + np.where(in_block, 0, right)
    h_rest = (rest - nonzero_rest) * EPS + p_rest - nonzero_rest * eps1
    with np.errstate(divide="ignore", invalid="ignore"):
        h_log_g = (h_block * np.log(g)).sum(1) + h_rest * np.log(EPS)
        kl = (h_log_h - h_log_g) / p_sum - np.log(p_sum) + np.log(g_sum)
    kl[(nonzero_p == 0) | (nonzero_q == 0)] = np.inf
    return kl


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
    level = _levels(quantized, norm)
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
    eps1_32 = _eps1(n_zeros, n_nonzeros).astype(np.float32)
    if np.any(eps1_32[~empty] >= 1.0):  # the library asserts eps1 < 1 and a positive result
        raise _LibraryCase
    # hist += eps * is_zeros + (-eps1) * is_nonzeros, in float32: on a zero 0 + (eps + -0.0),
    # elsewhere count + (0.0 + -eps1): the same floats as eps and count - eps1, and > 0
    hist = np.where(zero, np.float32(EPS), x.astype(np.float32) - eps1_32[:, None])
    return hist, empty


def _eps1(zeros: np.ndarray, nonzeros: np.ndarray) -> np.ndarray:
    """smooth_distribution's eps1 of each row: eps * float(n_zeros) / float(n_nonzeros), in
    float64 as there (any value for an empty row, which is refused before it counts)."""
    return EPS * zeros.astype(np.float64) / np.maximum(nonzeros, 1).astype(np.float64)


def _levels(quantized: np.ndarray, nonzero: np.ndarray) -> np.ndarray:
    """Each merged bin's count over its nonzero bins, truncated as the library's assignment
    into an int64 array truncates; 0 where it has none."""
    return np.where(nonzero > 0, quantized / np.maximum(nonzero, 1), 0).astype(np.int64)


def _row_sums(x: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Each row's sum over its own length, as np.sum sums a 1-D array (pairwise: the order
    is the library's)."""
    return np.array([np.sum(x[r, :n]) for r, n in enumerate(lengths)], dtype=x.dtype)


def fast_entropy_search(library_search: Callable[..., Any]) -> Callable[..., Any]:
    """A drop-in for a collector's `get_entropy_threshold`: integer histograms of the shape
    the library's loop expects go through `entropy_threshold`, anything else to the library."""

    def search(histogram: tuple, num_quantized_bins: int) -> Any:
        hist, edges = np.asarray(histogram[0]), np.asarray(histogram[1])
        half = num_quantized_bins // 2
        if (
            hist.ndim != 1
            or hist.dtype.kind not in "iu"
            or hist.size // 2 < half
            or half < 1
            # float16 divergences tie where the screen's margin cannot see (review R6)
            or edges.dtype not in (np.float32, np.float64)
            or hist.min() < 0  # the library asserts on them
        ):
            return library_search(histogram, num_quantized_bins)
        try:
            return entropy_threshold(histogram, num_quantized_bins)
        except _LibraryCase:
            return library_search(histogram, num_quantized_bins)

    return search
