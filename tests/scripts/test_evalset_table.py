"""scripts/evalset_table.py: markdown tables from an sllen-eval JSON report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "evalset_table.py"


def _row(name: str, psnr: float, lightness: float, truth: float) -> dict:
    return {
        "name": name,
        "method": "sllen",
        "psnr": psnr,
        "ssim": 0.5,
        "lightness": lightness,
        "lightness_gt": truth,
    }


def test_conditions_from_the_last_underscore_with_the_lightness_added(tmp_path: Path) -> None:
    report = {
        "methods": {"sllen": "test"},
        "mean": {"sllen": {"psnr": 20.0, "ssim": 0.5}},
        "images": [
            _row("grace_hopper_e1000-clean", 30.0, 60.0, 50.0),
            _row("chelsea_e1000-clean", 20.0, 52.0, 50.0),
            _row("chelsea_e500", 10.0, 45.0, 50.0),
        ],
    }
    path = tmp_path / "r.json"
    path.write_text(json.dumps(report))
    out = subprocess.run(
        [sys.executable, str(SCRIPT), str(path)], capture_output=True, text=True, check=True
    ).stdout
    assert "| e1000-clean | 25.00 / 0.500 / +6.0 |" in out
    assert "| e500 | 10.00 / 0.500 / -5.0 |" in out
    assert "| sllen | 20.00 | 0.500 | - |" in out  # columns a report lacks print as -


def test_help_prints_the_usage() -> None:
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "scripts" / "evalset_table.py"
    r = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "python scripts/evalset_table.py" in r.stdout
