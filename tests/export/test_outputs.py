"""What sllen-export writes into --out (sllen.export.outputs): each target's file names, and
reports that keep what earlier runs into the same folder recorded. Engine builds use the
shared MOCK TensorRT (tests/fakes/fake_tensorrt.py; TensorRT cannot be installed here)."""

from __future__ import annotations

import json
from pathlib import Path

from fake_tensorrt import GPU
from tiny_onnx import write_onnx

from sllen.export.outputs import ONNX_NAMES, REPORTS, onnx_name, report_path, write_report
from sllen.export.pipeline import ExportOptions, run_export
from sllen.runtime import env


def test_each_target_has_its_own_names_and_the_tensorrt_ones_are_unchanged() -> None:
    # --target cpu wrote sllen.fp32.onnx and report.json over the TensorRT flavour's.
    assert ONNX_NAMES["tensorrt"] == {
        "fp32": "sllen.fp32.onnx",
        "fp16": "sllen.fp16.onnx",
        "int8": "sllen.int8.onnx",
    }
    assert [onnx_name(p, "cpu") for p in ("fp32", "fp16", "int8")] == [
        "sllen.fp32-cpu.onnx",
        "sllen.fp16-cpu.onnx",
        "sllen.int8-cpu.onnx",
    ]
    assert REPORTS == {"tensorrt": "report.json", "cpu": "report-cpu.json"}
    assert report_path(Path("exports"), "cpu") == Path("exports/report-cpu.json")


def _export_report(out: Path) -> dict:
    report = {
        "options": {"target": "tensorrt"},
        "files": {"fp16": {"file": "sllen.fp16.onnx"}},
        "engine": {"built": False, "reason": "no TensorRT here", "command": "sllen-export ..."},
    }
    write_report(out, report, "tensorrt")
    return report


def test_an_engine_build_into_the_export_folder_adds_to_its_report(
    fake_trt, monkeypatch, tmp_path: Path
) -> None:
    # `sllen-export --from-onnx exports/sllen.fp16.onnx` (--out defaults to exports, as the
    # export's own hint reads) replaced the export's report with the engine's.
    fake_trt("10.3.0")
    monkeypatch.setattr(env, "detect_gpu", lambda *a, **k: GPU)
    out = tmp_path / "exports"
    export = _export_report(out)
    for name in ("sllen.fp16.onnx", "sllen.fp32.onnx"):
        onnx_path = write_onnx(out / name, fp16=name == "sllen.fp16.onnx")
        run_export(ExportOptions(out=out, from_onnx=onnx_path, parity=False), log=lambda m: None)
    merged = json.loads((out / "report.json").read_text())
    assert merged["files"] == export["files"] and merged["options"] == export["options"]
    assert merged["engine"]["built"] is True
    assert set(merged["engine"]["engines"]) == {"sllen.fp16.onnx", "sllen.fp32.onnx"}
    assert merged["engine_build"]["options"]["from_onnx"] == str(out / "sllen.fp32.onnx")


def test_engine_builds_into_one_folder_keep_every_engine(tmp_path: Path) -> None:
    first = {"options": {"a": 1}, "engine": {"built": True, "engines": {"a.onnx": {"x": 1}}}}
    second = {"options": {"a": 2}, "engine": {"built": True, "engines": {"b.onnx": {"x": 2}}}}
    write_report(tmp_path, first, "tensorrt")
    write_report(tmp_path, second, "tensorrt")
    both = json.loads((tmp_path / "report.json").read_text())
    assert set(both["engine"]["engines"]) == {"a.onnx", "b.onnx"} and both["options"] == {"a": 2}
    # an export's own report is written as it is (its files are all rewritten)
    write_report(tmp_path, {"files": {}, "engine": {"built": False}}, "tensorrt")
    assert json.loads((tmp_path / "report.json").read_text())["engine"] == {"built": False}
    # anything unreadable there is replaced
    (tmp_path / "report.json").write_text("[not a report")
    write_report(tmp_path, first, "tensorrt")
    assert json.loads((tmp_path / "report.json").read_text()) == first
