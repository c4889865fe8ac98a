"""Latency statistics on samples whose answers are known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sllen.bench.stats import latency_stats


def test_percentiles_interpolate_linearly() -> None:
    s = latency_stats([x / 1000 for x in (4.0, 1.0, 3.0, 2.0)])  # unsorted on purpose
    assert s.p50 == pytest.approx(2.5)  # mean of the middle two
    assert latency_stats([7.0 / 1000]).p99 == pytest.approx(7.0)


def test_latency_stats_in_milliseconds() -> None:
    s = latency_stats([k / 1000 for k in range(1, 11)])  # 1..10 ms
    assert s.n == 10
    assert s.mean == pytest.approx(5.5)
    assert s.p50 == pytest.approx(5.5)
    assert s.p90 == pytest.approx(9.1)
    assert s.p99 == pytest.approx(9.91)
    assert (s.min, s.max) == pytest.approx((1.0, 10.0))
    assert s.std == pytest.approx(np.std(np.arange(1, 11), ddof=1))
    assert s.throughput() == pytest.approx(1000 / 5.5)
    assert s.throughput(batch=4) == pytest.approx(4000 / 5.5)
    assert s.to_dict()["p99"] == s.p99


def test_latency_stats_single_sample_and_bad_input() -> None:
    s = latency_stats([0.02])
    assert s.n == 1 and s.std == 0.0 and s.mean == s.p99 == s.min == pytest.approx(20.0)
    with pytest.raises(ValueError, match="no timed iterations"):
        latency_stats([])
    with pytest.raises(ValueError, match="finite"):
        latency_stats([0.01, math.nan])
    with pytest.raises(ValueError, match="finite"):
        latency_stats([-0.01])
