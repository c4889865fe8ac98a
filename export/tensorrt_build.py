"""Build a TensorRT engine from an sllen ONNX file: strongly typed, explicit profile, metadata.

Precision lives in the ONNX file (DESIGN.md): fp32.onnx, fp16.onnx (casts) and int8.onnx
(symmetric Q/DQ). TensorRT only compiles it, so this module never sets FP16/INT8 builder flags
(removed in TensorRT 11) and always builds a strongly typed network.

The TensorRT calls follow the documented Python API; each non-obvious one names its source:
- flow: NVIDIA/TensorRT samples/python/onnx_custom_plugin/sample.py (Builder -> create_network
  -> OnnxParser -> create_builder_config -> set_memory_pool_limit(WORKSPACE) ->
  create_optimization_profile / set_shape / add_optimization_profile ->
  build_serialized_network), and the Python bindings python/src/infer/pyCore.cpp.
- strong typing: TensorRT Python API "Builder" page, NetworkDefinitionCreationFlag:
  10.x `1 << int(STRONGLY_TYPED)`; 11.0 "STRONGLY_TYPED: [DEPRECATED] ... Strongly typed mode
  is always enabled ... ignored" (docs.nvidia.com/deeplearning/tensorrt/11.0.0/_static/
  python-api/infer/Core/Builder.html).
- parser errors: python/src/parsers/pyOnnx.cpp binds ParserError.code(), desc(), node(),
  node_name(), node_operator() (nvonnxparser::IParserError, TensorRT 10.x C++ API).
- plugin library: samples/python/onnx_custom_plugin/load_plugin_lib.py (ctypes.CDLL before
  parsing registers the creators); version-compatible engines list plugin libraries in
  IBuilderConfig.plugins_to_serialize (pyCore.cpp).
- engine inspector: "Engine Inspector" (TensorRT developer guide, 10.16 engine-tools page):
  engine.create_engine_inspector(); inspector.get_engine_information(LayerInformationFormat.JSON),
  detail controlled by IBuilderConfig.profiling_verbosity = ProfilingVerbosity.DETAILED.

Nothing here imports tensorrt at module level: `import sllen.export` works without it.
"""

from __future__ import annotations

import ctypes
import datetime as _dt
import importlib
import json
import os
import re
import time
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .engine_meta import (
    HARDWARE_COMPATIBILITY,
    PRECISIONS,
    SCHEMA,
    atomic_write_bytes,
    format_cc,
    onnx_sha256,
    write_metadata,
)
from .shapes import ShapeProfile

PLUGIN_DOMAIN = "sllen"
MIN_TRT_MAJOR = 10

# ONNX metadata_props keys the exporter/quantizer write (read here, never required except
# the CPU flavour refusal): precision of the file, and which INT8 recipe made it.
META_PRECISION = "sllen_precision"
META_INT8_FLAVOUR = "sllen_int8_flavour"


class OnnxParseError(RuntimeError):
    """TensorRT's ONNX parser rejected the model; `errors` lists one line per parser error."""

    def __init__(self, message: str, errors: list[str]) -> None:
        super().__init__(message)
        self.errors = errors


class EngineBuildError(RuntimeError):
    """build_serialized_network returned None (TensorRT logged the reason)."""


# --------------------------------------------------------------------------- environment


def _trt_major(version: str) -> int:
    try:
        return int(str(version).split(".")[0])
    except ValueError:
        raise RuntimeError(f"cannot read the TensorRT version {version!r}") from None


def tensorrt_available() -> tuple[bool, str]:
    """(True, "TensorRT 10.3.0") when `import tensorrt` works and is 10.x or newer, else why not."""
    try:
        trt = importlib.import_module("tensorrt")
    except ImportError as exc:
        return False, (
            f"TensorRT is not installed ({exc}); on Jetson use the system TensorRT (JetPack 6: "
            "10.3) from a venv made with --system-site-packages, elsewhere NVIDIA's tensorrt wheel"
        )
    except OSError as exc:  # the bindings import but libnvinfer does not load
        return False, f"TensorRT is installed but its libraries do not load ({exc})"
    version = getattr(trt, "__version__", "unknown")
    try:
        major = _trt_major(version)
    except RuntimeError as exc:
        return False, str(exc)
    if major < MIN_TRT_MAJOR:
        return False, (
            f"TensorRT {version} is too old: sllen builds strongly typed networks and needs "
            "TensorRT 10.x or 11.x"
        )
    return True, f"TensorRT {version}"


def _import_tensorrt() -> Any:
    ok, reason = tensorrt_available()
    if not ok:
        raise RuntimeError(reason)
    return importlib.import_module("tensorrt")


def detect_gpu(device: int = 0) -> tuple[str, str]:
    """(GPU name, compute capability "major.minor") of CUDA device `device`.

    Uses torch.cuda.get_device_properties when torch with CUDA is importable, else cuda-python's
    cudaGetDeviceProperties (cuda.bindings.runtime on cuda-python 13, cuda.cudart on 12.x, the
    module NVIDIA's TensorRT samples use: samples/python/common_runtime.py).
    """
    try:
        torch = importlib.import_module("torch")
    except ImportError:
        torch = None
    if torch is not None and torch.cuda.is_available():
        props = torch.cuda.get_device_properties(device)
        return str(props.name), f"{props.major}.{props.minor}"
    for name in ("cuda.bindings.runtime", "cuda.cudart"):
        try:
            cudart = importlib.import_module(name)
        except ImportError:
            continue
        err, props = cudart.cudaGetDeviceProperties(device)
        if err != cudart.cudaError_t.cudaSuccess:
            raise RuntimeError(f"cudaGetDeviceProperties({device}) failed: {err}")
        gpu = props.name.decode(errors="replace") if isinstance(props.name, bytes) else props.name
        return str(gpu).rstrip("\x00"), f"{props.major}.{props.minor}"
    raise RuntimeError(
        "cannot read the GPU name and compute capability: install torch with CUDA or cuda-python"
    )


def select_device(device: int) -> None:
    """Make CUDA device `device` current: TensorRT builds for the current device."""
    try:
        torch = importlib.import_module("torch")
    except ImportError:
        torch = None
    if torch is not None and torch.cuda.is_available():
        torch.cuda.set_device(device)
        return
    for name in ("cuda.bindings.runtime", "cuda.cudart"):
        try:
            cudart = importlib.import_module(name)
        except ImportError:
            continue
        (err,) = cudart.cudaSetDevice(device)
        if err != cudart.cudaError_t.cudaSuccess:
            raise ValueError(f"cannot use CUDA device {device}: {err}")
        return
    raise RuntimeError("cannot select a CUDA device: install torch with CUDA or cuda-python")


# --------------------------------------------------------------------------- ONNX side


@dataclass(frozen=True)
class OnnxInfo:
    """What the builder needs to know about an ONNX file before handing it to TensorRT."""

    path: Path
    metadata: dict[str, str]
    plugin_nodes: tuple[str, ...]  # "name (op_type)" of nodes in domain "sllen"
    precision: str
    int8_flavour: str | None
    plugin_functions: tuple[str, ...] = ()  # model-local functions in domain "sllen"

    @property
    def attention_mode(self) -> str:
        return "plugin" if self.plugin_nodes else "decomposed"


def _walk_nodes(graph: Any) -> Iterable[Any]:
    for node in graph.node:
        yield node
        for attr in node.attribute:  # If/Loop/Scan bodies
            if attr.g is not None and len(attr.g.node):
                yield from _walk_nodes(attr.g)
            for sub in attr.graphs:
                yield from _walk_nodes(sub)


def inspect_onnx(onnx_path: str | os.PathLike[str]) -> OnnxInfo:
    """Read metadata_props and scan the nodes (weights are not loaded)."""
    onnx = importlib.import_module("onnx")
    path = Path(onnx_path)
    if not path.is_file():
        raise FileNotFoundError(f"ONNX file {path} does not exist")
    model = onnx.load(str(path), load_external_data=False)
    metadata = {p.key: p.value for p in model.metadata_props}
    nodes = list(_walk_nodes(model.graph))
    for function in model.functions:
        nodes.extend(function.node)
    plugin_nodes = tuple(
        f"{n.name or '<unnamed>'} ({n.op_type})" for n in nodes if n.domain == PLUGIN_DOMAIN
    )
    precision = metadata.get(META_PRECISION, "").lower()
    if precision not in PRECISIONS:
        precision = _infer_precision(onnx, model, nodes)
    flavour = metadata.get(META_INT8_FLAVOUR) or None
    return OnnxInfo(
        path=path,
        metadata=metadata,
        plugin_nodes=plugin_nodes,
        precision=precision,
        int8_flavour=flavour.lower() if flavour else None,
        plugin_functions=tuple(
            f"{f.domain}::{f.name}" for f in model.functions if f.domain == PLUGIN_DOMAIN
        ),
    )


def _infer_precision(onnx: Any, model: Any, nodes: list[Any]) -> str:
    """int8 if the graph has Q/DQ nodes, fp16 if any tensor is float16, else fp32."""
    if any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in nodes):
        return "int8"
    fp16 = onnx.TensorProto.FLOAT16
    graph = model.graph
    typed = list(graph.input) + list(graph.output) + list(graph.value_info)
    if any(v.type.tensor_type.elem_type == fp16 for v in typed):
        return "fp16"
    if any(t.data_type == fp16 for t in graph.initializer):
        return "fp16"
    for n in nodes:
        if n.op_type == "Cast" and any(a.name == "to" and a.i == fp16 for a in n.attribute):
            return "fp16"
    return "fp32"


def refuse_cpu_int8(info: OnnxInfo) -> None:
    """The CPU INT8 model (asymmetric uint8 activations) is for ONNX Runtime, not TensorRT."""
    if info.int8_flavour == "cpu":
        raise ValueError(
            f"{info.path} is the CPU INT8 model ({META_INT8_FLAVOUR}=cpu: asymmetric uint8 "
            "activations, which TensorRT rejects); build the engine from the TensorRT INT8 model "
            "(symmetric int8 Q/DQ) instead"
        )


def refuse_reference_attention(info: OnnxInfo) -> None:
    """A plugin-mode file with the ONNX Runtime reference function attached is for the CPU only.

    sllen.export.onnx_export.attach_reference_attention adds a model-local function
    sllen::SllenAttention so ONNX Runtime can run the graph; TensorRT's parser would expand that
    function instead of using the plugin, so such a file must not reach the builder.
    """
    if info.plugin_functions:
        raise ValueError(
            f"{info.path} carries the CPU reference function(s) {', '.join(info.plugin_functions)} "
            "(attach_reference_attention); TensorRT would expand them instead of using the "
            "plugin: build from the file export_onnx wrote"
        )


# --------------------------------------------------------------------------- TensorRT side


def _dlopen(path: Path) -> Any:
    # samples/python/onnx_custom_plugin/load_plugin_lib.py: loading the library runs its
    # REGISTER_TENSORRT_PLUGIN static initialisers, which put the creators in TensorRT's plugin
    # registry; RTLD_GLOBAL keeps its symbols visible to libnvinfer.
    return ctypes.CDLL(str(path), mode=ctypes.RTLD_GLOBAL)


_loaded_plugins: dict[str, Any] = {}


def load_plugin_library(path: str | os.PathLike[str]) -> Path:
    """Load the sllen attention plugin library once per process (before parsing/deserializing)."""
    lib = Path(path).resolve()
    if not lib.is_file():
        raise FileNotFoundError(
            f"plugin library {lib} does not exist (build runtime/csrc with CMake against this "
            "TensorRT)"
        )
    if str(lib) not in _loaded_plugins:
        try:
            _loaded_plugins[str(lib)] = _dlopen(lib)
        except OSError as exc:
            raise RuntimeError(f"cannot load plugin library {lib}: {exc}") from None
    return lib


def format_parser_error(error: Any) -> str:
    """One line per nvonnxparser::IParserError: node index, name, operator, code, description."""
    node = error.node()
    if node is None or node < 0:
        where = "model"
    else:
        where = f"node {node}"
        name = error.node_name()
        op = error.node_operator()
        if name:
            where += f" '{name}'"
        if op:
            where += f" ({op})"
    return f"{where}: {error.code()}: {error.desc()}"


def _network_flags(trt: Any) -> int:
    # 10.x: strong typing is opt-in through the creation flag. 11.x: "Strongly typed mode is
    # always enabled"; STRONGLY_TYPED is deprecated and ignored, so pass no flag at all.
    if _trt_major(trt.__version__) >= 11:
        return 0
    return 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)


_HWC_ENUM = {"ampere_plus": "AMPERE_PLUS", "same_compute_capability": "SAME_COMPUTE_CAPABILITY"}


def build_engine(
    onnx_path: str | os.PathLike[str],
    engine_path: str | os.PathLike[str],
    profile: ShapeProfile,
    *,
    workspace_gib: float = 2.0,
    timing_cache: str | os.PathLike[str] | None = None,
    dla_core: int | None = None,
    version_compatible: bool = False,
    hardware_compatibility: str = "none",
    plugin_library: str | os.PathLike[str] | None = None,
    verbose: bool = False,
    gpu: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """Build `engine_path` (and `<engine>.json`) from `onnx_path`; return the metadata.

    profile: the explicit min/opt/max of input "input". timing_cache: a file reused across
    builds (created if missing, written back after the build). dla_core: build for that DLA core
    with GPU fallback (Jetson Orin, TensorRT 10.x). version_compatible: embed a lean runtime so
    newer TensorRT versions can run the engine. hardware_compatibility: "none", "ampere_plus"
    or "same_compute_capability". plugin_library: the sllen attention plugin, required when the
    graph has nodes in domain "sllen". gpu: (name, compute capability) to record instead of
    querying CUDA.
    """
    onnx_path = Path(onnx_path)
    engine_path = Path(engine_path)
    if not isinstance(profile, ShapeProfile):
        raise TypeError(f"profile must be a ShapeProfile, got {type(profile).__name__}")
    if not workspace_gib > 0:
        raise ValueError(f"workspace_gib must be positive, got {workspace_gib}")
    if hardware_compatibility not in HARDWARE_COMPATIBILITY:
        raise ValueError(
            f"hardware_compatibility must be one of {', '.join(HARDWARE_COMPATIBILITY)}, "
            f"got {hardware_compatibility!r}"
        )
    if dla_core is not None and (isinstance(dla_core, bool) or dla_core < 0):
        raise ValueError(f"dla_core must be a DLA core index (0, 1, ...), got {dla_core!r}")

    info = inspect_onnx(onnx_path)
    refuse_cpu_int8(info)
    refuse_reference_attention(info)
    plugin: Path | None = None
    if info.plugin_nodes:
        if plugin_library is None:
            raise ValueError(
                f"{onnx_path} has {len(info.plugin_nodes)} node(s) in domain '{PLUGIN_DOMAIN}' "
                f"({', '.join(info.plugin_nodes[:3])}); pass plugin_library= the sllen attention "
                "plugin built from runtime/csrc"
            )
        plugin = Path(plugin_library)
    elif plugin_library is not None:
        warnings.warn(
            f"{onnx_path} has no '{PLUGIN_DOMAIN}' nodes; plugin library {plugin_library} not "
            "loaded",
            stacklevel=2,
        )

    trt = _import_tensorrt()
    gpu_name, compute_capability = gpu if gpu is not None else detect_gpu()
    workspace_bytes = int(workspace_gib * (1 << 30))
    digest = onnx_sha256(onnx_path)
    started = time.monotonic()

    logger = trt.Logger(trt.Logger.VERBOSE if verbose else trt.Logger.WARNING)
    if plugin is not None:
        # Before the parser exists: the parser resolves "sllen" nodes to registered creators.
        plugin = load_plugin_library(plugin)
    builder = trt.Builder(logger)
    network = builder.create_network(_network_flags(trt))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = [format_parser_error(parser.get_error(i)) for i in range(parser.num_errors)]
        raise OnnxParseError(
            f"TensorRT {trt.__version__} could not parse {onnx_path} ({len(errors)} error(s)): "
            + "; ".join(errors or ["no error reported"]),
            errors,
        )

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_bytes)
    # DETAILED: the engine inspector then lists kernels, which attention_fused() reads.
    config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED
    trt_profile = builder.create_optimization_profile()
    mn, op, mx = profile.for_input()
    trt_profile.set_shape(profile.input_name, mn, op, mx)
    config.add_optimization_profile(trt_profile)

    cache_file = Path(timing_cache) if timing_cache is not None else None
    if cache_file is not None:
        blob = cache_file.read_bytes() if cache_file.is_file() else b""
        # ignore_mismatch=False: a cache from another GPU/TensorRT is refused, not half-used.
        config.set_timing_cache(config.create_timing_cache(blob), ignore_mismatch=False)

    if dla_core is not None:
        available = builder.num_DLA_cores
        if dla_core >= available:
            raise ValueError(
                f"DLA core {dla_core} requested but this machine has {available} DLA core(s) "
                f"under TensorRT {trt.__version__} (DLA: Jetson Orin with TensorRT 10.x)"
            )
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = dla_core
        config.set_flag(trt.BuilderFlag.GPU_FALLBACK)

    if version_compatible:
        config.set_flag(trt.BuilderFlag.VERSION_COMPATIBLE)
        if plugin is not None:
            # The whole list must be assigned; appending to the returned list has no effect.
            config.plugins_to_serialize = [str(plugin)]

    if hardware_compatibility != "none":
        member = _HWC_ENUM[hardware_compatibility]
        if not hasattr(trt.HardwareCompatibilityLevel, member):
            raise ValueError(
                f"TensorRT {trt.__version__} has no HardwareCompatibilityLevel.{member}"
            )
        config.hardware_compatibility_level = getattr(trt.HardwareCompatibilityLevel, member)

    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise EngineBuildError(
            f"TensorRT {trt.__version__} could not build an engine from {onnx_path} for profile "
            f"{profile} on {gpu_name}; rerun with verbose=True (sllen-export --verbose) to see "
            "the builder log"
        )
    atomic_write_bytes(engine_path, serialized)
    if cache_file is not None:
        atomic_write_bytes(cache_file, config.get_timing_cache().serialize())
    build_seconds = time.monotonic() - started

    fused: bool | None = None
    if info.attention_mode == "decomposed":
        layers = inspect_layers(
            serialized,
            logger=logger,
            dla_core=dla_core,
            host_code_allowed=version_compatible,
        )
        fused = {"fused": True, "unfused": False}.get(attention_fusion(layers))

    meta: dict[str, Any] = {
        "schema": SCHEMA,
        "sllen_version": _sllen_version(),
        "tensorrt_version": str(trt.__version__),
        "gpu_name": gpu_name,
        "compute_capability": format_cc(compute_capability),
        "precision": info.precision,
        "int8_flavour": info.int8_flavour,
        "attention": {"mode": info.attention_mode, "fused": fused},
        "profile": profile.to_dict(),
        "onnx_sha256": digest,
        "onnx_file": str(onnx_path.resolve()),
        "engine_file": engine_path.name,
        "build_time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "build_seconds": round(build_seconds, 2),
        "plugin_library": plugin.name if plugin is not None else None,
        "version_compatible": bool(version_compatible),
        "hardware_compatibility": hardware_compatibility,
        "dla_core": dla_core,
        "workspace_bytes": workspace_bytes,
    }
    write_metadata(engine_path, meta)
    return meta


def _sllen_version() -> str:
    try:
        return importlib.import_module("sllen").__version__
    except (ImportError, AttributeError):
        return "unknown"


# --------------------------------------------------------------------------- inspection


def inspect_layers(
    engine: bytes | bytearray | memoryview | str | os.PathLike[str] | Any,
    *,
    logger: Any = None,
    plugin_library: str | os.PathLike[str] | None = None,
    dla_core: int | None = None,
    host_code_allowed: bool = False,
) -> list[dict[str, Any]]:
    """The engine's layers as the engine inspector reports them (JSON), one dict per layer.

    `engine` is a serialized engine (bytes or a TensorRT host-memory object) or a path to one.
    Full detail needs an engine built with ProfilingVerbosity.DETAILED (build_engine does).
    host_code_allowed must be True for version-compatible engines (Runtime
    .engine_host_code_allowed, TensorRT Python API "Runtime" page).
    """
    trt = _import_tensorrt()
    if plugin_library is not None:
        load_plugin_library(plugin_library)
    if isinstance(engine, (str, os.PathLike)):
        engine = Path(engine).read_bytes()
    logger = logger or trt.Logger(trt.Logger.WARNING)
    runtime = trt.Runtime(logger)
    if dla_core is not None:
        runtime.DLA_core = dla_core
    if host_code_allowed:
        runtime.engine_host_code_allowed = True
    cuda_engine = runtime.deserialize_cuda_engine(engine)
    if cuda_engine is None:
        raise RuntimeError(
            f"TensorRT {trt.__version__} could not deserialize the engine (other TensorRT "
            "version or GPU, or a plugin library not loaded)"
        )
    inspector = cuda_engine.create_engine_inspector()
    return parse_layer_info(inspector.get_engine_information(trt.LayerInformationFormat.JSON))


def parse_layer_info(info: str | Mapping[str, Any]) -> list[dict[str, Any]]:
    """The "Layers" of an engine-inspector JSON document, each as a dict.

    With ProfilingVerbosity.LAYER_NAMES_ONLY a layer is just its name; it becomes {"Name": name}.
    """
    doc = json.loads(info) if isinstance(info, str) else info
    layers = doc.get("Layers") if isinstance(doc, Mapping) else None
    if not isinstance(layers, list):
        raise ValueError("engine information has no 'Layers' list")
    return [layer if isinstance(layer, dict) else {"Name": str(layer)} for layer in layers]


@dataclass(frozen=True)
class FusionRule:
    """A layer whose `fields` match `pattern` is TensorRT's fused attention kernel."""

    fields: tuple[str, ...]
    pattern: re.Pattern[str]
    source: str


# Kernel names, not ONNX names: the patterns are matched against the layer Name and TacticName
# only, so an ONNX node called "/mha/MatMul" in Metadata does not count as a fused kernel.
FUSED_ATTENTION_RULES: tuple[FusionRule, ...] = (
    FusionRule(
        ("Name", "TacticName"),
        re.compile(r"_gemm_mha_v\d"),
        "Myelin's fused MHA kernel: layer '_gemm_mha_v2_myl0_172', LayerType kgen, TacticName "
        "'_gemm_mha_v2_0x...' (trtexec --profilingVerbosity=detailed, TensorRT 10.x); profiler "
        "name '_gemm_mha_v2_myl3_6' (wang-xinyu/tensorrtx vit, TensorRT 10.15); NVIDIA/TensorRT"
        "#3243 (maintainer: fused MHA shows kernels with '_mha', visible in the inspector with "
        "detailed verbosity)",
    ),
    FusionRule(
        ("Name", "TacticName"),
        re.compile(r"_gemv_mha_v\d"),
        "Myelin's single-query MHA path '_gemv_mha_v1' (TensorRT-Edge-LLM decode profile)",
    ),
    FusionRule(
        ("Name", "TacticName"),
        re.compile(r"\bfmha_v\d|_fmha_v\d"),
        "fused MHA cubins 'fmha_v2_flash_attention_fp16_*' (TensorRT / TensorRT-LLM kernels)",
    ),
)

_SOFTMAX = re.compile(r"softmax", re.IGNORECASE)


def _text(layer: Mapping[str, Any], field: str) -> str:
    value = layer.get(field)
    return value if isinstance(value, str) else ""


def _is_fused_attention(layer: Mapping[str, Any], rules: Iterable[FusionRule]) -> bool:
    return any(rule.pattern.search(_text(layer, f)) for rule in rules for f in rule.fields)


def _is_opaque(layer: Mapping[str, Any]) -> bool:
    # A whole Myelin region as one layer ("{ForeignNode[a...b]}", LayerType Myelin), or a
    # reformat named after one: the name only spans the first and last ONNX node of the region,
    # so it says nothing about fusion inside.
    return _text(layer, "LayerType") == "Myelin" or "{ForeignNode[" in _text(layer, "Name")


def attention_fusion(
    layers: Iterable[Mapping[str, Any]],
    *,
    scope: str | None = None,
    rules: Iterable[FusionRule] = FUSED_ATTENTION_RULES,
) -> str:
    """Classify the engine's MatMul-Softmax-MatMul attention: "fused", "unfused" or "unknown".

    fused: some layer is a fused attention kernel (FUSED_ATTENTION_RULES). unfused: none is,
    and a layer still computes a Softmax on its own (Name, LayerType or Metadata mentions it).
    unknown: neither, e.g. a LAYER_NAMES_ONLY listing where Myelin regions are opaque.
    `scope` (an ONNX name fragment such as "/rsaeb/") limits the Softmax evidence to the
    attention block, so a Softmax elsewhere (a segmentation head) is not read as unfused.
    """
    rules = tuple(rules)
    layers = list(layers)
    if any(_is_fused_attention(layer, rules) for layer in layers):
        return "fused"
    for layer in layers:
        if _is_opaque(layer):
            continue
        text = " ".join(_text(layer, f) for f in ("Name", "LayerType", "Metadata"))
        if scope is not None and scope not in text:
            continue
        if _SOFTMAX.search(text):
            return "unfused"
    return "unknown"


def attention_fused(layers: Iterable[Mapping[str, Any]], *, scope: str | None = None) -> bool:
    """True only when the listing shows TensorRT's fused attention kernel (see attention_fusion)."""
    return attention_fusion(layers, scope=scope) == "fused"
