"""sllen-export from the command line on a CPU-only machine (no TensorRT here)."""

import json
import subprocess
import sys
from pathlib import Path

import onnx
import pytest
import torch
from in_process import run_cli

from sllen.config import get_preset
from sllen.model.io import save_weights
from sllen.model.sllen import SLLEN


def sllen_export(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sllen.cli.export", *args],
        capture_output=True,
        text=True,
        timeout=600,
        env={**__import__("os").environ, "OMP_NUM_THREADS": "1"},
    )


def export_here(*args: str) -> subprocess.CompletedProcess:
    """sllen-export in this process (tests/fakes/in_process.py): for the cases refused before
    any export, where starting a fresh interpreter would be most of the cost."""
    return run_cli("sllen-export", *args)


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    return save_weights(SLLEN(get_preset("tiny")), tmp_path_factory.mktemp("w") / "t.safetensors")


def _one_line(r: subprocess.CompletedProcess, word: str) -> None:
    assert r.returncode != 0 and "Traceback" not in r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and word in lines[0], r.stderr


@pytest.mark.slow
def test_fp16_and_int8_export_pass_their_budgets(weights: Path, tmp_path: Path) -> None:
    out = tmp_path / "exp"
    r = sllen_export(
        "--weights",
        str(weights),
        "--fp16",
        "--int8",
        "--calib-count",
        "16",
        "--calib-method",
        "minmax",
        "--out",
        str(out),
    )
    assert r.returncode == 0, r.stderr
    assert "build the engine where TensorRT is" in r.stdout
    assert "--target cpu" in r.stdout  # the INT8 file is TensorRT's: says how to get the CPU one
    report = json.loads((out / "report.json").read_text())
    assert report["files"]["fp32"]["parity_vs_pytorch"]["max_abs"] < 1e-4
    assert report["files"]["fp16"]["passes_budget"]
    budget = report["files"]["int8"]["budget"]
    assert budget["passes"] and budget["ssim_drop"] <= budget["max_ssim_drop"] == 0.01
    assert "SSIM" in r.stdout  # the log and the table give both drops
    assert "input layer" in report["files"]["int8"]["excluded"].values()
    assert report["files"]["int8"]["brightened_copies"] > 0  # generated dark scenes: dim
    dark = report["files"]["int8"]["input_range"][1] < 0.5  # the calibrated input's range
    assert ("calibration frames are dark" in r.stdout) == dark
    assert report["engine"]["built"] is False
    assert "--from-onnx" in report["engine"]["command"]
    meta = {p.key: p.value for p in onnx.load(str(out / "sllen.int8.onnx")).metadata_props}
    assert meta["sllen_precision"] == "int8" and meta["sllen_int8_flavour"] == "tensorrt"
    assert (out / "sllen.int8.ranges.json").is_file()
    for name in ("sllen.fp32.onnx", "sllen.fp16.onnx", "sllen.int8.onnx"):
        onnx.checker.check_model(str(out / name))  # valid ONNX, producers before readers


@pytest.mark.slow
def test_cpu_flavour_is_labelled_and_keeps_the_tensorrt_files(
    weights: Path, tmp_path: Path
) -> None:
    out = tmp_path / "cpu"
    # A TensorRT-flavour export in the same folder (the default --out of both) must survive:
    # --target cpu wrote its mha-attention FP32 file and its report over these.
    out.mkdir()
    kept = {"sllen.fp32.onnx": b"tensorrt flavour", "report.json": b'{"files": {"int8": 1}}'}
    for name, data in kept.items():
        (out / name).write_bytes(data)
    r = sllen_export(
        "--weights",
        str(weights),
        "--int8",
        "--target",
        "cpu",
        "--calib-count",
        "12",
        "--calib-method",
        "minmax",
        "--no-calib-brighten",
        "--out",
        str(out),
    )
    assert r.returncode == 0, r.stderr
    int8 = json.loads((out / "report-cpu.json").read_text())["files"]["int8_cpu"]
    assert int8["brightened_copies"] == 0  # --no-calib-brighten: the generated frames alone
    assert ("calibration frames are dark" in r.stdout) == (int8["input_range"][1] < 0.5)
    meta = {p.key: p.value for p in onnx.load(str(out / "sllen.int8-cpu.onnx")).metadata_props}
    assert meta["sllen_int8_flavour"] == "cpu"
    # --target cpu: ONNX Runtime's linear-memory attention in both files, and no engine
    assert meta["sllen_attention"] == "mha"
    report = json.loads((out / "report-cpu.json").read_text())
    assert report["files"]["fp32"]["attention"] == "mha"
    assert report["files"]["fp32"]["file"] == "sllen.fp32-cpu.onnx"
    assert (out / "sllen.fp32-cpu.onnx").is_file() and "report-cpu.json" in r.stdout
    assert report["engine"]["built"] is False
    assert all((out / name).read_bytes() == data for name, data in kept.items())


@pytest.mark.parametrize(
    "args,word",
    [
        (["--min-shape", "250x250"], "multiple of 16"),
        (["--min-shape", "1920x1088", "--max-shape", "256x256"], "min"),
        (["--attention", "plugin", "--fp16"], "plugin"),
        (["--attention", "fused"], "--attention"),
        (["--attention", "mha"], "--target cpu"),
        (["--calib-data", "nowhere", "--int8"], "nowhere"),
        (["--from-onnx", "missing.onnx"], "missing.onnx"),
        (["--opset", "18"], "--opset must be 19 or 20"),
        (["--int8", "--calib-count", "-3"], "--calib-count must be positive"),
        (["--int8", "--calib-method", "foo"], "--calib-method must be auto, entropy"),
        # checked before the FP32 export, not after it (--out "o" then held its files)
        (["--int8", "--eval-data", "nowhere-eval"], "nowhere-eval: no such file"),
        (["--int8", "--ranges", "typo.ranges.json"], "no such ranges file"),
        (["--ranges", "typo.ranges.json"], "--ranges is only used with --int8"),
        # engine options: refused before the export, not after it as "workspace_gib must be"
        (["--workspace-gib", "0"], "--workspace-gib must be a positive size"),
        (["--dla-core", "-1"], "--dla-core must be a DLA core index"),
        (["--device", "0", "--dla-core", "0"], "give --device or --dla-core, not both"),
        (["--dla-core", "0", "--max-shape", "1920x1088"], "DLA runs one fixed input size"),
        # above --opt-shape: said as DLA's rule, not "min <= opt <= max" (review R5)
        (["--dla-core", "0", "--min-shape", "1920x1088"], "--min-shape 1920x1088 differs"),
    ],
)
def test_bad_options_fail_in_one_line(
    weights: Path, tmp_path: Path, args: list[str], word: str
) -> None:
    _one_line(export_here("--weights", str(weights), "--out", str(tmp_path / "o"), *args), word)
    assert not (tmp_path / "o").exists()


def test_an_output_that_is_a_file_is_refused(weights: Path, tmp_path: Path) -> None:
    (tmp_path / "photo.jpg").write_bytes(b"x")
    r = export_here("--weights", str(weights), "--out", str(tmp_path / "photo.jpg"))
    _one_line(r, "is a file: name a folder")
    assert (tmp_path / "photo.jpg").read_bytes() == b"x"


def test_an_output_under_a_file_is_refused_naming_the_option(weights: Path, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("x")
    r = export_here("--weights", str(weights), "--out", str(tmp_path / "notes.txt" / "x"))
    _one_line(r, f"--out {tmp_path / 'notes.txt' / 'x'}: {tmp_path / 'notes.txt'} is a file")
    assert r.returncode == 2


def test_sigterm_stops_like_ctrl_c_and_leaves_nothing_behind(tmp_path: Path) -> None:
    # SIGTERM (docker stop, a scheduler) killed sllen-export at once (exit 143), leaving its
    # --out folder and /tmp/sllen-calib-* (20 MB). The export is replaced by a stand-in that
    # stages a file and makes a calibration temp folder, then waits: the CLI around it is
    # real (a real export interrupted: test_an_interrupted_re_export_leaves_the_old_files).
    import os
    import signal
    import time

    tmp, out = tmp_path / "tmp", tmp_path / "out"
    tmp.mkdir()
    code = (
        "import sys, tempfile, time\n"
        "import sllen.export.pipeline as p\n"
        "def slow(opts, log, into):\n"
        "    (into / 'sllen.fp32.onnx').write_bytes(b'staged')\n"
        "    with tempfile.TemporaryDirectory(prefix='sllen-calib-'):\n"
        "        print('calibrating', flush=True)\n"
        "        time.sleep(120)\n"
        "p.export_onnx_files = slow\n"
        "from sllen.cli.export import main\n"
        "sys.argv = ['sllen-export', '--int8', '--out', sys.argv[1]]\n"
        "main()\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "TMPDIR": str(tmp)},
    )
    assert proc.stdout is not None and "calibrating" in proc.stdout.readline()
    assert list(out.glob(".sllen-export-*/sllen.fp32.onnx")) and any(tmp.glob("sllen-calib-*"))
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted" in err
    assert not out.exists() and list(tmp.iterdir()) == []


@pytest.mark.slow
def test_an_interrupted_re_export_leaves_the_old_files(weights: Path, tmp_path: Path) -> None:
    # A re-export stopped during its FP16 step left its new FP32 file beside the old FP16
    # file, under the old report.json that vouched for both. A real export now, held once
    # its FP16 file is written (into the staging folder) and stopped there with SIGTERM.
    import os
    import signal

    out = tmp_path / "out"
    out.mkdir()
    old = {"sllen.fp32.onnx": b"old fp32", "sllen.fp16.onnx": b"old fp16", "report.json": b"{}"}
    for name, data in old.items():
        (out / name).write_bytes(data)
    code = (
        "import sys, time\n"
        "import sllen.calib.fp16 as fp16\n"
        "real = fp16.convert_fp16\n"
        "def held(*a, **k):\n"
        "    r = real(*a, **k)\n"
        "    print('fp16 written', flush=True)\n"
        "    time.sleep(120)\n"
        "fp16.convert_fp16 = held\n"
        "from sllen.cli.export import main\n"
        "sys.argv = ['sllen-export', *sys.argv[1:]]\n"
        "main()\n"
    )
    args = ["--weights", str(weights), "--fp16", "--threads", "1", "--out", str(out)]
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:  # the log, then the hook's line
            if "fp16 written" in line:
                break
        staged = {p.name for p in out.glob(".sllen-export-*/*")}
        assert {"sllen.fp32.onnx", "sllen.fp16.onnx"} <= staged  # the run had written both
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:  # a failed check above: not left sleeping
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == old


def test_from_onnx_needs_tensorrt(weights: Path, tmp_path: Path) -> None:
    fake = tmp_path / "m.onnx"
    fake.write_bytes(b"not really")
    _one_line(export_here("--from-onnx", str(fake), "--out", str(tmp_path / "o")), "TensorRT")
    assert not (tmp_path / "o").exists()  # the failed build takes away the folder it made


def test_unreadable_weights_leave_no_output_folder(tmp_path: Path) -> None:
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not weights")
    _one_line(export_here("--weights", str(bad), "--out", str(tmp_path / "a" / "o")), "bad")
    assert not (tmp_path / "a").exists()


@pytest.mark.slow
def test_missed_budget_exits_non_zero_and_keeps_no_file_under_the_normal_name(
    weights: Path, tmp_path: Path
) -> None:
    out = tmp_path / "over"
    (out).mkdir()
    (out / "sllen.fp16.onnx").write_bytes(b"an older export")  # must not pass for the new one
    r = sllen_export(
        "--weights", str(weights), "--fp16", "--fp16-budget-db", "200", "--out", str(out)
    )
    _one_line(r, "fp16")
    assert "over-budget" in r.stderr and "FAIL" in r.stdout  # the table is printed first
    assert not (out / "sllen.fp16.onnx").exists()
    assert (out / "sllen.fp16.over-budget.onnx").is_file()
    report = json.loads((out / "report.json").read_text())
    assert not report["files"]["fp16"]["passes_budget"]


def test_timing_and_engine_cache_options_reach_the_pipeline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # In-process, with the pipeline replaced: only the option wiring is under test here
    # (the timing cache itself needs TensorRT: tests/export/trt/test_build.py, fake TensorRT).
    import typer
    from typer.testing import CliRunner

    import sllen.export.pipeline as pipeline
    from sllen.cli.export import export_command

    seen = {}
    monkeypatch.setattr(pipeline, "run_export", lambda opts, **_: seen.setdefault("o", opts) and {})
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command()(export_command)
    args = ["--out", str(tmp_path / "o"), "--timing-cache", str(tmp_path / "orin.timing")]
    r = CliRunner().invoke(app, [*args, "--engine-cache", str(tmp_path / "engines")])
    assert r.exit_code == 0, r.output
    assert seen["o"].timing_cache == tmp_path / "orin.timing"
    assert seen["o"].engine_cache == tmp_path / "engines"


def test_dla_profile_follows_the_opt_shape(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # DLA has no dynamic shapes: with --dla-core the profile's min and max default to
    # --opt-shape (without it, to 256x256 and 1920x1088).
    import typer
    from typer.testing import CliRunner

    import sllen.export.pipeline as pipeline
    from sllen.cli.export import export_command

    seen: list = []
    monkeypatch.setattr(pipeline, "run_export", lambda opts, **_: seen.append(opts) or {})
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command()(export_command)
    out = ["--out", str(tmp_path / "o")]
    r = CliRunner().invoke(app, [*out, "--dla-core", "0", "--opt-shape", "640x480"])
    assert r.exit_code == 0, r.output
    assert seen[-1].profile.min == seen[-1].profile.opt == seen[-1].profile.max == (480, 640)
    assert CliRunner().invoke(app, out).exit_code == 0
    assert (seen[-1].profile.min, seen[-1].profile.max) == ((256, 256), (1088, 1920))
