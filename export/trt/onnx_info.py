"""What the engine builder reads from an ONNX file before handing it to TensorRT.

The precision of the file (metadata_props written by the exporter and quantizer, else inferred
from Q/DQ nodes and float16 tensors), its INT8 recipe, and its nodes in domain "sllen" (the
attention plugin); plus the two files the builder refuses (the CPU INT8 flavour, and a plugin
file carrying ONNX Runtime's reference function). Weights are never loaded.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sllen.runtime.errors import InputError, MissingFileError

from ..engine_meta import PRECISIONS

PLUGIN_DOMAIN = "sllen"

# ONNX metadata_props keys the exporter/quantizer write (read here, never required except
# the CPU flavour refusal): precision of the file, and which INT8 recipe made it.
META_PRECISION = "sllen_precision"
META_INT8_FLAVOUR = "sllen_int8_flavour"


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


def load_graph(onnx_path: str | os.PathLike[str]) -> Any:
    """The ModelProto of ``onnx_path`` without external weight data. A file that is not ONNX
    (truncated, corrupt, another format) is bad input naming the file, not a protobuf error."""
    onnx = importlib.import_module("onnx")
    path = Path(onnx_path)
    if not path.is_file():
        raise MissingFileError(f"ONNX file {path} does not exist")
    try:
        return onnx.load(str(path), load_external_data=False)
    except Exception as err:  # noqa: BLE001 - protobuf's DecodeError, onnx's own errors, ...
        text = " ".join(str(err).split()) or type(err).__name__
        raise InputError(
            f"{path}: not an ONNX model, or a truncated or corrupt one ({text})"
        ) from None


def inspect_onnx(onnx_path: str | os.PathLike[str]) -> OnnxInfo:
    """Read metadata_props and scan the nodes (weights are not loaded)."""
    onnx = importlib.import_module("onnx")
    path = Path(onnx_path)
    model = load_graph(path)
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
        raise InputError(
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
        raise InputError(
            f"{info.path} carries the CPU reference function(s) {', '.join(info.plugin_functions)} "
            "(attach_reference_attention); TensorRT would expand them instead of using the "
            "plugin: build from the file export_onnx wrote"
        )
