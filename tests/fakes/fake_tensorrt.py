"""The one fake `tensorrt` module of the tests: a MOCK, because TensorRT cannot be installed here.

TensorRT's PyPI wheels are placeholders that download the libraries from NVIDIA's index, which
the development machines cannot reach, and those machines have no GPU. So the engine builder
(sllen.export.trt) and the runtime's TensorRT backend (sllen.runtime.backends.tensorrt) are
tested against this fake, installed as sys.modules["tensorrt"] (tests/conftest.py: the
`fake_trt` fixture). It is a mock, not TensorRT: it records every call in `trt.calls` and
offers only names of the documented Python API of TensorRT 10.x and 11.x (python/src/infer/
pyCore.cpp and python/src/parsers/pyOnnx.cpp of NVIDIA/TensorRT; the "Builder",
"IBuilderConfig", "Runtime", "ICudaEngine", "IExecutionContext" pages; the 10.x -> 11.x
migration guide), so a misspelt enum, method or settable attribute fails here. Whether TensorRT
really builds and runs the engines is checked by the TestRealTensorRT classes, which run only
where `tensorrt` imports and a CUDA GPU is present.

What the mock offers, and nothing more:

- Logger(min_severity) with VERBOSE, INFO, WARNING, ERROR, INTERNAL_ERROR;
- enums NetworkDefinitionCreationFlag (STRONGLY_TYPED: deprecated and ignored in 11.x, still
  there), BuilderFlag (FP16/INT8/... only before 11.x), MemoryPoolType, DeviceType,
  ProfilingVerbosity, LayerInformationFormat, HardwareCompatibilityLevel, TensorIOMode,
  DataType;
- Builder(logger): create_network(flags), create_builder_config(),
  create_optimization_profile() (set_shape(input, min, opt, max)), build_serialized_network,
  num_DLA_cores;
- IBuilderConfig: set_memory_pool_limit, set_flag, add_optimization_profile,
  create_timing_cache (None for a blob TensorRT cannot read: timing_cache_corrupt) /
  set_timing_cache (returns False for a cache from another GPU or TensorRT:
  timing_cache_mismatch, "true if set successfully, false otherwise", NvInfer.h) /
  get_timing_cache (ITimingCache.serialize); settable profiling_verbosity, default_device_type,
  DLA_core, plugins_to_serialize, hardware_compatibility_level;
- OnnxParser(network, logger): parse_from_file, num_errors, get_error -> ParserError (code,
  desc, node, node_name, node_operator, func, file, line);
- Runtime(logger): deserialize_cuda_engine; settable DLA_core, engine_host_code_allowed;
- ICudaEngine: num_io_tensors, get_tensor_name / _mode / _dtype / _shape /
  get_tensor_profile_shape, create_execution_context, device_memory_size (before 11.x) /
  device_memory_size_v2 (10.1 on), create_engine_inspector ->
  get_engine_information(LayerInformationFormat.JSON);
- IExecutionContext: set_input_shape, get_tensor_shape, set_tensor_address, execute_async_v3;
  settable profiler (an IProfiler subclass: execute_async_v3 reports LAYER_TIMES to its
  report_layer_time(layer_name, ms), as TensorRT does per enqueue);
- IProfiler (subclassed from Python, base __init__ called: the documented way);
- get_plugin_registry() -> IPluginRegistry: load_library(plugin_path) (a handle, or None when
  the library's creators are registered already: load_library_ok), get_creator(type, version,
  plugin_namespace) (the creators in `plugin_creators`, (name, version, namespace) triples),
  all_creators.

The fake engine has input "input" [N, 3, H, W] and output "output" (+ "segmentation" with
SEG_CLASSES channels). Given a FakeBuffers (the CUDA buffer layer without CUDA: addresses index
numpy arrays), execute_async_v3 computes output = 1 - input on that "device memory", so the
runtime's H2D -> enqueue -> D2H path is checked end to end, CUDA-graph replays included.
"""

from __future__ import annotations

import enum
import re
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from sllen.runtime import cuda_buffers

GPU = ("NVIDIA Jetson AGX Orin", "8.7")
# What the fake Builder returns, and what a real runtime engine file holds in the runtime tests.
SERIALIZED_ENGINE = b"SERIALIZED-ENGINE"
ENGINE_BYTES = b"FAKE-ENGINE\x00serialized"
# (min, opt, max) NCHW of the fake engine's profile: batch 1..2, 32x32 .. 128x128.
PROFILE = ((1, 3, 32, 32), (1, 3, 64, 64), (2, 3, 128, 128))
SEG_CLASSES = 2
# What a profiled enqueue reports, layer by layer (name, ms).
LAYER_TIMES = (("conv_1 + relu", 2.0), ("attention", 5.0), ("conv_2", 1.0))
# Engine-inspector listings (JSON), recorded for the fusion tests.
LISTINGS = Path(__file__).resolve().parents[1] / "export" / "data"


def engine_metadata(**overrides: Any) -> dict[str, Any]:
    """The metadata file of the fake FP16 engine (profile as PROFILE), with ``overrides``."""
    from sllen.runtime.shapes import ShapeProfile

    profile = ShapeProfile((32, 32), (64, 64), (128, 128), batch=(1, 1, 2))
    meta: dict[str, Any] = {
        "schema": 1,
        "sllen_version": "0.1.0",
        "tensorrt_version": "10.3.0",
        "gpu_name": GPU[0],
        "compute_capability": GPU[1],
        "precision": "fp16",
        "int8_flavour": None,
        "attention": {"mode": "decomposed", "fused": True},
        "profile": profile.to_dict(),
        "onnx_sha256": "ab" * 32,
        "onnx_file": "/models/sllen.fp16.onnx",
        "engine_file": "sllen.fp16.engine",
        "build_time": "2026-11-27T10:00:00+00:00",
        "plugin_library": None,
        "version_compatible": False,
        "hardware_compatibility": "none",
        "dla_core": None,
    }
    meta.update(overrides)
    return meta


def names(trt: types.ModuleType) -> list[str]:
    """The names of the calls the fake recorded, in order."""
    return [c[0] for c in trt.calls]


def setters(trt: types.ModuleType, owner: str) -> dict[str, Any]:
    """{attribute: value} of what was assigned to objects of class `owner`."""
    return {c[2]: c[3] for c in trt.calls if c[0] == "set" and c[1] == owner}


# --------------------------------------------------------------------------- device memory


class FakeBuffers(cuda_buffers.CudaBuffers):
    """The buffer layer without CUDA: addresses index numpy arrays, graphs are op lists."""

    kind = "fake"

    def __init__(self, device: int = 0, gpu: tuple[str, str] = GPU) -> None:
        super().__init__(device)
        self.gpu = gpu
        self.memory: dict[int, np.ndarray] = {}
        self.next_ptr = 0x10000
        self.clock = 0
        self.capturing: list | None = None
        self.captures = self.launches = self.released = 0
        self.closed = False
        self.log: list[tuple] = []

    @property
    def stream_handle(self) -> int:
        return 0xBEEF

    def device_properties(self) -> tuple[str, str]:
        return self.gpu

    def alloc_device(self, nbytes: int) -> cuda_buffers.DeviceBuffer:
        ptr, self.next_ptr = self.next_ptr, self.next_ptr + max(nbytes, 1) + 256
        self.memory[ptr] = np.zeros(max(nbytes, 1), np.uint8)
        self.log.append(("alloc_device", nbytes))
        return cuda_buffers.DeviceBuffer(ptr, nbytes)

    def alloc_host(self, nbytes: int) -> cuda_buffers.HostBuffer:
        return cuda_buffers.HostBuffer(np.zeros(max(nbytes, 1), np.uint8))

    def h2d(self, dst, src, nbytes) -> None:
        self.clock += 1
        self.memory[dst.ptr][:nbytes] = src.array[:nbytes]

    def d2h(self, dst, src, nbytes) -> None:
        self.clock += 1
        dst.array[:nbytes] = self.memory[src.ptr][:nbytes]

    def event(self) -> dict:
        return {}

    def record(self, event: dict) -> None:
        self.clock += 1
        event["t"] = self.clock

    def elapsed(self, start: dict, end: dict) -> float:
        return (end["t"] - start["t"]) * 1e-3

    def synchronize(self) -> None:
        self.log.append(("synchronize",))

    def capture(self, enqueue) -> Any:
        self.captures += 1
        self.log.append(("capture",))
        self.capturing = []
        try:
            ok = enqueue()
        finally:
            ops, self.capturing = self.capturing, None
        return ops if ok else None

    def launch(self, graph) -> None:
        self.launches += 1
        for op in graph:
            op()

    def release_graph(self, graph) -> None:
        self.released += 1

    def close(self) -> None:
        self.closed = True

    def read(self, ptr: int, shape: tuple[int, ...]) -> np.ndarray:
        n = int(np.prod(shape)) * 4
        return self.memory[ptr][:n].view(np.float32).reshape(shape)


# --------------------------------------------------------------------------- the mock


class ParserError:
    """nvonnxparser::IParserError as bound by pyOnnx.cpp (tensorrt.ParserError)."""

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
    """Objects that accept only the settable attribute names TensorRT documents for them."""

    SETTABLE: frozenset[str] = frozenset()

    def __init__(self, calls: list) -> None:
        object.__setattr__(self, "_calls", calls)
        object.__setattr__(self, "_values", {})

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in self.SETTABLE:
            raise AttributeError(f"{type(self).__name__} has no settable attribute {name!r}")
        self._calls.append(("set", type(self).__name__, name, value))
        self._values[name] = value

    def __getattr__(self, name: str) -> Any:
        values = object.__getattribute__(self, "_values")
        if name in values:
            return values[name]
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")


def _major_minor(version: str) -> tuple[int, int]:
    match = re.match(r"(\d+)(?:\.(\d+))?", version)
    if match is None:  # "dev": an unreadable version behaves like a 10.x build
        return 10, 0
    return int(match.group(1)), int(match.group(2) or 0)


def make_fake_trt(
    version: str = "10.3.0",
    *,
    # builder side
    parse_ok: bool = True,
    parser_errors: tuple = (),
    build_result: bytes | None = SERIALIZED_ENGINE,
    num_dla_cores: int = 0,
    engine_information: str | None = None,
    same_cc_level: bool | None = None,
    # runtime side
    buffers: FakeBuffers | None = None,
    engine_bytes: bytes | None = None,
    segmentation: bool = False,
    dtype: str = "FLOAT",
    profile: tuple = PROFILE,
    refuse_shapes: bool = False,
    # timing cache
    timing_cache_corrupt: bool = False,
    timing_cache_mismatch: bool = False,
    # plugin registry
    plugin_creators: tuple = (),
    load_library_ok: bool = True,
) -> types.ModuleType:
    """A fresh fake `tensorrt` module of `version` (not installed: see the `fake_trt` fixture).

    Builder side: parse_ok / parser_errors (ParserError arguments) for OnnxParser;
    build_result for build_serialized_network (None: a failed build); num_dla_cores;
    engine_information: the inspector's JSON (default: a listing with TensorRT's fused
    attention kernel); same_cc_level: whether HardwareCompatibilityLevel has
    SAME_COMPUTE_CAPABILITY (None: as TensorRT, from 10.9 on; pyCore.cpp has it from v10.9.0).
    Runtime side: buffers: the FakeBuffers whose memory execute_async_v3 computes on;
    engine_bytes: the only blob deserialize_cuda_engine accepts (None: any), others give None
    like a truncated or foreign file; segmentation: a second output; dtype: the input's
    DataType member name; profile: (min, opt, max) of "input"; refuse_shapes: set_input_shape
    returns False.
    Timing cache: timing_cache_corrupt: create_timing_cache returns None for a non-empty blob;
    timing_cache_mismatch: set_timing_cache returns False for a non-empty cache unless
    ignore_mismatch. Plugin registry: plugin_creators: (name, version, namespace) triples that
    get_creator finds (a library given to load_library adds sllen's); load_library_ok: False
    makes load_library return None.
    """
    calls: list[tuple] = []
    major, minor = _major_minor(version)
    trt = types.ModuleType("tensorrt")
    trt.__version__ = version
    trt.calls = calls
    if engine_information is None:
        engine_information = (LISTINGS / "layers_trt10_detailed_fused.json").read_text()

    severity = enum.Enum("Severity", ["INTERNAL_ERROR", "ERROR", "WARNING", "INFO", "VERBOSE"])

    class Logger:
        Severity = severity
        INTERNAL_ERROR, ERROR, WARNING = severity.INTERNAL_ERROR, severity.ERROR, severity.WARNING
        INFO, VERBOSE = severity.INFO, severity.VERBOSE

        def __init__(self, min_severity: Any = severity.WARNING) -> None:
            assert isinstance(min_severity, severity)
            calls.append(("Logger", min_severity))

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
    if same_cc_level is None:
        same_cc_level = (major, minor) >= (10, 9)
    levels = ["NONE", "AMPERE_PLUS"] + (["SAME_COMPUTE_CAPABILITY"] if same_cc_level else [])
    trt.HardwareCompatibilityLevel = enum.Enum("HardwareCompatibilityLevel", levels)
    trt.TensorIOMode = enum.Enum("TensorIOMode", ["NONE", "INPUT", "OUTPUT"])
    trt.DataType = enum.Enum(
        "DataType", ["FLOAT", "HALF", "INT8", "INT32", "BOOL", "UINT8", "FP8", "BF16", "INT64"]
    )

    # ----------------------------------------------------------------------- builder

    class ITimingCache:
        def __init__(self, blob: bytes) -> None:
            self.blob = bytes(blob)

        def serialize(self) -> bytes:
            calls.append(("ITimingCache.serialize",))
            return self.blob + b"|tuned"

    class IOptimizationProfile:
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
            assert isinstance(profile, IOptimizationProfile)
            calls.append(("add_optimization_profile",))
            return 0

        def create_timing_cache(self, serialized_timing_cache):
            blob = bytes(serialized_timing_cache)
            calls.append(("create_timing_cache", blob))
            if timing_cache_corrupt and blob:
                return None  # createTimingCache's nullptr, as the bindings return it
            return ITimingCache(blob)

        def set_timing_cache(self, cache, ignore_mismatch):
            if not isinstance(cache, ITimingCache):  # pybind11 refuses None and other types
                raise TypeError("set_timing_cache(): incompatible function arguments")
            calls.append(("set_timing_cache", cache.blob, ignore_mismatch))
            if timing_cache_mismatch and cache.blob and not ignore_mismatch:
                return False
            self._values["_cache"] = cache
            return True

        def get_timing_cache(self):
            return self._values["_cache"]

    class INetworkDefinition:
        pass

    class Builder:
        def __init__(self, logger):
            assert isinstance(logger, Logger)
            calls.append(("Builder",))
            self.num_DLA_cores = num_dla_cores

        def create_network(self, flags=0):
            calls.append(("create_network", flags))
            return INetworkDefinition()

        def create_builder_config(self):
            calls.append(("create_builder_config",))
            return IBuilderConfig(calls)

        def create_optimization_profile(self):
            calls.append(("create_optimization_profile",))
            return IOptimizationProfile()

        def build_serialized_network(self, network, config):
            assert isinstance(network, INetworkDefinition) and isinstance(config, IBuilderConfig)
            calls.append(("build_serialized_network",))
            return build_result

    class OnnxParser:
        def __init__(self, network, logger):
            assert isinstance(network, INetworkDefinition) and isinstance(logger, Logger)
            calls.append(("OnnxParser",))
            self._errors = [] if parse_ok else [ParserError(*e) for e in parser_errors]

        def parse_from_file(self, model):
            assert isinstance(model, str)
            calls.append(("parse_from_file", model))
            return parse_ok

        @property
        def num_errors(self):
            return len(self._errors)

        def get_error(self, index):
            return self._errors[index]

    # ----------------------------------------------------------------------- runtime

    outputs = ["output"] + (["segmentation"] if segmentation else [])
    io = ["input", *outputs]

    class IProfiler:
        def __init__(self) -> None:
            calls.append(("IProfiler.__init__",))

        def report_layer_time(self, layer_name: str, ms: float) -> None:
            raise NotImplementedError("IProfiler.report_layer_time must be overridden")

    class IExecutionContext:
        def __init__(self) -> None:
            self.shape: tuple[int, ...] | None = None
            self.addresses: dict[str, int] = {}
            self._profiler: Any = None

        @property
        def profiler(self) -> Any:
            return self._profiler

        @profiler.setter
        def profiler(self, value: Any) -> None:
            if value is not None and not isinstance(value, IProfiler):
                raise TypeError("profiler must be a tensorrt.IProfiler")
            calls.append(("set", "IExecutionContext", "profiler", value))
            self._profiler = value

        def set_input_shape(self, name: str, shape: tuple[int, ...]) -> bool:
            calls.append(("set_input_shape", name, tuple(shape)))
            assert name == "input"
            if refuse_shapes:
                return False
            self.shape = tuple(shape)
            return True

        def get_tensor_shape(self, name: str) -> tuple[int, ...]:
            calls.append(("context.get_tensor_shape", name))
            if self.shape is None:  # dynamic dims stay -1 until the input shape is set
                return (-1, 3, -1, -1)
            n, _, h, w = self.shape
            return {"input": self.shape, "output": self.shape}.get(name, (n, SEG_CLASSES, h, w))

        def set_tensor_address(self, name: str, memory: int) -> bool:
            assert name in io and isinstance(memory, int)
            calls.append(("set_tensor_address", name, memory))
            self.addresses[name] = memory
            return True

        def execute_async_v3(self, stream_handle: int) -> bool:
            calls.append(("execute_async_v3", stream_handle))
            assert set(self.addresses) == set(io), "every I/O tensor needs an address"
            if self._profiler is not None:
                for layer, ms in LAYER_TIMES:
                    self._profiler.report_layer_time(layer, ms)
            if buffers is None:  # nothing to compute on
                return True
            shape, addresses = self.shape, dict(self.addresses)

            def run() -> None:
                x = buffers.read(addresses["input"], shape)
                buffers.read(addresses["output"], shape)[...] = 1.0 - x
                if segmentation:
                    n, _, h, w = shape
                    seg = buffers.read(addresses["segmentation"], (n, SEG_CLASSES, h, w))
                    seg[:, 0], seg[:, 1] = x.mean(1), -x.mean(1)

            if buffers.capturing is not None:
                buffers.capturing.append(run)  # recorded, not run: a stream capture
            else:
                run()
            return True

    class EngineInspector:
        def get_engine_information(self, format):  # TensorRT's parameter name
            assert format is trt.LayerInformationFormat.JSON
            calls.append(("get_engine_information", format.name))
            return engine_information

    class ICudaEngine:
        num_io_tensors = len(io)

        def get_tensor_name(self, index: int) -> str:
            return io[index]

        def get_tensor_mode(self, name: str):
            return trt.TensorIOMode.INPUT if name == "input" else trt.TensorIOMode.OUTPUT

        def get_tensor_dtype(self, name: str):
            return trt.DataType[dtype] if name == "input" else trt.DataType.FLOAT

        def get_tensor_shape(self, name: str) -> tuple[int, ...]:
            return (-1, 3, -1, -1) if name != "segmentation" else (-1, SEG_CLASSES, -1, -1)

        def get_tensor_profile_shape(self, name: str, profile_index: int) -> list:
            assert name == "input" and profile_index == 0
            return [list(s) for s in profile]

        def create_execution_context(self) -> IExecutionContext:
            calls.append(("create_execution_context",))
            return IExecutionContext()

        def create_engine_inspector(self) -> EngineInspector:
            calls.append(("create_engine_inspector",))
            return EngineInspector()

    if major < 11:  # deprecated in 10.x, removed in 11.x
        ICudaEngine.device_memory_size = property(lambda self: 111)
    if (major, minor) >= (10, 1):
        ICudaEngine.device_memory_size_v2 = property(lambda self: 222)

    accepts: Callable[[bytes], bool] = (
        (lambda blob: True) if engine_bytes is None else (lambda blob: blob == engine_bytes)
    )

    class Runtime(Strict):
        SETTABLE = frozenset({"DLA_core", "engine_host_code_allowed"})

        def __init__(self, logger: Logger) -> None:
            assert isinstance(logger, Logger)
            super().__init__(calls)
            calls.append(("Runtime",))

        def deserialize_cuda_engine(self, serialized_engine: bytes):
            blob = bytes(serialized_engine)
            calls.append(("deserialize_cuda_engine", blob))
            return ICudaEngine() if accepts(blob) else None

    # ----------------------------------------------------------------------- plugin registry

    class PluginCreator:
        def __init__(self, name: str, version: str, namespace: str) -> None:
            self.name, self.plugin_version, self.plugin_namespace = name, version, namespace

    class IPluginRegistry:
        def __init__(self) -> None:
            self.creators = [PluginCreator(*triple) for triple in plugin_creators]

        @property
        def all_creators(self) -> list:
            return list(self.creators)

        def load_library(self, plugin_path: str):
            assert isinstance(plugin_path, str)
            calls.append(("load_library", plugin_path))
            if not load_library_ok:
                return None
            self.creators.append(PluginCreator("SllenAttention", "1", "sllen"))
            return object()  # an opaque handle

        def get_creator(self, type: str, version: str, plugin_namespace: str = ""):
            calls.append(("get_creator", type, version, plugin_namespace))
            for c in self.creators:
                if (c.name, c.plugin_version, c.plugin_namespace) == (
                    type,
                    version,
                    plugin_namespace,
                ):
                    return c
            return None

    registry = IPluginRegistry()

    trt.Logger, trt.Builder, trt.OnnxParser, trt.Runtime = Logger, Builder, OnnxParser, Runtime
    trt.ParserError = ParserError
    trt.IProfiler = IProfiler
    trt.get_plugin_registry = lambda: registry
    return trt
