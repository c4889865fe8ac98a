"""The TensorRT engine builder, checked against a MOCK of the `tensorrt` module.

TensorRT cannot be installed on the development machines (its PyPI wheels are placeholders that
download the libraries from NVIDIA's index, which is out of reach), so most tests here install a
small FAKE `tensorrt` module in sys.modules. It is a mock, not TensorRT: it only records the calls
build_engine makes, and accepts only the names of the documented Python API (pyCore.cpp and
pyOnnx.cpp of NVIDIA/TensorRT, the 10.x and 11.x "Builder"/"IBuilderConfig" pages, the 10.x ->
11.x migration guide), so a misspelt enum or method fails here. Whether TensorRT builds a good
engine is checked by TestRealTensorRT, which runs only where TensorRT and a CUDA GPU are present.

ONNX fixtures are written with onnx.helper (tiny graphs, no torch).
"""

from __future__ import annotations

import enum
import json
import re
import sys
import types
from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper

from sllen.export import tensorrt_build as tb
from sllen.export.engine_meta import check_compatible, metadata_path, onnx_sha256, read_metadata
from sllen.export.shapes import DEFAULT_PROFILE, ShapeProfile

DATA = Path(__file__).parent / "data"
GPU = ("NVIDIA Jetson AGX Orin", "8.7")


# --------------------------------------------------------------------------- ONNX fixtures


def write_onnx(
    path: Path,
    *,
    plugin: bool = False,
    fp16: bool = False,
    qdq: bool = False,
    attention: bool = False,
    props: dict[str, str] | None = None,
) -> Path:
    """A tiny NCHW graph with input "input" (N, 3, H, W) and output "output"."""
    elem = TensorProto.FLOAT16 if fp16 else TensorProto.FLOAT
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, "H", "W"])
    nodes, inits, last = [], [], "input"
    if fp16:
        nodes.append(helper.make_node("Cast", [last], ["x16"], name="/cast/Cast", to=elem))
        last = "x16"
    if qdq:
        inits += [
            helper.make_tensor("s", TensorProto.FLOAT, [], [0.02]),
            helper.make_tensor("z", TensorProto.INT8, [], [0]),
        ]
        nodes += [
            helper.make_node("QuantizeLinear", [last, "s", "z"], ["q"], name="/q/QuantizeLinear"),
            helper.make_node("DequantizeLinear", ["q", "s", "z"], ["dq"], name="/q/Dequant"),
        ]
        last = "dq"
    nodes.append(helper.make_node("Relu", [last], ["r"], name="/hseb/act/Relu"))
    last = "r"
    if attention:  # MatMul-Softmax-MatMul over the W axis
        nodes += [
            helper.make_node("Transpose", [last], ["kt"], name="/rsaeb/attn/T", perm=[0, 1, 3, 2]),
            helper.make_node("MatMul", [last, "kt"], ["s_"], name="/rsaeb/attn/MatMul"),
            helper.make_node("Softmax", ["s_"], ["p"], name="/rsaeb/attn/Softmax", axis=-1),
            helper.make_node("MatMul", ["p", last], ["a"], name="/rsaeb/attn/MatMul_1"),
        ]
        last = "a"
    if plugin:
        nodes.append(
            helper.make_node(
                "SllenAttention",
                [last],
                ["a2"],
                name="/rsaeb/attn/SllenAttention",
                domain="sllen",
                plugin_version="1",
                heads=4,
            )
        )
        last = "a2"
    nodes.append(helper.make_node("Identity", [last], ["output"], name="/out/Identity"))
    y = helper.make_tensor_value_info("output", elem, ["N", 3, "H", "W"])
    graph = helper.make_graph(nodes, "sllen_tiny", [x], [y], initializer=inits)
    opsets = [helper.make_opsetid("", 19)]
    if plugin:
        opsets.append(helper.make_opsetid("sllen", 1))
    model = helper.make_model(graph, opset_imports=opsets)
    if props:
        helper.set_model_props(model, props)
    onnx.save(model, str(path))
    return path


# --------------------------------------------------------------------------- the mock


class FakeParserError:
    """nvonnxparser::IParserError as bound by pyOnnx.cpp (ParserError)."""

    def __init__(self, node, name, op, code, desc):
        self._v = (node, name, op, code, desc)

    def node(self):
        return self._v[0]

    def node_name(self):
        return self._v[1]

    def node_operator(self):
        return self._v[2]

    def code(self):
        return self._v[3]

    def desc(self):
        return self._v[4]

    def func(self):
        return "parseNode"

    def file(self):
        return "ModelImporter.cpp"

    def line(self):
        return 1


class Strict:
    """Objects that accept only the attribute names TensorRT documents for them."""

    SETTABLE: frozenset[str] = frozenset()

    def __init__(self, calls):
        object.__setattr__(self, "_calls", calls)
        object.__setattr__(self, "_values", {})

    def __setattr__(self, name, value):
        if name not in self.SETTABLE:
            raise AttributeError(f"{type(self).__name__} has no settable attribute {name!r}")
        self._calls.append(("set", type(self).__name__, name, value))
        self._values[name] = value

    def __getattr__(self, name):
        values = object.__getattribute__(self, "_values")
        if name in values:
            return values[name]
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")


def make_fake_trt(
    version: str = "10.3.0",
    *,
    parse_ok: bool = True,
    parser_errors: tuple = (),
    build_result: bytes | None = b"SERIALIZED-ENGINE",
    num_dla_cores: int = 0,
    engine_information: str | None = None,
    same_cc_level: bool = True,
) -> types.ModuleType:
    calls: list[tuple] = []
    major = int(version.split(".")[0]) if version[0].isdigit() else 10
    trt = types.ModuleType("tensorrt")
    trt.__version__ = version
    trt.calls = calls
    if engine_information is None:
        engine_information = (DATA / "layers_trt10_detailed_fused.json").read_text()

    class Logger:
        VERBOSE, INFO, WARNING, ERROR = "VERBOSE", "INFO", "WARNING", "ERROR"

        def __init__(self, severity="WARNING"):
            calls.append(("Logger", severity))

    # 10.x order of the C++ enum: kEXPLICIT_BATCH = 0, kSTRONGLY_TYPED = 1. In 11.x the member
    # still exists (deprecated, ignored) so code that passes it keeps running.
    trt.NetworkDefinitionCreationFlag = enum.IntEnum(
        "NetworkDefinitionCreationFlag", {"EXPLICIT_BATCH": 0, "STRONGLY_TYPED": 1}
    )
    flags = ["DEBUG", "GPU_FALLBACK", "REFIT", "TF32", "VERSION_COMPATIBLE", "EXCLUDE_LEAN_RUNTIME"]
    if major < 11:  # removed in 11.x (migration guide, "Removed Python APIs")
        flags += ["FP16", "BF16", "INT8", "FP8", "OBEY_PRECISION_CONSTRAINTS"]
    trt.BuilderFlag = enum.Enum("BuilderFlag", flags)
    trt.MemoryPoolType = enum.Enum("MemoryPoolType", ["WORKSPACE", "DLA_MANAGED_SRAM"])
    trt.DeviceType = enum.Enum("DeviceType", ["GPU", "DLA"])
    trt.ProfilingVerbosity = enum.Enum(
        "ProfilingVerbosity", ["LAYER_NAMES_ONLY", "DETAILED", "NONE"]
    )
    trt.LayerInformationFormat = enum.Enum("LayerInformationFormat", ["ONELINE", "JSON"])
    levels = ["NONE", "AMPERE_PLUS"] + (["SAME_COMPUTE_CAPABILITY"] if same_cc_level else [])
    trt.HardwareCompatibilityLevel = enum.Enum("HardwareCompatibilityLevel", levels)

    class TimingCache:
        def __init__(self, blob):
            self.blob = bytes(blob)

        def serialize(self):
            calls.append(("ITimingCache.serialize",))
            return self.blob + b"|tuned"

    class OptimizationProfile:
        def set_shape(self, input, min, opt, max):  # TensorRT's parameter names
            calls.append(("set_shape", input, tuple(min), tuple(opt), tuple(max)))

    class IBuilderConfig(Strict):
        SETTABLE = frozenset(
            {
                "profiling_verbosity",
                "default_device_type",
                "DLA_core",
                "plugins_to_serialize",
                "hardware_compatibility_level",
            }
        )

        def set_memory_pool_limit(self, pool, pool_size):
            calls.append(("set_memory_pool_limit", pool, pool_size))

        def set_flag(self, flag):
            assert isinstance(flag, trt.BuilderFlag)
            calls.append(("set_flag", flag.name))

        def add_optimization_profile(self, profile):
            assert isinstance(profile, OptimizationProfile)
            calls.append(("add_optimization_profile",))
            return 0

        def create_timing_cache(self, serialized_timing_cache):
            calls.append(("create_timing_cache", bytes(serialized_timing_cache)))
            return TimingCache(serialized_timing_cache)

        def set_timing_cache(self, cache, ignore_mismatch):
            calls.append(("set_timing_cache", cache.blob, ignore_mismatch))
            self._values["_cache"] = cache
            return True

        def get_timing_cache(self):
            return self._values["_cache"]

    class Network:
        pass

    class Builder:
        def __init__(self, logger):
            assert isinstance(logger, Logger)
            calls.append(("Builder",))
            self.num_DLA_cores = num_dla_cores

        def create_network(self, flags=0):
            calls.append(("create_network", flags))
            return Network()

        def create_builder_config(self):
            calls.append(("create_builder_config",))
            return IBuilderConfig(calls)

        def create_optimization_profile(self):
            calls.append(("create_optimization_profile",))
            return OptimizationProfile()

        def build_serialized_network(self, network, config):
            assert isinstance(network, Network) and isinstance(config, IBuilderConfig)
            calls.append(("build_serialized_network",))
            return build_result

    class OnnxParser:
        def __init__(self, network, logger):
            assert isinstance(network, Network) and isinstance(logger, Logger)
            calls.append(("OnnxParser",))
            self._errors = [] if parse_ok else [FakeParserError(*e) for e in parser_errors]

        def parse_from_file(self, model):
            assert isinstance(model, str)
            calls.append(("parse_from_file", model))
            return parse_ok

        @property
        def num_errors(self):
            return len(self._errors)

        def get_error(self, index):
            return self._errors[index]

    class EngineInspector:
        def get_engine_information(self, format):  # TensorRT's parameter name
            assert format is trt.LayerInformationFormat.JSON
            calls.append(("get_engine_information", format.name))
            return engine_information

    class ICudaEngine:
        def create_engine_inspector(self):
            calls.append(("create_engine_inspector",))
            return EngineInspector()

    class Runtime(Strict):
        SETTABLE = frozenset({"DLA_core", "engine_host_code_allowed"})

        def __init__(self, logger):
            super().__init__(calls)
            calls.append(("Runtime",))

        def deserialize_cuda_engine(self, serialized_engine):
            calls.append(("deserialize_cuda_engine", bytes(serialized_engine)))
            return ICudaEngine()

    trt.Logger, trt.Builder, trt.OnnxParser, trt.Runtime = Logger, Builder, OnnxParser, Runtime
    return trt


@pytest.fixture
def fake_trt(monkeypatch):
    """Install a fake tensorrt 10.3 (JetPack 6) and a fake dlopen; return a factory for others."""
    installed = {}
    monkeypatch.setattr(tb._trt_backend, "_loaded_plugins", {})

    def install(version="10.3.0", **options):
        trt = make_fake_trt(version, **options)
        monkeypatch.setitem(sys.modules, "tensorrt", trt)
        monkeypatch.setattr(
            tb._trt_backend, "_dlopen", lambda path: trt.calls.append(("dlopen", str(path)))
        )
        installed["trt"] = trt
        return trt

    return install


def names(trt):
    return [c[0] for c in trt.calls]


def setters(trt, owner):
    return {c[2]: c[3] for c in trt.calls if c[0] == "set" and c[1] == owner}


def build(tmp_path, onnx_path=None, profile=DEFAULT_PROFILE, **kwargs):
    onnx_path = onnx_path or write_onnx(tmp_path / "fp32.onnx")
    kwargs.setdefault("gpu", GPU)
    return tb.build_engine(onnx_path, tmp_path / "model.engine", profile, **kwargs)


# --------------------------------------------------------------------------- availability


def test_tensorrt_available_reports_why_not(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # import tensorrt -> ImportError
    ok, reason = tb.tensorrt_available()
    assert not ok and "TensorRT is not installed" in reason and "system-site-packages" in reason
    with pytest.raises(RuntimeError, match="not installed"):
        tb.inspect_layers(b"engine")


def test_tensorrt_8_is_too_old(fake_trt):
    fake_trt("8.6.1")
    ok, reason = tb.tensorrt_available()
    assert not ok and "8.6.1 is too old" in reason


def test_tensorrt_10_and_11_are_accepted(fake_trt):
    for version in ("10.3.0", "11.4.1"):
        fake_trt(version)
        assert tb.tensorrt_available() == (True, f"TensorRT {version}")


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
    profile = ShapeProfile("368x640", "368x640", "736x1280", batch=(1, 2, 4))
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


def test_no_timing_cache_calls_without_a_cache_file(fake_trt, tmp_path):
    trt = fake_trt()
    build(tmp_path)
    assert "create_timing_cache" not in names(trt) and "set_timing_cache" not in names(trt)


def test_dla_settings(fake_trt, tmp_path):
    trt = fake_trt("10.3.0", num_dla_cores=2)
    meta = build(tmp_path, write_onnx(tmp_path / "fp16.onnx", fp16=True), dla_core=1)
    config = setters(trt, "IBuilderConfig")
    assert config["default_device_type"] is trt.DeviceType.DLA
    assert config["DLA_core"] == 1
    assert [c for c in trt.calls if c[0] == "set_flag"] == [("set_flag", "GPU_FALLBACK")]
    assert setters(trt, "Runtime")["DLA_core"] == 1  # the inspection deserializes for core 1
    assert meta["dla_core"] == 1 and meta["precision"] == "fp16"


def test_dla_core_that_does_not_exist_is_refused(fake_trt, tmp_path):
    fake_trt("11.4.1", num_dla_cores=0)
    with pytest.raises(ValueError, match="DLA core 0 requested but this machine has 0 DLA"):
        build(tmp_path, dla_core=0)
    with pytest.raises(ValueError, match="DLA core index"):
        build(tmp_path, dla_core=-1)


def test_version_compatible_flag_and_host_code(fake_trt, tmp_path):
    trt = fake_trt()
    meta = build(tmp_path, version_compatible=True)
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

    monkeypatch.setattr(tb._trt_backend, "_dlopen", fail)
    with pytest.raises(RuntimeError, match="cannot load plugin library .*invalid ELF header"):
        build(tmp_path, write_onnx(tmp_path / "plugin.onnx", plugin=True), plugin_library=lib)


def test_plugin_serialized_into_version_compatible_engines(fake_trt, tmp_path):
    trt = fake_trt()
    lib = tmp_path / "libsllen_attention_plugin.so"
    lib.write_bytes(b"\x7fELF")
    onnx_path = write_onnx(tmp_path / "plugin.onnx", plugin=True)
    build(tmp_path, onnx_path, plugin_library=lib, version_compatible=True)
    assert setters(trt, "IBuilderConfig")["plugins_to_serialize"] == [str(lib.resolve())]


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
    with pytest.raises(tb.OnnxParseError) as err:
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
    with pytest.raises(tb.OnnxParseError, match="no error reported"):
        build(tmp_path)


def test_build_returning_none_is_a_clear_error(fake_trt, tmp_path):
    trt = fake_trt(build_result=None)
    cache = tmp_path / "t.cache"
    with pytest.raises(tb.EngineBuildError) as err:
        build(tmp_path, timing_cache=cache)
    message = str(err.value)
    assert "\n" not in message
    assert "could not build an engine" in message and "verbose=True" in message
    assert "min 256x256, opt 720x1280, max 1088x1920" in message
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


def test_inspect_layers_from_a_file(fake_trt, tmp_path):
    trt = fake_trt()
    engine = tmp_path / "model.engine"
    engine.write_bytes(b"ENGINE-BYTES")
    layers = tb.inspect_layers(engine)
    assert ("deserialize_cuda_engine", b"ENGINE-BYTES") in trt.calls
    assert [layer["Name"] for layer in layers][3] == "_gemm_mha_v2_myl0_172"


@pytest.mark.parametrize(
    "kwargs,precision,flavour",
    [
        ({}, "fp32", None),
        ({"fp16": True}, "fp16", None),
        ({"qdq": True}, "int8", None),
        ({"qdq": True, "props": {"sllen_int8_flavour": "TensorRT"}}, "int8", "tensorrt"),
        ({"props": {"sllen_precision": "FP16"}}, "fp16", None),
        ({"props": {"sllen_precision": "bogus"}}, "fp32", None),
    ],
)
def test_inspect_onnx_precision(tmp_path, kwargs, precision, flavour):
    info = tb.inspect_onnx(write_onnx(tmp_path / "m.onnx", **kwargs))
    assert (info.precision, info.int8_flavour, info.attention_mode) == (
        precision,
        flavour,
        "decomposed",
    )


def test_inspect_onnx_finds_plugin_nodes_in_subgraphs(tmp_path):
    inner = helper.make_graph(
        [helper.make_node("SllenAttention", ["x"], ["y"], name="inner_attn", domain="sllen")],
        "then",
        [],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    cond = helper.make_tensor_value_info("c", TensorProto.BOOL, [])
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    out = helper.make_tensor_value_info("out", TensorProto.FLOAT, [1])
    node = helper.make_node("If", ["c"], ["out"], then_branch=inner, else_branch=inner)
    model = helper.make_model(
        helper.make_graph([node], "g", [cond, x], [out]),
        opset_imports=[helper.make_opsetid("", 19), helper.make_opsetid("sllen", 1)],
    )
    path = tmp_path / "if.onnx"
    onnx.save(model, str(path))
    info = tb.inspect_onnx(path)
    assert info.plugin_nodes == ("inner_attn (SllenAttention)", "inner_attn (SllenAttention)")
    assert info.attention_mode == "plugin"


def test_cast_to_fp16_marks_fp16(tmp_path):
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 16, 16])
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3, 16, 16])
    nodes = [
        helper.make_node("Cast", ["input"], ["h"], to=TensorProto.FLOAT16),
        helper.make_node("Cast", ["h"], ["output"], to=TensorProto.FLOAT),
    ]
    model = helper.make_model(
        helper.make_graph(nodes, "g", [x], [y]), opset_imports=[helper.make_opsetid("", 19)]
    )
    onnx.save(model, str(tmp_path / "c.onnx"))
    assert tb.inspect_onnx(tmp_path / "c.onnx").precision == "fp16"


# --------------------------------------------------------------------------- fusion decision


def listing(name):
    return tb.parse_layer_info((DATA / name).read_text())


def test_recorded_fused_listing():
    layers = listing("layers_trt10_detailed_fused.json")
    assert tb.attention_fusion(layers) == "fused"
    assert tb.attention_fused(layers)
    # the fused kernel's own Metadata names the Softmax it absorbed; it still counts as fused
    assert "Softmax" in layers[3]["Metadata"]


def test_recorded_unfused_listing():
    layers = listing("layers_trt10_detailed_unfused.json")
    assert tb.attention_fusion(layers) == "unfused"
    assert not tb.attention_fused(layers)
    # "/rsaeb/mha_proj/MatMul" has "mha" in its ONNX name: a name is not a fused kernel
    assert any("mha" in layer["Name"] for layer in layers)


def test_recorded_names_only_listing_is_unknown():
    layers = listing("layers_names_only.json")
    assert all(set(layer) == {"Name"} for layer in layers)
    # the opaque Myelin region mentions Softmax in its name span but says nothing of fusion
    assert tb.attention_fusion(layers) == "unknown"
    assert not tb.attention_fused(layers)


def test_scope_limits_softmax_evidence_to_the_attention_block():
    unfused = listing("layers_trt10_detailed_unfused.json")
    assert tb.attention_fusion(unfused, scope="/rsaeb/") == "unfused"
    attention_gone = [layer for layer in unfused if "/rsaeb/" not in layer.get("Metadata", "")]
    assert tb.attention_fusion(attention_gone) == "unfused"  # the segmentation Softmax
    assert tb.attention_fusion(attention_gone, scope="/rsaeb/") == "unknown"
    assert tb.attention_fused(listing("layers_trt10_detailed_fused.json"), scope="/rsaeb/")


@pytest.mark.parametrize(
    "layer",
    [
        {"Name": "_gemm_mha_v2_myl3_6", "LayerType": "kgen"},
        {"Name": "__mye8037_gemm_mha_v2", "LayerType": "kgen"},
        {"Name": "/attn/fused", "TacticName": "_gemm_mha_v2_0xbcebb264ff01c4c4"},
        {"Name": "_gemv_mha_v1_myl0_3", "LayerType": "kgen"},
        {"Name": "attn", "TacticName": "fmha_v2_flash_attention_fp16_64_32_S_qkv_64_sm89_kernel"},
    ],
)
def test_fused_kernel_names(layer):
    assert tb.attention_fusion([layer]) == "fused"


FOREIGN_NODE = "{ForeignNode[/attn/Softmax.../attn/MatMul_1]}"


@pytest.mark.parametrize(
    "layer,status",
    [
        ({"Name": "/rsaeb/mha/MatMul_myl0_1", "LayerType": "gemm"}, "unknown"),
        ({"Name": "x", "Metadata": "[ONNX Layer: /rsaeb/fmha_v2/MatMul]"}, "unknown"),
        ({"Name": "/attn/Softmax", "LayerType": "Softmax"}, "unfused"),
        (
            {"Name": "{ForeignNode[/attn/Softmax.../attn/MatMul_1]}", "LayerType": "Myelin"},
            "unknown",
        ),
        ({"Name": 12, "LayerType": None}, "unknown"),
    ],
)
def test_names_that_are_not_fused_kernels(layer, status):
    assert tb.attention_fusion([layer]) == status


def test_rules_are_data():
    rules = (tb.FusionRule(("LayerType",), re.compile("^attention$"), "test"),)
    assert tb.attention_fusion([{"Name": "a", "LayerType": "attention"}], rules=rules) == "fused"
    assert all(rule.source for rule in tb.FUSED_ATTENTION_RULES)


def test_parse_layer_info_errors():
    with pytest.raises(ValueError, match="no 'Layers'"):
        tb.parse_layer_info("{}")
    with pytest.raises(ValueError, match="no 'Layers'"):
        tb.parse_layer_info("[]")
    assert tb.parse_layer_info({"Layers": ["a", {"Name": "b"}]}) == [{"Name": "a"}, {"Name": "b"}]


def test_format_parser_error_for_a_graph_level_error():
    error = FakeParserError(-1, "", "", "MODEL_DESERIALIZE_FAILED", "Failed to parse the model")
    assert (
        tb.format_parser_error(error)
        == "model: MODEL_DESERIALIZE_FAILED: Failed to parse the model"
    )


def test_detect_gpu_without_cuda(monkeypatch):
    for name in ("torch", "cuda.bindings.runtime", "cuda.cudart"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(RuntimeError, match="cannot read the GPU name"):
        tb.detect_gpu()


def test_detect_gpu_through_cuda_python(monkeypatch):
    class Err(enum.Enum):
        cudaSuccess = 0

    props = types.SimpleNamespace(name=b"Orin\x00", major=8, minor=7)
    cudart = types.SimpleNamespace(
        cudaError_t=Err, cudaGetDeviceProperties=lambda device: (Err.cudaSuccess, props)
    )
    monkeypatch.setitem(sys.modules, "torch", None)
    monkeypatch.setitem(sys.modules, "cuda.bindings.runtime", None)
    monkeypatch.setitem(sys.modules, "cuda.cudart", cudart)
    assert tb.detect_gpu() == ("Orin", "8.7")


def test_tensorrt_that_fails_to_load_or_has_no_version(fake_trt, monkeypatch):
    fake_trt("dev")
    ok, reason = tb.tensorrt_available()
    assert not ok and "cannot read the TensorRT version 'dev'" in reason

    class BrokenLibrary:
        def find_spec(self, name, path=None, target=None):
            if name == "tensorrt":
                raise OSError("libnvinfer.so.10: cannot open shared object file")
            return None

    monkeypatch.delitem(sys.modules, "tensorrt")
    monkeypatch.setattr(sys, "meta_path", [BrokenLibrary(), *sys.meta_path])
    ok, reason = tb.tensorrt_available()
    assert not ok and "libraries do not load" in reason and "libnvinfer" in reason


def test_undeserializable_engine(fake_trt, tmp_path, monkeypatch):
    trt = fake_trt()
    monkeypatch.setattr(trt.Runtime, "deserialize_cuda_engine", lambda self, data: None)
    with pytest.raises(RuntimeError, match="could not deserialize the engine"):
        tb.inspect_layers(b"garbage")


def test_inspect_layers_loads_the_plugin_first(fake_trt, tmp_path):
    trt = fake_trt()
    lib = tmp_path / "libsllen_attention_plugin.so"
    lib.write_bytes(b"\x7fELF")
    tb.inspect_layers(b"ENGINE", plugin_library=lib)
    order = names(trt)
    assert order.index("dlopen") < order.index("deserialize_cuda_engine")


def test_real_dlopen_reports_a_bad_library(tmp_path):
    bad = tmp_path / "libnot_a_library.so"
    bad.write_bytes(b"not an ELF file")
    with pytest.raises(OSError):
        tb._trt_backend._dlopen(bad)


def test_fp16_initializers_mark_fp16(tmp_path):
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 16, 16])
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3, 16, 16])
    w = helper.make_tensor("w", TensorProto.FLOAT16, [1], [1.0])
    nodes = [helper.make_node("Identity", ["input"], ["output"])]
    graph = helper.make_graph(nodes, "g", [x], [y], initializer=[w])
    onnx.save(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)]), tmp_path / "w.onnx"
    )
    assert tb.inspect_onnx(tmp_path / "w.onnx").precision == "fp16"


def test_detect_gpu_through_torch(monkeypatch):
    props = types.SimpleNamespace(name="NVIDIA H100 80GB HBM3", major=9, minor=0)
    cuda = types.SimpleNamespace(is_available=lambda: True, get_device_properties=lambda d: props)
    monkeypatch.setitem(sys.modules, "torch", types.SimpleNamespace(cuda=cuda))
    assert tb.detect_gpu() == ("NVIDIA H100 80GB HBM3", "9.0")


def test_detect_gpu_cuda_python_error(monkeypatch):
    class Err(enum.Enum):
        cudaSuccess = 0
        cudaErrorNoDevice = 100

    cudart = types.SimpleNamespace(
        cudaError_t=Err, cudaGetDeviceProperties=lambda device: (Err.cudaErrorNoDevice, None)
    )
    monkeypatch.setitem(sys.modules, "torch", None)
    monkeypatch.setitem(sys.modules, "cuda.bindings.runtime", cudart)
    with pytest.raises(RuntimeError, match="cudaGetDeviceProperties\\(0\\) failed"):
        tb.detect_gpu()


# --------------------------------------------------------------------------- real TensorRT


def _real_tensorrt_with_gpu() -> bool:
    if not tb.tensorrt_available()[0]:
        return False
    try:
        tb.detect_gpu()
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
        meta = tb.build_engine(onnx_path, tmp_path / "conv.engine", profile, timing_cache=cache)
        assert (tmp_path / "conv.engine").stat().st_size > 0 and cache.stat().st_size > 0
        assert read_metadata(tmp_path / "conv.engine") == meta
        assert meta["tensorrt_version"] == trt.__version__ and meta["precision"] == "fp32"
        name, cc = tb.detect_gpu()
        check_compatible(meta, trt.__version__, name, cc)
        layers = tb.inspect_layers(tmp_path / "conv.engine")
        assert layers and all(isinstance(layer.get("Name"), str) for layer in layers)
        assert meta["attention"] == {"mode": "decomposed", "fused": None}  # no softmax at all
        # a rebuild with the cache reuses it
        tb.build_engine(onnx_path, tmp_path / "conv2.engine", profile, timing_cache=cache)

    def test_attention_listing_is_decidable(self, tmp_path):
        onnx_path = write_onnx(tmp_path / "attn.onnx", fp16=True, attention=True)
        profile = ShapeProfile("16x64", "32x64", "64x64")
        meta = tb.build_engine(onnx_path, tmp_path / "attn.engine", profile)
        layers = tb.inspect_layers(tmp_path / "attn.engine")
        # DETAILED listings name either the fused kernel or a separate softmax
        assert tb.attention_fusion(layers) in ("fused", "unfused")
        assert meta["attention"]["fused"] in (True, False)
        print(json.dumps(layers, indent=1)[:4000])
