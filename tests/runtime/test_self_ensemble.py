"""Self-ensemble: four flipped inferences per frame, each flipped back, averaged.

The backends here are fakes (tests/fakes/affine_backend.py) whose output depends on the
pixel's position, which a real network's does a little (padding, its own small decisions):
only then does flipping change a result, so only then can a test see the flips undone.
"""

from __future__ import annotations

import numpy as np
import torch
from affine_backend import Recorder

from sllen.config import get_preset
from sllen.evaluate import torch_enhancer
from sllen.model.io import save_weights
from sllen.model.sllen import SLLEN
from sllen.runtime.backends.base import Outputs
from sllen.runtime.enhancer import Enhancer
from sllen.runtime.self_ensemble import flip_ensemble


class Ramp(Recorder):
    """x -> x * 0.5 + a ramp from 0 (left) to 0.2 (right); segmentation logits: class 0 a
    ramp from 0 (top) to 1 (bottom), class 1 0.4 everywhere. Not flip-equivariant."""

    def __init__(self) -> None:
        super().__init__(has_segmentation=True)

    def _infer(self, x: np.ndarray, segmentation: bool) -> Outputs:
        self.shapes.append(x.shape)
        n, _, h, w = x.shape
        ramp = np.linspace(0, 0.2, w, dtype=np.float32)
        seg = np.full((n, 2, h, w), 0.4, dtype=np.float32)
        seg[:, 0] = np.linspace(0, 1, h, dtype=np.float32)[:, None]
        return Outputs(x * 0.5 + ramp, seg if segmentation else None)


def dark(h: int, w: int) -> np.ndarray:
    return (np.random.default_rng(0).random((h, w, 3)) * 0.3).astype(np.float32)


def test_flips_are_undone_and_averaged() -> None:
    x = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)
    seen: list[np.ndarray] = []

    def run(batch: np.ndarray) -> np.ndarray:
        seen.append(batch)
        return batch * 2

    out = flip_ensemble(run, x)
    assert np.array_equal(out, x * 2)  # an equivariant function comes back unchanged
    assert len(seen) == 4 and np.array_equal(seen[1], x[..., ::-1])
    assert np.array_equal(seen[2], x[..., ::-1, :]) and np.array_equal(seen[3], x[..., ::-1, ::-1])
    assert all(s.flags.c_contiguous for s in seen)  # backends get plain buffers
    hwc = x[0].transpose(1, 2, 0)
    assert np.array_equal(flip_ensemble(lambda a: a + 1, hwc, axes=(0, 1)), hwc + 1)


def test_enhancer_averages_four_inferences_per_batch() -> None:
    frame = dark(30, 40)  # padded to 32 x 48
    plain = Enhancer(Ramp(), well_exposed="enhance").enhance([frame])[0].image
    backend = Ramp()
    both = Enhancer(backend, well_exposed="enhance", self_ensemble=True).enhance([frame])[0]
    assert backend.shapes == [(1, 3, 32, 48)] * 4
    # The ramp over the padded width and its mirror add up to 0.2: the mean is 0.1 everywhere.
    assert np.allclose(both.image, frame * 0.5 + 0.1, atol=1e-6)
    assert not np.allclose(plain, both.image, atol=1e-3)


def test_segmentation_logits_are_averaged_too() -> None:
    frame = dark(32, 32)
    plain = Enhancer(Ramp(), segmentation=True).enhance([frame])[0].labels
    out = Enhancer(Ramp(), segmentation=True, self_ensemble=True).enhance([frame])[0]
    assert plain is not None and plain[0].all() and not plain[-1].any()  # class 1 on top
    # averaged with its upside-down copy, class 0's ramp is 0.5 everywhere: above class 1's 0.4
    assert out.labels is not None and out.labels.shape == (32, 32) and not out.labels.any()


def test_self_ensemble_works_with_tiling() -> None:
    backend = Ramp()
    frame = dark(100, 130)
    out = Enhancer(backend, tile=(64, 64), self_ensemble=True, well_exposed="enhance")
    image = out.enhance([frame])[0].image
    assert len(backend.shapes) % 4 == 0 and len(backend.shapes) > 4  # four per tile
    # each tile's four passes average its ramp to 0.1, so the tiles agree and blend exactly
    assert image.shape == (100, 130, 3) and np.allclose(image, frame * 0.5 + 0.1, atol=1e-5)


def test_eval_torch_path_scores_the_mean_of_the_flipped_results(tmp_path) -> None:
    torch.manual_seed(0)
    weights = save_weights(SLLEN(get_preset("tiny")), tmp_path / "t.safetensors")
    img = dark(32, 48)
    plain, _ = torch_enhancer(weights, threads=1, well_exposed="enhance")
    ens, _ = torch_enhancer(weights, threads=1, well_exposed="enhance", self_ensemble=True)
    by_hand = np.mean(
        [
            plain(img),
            plain(img[:, ::-1].copy())[:, ::-1],
            plain(img[::-1].copy())[::-1],
            plain(img[::-1, ::-1].copy())[::-1, ::-1],
        ],
        axis=0,
    )
    assert np.allclose(ens(img), by_hand, atol=1e-6)
    assert np.abs(ens(img) - plain(img)).max() > 1e-4  # an untrained network is not symmetric
