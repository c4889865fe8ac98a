"""A run's folder: no new run over an old one, no resume with other settings, Ctrl-C and
SIGTERM save, a log without a checkpoint is no run, options that would do nothing refused."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rich.console import Console
from tiny_runs import tiny_run

from sllen.runtime.errors import InputError
from sllen.train.config import TrainConfig
from sllen.train.interrupt import Interrupted
from sllen.train.run_folder import check_new_run, check_out, check_same_run, run_config
from sllen.train.trainer import Trainer, train


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
    # one level down too: a loss weight newer than the checkpoint (--w-spread) ran at its
    # default, so every checkpoint saved before it was refused ("the loss weights differ")
    weights = {"smooth_l1": 1.0, "ssim": 0.1}
    older = {**saved, "loss_weights": weights}
    newer = {"loss_weights": {"smooth_l1": 1.0, "ssim": 0.0, "spread": 0.0}}
    check_same_run(older, {**older, "loss_weights": {**weights, "spread": 0.0}}, newer)
    with pytest.raises(InputError, match="loss weights"):
        check_same_run(older, {**older, "loss_weights": {**weights, "spread": 1.0}}, newer)
    # --emitter-glow came with a new default ("scene"): a run saved before it, with lights,
    # added their glow alike, and a resume that would switch it silently is refused
    from sllen.train.config import TrainConfig

    lit = {**saved, "emitters": 0.3}
    now = {**lit, "emitter_glow": "scene"}
    with pytest.raises(InputError, match=r"--emitter-glow \(was alike, now scene\)"):
        check_same_run(lit, now, TrainConfig.defaults())
    check_same_run(lit, {**now, "emitter_glow": "alike"}, TrainConfig.defaults())
    check_same_run(saved, {**saved, "emitter_glow": "scene"}, TrainConfig.defaults())  # no lights
    # a run started before a combination was refused resumes without the setting it ignored
    old = {**saved, "degradation": "camera", "photo_max_side": 640, "lle_photos": None}
    check_same_run(old, {**saved, "degradation": "mixed", "photo_max_side": 1920})
    with pytest.raises(InputError, match="--degradation"):  # generated pairs use it
        check_same_run({**old, "lle_data": None}, {**old, "lle_data": None, "degradation": "mixed"})


def test_a_run_carried_to_another_machine_resumes_with_its_data_there(tmp_path: Path) -> None:
    saved = {"lle_data": "/gone/home/a/LOL", "lr": 2e-4}  # not on this machine
    notes = check_same_run(saved, {**saved, "lle_data": str(tmp_path)})
    assert len(notes) == 1 and "/gone/home/a/LOL, the run's, is not on this machine" in notes[0]
    with pytest.raises(InputError, match="--lle-data"):  # a folder that is here is another run's
        check_same_run({**saved, "lle_data": str(tmp_path)}, {**saved, "lle_data": "/tmp"})


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
        ("threads", 0, "--threads must be at least 1, not 0"),  # 0 ran on torch's default
        ("threads", -3, "--threads must be at least 1, not -3"),
        ("steps", 0, "--steps must be at least 1"),
        ("val_holdout", -1, "--val-holdout must be >= 0"),
        ("minutes", -1.0, "--minutes must be a finite number > 0"),
        ("degradation", "phone", "--degradation must be one of"),
        ("schedule", "random", "--schedule must be alternating or independent"),
        ("model_overrides", {"num_classes": 1}, "--num-classes must be at least 2, not 1"),
        ("model_overrides", {"refine_radius": -1}, "--refine-radius must be >= 0"),
        ("model_overrides", {"refine_chroma_radius": 1}, "--refine-chroma-radius must be 0"),
    ],
)
def test_bad_numbers_name_the_option(option: str, value: object, message: str) -> None:
    with pytest.raises(InputError, match=message):
        TrainConfig(**{option: value})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "options,message",
    [
        ({"val_holdout": 2}, "--val-holdout holds out pairs of --lle-data or photos"),
        (
            {"val_holdout": 2, "lle_photos": "p", "val_data": "v"},
            "give --val-holdout .* or --val-data .*, not both",
        ),
        ({"lle_data": "d", "degradation": "camera"}, "--degradation .*: drop it with --lle-data"),
        ({"lle_data": "d", "degradation": "simple"}, "--degradation .*: drop it with --lle-data"),
        ({"lle_data": "d", "camera_share": 0.5}, "--camera-share .*: drop it with --lle-data"),
        ({"photo_max_side": 800}, "--photo-max-side sizes the photos of --lle-photos: add it"),
    ],
)
def test_options_that_would_do_nothing_are_refused(options: dict, message: str) -> None:
    # each was accepted and silently ignored (or, --val-holdout with --val-data, took pairs
    # out of training that nothing validated on)
    with pytest.raises(InputError, match=message):
        TrainConfig(**options)
    TrainConfig(lle_photos="p", val_holdout=2, photo_max_side=800, degradation="camera")


def test_out_must_be_a_folder_checked_before_anything(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    with pytest.raises(InputError, match=r"--out .*afile is a file, not a folder"):
        train(_cfg(tmp_path / "afile"), quiet=True)
    with pytest.raises(InputError, match=r"--out .*deeper: .*afile is a file, not a folder"):
        check_out(tmp_path / "afile" / "sub" / "deeper")
    check_out(tmp_path / "new" / "sub")  # a folder to be made is fine


def _failing_first_step(self: Trainer, batch: object) -> float:
    raise RuntimeError("out of memory")


def test_a_log_without_a_checkpoint_is_no_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A run that fails in its first step leaves log.csv and nothing to resume: a new run
    # replaces the log (and says so), --resume says to start without it. Each used to point
    # at the other.
    out = tmp_path / "r"
    with monkeypatch.context() as m:
        m.setattr(Trainer, "ss_step", _failing_first_step)
        with pytest.raises(RuntimeError, match="out of memory"):
            train(_cfg(out), quiet=True)
    assert (out / "log.csv").is_file() and not (out / "checkpoint").exists()
    with pytest.raises(InputError, match=r"nothing to resume in .*: .*without --resume"):
        train(_cfg(out, resume=True), quiet=True)
    (out / "log.csv").write_text("step,time_s\n1,0.5\n")  # the stale rows must go
    console = Console(file=io.StringIO(), width=300)
    assert train(_cfg(out), console=console).steps == 2
    said = console.file.getvalue()  # type: ignore[attr-defined]
    assert "log.csv is from a run that stopped before its first checkpoint" in said
    rows = (out / "log.csv").read_text().splitlines()
    assert rows[0].startswith("step,time_s,lr") and [r.split(",")[0] for r in rows[1:]] == ["2"]


def test_weights_without_a_checkpoint_name_one_way_out(tmp_path: Path) -> None:
    (tmp_path / "last.safetensors").write_bytes(b"")
    with pytest.raises(InputError, match="no checkpoint to resume: give another --out"):
        check_new_run(tmp_path)
    with pytest.raises(InputError, match="no complete checkpoint to resume: give another --out"):
        train(_cfg(tmp_path, resume=True), quiet=True)
    assert check_new_run(tmp_path / "nothing") is None


def test_resume_compares_data_folders_as_absolute_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for d in ("a/LOL", "b/LOL"):
        (tmp_path / d).mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "a")
    saved = run_config(_cfg(tmp_path / "r", lle_data="LOL").to_dict())
    assert saved["lle_data"] == str(tmp_path / "a" / "LOL")  # kept absolute
    check_same_run(saved, _cfg(tmp_path / "r", lle_data=tmp_path / "a" / "LOL").to_dict())
    monkeypatch.chdir(tmp_path)
    check_same_run(saved, _cfg(tmp_path / "r", lle_data="a/LOL").to_dict())  # from elsewhere
    monkeypatch.chdir(tmp_path / "b")
    with pytest.raises(InputError, match=r"--lle-data \(was .*a/LOL, now .*b/LOL\)"):
        check_same_run(saved, _cfg(tmp_path / "r", lle_data="LOL").to_dict())  # another LOL
    # A checkpoint from before kept the text typed, relative to a directory it did not keep:
    # the same text, or the same folder from here, is taken as the same folder.
    old = {**saved, "lle_data": "LOL"}
    check_same_run(old, _cfg(tmp_path / "r", lle_data="LOL").to_dict())
    check_same_run(old, _cfg(tmp_path / "r", lle_data=tmp_path / "b" / "LOL").to_dict())
    with pytest.raises(InputError, match="--lle-data"):
        check_same_run(old, _cfg(tmp_path / "r", lle_data=tmp_path / "a" / "LOL").to_dict())


def test_resuming_a_finished_run_says_so_in_one_line(tmp_path: Path) -> None:
    first = train(_cfg(tmp_path / "r"), quiet=True)
    before = {p: p.read_bytes() for p in (tmp_path / "r").rglob("*") if p.is_file()}
    console = Console(file=io.StringIO(), width=300)
    again = train(_cfg(tmp_path / "r", resume=True), console=console)
    said = console.file.getvalue()  # type: ignore[attr-defined]
    assert "already finished at step 2 of 2: raise --steps to train further" in said
    assert len(said.strip().splitlines()) == 1, said
    assert "nan" not in said.lower() and "done:" not in said
    assert again.steps == 2 and again.val_psnr == pytest.approx(first.val_psnr, abs=1e-3)
    after = {p: p.read_bytes() for p in (tmp_path / "r").rglob("*") if p.is_file()}
    assert after == before  # nothing written


class _Stop(Exception):
    """What the test's own SIGTERM handler raises: SIGTERM left to it is a failure here."""


def _test_handler(signum: int, frame: object) -> None:
    raise _Stop


def test_sigterm_finishes_the_step_and_saves_a_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Job schedulers stop a job with SIGTERM: the run stops as at Ctrl-C (was: killed, exit
    # 143, everything since the last checkpoint lost).
    ss_step = Trainer.ss_step

    def step_then_term(self: Trainer, batch: object) -> float:
        if self.step == 2:  # the third step
            signal.raise_signal(signal.SIGTERM)
        return ss_step(self, batch)

    before = signal.signal(signal.SIGTERM, _test_handler)
    sigint = signal.getsignal(signal.SIGINT)
    try:
        monkeypatch.setattr(Trainer, "ss_step", step_then_term)
        console = Console(file=io.StringIO(), width=300)
        with pytest.raises(Interrupted):
            train(_cfg(tmp_path / "r", steps=8, save_every=100), console=console)
        assert signal.getsignal(signal.SIGTERM) is _test_handler  # handlers given back
        assert signal.getsignal(signal.SIGINT) is sigint
        said = console.file.getvalue()  # type: ignore[attr-defined]
        assert "stopped by SIGTERM at step 3: checkpoint saved" in said
        state = json.loads((tmp_path / "r" / "checkpoint" / "state.json").read_text())
        assert state["step"] == 3  # the step in progress finished, then saved
        monkeypatch.undo()
        assert train(_cfg(tmp_path / "r", steps=4, resume=True), quiet=True).steps == 4
        # SIGTERM in the set-up: a KeyboardInterrupt as Ctrl-C there, nothing written
        import sllen.train.trainer as trainer_module

        build = trainer_module.build_datasets

        def term_then_build(*a: object) -> object:
            signal.raise_signal(signal.SIGTERM)
            return build(*a)  # type: ignore[arg-type]

        monkeypatch.setattr(trainer_module, "build_datasets", term_then_build)
        with pytest.raises(KeyboardInterrupt) as e:
            train(_cfg(tmp_path / "s"), quiet=True)
        assert not isinstance(e.value, Interrupted) and not (tmp_path / "s").exists()
        assert signal.getsignal(signal.SIGTERM) is _test_handler
    finally:
        signal.signal(signal.SIGTERM, before)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("sig", "group"),
    [(signal.SIGINT, False), (signal.SIGTERM, False), (signal.SIGTERM, True)],
    ids=["SIGINT", "SIGTERM", "SIGTERM to the process group, with a data worker"],
)
def test_a_signal_finishes_the_step_and_saves_a_checkpoint(
    tmp_path: Path, sig: signal.Signals, group: bool
) -> None:
    # SLURM's scancel and systemd signal every process of the job: the DataLoader workers
    # too, which died of it and took the run down with nothing saved (exit 1).
    out = tmp_path / "r"
    args = ["--preset", "tiny", "--steps", "400", "--crop-size", "32", "--batch-size", "2"]
    args += ["--ss-batch-size", "2", "--save-every", "1000", "--threads", "1", "--out", str(out)]
    args += ["--workers", "1"] if group else []
    proc = subprocess.Popen(
        [sys.executable, "-m", "sllen", "train", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        start_new_session=True,  # its own process group, as a job's
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (out / "log.csv").exists():
        time.sleep(0.2)
    time.sleep(2)  # some steps in
    if group:
        os.killpg(proc.pid, sig)
    else:
        proc.send_signal(sig)
    stdout, err = proc.communicate(timeout=120)
    said = " ".join((stdout + err).split())  # the run's log goes to stdout, errors to stderr
    assert proc.returncode == 130, err  # SIGTERM too (was 143, killed)
    assert "Traceback" not in said
    step = json.loads((out / "checkpoint" / "state.json").read_text())["step"]
    assert 0 < step < 400  # saved at the interrupt, though --save-every is 1000
    how = "interrupted" if sig == signal.SIGINT else "stopped by SIGTERM"
    assert f"{how} at step {step}: checkpoint saved" in said
    assert said.count("interrupted") == (sig == signal.SIGINT)  # one line says it, not two


def test_a_resume_on_another_process_count_says_the_batch_changes(tmp_path: Path) -> None:
    # The batch size is per process: resumed on 1 process, a 2-process run's steps see half
    # the pairs. Said, not refused (a requeued cluster job may get fewer GPUs).
    train(_cfg(tmp_path / "r"), quiet=True)
    state_file = tmp_path / "r" / "checkpoint" / "state.json"
    state = json.loads(state_file.read_text())
    assert state["world_size"] == 1
    state_file.write_text(json.dumps({**state, "world_size": 2}))  # as torchrun's rank 0 saves
    console = Console(file=io.StringIO(), width=300)
    train(_cfg(tmp_path / "r", steps=4, resume=True), console=console)
    said = console.file.getvalue()  # type: ignore[attr-defined]
    assert "made by 2 processes, this run has 1: a step now sees 1 x 2 pairs (was 2 x 2)" in said
