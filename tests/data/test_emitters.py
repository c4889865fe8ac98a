"""Light sources in generated pairs (sllen.data.emitters, --emitters)."""

from __future__ import annotations

import numpy as np
import pytest

from sllen.data.emitters import EmitterLayer, add_emitters, emitter_layer
from sllen.data.procedural import SyntheticPairDataset
from sllen.data.synthesis import SynthesisParams


def test_a_layer_holds_clipping_cores_and_fading_glows() -> None:
    core, glow = emitter_layer(np.random.default_rng(3), 96, 128)
    layer = core + glow
    assert layer.shape == (96, 128, 3) and layer.dtype == np.float32
    assert layer.min() >= 0 and core.max() >= 1.2  # a core clips: at least 1.2 times white
    assert 0 < glow.max() <= 0.03 * 6 and (glow > 1e-4).sum() > (core > 1e-4).sum()
    grey = layer.mean(axis=2)
    assert (grey > 0.5).mean() < 0.2  # small lights, not a lit frame
    assert np.median(grey) < 0.05


def test_both_images_get_the_same_light_and_the_low_stays_8_bit() -> None:
    rng = np.random.default_rng(0)
    low = np.round(rng.uniform(0, 0.1, (64, 80, 3)) * 255) / 255
    high = rng.uniform(0.3, 0.7, (64, 80, 3))
    core = np.zeros((64, 80, 3), np.float32)
    core[30:34, 40:44] = 2.0  # one clipped core
    layer = EmitterLayer(core, np.zeros_like(core))
    new_low, new_high = add_emitters(low.astype(np.float32), high.astype(np.float32), layer)
    assert np.allclose(new_low * 255, np.round(new_low * 255), atol=1e-4)
    assert np.allclose(new_low[30:34, 40:44], 1.0) and np.allclose(new_high[30:34, 40:44], 1.0)
    outside = np.ones((64, 80), bool)
    outside[30:34, 40:44] = False
    assert np.allclose(new_low[outside], low[outside], atol=1e-6)  # nothing else moved
    assert np.allclose(new_high[outside], high[outside], atol=1e-5)


def test_the_glow_is_scene_light_brightened_by_the_pairs_gain() -> None:
    from sllen.data.synthesis import srgb_to_linear

    low = np.full((32, 32, 3), 0.02, np.float32)  # linear light 0.00155
    high = np.full((32, 32, 3), 0.4, np.float32)  # linear 0.133: a gain of 86
    glow = np.zeros((32, 32, 3), np.float32)
    glow[8:24, 8:24] = 0.001
    layer = EmitterLayer(np.zeros_like(glow), glow)
    gain = float(srgb_to_linear(high).mean() / srgb_to_linear(low).mean())
    for mode, times in (("scene", gain), ("alike", 1.0)):
        new_low, new_high = add_emitters(low, high, layer, glow=mode)
        added_low = srgb_to_linear(new_low)[16, 16] - srgb_to_linear(low)[16, 16]
        added_high = srgb_to_linear(new_high)[16, 16] - srgb_to_linear(high)[16, 16]
        assert np.allclose(added_low, 0.001, atol=3e-4)  # the low image on its 8-bit grid
        assert np.allclose(added_high, 0.001 * times, rtol=1e-3), mode
    with pytest.raises(ValueError, match="glow must be one of"):
        add_emitters(low, high, layer, glow="bright")
    with pytest.raises(ValueError, match="emitter glow must be one of"):
        SyntheticPairDataset(2, 48, emitters=0.5, emitter_glow="bright")


def test_the_share_of_pairs_and_the_old_pairs_unchanged() -> None:
    cfg = SynthesisParams(degradation="simple")
    plain = SyntheticPairDataset(12, 48, seed=5, synthesis_cfg=cfg)
    some = SyntheticPairDataset(12, 48, seed=5, synthesis_cfg=cfg, emitters=0.5)
    every = SyntheticPairDataset(12, 48, seed=5, synthesis_cfg=cfg, emitters=1.0)
    changed = []
    for i in range(12):
        a, b, c = plain[i], some[i], every[i]
        same = all(np.array_equal(a[k].numpy(), b[k].numpy()) for k in ("low", "high"))
        changed.append(not same)
        assert not np.array_equal(a["high"].numpy(), c["high"].numpy())
        if not same:  # brighter, never darker
            assert (b["high"].numpy() >= a["high"].numpy() - 1e-6).all()
    assert 0 < sum(changed) < 12
    with pytest.raises(ValueError, match="share of the pairs"):
        SyntheticPairDataset(2, 48, emitters=1.5)


def test_the_training_option_is_checked(tmp_path) -> None:
    from sllen.train.config import TrainConfig

    with pytest.raises(ValueError, match="--emitters is a share"):
        TrainConfig(out=tmp_path, emitters=-0.1)
    with pytest.raises(ValueError, match="--emitter-glow must be one of scene, alike"):
        TrainConfig(out=tmp_path, emitters=0.3, emitter_glow="bright")
    with pytest.raises(ValueError, match="--emitters changes generated pairs"):
        TrainConfig(out=tmp_path, emitters=0.3, lle_data=tmp_path)
