"""PSNR / SSIM: known answers, input handling, and agreement with scikit-image (test-only)."""

from __future__ import annotations

import numpy as np
import pytest

from sllen.metrics.psnr_ssim import PSNR_MAX_DB, gaussian_kernel1d, psnr, ssim

skimage_metrics = pytest.importorskip("skimage.metrics")
skimage_data = pytest.importorskip("skimage.data")


def _sk_ssim(a: np.ndarray, b: np.ndarray) -> float:
    return float(
        skimage_metrics.structural_similarity(
            a,
            b,
            channel_axis=-1,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            data_range=1.0,
        )
    )


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def test_psnr_constant_offset_is_20db(rng: np.random.Generator) -> None:
    target = rng.uniform(0.0, 0.9, size=(32, 48, 3))
    assert psnr(target + 0.1, target) == pytest.approx(20.0, abs=1e-9)


def test_psnr_data_range_scales_peak(rng: np.random.Generator) -> None:
    target = rng.uniform(0.0, 0.9, size=(8, 8, 3))
    assert psnr(target + 0.1, target, data_range=2.0) == pytest.approx(
        20.0 + 20.0 * np.log10(2.0), abs=1e-9
    )


def test_psnr_identical_is_capped(rng: np.random.Generator) -> None:
    img = rng.random((16, 16, 3))
    assert psnr(img, img) == PSNR_MAX_DB == 100.0
    tiny = img + 1e-12  # MSE ~1e-24 -> 240 dB, capped
    assert psnr(tiny, img) == PSNR_MAX_DB


def test_psnr_is_over_all_channels_not_per_channel_mean() -> None:
    target = np.zeros((4, 4, 3))
    pred = target.copy()
    pred[..., 0] = 0.1  # only red differs: MSE = 0.01 / 3
    assert psnr(pred, target) == pytest.approx(10 * np.log10(3 / 0.01), abs=1e-9)


def test_uint8_and_float_agree(rng: np.random.Generator) -> None:
    a8 = rng.integers(0, 256, size=(40, 30, 3), dtype=np.uint8)
    b8 = rng.integers(0, 256, size=(40, 30, 3), dtype=np.uint8)
    af, bf = a8 / 255.0, b8 / 255.0
    assert psnr(a8, b8) == pytest.approx(psnr(af, bf), abs=1e-12)
    assert psnr(a8, bf) == pytest.approx(psnr(af, bf), abs=1e-12)
    assert ssim(a8, b8) == pytest.approx(ssim(af, bf), abs=1e-12)
    assert ssim(af.astype(np.float32), b8) == pytest.approx(ssim(af, bf), abs=1e-6)


@pytest.mark.parametrize("metric", [psnr, ssim])
def test_input_validation(metric, rng: np.random.Generator) -> None:
    img = rng.random((16, 16, 3))
    with pytest.raises(ValueError, match="same shape"):
        metric(img, rng.random((16, 17, 3)))
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        metric(img[..., 0], img[..., 0])
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        metric(rng.random((16, 16, 4)), rng.random((16, 16, 4)))
    with pytest.raises(TypeError, match="uint8"):
        metric(img.astype(np.uint16), img)
    with pytest.raises(ValueError, match="data_range"):
        metric(img, img, data_range=0.0)


def test_gaussian_kernel_is_the_11_tap_sigma_1_5_window() -> None:
    k = gaussian_kernel1d()
    x = np.arange(-5, 6)
    expected = np.exp(-(x**2) / (2 * 1.5**2))
    np.testing.assert_allclose(k, expected / expected.sum(), rtol=0, atol=1e-15)


def test_ssim_identical_is_one(rng: np.random.Generator) -> None:
    img = rng.random((33, 47, 3))
    assert ssim(img, img) == pytest.approx(1.0, abs=1e-12)


def test_ssim_symmetric_and_bounded(rng: np.random.Generator) -> None:
    a, b = rng.random((24, 24, 3)), rng.random((24, 24, 3))
    assert ssim(a, b) == pytest.approx(ssim(b, a), abs=1e-12)
    assert -1.0 <= ssim(a, b) < 1.0


@pytest.mark.parametrize("shape", [(11, 11, 3), (12, 29, 3), (64, 80, 3), (150, 97, 3)])
def test_ssim_matches_skimage_random(shape: tuple[int, int, int], rng: np.random.Generator) -> None:
    a = rng.random(shape)
    b = np.clip(a + 0.15 * rng.standard_normal(shape), 0.0, 1.0)
    assert ssim(a, b) == pytest.approx(_sk_ssim(a, b), abs=1e-6)
    c = rng.random(shape)  # unrelated images, SSIM near 0
    assert ssim(a, c) == pytest.approx(_sk_ssim(a, c), abs=1e-6)


def test_ssim_matches_skimage_natural(rng: np.random.Generator) -> None:
    gt = skimage_data.astronaut()[60:316, 120:440] / 255.0  # 256 x 320 crop
    dark = (0.2 * gt) ** 1.3
    noisy = np.clip(gt + 0.05 * rng.standard_normal(gt.shape), 0.0, 1.0)
    q8 = np.round(noisy * 255) / 255
    for pred in (dark, noisy, q8):
        assert ssim(pred, gt) == pytest.approx(_sk_ssim(pred, gt), abs=1e-6)
    assert ssim(dark, gt) < ssim(noisy, gt) < 1.0


def test_ssim_too_small_raises(rng: np.random.Generator) -> None:
    with pytest.raises(ValueError, match="11x11"):
        ssim(rng.random((10, 40, 3)), rng.random((10, 40, 3)))


def test_ssim_filters_with_one_blas_thread(monkeypatch) -> None:
    # More BLAS threads spin against other busy processes (12x slower at 1080p beside two).
    from threadpoolctl import threadpool_limits

    from sllen.metrics import psnr_ssim

    def blas_threads() -> list[int]:
        # The BLAS libraries loaded when SSIM first ran (numpy's among them); later ones (e.g.
        # scipy's, loaded by scikit-image) are not numpy's and not limited.
        libs = psnr_ssim._blas_controller().info()
        return [lib["num_threads"] for lib in libs if lib["user_api"] == "blas"]

    seen: list[int] = []
    real = psnr_ssim._filter_valid

    def record(x, band, n):
        seen.extend(blas_threads())
        return real(x, band, n)

    monkeypatch.setattr(psnr_ssim, "_filter_valid", record)
    img = np.random.default_rng(0).random((32, 32, 3))
    with threadpool_limits(limits=2, user_api="blas"):
        value = psnr_ssim.ssim(img, img * 0.9)
        outside = blas_threads()
    assert seen and set(seen) == {1} and 0 < value < 1
    assert outside and set(outside) == {2}  # the limit ends with the call
