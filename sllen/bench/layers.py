"""Per-layer time (``sllen-bench --layers``) from each backend's own profiler.

- ONNX Runtime: a second session with ``enable_profiling``; its JSON trace (Chrome trace
  format) has one ``"cat": "Node"`` event per node and run, named ``<node>_kernel_time``, with
  the duration in microseconds and ``args.op_name``. Runs before the cut (warm-up) are dropped
  by their ``model_run`` session events.
- PyTorch: ``torch.profiler.profile`` around the timed calls; ``key_averages()`` per aten
  operator (self time), plus the paper's blocks (HSEB, HSBAB, RSAEB, FFB, the decoders)
  marked with ``record_function`` from forward hooks, so the table reads against Fig. 2.
- TensorRT: an ``IProfiler`` subclass set as ``context.profiler``; TensorRT calls
  ``report_layer_time(layer_name, ms)`` once per layer for every enqueue (layer names are
  TensorRT's fused layers). Not with a CUDA graph: replays bypass the profiler.

Profiling runs after the timed iterations, never during them, so it does not touch the
latency numbers; its own overhead is reported beside the table.
"""

from __future__ import annotations

import importlib
import json
import os
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sllen.runtime.backends import Backend
from sllen.runtime.errors import InputError

ORT_SUFFIX = "_kernel_time"
# SLLEN's children in forward order, with the paper's names (Fig. 2).
BLOCKS = {
    "encoder": "U-Net encoder E",
    "ss_encoder": "SSaN encoder (SLLEN-4)",
    "ss_decoder": "SSaN decoder D_s",
    "hseb": "HSEB",
    "hsbab": "HSBAB (attention)",
    "rsaeb": "RSAEB",
    "ffb": "FFB",
    "lle_decoder": "LLEmN decoder",
}


@dataclass
class LayerTime:
    name: str
    kind: str  # op type (ONNX Runtime, aten op), "" where the profiler does not say
    ms_per_run: float
    calls_per_run: float
    share: float = 0.0  # of the summed layer time

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class LayerProfile:
    source: str
    runs: int
    layer_ms_per_run: float  # sum over layers (the profiler's view of one run)
    wall_ms_per_run: float  # measured while profiling (includes the profiler's cost)
    rows: list[LayerTime] = field(default_factory=list)  # slowest first
    blocks: list[LayerTime] = field(default_factory=list)  # PyTorch: the paper's blocks
    note: str = ""

    def top(self, k: int) -> list[LayerTime]:
        return self.rows[:k]

    def to_dict(self, top_k: int | None = None) -> dict[str, Any]:
        d = asdict(self)
        if top_k is not None:
            d["rows"] = [r.to_dict() for r in self.rows[:top_k]]
            d["rows_total"] = len(self.rows)
        return d


def _finish(rows: dict[str, list[float]], kinds: dict[str, str], runs: int) -> list[LayerTime]:
    """{name: [total ms, calls]} -> rows per run, slowest first, with their share."""
    out = [
        LayerTime(name, kinds.get(name, ""), total / runs, calls / runs)
        for name, (total, calls) in rows.items()
    ]
    out.sort(key=lambda r: r.ms_per_run, reverse=True)
    total = sum(r.ms_per_run for r in out) or 1.0
    for r in out:
        r.share = r.ms_per_run / total
    return out


def _timed_runs(fn: Callable[[], Any], runs: int) -> float:
    start = time.perf_counter()
    for _ in range(runs):
        fn()
    return 1000 * (time.perf_counter() - start) / runs


# --------------------------------------------------------------------------- ONNX Runtime


def parse_ort_profile(
    trace: str | os.PathLike[str] | list[dict[str, Any]], skip_runs: int = 0
) -> tuple[list[LayerTime], int]:
    """Per-node times from an ONNX Runtime profile: (rows slowest first, runs counted)."""
    events = trace if isinstance(trace, list) else json.loads(Path(trace).read_text())
    model_runs = sorted(
        (e for e in events if e.get("cat") == "Session" and e.get("name") == "model_run"),
        key=lambda e: e["ts"],
    )
    if len(model_runs) <= skip_runs:
        raise InputError(
            f"the ONNX Runtime profile has {len(model_runs)} runs, fewer than the "
            f"{skip_runs + 1} needed"
        )
    cut = 0
    if skip_runs:
        last = model_runs[skip_runs - 1]
        cut = last["ts"] + last.get("dur", 0)
    runs = len(model_runs) - skip_runs
    rows: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    kinds: dict[str, str] = {}
    for e in events:
        if e.get("cat") != "Node" or e.get("ts", 0) < cut:
            continue
        name = str(e.get("name", ""))
        if not name.endswith(ORT_SUFFIX):
            continue  # fence_before / fence_after markers of older versions
        name = name[: -len(ORT_SUFFIX)]
        rows[name][0] += e.get("dur", 0) / 1000.0
        rows[name][1] += 1
        kinds[name] = str(e.get("args", {}).get("op_name", ""))
    return _finish(rows, kinds, runs), runs


def onnxruntime_layers(
    model: str | os.PathLike[str] | None,
    x: np.ndarray,
    *,
    warmup: int,
    runs: int,
    device: str = "auto",
    threads: int | None = None,
) -> LayerProfile:
    """Profile `model` in a session of its own (profiling is a session option)."""
    from sllen.runtime.backends.onnxruntime import OnnxRuntimeBackend

    with tempfile.TemporaryDirectory(prefix="sllen-bench-") as tmp:
        backend = OnnxRuntimeBackend(
            model, device=device, threads=threads, profile_file=str(Path(tmp) / "ort")
        )
        try:
            for _ in range(warmup):
                backend.infer(x)
            wall = _timed_runs(lambda: backend.infer(x), runs)
            path = backend.end_profiling()
        finally:
            backend.close()
        assert path is not None
        rows, counted = parse_ort_profile(path, skip_runs=warmup)
    return LayerProfile(
        "onnxruntime profiling (per node)",
        counted,
        sum(r.ms_per_run for r in rows),
        wall,
        rows,
        note="node names after ONNX Runtime's graph optimizations (fused nodes)",
    )


# --------------------------------------------------------------------------- PyTorch


def _block_hooks(model: Any, torch: Any) -> list[Any]:
    """Forward hooks that wrap each of SLLEN's blocks in a profiler range named after it."""
    handles = []
    for attr, label in BLOCKS.items():
        module = getattr(model, attr, None)
        if module is None:
            continue
        ranges: list[Any] = []

        def enter(_m: Any, _args: Any, label: str = label, ranges: list[Any] = ranges) -> None:
            r = torch.autograd.profiler.record_function(f"block: {label}")
            r.__enter__()
            ranges.append(r)

        def leave(_m: Any, _args: Any, _out: Any, ranges: list[Any] = ranges) -> None:
            ranges.pop().__exit__(None, None, None)

        handles.append(module.register_forward_pre_hook(enter))
        handles.append(module.register_forward_hook(leave))
    return handles


def pytorch_layers(backend: Backend, x: np.ndarray, *, warmup: int, runs: int) -> LayerProfile:
    torch = backend.torch  # type: ignore[attr-defined]
    from torch.profiler import ProfilerActivity, profile

    cuda = str(backend.info.device).startswith("cuda")
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    for _ in range(warmup):
        backend.infer(x)
    handles = _block_hooks(backend.model, torch)  # type: ignore[attr-defined]
    try:
        with profile(activities=activities) as prof:
            wall = _timed_runs(lambda: backend.infer(x), runs)
    finally:
        for h in handles:
            h.remove()
    ops: dict[str, list[float]] = {}
    blocks: dict[str, list[float]] = {}
    for e in prof.key_averages():
        device_self = float(getattr(e, "self_device_time_total", 0.0) or 0.0)
        device_total = float(getattr(e, "device_time_total", 0.0) or 0.0)
        if e.key.startswith("block: "):
            us = device_total if cuda and device_total else e.cpu_time_total
            blocks[e.key[len("block: ") :]] = [us / 1000.0, float(e.count)]
        elif e.key.startswith("aten::"):
            us = device_self if cuda else e.self_cpu_time_total
            if us > 0:
                ops[e.key] = [us / 1000.0, float(e.count)]
    rows = _finish(ops, {k: "aten op" for k in ops}, runs)
    block_rows = _finish(blocks, {}, runs)
    order = list(BLOCKS.values())
    block_rows.sort(key=lambda r: order.index(r.name) if r.name in order else len(order))
    clock = "GPU self time" if cuda else "CPU self time"
    return LayerProfile(
        f"torch.profiler (aten operators, {clock})",
        runs,
        sum(r.ms_per_run for r in rows),
        wall,
        rows,
        block_rows,
        note="blocks include their children; operators are self time",
    )


# --------------------------------------------------------------------------- TensorRT


def tensorrt_layers(
    backend: Backend, x: np.ndarray, *, warmup: int, runs: int, trt: Any = None
) -> LayerProfile:
    """Per-layer times through TensorRT's IProfiler (`trt`: the tensorrt module, for tests)."""
    if backend.info.extra.get("cuda_graph"):
        raise InputError("--layers cannot see inside a CUDA graph: run it without --cuda-graph")
    trt = trt if trt is not None else importlib.import_module("tensorrt")
    context = getattr(backend, "context", None) or getattr(backend, "_context", None)
    if context is None:
        raise RuntimeError("this TensorRT backend exposes no execution context")

    class LayerTimes(trt.IProfiler):
        def __init__(self) -> None:
            trt.IProfiler.__init__(self)  # the documented way to subclass it from Python
            self.times: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
            self.order: list[str] = []

        def report_layer_time(self, layer_name: str, ms: float) -> None:
            if layer_name not in self.times:
                self.order.append(layer_name)
            entry = self.times[layer_name]
            entry[0] += float(ms)
            entry[1] += 1

    for _ in range(warmup):
        backend.infer(x)
    profiler = LayerTimes()
    previous = context.profiler
    context.profiler = profiler
    try:
        wall = _timed_runs(lambda: backend.infer(x), runs)
    finally:
        context.profiler = previous
    rows = _finish(dict(profiler.times), {}, runs)
    return LayerProfile(
        "TensorRT IProfiler (per layer)",
        runs,
        sum(r.ms_per_run for r in rows),
        wall,
        rows,
        note="TensorRT layer names (fused layers, reformatting nodes)",
    )


def profile_layers(
    backend: Backend,
    model: str | os.PathLike[str] | None,
    x: np.ndarray,
    *,
    warmup: int,
    runs: int,
    device: str = "auto",
    threads: int | None = None,
) -> LayerProfile:
    """The per-layer profile with the profiler that belongs to `backend`."""
    name = backend.info.backend
    if name == "onnxruntime":
        return onnxruntime_layers(
            model, x, warmup=warmup, runs=runs, device=device, threads=threads
        )
    if name == "pytorch":
        return pytorch_layers(backend, x, warmup=warmup, runs=runs)
    if name == "tensorrt":
        return tensorrt_layers(backend, x, warmup=warmup, runs=runs)
    raise InputError(f"no layer profiler for the {name} backend")
