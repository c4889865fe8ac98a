"""Classical baselines, colour-fault statistics and the built-in evaluation set."""

from pathlib import Path

import numpy as np
import pytest

from sllen.baselines import clahe, gamma_auto
from sllen.evalset import (
    CONDITIONS,
    PHOTOS,
    WELL_LIT_CONDITIONS,
    darken_photo,
    load_photos,
    write_evalset,
)
from sllen.metrics.color import brightness_slope, color_stats, rgb_to_lab


def test_gamma_auto_reaches_target_mean() -> None:
    rng = np.random.default_rng(0)
    dark = (rng.random((40, 50, 3)) ** 3 * 0.2).astype(np.float32)
    out = gamma_auto(dark)
    assert abs(out.mean() - 0.45) < 1e-3
    # Monotone: the order of pixel values is kept.
    assert np.all(np.diff(out.ravel()[np.argsort(dark.ravel())]) >= -1e-6)
    bright = np.full((4, 4, 3), 0.7, np.float32)
    np.testing.assert_allclose(gamma_auto(bright), bright)  # already bright: unchanged


def test_clahe_keeps_chroma_and_raises_lightness() -> None:
    skimage = pytest.importorskip("skimage")
    img = skimage.data.astronaut()[::4, ::4] / 255.0 * 0.15
    out = clahe(img.astype(np.float32))
    assert out.shape == img.shape and out.dtype == np.float32
    assert rgb_to_lab(out)[..., 0].mean() > rgb_to_lab(img)[..., 0].mean() + 10


def test_lab_matches_scikit_image() -> None:
    color = pytest.importorskip("skimage.color")
    x = np.random.default_rng(1).random((8, 9, 3)).astype(np.float32)
    np.testing.assert_allclose(rgb_to_lab(x), color.rgb2lab(x), atol=0.01)


def test_color_stats_known_answers() -> None:
    rng = np.random.default_rng(2)
    gt = rng.random((32, 32, 3)).astype(np.float32)
    same = color_stats(gt, gt)
    assert same["saturation_ratio"] == pytest.approx(1.0)
    assert same["color_cast"] == pytest.approx(0.0, abs=1e-9)
    grey = np.repeat(gt.mean(axis=2, keepdims=True), 3, axis=2)
    assert color_stats(grey, gt)["saturation_ratio"] < 0.1  # fully desaturated
    tinted = np.clip(gt * np.array([1.0, 1.0, 0.6], np.float32), 0, 1)
    assert color_stats(tinted, gt)["color_cast"] > 5  # a yellow cast
    noisy = np.clip(gt + rng.normal(0, 0.1, gt.shape).astype(np.float32), 0, 1)
    stats = color_stats(noisy, gt)
    assert stats["chroma_noise"] > stats["chroma_noise_gt"]


def test_brightness_slope() -> None:
    gt = [20.0, 40.0, 60.0]
    assert brightness_slope([25.0, 45.0, 65.0], gt) == pytest.approx(1.0)
    assert brightness_slope([50.0, 50.0, 50.0], gt) == pytest.approx(0.0, abs=1e-9)


def test_evalset_is_deterministic_and_dark(tmp_path: Path) -> None:
    pytest.importorskip("skimage")
    photos, notes = load_photos(["chelsea"])
    img = photos["chelsea"]
    cond = CONDITIONS[0]
    a, b = darken_photo(img, "chelsea", cond), darken_photo(img, "chelsea", cond)
    np.testing.assert_array_equal(a, b)
    assert a.mean() < img.mean() * 0.5
    out, _ = write_evalset(tmp_path / "set", ["chelsea"])
    lows = sorted((out / "low").glob("*.png"))
    assert len(lows) == len(CONDITIONS)
    assert {p.name for p in lows} == {p.name for p in (out / "high").glob("*.png")}


def test_well_lit_set_holds_the_photo_itself_and_brighter_captures(tmp_path: Path) -> None:
    pytest.importorskip("skimage")
    photos, _ = load_photos(["chelsea"])
    img = photos["chelsea"]
    clean, one, two = (darken_photo(img, "chelsea", c) for c in WELL_LIT_CONDITIONS)
    # as it is: the photo in 8 bits (the sRGB round trip loses nothing at exposure 1)
    np.testing.assert_allclose(clean, np.round(img * 255) / 255, atol=1.5 / 255)
    assert (
        img.mean() > one.mean() > two.mean() > darken_photo(img, "chelsea", CONDITIONS[-1]).mean()
    )
    out, _ = write_evalset(tmp_path / "set", ["chelsea"], WELL_LIT_CONDITIONS)
    names = sorted(p.name for p in (out / "low").glob("*.png"))
    assert names == ["chelsea_e1000-clean.png", "chelsea_e250.png", "chelsea_e500.png"]
    # the built-in set's names (and seeds) are the ones it always had
    assert [c.tag for c in CONDITIONS][:2] == ["e030", "e030-light"]


def test_unknown_photo_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown evaluation photo"):
        load_photos(["lena"])
    assert len(PHOTOS) == 8
