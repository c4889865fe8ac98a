"""`--attention auto` (the default of sllen-export): decomposed first, the plugin if needed.

Build the decomposed MatMul-Softmax-MatMul graph, read the engine's layers, and keep it only if
TensorRT fused the attention into its own kernel; if it did not (head size, INT8, token count:
the N x N scores would be materialized) or the build failed, rewrite the graph with one
sllen::SllenAttention node per attention block (plugin_rewrite) and rebuild with the plugin
library. The decision is recorded in the engine metadata.

Without a plugin library the fallback cannot happen: build_engine_auto says so up front, on one
line through the "sllen.export.trt" logger (stderr by default, and not silenced by a caller's
warnings filter), with where the library was searched and how to build it, and records the
line under metadata["attention"]["plugin_missing"].
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sllen.runtime.errors import MissingFileError

from ..engine_meta import write_metadata
from ..shapes import ShapeProfile
from .build import EngineBuildError, OnnxParseError, build_engine, log
from .onnx_info import inspect_onnx
from .plugin_rewrite import count_attention_blocks, decomposed_to_plugin


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


def _plugin_hint() -> str:
    from sllen.runtime.attention_kernel import PLUGIN_BUILD_HINT

    return f"{PLUGIN_BUILD_HINT}, then pass --plugin build/libsllen_attention_plugin.so"


def announce_missing_plugin(engine_name: str, *, log_it: bool = True) -> str:
    """Say on one line (logger "sllen.export.trt") that `--attention auto` has no plugin
    library to fall back to, where it was searched and how to build it; return the line."""
    from sllen.runtime.attention_kernel import locate_plugin_library

    found, why = locate_plugin_library()
    where = f"not given ({why})" if found is None else f"not given (one exists: {found})"
    line = (
        f"{engine_name}: --attention auto without the attention plugin library, {where}: "
        "where TensorRT does not fuse the attention the engine keeps the decomposed graph "
        "(N x N scores in memory)"
    )
    if found is None:
        line += f"; build the plugin: {_plugin_hint()}"
    if log_it:
        log.warning("%s", line)
    return line


PLUGIN_HINT = (
    "build runtime/csrc with CMake against this TensorRT (cmake -S . -B build && cmake --build "
    "build; pip's TensorRT has no C++ headers: add -DTensorRT_INCLUDE_DIR=<include/ of the same "
    "release>) and pass --plugin build/libsllen_attention_plugin.so"
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
    announce: bool = True,
    **kwargs: Any,
) -> dict[str, Any]:
    """build_engine with `--attention auto`: decomposed first, the plugin when TensorRT does
    not fuse the attention or the build fails (see decide_attention). The plugin graph is
    written beside the engine as `<onnx stem>.plugin.onnx`. Returns the final metadata, whose
    "attention" entry has the decision under "auto". ``announce=False``: a missing plugin
    library is only recorded, not logged (sllen-export says it once for all its engines)."""
    onnx_path, engine_path = Path(onnx_path), Path(engine_path)
    plugin = Path(plugin_library) if plugin_library is not None else None
    if plugin is not None and not plugin.is_file():
        raise MissingFileError(f"plugin library {plugin} does not exist ({PLUGIN_HINT})")
    info = inspect_onnx(onnx_path)
    missing_plugin = None
    if plugin is None and not info.plugin_nodes and count_attention_blocks(onnx_path) > 0:
        missing_plugin = announce_missing_plugin(engine_path.name, log_it=announce)
    meta: dict[str, Any] | None  # None only until a build succeeds
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
        fusion = (
            None
            if meta is None
            else {True: "fused", False: "unfused"}.get(meta["attention"]["fused"], "unknown")
        )
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
        assert meta is not None  # built, or the error above was raised
    meta["attention"]["auto"] = decision.to_dict()
    if missing_plugin is not None:
        meta["attention"]["plugin_missing"] = missing_plugin
    write_metadata(engine_path, meta)
    if decision.warn:
        warnings.warn(f"{engine_path.name}: {decision.reason}", stacklevel=2)
    return meta
