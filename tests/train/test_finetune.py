"""Fine-tuning from weights, the camera degradation and validation on real pairs (tiny preset)."""

from pathlib import Path

import numpy as np
import pytest
import torch
from tiny_runs import tiny_run

from sllen.config import get_preset
from sllen.model.io import load_weights, save_weights
from sllen.model.sllen import SLLEN
from sllen.runtime.errors import InputError
from sllen.train.config import TrainConfig
from sllen.train.data import build_datasets, spread
from sllen.train.trainer import train


def _cfg(out: Path, **kw) -> TrainConfig:
    small = dict(steps=2, batch_size=2, ss_batch_size=2, crop_size=32, lr=2e-4, val_images=2)
    return tiny_run(out, **{**small, "val_every": 2, "save_every": 2, **kw})


def test_init_weights_start_the_run_from_them(tmp_path: Path) -> None:
    torch.manual_seed(123)
    start = SLLEN(get_preset("tiny"))
    save_weights(start, tmp_path / "start.safetensors")
    # lr 0: the run's weights stay the starting weights, not the seed's fresh initialisation
    result = train(
        _cfg(tmp_path / "run", init_weights=tmp_path / "start.safetensors", lr=0.0), quiet=True
    )
    got, want = load_weights(result.weights).state_dict(), start.state_dict()
    assert all(torch.equal(got[k], want[k]) for k in want)
    other = SLLEN(get_preset("edge"))
    save_weights(other, tmp_path / "edge.safetensors")
    with pytest.raises(InputError, match="holds an 'edge' model and this run builds a 'tiny'"):
        train(_cfg(tmp_path / "bad", init_weights=tmp_path / "edge.safetensors"), quiet=True)


def test_init_weights_bundled_names_the_bundled_model(tmp_path: Path, monkeypatch) -> None:
    from sllen.weights import default_weights

    monkeypatch.chdir(tmp_path)
    assert TrainConfig(init_weights="bundled").init_weights == default_weights()
    # checked as any file: the bundled model is an edge one
    with pytest.raises(InputError, match="holds an 'edge' model and this run builds a 'tiny'"):
        train(_cfg(tmp_path / "run", init_weights="bundled"), quiet=True)
    (tmp_path / "bundled").write_bytes(b"")  # a file of that name here is the user's
    assert TrainConfig(init_weights="bundled").init_weights == Path("bundled")


def test_camera_degradation_and_real_validation_pairs(tmp_path: Path) -> None:
    from sllen.data.samples import write_sample_pairs

    pairs = write_sample_pairs(tmp_path / "pairs", 5, (40, 48), seed=2)
    cfg = _cfg(tmp_path / "run", degradation="camera", val_data=pairs, val_images=3)
    data = build_datasets(cfg, get_preset("tiny"))
    assert data.lle.synthesis_cfg.degradation == "camera"  # type: ignore[attr-defined]
    assert len(data.val) == 3 and data.val[0]["low"].shape == (3, 40, 48)
    result = train(cfg, quiet=True)
    assert np.isfinite(result.val_psnr)
    with pytest.raises(InputError, match="degradation"):
        _cfg(tmp_path, degradation="phone")


def test_photos_are_darkened_on_the_fly_with_held_out_validation(tmp_path: Path) -> None:
    from sllen.data.photos import find_photos
    from sllen.runtime.images import write_image

    rng = np.random.default_rng(0)
    for i in range(6):  # nested folders, any size (small ones are reflection-padded)
        sub = tmp_path / "photos" / ("a" if i % 2 else "b/c")
        write_image(sub / f"p{i}.png", rng.uniform(0.2, 0.9, (24 + 4 * i, 40, 3)))
    write_image(tmp_path / "photos" / ".hidden" / "x.png", np.zeros((8, 8, 3)))
    assert len(find_photos(tmp_path / "photos")) == 6
    cfg = _cfg(tmp_path / "run", lle_photos=tmp_path / "photos", val_holdout=2, crop_size=32)
    data = build_datasets(cfg, get_preset("tiny"))
    held = {p.name for p in data.val.source.paths}  # type: ignore[attr-defined]
    train_names = {p.name for p in data.lle.source.paths}  # type: ignore[attr-defined]
    assert len(held) == 2 and len(train_names) == 4 and not held & train_names
    item = data.lle[0]
    assert item["low"].shape == item["high"].shape == (3, 32, 32)
    # the input is the darkened photo: much darker than its ground truth
    assert float(item["low"].mean()) < 0.5 * float(item["high"].mean())
    result = train(cfg, quiet=True)
    assert np.isfinite(result.val_psnr)
    with pytest.raises(InputError, match="not both"):
        _cfg(tmp_path, lle_photos=tmp_path / "photos", lle_data=tmp_path / "photos")


def test_scene_detail_reaches_the_generated_pairs(tmp_path: Path) -> None:
    on = build_datasets(_cfg(tmp_path, scene_detail=True), get_preset("tiny"))
    off = build_datasets(_cfg(tmp_path), get_preset("tiny"))
    assert on.lle.scene_detail and on.val.scene_detail  # type: ignore[attr-defined]
    assert not off.lle.scene_detail  # type: ignore[attr-defined]
    with pytest.raises(InputError, match="scene-detail"):
        _cfg(tmp_path, scene_detail=True, lle_photos=tmp_path)


def test_spread_picks_evenly():
    assert spread(list(range(10)), 3) == [1, 5, 8]
    assert spread([1, 2], 5) == [1, 2]
