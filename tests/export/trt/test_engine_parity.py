"""sllen.export.trt.engine_parity: the engine-vs-ONNX check through Polygraphy, on the CPU.

Polygraphy's ONNX Runtime side is real here (OnnxrtRunner, Comparator.run / compare_accuracy,
the saved JSON a user replays); the TensorRT side is stood in for by a second ONNX Runtime
runner named "tensorrt" (no TensorRT here), so what these tests show is the comparison, the
report, the tolerances and the files, not that a real engine passes. Skipped without
Polygraphy (an optional dependency: pip install polygraphy).
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from tiny_onnx import write_onnx

pytest.importorskip("polygraphy")

from sllen.export.trt import engine_parity as ep  # noqa: E402
from sllen.runtime.engine_meta import write_metadata  # noqa: E402
from sllen.runtime.errors import MissingDependencyError, SllenError  # noqa: E402
from sllen.runtime.shapes import ShapeProfile  # noqa: E402


def _shifted(path: Path, delta: float) -> Path:
    """The tiny graph with `delta` added to its output: a candidate that is off by delta."""
    write_onnx(path)
    model = onnx.load(str(path))
    (ident,) = [n for n in model.graph.node if n.op_type == "Identity"]
    ident.op_type = "Add"
    ident.input.append("delta")
    model.graph.initializer.append(helper.make_tensor("delta", TensorProto.FLOAT, [], [delta]))
    onnx.save(model, str(path))
    return path


def _feeds(n: int = 2) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    return [{"input": rng.random((1, 3, 16, 24), dtype=np.float32)} for _ in range(n)]


def test_identical_runners_pass_and_save_replayable_files(tmp_path) -> None:
    from polygraphy.comparator import RunResults
    from polygraphy.json import load_json

    model = write_onnx(tmp_path / "m.onnx")
    report = ep.compare(
        ep.onnxrt_runner(model),
        ep.onnxrt_runner(model, name="tensorrt"),
        _feeds(),
        tmp_path / "parity",
        atol=1e-6,
        rtol=1e-6,
    )
    assert report["passed"] and report["runners"] == ["onnxrt", "tensorrt"]
    out = report["outputs"]["output"]
    assert out["passed"] and out["max_abs"] == 0.0 and out["psnr_db"] == 100.0
    assert report["inputs"] == [{"input": [1, 3, 16, 24]}] * 2
    saved = json.loads((tmp_path / "parity" / "parity.json").read_text())
    assert saved["outputs"]["output"]["passed"] is True
    # What `polygraphy run --load-inputs/--load-outputs` reads back.
    results = RunResults.load(report["files"]["outputs"])
    assert [name for name, _ in results.items()] == ["onnxrt", "tensorrt"]
    inputs = load_json(report["files"]["inputs"])
    np.testing.assert_array_equal(inputs[1]["input"], _feeds()[1]["input"])


def test_polygraphy_049s_comparator_signature_is_enough(tmp_path, monkeypatch) -> None:
    # Polygraphy 0.49 (the copy in TensorRT's tools/ folder, which pyproject admits) has no
    # save_outputs_path in Comparator.run: a stand-in with 0.49's keywords refuses it.
    from polygraphy.comparator import Comparator

    real = Comparator.run

    def run_049(runners, data_loader=None, warm_up=None, use_subprocess=None,
                subprocess_timeout=None, subprocess_polling_interval=None,
                save_inputs_path=None):  # fmt: skip
        return real(runners, data_loader=data_loader, save_inputs_path=save_inputs_path)

    monkeypatch.setattr(Comparator, "run", staticmethod(run_049))
    model = write_onnx(tmp_path / "m.onnx")
    report = ep.compare(
        ep.onnxrt_runner(model), ep.onnxrt_runner(model, name="tensorrt"), _feeds(1),
        tmp_path / "parity", atol=1e-6, rtol=1e-6,
    )  # fmt: skip
    assert report["passed"] and Path(report["files"]["outputs"]).is_file()


def test_an_offset_is_measured_and_judged_against_the_tolerance(tmp_path) -> None:
    model = write_onnx(tmp_path / "m.onnx")
    off = _shifted(tmp_path / "off.onnx", 0.01)
    feeds = _feeds()
    strict = ep.compare(
        ep.onnxrt_runner(model),
        ep.onnxrt_runner(off, name="tensorrt"),
        feeds,
        tmp_path / "a",
        atol=2e-3,
        rtol=0.0,
    )
    assert not strict["passed"] and not strict["outputs"]["output"]["passed"]
    o = strict["outputs"]["output"]
    assert o["max_abs"] == pytest.approx(0.01, rel=1e-3)
    assert o["mean_abs"] == pytest.approx(0.01, rel=1e-3)
    assert o["psnr_db"] == pytest.approx(40.0, abs=0.01)  # 20 log10(1 / 0.01)
    loose = ep.compare(
        ep.onnxrt_runner(model),
        ep.onnxrt_runner(off, name="tensorrt"),
        feeds,
        tmp_path / "b",
        atol=0.02,
        rtol=0.0,
        check_error_stat="max",
    )
    assert loose["passed"] and loose["tolerance"]["check_error_stat"] == "max"


def _engine_with_metadata(tmp_path: Path, precision: str) -> Path:
    engine = tmp_path / f"sllen.{precision}.engine"
    engine.write_bytes(b"not read by the stand-in runner")
    profile = ShapeProfile((32, 32), (32, 48), (64, 64), batch=(1, 1, 2))
    write_metadata(
        engine,
        {
            "schema": 1,
            "sllen_version": "0.1.0",
            "tensorrt_version": "10.3.0",
            "gpu_name": "NVIDIA Jetson AGX Orin",
            "compute_capability": "8.7",
            "precision": precision,
            "int8_flavour": None,
            "attention": {"mode": "decomposed", "fused": True},
            "profile": profile.to_dict(),
            "onnx_sha256": "ab" * 32,
            "onnx_file": "/models/m.onnx",
            "engine_file": engine.name,
            "build_time": "2026-12-01T10:00:00+00:00",
            "plugin_library": None,
            "version_compatible": True,
            "hardware_compatibility": "none",
            "dla_core": None,
        },
    )
    return engine


def test_engine_parity_reads_the_engines_metadata(tmp_path) -> None:
    model = write_onnx(tmp_path / "m.onnx")
    off = _shifted(tmp_path / "off.onnx", 0.004)
    engine = _engine_with_metadata(tmp_path, "fp16")
    seen = {}

    def stand_in(engine_path, **kwargs):  # the TensorRT runner's place
        seen.update(kwargs, engine=engine_path)
        return ep.onnxrt_runner(off, name="tensorrt")

    report = ep.engine_parity(model, engine, tmp_path / "parity", make_candidate=stand_in)
    # FP16 defaults: mean |err| <= 5e-3, so an offset of 4e-3 passes.
    assert report["precision"] == "fp16" and report["passed"]
    assert report["tolerance"] == {"atol": 5e-3, "rtol": 1e-2, "check_error_stat": "mean"}
    assert seen == {"engine": engine, "plugin_library": None, "version_compatible": True}
    # Inputs at the profile's opt shape: batch 1, 32x48 dark scenes, two of them.
    assert report["inputs"] == [{"input": [1, 3, 32, 48]}] * 2
    onnx_cmd, trt_cmd = report["replay"]
    assert onnx_cmd.startswith(f"polygraphy run {model} --onnxrt --load-inputs ")
    assert "--model-type engine --trt" in trt_cmd and "parity_outputs.json" in trt_cmd
    # The replay judges with the check's tolerance: Polygraphy's default (1e-5 element-wise)
    # failed this passing FP16 check. The ONNX side really runs (the engine side needs TensorRT).
    assert "--atol 0.005 --rtol 0.01 --check-error-stat mean" in trt_cmd
    replay = subprocess.run(
        [str(Path(sys.executable).parent / "polygraphy"), *shlex.split(onnx_cmd)[1:]],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert replay.returncode == 0, replay.stdout[-2000:] + replay.stderr[-2000:]
    # The same engine judged as FP32 (tighter default) fails on that offset.
    strict = ep.engine_parity(
        model, engine, tmp_path / "p2", make_candidate=stand_in, atol=2e-3, feeds=_feeds(1)
    )
    assert not strict["passed"] and strict["inputs"] == [{"input": [1, 3, 16, 24]}]


def test_main_prints_one_line_per_output(tmp_path, monkeypatch, capsys) -> None:
    model = write_onnx(tmp_path / "m.onnx")
    engine = _engine_with_metadata(tmp_path, "fp32")
    monkeypatch.setattr(ep, "tensorrt_runner", lambda *a, **k: ep.onnxrt_runner(model, "tensorrt"))
    argv = [str(model), str(engine), "--out", str(tmp_path / "o"), "--count", "1"]
    assert ep.main(argv) == 0
    out = capsys.readouterr().out
    assert "PASS output: max |err| 0, mean 0, PSNR 100.0 dB (fp32, mean <= 0.002)" in out
    assert (tmp_path / "o" / "parity.json").is_file()


def test_without_polygraphy_one_line_says_how_to_get_it(tmp_path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "polygraphy", None)
    with pytest.raises(MissingDependencyError, match="pip install polygraphy") as err:
        ep.onnxrt_runner(write_onnx(tmp_path / "m.onnx"))
    assert isinstance(err.value, SllenError)
