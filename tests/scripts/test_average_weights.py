"""scripts/average_weights.py: a weighted mean of same-config weights, one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch

from sllen.config import get_preset
from sllen.model.io import load_weights, read_metadata, save_weights
from sllen.model.sllen import SLLEN

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "average_weights.py"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True)


def tiny(path: Path, seed: int, **overrides: bool) -> Path:
    torch.manual_seed(seed)
    save_weights(SLLEN(get_preset("tiny", **overrides)), path)
    return path


def test_weighted_mean_of_every_tensor(tmp_path: Path) -> None:
    a, b = tiny(tmp_path / "a.safetensors", 0), tiny(tmp_path / "b.safetensors", 1)
    out = tmp_path / "soup.safetensors"
    r = run(str(out), f"{a}:3", str(b))
    assert r.returncode == 0, r.stderr
    wa, wb, ws = (load_weights(p).state_dict() for p in (a, b, out))
    for k, v in ws.items():
        torch.testing.assert_close(v, 0.75 * wa[k] + 0.25 * wb[k])
    assert any(not torch.equal(wa[k], ws[k]) for k in ws)
    assert read_metadata(out)["averaged_from"] == "a.safetensors:0.7500;b.safetensors:0.2500"


def test_bad_input_is_one_line_and_writes_nothing(tmp_path: Path) -> None:
    a = tiny(tmp_path / "a.safetensors", 0)
    other = tiny(tmp_path / "other.safetensors", 1, use_hsbab=False)
    out = tmp_path / "soup.safetensors"
    for args in (
        [str(a)],
        [str(a), str(other)],
        [str(a), str(tmp_path / "missing.safetensors")],
        [str(a), f"{a}:0"],
    ):
        r = run(str(out), *args)
        assert r.returncode == 2, args
        assert r.stderr.startswith("error: ") and r.stderr.count("\n") == 1, r.stderr
        assert "Traceback" not in r.stderr
    assert not out.exists()
