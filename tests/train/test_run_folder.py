"""A run's folder: no new run over an old one, no resume with other settings, Ctrl-C saves."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tiny_runs import tiny_run

from sllen.runtime.errors import InputError
from sllen.train.config import TrainConfig
from sllen.train.run_folder import check_same_run
from sllen.train.trainer import train


def _cfg(out: Path, **kw) -> TrainConfig:
    small = dict(steps=2, batch_size=2, ss_batch_size=2, crop_size=32, val_images=2)
    return tiny_run(out, **{**small, "val_every": 2, "save_every": 2, **kw})


def test_a_new_run_is_refused_over_an_old_one(tmp_path: Path) -> None:
    train(_cfg(tmp_path / "r"), quiet=True)
    before = (tmp_path / "r" / "log.csv").read_text()
    with pytest.raises(InputError, match=r"already holds a run .*add --resume"):
        train(_cfg(tmp_path / "r", seed=5), quiet=True)
    assert (tmp_path / "r" / "log.csv").read_text() == before  # nothing touched


def test_resume_with_other_settings_is_refused(tmp_path: Path) -> None:
    train(_cfg(tmp_path / "r"), quiet=True)
    with pytest.raises(InputError, match=r"--crop-size \(was 32, now 48\)"):
        train(_cfg(tmp_path / "r", steps=4, crop_size=48, resume=True), quiet=True)
    result = train(_cfg(tmp_path / "r", steps=4, threads=1, save_every=4, resume=True), quiet=True)
    assert result.steps == 4  # its length, threads and save interval may change


def test_check_same_run_names_each_difference() -> None:
    saved = {"lle_data": "LOL", "lr": 2e-4, "steps": 10, "model_overrides": {}}
    check_same_run(saved, {**saved, "steps": 20})
    check_same_run(None, {"lr": 1.0})  # a checkpoint from before configs were kept
    with pytest.raises(InputError) as e:
        check_same_run(saved, {**saved, "lle_data": None, "model_overrides": {"width": 2}})
    assert "--lle-data (was LOL, now None)" in str(e.value)
    assert "the model options" in str(e.value)
    # an option newer than the checkpoint ran at its default: another value is a change
    defaults = {"emitters": 0.0, "lr": 1e-3}
    check_same_run(saved, {**saved, "emitters": 0.0}, defaults)
    with pytest.raises(InputError, match=r"--emitters \(was 0.0, now 0.3\)"):
        check_same_run(saved, {**saved, "emitters": 0.3}, defaults)


@pytest.mark.parametrize(
    "option,value,message",
    [
        ("crop_size", 100, "--crop-size must be a multiple of 16"),
        ("save_every", 0, "--save-every must be at least 1"),
        ("val_every", -3, "--val-every must be at least 1"),
        ("batch_size", 0, "--batch-size must be at least 1"),
        ("lr", float("nan"), "--lr must be a finite number >= 0"),
        ("workers", -1, "--workers must be >= 0"),
        ("gradient_level", -1.0, "--gradient-level must be > 0"),
        ("device", "gpu", "--device must be"),
        ("vgg_weights", "nope.pth", "--vgg-weights nope.pth: no such file"),
    ],
)
def test_bad_numbers_name_the_option(option: str, value: object, message: str) -> None:
    with pytest.raises(InputError, match=message):
        TrainConfig(**{option: value})  # type: ignore[arg-type]


@pytest.mark.slow
def test_ctrl_c_finishes_the_step_and_saves_a_checkpoint(tmp_path: Path) -> None:
    out = tmp_path / "r"
    args = ["--preset", "tiny", "--steps", "400", "--crop-size", "32", "--batch-size", "2"]
    args += ["--ss-batch-size", "2", "--save-every", "1000", "--threads", "1", "--out", str(out)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "sllen", "train", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (out / "log.csv").exists():
        time.sleep(0.2)
    time.sleep(2)  # some steps in
    proc.send_signal(signal.SIGINT)
    stdout, err = proc.communicate(timeout=120)
    said = " ".join((stdout + err).split())  # the run's log goes to stdout, errors to stderr
    assert proc.returncode == 130, err
    assert "Traceback" not in said
    step = json.loads((out / "checkpoint" / "state.json").read_text())["step"]
    assert 0 < step < 400  # saved at the interrupt, though --save-every is 1000
    assert f"interrupted at step {step}: checkpoint saved" in said
