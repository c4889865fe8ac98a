"""sllen-train: Algorithm 1 (alternating SS and LLE stages) and SLLEN-4 (independent).

One step of the alternating schedule is one SS batch (segmentation loss; updates E and D_s)
followed by one LLE batch (Eq. 11; updates E and LLEmN's modules and D_l). Each stage has its
own Adam optimizer over its own parameter group, so the shared encoder E receives both tasks'
updates, each with its own moment estimates.

Distributed: launched by torchrun (WORLD_SIZE > 1) every process trains on its shard of
each dataset (DistributedSampler); gradients are averaged by DistributedDataParallel; only
rank 0 validates, logs and writes files. The batch size is per process.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from rich.console import Console
from torch import nn

import sllen
from sllen.config import get_preset
from sllen.losses import LLELoss, PerceptualLoss, SegmentationLoss
from sllen.model.io import load_weights, read_metadata, save_weights
from sllen.model.sllen import SLLEN
from sllen.runtime.errors import InputError
from sllen.train import ddp
from sllen.train.budget import FIT_AFTER, FIT_EVERY, WARMUP_STEPS, refit_total
from sllen.train.checkpoint import load_checkpoint, save_checkpoint
from sllen.train.config import TrainConfig
from sllen.train.data import (
    build_datasets,
    cycle,
    estimate_level,
    make_loader,
    smaller_than_crop,
    validation_note,
)
from sllen.train.ema import WeightEMA
from sllen.train.init_weights import check_init_weights
from sllen.train.interrupt import (
    REPEAT_S,
    Interrupted,
    StopAfterStep,
    launched_by_a_manager,
    sigterm_interrupts,
)
from sllen.train.log import open_log, progress_bar
from sllen.train.provenance import run_provenance
from sllen.train.run_folder import (
    check_new_run,
    check_out,
    check_resumable,
    check_same_run,
    check_stage_boundary,
    run_config,
)
from sllen.train.stages import Stages, pick_device
from sllen.train.validation import Validation, validate


@dataclass
class TrainResult:
    weights: Path  # last weights
    best: Path  # weights with the best validation score (cfg.best_by)
    steps: int
    val_psnr: float
    val_ssim: float


class Trainer:
    def __init__(self, cfg: TrainConfig, console: Console | None = None, quiet: bool = False):
        self.cfg = cfg
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.distributed = self.world > 1
        self.rank = int(os.environ.get("RANK", "0"))
        # soft_wrap: a log file gets one line per message, not lines cut at 80 columns
        self.console = console or Console(soft_wrap=True)
        self.quiet = quiet or self.rank != 0
        self.clock = time.monotonic  # the run's clock (a test drives it)
        self.finished = False  # a resumed run already at its last step: nothing to train
        self.gradient_level: float | None = cfg.gradient_level  # G; set up in _setup
        if cfg.threads is not None:
            torch.set_num_threads(cfg.threads)
        self.provenance = run_provenance()  # after the threads are set

    def log(self, msg: str) -> None:
        if not self.quiet:
            self.console.print(msg)

    # -- set-up -----------------------------------------------------------------------------
    def _setup(self) -> None:
        cfg = self.cfg
        if self.distributed and not dist.is_initialized():
            ddp.join_group(cfg.device)
        self.device = pick_device(cfg.device)
        if self.distributed and self.device.type == "cuda":
            self.device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            torch.cuda.set_device(self.device)
        torch.manual_seed(cfg.seed)

        overrides = dict(cfg.model_overrides)
        if cfg.schedule == "independent":
            overrides["shared_encoder"] = False  # SLLEN-4: two networks, combined afterwards
        model_cfg = get_preset(cfg.preset, **overrides)
        if cfg.ss_data is None and cfg.scene_classes > model_cfg.num_classes:
            raise InputError(
                f"--scene-classes {cfg.scene_classes} exceeds the model's "
                f"{model_cfg.num_classes} classes"
            )
        if cfg.refine_in_loss and not model_cfg.refine_radius:
            raise InputError("--refine-in-loss needs the refinement: a --refine-radius above 0")
        self.model = SLLEN(model_cfg)
        if cfg.init_weights is not None and not cfg.resume:
            # Fine-tuning: the weights only (the file's config must be this preset's); a
            # resumed run takes its weights from the checkpoint instead.
            check_init_weights(cfg.init_weights, model_cfg)
            start = load_weights(cfg.init_weights, expected=model_cfg)
            self.model.load_state_dict(start.state_dict())
            self.log(f"starting from the weights in {cfg.init_weights}")
        self.model = self.model.to(self.device)
        self.stages: nn.Module = Stages(self.model)
        if self.distributed:
            self.stages = nn.parallel.DistributedDataParallel(
                self.stages,
                find_unused_parameters=True,
                device_ids=[self.device.index] if self.device.type == "cuda" else None,
            )

        self.opt_ss = torch.optim.Adam(self.model.ss_parameters(), lr=cfg.lr)
        self.opt_lle = torch.optim.Adam(self.model.lle_parameters(), lr=cfg.lr)
        self.total_steps = cfg.steps * (2 if cfg.schedule == "independent" else 1)
        self._start_state()
        if self.finished:
            return  # no data to index, nothing to load
        self.data = build_datasets(cfg, model_cfg)
        if small := smaller_than_crop(self.data.lle, cfg.crop_size):
            self.log(f"[yellow]note:[/] {small}")
        if held := validation_note(cfg):
            self.log(f"[yellow]note:[/] {held}")
        self.use_amp = cfg.amp and self.device.type == "cuda"
        amp_dtype = torch.bfloat16
        if self.use_amp and not torch.cuda.is_bf16_supported():
            amp_dtype = torch.float16
        self.amp_dtype = amp_dtype
        scaler_on = self.use_amp and amp_dtype == torch.float16
        self.scalers = {
            "ss": torch.amp.GradScaler("cuda", enabled=scaler_on),
            "lle": torch.amp.GradScaler("cuda", enabled=scaler_on),
        }

        perceptual = PerceptualLoss.from_file(cfg.vgg_weights)
        if perceptual is None and cfg.loss_weights.perceptual > 0:
            self.log(
                "[yellow]perceptual loss off:[/] no --vgg-weights file given "
                "(sllen never downloads weights)"
            )
        ckpt = cfg.out / "checkpoint"
        self.ema = WeightEMA(self.model, cfg.ema) if cfg.ema else None
        if self.ema is not None and cfg.resume and not self.ema.load(ckpt):
            self.log("the checkpoint has no weight average: --ema starts from its weights")
        if self.gradient_level is None:
            self.gradient_level = estimate_level(self.data.lle)
            self.log(
                f"gradient level G = {self.gradient_level:.4f} (estimated from the "
                "well-lit training images)"
            )
        self._start_data_streams()
        self.seg_loss = SegmentationLoss()
        self.lle_loss = LLELoss(cfg.loss_weights, self.gradient_level, perceptual).to(self.device)
        if perceptual is not None:
            perceptual.to(self.device)

    def _start_state(self) -> None:
        """Step 0, or the checkpoint's step, best score and time with --resume; a resumed run
        already at its end is marked finished."""
        cfg = self.cfg
        self.step = 0
        self.lr_held = False
        self.last_val_s = 0.0  # how long the last validation and save took (--minutes)
        self.spent_s = 0.0  # training seconds of the run before this start (checkpoint)
        self.t0 = self.clock()
        self.best_score = -math.inf
        self.val_psnr = self.val_ssim = self.val_psnr_gm = float("nan")
        ckpt = cfg.out / "checkpoint"
        state: dict[str, Any] = {}
        ended = False
        if cfg.resume:
            state = load_checkpoint(
                ckpt, self.model, {"opt_ss": self.opt_ss, "opt_lle": self.opt_lle}
            )
            for note in check_same_run(state.get("config"), cfg.to_dict(), TrainConfig.defaults()):
                self.log(f"[yellow]note:[/] {note}")
            self.step = int(state["step"])
            # the best score so far, unless it was kept by another measure than this run's
            if state.get("best_by", "psnr") == cfg.best_by:
                self.best_score = float(state["best_psnr"])
            self.gradient_level = float(state["gradient_level"])
            # log.csv's time_s and the checkpoint's train_seconds go on from the run's own
            self.spent_s = float(state.get("train_seconds", 0.0))
            if count := ddp.process_count_note(state, self.world, cfg.batch_size):
                self.log(f"[yellow]note:[/] {count}")
            check_stage_boundary(state, cfg)
            ended = int(state.get("total_steps") or 0) == self.step  # at its (fitted) end
            if cfg.minutes is not None and state.get("total_steps"):
                # The budget is the whole run's: what is left of it, on the schedule the run
                # had (refitted to this start's speed as it goes: no jump in the rate).
                self.total_steps = max(int(state["total_steps"]), self.step + 1)
        # a --minutes run is done when its time is used, or when it ended on the same budget
        # a little under it (the last fit leaves the final validation its time)
        spent = (
            cfg.resume
            and cfg.minutes is not None
            and (
                self.spent_s >= cfg.minutes * 60
                or (ended and state.get("config", {}).get("minutes") == cfg.minutes)
            )
        )
        if spent:  # its time used up: finished, as a --steps run at its last step is
            self.total_steps = self.step
        elif cfg.minutes is not None:
            # A first guess, refitted once the speed is measured; a fresh run holds its
            # learning rate until then (a resumed one follows the length it had).
            self.lr_held = not (cfg.resume and self.spent_s > 0)
            self.total_steps = max(self.total_steps, self.step + FIT_AFTER + FIT_EVERY)
        elif self.step > self.total_steps:
            raise InputError(
                f"the checkpoint is at step {self.step}, past --steps {cfg.steps}: "
                "give a larger --steps (or --minutes) to train on"
            )
        self.finished = cfg.resume and (spent or self.step == self.total_steps)
        if cfg.resume and not self.finished:
            self.log(f"resumed from {ckpt} at step {self.step}")

    def _start_data_streams(self) -> None:
        """Endless batch streams; a resumed run starts at the first epoch it has not begun
        (the rest of a partly used epoch is skipped rather than generated and thrown away)."""
        cfg = self.cfg
        ss_loader = make_loader(
            self.data.ss, cfg.ss_batch_size, cfg.seed, cfg.workers, self.distributed
        )
        lle_loader = make_loader(
            self.data.lle, cfg.batch_size, cfg.seed + 1, cfg.workers, self.distributed
        )
        if cfg.schedule == "alternating":
            ss_used = lle_used = self.step
        else:
            ss_used, lle_used = min(self.step, cfg.steps), max(self.step - cfg.steps, 0)
        self.ss_iter = cycle(ss_loader, -(-ss_used // len(ss_loader)))
        self.lle_iter = cycle(lle_loader, -(-lle_used // len(lle_loader)))

    # -- stages -----------------------------------------------------------------------------
    def _lr_factor(self, step: int) -> float:
        if self.lr_held:  # --minutes, before the run's length is known
            return 1.0
        if self.cfg.schedule == "independent":  # SLLEN-4: one whole cosine for each stage
            return self._cosine(step % self.cfg.steps, self.cfg.steps)
        return self._cosine(step, self.total_steps)

    def _cosine(self, step: int, length: int) -> float:
        t = min(step / max(length, 1), 1.0)
        r = self.cfg.lr_min_ratio
        return r + (1 - r) * 0.5 * (1 + math.cos(math.pi * t))

    def _set_lr(self) -> float:
        lr = self.cfg.lr * self._lr_factor(self.step)
        for opt in (self.opt_ss, self.opt_lle):
            for g in opt.param_groups:
                g["lr"] = lr
        return lr

    def _autocast(self) -> Any:
        return torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.use_amp)

    def _update(self, stage: str, opt: torch.optim.Optimizer, loss: torch.Tensor) -> None:
        scaler = self.scalers[stage]
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    def ss_step(self, batch: dict[str, torch.Tensor]) -> float:
        self.stages.train()
        self.opt_ss.zero_grad(set_to_none=True)
        image = batch["image"].to(self.device, non_blocking=True)
        label = batch["label"].to(self.device, non_blocking=True)
        with self._autocast():
            logits = self.stages(image, "ss")["segmentation"]
            loss = self.seg_loss(logits.float(), label)
        self._update("ss", self.opt_ss, loss)
        return float(loss.detach())

    def lle_step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        self.stages.train()
        self.opt_lle.zero_grad(set_to_none=True)
        low = batch["low"].to(self.device, non_blocking=True)
        high = batch["high"].to(self.device, non_blocking=True)
        with self._autocast():
            out = self.stages(low, "lle")
        enc = [f.float() for f in out["encoder"]]
        dec = [f.float() for f in out["decoder"]]
        image = out["image"].float()
        if self.cfg.refine_in_loss:
            # Outside autocast: the refinement's statistics are differences of means.
            assert self.model.refine is not None  # _setup checked
            image = self.model.refine(low, image)
        total, terms = self.lle_loss(image, high, low, enc, dec)
        self._update("lle", self.opt_lle, total)
        return {"lle_total": float(total.detach()), **terms}

    @property
    def served(self) -> SLLEN:
        """What is validated and written as weights: the average with --ema, else the model."""
        return self.model if self.ema is None else self.ema.model

    @torch.no_grad()
    def validate(self) -> Validation:
        return validate(self.served, self.data.val, self.device)

    def _fit_to_time(self, done: int, elapsed_s: float, since_warm_s: float) -> None:
        """Refit the run's length to its time budget (--minutes) from the speed since warm-up."""
        assert self.cfg.minutes is not None
        budget = self.cfg.minutes * 60 - self.spent_s  # a resumed run has spent some of it
        if done >= FIT_AFTER:  # the same step on every process: the rates stay identical
            self.lr_held = False
        total = refit_total(
            self.step, done, self.total_steps, elapsed_s, since_warm_s, budget, self.last_val_s
        )
        if self.distributed:  # one length for every process, or the last step deadlocks
            t = torch.tensor([total], dtype=torch.int64, device=self.device)
            dist.broadcast(t, 0)
            total = int(t.item())
        self.total_steps = total

    # -- files ------------------------------------------------------------------------------
    def _already_finished(self) -> TrainResult:
        """A resumed run at its last step: one line, nothing trained or written, and the
        scores its last weights were saved with."""
        cfg = self.cfg
        if self.distributed and dist.is_initialized():
            dist.destroy_process_group()
        done = (
            f": it trained {self.spent_s / 60:.1f} of its --minutes {cfg.minutes:.4g}; "
            "raise --minutes"
            if cfg.minutes is not None
            else f" at step {self.step} of {self.total_steps}: raise --steps"
        )
        self.log(f"{cfg.out} already finished{done} to train further")
        last = cfg.out / "last.safetensors"
        meta = read_metadata(last) if last.is_file() else {}
        return TrainResult(
            last,
            cfg.out / "best.safetensors",
            self.step,
            float(meta.get("val_psnr", "nan")),
            float(meta.get("val_ssim", "nan")),
        )

    def _metadata(self) -> dict[str, str]:
        return {
            "sllen_version": sllen.__version__,
            "train_config": json.dumps(self.cfg.to_dict(), default=str),
            "steps": str(self.step),
            "gradient_level": f"{self.gradient_level:.6f}",
            "val_psnr": f"{self.val_psnr:.4f}",
            "val_ssim": f"{self.val_ssim:.4f}",
            "val_psnr_gm": f"{self.val_psnr_gm:.4f}",
            **self.provenance,
        }

    def _save(self) -> None:
        save_weights(self.served, self.cfg.out / "last.safetensors", self._metadata())
        if self.ema is not None:  # before state.json, which marks the checkpoint complete
            self.ema.save(self.cfg.out / "checkpoint")
        save_checkpoint(
            self.cfg.out / "checkpoint",
            self.model,
            {"opt_ss": self.opt_ss, "opt_lle": self.opt_lle},
            {
                "step": self.step,
                "best_psnr": self.best_score,  # best_by's score (the key older runs have)
                "best_by": self.cfg.best_by,
                "gradient_level": self.gradient_level,
                "total_steps": self.total_steps,
                "train_seconds": self.spent_s + self.clock() - self.t0,
                "world_size": self.world,  # a resume on another count changes the batch
                "config": run_config(self.cfg.to_dict()),  # data folders absolute
            },
        )

    # -- loop -------------------------------------------------------------------------------
    def run(self) -> TrainResult:
        cfg = self.cfg
        self._setup()
        if self.finished:
            return self._already_finished()
        main = self.rank == 0
        writer = None
        if main:
            cfg.out.mkdir(parents=True, exist_ok=True)
            log_file, writer = open_log(cfg.out / "log.csv", cfg.resume, self.step)
            length = (
                f"{cfg.minutes:g} minutes (steps fitted to the measured speed)"
                if cfg.minutes is not None
                else f"{self.total_steps} steps"
            )
            self.log(
                f"training {self.model.config.variant} ({cfg.preset}, "
                f"{sum(p.numel() for p in self.model.parameters()):,} parameters) on "
                f"{self.device}, schedule {cfg.schedule}, {length}"
            )
        t0 = self.t0 = self.clock()
        first_step, t_warm = self.step, t0
        progress = progress_bar(self.console, self.quiet)
        managed = self.distributed or launched_by_a_manager()  # where one stop comes twice
        stop = StopAfterStep(enabled=True, repeat_s=REPEAT_S if managed else 0.0)
        self.saved_step = self.step if cfg.resume else 0  # --resume: the checkpoint's step
        closing = False  # the loop ended or stopped at a step: the closing collectives run
        try:
            with progress, stop:
                task = progress.add_task(
                    "train", total=self.total_steps, completed=self.step, info=""
                )
                while self.step < self.total_steps:
                    lr = self._set_lr()
                    row: dict[str, Any] = {"step": self.step + 1, "lr": f"{lr:.3g}"}
                    ss_phase = cfg.schedule == "alternating" or self.step < cfg.steps
                    lle_phase = cfg.schedule == "alternating" or self.step >= cfg.steps
                    if ss_phase:
                        row["ss_ce"] = self.ss_step(next(self.ss_iter))
                    if lle_phase:
                        row.update(self.lle_step(next(self.lle_iter)))
                    if self.ema is not None:
                        self.ema.update(self.model)
                    self.step += 1
                    if cfg.minutes is not None:
                        now, done = self.clock(), self.step - first_step
                        if done == WARMUP_STEPS:
                            t_warm = now
                        if self.step % FIT_EVERY == 0:
                            self._fit_to_time(done, now - t0, now - t_warm)
                            progress.update(task, total=self.total_steps)
                    last = self.step >= self.total_steps
                    validating = (
                        main and (self.step % cfg.val_every == 0 or last) and (lle_phase or last)
                    )
                    t_val = self.clock() if validating and cfg.minutes is not None else 0.0
                    if validating:
                        v = self.validate()
                        self.val_psnr, self.val_ssim, self.val_psnr_gm = v.psnr, v.ssim, v.psnr_gm
                        row.update(
                            val_psnr=f"{v.psnr:.3f}",
                            val_ssim=f"{v.ssim:.4f}",
                            val_psnr_gm=f"{v.psnr_gm:.3f}",
                            val_ssim_gm=f"{v.ssim_gm:.4f}",
                        )
                        score = v.psnr_gm if cfg.best_by == "gt-mean" else v.psnr
                        if score > self.best_score:
                            self.best_score = score
                            best = cfg.out / "best.safetensors"
                            save_weights(self.served, best, self._metadata())
                    if writer is not None and (self.step % 10 == 0 or last or "val_psnr" in row):
                        row["time_s"] = f"{self.spent_s + self.clock() - t0:.1f}"
                        writer.writerow(
                            {k: (f"{v:.5g}" if isinstance(v, float) else v) for k, v in row.items()}
                        )
                        log_file.flush()
                    saving = self.step % cfg.save_every == 0 or last
                    if saving and main:
                        self._save()
                        self.saved_step = self.step  # the others know of it after the agreement
                    if validating and cfg.minutes is not None:
                        self.last_val_s = self.clock() - t_val  # what the last step will need
                    info = "  ".join(
                        f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}"
                        for k, v in row.items()
                        if k in ("ss_ce", "lle_total", "val_psnr")
                    )
                    progress.update(task, completed=self.step, info=info)
                    asked = stop.asked
                    if self.distributed:  # after rank 0's save: the others then know of it
                        asked = ddp.agree_to_stop(asked, self.device)
                    if saving:
                        self.saved_step = self.step
                    if asked and not last:  # the step is done, the checkpoint whole
                        closing = True
                        if main and self.step % cfg.save_every:  # (else saved just above)
                            self._save()
                        how = stop.signal_name  # SIGTERM: a job scheduler's stop
                        how = {"SIGINT": "interrupted", "": "stopped by another process"}.get(
                            how, f"stopped by {how}"
                        )
                        self.log(
                            f"{how} at step {self.step}: checkpoint saved in "
                            f"{cfg.out / 'checkpoint'} (--resume goes on from there)"
                        )
                        raise Interrupted
                closing = True
        except RuntimeError as e:
            if self.distributed and ddp.is_peer_loss(e):
                raise ddp.peer_lost(e, self.saved_step) from None
            raise
        finally:
            if writer is not None:
                log_file.close()
            if self.distributed and dist.is_initialized():
                if closing:  # not after a failure: a lost peer would hang these
                    ddp.check_replicas_in_sync(self.model)
                    dist.barrier()
                dist.destroy_process_group()
        took = f"{self.step - first_step} steps in {self.clock() - t0:.0f} s"
        if self.spent_s > 0:  # a resumed run: this start's part, then the whole run's time
            took += f" ({self.spent_s + self.clock() - t0:.0f} s in all)"
        self.log(
            f"done: step {self.step}, {took}, validation PSNR "
            f"{self.val_psnr:.2f} dB, SSIM {self.val_ssim:.3f} (GT-mean "
            f"{self.val_psnr_gm:.2f} dB); weights in {cfg.out / 'last.safetensors'}"
        )
        return TrainResult(
            cfg.out / "last.safetensors",
            cfg.out / "best.safetensors",
            self.step,
            self.val_psnr,
            self.val_ssim,
        )


def train(cfg: TrainConfig, console: Console | None = None, quiet: bool = False) -> TrainResult:
    """Train SLLEN as configured; returns where the weights went and the final metrics.

    In the main thread of a single process SIGTERM stops the run as Ctrl-C does (the step
    finished, a checkpoint saved, ``Interrupted`` raised); the previous handlers come back
    after."""
    check_out(cfg.out)
    note = None
    if cfg.resume:
        check_resumable(cfg.out)
    else:
        note = check_new_run(cfg.out)
    trainer = Trainer(cfg, console, quiet)
    if note:
        trainer.log(f"[yellow]note:[/] {note}")
    with sigterm_interrupts(enabled=not trainer.distributed):
        return trainer.run()
