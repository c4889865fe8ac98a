"""The INT8 budget: well-lit references darkened at every budget exposure; the PSNR and SSIM
drops."""

from __future__ import annotations

import numpy as np
from quant_graphs import conv_model
from recorders import record_calls

from sllen.calib import budget
from sllen.calib.frames import synthetic_calibration_frames
from sllen.calib.graph import run, session


def test_well_lit_references_are_darkened_at_every_budget_exposure(monkeypatch) -> None:
    import sllen.data.synthesis as synthesis

    exposures: list[float | None] = []
    real = synthesis.synthesize_low

    def record(img, rng, cfg=None):
        exposures.append(cfg.fixed_exposure if cfg else None)
        return real(img, rng, cfg)

    gt = synthetic_calibration_frames(2, (32, 32), seed=5) ** 0.5
    monkeypatch.setattr(synthesis, "synthesize_low", record)
    low, ref = budget.budget_pairs(None, gt, "frames", seed=3)
    n = len(budget.BUDGET_EXPOSURES)
    assert low.shape == ref.shape == (2 * n, *gt.shape[1:])
    np.testing.assert_array_equal(ref[:n], np.repeat(gt[:1], n, axis=0))
    assert exposures == list(budget.BUDGET_EXPOSURES) * 2
    assert np.all(low[::n].mean(axis=(1, 2, 3)) < low[n - 1 :: n].mean(axis=(1, 2, 3)))


def test_grain_shows_in_the_ssim_drop_more_than_in_the_psnr_drop(tmp_path) -> None:
    # An "INT8" output that adds fine grain to FP32's: small in PSNR terms, large in SSIM's.
    sess = session(conv_model(tmp_path / "convs.onnx"), threads=1)
    low = synthetic_calibration_frames(3, (48, 48), seed=1)
    out32 = run(sess, low)
    ref = budget.budget_set(sess, low, out32)
    np.testing.assert_array_equal(ref.out32, out32)
    same = budget.measure_budget(sess, ref)
    assert same.drop == 0.0 and same.ssim_drop == 0.0 and same.ssim_fp32 == 1.0

    class Grainy:  # a session whose outputs carry +-1/64 grain
        def __init__(self) -> None:
            self.rng = np.random.default_rng(0)

        def get_inputs(self):
            return sess.get_inputs()

        def get_outputs(self):
            return sess.get_outputs()

        def run(self, names, feeds):
            [y] = sess.run(names, feeds)
            return [y + self.rng.choice([-1, 1], y.shape).astype(np.float32) / 64]

    grainy = budget.measure_budget(Grainy(), ref)
    assert 30 < grainy.psnr_int8 < 40 and grainy.ssim_drop > 0.1
    each = budget.ssim_each(out32, out32)
    assert each.shape == (3,) and np.all(each == 1.0)


def test_fp32_is_scored_once_per_set(tmp_path, monkeypatch) -> None:
    # The fallback checks the budget after every layer it moves: FP32's side of the drop comes
    # from the set, not from scoring FP32's outputs again each time.
    sess = session(conv_model(tmp_path / "convs.onnx"), threads=1)
    low = synthetic_calibration_frames(2, (32, 32), seed=2)
    ref = budget.budget_set(sess, low, run(sess, low))
    scored = record_calls(monkeypatch, budget, "ssim_each")
    for _ in range(3):
        score = budget.measure_budget(sess, ref)
        assert (score.psnr_fp32, score.ssim_fp32) == (ref.psnr_fp32, ref.ssim_fp32)
    assert len(scored) == 3  # the INT8 side only


def test_enhanced_references_reuse_fp32_outputs_the_caller_has(tmp_path) -> None:
    sess = session(conv_model(tmp_path / "convs.onnx"), threads=1)
    frames = synthetic_calibration_frames(2, (32, 32), seed=2)
    low, gt = budget.budget_pairs(sess, frames, "enhanced", seed=4)
    out32 = run(sess, frames)
    given_low, given_gt = budget.budget_pairs(None, frames, "enhanced", seed=4, enhanced=out32)
    np.testing.assert_array_equal(given_gt, gt)
    np.testing.assert_array_equal(given_low, low)
