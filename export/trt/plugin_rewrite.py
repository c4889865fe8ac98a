"""Decomposed attention -> the sllen attention plugin node, as an ONNX graph rewrite.

`--attention auto` (sllen.export.trt.auto) rebuilds with the plugin when TensorRT does not fuse
the decomposed MatMul-Softmax-MatMul: every such block becomes one sllen::SllenAttention node
(the TensorRT plugin of runtime/csrc). FP32 and FP16 files keep their precision at the plugin;
in INT8 files (Q/DQ, attention left in float) the plugin is fed FP16: Casts to FP16 before it
and back to the block's output type after it, so the kernel's tensor-core FP16 path runs (its
accumulation is FP32 either way) and the consumers see the type they had. The plugin never
takes INT8 (the kernel has no INT8 path, and TensorRT's own fused INT8 attention is limited to
heads of 16-64 and 512 tokens).

Plain onnx.helper / protobuf code on purpose, not onnx-graphsurgeon (installable from PyPI): it
would be a new dependency of the export extra, and a rewrite through it ends in cleanup() /
toposort(), which prune and reorder the whole graph, not only the matched blocks. This one
replaces the matched nodes in place and leaves every other node where it was.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sllen.runtime.errors import InputError
from sllen.runtime.files import atomic_write_bytes

from .onnx_info import PLUGIN_DOMAIN

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
    onnx_in: str | os.PathLike[str],
    onnx_out: str | os.PathLike[str],
    *,
    plugin_dtype: str = "auto",
) -> dict[str, Any]:
    """Write a copy of `onnx_in` whose decomposed attention blocks are sllen::SllenAttention
    nodes (the TensorRT plugin). K^T is transposed back to K. plugin_dtype: "auto" (FP16 in
    INT8 files, else Q's type: FP32 and FP16 files keep their precision), "float16", or
    "same" (Q's type). Inputs of another type than the plugin's are cast to it, and the output
    is cast back when the block's output type differs. Returns {"replaced": n, "blocks": [...],
    "plugin_dtype": "float16" or "as the file"}; raises ValueError when the graph has no such
    block."""
    onnx = importlib.import_module("onnx")
    helper = onnx.helper
    if plugin_dtype not in ("auto", "float16", "same"):
        raise InputError(f"plugin_dtype must be auto, float16 or same, not {plugin_dtype!r}")
    model = onnx.load(str(onnx_in))
    types, dims = _value_types(model)
    graph = model.graph
    blocks = _find_attention_blocks(graph, {k: len(v) for k, v in dims.items()})
    if not blocks:
        raise InputError(f"{onnx_in} has no MatMul-Softmax-MatMul attention to replace")
    if plugin_dtype == "auto":
        from .onnx_info import inspect_onnx

        fp16 = inspect_onnx(onnx_in).precision == "int8"
    else:
        fp16 = plugin_dtype == "float16"
    f16, f32 = onnx.TensorProto.FLOAT16, onnx.TensorProto.FLOAT
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
        # The plugin's type: FP16 for INT8 files, else Q's (0 when shape inference found none).
        target = f16 if fp16 else q_type
        inputs = []
        for role, name, source in (("Q", b.q, b.q), ("K", k, b.kt), ("V", b.v, b.v)):
            # In FP16 mode an input of unknown type is cast too (a Cast to its own type is free).
            if target and types.get(source, 0 if fp16 else target) != target:
                cast = f"{prefix}/{role}_cast"
                new_nodes.append(helper.make_node("Cast", [name], [cast], name=cast, to=target))
                name = cast
            inputs.append(name)
        out_type = types.get(b.out) or (f32 if fp16 else q_type)
        out = b.out if not target or out_type == target else f"{prefix}/out"
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
        if out != b.out:  # the consumers keep the type they had
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
    return {
        "replaced": len(blocks),
        "blocks": report,
        "plugin_dtype": "float16" if fp16 else "as the file",
    }
