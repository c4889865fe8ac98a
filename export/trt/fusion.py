"""What TensorRT built: the engine inspector's layer listing, and whether it fused the attention.

- engine inspector: "Engine Inspector" (TensorRT developer guide, 10.16 engine-tools page):
  engine.create_engine_inspector(); inspector.get_engine_information(LayerInformationFormat.JSON),
  detail controlled by IBuilderConfig.profiling_verbosity = ProfilingVerbosity.DETAILED.
- fusion: FUSED_ATTENTION_RULES are data (kernel-name patterns, each with its source), read
  by attention_fusion; the tests hold them against the listings in tests/export/data.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sllen.runtime import env
from sllen.runtime.errors import InputError


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
    trt = env.import_tensorrt()
    if plugin_library is not None:
        env.load_plugin_library(plugin_library)
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
        raise InputError("engine information has no 'Layers' list")
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
