"""LOE: invariances, brute-force known values, the resize definition, input handling."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from sllen.metrics.loe import downsample_nearest, lightness, loe

# ``sllen.metrics.loe`` the attribute is the re-exported function; fetch the module itself.
loe_module = importlib.import_module("sllen.metrics.loe")


def _brute_force_loe(ref: np.ndarray, out: np.ndarray) -> float:
    """Literal double loop over pixel pairs of max(R, G, B) lightness (no resize)."""
    l_in = [float(v) for v in np.asarray(ref, dtype=np.float64).max(axis=2).ravel()]
    l_out = [float(v) for v in np.asarray(out, dtype=np.float64).max(axis=2).ravel()]
    n = len(l_in)
    flips = 0
    for x in range(n):
        for y in range(n):
            if (l_in[x] >= l_in[y]) != (l_out[x] >= l_out[y]):
                flips += 1
    return flips / n


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(7)


def test_identity_is_zero(rng: np.random.Generator) -> None:
    img = rng.random((120, 90, 3))
    assert loe(img, img) == 0.0


@pytest.mark.parametrize("curve", [lambda x: x**0.4, lambda x: x**2.2, lambda x: np.sqrt(x) * 0.5])
@pytest.mark.parametrize("shape", [(9, 13, 3), (120, 90, 3)])
def test_strictly_monotone_tone_curve_is_zero(curve, shape, rng: np.random.Generator) -> None:
    img = rng.random(shape)
    assert loe(img, curve(img)) == 0.0


def test_inverted_grey_image_known_value(rng: np.random.Generator) -> None:
    # Distinct grey values, fully reversed order: every pixel flips against all n - 1 others.
    grey = rng.permutation(20).reshape(4, 5) / 19.0
    img = np.repeat(grey[..., None], 3, axis=2)
    assert loe(img, 1.0 - img) == pytest.approx(19.0, abs=1e-12)


def test_tiny_hand_computed_case() -> None:
    ref = np.zeros((1, 3, 3))
    ref[0, :, 1] = [0.1, 0.2, 0.3]  # lightness = the green channel
    out = np.zeros((1, 3, 3))
    out[0, :, 2] = [0.3, 0.2, 0.1]
    # Each x disagrees with the 2 others: 6 flips / 3 pixels.
    assert loe(ref, out) == pytest.approx(2.0)
    out2 = out.copy()
    out2[0, :, 2] = [0.1, 0.3, 0.3]  # ties pixels 1 and 2 in the output
    # U_in rows: x0 [1,0,0], x1 [1,1,0], x2 [1,1,1]; U_out: x0 [1,0,0], x1 [1,1,1], x2 [1,1,1]
    # -> one flip (x=1, y=2) over 3 pixels.
    assert loe(ref, out2) == pytest.approx(1.0 / 3.0)


@pytest.mark.parametrize("levels", [4, 256])
def test_matches_brute_force_with_ties(levels: int, rng: np.random.Generator) -> None:
    ref = rng.integers(0, levels, size=(6, 7, 3)) / (levels - 1)
    out = rng.integers(0, levels, size=(6, 7, 3)) / (levels - 1)
    expected = _brute_force_loe(ref, out)
    assert expected > 0
    assert loe(ref, out) == pytest.approx(expected, abs=1e-12)
    assert loe(ref, out, size=None) == pytest.approx(expected, abs=1e-12)


def test_inverted_natural_image_is_positive() -> None:
    data = pytest.importorskip("skimage.data")
    img = data.astronaut()[::4, ::4]
    assert loe(img, img) == 0.0
    assert loe(img, 255 - img) > 100.0


def test_chunking_does_not_change_the_result(
    rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    ref, out = rng.random((60, 80, 3)), rng.random((60, 80, 3))
    full = loe(ref, out)
    monkeypatch.setattr(loe_module, "_CHUNK_ELEMENTS", 1000)
    assert loe(ref, out) == full


def test_downsample_shapes() -> None:
    assert downsample_nearest(np.zeros((100, 150))).shape == (50, 75)
    assert downsample_nearest(np.zeros((1080, 1920))).shape == (50, 89)  # round(88.89)
    assert downsample_nearest(np.zeros((400, 600))).shape == (50, 75)
    assert downsample_nearest(np.zeros((99, 77))).shape == (64, 50)  # round(64.29)
    small = np.arange(40 * 70.0).reshape(40, 70)
    assert downsample_nearest(small) is small  # no upsampling
    big = np.zeros((300, 200))
    assert downsample_nearest(big, size=None) is big


def test_downsample_samples_pixel_centres() -> None:
    h, w = 100, 150
    coded = np.arange(h)[:, None] * 1000.0 + np.arange(w)[None, :]
    small = downsample_nearest(coded)
    # Factor 2: output i covers input rows 2i, 2i+1; its centre rounds to 2i + 1.
    np.testing.assert_array_equal(small[:, 0] // 1000, 2 * np.arange(50) + 1)
    np.testing.assert_array_equal(small[0, :] % 1000, 2 * np.arange(75) + 1)
    coded3 = np.arange(150)[:, None] * 1000.0 + np.arange(200)[None, :]  # factor 3
    small3 = downsample_nearest(coded3)
    np.testing.assert_array_equal(small3[:, 0] // 1000, 3 * np.arange(50) + 1)


def test_loe_uses_the_downsampled_maps(rng: np.random.Generator) -> None:
    ref, out = rng.random((100, 150, 3)), rng.random((100, 150, 3))
    expected = _brute_force_loe(ref[1::2, 1::2], out[1::2, 1::2])
    assert loe(ref, out) == pytest.approx(expected, abs=1e-12)


def test_lightness_is_max_rgb_on_255_scale() -> None:
    img = np.array([[[0.2, 0.6, 0.4], [1.0, 0.0, 0.0]]])
    np.testing.assert_allclose(lightness(img), [[153.0, 255.0]])


def test_uint8_and_float_agree(rng: np.random.Generator) -> None:
    a8 = rng.integers(0, 256, size=(70, 60, 3), dtype=np.uint8)
    b8 = rng.integers(0, 256, size=(70, 60, 3), dtype=np.uint8)
    assert loe(a8, b8) == loe(a8 / 255.0, b8 / 255.0)


def test_input_validation(rng: np.random.Generator) -> None:
    with pytest.raises(ValueError, match="same shape"):
        loe(rng.random((10, 10, 3)), rng.random((10, 11, 3)))
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        loe(rng.random((10, 10)), rng.random((10, 10)))
    with pytest.raises(ValueError, match="size"):
        loe(rng.random((10, 10, 3)), rng.random((10, 10, 3)), size=0)
