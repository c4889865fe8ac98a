"""The guided refinement (sllen.model.refine) and where the network runs it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sllen.config import get_preset
from sllen.model.io import load_weights, save_weights
from sllen.model.refine import GuidedRefine
from sllen.model.sllen import SLLEN


def box_np(x: np.ndarray, r: int) -> np.ndarray:
    """Mean over the (2r+1)^2 window inside the image, by brute force (H x W)."""
    h, w = x.shape
    out = np.empty_like(x)
    for i in range(h):
        for j in range(w):
            out[i, j] = x[max(0, i - r) : i + r + 1, max(0, j - r) : j + r + 1].mean()
    return out


def guided_np(low: np.ndarray, p: np.ndarray, r: int, eps: float) -> np.ndarray:
    """He et al.'s guided filter (Algorithm 1 of the TPAMI paper), guide = the input's grey
    level, eps scaled by each window's gain g (output over input brightness): the filter of
    the guide brought to the output's level; low, p: 3 x H x W."""
    guide = low.mean(0)
    mean_i = box_np(guide, r)
    var_i = box_np(guide * guide, r) - mean_i**2
    mean_p = np.stack([box_np(c, r) for c in p])
    g2 = (mean_p.mean(0) / np.maximum(mean_i, 1e-3)) ** 2
    out = np.empty_like(p)
    for c in range(3):
        a = g2 * (box_np(guide * p[c], r) - mean_i * mean_p[c]) / (g2 * var_i + eps)
        b = mean_p[c] - a * mean_i
        out[c] = box_np(a, r) * guide + box_np(b, r)
    return np.clip(out, 0.0, 1.0)


def half_np(x: np.ndarray) -> np.ndarray:
    """2x2 means (H x W, both even)."""
    h, w = x.shape
    return x.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))


def up_np(x: np.ndarray) -> np.ndarray:
    """Bilinear 2x upsampling on pixel centres, edges clamped (OpenCV's, or PyTorch's with
    align_corners=False), written out: rows, then columns."""

    def along(x: np.ndarray) -> np.ndarray:
        n = x.shape[0]
        src = np.clip((np.arange(2 * n) + 0.5) / 2 - 0.5, 0, n - 1)
        i0 = np.floor(src).astype(int)
        i1 = np.minimum(i0 + 1, n - 1)
        f = (src - i0)[:, None]
        return (1 - f) * x[i0] + f * x[i1]

    return along(along(x).T).T


def colour_np(low: np.ndarray, img: np.ndarray, r: int, eps: float, k: float) -> np.ndarray:
    """The colour stage written out: colour (RGB minus grey) fitted to the grey level in
    (2R+1)^2 windows of the 2x2-averaged image, R = r // 2, the fit's box-mean coefficients
    upsampled bilinearly and applied to the full-resolution grey; the rest kept by
    max(E - n^2, 0) / E, E its energy over 5x5 windows, n^2 = k^2 x gain^2 x the input's fine
    colour energy (colour minus its 3x3 mean), gain and energy taken in the same half-resolution
    windows and upsampled; low, img: 3 x H x W."""
    grey = img.mean(0)
    colour = img - grey
    colour_in = low - low.mean(0)
    fine = np.stack([ch - box_np(ch, 1) for ch in colour_in])
    y, y_in, e_in = half_np(grey), half_np(low.mean(0)), half_np((fine**2).sum(0))
    rr = r // 2
    my, mi = box_np(y, rr), box_np(y_in, rr)
    var = box_np(y * y, rr) - my**2
    fitted = np.empty_like(img)
    for c in range(3):
        ch = half_np(colour[c])
        mc = box_np(ch, rr)
        a = (box_np(y * ch, rr) - my * mc) / (var + eps)
        fitted[c] = up_np(box_np(a, rr)) * grey + up_np(box_np(mc - a * my, rr))
    rest = colour - fitted
    energy = box_np((rest**2).sum(0), 2)
    noise2 = up_np(k**2 * (my / np.maximum(mi, 1e-3)) ** 2 * box_np(e_in, rr))
    keep = np.maximum(energy - noise2, 0) / (energy + 1e-3 / 16**2)
    return np.clip(grey + fitted + keep * rest, 0.0, 1.0)


def blobs(shape: tuple[int, int], size: int, amp: float, seed: int) -> torch.Tensor:
    """Colour-only noise in blobs of about ``size`` pixels (grey level zero): mottle."""
    gen = torch.Generator().manual_seed(seed)
    h, w = shape
    coarse = torch.randn(1, 3, h // size, w // size, generator=gen)
    fine = torch.nn.functional.interpolate(coarse, size=(h, w), mode="bilinear")
    fine = fine - fine.mean(1, keepdim=True)
    return amp * fine / fine.std()


def test_matches_the_guided_filter_written_out() -> None:
    rng = np.random.default_rng(0)
    low = rng.random((3, 20, 23)) * 0.1
    p = rng.random((3, 20, 23))
    got = GuidedRefine(2, 3e-4)(torch.from_numpy(low)[None], torch.from_numpy(p)[None])[0]
    np.testing.assert_allclose(got.numpy(), guided_np(low, p, 2, 3e-4), atol=1e-9)


def test_output_that_follows_the_input_is_kept() -> None:
    # The network brightened a dark image 8x: the refinement must not change it.
    rng = np.random.default_rng(1)
    low = torch.from_numpy(rng.random((1, 1, 32, 32)) * 0.1).float().expand(1, 3, 32, 32)
    enhanced = low * 8
    out = GuidedRefine(2, 1e-6)(low, enhanced)
    torch.testing.assert_close(out, enhanced, atol=2e-4, rtol=0)


def test_colour_speckle_smaller_than_the_window_is_removed() -> None:
    # A smooth output with per-pixel colour noise and a flat grey input: the guide carries no
    # structure, so each channel becomes its local mean.
    gen = torch.Generator().manual_seed(0)
    base = torch.full((1, 3, 48, 48), 0.5)
    speckle = 0.05 * torch.randn(1, 3, 48, 48, generator=gen)
    speckle -= speckle.mean(1, keepdim=True)  # colour only, grey level unchanged
    low = torch.full((1, 3, 48, 48), 0.04)
    out = GuidedRefine(2, 3e-4)(low, base + speckle)
    assert (out - base).std() < (speckle.std() / 3)
    assert abs(float(out.mean() - base.mean())) < 1e-3


def test_input_noise_does_not_come_back_where_the_output_is_flat() -> None:
    # The guide is the noisy input, but a flat output does not correlate with its noise; the
    # borders stay flat too (box means count only the pixels inside the image).
    gen = torch.Generator().manual_seed(0)
    low = (0.04 + 0.02 * torch.randn(1, 3, 40, 40, generator=gen)).clamp(0, 1)
    flat = torch.full((1, 3, 40, 40), 0.5)
    torch.testing.assert_close(GuidedRefine(2, 3e-4)(low, flat), flat)


@pytest.mark.parametrize(
    "settings",
    [(0, 1e-3), (2, 0.0), (2, 1e-3, -1), (2, 1e-3, 1), (2, 1e-3, 8, 0.0), (2, 1e-3, 8, 1e-2, -1.0)],
)
def test_bad_settings_are_refused(settings) -> None:
    with pytest.raises(ValueError):
        GuidedRefine(*settings)


def test_colour_stage_refuses_odd_sizes() -> None:
    # it fits at half resolution; the network pads to its size multiple before
    low = torch.rand(1, 3, 15, 16)
    with pytest.raises(ValueError, match="even height and width"):
        GuidedRefine(2, 3e-4, 8)(low, low)
    assert GuidedRefine(2, 3e-4)(low, low).shape == low.shape


def test_colour_stage_matches_it_written_out() -> None:
    rng = np.random.default_rng(2)
    low = rng.random((3, 22, 26)) * 0.08
    img = np.clip(low.mean(0) * 8 + 0.1 * rng.standard_normal((3, 22, 26)), 0, 1)
    stage = GuidedRefine(2, 3e-4, 5, 1e-2, 0.25)
    low_t, img_t = torch.from_numpy(low)[None], torch.from_numpy(img)[None]
    got = stage._colour(low_t, img_t, low_t[:, :1] * 0 + 1)[0]
    np.testing.assert_allclose(got.numpy(), colour_np(low, img, 5, 1e-2, 0.25), atol=1e-9)


def test_colour_stage_removes_mottle_from_noisy_inputs_and_keeps_colour_of_clean_ones() -> None:
    # Colour blotches of ~4 pixels on a grey ramp: the 5x5 stage keeps most of them. From a
    # dark input with colour noise (brightened 20x) the colour stage removes most; from the
    # same input without noise, or a well-lit one, the blotches are detail and stay.
    ramp = torch.linspace(0.3, 0.7, 64).expand(1, 3, 64, 64)
    mottle = blobs((64, 64), 4, 0.04, seed=0)
    image = ramp + mottle
    gen = torch.Generator().manual_seed(1)
    speckle = 0.01 * torch.randn(1, 3, 64, 64, generator=gen)
    noisy = ramp / 20 + speckle - speckle.mean(1, keepdim=True)

    def colour_left(low: torch.Tensor, refine: GuidedRefine) -> float:
        out = refine(low, image)
        return float((out - out.mean(1, keepdim=True)).std() / mottle.std())

    assert colour_left(noisy, GuidedRefine(2, 3e-4)) > 0.6
    assert colour_left(noisy, GuidedRefine(2, 3e-4, 8)) < 0.35
    for clean in (ramp / 20, ramp):
        assert colour_left(clean, GuidedRefine(2, 3e-4, 8)) > 0.95 * colour_left(
            clean, GuidedRefine(2, 3e-4)
        )
    # the colour stage changes colour, not the grey level
    out = GuidedRefine(2, 3e-4, 8)(noisy, image)
    plain = GuidedRefine(2, 3e-4)(noisy, image)
    torch.testing.assert_close(out.mean(1), plain.mean(1), atol=1e-6, rtol=0)


def test_inference_only_and_where_configured() -> None:
    assert get_preset("paper").refine_radius == 0  # the paper's network as published
    assert get_preset("edge").refine_radius == 2
    assert get_preset("edge").refine_chroma_radius == 8
    torch.manual_seed(0)
    net = SLLEN(get_preset("tiny", refine_radius=2))
    refine = net.refine
    assert refine is not None
    x = torch.rand(1, 3, 32, 32) * 0.1

    def image(training: bool, with_refine: bool) -> torch.Tensor:
        net.train(training)
        net.refine = refine if with_refine else None
        with torch.no_grad():
            return net.forward_all(x, with_segmentation=False).image

    # Training (what the losses see): the network's own output.
    assert torch.equal(image(True, True), image(True, False))
    # Inference: refined, with the input as the guide.
    raw = image(False, False)
    served = image(False, True)
    torch.testing.assert_close(served, refine(x, raw))
    assert not torch.allclose(served, raw)


def test_weights_without_the_field_load_into_a_refining_model(tmp_path) -> None:
    # A file saved before the refinement existed (or with it off) fine-tunes / resumes into a
    # preset that has it: the field holds no tensors.
    old = SLLEN(get_preset("tiny"))
    path = save_weights(old, tmp_path / "old.safetensors")
    want = get_preset("tiny", refine_radius=2)
    model = load_weights(path, expected=want)
    assert model.config == want and model.refine is not None
    for k, v in old.state_dict().items():
        assert torch.equal(model.state_dict()[k], v)
