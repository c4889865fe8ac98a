"""sllen-eval's refusals: each a one-line error with exit 2, before a model is loaded or any
image scored (the cases a new-user walkthrough met as tracebacks or late failures)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from in_process import run_cli
from PIL import Image

from sllen.data.samples import write_sample_pairs


def sllen_eval(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sllen", "eval", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def eval_here(*args: str) -> subprocess.CompletedProcess:
    """`sllen eval ARGS` in this process (tests/fakes/in_process.py): these refusals come
    before any work, where a fresh interpreter would be most of the cost."""
    return run_cli("sllen", "eval", *args)


def one_line_error(r: subprocess.CompletedProcess, *words: str) -> None:
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr + r.stdout
    assert r.stdout == ""  # not even the blank line rich's progress left there
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, r.stderr
    assert r.stderr == lines[0] + "\n", repr(r.stderr)  # no blank line before it either
    for w in words:
        assert w in lines[0], lines[0]


def pair_folder(root: Path, low_size: tuple[int, int], high_size: tuple[int, int]) -> Path:
    for sub, (w, h) in (("low", low_size), ("high", high_size)):
        (root / sub).mkdir(parents=True)
        Image.fromarray(np.full((h, w, 3), 40, np.uint8)).save(root / sub / "1.png")
    return root


@pytest.fixture(scope="module")
def pairs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_sample_pairs(tmp_path_factory.mktemp("d") / "pairs", 2, (40, 56), seed=1)


def test_bad_options_are_refused_before_a_model_loads(pairs: Path, tmp_path: Path) -> None:
    data = ["--data", str(pairs)]
    one_line_error(eval_here(*data, "--device", "tpu"), "--device must be")
    one_line_error(
        eval_here(*data, "--weights", "w.safetensors", "--backend", "onnxruntime"),
        "--backend applies to --model files",
    )
    afile = tmp_path / "afile"
    afile.write_text("x")
    one_line_error(eval_here(*data, "--save-dir", str(afile)), "that is a file; name a folder")
    r = eval_here(*data, "--save-dir", str(afile / "sub"))
    one_line_error(r, f"{afile} is a file, not a folder")
    one_line_error(eval_here("--data", str(afile)), f"--data {afile}: a file, not a folder")


def test_cuda_without_a_gpu_is_a_user_error(pairs: Path) -> None:
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is here: the refusal is for machines without one")
    r = eval_here("--data", str(pairs), "--device", "cuda", "--threads", "1")
    one_line_error(r, "--device cuda: no CUDA GPU is available")


def test_pairs_that_cannot_be_scored_name_the_files(tmp_path: Path) -> None:
    tiny = pair_folder(tmp_path / "tiny", (8, 8), (8, 8))
    r = eval_here("--data", str(tiny), "--threads", "1")
    one_line_error(r, "1.png: 8x8 is smaller than SSIM's 11x11 window")
    odd = pair_folder(tmp_path / "odd", (60, 40), (30, 20))
    r = eval_here("--data", str(odd), "--threads", "1")
    # refused when the folder is listed, before any pair is scored
    one_line_error(r, f"{odd}: low/ and high/ differ in size for 1 pair: 1 (60x40 and 30x20)")


def test_sigterm_stops_like_ctrl_c_and_leaves_no_temporary_files(tmp_path: Path) -> None:
    # A scheduler's SIGTERM killed sllen-eval at once (exit 143), leaving the darkened
    # evaluation set (43 MB) in /tmp; every command now takes it as Ctrl-C.
    import os
    import signal
    import time

    tmp = tmp_path / "tmp"
    tmp.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "sllen", "eval", "--evalset", "--threads", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "TMPDIR": str(tmp)},
    )
    deadline = time.monotonic() + 120
    while not any(tmp.glob("sllen-evalset-*/**/*.png")) and time.monotonic() < deadline:
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted" in err
    assert list(tmp.iterdir()) == []


def test_images_at_the_psnr_cap_are_counted_beside_the_mean(tmp_path: Path) -> None:
    # --well-lit's mean PSNR of 38.55 dB held five pass-through images at the 100 dB cap.
    rng = np.random.default_rng(0)
    for name, level in (("bright", 150), ("dark", 12)):
        img = np.clip(rng.normal(level, 6, (48, 64, 3)), 0, 255).astype(np.uint8)
        for sub in ("low", "high"):
            (tmp_path / sub).mkdir(exist_ok=True)
            Image.fromarray(img).save(tmp_path / sub / f"{name}.png")  # the low is its own GT
    r = sllen_eval("--data", str(tmp_path), "--threads", "1")
    assert r.returncode == 0, r.stderr
    out = " ".join(r.stdout.split())
    assert "sllen: 1 of 2 images equal their ground truth (PSNR capped at 100 dB" in out, out
    assert "the median of the rest: " in out
