"""sllen.export.trt.build: the engine builder, checked against a MOCK of the `tensorrt` module.

TensorRT cannot be installed on the development machines (its PyPI wheels are placeholders that
download the libraries from NVIDIA's index, which is out of reach), so most tests here install
the shared FAKE `tensorrt` module (tests/fakes/fake_tensorrt.py, the `fake_trt` fixture of
tests/conftest.py). It is a mock, not TensorRT: it only records the calls build_engine makes,
and accepts only the names of the documented Python API, so a misspelt enum or method fails
here. Whether TensorRT builds a good engine is checked by TestRealTensorRT, which runs only
where TensorRT and a CUDA GPU are present.

ONNX fixtures are written with onnx.helper (tests/fakes/tiny_onnx.py; tiny graphs, no torch).
"""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest
from fake_tensorrt import GPU, ParserError, names, setters
from onnx import TensorProto, helper
from tiny_onnx import write_onnx

from sllen.export.engine_meta import check_compatible, metadata_path, onnx_sha256, read_metadata
from sllen.export.shapes import DEFAULT_PROFILE, ShapeProfile
from sllen.export.trt.build import (
    EngineBuildError,
    OnnxParseError,
    build_engine,
    format_parser_error,
)
from sllen.export.trt.fusion import attention_fusion, inspect_layers
from sllen.runtime import env
from sllen.runtime.engine_meta import engine_platform as env_platform

DATA = Path(__file__).resolve().parents[1] / "data"


def build(tmp_path, onnx_path=None, profile=DEFAULT_PROFILE, **kwargs):
    onnx_path = onnx_path or write_onnx(tmp_path / "fp32.onnx")
    kwargs.setdefault("gpu", GPU)
    return build_engine(onnx_path, tmp_path / "model.engine", profile, **kwargs)


# --------------------------------------------------------------------------- call sequence


def test_documented_build_sequence_on_10x(fake_trt, tmp_path):
    trt = fake_trt("10.3.0")
    meta = build(tmp_path, workspace_gib=1.5)
    assert names(trt)[:5] == [
        "Logger",
        "Builder",
        "create_network",
        "OnnxParser",
        "parse_from_file",
    ]
    # 10.x: strongly typed network through the creation flag, 1 << int(STRONGLY_TYPED).
    assert ("create_network", 1 << 1) in trt.calls
    assert ("set_memory_pool_limit", trt.MemoryPoolType.WORKSPACE, int(1.5 * (1 << 30))) in (
        trt.calls
    )
    assert ("set_shape", "input", (1, 3, 256, 256), (1, 3, 720, 1280), (1, 3, 1088, 1920)) in (
        trt.calls
    )
    order = names(trt)
    assert (
        order.index("create_optimization_profile")
        < order.index("add_optimization_profile")
        < order.index("build_serialized_network")
    )
    assert setters(trt, "IBuilderConfig")["profiling_verbosity"] is trt.ProfilingVerbosity.DETAILED
    assert meta["workspace_bytes"] == int(1.5 * (1 << 30))


def test_11x_creates_the_network_without_the_deprecated_flag(fake_trt, tmp_path):
    trt = fake_trt("11.4.1")
    meta = build(tmp_path)
    assert ("create_network", 0) in trt.calls  # always strongly typed in 11.x
    assert meta["tensorrt_version"] == "11.4.1"


@pytest.mark.parametrize("version", ["10.3.0", "11.4.1"])
def test_no_precision_builder_flags(fake_trt, tmp_path, version):
    trt = fake_trt(version)
    build(tmp_path, write_onnx(tmp_path / "int8.onnx", qdq=True))
    assert [c for c in trt.calls if c[0] == "set_flag"] == []


def test_workspace_must_be_positive(fake_trt, tmp_path):
    fake_trt()
    with pytest.raises(ValueError, match="workspace_gib must be positive"):
        build(tmp_path, workspace_gib=0)
    with pytest.raises(TypeError, match="ShapeProfile"):
        build(tmp_path, profile=((256, 256), (720, 1280), (1088, 1920)))


def test_custom_profile_shapes(fake_trt, tmp_path):
    trt = fake_trt()
    profile = ShapeProfile("640x368", "640x368", "1280x736", batch=(1, 2, 4))  # WIDTHxHEIGHT
    meta = build(tmp_path, profile=profile)
    assert ("set_shape", "input", (1, 3, 368, 640), (2, 3, 368, 640), (4, 3, 736, 1280)) in (
        trt.calls
    )
    assert ShapeProfile.from_dict(meta["profile"]) == profile


def test_timing_cache_round_trip(fake_trt, tmp_path):
    cache = tmp_path / "caches" / "orin.timing"
    trt = fake_trt()
    build(tmp_path, timing_cache=cache)
    assert ("create_timing_cache", b"") in trt.calls  # no file yet: empty cache
    assert ("set_timing_cache", b"", False) in trt.calls  # ignore_mismatch=False
    assert cache.read_bytes() == b"|tuned"  # serialized back after the build

    trt = fake_trt()
    build(tmp_path, timing_cache=cache)
    assert ("create_timing_cache", b"|tuned") in trt.calls  # reused on the next build
    assert cache.read_bytes() == b"|tuned|tuned"
    assert not [p for p in cache.parent.iterdir() if p.name != "orin.timing"]


def test_stale_timing_cache_is_said_and_replaced(fake_trt, tmp_path, caplog):
    # A cache from another GPU or TensorRT: set_timing_cache returns False (ignore_mismatch is
    # False). It must not go silently unused: one line, then a fresh cache written back.
    cache = tmp_path / "orin.timing"
    cache.write_bytes(b"cache-from-an-rtx-4090")
    trt = fake_trt(timing_cache_mismatch=True)
    with caplog.at_level("WARNING", logger="sllen.export.trt"):
        meta = build(tmp_path, timing_cache=cache)
    (record,) = [r for r in caplog.records if r.name == "sllen.export.trt"]
    line = record.getMessage()
    assert (
        "\n" not in line
        and str(cache) in line
        and "another TensorRT version or on another GPU" in line
    )
    assert "starting a fresh one" in line
    sets = [c for c in trt.calls if c[0] == "set_timing_cache"]
    assert sets == [
        ("set_timing_cache", b"cache-from-an-rtx-4090", False),  # refused
        ("set_timing_cache", b"", False),  # the fresh one
    ]
    assert cache.read_bytes() == b"|tuned"  # the stale file is replaced after the build
    assert meta["timing_cache"] == {"file": str(cache), "state": "stale"}


def test_corrupt_timing_cache_is_one_clear_error(fake_trt, tmp_path):
    from sllen.export.trt.build import TimingCacheError
    from sllen.runtime.errors import SllenError

    cache = tmp_path / "orin.timing"
    cache.write_bytes(b"\x00garbage")
    trt = fake_trt(timing_cache_corrupt=True)
    with pytest.raises(TimingCacheError) as err:  # not pybind11's TypeError on None
        build(tmp_path, timing_cache=cache)
    message = str(err.value)
    assert isinstance(err.value, SllenError) and "\n" not in message
    assert str(cache) in message and "not readable by TensorRT 10.3.0" in message
    assert "delete it" in message
    assert "set_timing_cache" not in names(trt) and "build_serialized_network" not in names(trt)
    assert cache.read_bytes() == b"\x00garbage"  # left for the user to look at


def test_unreadable_default_cache_is_replaced(fake_trt, tmp_path, caplog):
    # sllen-export's own OUT/timing.cache (replace_unreadable_cache): TensorRT does not say
    # whether it reads another version's cache, and an upgrade must not stop every export.
    cache = tmp_path / "timing.cache"
    cache.write_bytes(b"\x00from-tensorrt-10.3")
    trt = fake_trt("11.4.1", timing_cache_corrupt=True)
    with caplog.at_level("WARNING", logger="sllen.export.trt"):
        meta = build(tmp_path, timing_cache=cache, replace_unreadable_cache=True)
    assert meta["timing_cache"]["state"] == "stale"
    assert "is not readable by TensorRT 11.4.1 here: starting a fresh one" in caplog.text
    assert ("set_timing_cache", b"", False) in trt.calls and "build_serialized_network" in names(
        trt
    )
    assert cache.read_bytes() != b"\x00from-tensorrt-10.3"  # the build wrote the fresh one


def test_timing_cache_states_in_metadata(fake_trt, tmp_path):
    cache = tmp_path / "t.cache"
    fake_trt()
    assert build(tmp_path, timing_cache=cache)["timing_cache"]["state"] == "new"
    fake_trt()
    assert build(tmp_path, timing_cache=cache)["timing_cache"]["state"] == "loaded"
    fake_trt()
    assert build(tmp_path)["timing_cache"] is None


def test_no_timing_cache_calls_without_a_cache_file(fake_trt, tmp_path):
    trt = fake_trt()
    build(tmp_path)
    assert "create_timing_cache" not in names(trt) and "set_timing_cache" not in names(trt)


FIXED = ShapeProfile((720, 1280), (720, 1280), (720, 1280))  # DLA: one input size


def test_dla_settings(fake_trt, tmp_path):
    trt = fake_trt("10.3.0", num_dla_cores=2)
    meta = build(tmp_path, write_onnx(tmp_path / "fp16.onnx", fp16=True), profile=FIXED, dla_core=1)
    config = setters(trt, "IBuilderConfig")
    assert config["default_device_type"] is trt.DeviceType.DLA
    assert config["DLA_core"] == 1
    assert [c for c in trt.calls if c[0] == "set_flag"] == [("set_flag", "GPU_FALLBACK")]
    assert setters(trt, "Runtime")["DLA_core"] == 1  # the inspection deserializes for core 1
    assert meta["dla_core"] == 1 and meta["precision"] == "fp16"


def test_dla_with_a_dynamic_profile_is_refused_before_tensorrt(fake_trt, tmp_path):
    # NVIDIA's "DLA Supported Layers and Restrictions": no dynamic dimensions on DLA (min, opt
    # and max equal); with GPU_FALLBACK a dynamic profile would run every layer on the GPU.
    trt = fake_trt("10.3.0", num_dla_cores=2)
    with pytest.raises(ValueError, match="DLA runs one fixed input size") as err:
        build(tmp_path, dla_core=0)  # DEFAULT_PROFILE: 256x256 .. 1920x1088
    assert "--opt-shape alone sets all three" in str(err.value) and "\n" not in str(err.value)
    assert trt.calls == []
    batched = ShapeProfile((720, 1280), (720, 1280), (720, 1280), batch=(1, 1, 2))
    with pytest.raises(ValueError, match="fixed input size"):
        build(tmp_path, profile=batched, dla_core=0)


def test_dla_core_that_does_not_exist_is_refused(fake_trt, tmp_path):
    fake_trt("11.4.1", num_dla_cores=0)
    with pytest.raises(ValueError, match="DLA core 0 requested but this machine has 0 DLA") as e:
        build(tmp_path, profile=FIXED, dla_core=0)
    # TensorRT 11.4.1 brought DLA back on AGX Orin with JetPack 7.2.2+ (NVIDIA's 11.4.1
    # "Working with DLA"); the message said "TensorRT 10.x" only
    assert "11.4.1 on JetPack 7.2.2" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(ValueError, match="DLA core index"):
        build(tmp_path, profile=FIXED, dla_core=-1)


def test_version_compatible_flag_and_host_code(fake_trt, tmp_path):
    trt = fake_trt()
    meta = build(tmp_path, version_compatible=True)
    assert meta["plugins_serialized"] == []  # no plugin in the graph
    assert [c for c in trt.calls if c[0] == "set_flag"] == [("set_flag", "VERSION_COMPATIBLE")]
    assert setters(trt, "Runtime")["engine_host_code_allowed"] is True
    assert "plugins_to_serialize" not in setters(trt, "IBuilderConfig")
    assert meta["version_compatible"] is True


@pytest.mark.parametrize(
    "level,member", [("ampere_plus", "AMPERE_PLUS"), ("same_compute_capability", None)]
)
def test_hardware_compatibility_level(fake_trt, tmp_path, level, member):
    trt = fake_trt(same_cc_level=member is not None)
    if member is None:  # an older 10.x without HardwareCompatibilityLevel.SAME_COMPUTE_CAPABILITY
        with pytest.raises(ValueError, match="has no HardwareCompatibilityLevel"):
            build(tmp_path, hardware_compatibility=level)
        return
    meta = build(tmp_path, hardware_compatibility=level)
    assert setters(trt, "IBuilderConfig")["hardware_compatibility_level"] is getattr(
        trt.HardwareCompatibilityLevel, member
    )
    assert meta["hardware_compatibility"] == level
    with pytest.raises(ValueError, match="hardware_compatibility must be one of"):
        build(tmp_path, hardware_compatibility="turing")


def test_same_compute_capability_level_arrives_in_10_9(fake_trt, tmp_path):
    # pyCore.cpp: HardwareCompatibilityLevel.SAME_COMPUTE_CAPABILITY from tag v10.9.0 on.
    fake_trt("10.8.0")
    with pytest.raises(ValueError, match="TensorRT 10.8.0 has no HardwareCompatibilityLevel"):
        build(tmp_path, hardware_compatibility="same_compute_capability")
    fake_trt("10.9.0")
    assert build(tmp_path, hardware_compatibility="same_compute_capability")[
        "hardware_compatibility"
    ]


@pytest.mark.parametrize(
    "level,cc,needed",
    [("ampere_plus", "7.5", "8.0"), ("same_compute_capability", "7.2", "7.5")],
)
def test_hardware_level_the_build_gpu_cannot_make_is_refused(fake_trt, tmp_path, level, cc, needed):
    # NvInfer.h: AMPERE_PLUS engines only build on Ampere and later, SAME_COMPUTE_CAPABILITY
    # ones on Turing and later; the build would fail with TensorRT's log only.
    trt = fake_trt("10.9.0")
    with pytest.raises(ValueError) as err:
        build(tmp_path, hardware_compatibility=level, gpu=("an older GPU", cc))
    message = str(err.value)
    assert f"compute capability {needed} or newer; an older GPU has {cc}" in message
    assert "build_serialized_network" not in names(trt)


# --------------------------------------------------------------------------- plugin


def test_plugin_loaded_before_parsing_for_sllen_domain_graphs(fake_trt, tmp_path):
    trt = fake_trt()
    lib = tmp_path / "libsllen_attention_plugin.so"
    lib.write_bytes(b"\x7fELF")
    meta = build(tmp_path, write_onnx(tmp_path / "plugin.onnx", plugin=True), plugin_library=lib)
    order = names(trt)
    assert order.index("dlopen") < order.index("OnnxParser") < order.index("parse_from_file")
    assert ("dlopen", str(lib.resolve())) in trt.calls
    assert meta["attention"] == {"mode": "plugin", "fused": None}
    assert meta["plugin_library"] == "libsllen_attention_plugin.so"
    assert "deserialize_cuda_engine" not in order  # nothing to learn about TensorRT's fusion


def test_plugin_library_is_loaded_once_per_process(fake_trt, tmp_path):
    trt = fake_trt()
    lib = tmp_path / "libsllen_attention_plugin.so"
    lib.write_bytes(b"\x7fELF")
    onnx_path = write_onnx(tmp_path / "plugin.onnx", plugin=True)
    build(tmp_path, onnx_path, plugin_library=lib)
    build(tmp_path, onnx_path, plugin_library=lib)
    assert names(trt).count("dlopen") == 1


def test_sllen_nodes_need_the_plugin_library(fake_trt, tmp_path):
    trt = fake_trt()
    with pytest.raises(ValueError, match="1 node\\(s\\) in domain 'sllen'") as err:
        build(tmp_path, write_onnx(tmp_path / "plugin.onnx", plugin=True))
    assert "/rsaeb/attn/SllenAttention (SllenAttention)" in str(err.value)
    assert trt.calls == []  # refused before TensorRT was touched
    with pytest.raises(FileNotFoundError, match="build runtime/csrc"):
        build(
            tmp_path,
            write_onnx(tmp_path / "plugin.onnx", plugin=True),
            plugin_library=tmp_path / "missing.so",
        )


def test_plugin_library_that_fails_to_load(fake_trt, tmp_path, monkeypatch):
    fake_trt()
    lib = tmp_path / "libbroken.so"
    lib.write_bytes(b"not a library")

    def fail(path):
        raise OSError("invalid ELF header")

    monkeypatch.setattr(env, "_dlopen", fail)
    with pytest.raises(RuntimeError, match="cannot load plugin library .*invalid ELF header"):
        build(tmp_path, write_onnx(tmp_path / "plugin.onnx", plugin=True), plugin_library=lib)


def test_plugin_serialized_into_version_compatible_engines(fake_trt, tmp_path):
    trt = fake_trt()
    lib = tmp_path / "libsllen_attention_plugin.so"
    lib.write_bytes(b"\x7fELF")
    onnx_path = write_onnx(tmp_path / "plugin.onnx", plugin=True)
    meta = build(tmp_path, onnx_path, plugin_library=lib, version_compatible=True)
    assert setters(trt, "IBuilderConfig")["plugins_to_serialize"] == [str(lib.resolve())]
    # The runtime reads this to load no host library for the engine (runtime tests).
    assert meta["plugins_serialized"] == [lib.name]


def test_version_compatible_engines_carry_the_dynamic_plugin_library(fake_trt, tmp_path):
    # The library inside a version-compatible engine is loaded by TensorRT through its entry
    # points (getCreators/setLoggerFinder): the dynamic twin beside the self-registering one.
    trt = fake_trt()
    lib = tmp_path / "libsllen_attention_plugin.so"
    lib.write_bytes(b"\x7fELF")
    dynamic = tmp_path / "libsllen_attention_plugin_dynamic.so"
    dynamic.write_bytes(b"\x7fELF dynamic")
    onnx_path = write_onnx(tmp_path / "plugin.onnx", plugin=True)
    build(tmp_path, onnx_path, plugin_library=lib, version_compatible=True)
    assert setters(trt, "IBuilderConfig")["plugins_to_serialize"] == [str(dynamic.resolve())]
    assert ("dlopen", str(lib.resolve())) in trt.calls  # the build itself uses the static one


def test_plugin_library_without_sllen_nodes_is_not_loaded(fake_trt, tmp_path):
    trt = fake_trt()
    lib = tmp_path / "libsllen_attention_plugin.so"
    lib.write_bytes(b"\x7fELF")
    with pytest.warns(UserWarning, match="no 'sllen' nodes"):
        meta = build(tmp_path, plugin_library=lib)
    assert "dlopen" not in names(trt) and meta["plugin_library"] is None


# --------------------------------------------------------------------------- failures


def test_parser_errors_are_reported_with_node_names(fake_trt, tmp_path):
    fake_trt(
        parse_ok=False,
        parser_errors=[
            (
                3,
                "/rsaeb/attn/SllenAttention",
                "SllenAttention",
                "UNSUPPORTED_NODE",
                "No importer registered for op: SllenAttention",
            ),
            (-1, "", "", "INVALID_GRAPH", "Graph output 'enhanced' has no producer"),
            (7, "", "", "INVALID_NODE", "Invalid Node - conv"),
        ],
    )
    with pytest.raises(OnnxParseError) as err:
        build(tmp_path)
    message = str(err.value)
    assert "\n" not in message
    assert "could not parse" in message and "(3 error(s))" in message
    assert err.value.errors == [
        "node 3 '/rsaeb/attn/SllenAttention' (SllenAttention): UNSUPPORTED_NODE: "
        "No importer registered for op: SllenAttention",
        "model: INVALID_GRAPH: Graph output 'enhanced' has no producer",
        "node 7: INVALID_NODE: Invalid Node - conv",
    ]
    assert not (tmp_path / "model.engine").exists()


def test_parse_failure_without_reported_errors(fake_trt, tmp_path):
    fake_trt(parse_ok=False)
    with pytest.raises(OnnxParseError, match="no error reported"):
        build(tmp_path)


def test_build_returning_none_is_a_clear_error(fake_trt, tmp_path):
    trt = fake_trt(build_result=None)
    cache = tmp_path / "t.cache"
    with pytest.raises(EngineBuildError) as err:
        build(tmp_path, timing_cache=cache)
    message = str(err.value)
    assert "\n" not in message
    assert "could not build an engine" in message and "verbose=True" in message
    assert "min 256x256, opt 1280x720, max 1920x1088" in message
    assert not (tmp_path / "model.engine").exists()
    assert not metadata_path(tmp_path / "model.engine").exists()
    assert not cache.exists()
    assert "ITimingCache.serialize" not in names(trt)


def test_cpu_int8_flavour_is_refused(fake_trt, tmp_path):
    trt = fake_trt()
    onnx_path = write_onnx(
        tmp_path / "int8_cpu.onnx",
        qdq=True,
        props={"sllen_precision": "int8", "sllen_int8_flavour": "cpu"},
    )
    with pytest.raises(ValueError, match="CPU INT8 model") as err:
        build(tmp_path, onnx_path)
    assert "\n" not in str(err.value) and "TensorRT rejects" in str(err.value)
    assert trt.calls == []
    assert not (tmp_path / "model.engine").exists()


def test_reference_attention_function_is_refused(fake_trt, tmp_path):
    trt = fake_trt()
    path = write_onnx(tmp_path / "plugin_ref.onnx", plugin=True)
    model = onnx.load(str(path))
    model.functions.append(
        helper.make_function(
            "sllen",
            "SllenAttention",
            ["x"],
            ["y"],
            [helper.make_node("Identity", ["x"], ["y"])],
            [helper.make_opsetid("", 19)],
        )
    )
    onnx.save(model, str(path))
    lib = tmp_path / "libsllen_attention_plugin.so"
    lib.write_bytes(b"\x7fELF")
    with pytest.raises(ValueError, match="CPU reference function.*sllen::SllenAttention") as err:
        build(tmp_path, path, plugin_library=lib)
    assert "\n" not in str(err.value)
    assert trt.calls == []


def test_missing_onnx_file(fake_trt, tmp_path):
    fake_trt()
    with pytest.raises(FileNotFoundError, match="does not exist"):
        build(tmp_path, tmp_path / "nope.onnx")


def test_format_parser_error_for_a_graph_level_error():
    error = ParserError(-1, "", "", "MODEL_DESERIALIZE_FAILED", "Failed to parse the model")
    assert (
        format_parser_error(error) == "model: MODEL_DESERIALIZE_FAILED: Failed to parse the model"
    )


# --------------------------------------------------------------------------- outputs


def test_engine_and_metadata_are_written(fake_trt, tmp_path):
    trt = fake_trt("10.3.0")
    onnx_path = write_onnx(tmp_path / "fp16.onnx", fp16=True, attention=True)
    meta = build(tmp_path, onnx_path)
    engine = tmp_path / "model.engine"
    assert engine.read_bytes() == b"SERIALIZED-ENGINE"
    assert read_metadata(engine) == meta
    assert meta["tensorrt_version"] == "10.3.0"
    assert (meta["gpu_name"], meta["compute_capability"]) == GPU
    assert meta["precision"] == "fp16" and meta["int8_flavour"] is None
    assert meta["onnx_sha256"] == onnx_sha256(onnx_path)
    assert meta["onnx_file"] == str(onnx_path.resolve())
    assert meta["engine_file"] == "model.engine"
    assert meta["profile"] == DEFAULT_PROFILE.to_dict()
    assert meta["attention"] == {"mode": "decomposed", "fused": True}  # from the inspector
    assert meta["dla_core"] is None and meta["version_compatible"] is False
    assert meta["platform"] == env_platform()
    assert meta["sllen_version"] and meta["build_time"].endswith("+00:00")
    # The inspector read the engine just built, in JSON.
    assert ("deserialize_cuda_engine", b"SERIALIZED-ENGINE") in trt.calls
    assert ("get_engine_information", "JSON") in trt.calls
    check_compatible(meta, "10.3.0", *GPU)  # the engine passes its own check


def test_unfused_and_unknown_attention_recorded(fake_trt, tmp_path):
    unfused = (DATA / "layers_trt10_detailed_unfused.json").read_text()
    fake_trt(engine_information=unfused)
    assert build(tmp_path)["attention"]["fused"] is False
    names_only = (DATA / "layers_names_only.json").read_text()
    fake_trt(engine_information=names_only)
    assert build(tmp_path)["attention"]["fused"] is None


# --------------------------------------------------------------------------- real TensorRT


def _real_tensorrt_with_gpu() -> bool:
    if not env.tensorrt_available()[0]:
        return False
    try:
        env.detect_gpu()
    except Exception:
        return False
    return True


@pytest.mark.skipif(
    not _real_tensorrt_with_gpu(),
    reason=(
        "TensorRT is not installed (it cannot be installed on this machine); runs on a GPU "
        "machine with TensorRT 10.x/11.x"
    ),
)
class TestRealTensorRT:
    """Builds real engines: run on a GPU machine with TensorRT 10.x or 11.x installed."""

    @staticmethod
    def conv_model(path: Path) -> Path:
        x = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, "H", "W"])
        y = helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 8, "H", "W"])
        weight = helper.make_tensor("w", TensorProto.FLOAT, [8, 3, 3, 3], [0.01] * 216)
        nodes = [
            helper.make_node("Conv", ["input", "w"], ["c"], name="/hseb/conv/Conv", pads=[1] * 4),
            helper.make_node("Relu", ["c"], ["output"], name="/hseb/act/Relu"),
        ]
        graph = helper.make_graph(nodes, "conv", [x], [y], initializer=[weight])
        onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)]), path)
        return path

    def test_build_inspect_and_check(self, tmp_path):
        import tensorrt as trt

        profile = ShapeProfile("16x16", "32x32", "64x64")
        onnx_path = self.conv_model(tmp_path / "conv.onnx")
        cache = tmp_path / "timing.cache"
        meta = build_engine(onnx_path, tmp_path / "conv.engine", profile, timing_cache=cache)
        assert (tmp_path / "conv.engine").stat().st_size > 0 and cache.stat().st_size > 0
        assert read_metadata(tmp_path / "conv.engine") == meta
        assert meta["tensorrt_version"] == trt.__version__ and meta["precision"] == "fp32"
        name, cc = env.detect_gpu()
        check_compatible(meta, trt.__version__, name, cc)
        layers = inspect_layers(tmp_path / "conv.engine")
        assert layers and all(isinstance(layer.get("Name"), str) for layer in layers)
        assert meta["attention"] == {"mode": "decomposed", "fused": None}  # no softmax at all
        # a rebuild with the cache reuses it
        build_engine(onnx_path, tmp_path / "conv2.engine", profile, timing_cache=cache)

    def test_attention_listing_is_decidable(self, tmp_path):
        onnx_path = write_onnx(tmp_path / "attn.onnx", fp16=True, attention=True)
        profile = ShapeProfile("64x16", "64x32", "64x64")  # WIDTHxHEIGHT
        meta = build_engine(onnx_path, tmp_path / "attn.engine", profile)
        layers = inspect_layers(tmp_path / "attn.engine")
        # DETAILED listings name either the fused kernel or a separate softmax
        assert attention_fusion(layers) in ("fused", "unfused")
        assert meta["attention"]["fused"] in (True, False)
        print(json.dumps(layers, indent=1)[:4000])
