"""calib/entropy.py against onnxruntime's own entropy search: the same thresholds, bit for bit."""

import numpy as np
import onnx
import pytest
from onnxruntime.quantization.calibrate import HistogramCollector

from sllen.calib import ranges
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


def test_compute_ranges_gives_the_librarys_entropy_ranges(
    sllen_onnx: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The whole path on a real model's histograms (256 bins, so the library's loop is quick).
    from sllen.calib import entropy

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
