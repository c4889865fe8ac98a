"""Q/DQ placement of the two INT8 flavours (sllen.calib.qdq): where the TensorRT flavour puts
Q/DQ, what the CPU flavour keeps quantized, and that both quantizer paths agree."""

from __future__ import annotations

import onnx
import pytest
from quant_graphs import concat_model, conv_model

from sllen.calib import qdq
from sllen.calib.frames import synthetic_calibration_frames
from sllen.calib.int8 import compute_ranges, prepare_model

pytest.importorskip("onnxruntime")


def test_direct_quantizer_path_matches_quantize_static(tmp_path) -> None:
    # Older onnxruntime has no calibration cache in quantize_static: qdq then calls the QDQ
    # quantizer itself; both paths must give the same model.
    model = prepare_model(conv_model(tmp_path / "convs.onnx"))
    x = synthetic_calibration_frames(3, (32, 32), seed=0)
    ranges = compute_ranges(model, x, "minmax")
    a = qdq.quantize_with_ranges(model, ranges, "minmax", "tensorrt", {"head"})
    b = qdq.quantize_with_ranges(model, ranges, "minmax", "tensorrt", {"head"}, _force_direct=True)
    assert a.graph.SerializeToString(deterministic=True) == b.graph.SerializeToString(
        deterministic=True
    )


def _dequantized_inputs_of(model: onnx.ModelProto) -> dict[str, str]:
    """{node name: op type} of every node fed by a DequantizeLinear."""
    dq = {n.output[0] for n in model.graph.node if n.op_type == "DequantizeLinear"}
    return {n.name: n.op_type for n in model.graph.node if dq & set(n.input)}


def test_tensorrt_flavour_quantizes_only_the_inputs_of_weighted_layers(tmp_path) -> None:
    # Q/DQ on a Concat would keep a float layer's input quantized: moving `head` back to float
    # must leave no quantized tensor in front of it (the fallback's premise).
    model = prepare_model(concat_model(tmp_path / "cat.onnx"))
    ranges = compute_ranges(model, synthetic_calibration_frames(3, (32, 32), seed=0), "minmax")
    q = qdq.quantize_with_ranges(model, ranges, "minmax", "tensorrt", set())
    # Inputs of the convolutions only; r1 feeds conv2 and the Concat, so both read it quantized.
    assert _dequantized_inputs_of(q) == {
        "conv1": "Conv",
        "conv2": "Conv",
        "head": "Conv",
        "cat": "Concat",
    }
    assert "r2" in next(n.input for n in q.graph.node if n.name == "cat")  # r2 stays float
    # No Q/DQ on a convolution's output (symmetric INT8 before a ReLU wastes half the range).
    quantized = {n.input[0] for n in q.graph.node if n.op_type == "QuantizeLinear"}
    assert not quantized & {"c1", "c2", "output"}
    q = qdq.quantize_with_ranges(model, ranges, "minmax", "tensorrt", {"head"})
    assert set(_dequantized_inputs_of(q)) == {"conv1", "conv2", "cat"}
    assert "cat" not in {n.input[0] for n in q.graph.node if n.op_type == "QuantizeLinear"}
    # The CPU flavour keeps the Concat quantized: integer kernels from one conv to the next.
    q = qdq.quantize_with_ranges(model, ranges, "minmax", "cpu", set())
    assert "Concat" in set(_dequantized_inputs_of(q).values())


def test_calibration_reports_its_progress(tmp_path) -> None:
    # Tens of minutes of calibration on a small CPU printed nothing (a walkthrough took the
    # export for hung): a line after each chunk of frames and one before the ranges are chosen.
    model = prepare_model(conv_model(tmp_path / "convs.onnx"))
    x = synthetic_calibration_frames(5, (32, 32), seed=0)
    lines: list[str] = []
    ranges = compute_ranges(model, x, "entropy", chunk=2, progress=lines.append)
    assert ranges and [line.split(",")[0] for line in lines[:3]] == [
        "2/5 frames",
        "4/5 frames",
        "5/5 frames",
    ]
    assert lines[3] == "choosing the entropy ranges of the collected histograms"
    # Then the threshold search, tensor by tensor (11 silent minutes in a walkthrough): a line
    # every THRESHOLD_PROGRESS_SECONDS and one at the end, even while onnxruntime's own prints
    # are silenced.
    assert lines[-1].startswith(f"{len(ranges)}/{len(ranges)} tensors ranged, ")


def test_threshold_progress_comes_every_interval(tmp_path, monkeypatch) -> None:
    from sllen.calib import ranges as ranges_module

    monkeypatch.setattr(ranges_module, "THRESHOLD_PROGRESS_SECONDS", 0.0)
    model = prepare_model(conv_model(tmp_path / "convs.onnx"))
    x = synthetic_calibration_frames(2, (32, 32), seed=0)
    lines: list[str] = []
    ranges = compute_ranges(model, x, "entropy", chunk=2, progress=lines.append)
    counted = [line for line in lines if "tensors ranged" in line]
    assert [line.split(" ")[0] for line in counted] == [
        f"{i}/{len(ranges)}" for i in range(1, len(ranges) + 1)
    ]
