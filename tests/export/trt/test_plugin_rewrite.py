"""sllen.export.trt.plugin_rewrite and the plugin node, on a CPU machine.

- the ONNX plugin node's name, version, namespace and attributes match what the C++ plugin
  creator (runtime/csrc/plugin) registers and reads;
- decomposed_to_plugin rewrites MatMul-Softmax-MatMul into the plugin node without changing
  the numbers (checked in ONNX Runtime through the reference function).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from tiny_onnx import write_onnx

from sllen.export.trt.onnx_info import inspect_onnx
from sllen.export.trt.plugin_rewrite import _attr, count_attention_blocks, decomposed_to_plugin

REPO = Path(__file__).resolve().parents[3]
PLUGIN_SRC = REPO / "runtime" / "csrc" / "plugin"


# --------------------------------------------------------------------------- plugin node


@pytest.fixture(scope="module")
def tiny():
    import torch

    from sllen.config import get_preset
    from sllen.model.sllen import SLLEN

    torch.manual_seed(0)
    return SLLEN(get_preset("tiny")).eval()


def _cpp_constant(name: str) -> str:
    text = (PLUGIN_SRC / "sllen_attention_plugin.h").read_text()
    return re.search(rf'{name} = "([^"]*)"', text).group(1)


def _creator_fields() -> dict[str, str]:
    text = (PLUGIN_SRC / "sllen_attention_plugin.cpp").read_text()
    body = text[text.index("AttentionPluginCreator::AttentionPluginCreator()") :]
    body = body[: body.index("}")]
    return dict(re.findall(r'emplace_back\("(\w+)", nullptr, PluginFieldType::k(\w+), 1\)', body))


@pytest.mark.slow
def test_plugin_node_matches_the_cpp_creator(tiny, export_once) -> None:
    from sllen.export import onnx_export as ox

    # Not "Attention": TensorRT's parser imports ONNX's own Attention op from 10.14 on.
    assert _cpp_constant("kPluginName") == ox.PLUGIN_OP_TYPE == "SllenAttention"
    assert _cpp_constant("kPluginVersion") == ox.PLUGIN_VERSION == "1"
    assert _cpp_constant("kPluginNamespace") == ox.PLUGIN_DOMAIN == "sllen"

    proto = onnx.load(str(export_once(tiny, attention="plugin")))
    (node,) = [n for n in proto.graph.node if n.domain == "sllen"]
    attrs = {a.name: a for a in node.attribute}
    # The parser turns INT attributes into kINT32 fields, FLOAT into kFLOAT32, STRING into kCHAR
    # and consumes plugin_version / plugin_namespace itself.
    kinds = {onnx.AttributeProto.INT: "INT32", onnx.AttributeProto.FLOAT: "FLOAT32"}
    node_fields = {
        name: kinds[a.type]
        for name, a in attrs.items()
        if name not in ("plugin_version", "plugin_namespace")
    }
    assert (
        node_fields
        == _creator_fields()
        == {
            "num_heads": "INT32",
            "head_dim": "INT32",
            "scale": "FLOAT32",
        }
    )
    values = {name: helper.get_attribute_value(a) for name, a in attrs.items()}
    assert values["plugin_version"] == b"1" and values["plugin_namespace"] == b"sllen"
    assert values["scale"] == 1.0  # 1/sqrt(d) is folded into Q
    assert values["head_dim"] == tiny.config.head_dim


@pytest.mark.parametrize(("preset", "head_dim"), [("edge", 64), ("paper", 512)])
def test_shipped_presets_have_head_sizes_the_kernel_supports(preset, head_dim) -> None:
    from sllen.config import get_preset
    from sllen.runtime.attention_kernel import SUPPORTED_HEAD_DIMS

    assert get_preset(preset).head_dim == head_dim and head_dim in SUPPORTED_HEAD_DIMS


# --------------------------------------------------------------------------- graph rewrite


def _run(path: Path, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    import onnxruntime as ort

    from sllen.export.onnx_export import attach_reference_attention

    proto = attach_reference_attention(onnx.load(str(path)))
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(proto.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


@pytest.mark.parametrize("simplified", [False, True])
def test_exported_model_rewrites_to_the_plugin_with_the_same_output(
    tiny, export_once, tmp_path, simplified
) -> None:
    from sllen.export.simplify import simplify_onnx

    src = export_once(tiny)
    if simplified:  # onnxslim drops the K transpose: K^T comes straight from a Reshape
        simplify_onnx(src, tmp_path / "slim.onnx", threads=1)
        src = tmp_path / "slim.onnx"
    assert count_attention_blocks(src) == 1
    out = tmp_path / "model.plugin.onnx"
    report = decomposed_to_plugin(src, out)
    cfg = tiny.config
    assert report["replaced"] == 1
    assert report["blocks"][0]["num_heads"] == cfg.attention_heads
    assert report["blocks"][0]["head_dim"] == cfg.head_dim

    proto = onnx.load(str(out))
    info = inspect_onnx(out)
    assert info.attention_mode == "plugin" and info.metadata["sllen_attention"] == "plugin"
    softmax_axes = [_attr(n, "axis") for n in proto.graph.node if n.op_type == "Softmax"]
    assert softmax_axes == []  # the class softmax is explicit ops (hseb.channel_softmax)
    assert count_attention_blocks(out) == 0
    onnx.checker.check_model(proto)

    x = np.random.default_rng(0).random((1, 3, 48, 64), dtype=np.float32) * 0.3
    (want,) = _run(src, {"input": x})
    (got,) = _run(out, {"input": x})
    np.testing.assert_allclose(got, want, atol=1e-5)


def _attention_graph(path: Path, *, fp16_softmax: bool, scale: float | None) -> Path:
    """FP16 Q/K^T/V with the softmax in FP32 between Casts and a scalar Mul, as an FP16 file
    keeps an overflow-prone softmax; K^T not produced by a Transpose."""
    f16, f32 = TensorProto.FLOAT16, TensorProto.FLOAT
    q = helper.make_tensor_value_info("q", f16, ["B", 2, "N", 64])
    kt = helper.make_tensor_value_info("kt", f16, ["B", 2, 64, "N"])
    v = helper.make_tensor_value_info("v", f16, ["B", 2, "N", 64])
    y = helper.make_tensor_value_info("y", f16, ["B", 2, "N", 64])
    nodes, inits, last = (
        [helper.make_node("MatMul", ["q", "kt"], ["s"], name="/attn/MatMul")],
        [],
        "s",
    )
    if fp16_softmax:
        nodes.append(helper.make_node("Cast", [last], ["s32"], name="/attn/Cast", to=f32))
        last = "s32"
    if scale is not None:
        inits.append(helper.make_tensor("c", f32 if fp16_softmax else f16, [], [scale]))
        nodes.append(helper.make_node("Mul", [last, "c"], ["sc"], name="/attn/Mul"))
        last = "sc"
    nodes.append(helper.make_node("Softmax", [last], ["p"], name="/attn/Softmax", axis=-1))
    last = "p"
    if fp16_softmax:
        nodes.append(helper.make_node("Cast", [last], ["p16"], name="/attn/Cast_1", to=f16))
        last = "p16"
    nodes.append(helper.make_node("MatMul", [last, "v"], ["y"], name="/attn/MatMul_1"))
    graph = helper.make_graph(nodes, "attn", [q, kt, v], [y], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)], ir_version=10)
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize(("fp16_softmax", "scale"), [(True, 0.125), (False, None)])
def test_rewrite_through_casts_and_scale(tmp_path, fp16_softmax, scale) -> None:
    src = _attention_graph(tmp_path / "a.onnx", fp16_softmax=fp16_softmax, scale=scale)
    out = tmp_path / "a.plugin.onnx"
    report = decomposed_to_plugin(src, out)
    assert report["blocks"] == [
        {"softmax": "/attn/Softmax", "num_heads": 2, "head_dim": 64, "scale": scale or 1.0}
    ]
    proto = onnx.load(str(out))
    transpose, plugin = proto.graph.node
    assert (transpose.op_type, list(transpose.input)) == ("Transpose", ["kt"])
    assert list(_attr(transpose, "perm")) == [0, 1, 3, 2]  # K = transpose(K^T)
    assert (plugin.op_type, list(plugin.input)) == (
        "SllenAttention",
        ["q", transpose.output[0], "v"],
    )
    assert list(plugin.output) == ["y"]  # casts and Mul folded; FP16 in, FP16 out
    # What the plugin node computes, against ONNX Runtime on the original graph.
    from sllen.runtime.attention_kernel import reference_attention

    rng = np.random.default_rng(1)
    feeds = {
        "q": rng.standard_normal((1, 2, 40, 64)).astype(np.float16),
        "kt": rng.standard_normal((1, 2, 64, 40)).astype(np.float16),
        "v": rng.standard_normal((1, 2, 40, 64)).astype(np.float16),
    }
    (want,) = _run(src, feeds)
    k = np.swapaxes(feeds["kt"], -1, -2)
    got = reference_attention(feeds["q"], k, feeds["v"], _attr(plugin, "scale"))
    np.testing.assert_allclose(got, want.astype(np.float64), atol=3e-3)
    # The FP16 plugin file itself runs in ONNX Runtime through the reference function, as
    # engine parity and the CPU checks run it (its FP32 scale once broke the FP16 Mul).
    (through_file,) = _run(out, feeds)
    assert through_file.dtype == np.float16
    np.testing.assert_allclose(through_file, want, atol=1e-2)


def test_rewrite_refuses_a_graph_without_attention(tmp_path) -> None:
    src = write_onnx(tmp_path / "plain.onnx")
    assert count_attention_blocks(src) == 0
    with pytest.raises(ValueError, match="no MatMul-Softmax-MatMul"):
        decomposed_to_plugin(src, tmp_path / "x.onnx")


def _int8_attention_graph(path: Path) -> Path:
    """An INT8 file's attention: Q, K^T, V out of DequantizeLinear (FP32), the MatMuls and the
    softmax left in float between them, and an FP32 consumer (Relu) after the block."""
    f32 = TensorProto.FLOAT
    names = ("q", "kt", "v")
    shapes = {"q": ["B", 2, "N", 64], "kt": ["B", 2, 64, "N"], "v": ["B", 2, "N", 64]}
    inputs = [helper.make_tensor_value_info(f"{n}_in", f32, shapes[n]) for n in names]
    inits = [
        helper.make_tensor("s", f32, [], [0.05]),
        helper.make_tensor("z", TensorProto.INT8, [], [0]),
    ]
    nodes = []
    for n in names:
        nodes += [
            helper.make_node("QuantizeLinear", [f"{n}_in", "s", "z"], [f"{n}_q"], name=f"/{n}/Q"),
            helper.make_node("DequantizeLinear", [f"{n}_q", "s", "z"], [n], name=f"/{n}/DQ"),
        ]
    nodes += [
        helper.make_node("MatMul", ["q", "kt"], ["sc"], name="/attn/MatMul"),
        helper.make_node("Softmax", ["sc"], ["p"], name="/attn/Softmax", axis=-1),
        helper.make_node("MatMul", ["p", "v"], ["y"], name="/attn/MatMul_1"),
        helper.make_node("Relu", ["y"], ["out"], name="/after/Relu"),
    ]
    out = helper.make_tensor_value_info("out", f32, ["B", 2, "N", 64])
    graph = helper.make_graph(nodes, "int8_attn", inputs, [out], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)], ir_version=10)
    helper.set_model_props(model, {"sllen_precision": "int8"})
    onnx.save(model, str(path))
    return path


def test_int8_file_feeds_the_plugin_fp16(tmp_path) -> None:
    # INT8 engines: the plugin gets FP16 (its tensor-core path) between Casts, and the FP32
    # consumer after the block still reads FP32 under the block's output name.
    src = _int8_attention_graph(tmp_path / "int8.onnx")
    out = tmp_path / "int8.plugin.onnx"
    report = decomposed_to_plugin(src, out)
    assert report["replaced"] == 1 and report["plugin_dtype"] == "float16"
    proto = onnx.load(str(out))
    onnx.checker.check_model(proto)
    by_name = {n.name: n for n in proto.graph.node}
    plugin = by_name["/sllen_attention_0/SllenAttention"]
    casts = {
        n.name: (list(n.input), list(n.output), _attr(n, "to"))
        for n in proto.graph.node
        if n.op_type == "Cast"
    }
    f16, f32 = TensorProto.FLOAT16, TensorProto.FLOAT
    assert casts == {
        "/sllen_attention_0/Q_cast": (["q"], ["/sllen_attention_0/Q_cast"], f16),
        "/sllen_attention_0/K_cast": (
            ["/sllen_attention_0/K"],
            ["/sllen_attention_0/K_cast"],
            f16,
        ),
        "/sllen_attention_0/V_cast": (["v"], ["/sllen_attention_0/V_cast"], f16),
        "/sllen_attention_0/out_cast": (["/sllen_attention_0/out"], ["y"], f32),
    }
    assert list(plugin.input) == [
        "/sllen_attention_0/Q_cast",
        "/sllen_attention_0/K_cast",
        "/sllen_attention_0/V_cast",
    ]
    assert list(plugin.output) == ["/sllen_attention_0/out"]
    assert list(by_name["/after/Relu"].input) == ["y"]  # the consumer is untouched
    # Q/DQ nodes stay where they were.
    assert sum(n.op_type == "DequantizeLinear" for n in proto.graph.node) == 3

    # The numbers: ONNX Runtime on the INT8 graph against what the FP16 plugin computes
    # (dequantized inputs rounded to FP16, the double-precision reference, FP16 output).
    from sllen.runtime.attention_kernel import reference_attention

    rng = np.random.default_rng(2)
    feeds = {
        # Q with 1/sqrt(d) folded in, as sllen's export writes it: logits of unit spread.
        "q_in": (rng.standard_normal((1, 2, 40, 64)) / 8).astype(np.float32),
        "kt_in": rng.standard_normal((1, 2, 64, 40)).astype(np.float32),
        "v_in": rng.standard_normal((1, 2, 40, 64)).astype(np.float32),
    }
    (want,) = _run(src, feeds)

    def dq(x):
        return (np.clip(np.round(x / 0.05), -128, 127) * 0.05).astype(np.float16)

    q, kt, v = (dq(feeds[f"{n}_in"]) for n in ("q", "kt", "v"))
    got = reference_attention(q, np.swapaxes(kt, -1, -2), v, _attr(plugin, "scale"))
    got = np.maximum(got.astype(np.float16).astype(np.float32), 0)
    np.testing.assert_allclose(got, want, atol=3e-3)


@pytest.mark.parametrize(("dtype", "casts"), [("same", 0), ("float16", 4)])
def test_plugin_dtype_can_be_chosen(tmp_path, dtype, casts) -> None:
    src = _int8_attention_graph(tmp_path / "int8.onnx")
    out = tmp_path / "x.onnx"
    report = decomposed_to_plugin(src, out, plugin_dtype=dtype)
    assert report["plugin_dtype"] == ("float16" if dtype == "float16" else "as the file")
    assert sum(n.op_type == "Cast" for n in onnx.load(str(out)).graph.node) == casts
    with pytest.raises(ValueError, match="plugin_dtype"):
        decomposed_to_plugin(src, out, plugin_dtype="int8")


def test_fp32_file_keeps_an_fp32_plugin(tmp_path) -> None:
    src = write_onnx(tmp_path / "fp32.onnx", attention=True)
    out = tmp_path / "fp32.plugin.onnx"
    assert decomposed_to_plugin(src, out)["plugin_dtype"] == "as the file"
    assert not [n for n in onnx.load(str(out)).graph.node if n.op_type == "Cast"]
