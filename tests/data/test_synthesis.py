"""Low-light synthesis: known answers in linear light, determinism, quantisation, the light map."""

import json
import math

import numpy as np
import pytest

from sllen.data.scenes import generate_scene
from sllen.data.synthesis import (
    Darkening,
    Illumination,
    Light,
    SynthesisParams,
    darken,
    illumination_map,
    linear_to_srgb,
    sample_params,
    srgb_to_linear,
    synthesize_low,
)


def _image(seed=0, size=64):
    return generate_scene(np.random.default_rng(seed), size, size)[0]


def _is_quantised(img):
    return np.array_equal(img * 255, np.round(img * 255))


def test_srgb_transfer_known_values_and_inverse():
    known = srgb_to_linear(np.array([0.0, 0.04045, 0.5, 1.0]))
    np.testing.assert_allclose(known, [0.0, 0.04045 / 12.92, 0.214041, 1.0], rtol=1e-5)
    x = np.linspace(0, 1, 1001, dtype=np.float32)
    np.testing.assert_allclose(linear_to_srgb(srgb_to_linear(x)), x, atol=2e-6)


@pytest.mark.parametrize("exposure", [0.02, 0.05, 0.2])
def test_uniform_darkening_scales_linear_light_by_the_exposure(exposure):
    img = _image()
    cfg = SynthesisParams.fixed(exposure=exposure, inhomogeneous=False, noise=False)
    low, params = synthesize_low(img, 1, cfg)
    assert params["exposure"] == exposure and params["photons"] is None
    ratio = srgb_to_linear(low).mean() / srgb_to_linear(img).mean()
    assert ratio == pytest.approx(exposure, rel=0.01)
    assert low.mean() < img.mean()


def test_same_seed_same_output_and_different_seed_differs():
    img = _image()
    a, pa = synthesize_low(img, 7)
    b, pb = synthesize_low(img, np.random.default_rng(7))
    c, _ = synthesize_low(img, 8)
    np.testing.assert_array_equal(a, b)
    assert pa == pb
    assert not np.array_equal(a, c)


def test_output_is_quantised_float32_in_range():
    img = _image(size=48)
    for seed in range(5):
        low, _ = synthesize_low(img, seed)
        assert low.dtype == np.float32 and low.shape == img.shape
        assert low.min() >= 0 and low.max() <= 1
        assert _is_quantised(low)


def test_params_dict_is_json_serialisable():
    _, params = synthesize_low(_image(size=16), 3, SynthesisParams(inhomogeneous_prob=1.0))
    assert json.loads(json.dumps(params))["illumination"]["lights"]


def test_sampled_params_stay_in_their_ranges():
    cfg = SynthesisParams()
    rng = np.random.default_rng(0)
    draws = [sample_params(rng, cfg) for _ in range(300)]
    exposures = np.array([d.exposure for d in draws])
    assert exposures.min() >= 0.02 and exposures.max() <= 0.25
    # log-uniform: about half the draws below the geometric mean
    assert 0.4 < np.mean(exposures < math.sqrt(0.02 * 0.25)) < 0.6
    gains = np.array([d.gains for d in draws])
    assert gains.min() >= 0.9 and gains.max() <= 1.1
    photons = np.array([d.photons for d in draws])
    assert photons.min() >= 1 / 1.2e-2 - 1e-6 and photons.max() <= 1e4 + 1e-6
    assert all(0 < d.read_std < 0.1 for d in draws)
    assert 0.4 < np.mean([d.illumination is not None for d in draws]) < 0.6


def test_switching_noise_off_leaves_the_other_draws_unchanged():
    on = sample_params(np.random.default_rng(5), SynthesisParams(noise_prob=1.0))
    off = sample_params(np.random.default_rng(5), SynthesisParams(noise_prob=0.0))
    assert off.photons is None and on.photons is not None
    assert (on.exposure, on.gains, on.illumination) == (off.exposure, off.gains, off.illumination)


def test_noise_matches_the_poisson_gaussian_model():
    img = np.full((256, 256, 3), 0.8, dtype=np.float32)
    photons, read_std, exposure = 100.0, 0.01, 0.25
    params = Darkening(exposure=exposure, photons=photons, read_std=read_std)
    low = darken(img, params, np.random.default_rng(0))
    lin = srgb_to_linear(low)
    signal = float(srgb_to_linear(np.float32(0.8))) * exposure
    assert lin.mean() == pytest.approx(signal, rel=0.02)
    assert lin.var() == pytest.approx(signal / photons + read_std**2, rel=0.1)


def test_illumination_map_is_smooth_and_in_unit_interval():
    rng = np.random.default_rng(0)
    for _ in range(20):
        spec = sample_params(rng, SynthesisParams(inhomogeneous_prob=1.0)).illumination
        m = illumination_map(96, 128, spec)
        assert m.shape == (96, 128) and m.dtype == np.float32
        assert m.min() > 0 and m.max() == pytest.approx(1.0)
        step = max(np.abs(np.diff(m, axis=0)).max(), np.abs(np.diff(m, axis=1)).max())
        assert step < 0.05  # no edges: a few percent per pixel at most


def test_illumination_map_does_not_depend_on_resolution():
    spec = Illumination(ambient=0.1, lights=(Light(0.3, 0.7, 0.2, 1.0),), ramp=0.3, angle=1.0)
    small, big = illumination_map(32, 32, spec), illumination_map(128, 128, spec)
    np.testing.assert_allclose(small, big[1::4, 1::4], atol=0.02)
    steep = Illumination(ambient=0.1, lights=(), ramp=5.0, angle=0.0)
    assert illumination_map(16, 16, steep).min() > 0


def test_inhomogeneous_light_darkens_beyond_the_exposure():
    img = _image()
    flat, _ = synthesize_low(img, 2, SynthesisParams.fixed(0.2, inhomogeneous=False, noise=False))
    lit, p = synthesize_low(img, 2, SynthesisParams.fixed(0.2, inhomogeneous=True, noise=False))
    assert p["illumination"] is not None
    assert np.all(lit <= flat + 1 / 255 + 1e-6)
    assert lit.mean() < flat.mean()


def test_invalid_settings_are_refused():
    for bad in (
        {"exposure_range": (0.3, 0.1)},
        {"fixed_exposure": 0.0},
        {"color_shift": 1.5},
        {"num_lights": (0, 2)},
        {"shot_range": (0.0, 1.0)},
    ):
        with pytest.raises(ValueError):
            SynthesisParams(**bad)
    with pytest.raises(ValueError, match="HxWx3"):
        darken(np.zeros((4, 4)), Darkening(exposure=0.1), np.random.default_rng(0))
