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

from sllen.runtime.backends import tensorrt as _trt_backend
from sllen.runtime.files import atomic_write_bytes

from .engine_meta import (
    HARDWARE_COMPATIBILITY,
    PRECISIONS,
    SCHEMA,
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


# One plugin registry per process, shared with the runtime's TensorRT backend: a library
# dlopen()ed by either side has registered its creators for both.
load_plugin_library = _trt_backend.load_plugin_library


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
            f"{profile} on {gpu_name}; build_engine(..., verbose=True) from Python shows "
            "TensorRT's builder log"
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


# --------------------------------------------------------------------------- attention: auto
#
# `--attention auto` (the default): build the decomposed MatMul-Softmax-MatMul graph, read the
# engine's layers, and keep it only if TensorRT fused the attention into its own kernel; if it
# did not (head size, INT8, token count: the N x N scores would be materialized) or the build
# failed, rewrite the graph with one sllen::SllenAttention node per attention block and rebuild
# with the plugin library. The decision is recorded in the engine metadata.

_SWAP_LAST_TWO = [0, 1, 3, 2]


@dataclass
class _AttentionBlock:
    """One decomposed attention in an ONNX graph: first MatMul -> ... -> second MatMul."""

    nodes: list[Any]  # every node the plugin node replaces (first MatMul ... second MatMul)
    q: str
    kt: str  # K transposed: [B, H, D, N]
    v: str
    out: str
    scale: float
    softmax: str


def _attr(node: Any, name: str, default: Any = None) -> Any:
    onnx = importlib.import_module("onnx")
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def _scalar(graph: Any, name: str, producers: Mapping[str, Any]) -> float | None:
    """The value of a one-element constant (initializer or Constant node), else None."""
    numpy_helper = importlib.import_module("onnx.numpy_helper")
    for init in graph.initializer:
        if init.name == name:
            arr = numpy_helper.to_array(init)
            return float(arr.reshape(-1)[0]) if arr.size == 1 else None
    node = producers.get(name)
    if node is not None and node.op_type == "Constant":
        value = _attr(node, "value")
        if value is not None:
            arr = numpy_helper.to_array(value)
            return float(arr.reshape(-1)[0]) if arr.size == 1 else None
        for key in ("value_float", "value_int"):
            if _attr(node, key) is not None:
                return float(_attr(node, key))
    return None


def _find_attention_blocks(graph: Any, ranks: Mapping[str, int]) -> list[_AttentionBlock]:
    """MatMul(Q, K^T) [-> Mul/Div by a scalar] -> Softmax(last axis) -> MatMul(P, V), with any
    Casts in between (FP16 files keep overflow-prone softmaxes in FP32)."""
    producers = {out: node for node in graph.node for out in node.output}
    consumers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    outputs = {o.name for o in graph.output}

    def private(name: str) -> bool:  # consumed by exactly one node and not a graph output
        return len(consumers.get(name, [])) == 1 and name not in outputs

    blocks = []
    for softmax in (n for n in graph.node if n.op_type == "Softmax"):
        axis = _attr(softmax, "axis", -1)
        rank = ranks.get(softmax.input[0])
        if not (axis == -1 or (rank is not None and axis == rank - 1)) or rank not in (None, 4):
            continue
        chain, scale = [softmax], 1.0
        node = producers.get(softmax.input[0])
        while node is not None and node.op_type in ("Cast", "Mul", "Div"):
            if not private(node.output[0]):
                break
            if node.op_type != "Cast":
                values = [_scalar(graph, name, producers) for name in node.input]
                if values[1] is not None:
                    scale = scale * values[1] if node.op_type == "Mul" else scale / values[1]
                    source = node.input[0]
                elif node.op_type == "Mul" and values[0] is not None:
                    scale, source = scale * values[0], node.input[1]
                else:
                    break
            else:
                source = node.input[0]
            chain.append(node)
            node = producers.get(source)
        first = node
        if first is None or first.op_type != "MatMul" or not private(first.output[0]):
            continue
        tail, out = [], softmax.output[0]
        while private(out) and consumers[out][0].op_type == "Cast":
            tail.append(consumers[out][0])
            out = tail[-1].output[0]
        after = consumers.get(out, [])
        if len(after) != 1 or after[0].op_type != "MatMul" or after[0].input[0] != out:
            continue
        second = after[0]
        blocks.append(
            _AttentionBlock(
                nodes=[first, *reversed(chain), *tail, second],
                q=first.input[0],
                kt=first.input[1],
                v=second.input[1],
                out=second.output[0],
                scale=scale,
                softmax=softmax.name,
            )
        )
    return blocks


def _value_types(model: Any) -> tuple[dict[str, int], dict[str, list[int | str]]]:
    """Element types and dims of every named value (ONNX shape inference, best effort)."""
    onnx = importlib.import_module("onnx")
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # noqa: BLE001 - shape inference is a hint; the rewrite works without it
        inferred = model
    graph = inferred.graph
    types: dict[str, int] = {}
    dims: dict[str, list[int | str]] = {}
    for v in [*graph.input, *graph.output, *graph.value_info]:
        t = v.type.tensor_type
        types[v.name] = t.elem_type
        if t.HasField("shape"):
            dims[v.name] = [
                d.dim_value if d.HasField("dim_value") else d.dim_param for d in t.shape.dim
            ]
    for init in graph.initializer:
        types[init.name] = init.data_type
        dims[init.name] = list(init.dims)
    return types, dims


def count_attention_blocks(onnx_path: str | os.PathLike[str]) -> int:
    """How many decomposed attention blocks decomposed_to_plugin would replace."""
    onnx = importlib.import_module("onnx")
    model = onnx.load(str(onnx_path), load_external_data=False)
    _, dims = _value_types(model)
    return len(_find_attention_blocks(model.graph, {k: len(v) for k, v in dims.items()}))


def decomposed_to_plugin(
    onnx_in: str | os.PathLike[str], onnx_out: str | os.PathLike[str]
) -> dict[str, Any]:
    """Write a copy of `onnx_in` whose decomposed attention blocks are sllen::SllenAttention
    nodes (the TensorRT plugin), in whatever precision the file has (FP32, FP16, INT8 Q/DQ
    with float attention). K^T is transposed back to K; inputs of another type than Q are cast
    to it, and the output is cast back when the block's output type differs. Returns
    {"replaced": n, "blocks": [...]}; raises ValueError when the graph has no such block."""
    onnx = importlib.import_module("onnx")
    helper = onnx.helper
    model = onnx.load(str(onnx_in))
    types, dims = _value_types(model)
    graph = model.graph
    blocks = _find_attention_blocks(graph, {k: len(v) for k, v in dims.items()})
    if not blocks:
        raise ValueError(f"{onnx_in} has no MatMul-Softmax-MatMul attention to replace")
    producers = {out: node for node in graph.node for out in node.output}
    # Nodes are keyed by their first output (unique in an ONNX graph).
    replaced = {n.output[0] for b in blocks for n in b.nodes}
    inserts: dict[str, list[Any]] = {}  # second MatMul -> the nodes that take its place
    dead: set[str] = set()
    report = []
    for i, b in enumerate(blocks):
        prefix = f"/sllen_attention_{i}"
        new_nodes = []
        q_type = types.get(b.q, 0)
        kt_node = producers.get(b.kt)
        kt_uses = sum(b.kt in n.input for n in graph.node)
        if (
            kt_node is not None
            and kt_node.op_type == "Transpose"
            and list(_attr(kt_node, "perm", [])) == _SWAP_LAST_TWO
        ):
            k = kt_node.input[0]
            if kt_uses == 1 and b.kt not in {o.name for o in graph.output}:
                dead.add(kt_node.output[0])
        else:
            k = f"{prefix}/K"
            new_nodes.append(
                helper.make_node(
                    "Transpose", [b.kt], [k], name=f"{prefix}/Transpose", perm=_SWAP_LAST_TWO
                )
            )
        inputs = [b.q]
        for role, name in (("K", k), ("V", b.v)):
            source = b.kt if role == "K" else name
            if q_type and types.get(source, q_type) != q_type:
                cast = f"{prefix}/{role}_cast"
                new_nodes.append(helper.make_node("Cast", [name], [cast], name=cast, to=q_type))
                name = cast
            inputs.append(name)
        out_type = types.get(b.out, q_type)
        out = b.out if not q_type or out_type == q_type else f"{prefix}/out"
        q_dims = dims.get(b.q, [])
        heads = q_dims[1] if len(q_dims) == 4 and isinstance(q_dims[1], int) else 0
        head_dim = q_dims[3] if len(q_dims) == 4 and isinstance(q_dims[3], int) else 0
        new_nodes.append(
            helper.make_node(
                "SllenAttention",
                inputs,
                [out],
                name=f"{prefix}/SllenAttention",
                domain=PLUGIN_DOMAIN,
                num_heads=int(heads),
                head_dim=int(head_dim),
                scale=float(b.scale),
                plugin_version="1",
                plugin_namespace=PLUGIN_DOMAIN,
            )
        )
        if out != b.out:
            new_nodes.append(
                helper.make_node("Cast", [out], [b.out], name=f"{prefix}/out_cast", to=out_type)
            )
        inserts[b.nodes[-1].output[0]] = new_nodes
        report.append(
            {"softmax": b.softmax, "num_heads": heads, "head_dim": head_dim, "scale": b.scale}
        )
    nodes = []
    for node in graph.node:
        key = node.output[0] if node.output else None
        if key in inserts:
            nodes.extend(inserts[key])  # where the second MatMul was: all inputs exist
        elif key not in replaced and key not in dead:
            kept = onnx.NodeProto()
            kept.CopyFrom(node)
            nodes.append(kept)
    del graph.node[:]
    graph.node.extend(nodes)
    if not any(o.domain == PLUGIN_DOMAIN for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid(PLUGIN_DOMAIN, 1))
    for prop in model.metadata_props:
        if prop.key == "sllen_attention":
            prop.value = "plugin"
            break
    else:
        entry = model.metadata_props.add()
        entry.key, entry.value = "sllen_attention", "plugin"
    out_path = Path(onnx_out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out_path, model.SerializeToString())
    return {"replaced": len(blocks), "blocks": report}


@dataclass(frozen=True)
class AttentionDecision:
    """What `--attention auto` built, and why (recorded under metadata["attention"]["auto"])."""

    mode: str  # "decomposed" or "plugin": the graph the final engine was built from
    reason: str
    fusion: str | None = None  # attention_fusion() of the decomposed engine, None: not built
    build_error: str | None = None  # why the decomposed build failed, if it did
    warn: bool = False  # the user should act (e.g. build the plugin library)

    def to_dict(self) -> dict[str, Any]:
        return {
            "requested": "auto",
            "decision": self.mode,
            "reason": self.reason,
            "decomposed_fusion": self.fusion,
            "decomposed_build_error": self.build_error,
            "warning": self.warn,
        }


PLUGIN_HINT = (
    "build runtime/csrc with CMake against this TensorRT (cmake -S . -B build && cmake --build "
    "build) and pass --plugin build/libsllen_attention_plugin.so"
)


def decide_attention(
    fusion: str | None, *, build_error: str | None = None, plugin_available: bool
) -> AttentionDecision:
    """The auto decision from the decomposed build: its fusion verdict or its failure."""
    if build_error is not None:
        if plugin_available:
            return AttentionDecision(
                "plugin",
                "the decomposed-attention build failed; rebuilt with the sllen attention plugin",
                build_error=build_error,
            )
        return AttentionDecision(
            "decomposed",
            f"the decomposed-attention build failed and no plugin library was found: {PLUGIN_HINT}",
            build_error=build_error,
            warn=True,
        )
    if fusion == "fused":
        return AttentionDecision(
            "decomposed", "TensorRT fused the attention into its own kernel", fusion=fusion
        )
    if fusion == "unfused":
        if plugin_available:
            return AttentionDecision(
                "plugin",
                "TensorRT did not fuse the attention (a separate Softmax layer: N x N scores in "
                "memory); rebuilt with the sllen attention plugin",
                fusion=fusion,
            )
        return AttentionDecision(
            "decomposed",
            "TensorRT did not fuse the attention (N x N scores in memory) and no plugin library "
            f"was found, so the decomposed engine is kept: {PLUGIN_HINT}",
            fusion=fusion,
            warn=True,
        )
    return AttentionDecision(
        "decomposed",
        "the engine's layer listing does not show whether TensorRT fused the attention; the "
        "decomposed engine is kept (pass --attention plugin to force the plugin)",
        fusion=fusion,
        warn=True,
    )


def build_engine_auto(
    onnx_path: str | os.PathLike[str],
    engine_path: str | os.PathLike[str],
    profile: ShapeProfile,
    *,
    plugin_library: str | os.PathLike[str] | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """build_engine with `--attention auto`: decomposed first, the plugin when TensorRT does
    not fuse the attention or the build fails (see decide_attention). The plugin graph is
    written beside the engine as `<onnx stem>.plugin.onnx`. Returns the final metadata, whose
    "attention" entry has the decision under "auto"."""
    onnx_path, engine_path = Path(onnx_path), Path(engine_path)
    plugin = Path(plugin_library) if plugin_library is not None else None
    if plugin is not None and not plugin.is_file():
        raise FileNotFoundError(f"plugin library {plugin} does not exist ({PLUGIN_HINT})")
    info = inspect_onnx(onnx_path)
    if info.plugin_nodes:
        meta = build_engine(onnx_path, engine_path, profile, plugin_library=plugin, **kwargs)
        decision = AttentionDecision("plugin", "the ONNX file already uses the plugin node")
    elif count_attention_blocks(onnx_path) == 0:
        meta = build_engine(onnx_path, engine_path, profile, **kwargs)
        decision = AttentionDecision("decomposed", "the graph has no attention block")
    else:
        meta, error = None, None
        try:
            meta = build_engine(onnx_path, engine_path, profile, **kwargs)
        except (OnnxParseError, EngineBuildError) as exc:
            error = exc
        fused = meta["attention"]["fused"] if meta is not None else None
        fusion = None if meta is None else {True: "fused", False: "unfused"}.get(fused, "unknown")
        decision = decide_attention(
            fusion, build_error=str(error) if error else None, plugin_available=plugin is not None
        )
        if decision.mode == "plugin":
            plugin_onnx = engine_path.with_name(f"{onnx_path.stem}.plugin.onnx")
            decomposed_to_plugin(onnx_path, plugin_onnx)
            meta = build_engine(plugin_onnx, engine_path, profile, plugin_library=plugin, **kwargs)
        elif error is not None:
            message = f"{error}; {decision.reason}"
            if isinstance(error, OnnxParseError):
                raise OnnxParseError(message, error.errors) from error
            raise EngineBuildError(message) from error
    meta["attention"]["auto"] = decision.to_dict()
    write_metadata(engine_path, meta)
    if decision.warn:
        warnings.warn(f"{engine_path.name}: {decision.reason}", stacklevel=2)
    return meta
