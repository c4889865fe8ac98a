"""build_engine: an sllen ONNX file -> a strongly typed TensorRT engine and its metadata.

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
  parsing registers the creators: sllen.runtime.env.load_plugin_library); version-compatible
  engines list plugin libraries in IBuilderConfig.plugins_to_serialize (pyCore.cpp), and a
  serialized library must be a "plugin shared library" with getCreators/setLoggerFinder
  (samples/trtexec/README.md): libsllen_attention_plugin_dynamic.so, not the self-registering
  libsllen_attention_plugin.so.
- timing cache: IBuilderConfig.create_timing_cache(serialized) ("If an empty cache is provided
  ... a new cache will be created"; the C++ createTimingCache returns a pointer, None from
  Python when TensorRT cannot read the blob) and set_timing_cache(cache, ignore_mismatch)
  ("A failure will be reported if the CUDA device property in the provided cache is different
  from current environment ... returns true if set successfully, false otherwise", NvInfer.h
  10.3 / pyCoreDoc.h).
"""

from __future__ import annotations

import datetime as _dt
import importlib
import logging
import os
import time
import warnings
from pathlib import Path
from typing import Any

from sllen.runtime import env
from sllen.runtime.errors import InputError, SllenError
from sllen.runtime.files import atomic_write_bytes

from ..engine_meta import (
    HARDWARE_COMPATIBILITY,
    SCHEMA,
    cc_tuple,
    engine_platform,
    format_cc,
    onnx_sha256,
    write_metadata,
)
from ..shapes import ShapeProfile
from .fusion import attention_fusion, inspect_layers
from .onnx_info import PLUGIN_DOMAIN, inspect_onnx, refuse_cpu_int8, refuse_reference_attention


class OnnxParseError(SllenError, RuntimeError):
    """TensorRT's ONNX parser rejected the model; `errors` lists one line per parser error."""

    def __init__(self, message: str, errors: list[str]) -> None:
        super().__init__(message)
        self.errors = errors


class EngineBuildError(SllenError, RuntimeError):
    """build_serialized_network returned None (TensorRT logged the reason)."""


class TimingCacheError(InputError):
    """A timing cache file TensorRT cannot read (one line for the user: delete or replace it)."""


# Notices the user must see even where a caller silences warnings (sllen-export's auto mode
# does): Python's last-resort handler prints a WARNING record as one line on stderr when the
# application configured no logging.
log = logging.getLogger("sllen.export.trt")


def attach_timing_cache(
    trt: Any, config: Any, path: Path, *, replace_unreadable: bool = False
) -> str:
    """Give `config` the timing cache in `path`; return what happened.

    "new": no file yet, an empty cache; "loaded": the file's cache is used; "stale": the file
    was written by another TensorRT version or on another GPU (set_timing_cache returned False
    with ignore_mismatch=False, a cache from another device is never half-used): said on one
    line, and a fresh cache is used (the build writes it over the old file). A file TensorRT
    cannot read at all raises TimingCacheError, unless `replace_unreadable` (the default cache
    in --out, which sllen wrote: TensorRT does not document whether create_timing_cache reads
    another version's cache, and an upgrade must not stop every export into an old folder);
    then it is treated as stale. A file the user named is never overwritten unread: it may not
    be a cache at all.
    """
    blob = path.read_bytes() if path.is_file() else b""
    try:
        cache = config.create_timing_cache(blob)
    except (RuntimeError, TypeError, ValueError) as exc:  # bindings that raise instead
        cache, why = None, f": {exc}"
    else:
        why = ""
    if cache is None:
        if not blob:
            raise EngineBuildError(f"TensorRT {trt.__version__} could not create a timing cache")
        if replace_unreadable:
            return _fresh_timing_cache(trt, config, path, "is not readable by")
        raise TimingCacheError(
            f"timing cache {path} ({len(blob)} bytes) is not readable by TensorRT "
            f"{trt.__version__} (corrupt, truncated, or not a timing cache{why}): delete it "
            "(the next build writes a new one) or pass another --timing-cache"
        )
    if config.set_timing_cache(cache, ignore_mismatch=False):
        return "loaded" if blob else "new"
    return _fresh_timing_cache(
        trt,
        config,
        path,
        "was written by another TensorRT version or on another GPU and cannot be used with",
    )


def _fresh_timing_cache(trt: Any, config: Any, path: Path, why: str) -> str:
    """Attach an empty cache in place of the one in `path` (said on one line): "stale"."""
    log.warning(
        "timing cache %s %s TensorRT %s here: starting a fresh one (it replaces the file after "
        "the build)",
        path,
        why,
        trt.__version__,
    )
    fresh = config.create_timing_cache(b"")
    if fresh is None or not config.set_timing_cache(fresh, ignore_mismatch=False):
        raise EngineBuildError(f"TensorRT {trt.__version__} could not attach a new timing cache")
    return "stale"


def serialized_plugin_library(plugin: Path) -> Path:
    """The library to list in plugins_to_serialize for `plugin`: itself when it is the dynamic
    plugin library (exports getCreators), else libsllen_attention_plugin_dynamic.so beside it.
    Without that one, `plugin` itself, with a warning: TensorRT then needs its entry points,
    which the self-registering library does not have."""
    from sllen.runtime.attention_kernel import DYNAMIC_PLUGIN_NAMES, find_dynamic_plugin_library

    if plugin.name in DYNAMIC_PLUGIN_NAMES:
        return plugin
    dynamic = find_dynamic_plugin_library(beside=plugin)
    if dynamic is not None:
        return dynamic.resolve()
    warnings.warn(
        f"version-compatible engine: serializing {plugin.name}, which registers itself when "
        "loaded but exports no getCreators/setLoggerFinder, the entry points TensorRT uses for "
        f"plugin libraries inside version-compatible engines; build {DYNAMIC_PLUGIN_NAMES[0]} "
        "(CMake builds it beside the plugin; it needs only TensorRT's headers)",
        stacklevel=3,
    )
    return plugin


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
    if env.trt_major(trt.__version__) >= 11:
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
    replace_unreadable_cache: bool = False,
) -> dict[str, Any]:
    """Build `engine_path` (and `<engine>.json`) from `onnx_path`; return the metadata.

    profile: the explicit min/opt/max of input "input". timing_cache: a file reused across
    builds (created if missing, written back after the build; replace_unreadable_cache: one
    TensorRT cannot read is replaced, as sllen-export does with its default OUT/timing.cache).
    dla_core: build for that DLA core with GPU fallback (Jetson Orin); DLA runs fixed shapes
    only, so the profile's min, opt and max must be equal. version_compatible: embed a lean
    runtime so newer TensorRT versions can run the engine. hardware_compatibility: "none",
    "ampere_plus" or "same_compute_capability". plugin_library: the sllen attention plugin,
    required when the graph has nodes in domain "sllen". gpu: (name, compute capability) to
    record instead of querying CUDA.
    """
    onnx_path = Path(onnx_path)
    engine_path = Path(engine_path)
    if not isinstance(profile, ShapeProfile):
        raise TypeError(f"profile must be a ShapeProfile, got {type(profile).__name__}")
    if not workspace_gib > 0:
        raise InputError(f"workspace_gib must be positive, got {workspace_gib}")
    if hardware_compatibility not in HARDWARE_COMPATIBILITY:
        raise InputError(
            f"hardware_compatibility must be one of {', '.join(HARDWARE_COMPATIBILITY)}, "
            f"got {hardware_compatibility!r}"
        )
    if dla_core is not None and (isinstance(dla_core, bool) or dla_core < 0):
        raise InputError(f"dla_core must be a DLA core index (0, 1, ...), got {dla_core!r}")
    if dla_core is not None:
        check_dla_profile(profile)

    info = inspect_onnx(onnx_path)
    refuse_cpu_int8(info)
    refuse_reference_attention(info)
    plugin: Path | None = None
    if info.plugin_nodes:
        if plugin_library is None:
            raise InputError(
                f"{onnx_path} has {len(info.plugin_nodes)} node(s) in domain '{PLUGIN_DOMAIN}' "
                f"({', '.join(info.plugin_nodes[:3])}); pass --plugin (plugin_library= in Python) "
                "the sllen attention plugin library built from runtime/csrc "
                "(docs/deploy-jetson.md, section 3)"
            )
        plugin = Path(plugin_library)
    elif plugin_library is not None:
        warnings.warn(
            f"{onnx_path} has no '{PLUGIN_DOMAIN}' nodes; plugin library {plugin_library} not "
            "loaded",
            stacklevel=2,
        )

    trt = env.import_tensorrt()
    gpu_name, compute_capability = gpu if gpu is not None else env.detect_gpu()
    check_hardware_level(hardware_compatibility, gpu_name, compute_capability)
    workspace_bytes = int(workspace_gib * (1 << 30))
    digest = onnx_sha256(onnx_path)
    started = time.monotonic()

    logger = trt.Logger(trt.Logger.VERBOSE if verbose else trt.Logger.WARNING)
    if plugin is not None:
        # Before the parser exists: the parser resolves "sllen" nodes to registered creators.
        plugin = env.load_plugin_library(plugin)
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
    cache_state = None
    if cache_file is not None:
        cache_state = attach_timing_cache(
            trt, config, cache_file, replace_unreadable=replace_unreadable_cache
        )

    if dla_core is not None:
        available = builder.num_DLA_cores
        if dla_core >= available:
            raise InputError(
                f"DLA core {dla_core} requested but this machine has {available} DLA core(s) "
                f"under TensorRT {trt.__version__} (DLA: Jetson Orin with JetPack 6's TensorRT "
                "10.x, or Jetson AGX Orin with TensorRT 11.4.1 on JetPack 7.2.2 or later; "
                "TensorRT 11.0 to 11.4.0 have no DLA on Jetson)"
            )
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = dla_core
        config.set_flag(trt.BuilderFlag.GPU_FALLBACK)

    serialized_plugins: list[str] = []
    if version_compatible:
        config.set_flag(trt.BuilderFlag.VERSION_COMPATIBLE)
        if plugin is not None:
            serialized_plugins = [str(serialized_plugin_library(plugin))]
            # The whole list must be assigned; appending to the returned list has no effect.
            config.plugins_to_serialize = serialized_plugins

    if hardware_compatibility != "none":
        member = _HWC_ENUM[hardware_compatibility]
        if not hasattr(trt.HardwareCompatibilityLevel, member):
            raise InputError(
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
        # Libraries inside a version-compatible engine: the runtime then loads none of its own
        # (trtexec's README: no --dynamicPlugins for an engine built with them serialized).
        "plugins_serialized": [Path(p).name for p in serialized_plugins],
        # Engines do not move between platforms (TensorRT's support matrix, "Platform").
        "platform": engine_platform(),
        "version_compatible": bool(version_compatible),
        "hardware_compatibility": hardware_compatibility,
        "dla_core": dla_core,
        "workspace_bytes": workspace_bytes,
        "timing_cache": (
            None if cache_file is None else {"file": str(cache_file), "state": cache_state}
        ),
    }
    write_metadata(engine_path, meta)
    return meta


def check_dla_profile(profile: ShapeProfile) -> None:
    """DLA has no dynamic dimensions: min, opt and max must be equal (NVIDIA, "DLA Supported
    Layers and Restrictions"); a dynamic profile would leave every layer to the GPU fallback."""
    if profile.min == profile.opt == profile.max and len(set(profile.batch)) == 1:
        return
    raise InputError(
        f"DLA runs one fixed input size, and this profile is dynamic ({profile}): give "
        "--min-shape, --opt-shape and --max-shape the same WIDTHxHEIGHT (with --dla-core, "
        "--opt-shape alone sets all three)"
    )


def check_hardware_level(level: str, gpu_name: str, compute_capability: Any) -> None:
    """TensorRT builds AMPERE_PLUS engines only on Ampere or newer (compute capability 8.0),
    SAME_COMPUTE_CAPABILITY ones on Turing or newer (7.5) (NvInfer.h,
    HardwareCompatibilityLevel): said before the build, which would fail without a reason."""
    need = {"ampere_plus": (8, 0), "same_compute_capability": (7, 5)}.get(level)
    if need is None:
        return
    cc = cc_tuple(compute_capability)
    if cc < need:
        raise InputError(
            f"hardware_compatibility={level!r} needs a build GPU of compute capability"
            f" {format_cc(need)} or newer; {gpu_name} has {format_cc(cc)}"
        )


def _sllen_version() -> str:
    try:
        return importlib.import_module("sllen").__version__
    except (ImportError, AttributeError):
        return "unknown"
