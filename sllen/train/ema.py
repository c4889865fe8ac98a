"""An exponential moving average of the weights (``sllen-train --ema DECAY``).

BasicSR keeps one for its restoration models (``ema_decay: 0.999``, ``net_g_ema`` is the
network it tests and releases); here it also steadies what a short run ends on: on real pairs
the exposure the network settles on moves from one checkpoint to the next late in a run
(docs/default-model.md, "A moving average of the weights"), and the average of the last few
hundred steps sits between those swings (measured there: steadier, not better).

torch.optim.swa_utils.AveragedModel keeps the copy and does the update; the decay warms up
as TensorFlow's ExponentialMovingAverage does with ``num_updates``: ``min(decay, (1 + n) /
(10 + n))`` after ``n`` updates, so a run of a few thousand steps from scratch does not carry
its random start in the average (with a fixed 0.999, 13 % of the weights at step 2000 would
still be the initialisation's).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch.optim.swa_utils import AveragedModel

from sllen.model.io import load_weights, read_metadata, save_weights
from sllen.model.sllen import SLLEN

Tensors = list[torch.Tensor] | tuple[torch.Tensor, ...]


def warm_decay(decay: float, updates: int) -> float:
    """The decay used for the update after ``updates`` earlier ones (module docstring)."""
    return min(decay, (1.0 + updates) / (10.0 + updates))


class WeightEMA:
    """The average of a model's weights; ``model`` is an SLLEN to validate and save."""

    FILE = "ema.safetensors"  # in the checkpoint folder, beside model.safetensors

    def __init__(self, model: SLLEN, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1), not {decay}")

        def average(avg: Tensors, new: Tensors, n: torch.Tensor | int) -> None:
            # avg += (1 - d) (new - avg), all tensors at once (as get_ema_multi_avg_fn does)
            torch._foreach_lerp_(avg, new, 1.0 - warm_decay(decay, int(n)))

        # The first update copies the weights (AveragedModel's n_averaged == 0); buffers too.
        self.averaged = AveragedModel(model, multi_avg_fn=average, use_buffers=True)

    @property
    def model(self) -> SLLEN:
        return self.averaged.module  # type: ignore[return-value]

    @property
    def updates(self) -> int:
        return int(self.averaged.n_averaged)

    @torch.no_grad()
    def update(self, model: SLLEN) -> None:
        self.averaged.update_parameters(model)

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        save_weights(self.model, folder / self.FILE, {"ema_updates": str(self.updates)})

    def load(self, folder: Path) -> bool:
        """Restore a checkpoint's average; False when it has none (a run that had no EMA)."""
        path = folder / self.FILE
        if not path.is_file():
            return False
        saved = load_weights(path, expected=self.model.config)
        self.model.load_state_dict(saved.state_dict())
        self.averaged.n_averaged.fill_(int(read_metadata(path).get("ema_updates", "1")))
        return True
