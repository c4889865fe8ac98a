"""scripts/lol_ablations.py: the commands it would run and the table it makes from score files
(the training itself is a long run, recorded in docs/reproduce.md, not a test)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("lol_ablations", REPO / "scripts/lol_ablations.py")
assert _spec and _spec.loader
abl = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(abl)


def test_every_variant_trains_with_the_same_budget_and_its_own_flags(tmp_path: Path) -> None:
    cmds = {n: abl.commands(n, Path("tr"), Path("ev"), tmp_path, 600, 0, 2) for n in abl.VARIANTS}
    budget = {
        n: c[0][c[0].index("--steps") :][:2] + c[0][c[0].index("--lr") :][:4]
        for n, c in cmds.items()
    }
    assert len({tuple(b) for b in budget.values()}) == 1  # same steps, lr, seed
    assert "--no-hsbab" in cmds["sllen1"][0] and "--no-rsaeb" not in cmds["sllen1"][0]
    assert "--no-rsaeb" in cmds["sllen2"][0] and "--no-hsbab" not in cmds["sllen2"][0]
    assert {"--no-hsbab", "--no-rsaeb"} <= set(cmds["sllen3"][0])
    assert cmds["sllen4"][0][-2:] == ["--schedule", "independent"]
    assert not {"--no-hsbab", "--no-rsaeb", "--schedule"} & set(cmds["full"][0])
    train, ev = cmds["sllen2"]
    assert ev[ev.index("--weights") + 1] == str(tmp_path / "sllen2" / "last.safetensors")
    assert "--resume" not in train


def test_a_stopped_variant_resumes(tmp_path: Path) -> None:
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "checkpoint").write_text("")
    assert "--resume" in abl.commands("full", Path("tr"), Path("ev"), tmp_path, 600, 0, 2)[0]


def _score(out: Path, name: str, psnr: float) -> None:
    m = {"psnr": psnr, "ssim": 0.7, "loe": 400.0, "psnr_gt_mean": psnr + 3}
    (out / f"{name}-eval15.json").write_text(json.dumps({"mean": {"sllen": m}}))
    (out / name).mkdir()
    (out / name / "log.csv").write_text(
        "step,time_s,val_psnr,val_ssim\n150,100.0,15.5,0.70\n600,412.0,16.25,0.72\n"
    )


def test_table_puts_ours_beside_the_paper(tmp_path: Path) -> None:
    _score(tmp_path, "full", 18.5)
    _score(tmp_path, "sllen3", 17.25)
    rows = abl.table(tmp_path).splitlines()
    assert len(rows) == 4  # header, rule, two scored variants
    assert rows[2].startswith("| SLLEN |") and "23.8 / 0.84 / 245" in rows[2]
    assert "18.50 / 0.700 / 400" in rows[2] and "21.50" in rows[2]
    assert "16.25 / 0.720" in rows[2] and "| 600 | 412 |" in rows[2]
    assert rows[3].startswith("| SLLEN-3") and "17.25" in rows[3]


def test_dry_run_prints_and_runs_nothing(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "abl"
    assert abl.main(["tr", "ev", "--out", str(out), "--only", "sllen1", "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[0].startswith("+ sllen-train") and "--no-hsbab" in lines[0]
    assert not out.exists()


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert abl.main(["tr", "ev", "--only", "sllen9"]) == 2
    assert abl.main([str(tmp_path / "missing"), str(tmp_path)]) == 2
    assert abl.main([]) == 2
    captured = capsys.readouterr()
    err = captured.err.splitlines()
    assert len(err) == 3 and all(line.startswith("error: ") for line in err)
    assert captured.out == ""
