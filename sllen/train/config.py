"""Training configuration (Algorithm 1 and its SLLEN-4 variant)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from sllen.data.detail import ALBEDO
from sllen.data.emitters import GLOWS
from sllen.data.photos import DEFAULT_MAX_SIDE
from sllen.data.procedural import MAX_GT_EXPOSURE
from sllen.data.synthesis import DEGRADATIONS, MAX_BLACK_POINT, MIXED_CAMERA_SHARE
from sllen.losses import LossWeights
from sllen.runtime.errors import InputError

BEST_BY = ("psnr", "gt-mean")

Schedule = Literal["alternating", "independent"]


# --init-weights bundled: the model shipped with sllen (sllen.weights.default_weights).
BUNDLED = "bundled"


# Options that arrived with a new default: a run saved before them trained the old way, so a
# resume is checked against that (the emitters' glow was added alike until 2026-12-07).
BEFORE_OPTION: dict[str, Any] = {"emitter_glow": "alike"}


@dataclass
class TrainConfig:
    out: Path = Path("runs/sllen")
    preset: str = "edge"
    # Model overrides on top of the preset (ablation switches, num_classes, ...).
    model_overrides: dict[str, Any] = field(default_factory=dict)
    # alternating: Algorithm 1, one SS batch then one LLE batch per step.
    # independent: SLLEN-4, SSaN (own encoder) trained for all steps, then LLEmN.
    schedule: Schedule = "alternating"
    steps: int = 2000
    # A time budget instead of a step count (ultralytics' `time`): the run's total steps are
    # refitted to the measured speed as it goes and the cosine schedule follows; ``steps`` only
    # sets the first guess. Counts from the first training step (set-up comes before it, the
    # last validation is budgeted); the budget is the whole run's, so a resumed run trains
    # what is left of it.
    minutes: float | None = None
    batch_size: int = 8  # LLE stage
    ss_batch_size: int = 8  # SS stage
    crop_size: int = 128
    lr: float = 2e-4
    lr_min_ratio: float = 0.1  # cosine decay to lr * this
    seed: int = 0
    workers: int = 0
    threads: int | None = None  # torch CPU threads; None leaves torch's default
    device: str = "auto"
    amp: bool = True  # mixed precision on CUDA only
    # Data: a folder (LOL, LSRW, or low/+high/) for LLE, a VOC root for SS; None = procedural
    # scenes (and low-light synthesis of them) so training needs no dataset on disk.
    lle_data: Path | None = None
    # Or well-exposed photographs (any folder, searched recursively) darkened on the fly by
    # ``degradation``, as the generated scenes are: one's own images without low-light captures.
    lle_photos: Path | None = None
    # Longer side of those photos after area downscaling (sllen.data.photos: crops that hold a
    # scene, less of the photo's own noise, faster JPEG decode); 0 = full size.
    photo_max_side: int = DEFAULT_MAX_SIDE
    ss_data: Path | None = None
    scene_classes: int = 8  # classes of the procedural scenes (<= the model's num_classes)
    # Photo-like detail on the generated LLE ground truths (sllen.data.detail): 1/f albedo
    # variation, shelves of thin objects, light falloff. Off by default (measured in
    # docs/default-model.md).
    scene_detail: bool = False
    detail_albedo: float = ALBEDO  # its largest 1/f albedo variation; 0 = shelves and falloff only
    detail_strokes: float = 0.0  # share of ground truths with thin strokes (sllen.data.strokes)
    synthetic_length: int = 100_000
    # How generated pairs are darkened (sllen.data.synthesis.SynthesisParams.degradation):
    # simple (per-pixel noise in linear RGB), camera (raw pipeline: mosaic, gain, banding,
    # chroma blotches, ISP, JPEG) or mixed (camera for 3 of 4 images).
    degradation: str = "mixed"
    # With mixed: the share of pairs the camera pipeline darkens (the rest: simple). The
    # built-in evaluation set is darkened by the simple synthesis; real captures are nearer
    # the camera's (docs/default-model.md measures both).
    camera_share: float = MIXED_CAMERA_SHARE
    # Share of generated pairs captured well lit (0.25-1 of a proper exposure, low gain) rather
    # than at least 2 stops under: what teaches the model to leave a bright input nearly as it is.
    bright_share: float = 0.0
    # The camera pipeline's ISP black point, up to this many times the read noise (drawn from
    # half of it to it; 0 = none): real captures' shadows go to black (SynthesisParams).
    black_point: float = 0.0
    # The ground truths' own exposure moved by up to this many stops either way (uniform,
    # independent of their content; 0 = off): brightness a network cannot read from content.
    gt_exposure: float = 0.0
    # Share of generated pairs given light sources in the picture (lamps, lit windows: their
    # clipped cores bright in the low image and the ground truth alike; sllen.data.emitters;
    # 0 = off).
    emitters: float = 0.0
    # How their glow enters the ground truth: "scene" (brightened by the pair's gain, as scene
    # light) or "alike" (as bright as in the capture: the pairs before 2026-12-07).
    emitter_glow: str = "scene"
    # Start from these weights (fine-tuning; same preset; "bundled": the bundled model), unlike
    # resume: fresh optimizers, step 0, the new schedule.
    init_weights: Path | None = None
    # Validate on real pairs from this folder (low/ + high/ or LOL/LSRW; spread over the set,
    # val_images of them) instead of generated ones: choose checkpoints on real sensor noise
    # without training on it.
    val_data: Path | None = None
    val_images: int = 16
    # > 0: hold this many training pairs of --lle-data out of training and validate on them
    # (choose settings on the training set's own split, never on the benchmark's eval split).
    val_holdout: int = 0
    val_every: int = 250
    # What best.safetensors is chosen by: "psnr" (the paper's metric) or "gt-mean" (PSNR after
    # rescaling to the ground truth's mean grey): on a few real pairs the plain PSNR mostly
    # ranks exposure, which the network cannot know (docs/default-model.md, run F).
    best_by: str = "psnr"
    save_every: int = 250
    # > 0: validate and write an exponential moving average of the weights with this decay
    # (sllen.train.ema; BasicSR's ema_decay, 0.999); the checkpoint keeps both.
    ema: float = 0.0
    # The losses see the refined output (the guided refinement the weights are served with,
    # sllen.model.refine) instead of the network's own, so the network learns what the
    # refinement leaves to it. Measured in docs/default-model.md (U2, W2, X1, Y1): no gain yet.
    refine_in_loss: bool = False
    resume: bool = False
    loss_weights: LossWeights = field(default_factory=LossWeights)
    gradient_level: float | None = None  # G of Eq. 10; None = estimate from well-lit images
    vgg_weights: Path | None = None  # local VGG16 weights for the perceptual loss

    def __post_init__(self) -> None:
        # "bundled" names the weights shipped with sllen (unless a file of that name is here):
        # fine-tuning them on a camera's own pairs needs no path into the installed package.
        if str(self.init_weights) == BUNDLED and not Path(BUNDLED).exists():
            from sllen.weights import default_weights

            self.init_weights = default_weights()
        # Accept plain strings from Python callers.
        paths = ("out", "lle_data", "lle_photos", "ss_data", "vgg_weights", "init_weights")
        for name in (*paths, "val_data"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, Path):
                setattr(self, name, Path(value))
        if self.lle_data is not None and self.lle_photos is not None:
            raise InputError(
                "give --lle-data (real pairs) or --lle-photos (photos to darken), not both"
            )
        if self.scene_detail and (self.lle_data is not None or self.lle_photos is not None):
            raise InputError(
                "--scene-detail changes generated scenes: drop it with --lle-data or --lle-photos"
            )
        if not 0.0 <= self.detail_albedo <= 0.5:
            raise InputError(f"--detail-albedo must be in [0, 0.5], not {self.detail_albedo}")
        if self.detail_albedo != ALBEDO and not self.scene_detail:
            raise InputError("--detail-albedo sets a part of --scene-detail: add --scene-detail")
        if not 0.0 <= self.detail_strokes <= 1.0:
            raise InputError(f"--detail-strokes must be in [0, 1], not {self.detail_strokes}")
        if self.detail_strokes and not self.scene_detail:
            raise InputError("--detail-strokes sets a part of --scene-detail: add --scene-detail")
        if not 0.0 <= self.ema < 1.0:
            raise InputError(f"--ema must be a decay in [0, 1) (0 = off), not {self.ema}")
        if self.best_by not in BEST_BY:
            raise InputError(f"--best-by must be one of {', '.join(BEST_BY)}, not {self.best_by!r}")
        if self.photo_max_side < 0:
            raise InputError(
                f"--photo-max-side must be >= 0 (0 = full size), not {self.photo_max_side}"
            )
        if self.val_holdout < 0:
            raise InputError(f"--val-holdout must be >= 0, not {self.val_holdout}")
        if self.degradation not in DEGRADATIONS:
            raise InputError(
                f"--degradation must be one of {', '.join(DEGRADATIONS)}, not {self.degradation!r}"
            )
        if not 0.0 <= self.camera_share <= 1.0:
            raise InputError(f"--camera-share must be in [0, 1], not {self.camera_share}")
        if not 0.0 <= self.bright_share <= 1.0:
            raise InputError(f"--bright-share must be in [0, 1], not {self.bright_share}")
        if self.bright_share and self.lle_data is not None:
            raise InputError("--bright-share darkens generated pairs: drop it with --lle-data")
        if not 0.0 <= self.black_point <= MAX_BLACK_POINT:
            raise InputError(
                f"--black-point must be in [0, {MAX_BLACK_POINT:g}], not {self.black_point}"
            )
        if self.black_point and self.degradation == "simple":
            raise InputError("--black-point sets the camera pipeline: drop --degradation simple")
        if self.black_point and self.lle_data is not None:
            raise InputError("--black-point darkens generated pairs: drop it with --lle-data")
        if not 0.0 <= self.gt_exposure <= MAX_GT_EXPOSURE:
            raise InputError(
                f"--gt-exposure must be in [0, {MAX_GT_EXPOSURE:g}] stops, not {self.gt_exposure}"
            )
        if self.gt_exposure and self.lle_data is not None:
            raise InputError("--gt-exposure changes generated pairs: drop it with --lle-data")
        if not 0.0 <= self.emitters <= 1.0:
            raise InputError(f"--emitters is a share of the pairs, 0-1, not {self.emitters}")
        if self.emitter_glow not in GLOWS:
            raise InputError(
                f"--emitter-glow must be one of {', '.join(GLOWS)}, not {self.emitter_glow!r}"
            )
        if self.emitters and self.lle_data is not None:
            raise InputError("--emitters changes generated pairs: drop it with --lle-data")
        if self.camera_share != MIXED_CAMERA_SHARE and self.degradation != "mixed":
            raise InputError("--camera-share sets the mix of --degradation mixed: add it")
        if self.minutes is not None and not 0 < self.minutes < math.inf:
            raise InputError(f"--minutes must be a finite number > 0, not {self.minutes}")
        if self.minutes is not None and self.schedule == "independent":
            # The phase boundary (SSaN, then LLEmN) is a step count: a refitted total would
            # move it under the run.
            raise InputError("a time budget (--minutes) needs the alternating schedule")
        if self.schedule not in ("alternating", "independent"):
            raise InputError(
                f"--schedule must be alternating or independent, not {self.schedule!r}"
            )
        self._check_combinations()
        self._check_numbers()
        self._check_model_options()

    def _check_combinations(self) -> None:
        """Options that would be accepted and do nothing with the others given: refused, as
        --emitters with --lle-data is (the user meant them to change the run)."""
        if self.val_holdout and self.lle_data is None and self.lle_photos is None:
            raise InputError(
                "--val-holdout holds out pairs of --lle-data or photos of --lle-photos: add one "
                "(generated scenes validate on scenes of their own)"
            )
        if self.val_holdout and self.val_data is not None:
            raise InputError(
                "give --val-holdout (validate on held-out training pairs) or --val-data "
                "(validate on another folder), not both"
            )
        if self.lle_data is not None and self.degradation != "mixed":
            raise InputError(
                "--degradation darkens generated pairs and --lle-photos: drop it with --lle-data"
            )
        if self.lle_data is not None and self.camera_share != MIXED_CAMERA_SHARE:
            raise InputError("--camera-share darkens generated pairs: drop it with --lle-data")
        if self.photo_max_side != DEFAULT_MAX_SIDE and self.lle_photos is None:
            raise InputError("--photo-max-side sizes the photos of --lle-photos: add it")

    def _check_model_options(self) -> None:
        """The model options sllen-train sets (model_overrides), named as the user typed them
        (the model config's own checks name its fields)."""
        m = self.model_overrides
        if m.get("num_classes") is not None and m["num_classes"] < 2:
            raise InputError(f"--num-classes must be at least 2, not {m['num_classes']}")
        if m.get("refine_radius") is not None and m["refine_radius"] < 0:
            raise InputError(f"--refine-radius must be >= 0 (0 = off), not {m['refine_radius']}")
        chroma = m.get("refine_chroma_radius")
        if chroma is not None and (chroma < 0 or chroma == 1):
            raise InputError(
                f"--refine-chroma-radius must be 0 (off) or at least 2 (it is fitted at half "
                f"resolution), not {chroma}"
            )

    def _check_numbers(self) -> None:
        """One line naming the option for values the run would trip over later."""
        if self.crop_size < 16 or self.crop_size % 16:
            raise InputError(
                f"--crop-size must be a multiple of 16 (the network's), not {self.crop_size}"
            )
        for option, value in (
            ("--steps", self.steps),
            ("--batch-size", self.batch_size),
            ("--ss-batch-size", self.ss_batch_size),
            ("--save-every", self.save_every),
            ("--val-every", self.val_every),
        ):
            if value < 1:
                raise InputError(f"{option} must be at least 1, not {value}")
        if not (math.isfinite(self.lr) and self.lr >= 0):  # 0: the weights stay as they start
            raise InputError(f"--lr must be a finite number >= 0, not {self.lr}")
        if self.workers < 0:
            raise InputError(f"--workers must be >= 0, not {self.workers}")
        if self.loss_weights.spread > 0 and self.batch_size < 2:  # one image has no spread
            raise InputError(f"--w-spread needs --batch-size >= 2, not {self.batch_size}")
        if self.threads is not None and self.threads < 1:  # 0 ran on torch's default
            raise InputError(f"--threads must be at least 1, not {self.threads}")
        if self.gradient_level is not None and not (
            math.isfinite(self.gradient_level) and self.gradient_level > 0
        ):
            raise InputError(f"--gradient-level must be > 0, not {self.gradient_level}")
        if self.vgg_weights is not None and not self.vgg_weights.is_file():
            raise InputError(f"--vgg-weights {self.vgg_weights}: no such file")
        from sllen.runtime.backends.base import check_device

        check_device(self.device)

    @staticmethod
    def defaults() -> dict[str, Any]:
        """What a run made before an option existed used: the plain defaults of the fields,
        but for those whose default changed when the option came (BEFORE_OPTION)."""
        plain = {
            f.name: str(f.default) if isinstance(f.default, Path) else f.default
            for f in dataclasses.fields(TrainConfig)
            if f.default is not dataclasses.MISSING
        }
        return {**plain, **BEFORE_OPTION}

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        for k, v in d.items():
            if isinstance(v, Path):
                d[k] = str(v)
        return d
