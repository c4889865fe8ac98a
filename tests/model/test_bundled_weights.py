"""The default model that ships in the package: loads, runs, brightens, beats gamma."""

import numpy as np
import pytest
import torch

from sllen.baselines import gamma_auto
from sllen.metrics import psnr, ssim
from sllen.model.io import load_weights, read_metadata
from sllen.weights import default_weights


@pytest.fixture(scope="module")
def model():
    return load_weights(default_weights())


def test_bundled_weights_are_the_edge_preset(model) -> None:
    assert model.config.preset == "edge" and model.config.variant == "SLLEN"
    meta = read_metadata(default_weights())
    assert "train_config" in meta and int(meta["steps"]) > 0
    assert default_weights().stat().st_size < 8 * 2**20  # a few MB


def test_brightens_a_dark_image(model) -> None:
    dark = torch.full((3, 48, 64), 0.04) + 0.02 * torch.rand(3, 48, 64)
    out = model.enhance(dark)
    assert out.shape == dark.shape
    assert float(out.mean()) > 3 * float(dark.mean())


def test_beats_gamma_on_fixed_photos(model) -> None:
    # Four evaluation photos at half size, 0.08 exposure, fixed noise: the model's quality bar
    # (+2 dB PSNR, +0.15 SSIM over the baseline) on average. One photo alone is not a fair
    # case: chelsea's mean brightness happens to equal gamma's 0.45 target.
    skimage_data = pytest.importorskip("skimage.data")
    from sllen.evalset import Condition, darken_photo

    gains = []
    for name in ("astronaut", "chelsea", "coffee", "rocket"):
        gt = getattr(skimage_data, name)()[::2, ::2].astype(np.float32) / 255.0
        low = darken_photo(gt, f"{name}-half", Condition(0.08, False))
        x = torch.from_numpy(np.ascontiguousarray(low.transpose(2, 0, 1)))
        out = model.enhance(x).permute(1, 2, 0).numpy()
        base = gamma_auto(low)
        gains.append((psnr(out, gt) - psnr(base, gt), ssim(out, gt) - ssim(base, gt)))
    psnr_gain, ssim_gain = np.mean(gains, axis=0)
    assert psnr_gain > 2.0 and ssim_gain > 0.15, gains


def test_a_deployed_file_given_as_weights_says_use_model(tmp_path) -> None:
    import pytest

    from sllen.weights.header import read_metadata

    onnx = tmp_path / "sllen.fp32.onnx"
    onnx.write_bytes(b"\x08\x07\x12\x07pytorch")
    with pytest.raises(ValueError, match="deployed model file.*--model"):
        read_metadata(onnx)
