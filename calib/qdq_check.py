"""What an INT8 Q/DQ ONNX file contains, and whether TensorRT can take it.

``inspect_qdq(path)`` reads the graph (no inference) and returns a dict:

- ``precision``, ``flavour``: the file's sllen_precision / sllen_int8_flavour metadata;
- ``quantize_nodes``, ``dequantize_nodes``: counts;
- ``activation_types``: element types of the quantized activations ("int8", "uint8", ...);
- ``zero_points_all_zero`` and ``nonzero_zero_points`` (tensor names): TensorRT needs all 0;
- ``weights``: per weight DequantizeLinear: tensor, axis (the attribute, ONNX default 1),
  scale length, the weight's output channels (its dim 0), ``per_channel`` (a scale per output
  channel on axis 0); ``weights_per_channel``: all of them are;
- ``quantized_layers``: Conv/ConvTranspose/Gemm/MatMul nodes whose data and weight inputs
  (both operands of a MatMul) come from DequantizeLinear, i.e. INT8 layers; ``float_layers``:
  the others (FP16/FP32; one may read a dequantized activation, it still computes in float);
- ``attention_quantized`` and ``output_quantized``: whether any of HSBAB's layers
  (sllen.calib.graph.attention_nodes) or of the output layers is an INT8 layer;
  ``float_dtypes``: element types of the float initializers (FP16 parts show as "float16");
- ``tensorrt_ok`` and ``problems``: the TensorRT rules (int8 only, zero points 0, per-channel
  weights); ``require_tensorrt_qdq(path)`` raises a one-line ValueError listing the problems,
  for the engine builder (it refuses the ``cpu`` flavour this way).
"""

from __future__ import annotations

import os

import numpy as np
import onnx
from onnx import numpy_helper

from sllen.calib.graph import (
    attention_nodes,
    get_metadata,
    load_model,
    output_nodes,
    producers,
)
from sllen.runtime.errors import InputError

__all__ = ["inspect_qdq", "require_tensorrt_qdq"]

_WEIGHTED = {"Conv", "ConvTranspose", "Gemm", "MatMul"}
_QDQ = {"QuantizeLinear", "DequantizeLinear"}


def _type_name(data_type: int) -> str:
    return onnx.helper.tensor_dtype_to_np_dtype(data_type).name


def _constants(model: onnx.ModelProto) -> dict[str, onnx.TensorProto]:
    consts = {t.name: t for t in model.graph.initializer}
    for n in model.graph.node:
        if n.op_type == "Constant":
            for a in n.attribute:
                if a.name == "value":
                    consts[n.output[0]] = a.t
    return consts


def inspect_qdq(onnx_path: str | os.PathLike | onnx.ModelProto) -> dict:
    """Summary of the Q/DQ nodes of an ONNX model (see the module docstring)."""
    model = load_model(onnx_path)
    meta = get_metadata(model)
    consts = _constants(model)
    prod = producers(model)
    nodes = list(model.graph.node)
    qs = [n for n in nodes if n.op_type == "QuantizeLinear"]
    dqs = [n for n in nodes if n.op_type == "DequantizeLinear"]

    act_types: set[str] = set()
    nonzero: list[str] = []
    for n in qs + dqs:
        zp = consts.get(n.input[2]) if len(n.input) > 2 and n.input[2] else None
        if n.op_type == "DequantizeLinear" and n.input[0] in consts:
            zp_type = consts[n.input[0]].data_type  # weight: type of the stored integers
        elif zp is not None:
            zp_type = zp.data_type
            if n.op_type == "QuantizeLinear" or n.input[0] not in consts:
                act_types.add(_type_name(zp_type))
        else:
            zp_type = onnx.TensorProto.UINT8  # ONNX default without a zero point
            if n.op_type == "QuantizeLinear":
                act_types.add("uint8")
        if zp is not None and np.any(numpy_helper.to_array(zp) != 0):
            nonzero.append(n.input[2])

    weights = {}
    for n in dqs:
        w = consts.get(n.input[0])
        if w is None:
            continue
        scale = consts.get(n.input[1])
        scale_len = int(np.asarray(numpy_helper.to_array(scale)).size) if scale is not None else 0
        axis = next((a.i for a in n.attribute if a.name == "axis"), 1)
        dims = list(w.dims)
        if len(dims) < 2:  # a bias or a scalar: not a weight matrix / kernel
            continue
        out_ch = dims[0]
        weights[n.name] = {
            "tensor": n.input[0],
            "dtype": _type_name(w.data_type),
            "axis": axis,
            "scale_len": scale_len,
            "out_channels": out_ch,
            "per_channel": axis == 0 and scale_len == out_ch,
        }

    def from_dq(name: str) -> bool:
        src = prod.get(name)
        return src is not None and src.op_type == "DequantizeLinear"

    def is_quantized(node: onnx.NodeProto) -> bool:
        # INT8 layer: data and weight (both matmul operands) come from DequantizeLinear; a
        # layer with only a dequantized input and float weights computes in float.
        return len(node.input) >= 2 and from_dq(node.input[0]) and from_dq(node.input[1])

    layers = [n for n in nodes if n.op_type in _WEIGHTED]
    quantized = [n.name for n in layers if is_quantized(n)]
    floating = [n.name for n in layers if not is_quantized(n)]
    attn = set(attention_nodes(model))
    out = set(output_nodes(model))

    def any_quantized(names: set[str]) -> bool:
        return any(n.name in names and is_quantized(n) for n in layers)

    float_dtypes = sorted(
        {
            _type_name(t.data_type)
            for t in model.graph.initializer
            if t.data_type in (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16)
        }
    )
    problems = []
    if not qs and not dqs:
        problems.append("no QuantizeLinear/DequantizeLinear nodes: not an INT8 Q/DQ model")
    if act_types - {"int8"}:
        problems.append(f"activations quantized as {sorted(act_types)}: TensorRT needs int8")
    if nonzero:
        problems.append(f"{len(nonzero)} non-zero zero points: TensorRT needs symmetric Q/DQ")
    not_pc = [v["tensor"] for v in weights.values() if not v["per_channel"]]
    if not_pc:
        problems.append(f"{len(not_pc)} weights not per-channel on axis 0")
    return {
        "precision": meta.get("sllen_precision"),
        "flavour": meta.get("sllen_int8_flavour"),
        "quantize_nodes": len(qs),
        "dequantize_nodes": len(dqs),
        "activation_types": sorted(act_types),
        "zero_points_all_zero": not nonzero,
        "nonzero_zero_points": sorted(set(nonzero)),
        "weights": weights,
        "weights_per_channel": bool(weights) and not not_pc,
        "quantized_layers": quantized,
        "float_layers": floating,
        "attention_nodes": sorted(attn),
        "attention_quantized": any_quantized(attn),
        "output_nodes": sorted(out),
        "output_quantized": any_quantized(out),
        "float_dtypes": float_dtypes,
        "tensorrt_ok": not problems,
        "problems": problems,
    }


def require_tensorrt_qdq(onnx_path: str | os.PathLike | onnx.ModelProto) -> dict:
    """``inspect_qdq``, raising a one-line ValueError when TensorRT cannot use the model."""
    info = inspect_qdq(onnx_path)
    if not info["tensorrt_ok"]:
        where = onnx_path if not isinstance(onnx_path, onnx.ModelProto) else "model"
        flavour = f" (flavour {info['flavour']})" if info["flavour"] else ""
        raise InputError(
            f"{where}{flavour} is not a TensorRT INT8 model: " + "; ".join(info["problems"])
        )
    return info
