"""Model FLOPs per frame (counted once from the PyTorch model) and a reference peak rate.

FLOPs are counted with ``torch.utils.flop_counter.FlopCounterMode`` on a model built on the
``meta`` device: shapes only, no weights and no arithmetic, so a 1080p count takes a fraction
of a second whatever the backend. The model's config comes from the backend: the PyTorch
backend's network, the ``sllen_config`` metadata every ONNX file sllen-export writes carries,
or (TensorRT) the ONNX file named in the engine's metadata. Counts are 2 x multiply-adds of
convolutions and matrix products (FlopCounterMode's convention); element-wise work is not
counted. INT8 and FP16 files do the same operations, so the count is the same for every
precision and "achieved FLOP/s" compares backends on one scale.

Without torch the count is None ("n/a" in the table).
"""

from __future__ import annotations

import functools
import json
import time
from pathlib import Path
from typing import Any

from sllen.runtime.backends import Backend, installed

CONFIG_KEY = "sllen_config"


def config_json_for(backend: Backend) -> str | None:
    """The model config (JSON) of what `backend` runs, or None when it cannot be known."""
    model = getattr(backend, "model", None)
    config = getattr(model, "config", None)
    if config is not None and hasattr(config, "to_json"):
        return str(config.to_json())
    meta = backend.info.extra.get("metadata") or {}
    if CONFIG_KEY in meta:
        return str(meta[CONFIG_KEY])
    onnx_file = meta.get("onnx_file")  # a TensorRT engine: look in the ONNX it was built from
    if onnx_file:
        return _config_from_onnx(Path(backend.info.model).parent / Path(onnx_file).name)
    return None


def _config_from_onnx(path: Path) -> str | None:
    if not path.is_file() or not installed("onnx"):
        return None
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    return next((p.value for p in proto.metadata_props if p.key == CONFIG_KEY), None)


@functools.lru_cache(maxsize=64)
def count_flops(config_json: str, height: int, width: int) -> int | None:
    """FLOPs of one forward pass (the enhanced image) for one HxW frame; None without torch."""
    if not installed("torch"):
        return None
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from sllen.config import ModelConfig
    from sllen.model.sllen import SLLEN

    config = ModelConfig.from_dict(json.loads(config_json))
    with torch.device("meta"):
        model = SLLEN(config).eval()
        x = torch.empty(1, config.in_channels, height, width)
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model(x)
    return int(counter.get_total_flops())


def preload(cpu_threads: set[int | None], measure_gemm: bool) -> bool:
    """Do once, before any case is timed, what counting does the first time: import torch and
    the model, count a small frame, measure the CPU reference GEMM for each thread count.
    Done after the first case instead, its ~330 MB would be in every later row's peak RSS but
    not the first's. True when torch is there (every row's peak then includes it)."""
    if not installed("torch"):
        return False
    from sllen.config import get_preset

    count_flops(get_preset("edge").to_json(), 64, 64)
    if measure_gemm:
        for threads in cpu_threads:
            _cpu_sgemm(threads)
    return True


def flops_for(backend: Backend, height: int, width: int) -> int | None:
    config = config_json_for(backend)
    return count_flops(config, height, width) if config is not None else None


# --------------------------------------------------------------------------- peak


def reference_gflops(device: str, precision: str, threads: int | None) -> tuple[float, str]:
    """A measured dense matrix-product rate on `device`: (GFLOP/s, how it was measured).

    Not the datasheet peak but what one large GEMM reaches here and now, with the same thread
    count as the benchmark (on a shared machine it is disturbed the same way the rows are).
    The CPU figure is FP32 SGEMM whatever the row's precision: INT8 rows can exceed 100%.
    It is an estimate: the faster of numpy's and torch's SGEMM (when torch is installed), best
    of several runs, since numpy's BLAS alone may run a slow kernel (OPENBLAS_CORETYPE) and
    make a model's FP32 convolutions read as more than 100%.
    """
    if device.startswith("cuda"):
        return _cuda_gemm(device, precision)
    return _cpu_sgemm(threads)


def _best_seconds(fn: Any, repeats: int) -> float:
    fn()  # first call: thread pools, packing buffers
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


@functools.lru_cache(maxsize=8)
def _cpu_sgemm(threads: int | None, n: int = 1024) -> tuple[float, str]:
    rate, how = _numpy_sgemm(threads, n)
    torch_rate = _torch_sgemm(threads, n)
    if torch_rate is not None and torch_rate[0] > rate:
        return torch_rate
    return rate, how


def _torch_sgemm(threads: int | None, n: int) -> tuple[float, str] | None:
    if not installed("torch"):
        return None
    import torch

    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(int(threads))
    try:
        a, b = torch.rand(n, n), torch.rand(n, n)
        seconds = _best_seconds(lambda: a @ b, repeats=7)
    finally:
        torch.set_num_threads(before)
    how = f"torch SGEMM {n}x{n}" + (f", threads={threads}" if threads else "")
    return 2 * n**3 / seconds / 1e9, how


def _numpy_sgemm(threads: int | None, n: int) -> tuple[float, str]:
    import numpy as np

    rng = np.random.default_rng(0)
    a = rng.random((n, n), dtype=np.float32)
    b = rng.random((n, n), dtype=np.float32)
    how = f"numpy SGEMM {n}x{n}"
    limit: Any = None
    if threads and installed("threadpoolctl"):
        from threadpoolctl import threadpool_limits

        limit = threadpool_limits(limits=int(threads), user_api="blas")
        how += f", threads={threads}"
    try:
        seconds = _best_seconds(lambda: a @ b, repeats=7)
    finally:
        if limit is not None:
            limit.restore_original_limits()
    return 2 * n**3 / seconds / 1e9, how


@functools.lru_cache(maxsize=8)
def _cuda_gemm(device: str, precision: str, n: int = 4096) -> tuple[float, str]:
    import torch

    dtype = torch.float16 if precision in ("fp16", "int8") else torch.float32  # INT8: vs FP16
    a = torch.rand(n, n, device=device, dtype=dtype)
    b = torch.rand(n, n, device=device, dtype=dtype)

    def run() -> None:
        a @ b
        torch.cuda.synchronize(device)

    seconds = _best_seconds(run, repeats=10)
    tf32 = " (TF32 allowed)" if torch.backends.cuda.matmul.allow_tf32 else ""
    return 2 * n**3 / seconds / 1e9, f"torch GEMM {n}x{n} {str(dtype)[6:]}{tf32}"
