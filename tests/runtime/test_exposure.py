"""--exposure: a gain in linear light, in stops, on the enhanced image."""

from __future__ import annotations

import numpy as np
import pytest

from sllen.runtime.api import EnhancerSpec
from sllen.runtime.errors import InputError
from sllen.runtime.exposure import (
    apply_table,
    check_exposure,
    exposure_table,
    linear_to_srgb,
    srgb_to_linear,
)

LEVELS = np.linspace(0.0, 1.0, 257, dtype=np.float32)


def test_srgb_round_trip() -> None:
    assert np.allclose(linear_to_srgb(srgb_to_linear(LEVELS)), LEVELS, atol=1e-6)
    assert srgb_to_linear(np.float64(0.5)) == pytest.approx(0.21404, abs=1e-5)  # sRGB's own


def test_zero_stops_changes_nothing() -> None:
    assert np.abs(apply_table(LEVELS, exposure_table(0.0)) - LEVELS).max() <= 0.5 / 65535 + 1e-7


@pytest.mark.parametrize("ev", [-2.0, -1.0, -0.5, 0.5, 1.0])
def test_a_stop_scales_linear_light(ev: float) -> None:
    out = apply_table(LEVELS, exposure_table(ev))
    want = np.minimum(srgb_to_linear(LEVELS) * 2.0**ev, 1.0)
    assert np.allclose(srgb_to_linear(out), want, atol=2e-4)  # a 16-bit level's step
    assert np.all(np.diff(out) >= 0)  # order of brightness kept


def test_plus_stops_clip_highlights_and_keep_black() -> None:
    out = apply_table(np.array([0.0, 0.9, 1.0], np.float32), exposure_table(1.0))
    assert out[0] == 0.0 and out[1] == out[2] == pytest.approx(1.0)


def test_a_grey_stays_grey() -> None:
    pixel = np.full((2, 2, 3), 0.3, np.float32)
    out = apply_table(pixel, exposure_table(-1.0))
    assert np.ptp(out) == 0.0 and out.dtype == np.float32


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), 4.5, -7.0])
def test_unusable_exposure_is_an_input_error(bad: float) -> None:
    with pytest.raises(InputError, match="--exposure must be between -4 and 4 stops"):
        check_exposure(bad)
    with pytest.raises(InputError, match="--exposure"):
        EnhancerSpec(exposure=bad)  # refused before any model is opened
