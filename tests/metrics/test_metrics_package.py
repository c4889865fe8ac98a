"""The sllen.metrics package: public API, protocol string, and no heavy runtime imports."""

from __future__ import annotations

import json
import subprocess
import sys

import sllen.metrics as metrics


def test_public_api() -> None:
    assert set(metrics.__all__) == {
        "PROTOCOL",
        "confusion_matrix",
        "gt_mean_psnr_ssim",
        "loe",
        "miou",
        "psnr",
        "ssim",
    }
    for name in metrics.__all__:
        assert hasattr(metrics, name)


def test_protocol_string_names_the_choices() -> None:
    p = metrics.PROTOCOL
    assert isinstance(p, str)
    json.dumps({"protocol": p})
    for word in ("RGB", "GT-mean", "sigma=1.5", "NPE", "max(R,G,B)", "50", "255", "100 dB"):
        assert word in p, word


def test_import_is_pure_numpy() -> None:
    code = (
        "import sys, sllen.metrics as m, numpy as np;"
        "a = np.random.default_rng(0).random((32, 32, 3));"
        "m.psnr(a, a); m.ssim(a, a); m.loe(a, a);"
        "m.miou(m.confusion_matrix(np.zeros(4, int), np.zeros(4, int), 2));"
        "bad = [k for k in ('torch', 'scipy', 'skimage') if k in sys.modules];"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
