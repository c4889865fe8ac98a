"""The INT8 budget's pairs: well-lit references darkened at every budget exposure."""

from __future__ import annotations

import numpy as np

from sllen.calib import budget
from sllen.calib.frames import synthetic_calibration_frames


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
