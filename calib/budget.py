"""The INT8 accuracy budget: the pairs it is judged on and the drops it measures.

Budget definition (``max_psnr_drop``, default 0.5 dB, and ``max_ssim_drop``, default 0.01)
A held-back part of the frames (quantize_int8's ``holdout_fraction``, brightness-stratified,
never used for the ranges) is turned into pairs with a ground truth: the reference ``gt`` is
the FP32 model's enhanced output of each held-back frame (a well-lit picture of real
deployment content), and the input ``low`` is that reference darkened by sllen.data.synthesis
(``synthesize_low``, seeded: exposure, colour cast, uneven light, sensor noise). Then, with
sllen's PSNR protocol (RGB, range 1, mean over images)::

    drop = PSNR(FP32(low), gt) - PSNR(INT8(low), gt)      must be <= max_psnr_drop
    ssim_drop = SSIM(FP32(low), gt) - SSIM(INT8(low), gt) must be <= max_ssim_drop

The SSIM drop sees what the PSNR drop averages away: coarse quantization steps on dark content
turn into grain once the network brightens it. Measured on the bundled model (TensorRT flavour,
the sample clip, the network input quantized): 0.22 dB and 0.010 SSIM on the held-back frames,
0.013 SSIM on LOL eval15; with the input layer kept in float (sllen.calib.int8's
``exclude_input``) -0.04 dB and 0.005 (docs/export.md).

``references="frames"`` uses the held-back frames themselves as the references (for
well-lit material), each darkened at every exposure of ``BUDGET_EXPOSURES`` (the rest of the
synthesis drawn as above): a random exposure per picture may miss the merely dark inputs,
where an INT8 file calibrated on darker footage clips (the bundled model on the sample clip,
without the brightened copies: 0.38 dB on the held-back frames, -0.09 dB on eight photographs
at random exposures, 3.3 dB on them at exposure 0.2); ``references=(low, gt)`` passes real
pairs. The report also gives the fidelity PSNR(INT8(frame), FP32(frame)) on the held-back
frames as they are.

A second set judges the budget on images unlike the calibration frames: quantize_int8's
``eval_frames`` with ``eval_references`` ("enhanced", "frames" or (low, gt), as
``references``; sllen-export's ``--eval-data``, by default darkened evaluation photographs or
generated scenes: sllen.calib.frames.budget_eval_frames). Each set gets its own drop in the
report; the budget holds when it holds on every set.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from sllen.calib.graph import psnr_db, run
from sllen.runtime.errors import InputError

__all__ = [
    "BUDGET_EXPOSURES",
    "BudgetSet",
    "Score",
    "budget_pairs",
    "budget_set",
    "measure_budget",
    "psnr_each",
    "ssim_each",
]

# references="frames": each picture is darkened at each of these exposures (sllen.evalset's:
# about 5, 3.6 and 2.3 stops under), so the budget sees dim and merely dark inputs alike.
BUDGET_EXPOSURES = (0.03, 0.08, 0.2)


def budget_pairs(
    fp32_sess,
    holdout: np.ndarray | None,
    references="enhanced",
    seed: int = 0,
    enhanced: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(low, gt)`` for the budget (module docstring). ``holdout`` may be None only when
    ``references`` is a (low, gt) tuple. ``enhanced``: FP32's outputs on ``holdout`` where the
    caller has them already (references="enhanced" then does not run the model again)."""
    from sllen.data.synthesis import SynthesisParams, synthesize_low

    if isinstance(references, tuple):
        low, gt = (np.asarray(a, dtype=np.float32) for a in references)
        if low.shape != gt.shape:
            raise InputError(f"reference pairs differ in shape: {low.shape} vs {gt.shape}")
        return low, gt
    assert holdout is not None, "holdout frames are needed unless references is (low, gt)"
    if references == "enhanced":
        gt = np.clip(run(fp32_sess, holdout) if enhanced is None else enhanced, 0.0, 1.0)
        params = [SynthesisParams()] * len(gt)
    elif references == "frames":  # each picture at each exposure (module docstring)
        gt = np.repeat(np.asarray(holdout, dtype=np.float32), len(BUDGET_EXPOSURES), axis=0)
        params = [SynthesisParams(fixed_exposure=e) for e in BUDGET_EXPOSURES] * len(holdout)
    else:
        raise InputError(
            f"references must be 'enhanced', 'frames' or (low, gt), got {references!r}"
        )
    low = np.empty_like(gt)
    for i, (img, cfg) in enumerate(zip(gt, params, strict=True)):
        dark, _ = synthesize_low(img.transpose(1, 2, 0), np.random.default_rng([seed, i]), cfg)
        low[i] = dark.transpose(2, 0, 1)
    return low, gt


def psnr_each(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """PSNR of each image, outputs clipped to [0, 1] (sllen's protocol, per image)."""
    return np.array(
        [psnr_db(np.clip(p[None], 0, 1), g[None]) for p, g in zip(pred, gt, strict=True)]
    )


def ssim_each(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """SSIM of each image (sllen's protocol, sllen.metrics), outputs clipped to [0, 1]."""
    from sllen.metrics.psnr_ssim import ssim

    return np.array(
        [
            ssim(np.clip(p, 0, 1).transpose(1, 2, 0), g.transpose(1, 2, 0))
            for p, g in zip(pred, gt, strict=True)
        ]
    )


class Score(NamedTuple):
    """One budget set: FP32 and INT8 against the references, and the drops (module docstring)."""

    psnr_fp32: float
    psnr_int8: float
    drop: float
    ssim_fp32: float
    ssim_int8: float
    ssim_drop: float


class BudgetSet(NamedTuple):
    """One budget set: its pairs, FP32's outputs for ``low`` and FP32's scores, computed once
    (the fallback checks the budget again after every layer it moves back)."""

    low: np.ndarray
    gt: np.ndarray
    out32: np.ndarray
    psnr_fp32: float
    ssim_fp32: float


def budget_set(sess32, low: np.ndarray, gt: np.ndarray) -> BudgetSet:
    """Run the FP32 session ``sess32`` on ``low`` and score it against ``gt``."""
    out32 = run(sess32, low)
    ssim32 = float(ssim_each(out32, gt).mean())
    return BudgetSet(low, gt, out32, psnr_db(np.clip(out32, 0, 1), gt), ssim32)


def measure_budget(sess8, ref: BudgetSet) -> Score:
    """The budget's scores of the INT8 session ``sess8`` on the set ``ref``. Outputs are
    clipped to [0, 1]."""
    out8 = run(sess8, ref.low)
    p8, s8 = psnr_db(np.clip(out8, 0, 1), ref.gt), float(ssim_each(out8, ref.gt).mean())
    return Score(ref.psnr_fp32, p8, ref.psnr_fp32 - p8, ref.ssim_fp32, s8, ref.ssim_fp32 - s8)
