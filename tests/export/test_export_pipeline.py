"""sllen-export's engine step and its engine cache, with a MOCK TensorRT; what the pipeline
checks before the FP32 export.

TensorRT cannot be installed here, so this uses the shared fake `tensorrt` module
(tests/fakes/fake_tensorrt.py: it accepts only names of the documented 10.x/11.x Python API and
records the calls); real engine builds are tested in tests/export/trt/test_build.py, where
TensorRT and a GPU exist.
"""

import json
import re
from pathlib import Path

import pytest
from fake_tensorrt import GPU
from tiny_onnx import write_onnx

from sllen.export.pipeline import ExportOptions, run_export
from sllen.runtime import env


@pytest.fixture
def trt(fake_trt, monkeypatch):
    fake = fake_trt("10.3.0")
    monkeypatch.setattr(env, "detect_gpu", lambda *a, **k: GPU)
    return fake


def test_from_onnx_builds_then_reuses_the_cached_engine(trt, tmp_path: Path) -> None:
    onnx_path = write_onnx(tmp_path / "sllen.fp16.onnx", fp16=True)
    opts = ExportOptions(
        out=tmp_path / "out", from_onnx=onnx_path, engine_cache=tmp_path / "cache", parity=False
    )
    first = run_export(opts, log=lambda m: None)["engine"]
    entry = first["engines"]["sllen.fp16.onnx"]
    assert first["built"] and entry["from_cache"] is False
    assert entry["metadata"]["precision"] == "fp16"
    builds = [c for c in trt.calls if c[0] == "build_serialized_network"]
    assert len(builds) == 1
    second = run_export(opts, log=lambda m: None)["engine"]
    assert second["engines"]["sllen.fp16.onnx"]["from_cache"] is True
    assert len([c for c in trt.calls if c[0] == "build_serialized_network"]) == 1
    assert (tmp_path / "out" / "sllen.fp16.engine").read_bytes() == b"SERIALIZED-ENGINE"
    assert (tmp_path / "out" / "report.json").is_file()


def test_cpu_int8_flavour_is_refused_by_the_builder(trt, tmp_path: Path) -> None:
    onnx_path = write_onnx(
        tmp_path / "m.onnx",
        qdq=True,
        props={"sllen_precision": "int8", "sllen_int8_flavour": "cpu"},
    )
    with pytest.raises(ValueError, match="cpu"):
        run_export(
            ExportOptions(out=tmp_path / "o", from_onnx=onnx_path, parity=False), log=lambda m: None
        )


def test_device_is_selected_before_building(trt, tmp_path: Path, monkeypatch) -> None:
    chosen = []
    monkeypatch.setattr(env, "select_device", chosen.append)
    onnx_path = write_onnx(tmp_path / "sllen.fp32.onnx")
    report = run_export(
        ExportOptions(out=tmp_path / "o", from_onnx=onnx_path, device=1, parity=False),
        log=lambda m: None,
    )
    assert chosen == [1] and report["engine"]["built"]
    with pytest.raises(ValueError, match="not both"):
        run_export(
            ExportOptions(out=tmp_path / "o", from_onnx=onnx_path, device=1, dla_core=0),
            log=lambda m: None,
        )


def test_attention_follows_the_target() -> None:
    from sllen.export.pipeline import export_attention

    assert export_attention(ExportOptions()) == "decomposed"
    assert export_attention(ExportOptions(target="cpu")) == "mha"
    assert export_attention(ExportOptions(target="cpu", attention="decomposed")) == "decomposed"
    assert export_attention(ExportOptions(attention="plugin")) == "plugin"
    with pytest.raises(ValueError, match="--target cpu"):
        ExportOptions(attention="mha")  # TensorRT does not parse ONNX Runtime's node
    with pytest.raises(ValueError, match="ONNX Runtime cannot run"):
        ExportOptions(attention="plugin", target="cpu")
    with pytest.raises(ValueError, match="--target tensorrt"):
        ExportOptions(target="cpu", engine=True)


def test_onnxruntime_attention_file_is_refused_by_the_builder(trt, tmp_path: Path) -> None:
    onnx_path = write_onnx(tmp_path / "sllen.fp32.onnx", props={"sllen_attention": "mha"})
    with pytest.raises(ValueError, match="MultiHeadAttention"):
        run_export(
            ExportOptions(out=tmp_path / "o", from_onnx=onnx_path, parity=False), log=lambda m: None
        )
    assert not [c for c in trt.calls if c[0] == "build_serialized_network"]


def test_cpu_target_builds_no_engine(trt, tmp_path: Path) -> None:
    from sllen.export.pipeline import build_engines

    opts = ExportOptions(out=tmp_path, target="cpu")
    onnx_path = write_onnx(tmp_path / "sllen.fp32.onnx", props={"sllen_attention": "mha"})
    lines: list[str] = []
    report = build_engines(opts, [onnx_path], lines.append)
    assert report["built"] is False and "--target cpu" in report["reason"]
    assert not [c for c in trt.calls if c[0] == "build_serialized_network"]


def test_each_engine_is_checked_against_its_onnx_through_polygraphy(
    trt, tmp_path: Path, monkeypatch
) -> None:
    # Polygraphy's comparator runs for real; ONNX Runtime on the same file stands in for the
    # TensorRT runner (no TensorRT here), so the engine "matches" and the report says so.
    pytest.importorskip("polygraphy")
    from sllen.export.trt import engine_parity as ep

    onnx_path = write_onnx(tmp_path / "sllen.fp32.onnx")
    monkeypatch.setattr(ep, "tensorrt_runner", lambda *a, **k: ep.onnxrt_runner(onnx_path, "trt"))
    lines: list[str] = []
    report = run_export(ExportOptions(out=tmp_path / "o", from_onnx=onnx_path), log=lines.append)
    parity = report["engine"]["engines"]["sllen.fp32.onnx"]["parity"]
    assert parity["passed"] and (tmp_path / "o" / "parity" / "sllen.fp32").is_dir()
    assert any(line.startswith("parity sllen.fp32.engine") for line in lines)


def test_missed_int8_budget_names_the_ranges_tried() -> None:
    from sllen.export.pipeline import check_budgets_of
    from sllen.runtime.errors import BudgetError

    int8 = {
        "file": "sllen.int8.over-budget.onnx",
        "method": "minmax",
        "excluded": {"a": "output layer", "b": "sensitivity"},
        "attempts": [{"method": "entropy"}, {"method": "minmax"}],
        "budget": {
            "passes": False,
            "drop_db": 0.61,
            "worst_set": "holdout",
            "max_psnr_drop_db": 0.5,
            "ssim_drop": 0.004,
            "max_ssim_drop": 0.01,
        },
    }
    with pytest.raises(BudgetError) as err:
        check_budgets_of({"files": {"int8": int8}})
    msg = str(err.value)
    assert "0.61 dB on the holdout set" in msg and "(entropy and minmax ranges)" in msg
    assert "\n" not in msg and "sllen.int8.over-budget.onnx" in msg
    check_budgets_of({"files": {"int8": {**int8, "budget": {**int8["budget"], "passes": True}}}})


class _Reached(Exception):
    """The export got past its checks to the model (the FP32 export, ~30 s on the CLI)."""


@pytest.fixture
def stop_at_the_model(monkeypatch):
    import sllen.model.io

    def reached(*a, **k):
        raise _Reached

    monkeypatch.setattr(sllen.model.io, "load_weights", reached)


def test_int8_inputs_are_checked_before_the_fp32_export(stop_at_the_model, tmp_path: Path) -> None:
    # --eval-data and --ranges failed only after the FP32 export (30 s on the walkthrough's
    # machine), --out under a file after 8 s with "[Errno 20] Not a directory".
    small = dict(int8=True, calib_count=4, calib_size=(32, 32), calib_method="minmax")
    saved = tmp_path / "sllen.int8.ranges.json"
    saved.write_text(json.dumps({"format": "sllen-int8-ranges", "method": "minmax", "ranges": {}}))
    (tmp_path / "file").write_text("x")
    (tmp_path / "empty").mkdir()
    bad = {
        "no such file or folder": dict(eval_data=[tmp_path / "no-eval"]),
        # the option that named the folder, not only the folder ("empty: folder has no images")
        f"--eval-data {tmp_path / 'empty'}: folder has no images": dict(
            eval_data=[tmp_path / "empty"]
        ),
        f"--calib-data {tmp_path / 'empty'}: folder has no images": dict(
            calib_data=[tmp_path / "empty"]
        ),
        "no such ranges file": dict(ranges=tmp_path / "typo.ranges.json"),
        "holds minmax ranges, not --calib-method entropy": dict(
            ranges=saved, calib_method="entropy"
        ),
        "is a file, not a folder": dict(out=tmp_path / "file" / "x"),
    }
    for message, options in bad.items():
        opts = ExportOptions(**{"out": tmp_path / "o", **small, **options})
        with pytest.raises(ValueError, match=re.escape(message)) as err:
            run_export(opts, log=lambda m: None)
        assert "\n" not in str(err.value)
        assert not (tmp_path / "o").exists()
    with pytest.raises(ValueError, match="--ranges is only used with --int8"):
        ExportOptions(ranges=saved)
    with pytest.raises(_Reached):  # good inputs get as far as the model
        run_export(ExportOptions(out=tmp_path / "o", ranges=saved, **small), log=lambda m: None)


def test_the_second_budget_set_is_named_up_front_with_its_extra(
    stop_at_the_model, tmp_path: Path, monkeypatch
) -> None:
    # Without the photo packages the line said "(install sllen for photos)": rich took
    # "[eval]" for a style tag. It is printed, escaped, before the FP32 export now.
    import io

    from rich.console import Console

    import sllen.evalset

    def no_photos():
        raise ValueError("no photo packages")

    monkeypatch.setattr(sllen.evalset, "load_photos", no_photos)
    text = io.StringIO()
    opts = ExportOptions(out=tmp_path / "o", int8=True, calib_count=4, calib_size=(32, 32))
    with pytest.raises(_Reached):
        run_export(opts, log=Console(file=text, width=300, color_system=None).print)
    assert '(for photos: python -m pip install ".[eval]" in the sllen clone)' in text.getvalue()


def test_threads_cap_the_exports_torch(stop_at_the_model, tmp_path: Path) -> None:
    # sllen-export had no --threads (sllen-train/eval/run/bench have): on a shared machine the
    # FP32 export and the calibration took every core
    import torch

    with pytest.raises(ValueError, match="--threads must be at least 1, not 0"):
        ExportOptions(threads=0)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)  # so the cap shows on a machine that runs one thread
        with pytest.raises(_Reached):
            run_export(ExportOptions(out=tmp_path / "o", threads=1), log=lambda m: None)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_a_single_calibration_frame_is_refused_before_the_fp32_export(
    stop_at_the_model, tmp_path: Path
) -> None:
    # One frame passed the checks and failed after the FP32 export with "need at least 2
    # frames to hold some back", naming no option.
    from PIL import Image

    one = tmp_path / "one.png"
    Image.new("RGB", (64, 64), (20, 20, 30)).save(one)
    opts = ExportOptions(
        out=tmp_path / "o", int8=True, calib_data=[one], calib_size=(32, 32), calib_method="minmax"
    )
    with pytest.raises(
        ValueError, match=f"--calib-data {re.escape(str(one))} gave 1 frame; INT8 needs at least 2"
    ):
        run_export(opts, log=lambda m: None)
    assert not (tmp_path / "o").exists()
    with pytest.raises(ValueError, match="--calib-count must be at least 2 for --int8, not 1"):
        ExportOptions(int8=True, calib_count=1)
    ExportOptions(calib_count=1)  # without --int8 the count is not used


@pytest.mark.parametrize(
    "options,message",
    [
        (dict(workspace_gib=0), "--workspace-gib must be a positive size, not 0"),
        (dict(workspace_gib=float("nan")), "--workspace-gib must be a positive size, not nan"),
        (dict(dla_core=-1), r"--dla-core must be a DLA core index \(0, 1, ...\), not -1"),
        (dict(device=-2), "--device must be a CUDA device index"),
        (dict(device=0, dla_core=0), "give --device or --dla-core, not both"),
        # DLA has no dynamic shapes: the default profile is refused before the export
        (dict(dla_core=0), "DLA runs one fixed input size"),
    ],
)
@pytest.mark.parametrize("with_tensorrt", [False, True])
def test_engine_options_are_refused_before_any_work(
    fake_trt, options: dict, message: str, with_tensorrt: bool
) -> None:
    # They were checked by the engine step, after the whole export (and the INT8
    # calibration), under their Python names ("workspace_gib must be positive"), and not at
    # all without TensorRT.
    if with_tensorrt:
        fake_trt("10.3.0")
    with pytest.raises(ValueError, match=message) as err:
        ExportOptions(int8=True, **options)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    "saved,options,hint",
    [
        ("decomposed", dict(target="cpu"), "add --attention decomposed (or use --target tensorrt)"),
        ("mha", dict(), "use --target cpu"),
        ("mha", dict(target="cpu", attention="decomposed"), "leave --attention out"),
    ],
)
def test_ranges_of_the_other_attention_form_are_refused_before_the_export(
    stop_at_the_model, tmp_path: Path, saved: str, options: dict, hint: str
) -> None:
    # --ranges from a --target tensorrt export with --target cpu failed after the FP32
    # export, "computed for another model": the same model, another attention form.
    ranges = tmp_path / "sllen.int8.ranges.json"
    header = {"format": "sllen-int8-ranges", "method": "minmax", "attention": saved}
    ranges.write_text(json.dumps({**header, "ranges": {}}))
    small = dict(int8=True, calib_count=4, calib_size=(32, 32), ranges=ranges)
    opts = ExportOptions(out=tmp_path / "o", **small, **options)
    with pytest.raises(ValueError, match=f"graph with {saved} attention") as err:
        run_export(opts, log=lambda m: None)
    assert hint in str(err.value)
    assert not (tmp_path / "o").exists()
    same = dict(target="cpu") if saved == "mha" else dict()
    with pytest.raises(_Reached):  # the form the file was calibrated on gets to the model
        run_export(ExportOptions(out=tmp_path / "o", **small, **same), log=lambda m: None)


def test_an_out_folder_that_cannot_be_made_is_named(stop_at_the_model) -> None:
    # "--out /proc/x" ended in "[Errno 2] No such file or directory: '/proc/x'"
    out = Path("/proc/sllen-export-test/o")
    with pytest.raises((OSError, ValueError), match=re.escape(f"--out {out}")):
        run_export(ExportOptions(out=out), log=lambda m: None)
