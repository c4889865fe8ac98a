"""scripts/gpu/trt_check.py (the questions of scripts/trt-check.sh) on a CPU machine.

TensorRT is the shared MOCK (tests/fakes/fake_tensorrt.py), so these tests show the question
logic, the record format and the merge, not TensorRT's answers: those come only from running
scripts/trt-check.sh where TensorRT is. The ONNX graphs the questions build are checked for
validity with ONNX Runtime.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from argparse import Namespace
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from fake_tensorrt import GPU

from sllen.runtime import env

REPO = Path(__file__).resolve().parents[2]
SPEC = importlib.util.spec_from_file_location("trt_check", REPO / "scripts/gpu/trt_check.py")
tc = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(tc)


def _args(tmp_path, **kw) -> Namespace:
    return Namespace(out=tmp_path, plugin=kw.get("plugin"), dynamic_plugin=kw.get("dynamic"))


@pytest.mark.parametrize(
    ("kw", "dtype"),
    [
        ({}, np.float16),
        ({"int8": True}, np.float32),
        ({"int8": True, "fp16_scales": True}, np.float16),
    ],
)
def test_attention_graphs_are_valid_onnx(kw, dtype, tmp_path) -> None:
    from sllen.export.trt.plugin_rewrite import count_attention_blocks

    blob = tc.attention_onnx(64, 2, **kw)
    onnx.checker.check_model(onnx.load_from_string(blob), full_check=True)
    sess = ort.InferenceSession(blob, providers=["CPUExecutionProvider"])
    feeds = {
        "q": np.ones((1, 2, 10, 64)),
        "kt": np.ones((1, 2, 64, 10)),
        "v": np.ones((1, 2, 10, 64)),
    }
    (out,) = sess.run(None, {k: v.astype(dtype) * 0.1 for k, v in feeds.items()})
    assert out.dtype == dtype and out.shape == (1, 2, 10, 64)
    path = tmp_path / "a.onnx"
    path.write_bytes(blob)
    # The FP16 graph is what the plugin rewrite replaces; the INT8 one quantizes the
    # probabilities (TensorRT's INT8 attention pattern), which sllen's INT8 files never do
    # (their attention stays float), and the rewrite leaves such a block alone.
    assert count_attention_blocks(path) == (0 if kw else 1)


def test_conv_graphs_are_valid_onnx() -> None:
    for int8 in (False, True):
        blob = tc.conv_onnx(int8=int8)
        onnx.checker.check_model(onnx.load_from_string(blob), full_check=True)
        sess = ort.InferenceSession(blob, providers=["CPUExecutionProvider"])
        (y,) = sess.run(None, {"x": np.zeros((1, 3, 256, 256), np.float16)})
        assert y.shape == (1, 16, 256, 256)


def test_environment_and_timing_cache_questions(fake_trt, monkeypatch, tmp_path) -> None:
    fake_trt("10.3.0", num_dla_cores=2, timing_cache_corrupt=True)
    monkeypatch.setattr(env, "detect_gpu", lambda *a, **k: GPU)
    answer = tc.q_environment(_args(tmp_path))
    assert answer["tensorrt"] == "10.3.0" and answer["gpu_name"] == GPU[0]
    assert answer["dla_cores"] == 2
    cache = tc.q_timing_cache(_args(tmp_path))
    assert cache == {"garbage_blob": "None", "empty_blob_set": True, "passed": True}


def test_static_lookup_question(fake_trt, tmp_path) -> None:
    lib = tmp_path / "libsllen_attention_plugin.so"
    lib.write_bytes(b"\x7fELF")
    fake_trt(plugin_creators=(tc.TRIPLE,))  # as if the library registered under "sllen"
    answer = tc.q_plugin_lookup_static(_args(tmp_path, plugin=str(lib)))
    assert answer["found"] == {"sllen": True, "(empty)": False} and answer["passed"]
    fake_trt(plugin_creators=(("SllenAttention", "1", ""),))  # REGISTER_TENSORRT_PLUGIN's place
    answer = tc.q_plugin_lookup_static(_args(tmp_path, plugin=str(lib)))
    assert answer["found"] == {"sllen": False, "(empty)": True} and not answer["passed"]
    assert answer["registered"] == [{"name": "SllenAttention", "version": "1", "namespace": ""}]


def test_dynamic_lookup_question(fake_trt, tmp_path) -> None:
    lib = tmp_path / "libsllen_attention_plugin_dynamic.so"
    lib.write_bytes(b"\x7fELF")
    trt = fake_trt()
    answer = tc.q_plugin_lookup_dynamic(_args(tmp_path, dynamic=str(lib)))
    assert answer["load_library"] and answer["found"]["sllen"] and answer["passed"]
    assert ("load_library", str(lib.resolve())) in trt.calls
    with pytest.raises(tc.Skip, match="no libsllen_attention_plugin_dynamic.so"):
        tc.q_plugin_lookup_dynamic(_args(tmp_path))


def test_dla_question_skips_without_dla(fake_trt, tmp_path) -> None:
    fake_trt(num_dla_cores=0)
    with pytest.raises(tc.Skip, match="no DLA cores"):
        tc.q_dla_strongly_typed(_args(tmp_path))


def test_question_process_records_and_merge(tmp_path) -> None:
    # Without TensorRT the environment question fails, recorded with the reason; a question
    # without its library is skipped (exit 77, the reason on the last line); merge gathers.
    run = [sys.executable, str(REPO / "scripts/gpu/trt_check.py")]
    failed = subprocess.run(
        [*run, "environment", "--out", str(tmp_path)], capture_output=True, text=True
    )
    assert failed.returncode == 1
    record = json.loads((tmp_path / "questions" / "environment.json").read_text())
    assert record["status"] == "FAIL" and record["reason"]
    skipped = subprocess.run(
        [*run, "plugin_lookup_static", "--out", str(tmp_path)], capture_output=True, text=True
    )
    assert skipped.returncode == 77
    assert skipped.stdout.strip().splitlines()[-1].startswith("no libsllen_attention_plugin.so")
    merged = subprocess.run([*run, "merge", "--out", str(tmp_path)], capture_output=True, text=True)
    assert merged.returncode == 0 and "tests/export/data/trt_check/" in merged.stdout
    doc = json.loads((tmp_path / "trt_check.json").read_text())
    assert doc["schema"] == 1 and set(doc["questions"]) == {"environment", "plugin_lookup_static"}
    assert doc["questions"]["plugin_lookup_static"]["status"] == "SKIP"


def test_trt_check_dry_run() -> None:
    done = subprocess.run(
        ["bash", "scripts/trt-check.sh", "--dry-run"], cwd=REPO, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    steps = [line.split()[0] for line in done.stdout.splitlines()[1:]]
    assert steps == ["build", *tc.QUESTIONS, "model_parity", "merge"]
    missing = subprocess.run(
        ["bash", "scripts/trt-check.sh"], cwd=REPO, capture_output=True, text=True
    )
    assert missing.returncode == 2 and "--out DIR is required" in missing.stderr
