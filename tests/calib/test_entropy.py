"""calib/entropy.py against onnxruntime's own entropy search: the same thresholds, bit for bit."""

import numpy as np
import onnx
import pytest
from onnxruntime.quantization.calibrate import HistogramCollector

from sllen.calib import entropy, ranges
from sllen.calib.entropy import entropy_threshold, fast_entropy_search


def library_threshold(histogram: tuple, quantized: int = 128):
    collector = HistogramCollector("entropy", True, histogram[0].size, quantized, None, None)
    return collector.get_entropy_threshold(histogram, quantized)


def entry(values: np.ndarray, bins: int) -> tuple:
    """A histogram entry as onnxruntime's collector makes one: symmetric about zero."""
    t = np.float32(np.abs(values).max())
    hist, edges = np.histogram(values, bins, range=(-t, t))
    return hist, edges.astype(np.float32), np.float32(values.min()), np.float32(values.max()), t


def shapes() -> dict[str, tuple]:
    rng = np.random.default_rng(0)
    normal = rng.normal(0.1, 0.3, 50_000).astype(np.float32)
    relu = np.maximum(rng.normal(0.0, 1.0, 50_000), 0).astype(np.float32)  # a spike at zero
    heavy = rng.standard_t(2, 50_000).astype(np.float32)  # long tails: a low threshold wins
    sparse = rng.choice([-2.0, 0.0, 0.5, 3.0], 2_000).astype(np.float32)  # mostly empty bins
    suppressed = entry(relu, 512)
    hist = suppressed[0].copy()
    hist[256] = hist[257]  # after ranges._suppress_zero_bin
    return {
        "normal 2048": entry(normal, 2048),
        "relu 512": entry(relu, 512),
        "relu, zero bin suppressed": (hist, *suppressed[1:]),
        "heavy tails 1024": entry(heavy, 1024),
        "sparse 640": entry(sparse, 640),
        "odd size 777": entry(normal, 777),  # merged histograms need not be 2048 or even
        "one-sided 300": entry(np.abs(normal), 300),
    }


@pytest.mark.parametrize("name", list(shapes()))
def test_thresholds_equal_onnxruntimes(name: str) -> None:
    histogram = shapes()[name]
    ours = entropy_threshold(histogram, 128)
    theirs = library_threshold(histogram)
    assert [float(v) for v in ours] == [float(v) for v in theirs]
    assert [v.dtype for v in ours] == [v.dtype for v in theirs]


def all_exact(histogram: tuple, quantized: int = 128):
    """Every candidate's divergence through calib/entropy.py's exact path (which the tests
    above hold to the library), and the estimates that screen them."""
    counts = np.asarray(histogram[0], np.int64)
    zero, half = counts.size // 2, quantized // 2
    cumulative = np.concatenate(([0], np.cumsum(counts)))
    i = np.arange(half, zero + 1)
    starts, ends = zero - i, np.minimum(zero + i + 1, counts.size)
    exact = np.concatenate(
        [
            entropy._divergences(
                counts, cumulative, starts[k : k + 64], ends[k : k + 64], quantized
            )
            for k in range(0, len(starts), 64)
        ]
    )
    estimate = entropy._estimates(
        counts, cumulative, entropy._Prefix(counts), starts, ends, quantized
    )
    return exact.astype(np.float64), estimate, starts, ends


def wide(seed: int) -> tuple:
    """A histogram as merged chunks of frames leave one: wider than 2048 bins, most of them
    empty (the screen's case: 40,000 bins in the bundled model's export)."""
    rng = np.random.default_rng(seed)
    x = np.concatenate([rng.normal(0, 0.2, 40_000), rng.exponential(3, 300), [-0.5, 30.0]])
    return entry(x.astype(np.float32), 6_000)


@pytest.mark.parametrize("name", [*shapes(), "wide 1", "wide 2"])
def test_the_estimates_are_within_a_tenth_of_the_screens_margin(name: str) -> None:
    histogram = wide(int(name[-1])) if name.startswith("wide") else shapes()[name]
    exact, estimate, _, _ = all_exact(histogram)
    both = np.isfinite(exact) & np.isfinite(estimate)
    assert np.array_equal(np.isfinite(exact), np.isfinite(estimate))
    scale = abs(exact[both].min()) + 2
    assert np.abs(estimate[both] - exact[both]).max() < entropy.SCREEN_MARGIN * scale / 10


@pytest.mark.parametrize("seed", [1, 2])
def test_the_screen_keeps_the_exact_minimum_of_a_wide_histogram(seed: int) -> None:
    histogram = wide(seed)
    exact, _, starts, ends = all_exact(histogram)
    best = int(np.argmin(exact.astype(np.float32)))
    edges = histogram[1]
    assert entropy_threshold(histogram, 128) == (
        max(edges[starts[best]], histogram[2]),
        min(edges[ends[best]], histogram[3]),
    )


def test_fewer_quantized_bins_too() -> None:
    histogram = shapes()["normal 2048"]
    for quantized in (64, 255):
        assert entropy_threshold(histogram, quantized) == library_threshold(histogram, quantized)


def test_what_it_cannot_take_goes_to_the_library() -> None:
    calls = []

    def library(histogram, quantized):
        calls.append(quantized)
        return "library"

    search = fast_entropy_search(library)
    floats = shapes()["normal 2048"]
    assert search((floats[0].astype(np.float64), *floats[1:]), 128) == "library"
    assert search(shapes()["relu 512"], 1024) == "library"  # fewer bins than the quantized
    assert search(floats, 128) != "library" and calls == [128, 1024]
    # float16 divergences tie where the screen cannot see; the library asserts on negative
    # counts (review R6)
    assert search((floats[0], floats[1].astype(np.float16), *floats[2:]), 128) == "library"
    negative = floats[0].copy()
    negative[5] = -3
    assert search((negative, *floats[1:]), 128) == "library" and len(calls) == 4


def test_a_candidate_the_library_would_assert_on_sends_the_histogram_to_it() -> None:
    # One count in 20,002 bins: a wide candidate has 10,000 empty bins per full one, eps1 = 1,
    # and the library's smoothing asserts, though the screen would not look at that candidate.
    # (The library itself takes 20 s to fail here: a stand-in records the call.)
    hist = np.zeros(20_002, np.int64)
    hist[10_001] = 1000
    edges = np.linspace(-1, 1, hist.size + 1, dtype=np.float32)
    histogram = (hist, edges, np.float32(0.0), np.float32(0.0001), np.float32(1))
    calls = []
    assert fast_entropy_search(lambda *a: calls.append(a) or "library")(histogram, 128) == "library"
    assert len(calls) == 1


def test_compute_ranges_gives_the_librarys_entropy_ranges(
    sllen_onnx: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The whole path on a real model's histograms (256 bins, so the library's loop is quick).
    searched = []
    ours_alone = entropy.entropy_threshold
    monkeypatch.setattr(
        entropy, "entropy_threshold", lambda *a: searched.append(1) or ours_alone(*a)
    )
    model = onnx.load(sllen_onnx)
    frames = np.random.default_rng(1).random((2, 3, 32, 32), dtype=np.float32)
    ours = ranges.compute_ranges(model, frames, "entropy", num_bins=256, threads=1)
    assert len(searched) == len(ours) > 50  # every tensor through calib/entropy.py
    monkeypatch.setattr(ranges, "fast_entropy_search", lambda search: search)
    theirs = ranges.compute_ranges(model, frames, "entropy", num_bins=256, threads=1)
    assert ours == theirs and len(searched) == len(ours)
