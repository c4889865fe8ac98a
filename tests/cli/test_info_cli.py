"""sllen info: a weights file's model config, metadata and the training config it was made
with; a run's folder named instead of its weights file is a one-line hint."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from sllen.weights import default_weights
from sllen.weights.header import read_metadata


def info(path: Path) -> subprocess.CompletedProcess:
    code = f"from sllen.cli.main import app\napp(['info', {str(path)!r}])"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_info_shows_the_training_config_of_the_bundled_weights() -> None:
    weights = default_weights()
    train = json.loads(read_metadata(weights)["train_config"])
    r = info(weights)
    assert r.returncode == 0, r.stderr
    shown = r.stdout.split("training config:\n", 1)[1]
    assert f"  steps: {train['steps']}\n" in shown and f"  preset: {train['preset']}\n" in shown


def test_a_run_folder_is_not_a_weights_file(tmp_path: Path) -> None:
    r = info(tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "is a folder; name a .safetensors file" in r.stderr and "last.safetensors" in r.stderr


def test_a_truncated_weights_file_is_refused(tmp_path: Path) -> None:
    # sllen info read the header only and printed the config (exit 0) of a copy cut short,
    # which sllen-run then refused.
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(default_weights().read_bytes()[:1_000_000])
    r = info(cut)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "is truncated: 1,000,000 of the" in r.stderr
