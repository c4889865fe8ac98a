"""Raw-domain camera degradation: stages with known answers, noise statistics, determinism."""

import dataclasses
import json

import numpy as np
import pytest

from sllen.data.camera import (
    CameraParams,
    add_sensor_noise,
    bayer_masks,
    camera_darken,
    chroma_denoise,
    demosaic_bilinear,
    inverse_tone_curve,
    jpeg_roundtrip,
    mosaic,
    process,
    quantize_raw,
    sample_camera,
    smooth_noise,
    synthesize_camera_low,
    tone_curve,
    unprocess,
)
from sllen.data.scenes import generate_scene
from sllen.data.synthesis import (
    SynthesisParams,
    darken,
    sample_params,
    srgb_to_linear,
    synthesize_low,
)
from sllen.runtime.errors import InputError


def _image(seed: int = 0, size: int = 64) -> np.ndarray:
    return generate_scene(np.random.default_rng(seed), size, size)[0]


def _clean(seed: int = 1, **changes):
    """A drawn camera with every noise source, the light map and JPEG switched off."""
    draw = sample_camera(np.random.default_rng(seed))
    base = dict(
        exposure=1.0,
        illumination=None,
        shot=1e-12,
        read_std=0.0,
        row_std=0.0,
        chroma_std=0.0,
        chroma_nr_sigma=0.0,
        jpeg_quality=0,
        wb_estimate=draw.wb_gains,
        bits=16,
    )
    base.update(changes)
    return dataclasses.replace(draw, **base)


def test_output_shape_dtype_range_and_8bit_steps():
    low, info = synthesize_camera_low(_image(size=48), 3)
    assert low.shape == (48, 48, 3) and low.dtype == np.float32
    assert 0.0 <= low.min() and low.max() <= 1.0
    assert np.array_equal(low * 255, np.round(low * 255))
    json.dumps(info)  # the description is plain data
    assert info["gain"] >= 1.0 and info["exposure"] > 0


def test_same_seed_same_result_other_seed_differs():
    img = _image()
    a, pa = synthesize_camera_low(img, 7)
    b, pb = synthesize_camera_low(img, 7)
    c, _ = synthesize_camera_low(img, 8)
    assert np.array_equal(a, b) and pa == pb
    assert not np.array_equal(a, c)


def test_mosaic_is_rggb_and_masks_partition_the_sites():
    rgb = np.zeros((4, 6, 3), dtype=np.float32)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 1.0, 2.0, 3.0
    raw = mosaic(rgb)
    expected = np.array([[1, 2], [2, 3]], dtype=np.float32)
    assert np.array_equal(raw, np.tile(expected, (2, 3)))
    masks = bayer_masks(4, 6)
    assert np.array_equal(masks.sum(axis=2), np.ones((4, 6)))
    assert masks[..., 1].mean() == 0.5  # half the sites are green


def test_bilinear_demosaic_is_exact_on_flat_colour_and_ramps():
    flat = np.broadcast_to(np.array([0.2, 0.5, 0.7], np.float32), (9, 10, 3)).copy()
    np.testing.assert_allclose(demosaic_bilinear(mosaic(flat)), flat, atol=1e-6)
    ramp = np.repeat(np.linspace(0, 1, 10, dtype=np.float32)[None, :, None], 8, 0)
    ramp = np.repeat(ramp, 3, axis=2)
    out = demosaic_bilinear(mosaic(ramp))
    np.testing.assert_allclose(out[:, 1:-1], ramp[:, 1:-1], atol=1e-6)  # linear in x
    with pytest.raises(InputError):
        demosaic_bilinear(np.zeros((1, 5), np.float32))


def test_tone_curve_inverse():
    x = np.linspace(0, 1, 257, dtype=np.float32)
    for s in (0.0, 0.5, 1.0):
        np.testing.assert_allclose(inverse_tone_curve(tone_curve(x, s), s), x, atol=2e-3)


def test_unprocess_then_process_without_noise_gives_the_image_back():
    flat = np.broadcast_to(np.array([0.3, 0.45, 0.6], np.float32), (16, 16, 3)).copy()
    draw = _clean()
    raw = mosaic(unprocess(flat, draw))
    np.testing.assert_allclose(process(raw, draw), flat, atol=2e-3)
    # unprocessed scenes are what the colour filters see: no longer the sRGB values
    assert not np.allclose(unprocess(flat, draw), flat, atol=0.05)


def test_noise_variance_grows_with_signal_and_gain():
    rng = np.random.default_rng(0)
    draw = _clean(shot=1e-3, read_std=0.01)
    var = []
    for level in (0.0, 0.1, 0.4):
        raw = np.full((128, 128), level, np.float32)
        var.append(float(add_sensor_noise(raw, draw, rng).var()))
    assert var[0] < var[1] < var[2]
    # heteroscedastic: var = shot * signal + read**2 (within sampling error)
    np.testing.assert_allclose(var[2], 1e-3 * 0.4 + 1e-4, rtol=0.05)
    # auto-exposure: darker scenes get more gain, and gain raises read and shot noise
    dark = CameraParams(scene_light=(1e-3, 1e-3), ae_target=(0.1, 0.1), max_gain=(64, 64))
    bright = dataclasses.replace(dark, scene_light=(0.05, 0.05))
    d, b = (
        sample_camera(np.random.default_rng(1), dark),
        sample_camera(np.random.default_rng(1), bright),
    )
    assert d.gain > b.gain >= 1.0 and d.read_std > b.read_std and d.shot > b.shot
    assert d.exposure == pytest.approx(0.064) and b.exposure == pytest.approx(0.1)


def test_row_noise_bands_rows_and_chroma_noise_is_low_frequency():
    rng = np.random.default_rng(0)
    raw = np.full((128, 128), 0.2, np.float32)
    banded = add_sensor_noise(raw, _clean(row_std=0.02), rng)
    assert banded.mean(axis=1).std() > 5 * banded.mean(axis=0).std()
    field = smooth_noise(rng, 128, 128, cell=16)
    # neighbours nearly equal, channels independent: colour blotches, not speckle
    assert np.corrcoef(field[:, :-1, 0].ravel(), field[:, 1:, 0].ravel())[0, 1] > 0.95
    assert abs(np.corrcoef(field[..., 0].ravel(), field[..., 2].ravel())[0, 1]) < 0.5


def test_raw_quantisation_keeps_noise_below_black_and_clips_white():
    x = np.array([-0.01, 0.0, 0.5, 1.2], np.float32)
    q = quantize_raw(x, 10, 0.0625)
    assert q[0] < 0 and q[1] == 0 and q[3] == 1.0
    step = 1.0 / (1023 - 64)
    assert abs(q[2] - 0.5) <= step / 2 + 1e-6


def test_chroma_denoise_keeps_luma_and_smooths_colour():
    rng = np.random.default_rng(0)
    img = np.clip(0.5 + rng.normal(0, 0.05, (32, 32, 3)), 0, 1).astype(np.float32)
    out = chroma_denoise(img, 2.0)
    luma = np.array([0.299, 0.587, 0.114], np.float32)
    np.testing.assert_allclose(out @ luma, img @ luma, atol=1e-5)
    assert (out - (out @ luma)[..., None]).std() < 0.5 * (img - (img @ luma)[..., None]).std()


def test_jpeg_path():
    img = _image(size=32)
    out = jpeg_roundtrip(img, 90)
    assert out.shape == img.shape and out.dtype == np.float32
    assert np.abs(out - img).mean() < 0.03
    draw = sample_camera(np.random.default_rng(2))
    lossless = dataclasses.replace(draw, jpeg_quality=0)
    jpeg = dataclasses.replace(draw, jpeg_quality=60)
    a = camera_darken(img, lossless, np.random.default_rng(0))
    b = camera_darken(img, jpeg, np.random.default_rng(0))
    assert not np.array_equal(a, b) and np.abs(a - b).mean() < 0.05


def test_exposure_lands_in_the_dark_range_and_adds_colour_speckle():
    img = np.full((64, 64, 3), 0.5, np.float32)  # flat grey: any colour is noise
    exposures, chroma = [], []
    for seed in range(30):
        low, info = synthesize_camera_low(img, seed)
        exposures.append(info["exposure"])
        chroma.append(float((low - low.mean(axis=2, keepdims=True)).std()))
    assert 0.001 < min(exposures) and max(exposures) <= 0.2 + 1e-9
    assert np.median(chroma) > 0.003  # colour noise on a grey wall, as in real night shots


def test_synthesis_degradation_switch():
    img = _image(size=32)
    cam, info = synthesize_low(img, 5, SynthesisParams(degradation="camera"))
    assert info["degradation"] == "camera" and cam.shape == img.shape
    # the simple path's random stream is what it was before the switch existed
    rng = np.random.default_rng(5)
    expected = darken(img, sample_params(rng), rng)
    assert np.array_equal(synthesize_low(img, 5)[0], expected)
    kinds = {
        synthesize_low(img, s, SynthesisParams(degradation="mixed"))[1].get("degradation")
        for s in range(12)
    }
    assert kinds == {"camera", None}
    with pytest.raises(InputError):
        SynthesisParams(degradation="phone")  # type: ignore[arg-type]
    with pytest.raises(InputError):
        CameraParams(max_gain=(0.5, 2.0))


def test_camera_share_sets_the_mix_and_the_default_is_unchanged():
    img = _image(size=16)

    def kinds(share: float) -> list[str | None]:
        cfg = SynthesisParams(degradation="mixed", camera_share=share)
        return [synthesize_low(img, s, cfg)[1].get("degradation") for s in range(40)]

    assert set(kinds(0.0)) == {None} and set(kinds(1.0)) == {"camera"}
    half = kinds(0.5).count("camera")
    assert 10 <= half <= 30 and half < kinds(0.75).count("camera")
    # the default draws as before the option existed: one coin, then the chosen path's draws
    for seed in range(6):
        rng = np.random.default_rng(seed)
        if rng.random() < 0.75:
            expected = synthesize_camera_low(img, rng)[0]
        else:
            expected = darken(img, sample_params(rng), rng)
        got = synthesize_low(img, seed, SynthesisParams(degradation="mixed"))[0]
        assert np.array_equal(got, expected), seed
    with pytest.raises(InputError):
        SynthesisParams(degradation="mixed", camera_share=1.5)


def test_bright_share_gives_well_lit_captures_and_the_default_is_unchanged():
    img = _image(size=32)
    for degradation in ("simple", "camera", "mixed"):
        dark = SynthesisParams(degradation=degradation)  # type: ignore[arg-type]
        bright = SynthesisParams(degradation=degradation, bright_share=1.0)  # type: ignore[arg-type]
        # share 0 draws no coin: the stream (and every model trained with it) is as it was
        zero = SynthesisParams(degradation=degradation, bright_share=0.0)  # type: ignore[arg-type]
        for seed in range(3):
            a, da = synthesize_low(img, seed, dark)
            b, db = synthesize_low(img, seed, zero)
            assert np.array_equal(a, b) and da == db and "bright" not in da
        draws = [synthesize_low(img, s, bright) for s in range(12)]
        assert all(d["bright"] for _, d in draws)
        # 0.25-1 of a proper exposure against at least 2 stops under: brighter on average
        assert min(d["exposure"] for _, d in draws) >= 0.25 * 0.999
        dark_mean = np.mean([synthesize_low(img, s, dark)[0].mean() for s in range(12)])
        assert np.mean([low.mean() for low, _ in draws]) > 2.0 * dark_mean
    half = SynthesisParams(degradation="mixed", bright_share=0.5)
    count = sum("bright" in synthesize_low(img, s, half)[1] for s in range(40))
    assert 10 <= count <= 30
    # the simple path's well-lit captures are taken at low gain: less shot noise
    lo, hi = SynthesisParams().shot_range
    shots = [
        1.0 / synthesize_low(img, s, SynthesisParams(bright_share=1.0))[1]["photons"]
        for s in range(12)
    ]
    assert max(shots) <= (lo * hi) ** 0.5 * 1.001
    for bad in (-0.1, 1.5):
        with pytest.raises(InputError, match="bright_share"):
            SynthesisParams(bright_share=bad)
    with pytest.raises(InputError, match="bright_range"):
        SynthesisParams(bright_range=(0.5, 2.0))


def test_black_point_sends_the_shadows_to_black_and_the_default_is_unchanged():
    img = _image(size=32)
    # off (the default) draws nothing: the stream, and every model trained on it, is unchanged
    plain = sample_camera(np.random.default_rng(3))
    off = sample_camera(np.random.default_rng(3), CameraParams(black_point=(0.0, 0.0)))
    assert plain == off and plain.black_point == 0.0
    on = sample_camera(np.random.default_rng(3), CameraParams(black_point=(3.0, 6.0)))
    assert dataclasses.replace(on, black_point=0.0) == plain
    assert 3.0 * plain.read_std <= on.black_point <= 6.0 * plain.read_std
    # without noise, each linear value v becomes (v - black) / (1 - black), clipped, before
    # gamma and the tone curve: shadows to black, white kept, the rest stretched in between
    clean, black = _clean(tone_strength=0.0), 0.02
    flat = np.broadcast_to(np.linspace(0.0, 1.0, 16, dtype=np.float32)[:, None, None], (16, 16, 3))
    raw = mosaic(unprocess(flat.copy(), clean))
    base = srgb_to_linear(process(raw, clean))
    crushed = srgb_to_linear(process(raw, dataclasses.replace(clean, black_point=black)))
    np.testing.assert_allclose(crushed, np.clip((base - black) / (1 - black), 0, 1), atol=1e-5)
    assert crushed[1].max() == 0.0 and crushed[0].max() == 0.0 < base[1].min()
    # on a noisy capture the darkest tenth of the scene comes out darker with it
    draw = dataclasses.replace(sample_camera(np.random.default_rng(5)), illumination=None)
    lows = [
        camera_darken(img, dataclasses.replace(draw, black_point=b), np.random.default_rng(0))
        for b in (0.0, 4.0 * draw.read_std)
    ]
    dark = img.mean(axis=2) <= np.quantile(img.mean(axis=2), 0.1)
    assert lows[1][dark].mean() < lows[0][dark].mean()
    for bad in ((2.0, 1.0), (-1.0, 1.0), (1.0, 21.0)):
        with pytest.raises(InputError, match="black_point"):
            CameraParams(black_point=bad)


def test_black_point_reaches_the_camera_pipeline_through_synthesis():
    img = _image(size=16)
    cfg = SynthesisParams(degradation="camera", black_point=6.0)
    draws = [synthesize_low(img, s, cfg)[1] for s in range(6)]
    assert all(3.0 * d["read_std"] <= d["black_point"] <= 6.0 * d["read_std"] for d in draws)
    assert synthesize_low(img, 0, SynthesisParams(degradation="camera"))[1]["black_point"] == 0.0
    # the well-lit camera keeps its own ranges and gets the black point too
    both = SynthesisParams(degradation="camera", black_point=6.0, bright_share=1.0)
    d = synthesize_low(img, 1, both)[1]
    assert d["bright"] and d["black_point"] > 0.0
    for bad in (-1.0, 21.0, float("nan")):
        with pytest.raises(InputError, match="black_point"):
            SynthesisParams(black_point=bad)
