"""--layers parsers: an ONNX Runtime trace written by hand, TensorRT's IProfiler with a mock.

The TensorRT test uses a mock tensorrt module and a mock backend (no TensorRT on the
development machines): it checks that sllen-bench subclasses IProfiler the documented way,
sets it as ``context.profiler``, aggregates ``report_layer_time(layer_name, ms)`` calls and
restores the previous profiler. It does not show that a real engine reports layer times.
"""

from __future__ import annotations

import types
from typing import Any

import numpy as np
import pytest

from sllen.bench.layers import parse_ort_profile, tensorrt_layers
from sllen.runtime.backends import Backend, BackendInfo, Outputs


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


class MockIProfiler:
    """Stands in for tensorrt.IProfiler: records that the base __init__ was called."""

    def __init__(self) -> None:
        self.base_initialised = True


class MockContext:
    """An execution context that reports three layers per enqueue to its profiler."""

    def __init__(self) -> None:
        self.profiler: Any = "previous"
        self.seen: list[Any] = []

    def execute(self) -> None:
        self.seen.append(self.profiler)
        if isinstance(self.profiler, MockIProfiler):
            for name, ms in (("conv_1 + relu", 2.0), ("attention", 5.0), ("conv_2", 1.0)):
                self.profiler.report_layer_time(name, ms)


class MockTensorRTBackend(Backend):
    name = "tensorrt"

    def __init__(self, cuda_graph: bool = False) -> None:
        super().__init__()
        self.context = MockContext()
        self._info = BackendInfo(
            "tensorrt", "mock.engine", "cuda:0", "fp16", extra={"cuda_graph": cuda_graph}
        )

    @property
    def info(self) -> BackendInfo:
        return self._info

    def _infer(self, x: np.ndarray, segmentation: bool) -> Outputs:
        self.context.execute()
        return Outputs(x)


def test_tensorrt_layers_with_a_mock_iprofiler() -> None:
    trt = types.SimpleNamespace(IProfiler=MockIProfiler)
    backend = MockTensorRTBackend()
    x = np.zeros((1, 3, 16, 16), np.float32)
    lp = tensorrt_layers(backend, x, warmup=2, runs=4, trt=trt)
    assert backend.context.profiler == "previous"  # restored
    assert backend.context.seen[:2] == ["previous", "previous"]  # warm-up not profiled
    assert lp.runs == 4 and "IProfiler" in lp.source
    assert [r.name for r in lp.rows] == ["attention", "conv_1 + relu", "conv_2"]
    assert lp.rows[0].ms_per_run == pytest.approx(5.0) and lp.rows[0].calls_per_run == 1
    assert lp.layer_ms_per_run == pytest.approx(8.0)
    with pytest.raises(ValueError, match="CUDA graph"):
        tensorrt_layers(MockTensorRTBackend(cuda_graph=True), x, warmup=0, runs=1, trt=trt)
