"""--layers parsers: an ONNX Runtime trace written by hand, TensorRT's IProfiler with the fake.

The TensorRT test runs the real TensorRT backend on the shared FAKE `tensorrt` module
(tests/fakes/fake_tensorrt.py: its IProfiler, and an execution context whose enqueue reports
three layers to the profiler set as ``context.profiler``) over fake CUDA buffers: it checks that
sllen-bench subclasses IProfiler the documented way, sets it as ``context.profiler`` only after
the warm-up, aggregates ``report_layer_time(layer_name, ms)`` calls and restores the previous
profiler. It does not show that a real engine reports layer times.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
import pytest

from sllen.bench.layers import parse_ort_profile, tensorrt_layers


def _run(ts: int, dur: int) -> dict[str, Any]:
    return {"cat": "Session", "name": "model_run", "ts": ts, "dur": dur}


def _node(name: str, op: str, ts: int, dur: int) -> dict[str, Any]:
    return {
        "cat": "Node",
        "name": f"{name}_kernel_time",
        "ts": ts,
        "dur": dur,
        "args": {"op_name": op},
    }


def test_parse_ort_profile_drops_warmup_runs() -> None:
    events = [
        {"cat": "Session", "name": "session_initialization", "ts": 0, "dur": 5},
        _run(10, 100),  # warm-up: its nodes must not count
        _node("conv1", "Conv", 11, 90_000),
        _node("softmax", "Softmax", 50, 5),
        _run(200, 100),
        _node("conv1", "Conv", 201, 3_000),
        _node("softmax", "Softmax", 210, 1_000),
        {"cat": "Node", "name": "conv1_fence_before", "ts": 205, "dur": 1, "args": {}},
        _run(400, 100),
        _node("conv1", "Conv", 401, 5_000),
        _node("softmax", "Softmax", 410, 1_000),
    ]
    rows, runs = parse_ort_profile(events, skip_runs=1)
    assert runs == 2
    assert [r.name for r in rows] == ["conv1", "softmax"]
    conv, soft = rows
    assert conv.kind == "Conv" and conv.ms_per_run == pytest.approx(4.0)
    assert soft.ms_per_run == pytest.approx(1.0) and soft.calls_per_run == 1
    assert conv.share == pytest.approx(0.8) and soft.share == pytest.approx(0.2)
    rows_all, runs_all = parse_ort_profile(events)
    assert runs_all == 3 and rows_all[0].ms_per_run == pytest.approx(98 / 3)
    with pytest.raises(ValueError, match="fewer than"):
        parse_ort_profile(events, skip_runs=3)


@pytest.fixture
def open_trt_backend(fake_trt, monkeypatch, tmp_path):
    """(fake tensorrt, open(cuda_graph=False) -> the TensorRT backend on a fake engine)."""
    from fake_tensorrt import ENGINE_BYTES, FakeBuffers, engine_metadata

    from sllen.runtime import cuda_buffers
    from sllen.runtime.backends.tensorrt import TensorRTBackend
    from sllen.runtime.engine_meta import write_metadata

    monkeypatch.setitem(sys.modules, "sllen.runtime.attention_kernel", None)  # no kernel module
    buffers = FakeBuffers()
    trt = fake_trt("10.3.0", buffers=buffers, engine_bytes=ENGINE_BYTES)
    monkeypatch.setattr(cuda_buffers, "open_buffers", lambda device=0, prefer="auto": buffers)
    engine = tmp_path / "sllen.fp16.engine"
    engine.write_bytes(ENGINE_BYTES)
    write_metadata(engine, engine_metadata(engine_file=engine.name))
    return trt, lambda cuda_graph=False: TensorRTBackend(engine, cuda_graph=cuda_graph)


def test_tensorrt_layers_with_the_fake_iprofiler(open_trt_backend) -> None:
    trt, open_backend = open_trt_backend
    x = np.zeros((1, 3, 64, 64), np.float32)
    with open_backend() as backend:
        previous = backend._context.profiler
        lp = tensorrt_layers(backend, x, warmup=2, runs=4)  # `tensorrt` is the fake
        assert backend._context.profiler is previous  # restored
    calls = [c[0] if c[0] != "set" else f"set {c[2]}" for c in trt.calls]
    enqueues = [i for i, c in enumerate(calls) if c == "execute_async_v3"]
    profiler_set = [i for i, c in enumerate(calls) if c == "set profiler"]
    assert len(enqueues) == 6 and len(profiler_set) == 2  # set, then restored
    assert profiler_set[0] > enqueues[1]  # warm-up not profiled
    assert "IProfiler.__init__" in calls  # the base __init__ was called
    assert lp.runs == 4 and "IProfiler" in lp.source
    assert [r.name for r in lp.rows] == ["attention", "conv_1 + relu", "conv_2"]
    assert lp.rows[0].ms_per_run == pytest.approx(5.0) and lp.rows[0].calls_per_run == 1
    assert lp.layer_ms_per_run == pytest.approx(8.0)
    with open_backend(cuda_graph=True) as graphed, pytest.raises(ValueError, match="CUDA graph"):
        tensorrt_layers(graphed, x, warmup=0, runs=1)


def test_a_profile_beside_banded_timing_says_it_ran_whole_frames() -> None:
    # ONNX Runtime profiles one whole-frame session: a "bands on" row's profile was labelled
    # "bands on" and its wall time compared with the banded mean
    import io
    import json

    from rich.console import Console

    from sllen.bench import BenchConfig, BenchOptions, run_bench
    from sllen.bench import report as rep

    pytest.importorskip("onnxruntime")
    on, off = (BenchConfig(None, "onnxruntime", threads=1, bands=b) for b in ("on", "off"))
    opts = BenchOptions(
        configs=[on, off],
        resolutions=[(64, 64)],
        warmup=0,
        iterations=1,
        layers=True,
        layer_runs=1,
        top_k=2,
        flops=False,
    )
    rows = run_bench(opts)
    assert [r.timed_in_bands for r in rows] == [True, False], [r.layers_error for r in rows]
    assert rows[0].layers_whole_frame and not rows[1].layers_whole_frame
    assert rows[0].layers_overhead_pct is None  # not against its own (banded) mean
    out = io.StringIO()
    rep.print_report(rows, opts, Console(file=out, width=400))
    # a table's title wraps at the table's width, which its layer names and timings set
    text = " ".join(out.getvalue().split())
    assert "bands on 64x64: top 2 of" in text and "whole frame (bands off for the profile)" in text
    assert text.count("whole frame (bands off for the profile)") == 1  # the bands-off row's not
    assert "over the timed mean of #2, whole frames" in text
    data = json.loads(json.dumps(rep.to_json(rows, opts, command="test")))["results"]
    assert data[0]["layers_whole_frame"] and data[0]["layers_overhead_pct"] == pytest.approx(
        rows[0].layers_overhead_over(rows[1])
    )
    # no whole-frame row to compare with: said, not a banded mean
    out = io.StringIO()
    rep.print_report(rows[:1], opts, Console(file=out, width=400))
    assert "not compared with the timed mean, which ran in row bands" in out.getvalue()
