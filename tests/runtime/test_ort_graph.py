"""The ONNX Runtime backend's in-memory graph edits (sllen.runtime.backends.ort_graph)."""

from __future__ import annotations

import sys

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from sllen.runtime.backends.onnxruntime import OnnxRuntimeBackend, _edited_model  # noqa: E402
from sllen.runtime.backends.ort_graph import (  # noqa: E402
    SPLIT_PREFIX,
    drop_outputs,
    split_concat_convs,
)
from sllen.runtime.bundled import bundled_onnx  # noqa: E402


def run(proto, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
    s = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return s.run(None, feed)


def concat_conv_graph(quantized_weights: bool = False):
    """a [1,5,H,W] and b [1,3,H,W] -> Relu(Conv(Concat(a, b), W, B)), W [4,8,3,3]."""
    rng = np.random.default_rng(0)
    w = rng.standard_normal((4, 8, 3, 3)).astype(np.float32)
    inits = [numpy_helper.from_array(rng.standard_normal(4).astype(np.float32), "B")]
    nodes = [helper.make_node("Concat", ["a", "b"], ["cat"], axis=1)]
    if quantized_weights:  # weights through DequantizeLinear, as in a Q/DQ INT8 file
        inits += [
            numpy_helper.from_array(np.clip(w * 40, -127, 127).astype(np.int8), "Wq"),
            numpy_helper.from_array(np.array(0.025, np.float32), "Ws"),
        ]
        nodes.append(helper.make_node("DequantizeLinear", ["Wq", "Ws"], ["W"]))
    else:
        inits.append(numpy_helper.from_array(w, "W"))
    nodes += [
        helper.make_node("Conv", ["cat", "W", "B"], ["conv"], name="c", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["conv"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [
            helper.make_tensor_value_info("a", TensorProto.FLOAT, [1, 5, "h", "w"]),
            helper.make_tensor_value_info("b", TensorProto.FLOAT, [1, 3, "h", "w"]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, "h", "w"])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=10)


def test_split_concat_conv_gives_the_same_result() -> None:
    model = concat_conv_graph()
    rng = np.random.default_rng(1)
    feed = {
        "a": rng.random((1, 5, 12, 16), dtype=np.float32),
        "b": rng.random((1, 3, 12, 16), dtype=np.float32),
    }
    before = run(model, feed)[0]
    assert split_concat_convs(model) == 1
    onnx.checker.check_model(model)
    ops = [n.op_type for n in model.graph.node]
    assert "Concat" not in ops and ops.count("Conv") == 2 and "Add" in ops
    assert {t.name for t in model.graph.initializer} == {
        "B",
        f"{SPLIT_PREFIX}c_w0",
        f"{SPLIT_PREFIX}c_w1",
    }
    np.testing.assert_allclose(run(model, feed)[0], before, atol=1e-5)


def test_quantized_weights_are_left_alone() -> None:
    model = concat_conv_graph(quantized_weights=True)
    assert split_concat_convs(model) == 0
    assert [n.op_type for n in model.graph.node].count("Concat") == 1


def test_bundled_model_edits_keep_its_outputs() -> None:
    model = onnx.load(bundled_onnx())
    x = (np.random.default_rng(2).random((1, 3, 64, 96), dtype=np.float32)) * 0.3
    image, segmentation = run(model, {"input": x})
    assert split_concat_convs(model) == 8  # the eight decoder stages of SSaN and LLEmN
    split = run(model, {"input": x})
    np.testing.assert_allclose(split[0], image, atol=1e-5)
    np.testing.assert_allclose(split[1], segmentation, atol=1e-4)
    assert drop_outputs(model, ["output"]) == ["segmentation"]
    assert [o.name for o in model.graph.output] == ["output"]
    assert "segmentation" in {v.name for v in model.graph.value_info}
    (only,) = run(model, {"input": x})
    np.testing.assert_allclose(only, image, atol=1e-5)


def test_backend_opens_segmentation_when_a_call_asks() -> None:
    x = (np.random.default_rng(3).random((1, 3, 48, 64), dtype=np.float32)) * 0.3
    image, segmentation = run(onnx.load(bundled_onnx()), {"input": x})
    with OnnxRuntimeBackend(device="cpu", threads=1) as b:
        assert b.info.has_segmentation
        assert b.output_names == ["output"]  # the lean session: no segmentation output
        np.testing.assert_allclose(b.infer(x).image, image, atol=1e-5)
        out = b.infer(x, segmentation=True)
        np.testing.assert_allclose(out.image, image, atol=1e-5)
        assert out.segmentation is not None
        np.testing.assert_allclose(out.segmentation, segmentation, atol=1e-4)


def test_backend_without_onnx_opens_the_file_as_is(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnx", None)  # `import onnx` raises ImportError
    assert _edited_model(bundled_onnx(), keep_segmentation=False) == (None, [])
    x = (np.random.default_rng(4).random((1, 3, 32, 48), dtype=np.float32)) * 0.3
    with OnnxRuntimeBackend(device="cpu", threads=1) as b:
        assert b.output_names == ["output", "segmentation"]
        out = b.infer(x, segmentation=True)
        assert out.segmentation is not None and out.segmentation.shape[2:] == (32, 48)
