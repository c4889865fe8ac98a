"""--well-exposed keep: a frame already exposed passes through, a dark one gets the model's
result, one weight per whole frame (from its mean in linear light), a crossfade between.

The backend is test_enhancer.py's fake (tests/fakes/affine_backend.py: x -> x * 0.5 + 0.25):
this tests the blend and where the Enhancer applies it, not a model.
"""

from __future__ import annotations

import numpy as np
import pytest
from affine_backend import Recorder

from sllen.runtime.enhancer import Enhancer
from sllen.runtime.errors import InputError
from sllen.runtime.exposure import linear_to_srgb
from sllen.runtime.well_exposed import (
    HIGH,
    LOW,
    blend,
    check_mode,
    keep_weight,
    keep_well_exposed,
    mean_linear_luminance,
)


def grey(linear: float, shape: tuple[int, int] = (48, 64), spread: float = 0.02) -> np.ndarray:
    """A textured sRGB frame whose mean linear luminance is about `linear`."""
    rng = np.random.default_rng(0)
    lin = np.clip(linear * (1 + spread * rng.standard_normal((*shape, 3))), 0, 1)
    return linear_to_srgb(lin).astype(np.float32)


def test_weight_is_zero_when_dark_one_when_exposed_and_smooth_between() -> None:
    assert keep_weight(0.0) == 0.0 and keep_weight(LOW) == 0.0
    assert keep_weight(HIGH) == 1.0 and keep_weight(0.9) == 1.0
    between = [keep_weight(LOW + (HIGH - LOW) * t) for t in np.linspace(0, 1, 21)]
    assert all(b > a for a, b in zip(between, between[1:], strict=False))
    assert keep_weight((LOW + HIGH) / 2) == pytest.approx(0.5)


def test_mean_linear_luminance_reads_middle_grey() -> None:
    assert mean_linear_luminance(grey(0.18)) == pytest.approx(0.18, rel=0.01)
    assert mean_linear_luminance(grey(0.01, (1080, 1920))) == pytest.approx(0.01, rel=0.02)
    # linear, not the mean of the sRGB values: mid-grey sRGB 0.5 is 0.214 in linear light
    assert mean_linear_luminance(np.full((8, 8, 3), 0.5, np.float32)) == pytest.approx(
        0.214, abs=1e-3
    )


def test_blend_crossfades_and_passes_the_ends_through() -> None:
    rng = np.random.default_rng(1)
    src = rng.random((4, 5, 3)).astype(np.float32)
    out = rng.random((4, 5, 3)).astype(np.float32)
    before = (src.copy(), out.copy())
    assert blend(src, out, 0.0) is out
    assert np.array_equal(blend(src, out, 1.0), src)
    mixed = blend(src, out, 0.25)
    assert mixed.dtype == np.float32
    assert np.allclose(mixed, 0.25 * src + 0.75 * out, atol=1e-6)
    assert np.array_equal(src, before[0]) and np.array_equal(out, before[1])  # not in place


def test_an_exposed_frame_passes_through_and_a_dark_one_is_enhanced() -> None:
    bright, dark = grey(0.25), grey(0.01)
    out = Enhancer(Recorder()).enhance([bright, dark])
    assert np.array_equal(out[0].image, bright)  # already exposed: the input itself
    assert np.allclose(out[1].image, dark * 0.5 + 0.25, atol=1e-6)  # the model's result
    between = grey((LOW + HIGH) / 2)
    (mid,) = Enhancer(Recorder()).enhance([between])
    w = keep_weight(mean_linear_luminance(between))
    assert 0.3 < w < 0.7
    assert np.allclose(mid.image, blend(between, between * 0.5 + 0.25, w), atol=1e-6)
    assert between.mean() < mid.image.mean() < (between * 0.5 + 0.25).mean()


def test_enhance_mode_always_gives_the_models_result() -> None:
    bright = grey(0.25)
    (out,) = Enhancer(Recorder(), well_exposed="enhance").enhance([bright])
    assert np.allclose(out.image, bright * 0.5 + 0.25, atol=1e-6)


def test_one_weight_for_the_whole_frame_when_it_is_tiled() -> None:
    # A frame dark on the left, exposed on the right, tiled into pieces: the weight is the
    # whole frame's, so no tile switches on its own (no seams between tiles).
    f = np.concatenate([grey(0.005, (128, 160)), grey(0.3, (128, 160))], axis=1)
    (out,) = Enhancer(Recorder(max_pixels=64 * 64)).enhance([f])
    (whole,) = Enhancer(Recorder(), well_exposed="enhance").enhance([f])
    w = keep_weight(mean_linear_luminance(f))
    assert 0 < w < 1
    assert np.allclose(out.image, blend(f, whole.image, w), atol=1e-5)
    assert np.allclose(keep_well_exposed(f, whole.image), out.image, atol=1e-5)


def test_unknown_mode_is_a_one_line_input_error() -> None:
    from sllen.runtime.api import EnhancerSpec

    assert check_mode("keep") == "keep"
    with pytest.raises(InputError, match="--well-exposed must be 'keep' or 'enhance'"):
        check_mode("auto")
    with pytest.raises(InputError, match="--well-exposed"):
        EnhancerSpec(well_exposed="sometimes")  # refused before any model is opened
    with pytest.raises(InputError, match="--well-exposed"):
        Enhancer(Recorder(), well_exposed="off")


def test_a_clips_weight_follows_its_light_not_each_frame() -> None:
    from sllen.runtime.well_exposed import KEEP_TIME_CONSTANT, ClipKeepWeight

    clip = ClipKeepWeight(fps=30)
    mid = (LOW + HIGH) / 2
    assert clip(mid) == pytest.approx(keep_weight(mid))  # the first frame: its own weight
    # one frame 20 % brighter moves the weight by about a thirtieth of what it alone would
    jump = clip(mid * 1.2) - keep_weight(mid)
    assert 0 < jump < (keep_weight(mid * 1.2) - keep_weight(mid)) / 20
    # a lasting change (a room's light switched on) is followed within a few time constants
    for _ in range(int(4 * KEEP_TIME_CONSTANT * 30)):
        w = clip(0.5)
    assert w == pytest.approx(1.0, abs=0.02)
    clip.reset()
    assert clip(0.01) == 0.0
    # a frame 1.5 times brighter or darker than the one before starts afresh (a cut from a
    # dark shot to a lit one came out near white for two seconds)
    assert clip(0.2) == 1.0 and clip(0.01) == 0.0


def test_a_new_frame_size_starts_the_clips_weight_afresh() -> None:
    from sllen.runtime import FrameEnhancer

    clip = FrameEnhancer(Enhancer(Recorder()), fps=30)
    clip.smoother = None
    for _ in range(30):
        clip.enhance_float([grey(0.1, (32, 32))])
    lit = grey(0.13, (40, 48))  # not 1.5x: only the size says it is another scene
    ((out, _),) = clip.enhance_float([lit])
    ((alone, _),) = FrameEnhancer(Enhancer(Recorder())).enhance_float([lit])
    assert np.allclose(out, alone, atol=1e-6)


def test_a_flickering_video_inside_the_crossfade_is_not_inverted() -> None:
    # Walkthrough M: a timelapse frame 18 % brighter came out 9 % darker. Frame by frame the
    # crossfade moves to the (darker) input as the frame brightens; a clip's weight steadied
    # over time lets the model's result follow the frame. The fake model lifts as the real
    # one does: to about LOL's brightness (linear mean 0.25 on eval15), the input's texture
    # and a little of its level kept.
    from sllen.runtime import FrameEnhancer

    class Lifts(Recorder):
        def _infer(self, x: np.ndarray, segmentation: bool):  # type: ignore[no-untyped-def]
            from sllen.runtime.backends.base import Outputs

            return Outputs(np.clip(x * 0.3 + 0.45, 0, 1))

    levels = [0.1, 0.1, 0.1, 0.12, 0.1, 0.12, 0.1]  # linear: flicker inside LOW..HIGH
    frames = [grey(v) for v in levels]

    def output_means(fps: float | None) -> list[float]:
        clip = FrameEnhancer(Enhancer(Lifts()), fps=fps, smooth=False if fps is None else None)
        clip.smoother = None  # the brightness smoothing apart: this is the crossfade alone
        return [mean_linear_luminance(image) for image, _ in clip.enhance_float(frames)]

    alone, steadied = output_means(None), output_means(30)
    ups = [i for i in range(1, len(levels)) if levels[i] > levels[i - 1]]
    assert all(alone[i] < alone[i - 1] for i in ups), alone  # the fault, frame by frame
    assert all(steadied[i] > steadied[i - 1] for i in ups), steadied
