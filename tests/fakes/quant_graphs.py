"""Tiny float ONNX graphs (onnx.helper, no torch) for the INT8 tests (tests/calib): small
enough to calibrate and quantize in milliseconds, shaped like SLLEN's conv/ReLU/Concat paths."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def conv_model(path, seed: int = 0) -> str:
    """input -> conv3x3 -> relu -> conv3x3 -> relu -> conv1x1 -> sigmoid -> output."""
    rng = np.random.default_rng(seed)

    def w(name, shape):
        fan_in = int(np.prod(shape[1:]))
        return numpy_helper.from_array(
            (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32), name
        )

    nodes = [
        helper.make_node("Conv", ["input", "w1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], name="conv2", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("Conv", ["r2", "w3"], ["c3"], name="head"),
        helper.make_node("Sigmoid", ["c3"], ["output"], name="sigmoid"),
    ]
    graph = helper.make_graph(
        nodes, "convs",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, "H", "W"])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 3, "H", "W"])],
        [w("w1", (8, 3, 3, 3)), w("w2", (8, 8, 3, 3)), w("w3", (3, 8, 1, 1))],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
    onnx.save(model, str(path))
    return str(path)


def concat_model(path) -> str:
    """input -> conv1 -> relu -> conv2 -> relu; concat(both relus) -> head conv -> output."""
    rng = np.random.default_rng(3)

    def w(name, shape):
        return numpy_helper.from_array((rng.standard_normal(shape) * 0.3).astype(np.float32), name)

    nodes = [
        helper.make_node("Conv", ["input", "w1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], name="conv2", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("Concat", ["r1", "r2"], ["cat"], name="cat", axis=1),
        helper.make_node("Conv", ["cat", "w3"], ["output"], name="head"),
    ]
    graph = helper.make_graph(
        nodes, "concat",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, "H", "W"])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 3, "H", "W"])],
        [w("w1", (4, 3, 3, 3)), w("w2", (4, 4, 3, 3)), w("w3", (3, 8, 1, 1))],
    )  # fmt: skip
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)]), str(path))
    return str(path)
