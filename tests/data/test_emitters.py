"""Light sources in generated pairs (sllen.data.emitters, --emitters)."""

from __future__ import annotations

import numpy as np
import pytest

from sllen.data.emitters import add_emitters, emitter_layer
from sllen.data.procedural import SyntheticPairDataset
from sllen.data.synthesis import SynthesisParams


def test_a_layer_holds_clipping_cores_and_fading_glows() -> None:
    layer = emitter_layer(np.random.default_rng(3), 96, 128)
    assert layer.shape == (96, 128, 3) and layer.dtype == np.float32
    assert layer.min() >= 0 and layer.max() >= 1.2  # a core clips: at least 1.2 times white
    grey = layer.mean(axis=2)
    assert (grey > 0.5).mean() < 0.2  # small lights, not a lit frame
    assert np.median(grey) < 0.05


def test_both_images_get_the_same_light_and_the_low_stays_8_bit() -> None:
    rng = np.random.default_rng(0)
    low = np.round(rng.uniform(0, 0.1, (64, 80, 3)) * 255) / 255
    high = rng.uniform(0.3, 0.7, (64, 80, 3))
    layer = np.zeros((64, 80, 3), np.float32)
    layer[30:34, 40:44] = 2.0  # one clipped core
    new_low, new_high = add_emitters(low.astype(np.float32), high.astype(np.float32), layer)
    assert np.allclose(new_low * 255, np.round(new_low * 255), atol=1e-4)
    assert np.allclose(new_low[30:34, 40:44], 1.0) and np.allclose(new_high[30:34, 40:44], 1.0)
    outside = np.ones((64, 80), bool)
    outside[30:34, 40:44] = False
    assert np.allclose(new_low[outside], low[outside], atol=1e-6)  # nothing else moved
    assert np.allclose(new_high[outside], high[outside], atol=1e-5)


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
    with pytest.raises(ValueError, match="--emitters changes generated pairs"):
        TrainConfig(out=tmp_path, emitters=0.3, lle_data=tmp_path)
