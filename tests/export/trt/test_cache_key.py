"""The engine cache key names the machine an engine is built for: TensorRT version, GPU name,
compute capability (sllen.runtime.engine_meta.cache_key and sllen-export's call of it), with
the shared MOCK TensorRT (tests/fakes/fake_tensorrt.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tiny_onnx import write_onnx

from sllen.export.pipeline import ExportOptions, run_export
from sllen.export.shapes import DEFAULT_PROFILE
from sllen.runtime import env
from sllen.runtime.engine_meta import cache_key


def _key(**overrides) -> str:
    args = {
        "onnx_sha256": "ab" * 32,
        "precision": "fp16",
        "profile": DEFAULT_PROFILE.to_dict(),
        "trt_version": "10.3.0",
        "compute_capability": "8.6",
        "gpu_name": "NVIDIA GeForce RTX 3090",
    }
    args.update(overrides)
    return cache_key(**args)


def test_key_changes_with_the_gpu_name_at_one_compute_capability() -> None:
    # An RTX 3090 and an A10 are both 8.6, with different SM counts, clocks and memory: the
    # builder times other tactics, so their engines are not interchangeable.
    assert _key() == _key()
    assert _key(gpu_name="NVIDIA A10") != _key()
    assert _key(gpu_name=None) != _key()
    assert _key(compute_capability="8.9") != _key()
    assert _key(trt_version="10.3.0.30") != _key()


def _run(fake_trt, monkeypatch, tmp_path: Path, gpu: tuple[str, str], version: str) -> dict:
    fake_trt(version)
    monkeypatch.setattr(env, "detect_gpu", lambda *a, **k: gpu)
    onnx_path = tmp_path / "sllen.fp16.onnx"
    if not onnx_path.exists():
        write_onnx(onnx_path, fp16=True)
    opts = ExportOptions(
        out=tmp_path / "out", from_onnx=onnx_path, engine_cache=tmp_path / "cache", parity=False
    )
    return run_export(opts, log=lambda m: None)["engine"]["engines"]["sllen.fp16.onnx"]


@pytest.mark.parametrize(
    ("gpu", "version"),
    [
        (("NVIDIA A10", "8.6"), "10.3.0"),  # same compute capability, other GPU
        (("NVIDIA GeForce RTX 3090", "8.9"), "10.3.0"),  # other compute capability
        (("NVIDIA GeForce RTX 3090", "8.6"), "10.4.0"),  # other TensorRT
    ],
)
def test_sllen_export_rebuilds_for_another_gpu_or_tensorrt(
    fake_trt, monkeypatch, tmp_path: Path, gpu, version
) -> None:
    first = _run(fake_trt, monkeypatch, tmp_path, ("NVIDIA GeForce RTX 3090", "8.6"), "10.3.0")
    again = _run(fake_trt, monkeypatch, tmp_path, ("NVIDIA GeForce RTX 3090", "8.6"), "10.3.0")
    assert first["from_cache"] is False and again["from_cache"] is True
    other = _run(fake_trt, monkeypatch, tmp_path, gpu, version)
    assert other["from_cache"] is False  # a miss: built again, not the other machine's engine
    assert len(list((tmp_path / "cache").glob("*.engine"))) == 2
