"""INT8 Q/DQ: TensorRT flavour (symmetric, per-channel, attention, input and output layers in
float), CPU flavour, reusable ranges, entropy calibration that really differs from MinMax, the
budget (PSNR and SSIM drops)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from quant_graphs import conv_model
from recorders import record_calls

from sllen.calib import int8
from sllen.calib.budget import budget_set
from sllen.calib.frames import synthetic_calibration_frames
from sllen.calib.graph import get_metadata, run, session
from sllen.calib.int8 import compute_ranges, load_ranges, prepare_model, quantize_int8
from sllen.calib.qdq_check import inspect_qdq, require_tensorrt_qdq

ort = pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def frames() -> np.ndarray:
    return synthetic_calibration_frames(10, (64, 64), seed=0)


@pytest.fixture(scope="module")
def trt(sllen_onnx, frames, tmp_path_factory) -> dict:
    dst = tmp_path_factory.mktemp("trt") / "int8.onnx"
    return quantize_int8(sllen_onnx, dst, frames, method="minmax", flavour="tensorrt")


def test_tensorrt_flavour_is_symmetric_per_channel_with_float_attention_and_output(
    trt, frames
) -> None:
    info = require_tensorrt_qdq(trt["path"])  # raises if TensorRT could not take it
    assert info["flavour"] == "tensorrt" and info["precision"] == "int8"
    assert info["zero_points_all_zero"] and info["activation_types"] == ["int8"]
    assert info["weights_per_channel"]
    for w in info["weights"].values():
        assert w["axis"] == 0 and w["scale_len"] == w["out_channels"]
    assert len(info["quantized_layers"]) >= 10
    assert not info["attention_quantized"] and not info["output_quantized"]
    assert any("hsbab" in n.lower() for n in info["float_layers"])  # attention stays float
    reasons = set(trt["excluded"].values())
    assert {"attention (HSBAB)", "output layer", "input layer"} <= reasons
    # The image itself is never quantized: the first conv reads the float input.
    [first] = [n for n, why in trt["excluded"].items() if why == "input layer"]
    assert first not in info["quantized_layers"] and first in info["float_layers"]
    q = onnx.load(trt["path"])
    assert "QuantizeLinear" not in {
        n.op_type for n in q.graph.node if q.graph.input[0].name in n.input
    }
    # Runs in ONNX Runtime, float32 I/O, and close to the FP32 model.
    out = run(session(trt["path"], threads=1), frames[:2])
    assert out.shape == frames[:2].shape and out.dtype == np.float32
    assert trt["psnr_int8_vs_fp32_db"] > 30.0
    budget = trt["budget"]
    assert budget["passes"] and budget["drop_db"] <= 0.5
    assert budget["psnr_fp32_db"] > 0 and "sllen.data.synthesis" in budget["definition"]
    assert budget["ssim_drop"] <= budget["max_ssim_drop"] == 0.01
    assert 0 < budget["ssim_int8"] <= 1 and 0 < budget["ssim_fp32"] <= 1
    if trt["float16_elsewhere"]:
        assert "float16" in info["float_dtypes"]
    else:
        assert trt["notes"]  # says why the float parts stayed FP32


def test_ranges_file_rebuilds_the_same_model_without_calibration(
    trt, sllen_onnx, frames, tmp_path, monkeypatch
) -> None:
    def no_calibration(*args, **kwargs):
        raise AssertionError("calibration ran although ranges were given")

    monkeypatch.setattr(int8, "compute_ranges", no_calibration)
    again = quantize_int8(
        sllen_onnx, tmp_path / "again.onnx", frames, method="minmax", ranges=trt["ranges_path"]
    )
    assert again["ranges_reused"]
    a, b = onnx.load(trt["path"]), onnx.load(again["path"])
    assert a.graph.SerializeToString(deterministic=True) == b.graph.SerializeToString(
        deterministic=True
    )
    # The file knows its model and method.
    ranges, header = load_ranges(trt["ranges_path"], prepare_model(sllen_onnx))
    assert header["method"] == "minmax" and "input" in ranges
    other = prepare_model(conv_model(tmp_path / "other.onnx"))
    with pytest.raises(ValueError, match="another model"):
        load_ranges(trt["ranges_path"], other)
    with pytest.raises(ValueError, match="computed with 'minmax'"):
        quantize_int8(
            sllen_onnx, tmp_path / "x.onnx", frames, method="entropy", ranges=trt["ranges_path"]
        )


def test_ranges_name_their_attention_form_and_are_refused_for_the_other(tmp_path) -> None:
    # --target cpu exports the attention as mha, --target tensorrt as decomposed: a ranges
    # file of one was refused for the other only as "computed for another model".
    from sllen.calib.graph import copy_metadata
    from sllen.calib.ranges import ranges_file_header, save_ranges

    def graph(seed: int, attention: str) -> onnx.ModelProto:
        model = prepare_model(conv_model(tmp_path / f"{attention}.onnx", seed=seed))
        copy_metadata(model, model, {"sllen_attention": attention})
        return model

    path = save_ranges(
        tmp_path / "r.ranges.json", {"input": (0.0, 1.0)}, "minmax", graph(0, "decomposed")
    )
    assert ranges_file_header(path)["attention"] == "decomposed"
    with pytest.raises(
        ValueError, match="graph with decomposed attention, this model's attention is mha"
    ):
        load_ranges(path, graph(1, "mha"))


def test_entropy_ranges_differ_from_minmax(tmp_path) -> None:
    model = prepare_model(conv_model(tmp_path / "convs.onnx"))
    # Mostly dark pixels with a few bright ones: a long-tailed activation distribution.
    x = np.random.default_rng(0).random((6, 3, 32, 32)).astype(np.float32) ** 6
    minmax = compute_ranges(model, x, "minmax")
    entropy = compute_ranges(model, x, "entropy", num_bins=2048, num_quantized_bins=128)
    assert minmax.keys() == entropy.keys()
    clipped = [k for k in minmax if entropy[k][1] < 0.99 * minmax[k][1]]
    assert clipped, "entropy calibration gave the MinMax ranges"
    assert all(entropy[k][1] <= minmax[k][1] + 1e-6 for k in minmax)
    # What quantize_static's own Entropy does (128 bins, 128 quantized bins): MinMax again.
    default = compute_ranges(model, x, "entropy", num_bins=128, num_quantized_bins=128)
    for k in minmax:
        assert default[k][1] == pytest.approx(minmax[k][1], rel=1e-5)


def test_cpu_flavour_has_uint8_activations_and_is_refused_for_tensorrt(
    sllen_onnx, frames, tmp_path
) -> None:
    report = quantize_int8(
        sllen_onnx, tmp_path / "cpu.onnx", frames, method="percentile", flavour="cpu"
    )
    info = inspect_qdq(report["path"])
    assert info["activation_types"] == ["uint8"] and info["flavour"] == "cpu"
    assert not info["tensorrt_ok"] and not info["zero_points_all_zero"]
    assert info["weights_per_channel"]
    meta = get_metadata(onnx.load(report["path"]))
    assert meta["sllen_precision"] == "int8" and meta["sllen_int8_flavour"] == "cpu"
    assert meta.get("sllen_preset")  # the source model's sllen_* props travel along
    assert "float32" in info["float_dtypes"] and not report["float16_elsewhere"]
    with pytest.raises(ValueError, match="not a TensorRT INT8 model"):
        require_tensorrt_qdq(report["path"])
    run(session(report["path"], threads=1), frames[:1])


def test_over_budget_moves_the_most_sensitive_layer_back_to_float(tmp_path) -> None:
    src = conv_model(tmp_path / "convs.onnx")
    x = synthetic_calibration_frames(6, (32, 32), seed=2)
    report = quantize_int8(
        src, tmp_path / "q.onnx", x, method="minmax", max_psnr_drop=-100.0,
        max_fallback_layers=1, sensitivity_frames=1, exclude_input=False,
    )  # fmt: skip
    assert [s["node"] for s in report["sensitivity"]] and len(report["sensitivity"]) == 2
    assert {s["node"] for s in report["sensitivity"]} == {"conv1", "conv2"}  # head excluded
    [moved] = report["fallback"][0]["nodes"]
    assert moved == report["sensitivity"][0]["node"]
    assert report["excluded"][moved].startswith("sensitivity")
    assert not report["budget"]["passes"]
    assert moved not in inspect_qdq(report["path"])["quantized_layers"]
    # Over budget: nothing under the normal name, the file kept beside it for inspection.
    assert not (tmp_path / "q.onnx").exists()
    assert report["path"] == str(tmp_path / "q.over-budget.onnx")


def test_fallback_keeps_going_until_no_layer_is_quantized(tmp_path) -> None:
    src = conv_model(tmp_path / "convs.onnx")
    x = synthetic_calibration_frames(6, (32, 32), seed=2)
    (tmp_path / "q.onnx").write_bytes(b"an older export")  # must not survive a failed one
    report = quantize_int8(
        src, tmp_path / "q.onnx", x, method="minmax", max_psnr_drop=-100.0, sensitivity_frames=1,
        exclude_input=False,
    )  # fmt: skip
    moved = [n for f in report["fallback"] for n in f["nodes"]]
    assert sorted(moved) == ["conv1", "conv2"] and report["quantized_layers"] == []
    assert not report["budget"]["passes"] and not (tmp_path / "q.onnx").exists()


def test_an_ssim_drop_alone_fails_the_budget_and_ranks_layers_by_ssim(tmp_path) -> None:
    src = conv_model(tmp_path / "convs.onnx")
    x = synthetic_calibration_frames(6, (32, 32), seed=2)
    report = quantize_int8(
        src, tmp_path / "q.onnx", x, method="minmax", max_psnr_drop=99.0, max_ssim_drop=-1.0,
        sensitivity_frames=1,
    )  # fmt: skip
    budget = report["budget"]
    assert budget["drop_db"] <= 99.0 and budget["ssim_drop"] > -1.0  # only SSIM is over
    assert not budget["passes"] and report["excluded"]["conv1"] == "input layer"
    assert [s["node"] for s in report["sensitivity"]] == ["conv2"]  # conv1 and head excluded
    assert "gain_ssim" in report["sensitivity"][0]
    assert report["excluded"]["conv2"].endswith("SSIM in float")
    assert report["fallback"][0]["nodes"] == ["conv2"] and "ssim_drop" in report["fallback"][0]
    assert report["path"].endswith("q.over-budget.onnx")


def test_fallback_groups_are_single_then_doubling() -> None:
    nodes = [f"n{i}" for i in range(20)]
    groups = int8.fallback_groups(nodes, singles=3)
    assert [len(g) for g in groups] == [1, 1, 1, 2, 4, 8, 3]
    assert [n for g in groups for n in g] == nodes
    assert int8.fallback_groups([]) == []


def test_budget_is_judged_on_every_set(tmp_path) -> None:
    src = conv_model(tmp_path / "convs.onnx")
    x = synthetic_calibration_frames(6, (32, 32), seed=2)
    gt = synthetic_calibration_frames(3, (48, 32), seed=5) ** 0.5  # brighter, another size
    # Well-lit pictures are their own references ("frames"), darkened by the synthesis.
    report = quantize_int8(
        src, tmp_path / "q.onnx", x, method="minmax", eval_frames=gt, max_psnr_drop=5
    )
    sets = report["budget"]["sets"]
    # Each picture at each budget exposure.
    assert set(sets) == {"holdout", "eval"} and sets["eval"]["frames"] == 3 * 3
    lo, hi = report["input_range"]  # the calibrated range of the network's input
    assert lo <= 0.0 < hi <= 1.0  # the frames' brightened copies included
    worst = max(sets, key=lambda n: sets[n]["drop_db"])
    assert report["budget"]["worst_set"] == worst
    assert report["budget"]["drop_db"] == sets[worst]["drop_db"]


def test_brightened_copies_widen_the_ranges_to_brighter_inputs(tmp_path) -> None:
    # Dark frames only: without the copies the input's range ends where the frames do, and a
    # brighter exposure of the same scenes is clipped at the first quantizer.
    src = conv_model(tmp_path / "convs.onnx")
    dark = synthetic_calibration_frames(8, (32, 32), seed=1) * 0.3
    reports = {
        on: quantize_int8(
            src, tmp_path / f"q{on}.onnx", dark, method="minmax", brighten=on, max_psnr_drop=99
        )
        for on in (False, True)
    }
    assert reports[False]["input_range"][1] <= dark.max()
    assert reports[True]["input_range"][1] == pytest.approx(1.0, abs=0.02)
    header = load_ranges(reports[True]["ranges_path"], prepare_model(src))[1]
    assert header["info"]["brightened_copies"] == header["info"]["frames"] > 0
    bright = np.clip(dark[:3] * 3, 0, 1)
    ref = run(session(prepare_model(src), threads=1), bright)
    err = {
        on: float(np.abs(run(session(r["path"], threads=1), bright) - ref).mean())
        for on, r in reports.items()
    }
    assert err[True] < 0.5 * err[False]


def test_sensitivity_is_measured_on_the_pairs_that_lose_most(tmp_path, monkeypatch) -> None:
    # Ranges from dark frames only: the two bright pairs clip at the input's quantizer, so the
    # leave-one-out must be measured on them, not on the first pairs of the set.
    model = prepare_model(conv_model(tmp_path / "convs.onnx"))
    dark = synthetic_calibration_frames(6, (32, 32), seed=1) * 0.1
    ranges = compute_ranges(model, dark, "minmax")
    low = np.concatenate([dark[:3], np.full_like(dark[:2], 0.9), dark[3:]])
    gt = run(session(model, threads=1), low)  # what FP32 makes of them: the drop is INT8's
    calls = record_calls(monkeypatch, int8, "psnr_each")
    ref = budget_set(session(model, threads=1), low, gt)
    int8._sensitivity(model, ranges, "minmax", "tensorrt", {"head"}, ref, 2, 1)
    picked = [g for _pred, g in calls if len(g) < len(gt)]  # the leave-one-out scores
    assert picked and all(np.array_equal(g, gt[3:5]) for g in picked)  # the bright pairs


def test_bad_arguments(sllen_onnx, frames, tmp_path) -> None:
    with pytest.raises(ValueError, match="flavour"):
        quantize_int8(sllen_onnx, tmp_path / "a.onnx", frames, flavour="gpu")
    with pytest.raises(ValueError, match="method"):
        quantize_int8(sllen_onnx, tmp_path / "a.onnx", frames, method="mse")
    with pytest.raises(ValueError, match="ONNX"):
        quantize_int8(tmp_path / "missing.onnx", tmp_path / "a.onnx", frames)


def test_auto_method_stops_at_entropy_when_it_passes(tmp_path) -> None:
    src = conv_model(tmp_path / "convs.onnx")
    x = synthetic_calibration_frames(6, (32, 32), seed=2)
    report = quantize_int8(src, tmp_path / "q.onnx", x, max_psnr_drop=5)
    assert report["method"] == "entropy" and report["budget"]["passes"]
    assert [a["method"] for a in report["attempts"]] == ["entropy"]


def test_auto_method_tries_minmax_after_entropy_misses(tmp_path, monkeypatch) -> None:
    # Entropy is made to miss (an impossible budget for it alone); minmax then runs for real.
    inner = int8._quantize_int8

    def entropy_misses(src, dst, frames, method, **kw):
        if method == "entropy":
            kw["max_psnr_drop"] = -100.0
            kw["max_fallback_layers"] = 0
        return inner(src, dst, frames, method, **kw)

    monkeypatch.setattr(int8, "_quantize_int8", entropy_misses)
    src = conv_model(tmp_path / "convs.onnx")
    x = synthetic_calibration_frames(6, (32, 32), seed=2)
    report = quantize_int8(src, tmp_path / "q.onnx", x, max_psnr_drop=5)
    assert [(a["method"], a["passes"]) for a in report["attempts"]] == [
        ("entropy", False),
        ("minmax", True),
    ]
    assert report["method"] == "minmax" and report["budget"]["passes"]
    assert get_metadata(onnx.load(report["path"]))["sllen_int8_method"] == "minmax"
    assert not (tmp_path / "q.over-budget.onnx").exists()  # entropy's file is gone
    # The ranges file is the written model's: reusing it with "auto" takes its method.
    assert load_ranges(report["ranges_path"], prepare_model(src))[1]["method"] == "minmax"
    again = quantize_int8(src, tmp_path / "r.onnx", x, ranges=report["ranges_path"])
    assert again["method"] == "minmax" and again["ranges_reused"]


def test_auto_method_reports_both_when_both_miss(tmp_path) -> None:
    src = conv_model(tmp_path / "convs.onnx")
    x = synthetic_calibration_frames(6, (32, 32), seed=2)
    report = quantize_int8(src, tmp_path / "q.onnx", x, max_psnr_drop=-100.0, max_fallback_layers=0)
    assert [(a["method"], a["passes"]) for a in report["attempts"]] == [
        ("entropy", False),
        ("minmax", False),
    ]
    assert not (tmp_path / "q.onnx").exists()
    assert report["path"] == str(tmp_path / "q.over-budget.onnx")
    bad = tmp_path / "bad.ranges.json"
    bad.write_text("not json")
    with pytest.raises(ValueError, match="not an sllen INT8 ranges file"):
        quantize_int8(src, tmp_path / "q.onnx", x, ranges=bad)


def test_few_int8_layers_note_warns_when_most_layers_went_back_to_float() -> None:
    def report(left: int, moved: int) -> dict:
        return {
            "quantized_layers": [f"q{i}" for i in range(left)],
            "fallback": [{"nodes": [f"f{i}" for i in range(moved)]}] if moved else [],
        }

    assert int8.few_int8_layers_note(report(30, 0)) is None
    assert int8.few_int8_layers_note(report(30, 2)) is None
    assert int8.few_int8_layers_note(report(5, 5)) is None  # half still INT8
    note = int8.few_int8_layers_note(report(0, 37))
    assert note and "only 0 of 37 layers" in note and "--calib-data" in note


def test_dark_calibration_note_warns_when_the_input_range_is_short() -> None:
    note = int8.dark_calibration_note({"input_range": [0.0, 0.35]})
    assert note and "0.00-0.35" in note and "--calib-data" in note
    assert int8.dark_calibration_note({"input_range": [0.0, 0.9]}) is None
    assert int8.dark_calibration_note({"input_range": []}) is None  # the input not quantized
    assert int8.dark_calibration_note({}) is None


def test_guided_refinement_stays_float(tmp_path) -> None:
    # Its box filters are constant-kernel Convs (sllen/model/refine.py): never quantized, not
    # candidates of the sensitivity search.
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnxscript")
    from sllen.calib.graph import refine_nodes
    from sllen.config import get_preset
    from sllen.export.onnx_export import export_onnx
    from sllen.model.sllen import SLLEN

    torch.manual_seed(0)
    src = export_onnx(
        SLLEN(get_preset("tiny", refine_radius=2, refine_chroma_radius=4)).eval(),
        tmp_path / "r.onnx",
    )
    x = synthetic_calibration_frames(6, (48, 64), seed=2)
    report = quantize_int8(src, tmp_path / "q.onnx", x, method="minmax", max_psnr_drop=100)
    names = refine_nodes(onnx.load(str(src)))
    assert names and all(report["excluded"][n] == "guided refinement" for n in names)
    q = onnx.load(str(tmp_path / "q.onnx"))
    convs = {n.name for n in q.graph.node if n.op_type == "Conv" and n.name in names}
    quantized_inputs = {n.output[0] for n in q.graph.node if n.op_type == "DequantizeLinear"}
    assert convs and all(
        not set(n.input) & quantized_inputs for n in q.graph.node if n.name in convs
    )


@pytest.mark.parametrize("method", ["auto", "minmax"])
def test_ranges_file_that_does_not_exist_is_refused_not_calibrated_into(tmp_path, method) -> None:
    # A mistyped --ranges path calibrated from scratch (10-20 minutes of entropy on 2 cores)
    # and wrote the ranges there; it is a one-line error now, before any calibration.
    src = conv_model(tmp_path / "convs.onnx")
    x = synthetic_calibration_frames(4, (32, 32), seed=1)
    typo = tmp_path / "typo.ranges.json"
    lines: list[str] = []
    with pytest.raises(ValueError, match="no such ranges file") as err:
        quantize_int8(src, tmp_path / "q.onnx", x, method=method, ranges=typo, log=lines.append)
    assert str(typo) in str(err.value) and "\n" not in str(err.value)
    assert not typo.exists() and not (tmp_path / "q.onnx").exists()
    assert not any("calibrating" in line for line in lines)
