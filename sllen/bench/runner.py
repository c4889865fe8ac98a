"""Benchmark cases: warm-up, timed iterations, statistics, memory, FLOPs, layer profiles.

One *configuration* (model file, backend, precision, attention, device, threads) is opened
once and timed at every requested resolution; each (configuration, resolution) is one
:class:`CaseResult`. Timing per iteration:

- CPU: ``time.perf_counter`` around ``Backend.infer`` (a monotonic clock);
- CUDA with torch present: CUDA events recorded on the current stream around the call, read
  after it returns (``infer`` hands results back on the host, so the end event is behind all
  of the call's GPU work); the host wall time is kept beside it.

The split into host-to-device, compute and device-to-host is the backend's own
``last_timing`` (CUDA events in the TensorRT backend, synchronised clocks in PyTorch's);
ONNX Runtime on the CPU has no copies and reports compute only.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sllen.bench import flops as flops_mod
from sllen.bench.layers import LayerProfile, profile_layers
from sllen.bench.memory import MemoryUse, PeakMemory
from sllen.bench.stats import LatencyStats, latency_stats
from sllen.runtime.backends import Backend, choose_backend, installed, open_backend
from sllen.runtime.errors import InputError
from sllen.runtime.preprocess import padded_size

LogFn = Callable[[str], None]


@dataclass(frozen=True)
class BenchConfig:
    """What is opened once: a model on a backend with its options."""

    model: str | None = None  # None: the bundled model
    backend: str = "auto"
    precision: str = "auto"  # PyTorch backend only (files carry their precision)
    attention: str = "auto"  # PyTorch backend only: auto, kernel, sdpa
    device: str = "auto"
    threads: int | None = None
    cuda_graph: bool = False  # TensorRT only
    bands: str = "auto"  # ONNX Runtime only: auto, on, off (row-band execution on the CPU)

    def options(self, backend: str) -> dict[str, Any]:
        if backend == "pytorch":
            return {"precision": self.precision, "attention": self.attention}
        if backend == "onnxruntime":
            return {"bands": self.bands}
        if backend == "tensorrt" and self.cuda_graph:
            return {"cuda_graph": True}
        return {}


@dataclass
class BenchOptions:
    configs: list[BenchConfig] = field(default_factory=lambda: [BenchConfig()])
    resolutions: list[tuple[int, int]] = field(default_factory=lambda: [(720, 1280)])  # (H, W)
    batch: int = 1
    warmup: int = 3
    iterations: int = 20
    duration: float | None = None  # stop the timed loop after this many seconds (min 2 runs)
    layers: bool = False
    layer_runs: int = 5
    top_k: int = 15
    flops: bool = True
    peak_gflops: float | None = None  # the device's peak; None: measure a reference GEMM
    # Time size by size, configuration by configuration (each opened for its case): a shared
    # machine's load drifts over minutes, and interleaving spreads the drift over all rows.
    interleave: bool = False


@dataclass
class CaseResult:
    config: BenchConfig
    backend: str
    hw: tuple[int, int]  # requested frame (H, W)
    input_hw: tuple[int, int]  # what the model got (padded to a multiple of 16)
    batch: int
    precision: str = ""
    device: str = ""
    describe: str = ""  # BackendInfo.describe()
    stats: LatencyStats | None = None
    timer: str = ""
    host_stats: LatencyStats | None = None  # CUDA: host wall time beside the events
    split_ms: dict[str, float] | None = None  # mean h2d / compute / d2h
    memory: MemoryUse | None = None
    flops_per_frame: int | None = None
    peak_gflops: float | None = None
    peak_source: str = ""
    harness_overhead_ms: float | None = None
    layers: LayerProfile | None = None
    layers_error: str | None = None
    timed_in_bands: bool = False  # ONNX Runtime: the timed runs went in row bands
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """backend / precision [/ attention] [/ model file]: one line of the plot legend."""
        precision = self.precision or self.config.precision
        if self.extra.get("int8_flavour"):  # the TensorRT (symmetric) or the CPU flavour
            precision += f" ({self.extra['int8_flavour']})"
        parts = [self.backend, precision]
        if self.backend == "pytorch" and self.config.attention != "auto":
            parts.append(f"attention {self.config.attention}")
        if self.backend == "onnxruntime" and self.config.bands != "auto":
            parts.append(f"bands {self.config.bands}")
        if self.config.model is not None:
            parts.append(os.path.basename(self.config.model))
        return " / ".join(parts)

    @property
    def throughput(self) -> float | None:
        return self.stats.throughput(self.batch) if self.stats else None

    @property
    def achieved_gflops(self) -> float | None:
        if self.stats is None or self.flops_per_frame is None:
            return None
        return self.flops_per_frame * self.batch / (self.stats.mean / 1000.0) / 1e9

    @property
    def pct_of_peak(self) -> float | None:
        achieved = self.achieved_gflops
        if achieved is None or not self.peak_gflops:
            return None
        return 100.0 * achieved / self.peak_gflops

    @property
    def harness_overhead_pct(self) -> float | None:
        if self.harness_overhead_ms is None or self.stats is None or self.stats.mean <= 0:
            return None
        return 100.0 * self.harness_overhead_ms / self.stats.mean

    @property
    def layers_whole_frame(self) -> bool:
        """The profile ran whole frames while the timed runs went in row bands: ONNX Runtime
        profiles one session, and the bands run sub-graphs in sessions of their own."""
        return self.layers is not None and self.backend == "onnxruntime" and self.timed_in_bands

    @property
    def layers_overhead_pct(self) -> float | None:
        """The profiling wall time over this row's timed mean; None where they ran different
        paths (``layers_whole_frame``: report.layers_reference finds a bands-off row instead)."""
        if self.layers_whole_frame:
            return None
        return self.layers_overhead_over(self)

    def layers_overhead_over(self, other: CaseResult) -> float | None:
        if self.layers is None or other.stats is None or other.stats.mean <= 0:
            return None
        per_frame = self.layers.wall_ms_per_run
        return 100.0 * (per_frame - other.stats.mean) / other.stats.mean


# --------------------------------------------------------------------------- clocks


class Clock:
    """Times one call: CUDA events on a CUDA device (when torch is there), else perf_counter."""

    def __init__(self, device: str) -> None:
        self.torch: Any = None
        self.device = device
        if device.startswith("cuda") and installed("torch"):
            import torch

            if torch.cuda.is_available():
                self.torch = torch
        self.name = "CUDA events" if self.torch is not None else "time.perf_counter"

    def time(self, fn: Callable[[], Any]) -> tuple[float, float]:
        """(seconds by this clock, host wall seconds) of one call of `fn`."""
        if self.torch is None:
            t0 = time.perf_counter()
            fn()
            t = time.perf_counter() - t0
            return t, t
        cuda = self.torch.cuda
        with cuda.device(self.device):
            start, end = cuda.Event(enable_timing=True), cuda.Event(enable_timing=True)
            t0 = time.perf_counter()
            start.record()
            fn()
            end.record()
            end.synchronize()
            wall = time.perf_counter() - t0
        return start.elapsed_time(end) / 1000.0, wall


def _timed_loop(
    call: Callable[[], Any],
    timing: Callable[[], Any],
    clock: Clock,
    iterations: int,
    duration: float | None,
) -> tuple[list[float], list[float], list[Any]]:
    """(clock seconds, host seconds, the backend's split) of each timed call."""
    samples: list[float] = []
    walls: list[float] = []
    splits: list[Any] = []
    start = time.perf_counter()
    for i in range(iterations):
        t, wall = clock.time(call)
        samples.append(t)
        walls.append(wall)
        splits.append(timing())
        if duration is not None and i >= 1 and time.perf_counter() - start > duration:
            break
    return samples, walls, splits


def harness_overhead(clock: Clock, backend: Backend, reps: int = 200) -> float:
    """Milliseconds per iteration that the timing loop itself costs: the same loop around an
    empty call (an upper bound of what it adds to a measured latency)."""
    start = time.perf_counter()
    _timed_loop(lambda: None, lambda: backend.last_timing, clock, reps, None)
    return 1000 * (time.perf_counter() - start) / reps


# --------------------------------------------------------------------------- cases


def input_for(hw: tuple[int, int], batch: int, multiple: int = 16, seed: int = 0) -> np.ndarray:
    """A dark random batch at `hw` padded to the model's multiple (what sllen-run would feed)."""
    ph, pw = padded_size(hw[0], hw[1], multiple)
    rng = np.random.default_rng(seed)
    return (rng.random((batch, 3, ph, pw), dtype=np.float32) * 0.2).astype(np.float32)


def _peak(opts: BenchOptions, result: CaseResult, threads: int | None) -> None:
    if opts.peak_gflops is not None:
        result.peak_gflops, result.peak_source = opts.peak_gflops, "given (--peak-gflops)"
        return
    if result.device.startswith("cuda") and not installed("torch"):
        return
    result.peak_gflops, result.peak_source = flops_mod.reference_gflops(
        result.device, result.precision, threads
    )


def run_case(
    backend: Backend,
    config: BenchConfig,
    hw: tuple[int, int],
    opts: BenchOptions,
    log: LogFn | None = None,
) -> CaseResult:
    """Time `backend` (already open) on one frame size."""
    info = backend.info
    x = input_for(hw, opts.batch, info.multiple)
    result = CaseResult(
        config=config,
        backend=info.backend,
        hw=hw,
        input_hw=(x.shape[2], x.shape[3]),
        batch=opts.batch,
        precision=info.precision,
        device=info.device,
        describe=info.describe(),
    )
    meta = info.extra.get("metadata") or {}
    # the ONNX file's key, or the engine's (export/trt/build.py writes it without the prefix)
    flavour = meta.get("sllen_int8_flavour") or meta.get("int8_flavour")
    if flavour:
        result.extra["int8_flavour"] = flavour
    clock = Clock(info.device)
    result.timer = clock.name
    with PeakMemory(info.device) as mem:
        for _ in range(opts.warmup):
            backend.infer(x)
        samples, walls, splits = _timed_loop(
            lambda: backend.infer(x),
            lambda: backend.last_timing,
            clock,
            opts.iterations,
            opts.duration,
        )
    # Which path the timed runs took (the backend's last one; nothing public says it): a
    # profile of them is of the whole frame all the same (layers_whole_frame).
    result.timed_in_bands = getattr(backend, "_last_path", None) == "bands"
    result.memory = mem.result
    if info.extra.get("device_memory_bytes") is not None:  # TensorRT's own activation memory
        result.extra["engine_device_memory_mb"] = info.extra["device_memory_bytes"] / 2**20
    result.stats = latency_stats(samples)
    if clock.torch is not None:
        result.host_stats = latency_stats(walls)
    if any(s.h2d or s.d2h for s in splits) or info.device.startswith("cuda"):
        result.split_ms = {
            part: 1000 * float(np.mean([getattr(s, part) for s in splits]))
            for part in ("h2d", "compute", "d2h")
        }
    result.harness_overhead_ms = harness_overhead(clock, backend)
    if opts.flops:
        result.flops_per_frame = flops_mod.flops_for(backend, *result.input_hw)
        if result.flops_per_frame is not None:
            _peak(opts, result, config.threads)
    if opts.layers:
        try:
            result.layers = profile_layers(
                backend,
                config.model,
                x,
                warmup=max(1, opts.warmup),  # ONNX Runtime profiles in a fresh session
                runs=max(1, opts.layer_runs),
                device=config.device,
                threads=config.threads,
            )
        except (ImportError, ValueError, RuntimeError, OSError) as e:
            result.layers_error = " ".join(str(e).split())
    if log:
        s = result.stats
        log(
            f"  {hw[1]}x{hw[0]}: mean {s.mean:.2f} ms, p50 {s.p50:.2f}, p99 {s.p99:.2f} "
            f"({s.n} runs)"
        )
    return result


def _open(config: BenchConfig, log: LogFn | None) -> tuple[str, Backend | str]:
    """(backend name, the open backend or why it could not open)."""
    name, _ = choose_backend(config.model, config.backend)
    if log:
        log(f"{name}: {config.model or 'bundled model'}")
    try:
        backend = open_backend(
            config.model,
            name,
            device=config.device,
            threads=config.threads,
            **config.options(name),
        )
    except (ValueError, OSError, RuntimeError, ImportError) as e:
        # a backend that cannot open on this machine (no GPU, no kernel) is a row, not a crash
        msg = " ".join(str(e).split())
        if log:
            log(f"  cannot open: {msg}")
        return name, msg
    if log:
        log(f"  {backend.info.describe()}")
    return name, backend


def _case(
    name: str,
    backend: Backend | str,
    config: BenchConfig,
    hw: tuple[int, int],
    opts: BenchOptions,
    log: LogFn | None,
) -> CaseResult:
    if isinstance(backend, str):
        return CaseResult(config, name, hw, padded_size(*hw), opts.batch, error=backend)
    try:
        return run_case(backend, config, hw, opts, log)
    except (ValueError, RuntimeError, MemoryError) as e:
        msg = " ".join(str(e).split())
        if log:
            log(f"  {hw[1]}x{hw[0]}: {msg}")
        return CaseResult(config, name, hw, padded_size(*hw), opts.batch, error=msg)


def run_config(
    config: BenchConfig, opts: BenchOptions, log: LogFn | None = None
) -> list[CaseResult]:
    """Open one configuration and time it at every resolution; failures become error rows."""
    name, backend = _open(config, log)
    try:
        return [_case(name, backend, config, hw, opts, log) for hw in opts.resolutions]
    finally:
        if not isinstance(backend, str):
            backend.close()


def run_bench(opts: BenchOptions, log: LogFn | None = None) -> list[CaseResult]:
    """Every configuration at every resolution, in the order given."""
    if opts.batch < 1:
        raise InputError("--batch must be at least 1")
    if opts.iterations < 1:
        raise InputError("--iterations must be at least 1")
    if opts.warmup < 0:
        raise InputError("--warmup cannot be negative")
    if not opts.resolutions:
        raise InputError("no resolution to benchmark")
    if opts.flops:  # every row's peak RSS alike (see the report's note)
        on_cpu = {c.threads for c in opts.configs if c.device in ("cpu", "auto")}
        flops_mod.preload(on_cpu, measure_gemm=opts.peak_gflops is None)
    if not opts.interleave:
        return [r for config in opts.configs for r in run_config(config, opts, log)]
    by_config: list[list[CaseResult]] = [[] for _ in opts.configs]
    for hw in opts.resolutions:
        for i, config in enumerate(opts.configs):
            # opened for this one case: memory stays that of one model, and its peak is its own
            by_config[i] += run_config(config, dataclasses.replace(opts, resolutions=[hw]), log)
    return [r for rows in by_config for r in rows]  # reported configuration by configuration
