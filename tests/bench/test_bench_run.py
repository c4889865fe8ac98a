"""A short real sllen-bench run: the tiny preset on PyTorch and ONNX Runtime at 64x64."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import typer
from rich.console import Console
from typer.testing import CliRunner

from sllen.bench import BenchConfig, BenchOptions, run_bench
from sllen.bench import report as rep
from sllen.bench.flops import count_flops
from sllen.bench.memory import PeakMemory
from sllen.cli.bench import bench_command

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
pytestmark = pytest.mark.slow  # a real benchmark run of two backends


@pytest.fixture(scope="module")
def results(tiny_models: tuple[Path, Path]) -> tuple[list, BenchOptions]:
    weights, onnx_file = tiny_models
    opts = BenchOptions(
        configs=[
            BenchConfig(str(onnx_file), "onnxruntime", threads=1),
            BenchConfig(str(weights), "pytorch", threads=1),
        ],
        resolutions=[(64, 64), (64, 96)],
        warmup=1,
        iterations=5,
        layers=True,
        layer_runs=2,
        top_k=5,
    )
    return run_bench(opts), opts


def test_cases_have_statistics_memory_and_flops(results: tuple[list, BenchOptions]) -> None:
    rows, _ = results
    assert [(r.backend, r.hw) for r in rows] == [
        ("onnxruntime", (64, 64)),
        ("onnxruntime", (64, 96)),
        ("pytorch", (64, 64)),
        ("pytorch", (64, 96)),
    ]
    for r in rows:
        assert r.error is None
        s = r.stats
        assert s.n == 5 and 0 < s.min <= s.p50 <= s.p90 <= s.p99 <= s.max
        assert r.throughput == pytest.approx(1000 / s.mean)
        assert r.timer == "time.perf_counter" and r.device == "cpu" and r.precision == "fp32"
        assert r.memory.peak_rss_mb > 50 and r.memory.added_rss_mb >= 0
        assert r.flops_per_frame and r.flops_per_frame > 0
        assert r.achieved_gflops > 0 and r.peak_gflops > 0 and r.pct_of_peak > 0
    # one model config, so both backends count the same FLOPs; more pixels, more FLOPs
    assert rows[0].flops_per_frame == rows[2].flops_per_frame
    assert rows[1].flops_per_frame == rows[3].flops_per_frame > rows[0].flops_per_frame
    assert rows[0].split_ms is None  # ONNX Runtime on the CPU: no copies to split off
    assert set(rows[2].split_ms) == {"h2d", "compute", "d2h"}


def test_flop_count_matches_the_real_model(tiny_models: tuple[Path, Path]) -> None:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from sllen.model.io import load_weights

    model = load_weights(tiny_models[0])
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        model(torch.rand(1, 3, 64, 64))
    assert count_flops(model.config.to_json(), 64, 64) == fc.get_total_flops()


def test_harness_overhead_is_under_two_percent(results: tuple[list, BenchOptions]) -> None:
    rows, _ = results
    for r in rows:
        # the timing loop's own cost per iteration, measured, against a ~ms latency
        assert r.harness_overhead_ms is not None and r.harness_overhead_pct < 2.0, (
            r.harness_overhead_ms,
            r.stats.mean,
        )


def test_layer_profiles(results: tuple[list, BenchOptions]) -> None:
    rows, _ = results
    ort, pt = rows[0].layers, rows[2].layers
    assert ort is not None and pt is not None, (rows[0].layers_error, rows[2].layers_error)
    assert ort.runs == 2 and "onnxruntime" in ort.source
    assert any(r.kind in ("Conv", "FusedConv") for r in ort.rows)
    assert sum(r.share for r in ort.rows) == pytest.approx(1.0)
    assert ort.rows == sorted(ort.rows, key=lambda r: -r.ms_per_run)
    assert pt.runs == 2 and all(r.name.startswith("aten::") for r in pt.rows)
    assert {"U-Net encoder E", "HSEB", "HSBAB (attention)", "LLEmN decoder"} <= {
        b.name for b in pt.blocks
    }
    assert rows[0].layers_overhead_pct is not None


def test_reports(results: tuple[list, BenchOptions], tmp_path: Path) -> None:
    rows, opts = results
    data = json.loads(json.dumps(rep.to_json(rows, opts, command="test")))
    assert data["tool"] == "sllen-bench" and data["command"] == "test"
    assert data["machine"]["cpu_count"] == os.cpu_count()
    first, second = data["results"][0], data["results"][2]
    assert first["ratio_to_reference"] == 1.0  # the first 64x64 row is the reference
    assert second["ratio_to_reference"] == pytest.approx(
        second["latency_ms"]["mean"] / first["latency_ms"]["mean"]
    )
    # the tables' speed-up: above 1 means faster than the reference
    assert second["speedup_over_reference"] == pytest.approx(1 / second["ratio_to_reference"])
    assert len(first["layers"]["rows"]) == 5 and first["layers"]["rows_total"] > 5
    png = rep.plot(rows, tmp_path / "p.png")
    assert png.read_bytes()[:8] == PNG_MAGIC
    # One frame size: one bar per configuration (a line through one point says nothing).
    from PIL import Image

    single = rep.plot([r for r in rows if r.hw == (64, 64)], tmp_path / "one.png")
    with Image.open(single) as im:
        bar_blue = np.all(np.asarray(im.convert("RGB")) == (0x48, 0x78, 0xA8), axis=2)
    assert bar_blue.sum() > 1000
    md = rep.markdown_table(rows).splitlines()
    assert len(md) == 2 + len(rows) and all(ln.count("|") == md[0].count("|") for ln in md)
    speed = md[0].split(" | ").index("speed-up")
    fast = rep.speedup(rows[2], rows[0])
    assert md[4].split(" | ")[speed] == f"{fast:.2f}x" and fast is not None
    out = io.StringIO()
    rep.print_report(rows, opts, Console(file=out, width=200))
    text = out.getvalue()
    assert "latency per batch" in text and "ref" in text and "HSBAB" in text
    assert "GEMM (est.)" in text
    assert "torch included (loaded to count FLOPs" in text  # the peak RSS's note


def test_peak_memory_sees_an_allocation() -> None:
    with PeakMemory() as mem:
        block = np.ones(40 * 2**20 // 8)  # 40 MiB, touched
        del block
    if "reset" in mem.result.rss_method:
        assert mem.result.added_rss_mb > 30


def test_cli_end_to_end(tiny_models: tuple[Path, Path], tmp_path: Path) -> None:
    weights, onnx_file = tiny_models
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command()(bench_command)
    args = ["--model", str(onnx_file), "--model", str(weights), "--resolution", "64x64"]
    args += ["--resolution", "80x64"]
    args += ["--iterations", "3", "--warmup", "1", "--threads", "1", "--quiet", "--interleave"]
    args += ["--json", str(tmp_path / "b.json"), "--plot", str(tmp_path / "b.png")]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    assert "latency per batch" in r.output
    data = json.loads((tmp_path / "b.json").read_text())
    # interleaved in time, reported configuration by configuration
    rows = [(x["backend"], x["resolution"]["width"]) for x in data["results"]]
    assert rows == [("onnxruntime", 64), ("onnxruntime", 80), ("pytorch", 64), ("pytorch", 80)]
    assert data["results"][0]["latency_ms"]["n"] == 3
    assert (tmp_path / "b.png").read_bytes()[:8] == PNG_MAGIC


def test_without_torch_flops_are_na(
    tiny_models: tuple[Path, Path], tmp_path: Path, block_torch: str
) -> None:
    code = block_torch + (
        "from sllen.cli.bench import main\nsys.argv = ['sllen-bench', *sys.argv[1:]]\nmain()\n"
    )
    out = tmp_path / "b.json"
    r = subprocess.run(
        [sys.executable, "-c", code, "--model", str(tiny_models[1]), "--resolution", "64x64"]
        + ["--iterations", "2", "--warmup", "1", "--threads", "1", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200"},
    )
    assert r.returncode == 0, r.stderr
    row = json.loads(out.read_text())["results"][0]
    assert row["flops_per_frame"] is None and row["latency_ms"]["n"] == 2
    assert "n/a" in r.stdout


def test_an_int8_engines_flavour_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    # A stand-in for an INT8 TensorRT engine (TensorRT cannot run here): its metadata holds the
    # flavour under the engine's key ("int8_flavour"), the ONNX file under "sllen_int8_flavour".
    from sllen.bench.runner import BenchConfig, run_case
    from sllen.runtime.backends.base import BackendInfo, Timing

    class Engine:
        last_timing = Timing()

        def __init__(self, meta: dict) -> None:
            self.info = BackendInfo("tensorrt", "m.engine", "cpu", "int8", extra={"metadata": meta})

        def infer(self, x: np.ndarray) -> None:
            return None

    opts = BenchOptions(iterations=2, warmup=0, flops=False)
    for meta in ({"int8_flavour": "tensorrt"}, {"sllen_int8_flavour": "tensorrt"}):
        r = run_case(Engine(meta), BenchConfig(), (32, 32), opts)  # type: ignore[arg-type]
        assert r.extra["int8_flavour"] == "tensorrt"
