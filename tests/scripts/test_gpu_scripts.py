"""scripts/gpu-check.sh, scripts/trt-check.sh, scripts/fetch-gpu-wheels.sh on a CPU machine.

What can be checked without a GPU: the dry runs (steps, modes, timeouts, time budgets), the
options, that the scripts run under `set -euo pipefail` and never decide through grep or tail,
and the shared step runner (scripts/gpu/steps.sh) with stand-in steps that pass, fail, skip,
time out and run out of budget. Whether the steps pass on a GPU is what running the scripts
there says; none has run on one yet.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = REPO / "scripts"


def _run(*args: str, env: dict | None = None, timeout: int = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", *args], cwd=REPO, capture_output=True, text=True, timeout=timeout, env=env
    )


def _plan(out: str) -> dict[str, int | None]:
    """step -> timeout (None: not in this mode) from a dry run's output."""
    plan = {}
    for line in out.splitlines():
        m = re.match(r"\s+(\w+)\s+(?:timeout\s+(\d+) s|\(not in (?:\w+ mode|--only)\))", line)
        if m:
            plan[m.group(1)] = int(m.group(2)) if m.group(2) else None
    return plan


QUICK = [
    "host", "wheels", "install", "build", "ctest", "gpu_test", "kernel_pytest",
    "backend_parity", "attention_bench",
]  # fmt: skip
FULL_ONLY = [
    "racecheck", "memcheck", "model_precision", "train_amp", "gpu_pytest", "bench", "sllen_run",
]  # fmt: skip


def test_gpu_check_dry_run_quick_and_full() -> None:
    quick = _run("scripts/gpu-check.sh", "--dry-run", "--quick")
    assert quick.returncode == 0, quick.stderr
    assert "quick mode, time budget 285 s" in quick.stdout
    plan = _plan(quick.stdout)
    assert list(plan) == QUICK + FULL_ONLY
    assert all(plan[s] for s in QUICK) and all(plan[s] is None for s in FULL_ONLY)
    full = _run("scripts/gpu-check.sh", "--dry-run", "--out", "/tmp/x")
    assert full.returncode == 0 and "full mode, time budget 530 s" in full.stdout
    assert "/tmp/x/gpu_check.json" in full.stdout
    assert all(_plan(full.stdout).values())
    # The device tool allows 10 minutes per call; quick must end within 5, full within 9: the
    # budget caps every step's timeout, and each step may overrun it by its kill grace (10 s).
    budgets = [int(re.search(r"time budget (\d+) s", r.stdout).group(1)) for r in (quick, full)]
    assert budgets[0] + 10 <= 300 and budgets[1] + 10 <= 540


def test_gpu_check_only_runs_the_named_steps() -> None:
    # A rerun after a fix: the named steps keep their timeouts, every other step is skipped.
    done = _run("scripts/gpu-check.sh", "--dry-run", "--only", "build,gpu_test,sllen_run")
    assert done.returncode == 0, done.stderr
    plan = _plan(done.stdout)
    assert list(plan) == QUICK + FULL_ONLY
    assert {s for s, t in plan.items() if t} == {"build", "gpu_test", "sllen_run"}
    assert "(not in --only)" in done.stdout


def test_gpu_check_options() -> None:
    missing = _run("scripts/gpu-check.sh")
    assert missing.returncode == 2 and "--out DIR is required" in missing.stderr
    bad = _run("scripts/gpu-check.sh", "--frobnicate")
    assert bad.returncode == 2 and "unknown option --frobnicate" in bad.stderr
    helped = _run("scripts/gpu-check.sh", "--help")
    assert helped.returncode == 0 and "--quick" in helped.stdout


@pytest.mark.parametrize("script", ["gpu-check.sh", "trt-check.sh", "fetch-gpu-wheels.sh"])
def test_scripts_are_strict_and_never_judge_through_grep_or_tail(script) -> None:
    text = (SCRIPTS / script).read_text()
    code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    assert "set -euo pipefail" in code
    # Output piped into tail/grep would hide a failing command's output or exit code.
    assert not re.search(r"\|\s*(tail|grep|head)\b", code), script


def _runner(tmp_path: Path, body: str, budget: int = 60) -> subprocess.CompletedProcess:
    script = tmp_path / "plan.sh"
    script.write_text(
        "set -euo pipefail\n"
        f"OUT={tmp_path}/out; RESULTS_NAME=r.json; MODE=quick; BUDGET_S={budget}; DRY_RUN=0\n"
        "mkdir -p $OUT\n"
        "step_ok() { echo fine; }\n"
        "step_fail() { echo broken; exit 3; }\n"
        "step_skip() { echo 'nothing to test here'; exit 77; }\n"
        "step_slow() { sleep 20; }\n"
        "step_unset() { echo $NOT_SET; }\n"
        "export -f $(compgen -A function step_)\n"
        f". {SCRIPTS}/gpu/steps.sh\n"
        "steps_begin\n" + body + "\nsteps_end extra=1\n"
    )
    return _run(str(script), timeout=120)


def test_step_runner_verdicts_logs_and_json(tmp_path) -> None:
    done = _runner(
        tmp_path,
        "run_step ok 30 'passes'\nrun_step fail 30 'fails'\nrun_step skip 30 'skips'\n"
        "run_step slow 2 'times out'\nrun_step unset 30 'set -u'\nrun_step ok 0 'other mode'",
    )
    assert done.returncode == 1  # a step failed
    lines = [line for line in done.stdout.splitlines() if not line.startswith("      ")]
    assert [line.split()[:2] for line in lines[:6]] == [
        ["PASS", "ok"],
        ["FAIL", "fail"],
        ["SKIP", "skip"],
        ["FAIL", "slow"],
        ["FAIL", "unset"],
        ["SKIP", "ok"],
    ]
    assert "      | broken" in done.stdout  # a failure shows its log's last lines
    doc = json.loads((tmp_path / "out" / "r.json").read_text())
    steps = {(s["name"], s["status"]): s for s in doc["steps"]}
    assert steps[("skip", "SKIP")]["reason"] == "nothing to test here"
    assert steps[("slow", "FAIL")]["reason"] == "timed out after 2 s"
    assert steps[("fail", "FAIL")]["rc"] == 3 and steps[("unset", "FAIL")]["rc"] == 1
    assert doc["summary"] == {"PASS": 1, "FAIL": 3, "SKIP": 2}
    assert doc["passed"] is False and doc["extra"] == "1" and doc["mode"] == "quick"
    log = (tmp_path / "out" / "logs" / "fail.log").read_text()
    assert log.startswith("# fail: fails") and "broken" in log


def test_step_runner_budget(tmp_path) -> None:
    done = _runner(tmp_path, "run_step slow 3 'uses the budget'\nrun_step ok 30 'too late'", 12)
    doc = json.loads((tmp_path / "out" / "r.json").read_text())
    assert [(s["name"], s["status"]) for s in doc["steps"]] == [("slow", "FAIL"), ("ok", "SKIP")]
    assert doc["steps"][1]["reason"] == "time budget of 12 s spent"
    assert done.returncode == 1


def test_fetch_gpu_wheels_dry_run() -> None:
    done = _run("scripts/fetch-gpu-wheels.sh", "--dry-run", "--python", "3.11")
    assert done.returncode == 0, done.stderr
    command = done.stdout.splitlines()[0]
    assert command.startswith("would run: python3 -m pip download --dest gpu-wheels")
    assert "--only-binary=:all: --python-version 3.11 --implementation cp --abi cp311" in command
    for package in ("av", "typer", "rich", "safetensors", "pypng", "tifffile", "onnxscript"):
        assert f" {package}" in command
    assert "torch" in done.stdout.splitlines()[1]  # dropped again: the box has it
    # --without leaves a package out (PyAV: room for data), and refuses one it does not fetch.
    lean = _run("scripts/fetch-gpu-wheels.sh", "--dry-run", "--without", "av")
    assert lean.returncode == 0 and " av" not in lean.stdout.splitlines()[0]
    assert " typer" in lean.stdout.splitlines()[0]
    bad = _run("scripts/fetch-gpu-wheels.sh", "--dry-run", "--without", "numpy")
    assert bad.returncode == 2 and "--without numpy: not one of" in bad.stderr
    # The folder is git-ignored (the device tool carries ignored paths only when asked).
    assert "gpu-wheels/" in (REPO / ".gitignore").read_text().split()


def test_gpu_check_without_a_driver_says_so_first(tmp_path) -> None:
    import shutil

    if shutil.which("nvidia-smi"):
        pytest.skip("this machine has an NVIDIA driver: the check would run")
    r = _run("scripts/gpu-check.sh", "--quick", "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and "nvidia-smi not found" in r.stderr
    assert not (tmp_path / "o").exists()  # nothing made


def test_trt_check_stops_at_once_without_tensorrt(tmp_path: Path) -> None:
    # Every step failed on its own (a 1.5-minute run, a CMake build, "PASS build ... both
    # plugin libraries" with none built, and a record of nulls): one line instead, nothing made
    try:
        import tensorrt  # noqa: F401

        pytest.skip("TensorRT is installed here")
    except ImportError:
        pass
    env = dict(os.environ, PYTHON=sys.executable)  # the script asks this Python
    done = _run("scripts/trt-check.sh", "--out", str(tmp_path / "trt"), env=env)
    assert done.returncode == 2 and "TensorRT's Python package is not importable" in done.stderr
    assert not (tmp_path / "trt").exists()
