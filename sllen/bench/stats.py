"""Latency statistics of one benchmark case, in the form trtexec and ultralytics report them.

Percentiles interpolate linearly between the two nearest samples (numpy's default "linear"
method, Hyndman and Fan's type 7), so p50 of an even count is the mean of the middle two. With
few samples the high percentiles are close to the maximum: the sample count travels with the
numbers (``n``) so nobody reads a p99 of 5 samples as a tail.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from sllen.runtime.errors import InputError

PERCENTILES = (50, 90, 99)


@dataclass(frozen=True)
class LatencyStats:
    """Milliseconds per batch over ``n`` timed iterations."""

    n: int
    mean: float
    std: float
    p50: float
    p90: float
    p99: float
    min: float
    max: float

    def throughput(self, batch: int = 1) -> float:
        """Frames per second at this mean latency (``batch`` frames per iteration)."""
        return batch * 1000.0 / self.mean if self.mean > 0 else math.inf

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def latency_stats(seconds: Sequence[float]) -> LatencyStats:
    """Statistics of per-iteration latencies given in seconds (reported in milliseconds)."""
    if len(seconds) == 0:
        raise InputError("no timed iterations: at least one is needed for statistics")
    ms = [1000.0 * float(s) for s in seconds]
    if any(not math.isfinite(v) or v < 0 for v in ms):
        raise InputError("latencies must be finite and non-negative")
    arr = np.asarray(ms, dtype=np.float64)
    p50, p90, p99 = (float(v) for v in np.percentile(arr, PERCENTILES))
    return LatencyStats(
        n=len(ms),
        mean=float(arr.mean()),
        std=float(arr.std(ddof=1)) if len(ms) > 1 else 0.0,
        p50=p50,
        p90=p90,
        p99=p99,
        min=float(arr.min()),
        max=float(arr.max()),
    )
