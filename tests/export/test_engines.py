"""sllen-export's engine step (sllen.export.engines) with a MOCK TensorRT.

TensorRT cannot be installed here: the shared fake `tensorrt` module (tests/fakes/
fake_tensorrt.py, only the documented 10.x/11.x Python API) stands in for it, as in
test_export_pipeline.py. The log is rendered by a real rich console, as sllen-export's is.
"""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

import pytest
from fake_tensorrt import GPU
from rich.console import Console
from tiny_onnx import write_onnx

from sllen.export.pipeline import ExportOptions, run_export
from sllen.runtime import env


@pytest.fixture
def trt(fake_trt, monkeypatch):
    fake = fake_trt("10.3.0")
    monkeypatch.setattr(env, "detect_gpu", lambda *a, **k: GPU)
    return fake


def _rendered(opts: ExportOptions) -> tuple[dict, str]:
    """run_export with its log printed by a rich console (markup on, as in the CLI)."""
    out = io.StringIO()
    console = Console(file=out, width=400, soft_wrap=True, color_system=None)
    return run_export(opts, log=console.print), out.getvalue()


@pytest.mark.parametrize("missing", ["polygraphy", "onnxruntime"])
def test_parity_without_its_packages_is_skipped_naming_the_extra(
    trt, tmp_path: Path, monkeypatch, missing: str
) -> None:
    # Parity needs Polygraphy and ONNX Runtime; the Jetson install has neither, and with
    # Polygraphy alone the build ended in PolygraphyException (exit 1) after the engine.
    from sllen.export.trt import engine_parity as ep

    real = env.installed
    monkeypatch.setattr(env, "installed", lambda m: m != missing and real(m))
    monkeypatch.setattr(ep, "engine_parity", lambda *a, **k: pytest.fail("parity ran"))
    onnx_path = write_onnx(tmp_path / "sllen.fp16.onnx", fp16=True)
    report, text = _rendered(ExportOptions(out=tmp_path / "o", from_onnx=onnx_path))
    assert report["engine"]["engines"]["sllen.fp16.onnx"]["parity"] is None
    [line] = [ln for ln in text.splitlines() if "engine parity skipped" in ln]
    # the extra survives rich's markup (it read "sllen[trt-check]" as a style tag)
    assert 'python -m pip install ".[trt-check]"' in line
    assert {"polygraphy": "Polygraphy", "onnxruntime": "ONNX Runtime"}[missing] in line


def test_paths_with_brackets_survive_the_log(trt, tmp_path: Path) -> None:
    out = tmp_path / "runs[bold]"
    onnx_path = write_onnx(tmp_path / "sllen.fp32.onnx")
    _, text = _rendered(ExportOptions(out=out, from_onnx=onnx_path, parity=False))
    assert f"engine: {out / 'sllen.fp32.engine'}" in text


@pytest.mark.parametrize("kind", ["truncated", "text"])
def test_from_onnx_that_is_not_onnx_is_bad_input_before_any_build(
    trt, tmp_path: Path, kind: str
) -> None:
    good = write_onnx(tmp_path / "m.onnx").read_bytes()
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(good[: len(good) // 2] if kind == "truncated" else b"notes\n")
    with pytest.raises(ValueError, match="not an ONNX model, or a truncated or corrupt") as err:
        run_export(ExportOptions(out=tmp_path / "o", from_onnx=bad), log=lambda m: None)
    assert str(bad) in str(err.value)
    assert not [c for c in trt.calls if c[0] == "build_serialized_network"]
    assert not (tmp_path / "o").exists()


def test_cpu_flavour_files_are_not_engine_sources(trt, tmp_path: Path) -> None:
    from sllen.export.engines import build_engines
    from sllen.export.outputs import FP32_CPU, INT8_CPU

    fp32 = write_onnx(tmp_path / "sllen.fp32.onnx")
    cpu_int8 = write_onnx(tmp_path / INT8_CPU, props={"sllen_int8_flavour": "cpu"})
    opts = ExportOptions(out=tmp_path, parity=False, attention="decomposed")
    report = build_engines(opts, [fp32, cpu_int8], lambda m: None)
    assert list(report["engines"]) == ["sllen.fp32.onnx"]
    mha = write_onnx(tmp_path / "x.onnx", props={"sllen_attention": "mha"})
    with pytest.raises(ValueError, match=f"such as {FP32_CPU}"):  # names both flavours' files
        build_engines(replace(opts, from_onnx=mha, engine=True), [mha], lambda m: None)
    # Named on purpose: the CPU flavour's INT8 file is refused in one line, not skipped in
    # silence (exit 0, no engine); a decomposed-attention sllen.fp32-cpu.onnx builds.
    named = replace(opts, from_onnx=cpu_int8, engine=True)
    with pytest.raises(ValueError, match="CPU flavour's INT8 file .* TensorRT does not build"):
        build_engines(named, [cpu_int8], lambda m: None)
    fp32_cpu = write_onnx(tmp_path / FP32_CPU)
    report = build_engines(replace(opts, from_onnx=fp32_cpu, engine=True), [fp32_cpu], print)
    assert list(report["engines"]) == [FP32_CPU]


def test_the_trt_check_extra_installs_what_parity_imports() -> None:
    # The skip line says to install the trt-check extra: it held Polygraphy only.
    from sllen.export.engines import PARITY_NEEDS

    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    extra = tomllib.loads(pyproject.read_text())["project"]["optional-dependencies"]["trt-check"]
    names = {req.split(">")[0].split("=")[0].strip() for req in extra}
    assert set(PARITY_NEEDS) <= names


def test_without_tensorrt_the_printed_build_command_names_the_plugin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A plugin-attention file cannot build without the library: the command said nothing of it.
    from sllen.export.engines import build_engines
    from sllen.export.pipeline import ExportOptions
    from sllen.runtime import env

    monkeypatch.setattr(env, "tensorrt_available", lambda: (False, "no tensorrt"))
    onnx_file = tmp_path / "my exports" / "sllen.fp32.onnx"  # quoted for a shell
    for attention, named in (("plugin", True), ("decomposed", False)):
        opts = ExportOptions(out=tmp_path, attention=attention)
        report = build_engines(opts, [onnx_file], lambda m: None)
        assert report["built"] is False
        assert f"--from-onnx '{onnx_file}' " in report["command"]
        assert ("--plugin build/libsllen_attention_plugin.so" in report["command"]) == named
