"""Graph helpers: which layers read the network's input."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from quant_graphs import conv_model

from sllen.calib.graph import input_nodes


def test_input_layer_is_the_first_conv(tmp_path) -> None:
    assert input_nodes(onnx.load(conv_model(tmp_path / "convs.onnx"))) == ["conv1"]


def test_input_nodes_follow_every_data_path_to_a_weighted_layer() -> None:
    # i -> Shape (not data); i -> Mul -> Conv a; i -> Conv b; a + b -> Conv c -> o
    w = numpy_helper.from_array(np.ones((3, 3, 1, 1), np.float32), "w")
    two = numpy_helper.from_array(np.array(2.0, np.float32), "two")
    nodes = [
        helper.make_node("Shape", ["i"], ["shape"], name="shape"),
        helper.make_node("Mul", ["i", "two"], ["scaled"], name="scale"),
        helper.make_node("Conv", ["scaled", "w"], ["a"], name="conv_a"),
        helper.make_node("Conv", ["i", "w"], ["b"], name="conv_b"),
        helper.make_node("Add", ["a", "b"], ["ab"], name="add"),
        helper.make_node("Conv", ["ab", "w"], ["o"], name="conv_c"),
    ]
    inp, out = (helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 3, 4, 4]) for n in "io")
    graph = helper.make_graph(nodes, "g", [inp], [out], [w, two])
    assert input_nodes(helper.make_model(graph)) == ["scale", "conv_a", "conv_b"]


def test_weights_listed_as_inputs_are_not_the_input(tmp_path) -> None:
    model = onnx.load(conv_model(tmp_path / "convs.onnx"))
    for init in model.graph.initializer:  # as IR < 4 exporters wrote them
        model.graph.input.append(
            helper.make_tensor_value_info(init.name, TensorProto.FLOAT, list(init.dims))
        )
    assert input_nodes(model) == ["conv1"]
