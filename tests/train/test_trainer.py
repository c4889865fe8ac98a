"""Short real training runs of the tiny preset on procedural data (CPU)."""

import csv
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from rich.console import Console
from tiny_runs import tiny_run

from sllen.config import get_preset
from sllen.losses import LossWeights
from sllen.model.io import load_weights, read_metadata
from sllen.train.config import TrainConfig
from sllen.train.trainer import Trainer, train

# Identity (the dark input itself) scores 10.1 dB on the 4-image synthetic validation set of
# the default degradation ("mixed"; 11.4 with "simple").
INPUT_PSNR = 10.1


_cfg = tiny_run


@pytest.mark.slow
def test_a_hundred_and_fifty_steps_learn_to_enhance(tmp_path: Path) -> None:
    # 150 steps reach 13.6 dB with the default "mixed" degradation (measured 2026-12-03), 1 dB
    # above the bar (14.4 dB with "simple").
    result = train(_cfg(tmp_path, steps=150, val_every=75, save_every=150), quiet=True)
    assert result.steps == 150
    assert result.val_psnr > INPUT_PSNR + 2.5, result.val_psnr
    for name in (
        "last.safetensors",
        "best.safetensors",
        "log.csv",
        "checkpoint/state.json",
        "checkpoint/opt_ss.safetensors",
    ):
        assert (tmp_path / name).is_file(), name
    rows = (tmp_path / "log.csv").read_text().splitlines()
    header = rows[0].split(",")
    first = dict(zip(header, rows[1].split(","), strict=True))
    last = dict(zip(header, rows[-1].split(","), strict=True))
    assert float(last["smooth_l1"]) < float(first["smooth_l1"])
    meta = read_metadata(result.weights)
    assert meta["steps"] == "150" and float(meta["gradient_level"]) > 0
    model = load_weights(result.best)
    dark = torch.full((1, 3, 40, 40), 0.05)
    assert float(model.enhance(dark).mean()) > 0.05  # brightens


def test_resume_continues_from_checkpoint(tmp_path: Path) -> None:
    train(_cfg(tmp_path, steps=10), quiet=True)
    before = load_weights(tmp_path / "last.safetensors").state_dict()
    result = train(_cfg(tmp_path, steps=20, resume=True), quiet=True)
    assert result.steps == 20
    after = load_weights(tmp_path / "last.safetensors").state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    steps = [int(r.split(",")[0]) for r in (tmp_path / "log.csv").read_text().splitlines()[1:]]
    assert steps == [10, 20]


def test_resume_drops_log_rows_after_the_checkpoint(tmp_path: Path) -> None:
    # A run stopped between checkpoints has logged steps the resumed run trains again.
    train(_cfg(tmp_path, steps=10), quiet=True)
    log = tmp_path / "log.csv"
    header, row = log.read_text().splitlines()[:2]
    log.write_text("\n".join([header, row, "15" + row[2:], "20" + row[2:]]) + "\n")
    train(_cfg(tmp_path, steps=20, resume=True), quiet=True)
    steps = [int(r.split(",")[0]) for r in log.read_text().splitlines()[1:]]
    assert steps == [10, 20]


def test_validation_rows_carry_gt_mean_scores(tmp_path: Path) -> None:
    train(_cfg(tmp_path, steps=10), quiet=True)
    with open(tmp_path / "log.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    val = [r for r in rows if r["val_psnr"]]
    assert val, rows
    for r in val:
        assert 0 < float(r["val_psnr_gm"]) < 100 and 0 < float(r["val_ssim_gm"]) <= 1
    meta = read_metadata(tmp_path / "last.safetensors")
    assert float(meta["val_psnr_gm"]) == pytest.approx(float(val[-1]["val_psnr_gm"]), abs=1e-3)


def test_resume_keeps_an_older_logs_columns(tmp_path: Path) -> None:
    # A log written before the GT-mean columns existed: the resumed run appends rows under the
    # header the file has, so every row still has as many fields as the header.
    train(_cfg(tmp_path, steps=10), quiet=True)
    log = tmp_path / "log.csv"
    with open(log, newline="") as f:
        rows = list(csv.DictReader(f))
    old = [k for k in rows[0] if not k.endswith("_gm")]
    with open(log, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=old, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    train(_cfg(tmp_path, steps=20, resume=True), quiet=True)
    lines = list(csv.reader(log.read_text().splitlines()))
    assert lines[0] == old
    assert [len(line) for line in lines[1:]] == [len(old)] * (len(lines) - 1)
    assert [line[0] for line in lines[1:]] == ["10", "20"]


def test_resume_without_checkpoint_fails_clearly(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="nothing to resume in .*: no checkpoint there"):
        train(_cfg(tmp_path, resume=True), quiet=True)
    assert not tmp_path.joinpath("log.csv").exists()


def test_independent_schedule_trains_ssan_then_llemn(tmp_path: Path) -> None:
    # SLLEN-4: SSaN (own encoder) for `steps` steps, then LLEmN with SSaN left untouched.
    snapshots: dict[str, dict[str, torch.Tensor]] = {}

    class Recording(Trainer):
        def _setup(self) -> None:
            super()._setup()
            snapshots["init"] = _copy(self.model)

        def lle_step(self, batch):  # noqa: ANN001
            snapshots.setdefault("switch", _copy(self.model))
            return super().lle_step(batch)

    Recording(_cfg(tmp_path, steps=5, schedule="independent"), quiet=True).run()
    final = load_weights(tmp_path / "last.safetensors")
    assert final.config.shared_encoder is False
    fin = final.state_dict()
    init, switch = snapshots["init"], snapshots["switch"]
    ss_keys = [k for k in fin if k.startswith(("ss_encoder", "ss_decoder"))]
    lle_keys = [k for k in fin if k.startswith(("encoder", "lle_decoder", "ffb"))]
    assert any(not torch.equal(init[k], switch[k]) for k in ss_keys)  # phase 1 trains SSaN
    assert all(torch.equal(init[k], switch[k]) for k in lle_keys)  # ... and nothing else
    assert all(torch.equal(switch[k], fin[k]) for k in ss_keys)  # phase 2 leaves SSaN alone
    assert any(not torch.equal(switch[k], fin[k]) for k in lle_keys)


def test_each_independent_stage_has_its_own_cosine(tmp_path: Path) -> None:
    # SLLEN-4 trains SSaN for --steps, then LLEmN for --steps: each from --lr down to its
    # floor, as an alternating run's stages are (was: one cosine over both, so SSaN never
    # decayed and LLEmN started at 0.55 x --lr).
    trainer = Trainer(_cfg(tmp_path, steps=10, schedule="independent"), quiet=True)
    trainer.total_steps, trainer.lr_held = 20, False
    factors = [trainer._lr_factor(step) for step in range(20)]
    assert factors[0] == factors[10] == 1.0
    assert factors[1:10] == factors[11:20] and factors[9] < 0.15
    alternating = Trainer(_cfg(tmp_path, steps=10), quiet=True)
    alternating.total_steps, alternating.lr_held = 10, False
    assert [alternating._lr_factor(step) for step in range(10)] == factors[:10]


def _copy(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_ablations_and_loss_switches(tmp_path: Path) -> None:
    weights = LossWeights(
        smooth_l1=1.0, perceptual=0.0, distillation=0.0, illumination_tv=0.0, gradient=0.0
    )
    cfg = _cfg(
        tmp_path,
        steps=5,
        model_overrides={"use_hsbab": False, "use_rsaeb": False},
        loss_weights=weights,
    )
    result = train(cfg, quiet=True)
    assert load_weights(result.weights).config.variant == "SLLEN-3"
    header = (tmp_path / "log.csv").read_text().splitlines()[0].split(",")
    row = dict(
        zip(header, (tmp_path / "log.csv").read_text().splitlines()[-1].split(","), strict=True)
    )
    assert row["distillation"] == "" and row["gradient"] == "" and row["smooth_l1"] != ""


def test_training_is_seeded(tmp_path: Path) -> None:
    a = train(_cfg(tmp_path / "a", steps=5), quiet=True)
    b = train(_cfg(tmp_path / "b", steps=5), quiet=True)
    sa, sb = load_weights(a.weights).state_dict(), load_weights(b.weights).state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_bad_configs_fail_clearly(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="steps"):
        train(_cfg(tmp_path, steps=0), quiet=True)
    with pytest.raises(ValueError, match="scene-classes"):
        train(_cfg(tmp_path, scene_classes=50), quiet=True)
    with pytest.raises(ValueError):
        train(_cfg(tmp_path, lle_data=tmp_path / "missing"), quiet=True)


def test_trains_from_a_paired_folder(tmp_path: Path) -> None:
    from sllen.data.samples import write_sample_pairs

    data = write_sample_pairs(tmp_path / "pairs", 6, (72, 80), seed=3)
    result = train(_cfg(tmp_path / "run", steps=4, lle_data=data, batch_size=2), quiet=True)
    assert np.isfinite(result.val_psnr)
    assert get_preset("tiny").num_classes == load_weights(result.weights).config.num_classes


def test_pairs_smaller_than_the_crop_are_named(tmp_path: Path) -> None:
    from sllen.data.pair_datasets import find_paired
    from sllen.data.samples import write_sample_pairs
    from sllen.train.data import smaller_than_crop

    pairs = find_paired(write_sample_pairs(tmp_path / "pairs", 3, (40, 56), seed=3))
    note = smaller_than_crop(pairs, 48)
    assert note is not None and note.startswith("3 of 3 training pairs are smaller than")
    assert "--crop-size 48" in note and "56x40" in note and "padded by reflection" in note
    assert smaller_than_crop(pairs, 40) is None
    assert smaller_than_crop(torch.utils.data.TensorDataset(torch.zeros(2)), 999) is None


def test_validation_pairs_not_held_out_are_named(tmp_path: Path) -> None:
    from PIL import Image

    from sllen.data.samples import write_sample_pairs
    from sllen.train.data import validation_note

    for split in ("our485", "eval15"):  # LOL's layout: best.safetensors picked on eval15
        for kind in ("low", "high"):
            (tmp_path / "LOL" / split / kind).mkdir(parents=True)
            Image.new("RGB", (8, 8)).save(tmp_path / "LOL" / split / kind / "1.png")
    note = validation_note(TrainConfig(lle_data=tmp_path / "LOL"))
    assert note is not None and "evaluation split" in note and "--val-holdout N" in note
    folder = write_sample_pairs(tmp_path / "pairs", 2, (16, 16), seed=3)
    note = validation_note(TrainConfig(lle_data=folder))
    assert note is not None and "first 16 (at most) training pairs" in note
    assert validation_note(TrainConfig(lle_data=folder, val_holdout=1)) is None
    assert validation_note(TrainConfig(lle_data=tmp_path / "LOL", val_data=folder)) is None
    assert validation_note(TrainConfig()) is None  # generated pairs: a seed of their own
    note = validation_note(TrainConfig(lle_photos=folder / "high"))
    assert note is not None and "of the training photos" in note


def test_fit_steps_spends_the_time_left_at_the_measured_speed() -> None:
    from sllen.train.budget import fit_steps

    assert fit_steps(100, per_step_s=0.5, elapsed_s=50.0, budget_s=100.0) == 200
    assert fit_steps(100, per_step_s=0.3, elapsed_s=99.9, budget_s=100.0) == 100
    assert fit_steps(100, per_step_s=0.5, elapsed_s=120.0, budget_s=100.0) == 100  # over: stop


def test_a_time_budget_sets_the_runs_length(tmp_path: Path) -> None:
    # A clock that moves one second per reading (about one a step) makes the run's speed
    # known: a 40-second budget is about 40 steps, whatever --steps guessed (5 here).
    ticks = iter(range(10**6))
    trainer = Trainer(
        _cfg(tmp_path, steps=5, minutes=40 / 60, val_every=1000, save_every=1000), quiet=True
    )
    trainer.clock = lambda: float(next(ticks))
    result = trainer.run()
    assert 30 <= result.steps <= 41, result.steps
    with open(tmp_path / "log.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert int(rows[-1]["step"]) == result.steps and rows[-1]["val_psnr"]  # validated at its end
    lr = {int(r["step"]): float(r["lr"]) for r in rows}
    assert lr[10] == lr[20] == 2e-3  # held until the length is known, not a cosine over 5 steps
    assert lr[result.steps] < 2e-3 * 0.2  # then decayed to (near) the floor at the end
    assert float(rows[-1]["time_s"]) <= 44
    meta = read_metadata(tmp_path / "last.safetensors")
    assert int(meta["steps"]) == result.steps
    assert meta["torch_threads"] == str(torch.get_num_threads())  # what ran it (provenance)


def test_a_time_budget_needs_the_alternating_schedule(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="alternating"):
        _cfg(tmp_path, minutes=1.0, schedule="independent")
    with pytest.raises(ValueError, match="minutes"):
        _cfg(tmp_path, minutes=0.0)


def _driven(cfg: TrainConfig) -> Trainer:
    ticks = iter(range(10**6))
    trainer = Trainer(cfg, quiet=True)
    trainer.clock = lambda: float(next(ticks))  # one second per reading
    return trainer


def test_a_resumed_time_budget_spends_what_is_left(tmp_path: Path) -> None:
    # The budget is the whole run's: resumed with twice the minutes, the run trains about as
    # long again; resumed with the minutes it has spent, it is finished; without --minutes and a
    # --steps below its step, it refuses too (it would train nothing and save nothing).
    kw = dict(steps=5, val_every=1000, save_every=10)
    first = _driven(_cfg(tmp_path, minutes=40 / 60, **kw)).run()
    second = _driven(_cfg(tmp_path, minutes=80 / 60, resume=True, **kw)).run()
    assert 1.5 * first.steps <= second.steps <= 2.5 * first.steps, (first.steps, second.steps)
    # its time used up: finished, as a --steps run at its end (exit 0 for a resume loop)
    console = Console(file=io.StringIO(), width=300)
    again = Trainer(_cfg(tmp_path, minutes=80 / 60, resume=True, **kw), console=console).run()
    said = console.file.getvalue()  # type: ignore[attr-defined]
    assert re.search(
        r"already finished: it trained 1\.\d of its --minutes 1\.333; raise --minutes", said
    )
    assert again.steps == second.steps
    with pytest.raises(ValueError, match="past --steps"):
        train(_cfg(tmp_path, steps=10, resume=True, save_every=10), quiet=True)


def test_a_time_budget_run_that_ended_just_under_it_is_finished(tmp_path: Path) -> None:
    # The last fit leaves the final validation its time, so a run may end a little under its
    # budget: resumed with the same --minutes it is finished (was: it trained again, with the
    # learning rate back up); with more minutes it trains on.
    kw = dict(steps=5, val_every=1000, save_every=10)
    first = _driven(_cfg(tmp_path, minutes=40 / 60, **kw)).run()
    state_file = tmp_path / "checkpoint" / "state.json"
    state = json.loads(state_file.read_text())
    state_file.write_text(json.dumps({**state, "train_seconds": 39.0}))  # 1 s under
    again = _driven(_cfg(tmp_path, minutes=40 / 60, resume=True, **kw)).run()
    assert again.steps == first.steps
    assert json.loads(state_file.read_text())["step"] == first.steps  # nothing written
    more = _driven(_cfg(tmp_path, minutes=60 / 60, resume=True, **kw)).run()
    assert more.steps > first.steps


def test_an_independent_run_keeps_its_stage_switch_on_resume(tmp_path: Path) -> None:
    train(_cfg(tmp_path, steps=2, schedule="independent"), quiet=True)
    with pytest.raises(ValueError, match=r"switches stages at --steps: this run keeps --steps 2"):
        train(_cfg(tmp_path, steps=3, schedule="independent", resume=True), quiet=True)


def test_a_resumed_runs_time_goes_on_from_the_checkpoints(tmp_path: Path) -> None:
    # log.csv's time_s is the run's, not this start's: a curve plotted against time has no
    # jump back to 0 at a resume.
    kw = dict(val_every=1000, save_every=10)
    _driven(_cfg(tmp_path, steps=10, **kw)).run()
    state = tmp_path / "checkpoint" / "state.json"
    spent = json.loads(state.read_text())["train_seconds"]
    _driven(_cfg(tmp_path, steps=20, resume=True, **kw)).run()
    with open(tmp_path / "log.csv", newline="") as f:
        times = [float(r["time_s"]) for r in csv.DictReader(f)]
    # (the driven clock moves only when read: a fresh start's time would be back at 1 s)
    assert times[0] <= spent < times[1], (times, spent)
    assert json.loads(state.read_text())["train_seconds"] >= times[1]


@pytest.mark.parametrize(("best_by", "best_step"), [("psnr", "10"), ("gt-mean", "20")])
def test_best_weights_follow_the_chosen_score(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, best_by: str, best_step: str
) -> None:
    from sllen.train.trainer import Validation

    # scripted scores: plain PSNR peaks at step 10, GT-mean at step 20
    scores = iter([Validation(20.0, 0.7, 20.0, 0.7), Validation(18.0, 0.7, 22.0, 0.7)])
    monkeypatch.setattr(Trainer, "validate", lambda self: next(scores))
    train(_cfg(tmp_path, best_by=best_by), quiet=True)
    assert read_metadata(tmp_path / "best.safetensors")["steps"] == best_step
    with pytest.raises(ValueError, match="best-by"):
        _cfg(tmp_path, best_by="ssim")


def test_refine_in_loss_gives_the_losses_the_refined_output(tmp_path: Path) -> None:
    # Both refinement stages (colour stage radius 2: the tiny crops are 64 pixels).
    refine = {"refine_radius": 2, "refine_chroma_radius": 2}
    trainer = Trainer(_cfg(tmp_path, refine_in_loss=True, model_overrides=refine), quiet=True)
    trainer._setup()
    seen: list[torch.Tensor] = []
    loss = trainer.lle_loss
    trainer.lle_loss = lambda image, *a: (seen.append(image.detach()), loss(image, *a))[1]
    low = torch.rand(2, 3, 64, 64) * 0.1
    batch = {"low": low, "high": torch.rand(2, 3, 64, 64)}
    trainer.model.train()
    with torch.no_grad():
        network = trainer.model.forward_all(low, with_segmentation=False).image
        expected = trainer.model.refine(low, network)  # weights before the step's update
    trainer.lle_step(batch)
    assert torch.allclose(seen[0], expected, atol=1e-6)
    assert (seen[0] - network).abs().max() > 1e-3  # the refinement changed it
    # The tiny preset has no refinement: refused before anything trains.
    with pytest.raises(ValueError, match="--refine-in-loss needs the refinement"):
        Trainer(_cfg(tmp_path / "none", refine_in_loss=True), quiet=True).run()
    assert not (tmp_path / "none" / "log.csv").exists()
