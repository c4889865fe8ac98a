"""The moving average of the weights (sllen.train.ema, sllen-train --ema)."""

from pathlib import Path

import pytest
import torch
from tiny_runs import tiny_run as _cfg

from sllen.config import get_preset
from sllen.model.io import load_weights, read_metadata
from sllen.model.sllen import SLLEN
from sllen.train.config import TrainConfig
from sllen.train.ema import WeightEMA, warm_decay
from sllen.train.trainer import Trainer, train


def _tiny(seed: int) -> SLLEN:
    torch.manual_seed(seed)
    return SLLEN(get_preset("tiny"))


def _sd(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_the_decay_warms_up_to_the_one_asked_for() -> None:
    assert warm_decay(0.999, 0) == pytest.approx(0.1)
    assert warm_decay(0.999, 1) == pytest.approx(2 / 11)
    assert warm_decay(0.999, 2000) == pytest.approx(2001 / 2010)
    assert warm_decay(0.999, 10**6) == 0.999


def test_first_update_copies_and_later_ones_move_a_share_toward_the_model() -> None:
    model, other = _tiny(0), _tiny(1)
    ema = WeightEMA(model, 0.999)
    start = _sd(model)
    ema.update(model)  # copies
    assert ema.updates == 1
    assert all(torch.equal(v, start[k]) for k, v in _sd(ema.model).items())
    model.load_state_dict(other.state_dict())
    ema.update(model)
    d = warm_decay(0.999, 1)
    new = _sd(other)
    for k, v in _sd(ema.model).items():
        torch.testing.assert_close(v, d * start[k] + (1 - d) * new[k])


def test_a_run_with_ema_writes_and_validates_the_average(tmp_path: Path) -> None:
    trainer = Trainer(_cfg(tmp_path, steps=10, ema=0.99), quiet=True)
    result = trainer.run()
    assert trainer.validate().psnr == pytest.approx(result.val_psnr)  # the average's score
    trainer.ema = None  # the trained weights alone score otherwise
    assert trainer.validate().psnr != pytest.approx(result.val_psnr, abs=1e-6)
    served = load_weights(tmp_path / "last.safetensors").state_dict()
    raw = load_weights(tmp_path / "checkpoint" / "model.safetensors").state_dict()
    average = load_weights(tmp_path / "checkpoint" / WeightEMA.FILE).state_dict()
    assert all(torch.equal(served[k], average[k]) for k in served)
    assert any(not torch.equal(served[k], raw[k]) for k in served)
    assert read_metadata(tmp_path / "checkpoint" / WeightEMA.FILE)["ema_updates"] == "10"


def test_resume_restores_the_average_not_the_raw_weights(tmp_path: Path) -> None:
    train(_cfg(tmp_path, steps=10, ema=0.99), quiet=True)
    trainer = Trainer(_cfg(tmp_path, steps=20, ema=0.99, resume=True), quiet=True)
    trainer._setup()
    assert trainer.ema is not None and trainer.ema.updates == 10
    saved = load_weights(tmp_path / "last.safetensors").state_dict()
    assert all(torch.equal(v, saved[k]) for k, v in _sd(trainer.served).items())
    raw = _sd(trainer.model)
    assert any(not torch.equal(v, saved[k]) for k, v in raw.items())


def test_the_decay_is_checked(tmp_path: Path) -> None:
    assert TrainConfig(out=tmp_path, ema=0.999).ema == 0.999
    for bad in (1.0, -0.1):
        with pytest.raises(ValueError, match="--ema"):
            TrainConfig(out=tmp_path, ema=bad)
