"""sllen-train: train SLLEN (procedural scenes by default, or LOL/LSRW/VOC folders)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, cast

import typer

from sllen.cli._errors import EXIT_INTERRUPTED, run_single, sigterm_stops, user_errors
from sllen.runtime.errors import InputError

Opt = typer.Option


# SIGTERM is the trainer's own: a checkpoint first, and torchrun's ranks left to torchrun
@user_errors(sigterm=False)
def train_command(
    out: Annotated[Path, Opt(help="Output folder: weights, checkpoint, log.csv.")] = Path(
        "runs/sllen"
    ),
    preset: Annotated[str, Opt(help="Model preset: paper, edge or tiny.")] = "edge",
    steps: Annotated[int, Opt(help="Training steps (one SS + one LLE batch each).")] = 2000,
    minutes: Annotated[
        float | None,
        Opt(
            help="Train for about this many minutes instead of --steps: the step count is "
            "fitted to the measured speed as the run goes, the cosine schedule follows."
        ),
    ] = None,
    batch_size: Annotated[int, Opt(help="LLE batch size (per process).")] = 8,
    ss_batch_size: Annotated[int, Opt(help="SS batch size (per process).")] = 8,
    crop_size: Annotated[int, Opt(help="Training crop size in pixels.")] = 128,
    lr: Annotated[float, Opt(help="Adam learning rate (cosine decay).")] = 2e-4,
    seed: Annotated[int, Opt(help="Random seed (model init and data).")] = 0,
    lle_data: Annotated[
        Path | None,
        Opt(help="LLE pairs: LOL, LSRW or a folder with low/ and high/. Default: synthetic."),
    ] = None,
    lle_photos: Annotated[
        Path | None,
        Opt(
            help="Well-exposed photos (a folder, searched recursively) darkened on the fly by "
            "--degradation, instead of generated scenes."
        ),
    ] = None,
    photo_max_side: Annotated[
        int,
        Opt(
            help="Downscale --lle-photos so the longer side is at most this (area average; "
            "0 = full size)."
        ),
    ] = 1920,
    ss_data: Annotated[
        Path | None, Opt(help="PASCAL VOC 2012 root for the SS stage. Default: procedural scenes.")
    ] = None,
    schedule: Annotated[
        str, Opt(help="alternating (Algorithm 1) or independent (SLLEN-4).")
    ] = "alternating",
    no_hsbab: Annotated[bool, Opt("--no-hsbab", help="Ablation SLLEN-1.")] = False,
    no_rsaeb: Annotated[bool, Opt("--no-rsaeb", help="Ablation SLLEN-2.")] = False,
    num_classes: Annotated[int | None, Opt(help="Override the preset's class count.")] = None,
    width: Annotated[
        float,
        Opt(
            help="Scale the preset's convolution widths (U-Net, HSEB, RSAEB; multiples of 8); "
            "the attention keeps its size. 1.5 is about 2.2x the parameters and compute."
        ),
    ] = 1.0,
    refine_radius: Annotated[
        int | None,
        Opt(
            help="Guided refinement of the output at inference (validation, the weights' "
            "config): window radius, 0 = off. Default: the preset's (edge 2, paper 0)."
        ),
    ] = None,
    refine_chroma_radius: Annotated[
        int | None,
        Opt(
            help="The refinement's colour stage (mottle on the darkest inputs): window "
            "radius, 0 = off, else >= 2 (fitted at half resolution). Default: the preset's "
            "(edge 8)."
        ),
    ] = None,
    refine_in_loss: Annotated[
        bool,
        Opt(
            help="Train through the refinement: the losses see the refined output (what the "
            "weights serve) instead of the network's own."
        ),
    ] = False,
    scene_classes: Annotated[int, Opt(help="Classes of the procedural scenes.")] = 8,
    scene_detail: Annotated[
        bool,
        Opt(
            help="Photo-like detail on the generated ground truths: 1/f albedo variation, "
            "shelves of thin objects, light falloff."
        ),
    ] = False,
    detail_albedo: Annotated[
        float,
        Opt(
            help="With --scene-detail: the largest 1/f albedo variation (fraction of the "
            "level); 0 keeps only the shelves and the light falloff."
        ),
    ] = 0.1,
    detail_strokes: Annotated[
        float,
        Opt(
            help="With --scene-detail: the share of ground truths that also get thin strokes "
            "(curves and text-like glyphs, 0.7-2.5 pixels wide); 0 = none."
        ),
    ] = 0.0,
    degradation: Annotated[
        str,
        Opt(
            help="How generated pairs are darkened: simple (noise per RGB pixel), camera (raw "
            "pipeline: mosaic, gain, banding, chroma blotches, ISP, JPEG) or mixed (3/4 camera)."
        ),
    ] = "mixed",
    camera_share: Annotated[
        float,
        Opt(
            help="With --degradation mixed: the share of pairs darkened by the camera "
            "pipeline; the rest by the simple synthesis."
        ),
    ] = 0.75,
    bright_share: Annotated[
        float,
        Opt(
            help="Share of generated pairs captured well lit (up to 2 stops under, low gain), "
            "so bright inputs are left nearly as they are. Default 0."
        ),
    ] = 0.0,
    black_point: Annotated[
        float,
        Opt(
            help="The camera pipeline's ISP black point, drawn from K/2 to K times the read "
            "noise, so the shadows of generated captures go to black as real cameras' do. "
            "0-20; default 0 (none)."
        ),
    ] = 0.0,
    gt_exposure: Annotated[
        float,
        Opt(
            help="Move each generated pair's ground truth by up to this many stops either way "
            "(uniform, independent of its content; the low follows), as metering choices move "
            "real photographs. 0-2; default 0 (off)."
        ),
    ] = 0.0,
    emitters: Annotated[
        float,
        Opt(
            help="Share of generated pairs given light sources in the picture (lamps, lit "
            "windows), their clipped cores bright in the low image and the ground truth alike, "
            "so a bright spot does not darken its surroundings. 0-1; default 0 (off)."
        ),
    ] = 0.0,
    emitter_glow: Annotated[
        str,
        Opt(
            help="The lights' glow in the ground truth: scene (brightened by the pair's gain, "
            "as scene light; default) or alike (as in the capture: the pairs before 2026-12-07)."
        ),
    ] = "scene",
    init_weights: Annotated[
        Path | None,
        Opt(
            help="Fine-tune: start from these weights (same preset; 'bundled': the bundled "
            "model), new schedule from step 0."
        ),
    ] = None,
    val_data: Annotated[
        Path | None,
        Opt(help="Validate on real pairs from this folder (spread over it), not generated ones."),
    ] = None,
    w_smooth_l1: Annotated[float | None, Opt(help="Loss weight (0 = off).")] = None,
    w_perceptual: Annotated[float | None, Opt(help="Loss weight (0 = off).")] = None,
    w_distillation: Annotated[float | None, Opt(help="Loss weight (0 = off).")] = None,
    w_illumination_tv: Annotated[float | None, Opt(help="Loss weight (0 = off).")] = None,
    w_gradient: Annotated[float | None, Opt(help="Loss weight (0 = off).")] = None,
    w_ssim: Annotated[
        float | None,
        Opt(help="Weight of a 1 - SSIM term (not in the paper's Eq. 11; default 0 = off)."),
    ] = None,
    w_exposure: Annotated[
        float | None,
        Opt(
            help="Weight of an exposure term: L1 of the per-channel image means (not in the "
            "paper's Eq. 11; default 0 = off)."
        ),
    ] = None,
    w_spread: Annotated[
        float | None,
        Opt(
            help="Weight of a brightness-spread term: the batch's spread of mean lightness "
            "against the ground truths' (not in the paper's Eq. 11; default 0 = off; needs "
            "--batch-size >= 2)."
        ),
    ] = None,
    gradient_level: Annotated[
        float | None,
        Opt(help="Target G of the gradient loss. Default: estimated from the training data."),
    ] = None,
    vgg_weights: Annotated[
        Path | None, Opt(help="Local VGG16 weights (.pth or .safetensors) for the perceptual loss.")
    ] = None,
    val_every: Annotated[int, Opt(help="Validate every N steps.")] = 250,
    best_by: Annotated[
        str,
        Opt(
            help="Choose best.safetensors by psnr (the paper's metric) or gt-mean (PSNR with "
            "the exposure set aside: steadier on a few real pairs)."
        ),
    ] = "psnr",
    val_holdout: Annotated[
        int,
        Opt(
            help="Hold N training pairs of --lle-data (or photos of --lle-photos) out and "
            "validate on them (not eval15)."
        ),
    ] = 0,
    save_every: Annotated[int, Opt(help="Checkpoint every N steps.")] = 250,
    ema: Annotated[
        float,
        Opt(
            help="Validate and write a moving average of the weights with this decay (e.g. "
            "0.999, warmed up over the first steps); 0 = off."
        ),
    ] = 0.0,
    resume: Annotated[bool, Opt(help="Continue from OUT/checkpoint.")] = False,
    device: Annotated[str, Opt(help="auto, cpu, cuda or cuda:N.")] = "auto",
    amp: Annotated[bool, Opt(help="Mixed precision on CUDA.")] = True,
    workers: Annotated[int, Opt(help="Data loader worker processes.")] = 0,
    threads: Annotated[int | None, Opt(help="CPU threads for torch.")] = None,
) -> None:
    """Train SLLEN. With no data folders it trains on generated scenes: no dataset needed."""
    import math
    import threading
    from contextlib import nullcontext
    from dataclasses import replace

    # SIGTERM (a job scheduler's stop) while torch loads stops as Ctrl-C does, nothing written
    # yet; train() handles it from there on (a checkpoint first once training has begun).
    main_thread = threading.current_thread() is threading.main_thread()  # signals need it
    with sigterm_stops() if main_thread else nullcontext():
        from sllen.losses import LossWeights
        from sllen.train.config import Schedule, TrainConfig
        from sllen.train.interrupt import Interrupted
        from sllen.train.trainer import train

    if schedule not in ("alternating", "independent"):
        raise InputError(f"--schedule must be alternating or independent, not {schedule!r}")
    overrides: dict[str, object] = {}
    if no_hsbab:
        overrides["use_hsbab"] = False
    if no_rsaeb:
        overrides["use_rsaeb"] = False
    if num_classes is not None:
        overrides["num_classes"] = num_classes
    if width != 1.0:
        from sllen.config import get_preset, widths

        overrides.update(widths(get_preset(preset), width))
    if refine_radius is not None:
        overrides["refine_radius"] = refine_radius
    if refine_chroma_radius is not None:
        overrides["refine_chroma_radius"] = refine_chroma_radius
    weights = LossWeights()
    changes = {
        k: v
        for k, v in {
            "smooth_l1": w_smooth_l1,
            "perceptual": w_perceptual,
            "distillation": w_distillation,
            "illumination_tv": w_illumination_tv,
            "gradient": w_gradient,
            "ssim": w_ssim,
            "exposure": w_exposure,
            "spread": w_spread,
        }.items()
        if v is not None
    }
    for k, v in changes.items():
        if not (math.isfinite(v) and v >= 0):
            raise InputError(f"--w-{k.replace('_', '-')} must be a finite number >= 0, not {v}")
    weights = replace(weights, **changes)
    cfg = TrainConfig(
        out=out,
        preset=preset,
        model_overrides=overrides,
        schedule=cast(Schedule, schedule),  # one of the two, checked above
        steps=steps,
        minutes=minutes,
        batch_size=batch_size,
        ss_batch_size=ss_batch_size,
        crop_size=crop_size,
        lr=lr,
        seed=seed,
        workers=workers,
        threads=threads,
        device=device,
        amp=amp,
        lle_data=lle_data,
        lle_photos=lle_photos,
        photo_max_side=photo_max_side,
        scene_detail=scene_detail,
        detail_albedo=detail_albedo,
        detail_strokes=detail_strokes,
        ss_data=ss_data,
        scene_classes=scene_classes,
        degradation=degradation,
        camera_share=camera_share,
        bright_share=bright_share,
        black_point=black_point,
        gt_exposure=gt_exposure,
        emitters=emitters,
        emitter_glow=emitter_glow,
        init_weights=init_weights,
        val_data=val_data,
        val_every=val_every,
        best_by=best_by,
        val_holdout=val_holdout,
        save_every=save_every,
        ema=ema,
        refine_in_loss=refine_in_loss,
        resume=resume,
        loss_weights=weights,
        gradient_level=gradient_level,
        vgg_weights=vgg_weights,
    )
    try:
        train(cfg)
    except Interrupted:  # the run said where its checkpoint is: no second line
        raise SystemExit(EXIT_INTERRUPTED) from None


def main() -> None:
    run_single(train_command)


if __name__ == "__main__":
    main()
