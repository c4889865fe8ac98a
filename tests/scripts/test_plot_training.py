"""scripts/plot_training.py: a run's loss and validation curves as one PNG."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "plot_training.py"


def _plot(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120
    )


def test_a_run_folder_is_plotted_and_a_missing_log_is_one_line(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "log.csv").write_text(
        "step,lr,lle_total,val_psnr,val_ssim,val_psnr_gm\n"
        "10,0.001,0.2,,,\n20,0.001,0.1,18.5,0.70,21.0\n30,0.001,0.08,19.0,0.72,21.5\n"
    )
    done = _plot(str(run), str(tmp_path / "curve.png"))  # the folder, not its log.csv
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "curve.png").read_bytes()[:4] == b"\x89PNG"
    missing = _plot(str(tmp_path / "nope"), str(tmp_path / "x.png"))
    assert missing.returncode == 2 and "no such file" in missing.stderr
    assert "Traceback" not in missing.stderr
