"""Tiny ONNX graphs (onnx.helper, no torch) for the engine-builder tests.

Shared by tests/export/trt and tests/export/test_export_pipeline.py; they stand in for sllen's
exported files, which the builder only inspects (precision, plugin nodes, attention blocks)
before handing them to the fake TensorRT (fake_tensorrt.py).
"""

from __future__ import annotations

from pathlib import Path

import onnx
from onnx import TensorProto, helper


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
    # IR 10 (what torch's exporter writes), not onnx's newest: an older ONNX Runtime refuses a
    # newer IR, and these tests are about sllen's graphs, not ONNX Runtime's IR support.
    model = helper.make_model(graph, opset_imports=opsets, ir_version=10)
    if props:
        helper.set_model_props(model, props)
    onnx.save(model, str(path))
    return path
