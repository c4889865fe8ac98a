"""sllen-bench as a library: latency, throughput, memory, FLOPs and per-layer time of any
backend at any frame size (see docs/performance.md).

    from sllen.bench import BenchConfig, BenchOptions, run_bench
    results = run_bench(BenchOptions([BenchConfig(backend="onnxruntime")], [(720, 1280)]))

Importing this package imports neither torch nor an inference library.
"""

from sllen.bench.runner import BenchConfig, BenchOptions, CaseResult, run_bench, run_case
from sllen.bench.stats import LatencyStats, latency_stats

__all__ = [
    "BenchConfig",
    "BenchOptions",
    "CaseResult",
    "LatencyStats",
    "latency_stats",
    "run_bench",
    "run_case",
]
