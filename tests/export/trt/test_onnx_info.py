"""sllen.export.trt.onnx_info: what the builder reads from an ONNX file (no TensorRT needed).

ONNX fixtures are written with onnx.helper (tests/fakes/tiny_onnx.py; tiny graphs, no torch).
"""

from __future__ import annotations

import onnx
import pytest
from onnx import TensorProto, helper
from tiny_onnx import write_onnx

from sllen.export.trt.onnx_info import inspect_onnx


@pytest.mark.parametrize(
    "kwargs,precision,flavour",
    [
        ({}, "fp32", None),
        ({"fp16": True}, "fp16", None),
        ({"qdq": True}, "int8", None),
        ({"qdq": True, "props": {"sllen_int8_flavour": "TensorRT"}}, "int8", "tensorrt"),
        ({"props": {"sllen_precision": "FP16"}}, "fp16", None),
        ({"props": {"sllen_precision": "bogus"}}, "fp32", None),
    ],
)
def test_inspect_onnx_precision(tmp_path, kwargs, precision, flavour):
    info = inspect_onnx(write_onnx(tmp_path / "m.onnx", **kwargs))
    assert (info.precision, info.int8_flavour, info.attention_mode) == (
        precision,
        flavour,
        "decomposed",
    )


def test_inspect_onnx_finds_plugin_nodes_in_subgraphs(tmp_path):
    inner = helper.make_graph(
        [helper.make_node("SllenAttention", ["x"], ["y"], name="inner_attn", domain="sllen")],
        "then",
        [],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    cond = helper.make_tensor_value_info("c", TensorProto.BOOL, [])
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    out = helper.make_tensor_value_info("out", TensorProto.FLOAT, [1])
    node = helper.make_node("If", ["c"], ["out"], then_branch=inner, else_branch=inner)
    model = helper.make_model(
        helper.make_graph([node], "g", [cond, x], [out]),
        opset_imports=[helper.make_opsetid("", 19), helper.make_opsetid("sllen", 1)],
    )
    path = tmp_path / "if.onnx"
    onnx.save(model, str(path))
    info = inspect_onnx(path)
    assert info.plugin_nodes == ("inner_attn (SllenAttention)", "inner_attn (SllenAttention)")
    assert info.attention_mode == "plugin"


def test_cast_to_fp16_marks_fp16(tmp_path):
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 16, 16])
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3, 16, 16])
    nodes = [
        helper.make_node("Cast", ["input"], ["h"], to=TensorProto.FLOAT16),
        helper.make_node("Cast", ["h"], ["output"], to=TensorProto.FLOAT),
    ]
    model = helper.make_model(
        helper.make_graph(nodes, "g", [x], [y]), opset_imports=[helper.make_opsetid("", 19)]
    )
    onnx.save(model, str(tmp_path / "c.onnx"))
    assert inspect_onnx(tmp_path / "c.onnx").precision == "fp16"


def test_fp16_initializers_mark_fp16(tmp_path):
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 16, 16])
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3, 16, 16])
    w = helper.make_tensor("w", TensorProto.FLOAT16, [1], [1.0])
    nodes = [helper.make_node("Identity", ["input"], ["output"])]
    graph = helper.make_graph(nodes, "g", [x], [y], initializer=[w])
    onnx.save(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)]), tmp_path / "w.onnx"
    )
    assert inspect_onnx(tmp_path / "w.onnx").precision == "fp16"


@pytest.mark.parametrize("kind", ["truncated", "corrupt", "text"])
def test_a_file_that_is_not_onnx_is_one_line_of_bad_input(tmp_path, kind):
    # `sllen-export --from-onnx` on such a file ended in protobuf's DecodeError, reported as a
    # bug (exit 1); it is bad input naming the file (exit 2), like sllen-run's.
    from sllen.runtime.errors import InputError

    good = write_onnx(tmp_path / "m.onnx").read_bytes()
    data = {
        "truncated": good[: len(good) // 2],
        "corrupt": b"\xff" * 64 + good[64:],
        "text": b"notes, not a model\n",
    }[kind]
    path = tmp_path / f"{kind}.onnx"
    path.write_bytes(data)
    with pytest.raises(InputError, match="not an ONNX model, or a truncated or corrupt") as err:
        inspect_onnx(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)
