"""FP16 conversion: runs in ONNX Runtime with float32 I/O, stays within budget, keeps measured
overflow and softmax-sensitive nodes in FP32."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from sllen.calib.fp16 import convert_fp16
from sllen.calib.frames import synthetic_calibration_frames
from sllen.calib.graph import get_metadata, psnr_db, run, session

ort = pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def frames() -> np.ndarray:
    return synthetic_calibration_frames(4, (64, 64), seed=0)


def _model(nodes, inits, path) -> str:
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, "H", "W"])
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 3, "H", "W"])
    graph = helper.make_graph(nodes, "g", [x], [y], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
    entry = model.metadata_props.add()
    entry.key, entry.value = "sllen_preset", "crafted"
    onnx.save(model, str(path))
    return str(path)


def _const(name: str, value: float):
    return numpy_helper.from_array(np.array(value, np.float32), name)


def test_sllen_fp16_runs_with_float32_io_within_budget(sllen_onnx, frames, tmp_path) -> None:
    dst = tmp_path / "fp16.onnx"
    report = convert_fp16(sllen_onnx, dst, frames, budget_db=40.0)
    assert report["passes_budget"] and report["psnr_db"] >= 40.0
    sess = session(dst, threads=1)
    assert [i.type for i in sess.get_inputs()] == ["tensor(float)"]
    assert [o.type for o in sess.get_outputs()] == ["tensor(float)"]
    out = run(sess, frames)
    ref = run(session(sllen_onnx, threads=1), frames)
    assert psnr_db(out, ref) >= 40.0
    model = onnx.load(str(dst))
    halves = [t for t in model.graph.initializer if t.data_type == TensorProto.FLOAT16]
    assert len(halves) > 10  # the weights really are FP16
    meta = get_metadata(model)
    assert meta["sllen_precision"] == "fp16" and "sllen_preset" in meta


def test_measured_overflow_keeps_the_node_fp32(tmp_path) -> None:
    # pre: x/2; big: * 1e5 (up to 5e4, past half the FP16 range); shrink: * 1e-5; post: relu
    src = _model(
        [
            helper.make_node("Mul", ["input", "half"], ["a"], name="pre"),
            helper.make_node("Mul", ["a", "k_big"], ["b"], name="big"),
            helper.make_node("Mul", ["b", "k_small"], ["c"], name="shrink"),
            helper.make_node("Relu", ["c"], ["output"], name="post"),
        ],
        [_const("half", 0.5), _const("k_big", 1e5), _const("k_small", 1e-5)],
        tmp_path / "over.onnx",
    )
    x = np.random.default_rng(0).random((2, 3, 16, 16)).astype(np.float32)
    report = convert_fp16(src, tmp_path / "over16.onnx", x)
    assert set(report["kept_fp32"]) == {"big", "shrink"}  # producer and consumer of |b|
    assert "reaches" in report["kept_fp32"]["big"] and report["passes_budget"]
    assert report["max_abs_activation"] > 32752
    out = run(session(tmp_path / "over16.onnx", threads=1), x)
    assert np.isfinite(out).all() and np.abs(out - x * 0.5).max() < 1e-3


def test_softmax_with_large_logits_stays_fp32(tmp_path) -> None:
    src = _model(
        [
            helper.make_node("Mul", ["input", "k"], ["logits"], name="scale"),
            helper.make_node("Softmax", ["logits"], ["output"], name="softmax", axis=1),
        ],
        [_const("k", 600.0)],
        tmp_path / "softmax.onnx",
    )
    x = np.random.default_rng(1).random((2, 3, 16, 16)).astype(np.float32)
    report = convert_fp16(src, tmp_path / "softmax16.onnx", x)
    assert {"softmax", "scale"} <= set(report["kept_fp32"])
    assert report["psnr_db"] >= 60.0

    small = _model(
        [
            helper.make_node("Mul", ["input", "k"], ["logits"], name="scale"),
            helper.make_node("Softmax", ["logits"], ["output"], name="softmax", axis=1),
        ],
        [_const("k", 1.0)],
        tmp_path / "softmax_small.onnx",
    )
    assert convert_fp16(small, tmp_path / "s16.onnx", x)["kept_fp32"] == {}


def test_unreachable_budget_moves_sensitive_nodes_and_reports_failure(sllen_onnx, frames, tmp_path):
    report = convert_fp16(
        sllen_onnx, tmp_path / "f.onnx", frames[:2], budget_db=200.0, max_steps=2,
        sensitivity_frames=1,
    )  # fmt: skip
    assert not report["passes_budget"]
    assert len(report["steps"]) == 2
    assert all(n in report["kept_fp32"] for s in report["steps"] for n in s["nodes"])
    # Over budget: nothing under the normal name, the file kept beside it for inspection.
    assert not (tmp_path / "f.onnx").exists()
    assert report["path"] == str(tmp_path / "f.over-budget.onnx")


def test_guided_refinement_in_fp16_within_budget(tmp_path) -> None:
    # Its variances are differences of box means that FP16 rounds; eps is larger than that
    # (sllen/model/refine.py), so it converts like the rest of the graph.
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnxscript")
    from sllen.calib.graph import refine_nodes
    from sllen.config import get_preset
    from sllen.export.onnx_export import export_onnx
    from sllen.model.sllen import SLLEN

    torch.manual_seed(0)
    src = export_onnx(SLLEN(get_preset("tiny", refine_radius=2)).eval(), tmp_path / "r.onnx")
    frames = np.random.default_rng(0).random((2, 3, 48, 64), dtype=np.float32) * 0.2
    report = convert_fp16(src, tmp_path / "r.fp16.onnx", frames)
    names = refine_nodes(onnx.load(str(src)))
    assert names and not set(names) & set(report["kept_fp32"])
    assert report["passes_budget"] and not report["steps"], report
