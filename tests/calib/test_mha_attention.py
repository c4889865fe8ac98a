"""The linear-memory attention form (``sllen-export --attention mha``: ONNX Runtime's
com.microsoft MultiHeadAttention) through calibration: found as HSBAB, left in float by INT8,
kept FP32 by the FP16 conversion (ONNX Runtime's flash kernel is FP32 only)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from sllen.calib.fp16 import convert_fp16
from sllen.calib.frames import synthetic_calibration_frames
from sllen.calib.graph import attention_nodes, ensure_node_names, run, session
from sllen.calib.int8 import quantize_int8

ort = pytest.importorskip("onnxruntime")
PROJECTIONS = {"q_proj", "k_proj", "v_proj", "out_proj"}


def mha_model(path, seed: int = 0) -> str:
    """conv3x3 -> relu -> 1x1 Q/K/V -> [B, N, C] -> MultiHeadAttention -> 1x1 out (+ skip) ->
    conv1x1 -> sigmoid; no node or weight named "hsbab", so only the pattern finds it."""
    rng = np.random.default_rng(seed)

    def w(name, shape):
        scale = np.sqrt(2.0 / int(np.prod(shape[1:])))
        return numpy_helper.from_array(
            (rng.standard_normal(shape) * scale).astype(np.float32), name
        )

    nodes = [
        helper.make_node("Conv", ["input", "w1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Shape", ["r1"], ["shape16"], name="shape"),
    ]
    for x in "qkv":
        nodes += [
            helper.make_node("Conv", ["r1", f"w{x}"], [f"{x}4"], name=f"{x}_proj"),
            helper.make_node("Reshape", [f"{x}4", "bcn"], [f"{x}3"], name=f"{x}_flat"),
            helper.make_node("Transpose", [f"{x}3"], [f"{x}t"], name=f"{x}_t", perm=[0, 2, 1]),
        ]
    nodes += [
        helper.make_node(
            "MultiHeadAttention", ["qt", "kt", "vt"], ["o3"], name="mha",
            domain="com.microsoft", num_heads=2, scale=float(1 / np.sqrt(8)),
        ),
        helper.make_node("Transpose", ["o3"], ["ot"], name="o_t", perm=[0, 2, 1]),
        helper.make_node("Reshape", ["ot", "shape16"], ["o4"], name="o_unflat"),
        helper.make_node("Conv", ["o4", "wo"], ["proj"], name="out_proj"),
        helper.make_node("Add", ["proj", "r1"], ["fused"], name="skip"),
        helper.make_node("Conv", ["fused", "wh"], ["c3"], name="head"),
        helper.make_node("Sigmoid", ["c3"], ["output"], name="sigmoid"),
    ]  # fmt: skip
    inits = [w("w1", (16, 3, 3, 3)), w("wo", (16, 16, 1, 1)), w("wh", (3, 16, 1, 1))]
    inits += [w(f"w{x}", (16, 16, 1, 1)) for x in "qkv"]
    inits.append(numpy_helper.from_array(np.array([0, 16, -1], np.int64), "bcn"))
    graph = helper.make_graph(
        nodes, "mha",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, "H", "W"])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 3, "H", "W"])],
        inits,
    )  # fmt: skip
    opsets = [helper.make_opsetid("", 19), helper.make_opsetid("com.microsoft", 1)]
    model = helper.make_model(graph, opset_imports=opsets)
    helper.set_model_props(model, {"sllen_attention": "mha", "sllen_precision": "fp32"})
    onnx.save(model, str(path))
    return str(path)


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> str:
    return mha_model(tmp_path_factory.mktemp("mha") / "mha.onnx")


@pytest.fixture(scope="module")
def frames() -> np.ndarray:
    return synthetic_calibration_frames(8, (64, 64), seed=0)


def _mha_input_types(path) -> set[int]:
    model = onnx.shape_inference.infer_shapes(onnx.load(str(path)))
    types = {v.name: v.type.tensor_type.elem_type for v in model.graph.value_info}
    (node,) = [n for n in model.graph.node if n.op_type == "MultiHeadAttention"]
    return {types[i] for i in node.input}


def test_attention_nodes_finds_the_fused_node_and_its_projections(model_path) -> None:
    found = set(attention_nodes(ensure_node_names(onnx.load(model_path))))
    assert {"mha", *PROJECTIONS} <= found
    assert not found & {"conv1", "head", "skip", "relu1"}


def test_int8_cpu_flavour_leaves_the_attention_float(model_path, frames, tmp_path) -> None:
    report = quantize_int8(
        model_path, tmp_path / "int8.onnx", frames, method="minmax", flavour="cpu",
        max_psnr_drop=50.0, threads=1,
    )  # fmt: skip
    assert PROJECTIONS <= {n for n, why in report["excluded"].items() if "attention" in why}
    q = onnx.load(report["path"])
    assert [n.op_type for n in q.graph.node if n.domain == "com.microsoft"] == [
        "MultiHeadAttention"
    ]
    assert any(n.op_type == "DequantizeLinear" for n in q.graph.node)  # conv1 is INT8
    assert _mha_input_types(report["path"]) == {TensorProto.FLOAT}
    out = run(session(report["path"], threads=1), frames[:2])
    ref = run(session(model_path, threads=1), frames[:2])
    assert out.shape == ref.shape and np.abs(out - ref).max() < 0.1


def test_fp16_keeps_the_attention_fp32(model_path, frames, tmp_path) -> None:
    report = convert_fp16(model_path, tmp_path / "fp16.onnx", frames[:4], threads=1)
    assert "FP32" in report["kept_fp32"]["mha"]
    assert _mha_input_types(report["path"]) == {TensorProto.FLOAT}
    assert report["psnr_db"] > 40.0
