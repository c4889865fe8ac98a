"""sllen.export.trt.auto: `--attention auto`, on a CPU machine.

The builder's decision on recorded engine-inspector listings (fused / unfused / opaque) and on
build failures, with the shared MOCK tensorrt (tests/fakes/fake_tensorrt.py: TensorRT cannot
be installed here).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fake_tensorrt import GPU
from tiny_onnx import write_onnx

from sllen.export.engine_meta import read_metadata
from sllen.export.shapes import DEFAULT_PROFILE
from sllen.export.trt.auto import build_engine_auto, decide_attention
from sllen.export.trt.build import EngineBuildError
from sllen.runtime import env

DATA = Path(__file__).resolve().parents[1] / "data"


# --------------------------------------------------------------------------- the decision


@pytest.mark.parametrize(
    ("fusion", "error", "plugin", "mode", "warn"),
    [
        ("fused", None, True, "decomposed", False),
        ("fused", None, False, "decomposed", False),
        ("unfused", None, True, "plugin", False),
        ("unfused", None, False, "decomposed", True),
        ("unknown", None, True, "decomposed", True),
        (None, "out of memory", True, "plugin", False),
        (None, "out of memory", False, "decomposed", True),
    ],
)
def test_decide_attention(fusion, error, plugin, mode, warn) -> None:
    d = decide_attention(fusion, build_error=error, plugin_available=plugin)
    assert (d.mode, d.warn) == (mode, warn)
    if warn and mode == "decomposed" and fusion != "unknown":
        assert "cmake" in d.reason and "--plugin" in d.reason
    assert d.to_dict()["requested"] == "auto" and d.to_dict()["decision"] == mode


# --------------------------------------------------------------------------- build_engine_auto


@pytest.fixture
def fake(fake_trt):
    def install(listing: str = "layers_trt10_detailed_fused.json", **options):
        return fake_trt("10.3.0", engine_information=(DATA / listing).read_text(), **options)

    return install


@pytest.fixture
def plugin_lib(tmp_path) -> Path:
    path = tmp_path / "libsllen_attention_plugin.so"
    path.write_bytes(b"\x7fELF stand-in")
    return path


def _auto(tmp_path, plugin=None, onnx_path=None):
    onnx_path = onnx_path or write_onnx(tmp_path / "sllen.fp16.onnx", attention=True)
    return build_engine_auto(
        onnx_path,
        tmp_path / "sllen.fp16.engine",
        DEFAULT_PROFILE,
        plugin_library=plugin,
        gpu=GPU,
    )


def _parsed(trt) -> list[str]:
    return [Path(c[1]).name for c in trt.calls if c[0] == "parse_from_file"]


def test_fused_keeps_the_decomposed_engine(fake, tmp_path, plugin_lib) -> None:
    trt = fake("layers_trt10_detailed_fused.json")
    meta = _auto(tmp_path, plugin_lib)
    assert _parsed(trt) == ["sllen.fp16.onnx"] and ("dlopen", str(plugin_lib)) not in trt.calls
    assert meta["attention"]["mode"] == "decomposed" and meta["attention"]["fused"] is True
    assert meta["attention"]["auto"]["decision"] == "decomposed"
    assert read_metadata(tmp_path / "sllen.fp16.engine")["attention"] == meta["attention"]


def test_unfused_rebuilds_with_the_plugin(fake, tmp_path, plugin_lib) -> None:
    trt = fake("layers_trt10_detailed_unfused.json")
    meta = _auto(tmp_path, plugin_lib)
    assert _parsed(trt) == ["sllen.fp16.onnx", "sllen.fp16.plugin.onnx"]
    assert ("dlopen", str(plugin_lib.resolve())) in trt.calls
    names = [c[0] for c in trt.calls]
    assert names.index("dlopen") < len(names) - names[::-1].index("parse_from_file") - 1
    assert meta["attention"]["mode"] == "plugin" and meta["plugin_library"] == plugin_lib.name
    auto = meta["attention"]["auto"]
    assert auto["decision"] == "plugin" and auto["decomposed_fusion"] == "unfused"
    assert meta["onnx_file"].endswith("sllen.fp16.plugin.onnx")
    saved = json.loads((tmp_path / "sllen.fp16.engine.json").read_text())
    assert saved["attention"]["auto"]["decision"] == "plugin"


def test_unfused_without_plugin_keeps_decomposed_and_warns(fake, tmp_path) -> None:
    trt = fake("layers_trt10_detailed_unfused.json")
    with pytest.warns(UserWarning, match="did not fuse the attention.*--plugin"):
        meta = _auto(tmp_path, None)
    assert _parsed(trt) == ["sllen.fp16.onnx"]
    assert meta["attention"]["auto"] == {
        "requested": "auto",
        "decision": "decomposed",
        "reason": meta["attention"]["auto"]["reason"],
        "decomposed_fusion": "unfused",
        "decomposed_build_error": None,
        "warning": True,
    }


def test_missing_plugin_library_is_said_up_front(fake, tmp_path, caplog, monkeypatch) -> None:
    # Even when TensorRT fuses (no fallback needed this time), auto mode says on one line that it
    # has no plugin to fall back to, where it looked and how to build it; the line survives a
    # caller's warnings filter (sllen-export silences warnings around auto builds).
    import warnings

    monkeypatch.delenv("SLLEN_ATTENTION_PLUGIN", raising=False)
    fake("layers_trt10_detailed_fused.json")
    with caplog.at_level("WARNING", logger="sllen.export.trt"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        meta = _auto(tmp_path, None)
    (record,) = [r for r in caplog.records if r.name == "sllen.export.trt"]
    line = record.getMessage()
    assert "\n" not in line and "--attention auto without the attention plugin library" in line
    assert "no libsllen_attention_plugin.so found in" in line
    assert "-DTensorRT_INCLUDE_DIR=" in line and "--plugin" in line
    assert meta["attention"]["plugin_missing"] == line
    assert meta["attention"]["auto"]["decision"] == "decomposed"


def test_no_announcement_with_a_plugin_or_without_attention(fake, tmp_path, caplog, plugin_lib):
    fake("layers_trt10_detailed_fused.json")
    with caplog.at_level("WARNING", logger="sllen.export.trt"):
        with_plugin = _auto(tmp_path, plugin_lib)
        plain = _auto(tmp_path, None, write_onnx(tmp_path / "plain.onnx"))
    assert not [r for r in caplog.records if r.name == "sllen.export.trt"]
    assert "plugin_missing" not in with_plugin["attention"]
    assert "plugin_missing" not in plain["attention"]


def test_failed_build_rebuilds_with_the_plugin(fake, tmp_path, plugin_lib, monkeypatch) -> None:
    trt = fake()
    original = trt.Builder.build_serialized_network
    attempts = []

    def fails_once(self, network, config):
        attempts.append(1)
        return None if len(attempts) == 1 else original(self, network, config)

    monkeypatch.setattr(trt.Builder, "build_serialized_network", fails_once)
    meta = _auto(tmp_path, plugin_lib)
    assert len(attempts) == 2 and meta["attention"]["mode"] == "plugin"
    auto = meta["attention"]["auto"]
    assert auto["decision"] == "plugin" and "could not build" in auto["decomposed_build_error"]


def test_failed_build_without_plugin_says_how_to_get_one(fake, tmp_path) -> None:
    fake(build_result=None)
    with pytest.raises(EngineBuildError, match="no plugin library was found.*cmake"):
        _auto(tmp_path, None)


def test_graph_without_attention_builds_once(fake, tmp_path, plugin_lib) -> None:
    trt = fake("layers_trt10_detailed_unfused.json")
    meta = _auto(tmp_path, plugin_lib, write_onnx(tmp_path / "plain.onnx"))
    assert _parsed(trt) == ["plain.onnx"]
    assert meta["attention"]["auto"]["reason"] == "the graph has no attention block"


def test_run_export_auto_finds_the_plugin_library(fake, tmp_path, plugin_lib, monkeypatch) -> None:
    from sllen.export.pipeline import ExportOptions, run_export

    fake("layers_trt10_detailed_unfused.json")
    monkeypatch.setattr(env, "detect_gpu", lambda *a, **k: GPU)
    monkeypatch.setenv("SLLEN_ATTENTION_PLUGIN", str(plugin_lib))
    onnx_path = write_onnx(tmp_path / "sllen.fp32.onnx", attention=True)
    lines: list[str] = []
    opts = ExportOptions(out=tmp_path / "out", from_onnx=onnx_path, parity=False)
    assert opts.attention == "auto"
    report = run_export(opts, log=lines.append)
    meta = report["engine"]["engines"]["sllen.fp32.onnx"]["metadata"]
    assert meta["attention"]["auto"]["decision"] == "plugin"
    assert any("attention plugin:" in line for line in lines), lines


def test_run_export_auto_without_plugin_says_so(fake, tmp_path, monkeypatch, caplog) -> None:
    from sllen.export.pipeline import ExportOptions, run_export
    from sllen.runtime import attention_kernel as ak

    fake("layers_trt10_detailed_unfused.json")
    monkeypatch.setattr(env, "detect_gpu", lambda *a, **k: GPU)
    monkeypatch.setattr(ak, "find_plugin_library", lambda: None)
    onnx_path = write_onnx(tmp_path / "sllen.fp32.onnx", attention=True)
    lines: list[str] = []
    report = run_export(
        ExportOptions(out=tmp_path / "out", from_onnx=onnx_path, parity=False), log=lines.append
    )
    meta = report["engine"]["engines"]["sllen.fp32.onnx"]["metadata"]
    assert meta["attention"]["auto"]["decision"] == "decomposed"
    assert any("no attention plugin library found" in line for line in lines), lines
    assert any("[yellow]engine:" in line and "did not fuse" in line for line in lines), lines
    # said once by sllen-export, not again per engine through the logger (the CLI shows both)
    assert not [r for r in caplog.records if "attention plugin" in r.getMessage()]
    assert "plugin_missing" in meta["attention"]  # still recorded with the engine


def test_attention_option_values() -> None:
    from sllen.export.pipeline import ExportOptions

    for mode in ("auto", "decomposed", "plugin"):
        assert ExportOptions(attention=mode).attention == mode
    # The message grew an "mha" (ONNX Runtime's fused attention) with the CPU target.
    with pytest.raises(ValueError, match="auto, decomposed, plugin or mha"):
        ExportOptions(attention="fused")
