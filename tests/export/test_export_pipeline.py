"""sllen-export's engine step and its engine cache, with a MOCK TensorRT.

TensorRT cannot be installed here, so this reuses the fake `tensorrt` module of
test_tensorrt_build.py (it accepts only names of the documented 10.x/11.x Python API and
records the calls); real engine builds are tested there, where TensorRT and a GPU exist.
"""

import importlib.util
import sys
from pathlib import Path

import pytest

from sllen.export import tensorrt_build as tb
from sllen.export.pipeline import ExportOptions, run_export

_spec = importlib.util.spec_from_file_location(
    "fake_trt_helpers", Path(__file__).with_name("test_tensorrt_build.py")
)
helpers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(helpers)


@pytest.fixture
def trt(monkeypatch):
    fake = helpers.make_fake_trt("10.3.0")
    monkeypatch.setitem(sys.modules, "tensorrt", fake)
    monkeypatch.setattr(tb._trt_backend, "_loaded_plugins", {})
    monkeypatch.setattr(tb, "detect_gpu", lambda *a, **k: helpers.GPU)
    return fake


def test_from_onnx_builds_then_reuses_the_cached_engine(trt, tmp_path: Path) -> None:
    onnx_path = helpers.write_onnx(tmp_path / "sllen.fp16.onnx", fp16=True)
    opts = ExportOptions(out=tmp_path / "out", from_onnx=onnx_path, engine_cache=tmp_path / "cache")
    first = run_export(opts, log=lambda m: None)["engine"]
    entry = first["engines"]["sllen.fp16.onnx"]
    assert first["built"] and entry["from_cache"] is False
    assert entry["metadata"]["precision"] == "fp16"
    builds = [c for c in trt.calls if c[0] == "build_serialized_network"]
    assert len(builds) == 1
    second = run_export(opts, log=lambda m: None)["engine"]
    assert second["engines"]["sllen.fp16.onnx"]["from_cache"] is True
    assert len([c for c in trt.calls if c[0] == "build_serialized_network"]) == 1
    assert (tmp_path / "out" / "sllen.fp16.engine").read_bytes() == b"SERIALIZED-ENGINE"
    assert (tmp_path / "out" / "report.json").is_file()


def test_cpu_int8_flavour_is_refused_by_the_builder(trt, tmp_path: Path) -> None:
    onnx_path = helpers.write_onnx(
        tmp_path / "m.onnx",
        qdq=True,
        props={"sllen_precision": "int8", "sllen_int8_flavour": "cpu"},
    )
    with pytest.raises(ValueError, match="cpu"):
        run_export(ExportOptions(out=tmp_path / "o", from_onnx=onnx_path), log=lambda m: None)


def test_device_is_selected_before_building(trt, tmp_path: Path, monkeypatch) -> None:
    chosen = []
    monkeypatch.setattr(tb, "select_device", chosen.append)
    onnx_path = helpers.write_onnx(tmp_path / "sllen.fp32.onnx")
    report = run_export(
        ExportOptions(out=tmp_path / "o", from_onnx=onnx_path, device=1), log=lambda m: None
    )
    assert chosen == [1] and report["engine"]["built"]
    with pytest.raises(ValueError, match="not both"):
        run_export(
            ExportOptions(out=tmp_path / "o", from_onnx=onnx_path, device=1, dla_core=0),
            log=lambda m: None,
        )
