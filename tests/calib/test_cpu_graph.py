"""CPU INT8 flavour: the graph ONNX Runtime runs is integer from one quantized conv to the next.

Tiny graphs (32x32 frames), each test well under a second or two: the HSEB-like chain
conv -> channel softmax (ReduceMax/Sub/Exp/ReduceSum/Div, as the exporter writes it) -> conv,
and an upsampling whose target size comes from Shape of a skip tensor, as in SLLEN's decoders.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from sllen.calib.cpu_graph import (
    channel_softmax_to_softmax,
    optimize_for_ort_cpu,
    prune_dead_nodes,
    shapes_from_quantized,
    unquantize_float_inputs,
)
from sllen.calib.int8 import compute_ranges, prepare_model, quantize_with_ranges

ort = pytest.importorskip("onnxruntime")


def _w(rng, name: str, shape: tuple[int, ...]) -> onnx.TensorProto:
    fan_in = int(np.prod(shape[1:]))
    w = rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)
    return numpy_helper.from_array(w.astype(np.float32), name)


def hseb_like(axis: int = 1) -> onnx.ModelProto:
    """conv3x3 -> relu -> conv1x1 (5 class logits) -> softmax over ``axis`` written out ->
    conv3x3 -> relu -> maxpool -> conv3x3 -> relu -> bilinear Resize to Shape(skip) ->
    Concat with the skip -> conv3x3 -> relu -> conv1x1 -> output."""
    rng = np.random.default_rng(0)
    ax = numpy_helper.from_array(np.array([axis], np.int64), "axes")
    nodes = [
        helper.make_node("Conv", ["input", "w0"], ["c0"], name="conv0", pads=[1] * 4),
        helper.make_node("Relu", ["c0"], ["r0"], name="relu0"),
        helper.make_node("Conv", ["r0", "w1"], ["logits"], name="logits"),
        helper.make_node("ReduceMax", ["logits", "axes"], ["mx"], name="rmax", keepdims=1),
        helper.make_node("Sub", ["logits", "mx"], ["sh"], name="sub"),
        helper.make_node("Exp", ["sh"], ["ex"], name="exp"),
        helper.make_node("ReduceSum", ["ex", "axes"], ["sm"], name="rsum", keepdims=1),
        helper.make_node("Div", ["ex", "sm"], ["prob"], name="div"),
        helper.make_node("Conv", ["prob", "w2"], ["c2"], name="conv2", pads=[1] * 4),
        helper.make_node("Relu", ["c2"], ["skip"], name="relu2"),
        helper.make_node(
            "MaxPool", ["skip"], ["p"], name="pool", kernel_shape=[2, 2], strides=[2, 2]
        ),  # fmt: skip
        helper.make_node("Conv", ["p", "w3"], ["c3"], name="conv3", pads=[1] * 4),
        helper.make_node("Relu", ["c3"], ["low"], name="relu3"),
        helper.make_node("Shape", ["skip"], ["shape"], name="shape"),
        helper.make_node("Resize", ["low", "", "", "shape"], ["up"], name="up", mode="linear"),
        helper.make_node("Concat", ["up", "skip"], ["cat"], name="cat", axis=1),
        helper.make_node("Conv", ["cat", "w4"], ["c4"], name="conv4", pads=[1] * 4),
        helper.make_node("Relu", ["c4"], ["r4"], name="relu4"),
        helper.make_node("Conv", ["r4", "w5"], ["output"], name="head"),
    ]
    graph = helper.make_graph(
        nodes, "hseb_like",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, "H", "W"])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 3, "H", "W"])],
        [_w(rng, "w0", (8, 3, 3, 3)), _w(rng, "w1", (5, 8, 1, 1)), _w(rng, "w2", (8, 5, 3, 3)),
         _w(rng, "w3", (8, 8, 3, 3)), _w(rng, "w4", (8, 16, 3, 3)), _w(rng, "w5", (3, 8, 1, 1)),
         ax],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
    model.ir_version = 9
    return model


def _run(model: onnx.ModelProto, x: np.ndarray, optimized: str | None = None) -> np.ndarray:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.log_severity_level = 3
    if optimized:  # the graph ONNX Runtime really runs, after all its fusions
        so.optimized_model_filepath = optimized
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return sess.run(None, {"input": x})[0]


@pytest.fixture(scope="module")
def frames() -> np.ndarray:
    return np.random.default_rng(1).random((4, 3, 32, 32), dtype=np.float32)


@pytest.fixture(scope="module")
def cpu_int8(frames) -> tuple[onnx.ModelProto, onnx.ModelProto]:
    """(prepared FP32 model, its CPU-flavour Q/DQ model) with MinMax ranges."""
    model = prepare_model(hseb_like())
    ranges = compute_ranges(model, frames, "minmax")
    return model, quantize_with_ranges(model, ranges, "minmax", "cpu", {"head"})


def test_channel_softmax_becomes_one_softmax_with_the_same_output(frames) -> None:
    model = hseb_like()
    out, names = channel_softmax_to_softmax(model)
    ops = [n.op_type for n in out.graph.node]
    assert names == ["div"] and ops.count("Softmax") == 1
    assert not {"ReduceMax", "Sub", "Exp", "ReduceSum", "Div"} & set(ops)
    sm = next(n for n in out.graph.node if n.op_type == "Softmax")
    assert sm.output[0] == "prob" and helper.get_attribute_value(sm.attribute[0]) == 1
    np.testing.assert_allclose(_run(out, frames), _run(model, frames), rtol=1e-5, atol=1e-6)
    assert len(model.graph.node) == 19  # the input model is left alone


def test_softmax_over_another_axis_is_not_rewritten() -> None:
    out, names = channel_softmax_to_softmax(hseb_like(axis=2))
    assert names == [] and "Softmax" not in {n.op_type for n in out.graph.node}


def test_cpu_flavour_runs_integer_from_conv_to_conv(cpu_int8, frames, tmp_path) -> None:
    """In the graph ONNX Runtime optimizes and runs: the softmax is QLinearSoftmax fed by a
    QLinearConv and feeding one, no float op of the softmax is left, no DequantizeLinear
    survives just for a Shape, and the 7-bit weights (reduce_range) are in [-64, 64]."""
    model, q = cpu_int8
    opt = tmp_path / "opt.onnx"
    y8 = _run(q, frames, str(opt))
    g = onnx.load(str(opt)).graph
    prod = {o: n for n in g.node for o in n.output}
    cons: dict[str, list[onnx.NodeProto]] = {}
    for n in g.node:
        for i in n.input:
            cons.setdefault(i, []).append(n)
    ops = [n.op_type for n in g.node]
    # Five convolutions are quantized; conv4 feeds only the float head, which reads its float
    # output (unquantize_float_inputs), so conv4 computes in float: four QLinearConv.
    assert ops.count("QLinearConv") == 4 and ops.count("QLinearSoftmax") == 1
    assert not {"Softmax", "Exp", "ReduceMax", "ReduceSum", "Sub", "Div"} & set(ops)
    sm = next(n for n in g.node if n.op_type == "QLinearSoftmax")
    assert prod[sm.input[0]].op_type == "QLinearConv"
    assert [c.op_type for c in cons[sm.output[0]]] == ["QLinearConv"]
    for n in g.node:
        if n.op_type == "DequantizeLinear":
            assert {c.op_type for c in cons.get(n.output[0], [])} != {"Shape"}, n.name
    weights = [
        numpy_helper.to_array(t) for t in q.graph.initializer if t.data_type == TensorProto.INT8
    ]
    assert max(int(np.abs(w.astype(np.int32)).max()) for w in weights if w.size > 8) <= 64
    y32 = _run(model, frames)
    assert np.abs(y8 - y32).max() < 0.1 * np.abs(y32).max()  # close to FP32, not equal


def test_shapes_read_the_quantized_tensor_and_orphans_go() -> None:
    """Shape(DequantizeLinear(x)) -> Shape(x); a DequantizeLinear read by nothing else goes."""
    s = numpy_helper.from_array(np.array(0.1, np.float32), "s")
    z = numpy_helper.from_array(np.array(0, np.uint8), "z")
    nodes = [
        helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xf"], name="dq"),
        helper.make_node("Shape", ["xf"], ["shape"], name="shape"),
    ]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("xq", TensorProto.UINT8, [1, 2, 4, 4])],
        [helper.make_tensor_value_info("shape", TensorProto.INT64, [4])], [s, z],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
    assert shapes_from_quantized(model) == 1 and model.graph.node[1].input[0] == "xq"
    assert prune_dead_nodes(model) == 1 and [n.op_type for n in model.graph.node] == ["Shape"]
    out, info = optimize_for_ort_cpu(model)
    assert info == {"float_inputs": 0, "shapes_moved": 0, "pruned": 0} and out is not model


def _readers(model: onnx.ModelProto, name: str) -> list[onnx.NodeProto]:
    return [n for n in model.graph.node if name in n.input]


def _feeds(model: onnx.ModelProto, node_name: str) -> onnx.NodeProto:
    """The producer of ``node_name``'s first input."""
    node = next(n for n in model.graph.node if n.name == node_name)
    return next(n for n in model.graph.node if node.input[0] in n.output)


def test_float_layers_read_float_inputs_with_their_relu_kept(frames) -> None:
    """A layer moved back to float reads the float tensor, not an 8-bit copy, and the ReLU
    that the quantizer folded into the removed Q (uint8, zero point 0) is back in its place."""
    model = prepare_model(hseb_like())
    ranges = compute_ranges(model, frames, "minmax")
    q = quantize_with_ranges(model, ranges, "minmax", "cpu", {"logits", "head"})
    for name in ("logits", "head"):  # both read a ReLU's output in the float model
        relu = _feeds(q, name)
        assert relu.op_type == "Relu", name
        assert _feeds(q, relu.name).op_type == "Conv"  # the float conv output, not a DQ
    # conv2 stays quantized: it reads the softmax through Q/DQ.
    assert _feeds(q, "conv2").op_type == "DequantizeLinear"
    y32 = _run(model, frames)
    assert np.abs(_run(q, frames) - y32).max() < 0.1 * np.abs(y32).max()
    # Without the float model to read the folded ReLUs from, the pass is not run.
    plain = quantize_with_ranges(model, ranges, "minmax", "cpu", set())
    assert optimize_for_ort_cpu(plain, {"logits"})[1]["float_inputs"] == 0


def test_a_pair_read_by_a_quantized_layer_stays() -> None:
    """x -> Q -> DQ read by a float node and a quantized one: the pair stays; a pair read only
    by float nodes goes, and the float nodes read x."""
    s = numpy_helper.from_array(np.array(0.1, np.float32), "s")
    z = numpy_helper.from_array(np.array(0, np.uint8), "z")
    nodes = [
        helper.make_node("Sigmoid", ["input"], ["x"], name="act"),
        helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"], name="q"),
        helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xf"], name="dq"),
        helper.make_node("Neg", ["xf"], ["a"], name="float_a"),
        helper.make_node("Abs", ["xf"], ["b"], name="quantized_b"),
        helper.make_node("Add", ["a", "b"], ["output"], name="add"),
    ]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 2])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 2])], [s, z],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
    source = helper.make_model(
        helper.make_graph(nodes[:1], "src", graph.input, graph.output),
        opset_imports=[helper.make_opsetid("", 19)],
    )
    assert unquantize_float_inputs(model, {"float_a"}, source) == 0
    assert unquantize_float_inputs(model, {"float_a", "quantized_b"}, source) == 1
    assert [n.op_type for n in model.graph.node] == ["Sigmoid", "Neg", "Abs", "Add"]
    assert all(n.input[0] == "x" for n in model.graph.node[1:3])


def test_a_folded_clip_comes_back_with_its_bounds() -> None:
    """The quantizer folds a Clip(0, 6) into the Q and drops its bounds; removing the pair
    puts the Clip back with them, and the graph is valid."""
    s = numpy_helper.from_array(np.array(0.1, np.float32), "s")
    z = numpy_helper.from_array(np.array(0, np.uint8), "z")
    lo = numpy_helper.from_array(np.array(0.0, np.float32), "lo")
    hi = numpy_helper.from_array(np.array(6.0, np.float32), "hi")
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 2])
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 2])
    opset = [helper.make_opsetid("", 19)]
    source = helper.make_model(
        helper.make_graph(
            [helper.make_node("Neg", ["input"], ["n"], name="neg"),
             helper.make_node("Clip", ["n", "lo", "hi"], ["c"], name="clip"),
             helper.make_node("Abs", ["c"], ["output"], name="float_abs")],
            "src", [x], [y], [lo, hi],
        ), opset_imports=opset,
    )  # fmt: skip
    # What quantize_static leaves: the Neg writes the Clip's output name into the Q.
    model = helper.make_model(
        helper.make_graph(
            [helper.make_node("Neg", ["input"], ["c"], name="neg"),
             helper.make_node("QuantizeLinear", ["c", "s", "z"], ["cq"], name="q"),
             helper.make_node("DequantizeLinear", ["cq", "s", "z"], ["cf"], name="dq"),
             helper.make_node("Abs", ["cf"], ["output"], name="float_abs")],
            "q", [x], [y], [s, z],
        ), opset_imports=opset,
    )  # fmt: skip
    assert unquantize_float_inputs(model, {"float_abs"}, source) == 1
    assert [n.op_type for n in model.graph.node] == ["Neg", "Clip", "Abs"]
    onnx.checker.check_model(model, full_check=True)
    x_in = np.array([[-8.0, 1.0]], np.float32)
    np.testing.assert_array_equal(_run(model, x_in), [[6.0, 0.0]])
