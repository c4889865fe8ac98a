"""Correctness, time and peak memory of the sllen attention kernel on a GPU.

    python scripts/gpu/attention_bench.py            # 1k/8k/32k tokens, head 64 and 512
    OUT=/tmp/x python scripts/gpu/attention_bench.py --tokens 1024 --head-dims 64

Per case (batch 1; 2 heads of 64 like the edge preset, 1 head of 512 like the paper's):
- error of the kernel against a float64 reference (queries in chunks, so even 32k tokens fit),
  next to torch scaled_dot_product_attention's own error; pass: max |err| <= the tolerance
  floor (FP32 1e-5, FP16 1e-3) or <= 2x torch's error on the same inputs;
- time (CUDA events, median of repeats) of the kernel, of every SDPA backend torch has for the
  case (flash, memory-efficient, cuDNN, math) and of the naive MatMul-Softmax-MatMul;
- peak memory above the inputs (torch's allocator; the kernel allocates nothing but its output,
  so its peak is the output: linear in tokens).
Targets: every case in memory linear in the tokens; within 2x of torch's best fused
kernel (flash / memory-efficient / cuDNN) where torch has one for the head size.
Prints a table and writes $OUT/attention_bench.json (default OUT=/tmp/sllen-gpu).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from sllen.runtime import attention_kernel as ak

TOL_FLOOR = {torch.float32: 1e-5, torch.float16: 1e-3}


def reference(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float) -> torch.Tensor:
    out = torch.empty(q.shape, dtype=torch.float64, device=q.device)
    k64, v64 = k.double(), v.double()
    for s in range(0, q.shape[-2], 2048):
        scores = (q[..., s : s + 2048, :].double() @ k64.transpose(-1, -2)) * scale
        out[..., s : s + 2048, :] = torch.softmax(scores, dim=-1) @ v64
    return out


def naive(q, k, v, scale):
    return torch.softmax((q @ k.transpose(-1, -2)) * scale, dim=-1) @ v


def sdpa_backends() -> dict[str, Any]:
    from torch.nn.attention import SDPBackend

    names = {"flash": "FLASH_ATTENTION", "efficient": "EFFICIENT_ATTENTION"}
    names.update({"cudnn": "CUDNN_ATTENTION", "math": "MATH"})
    return {k: getattr(SDPBackend, v) for k, v in names.items() if hasattr(SDPBackend, v)}


def sdpa_with(backend: Any):
    from torch.nn.attention import sdpa_kernel

    def run(q, k, v, scale):
        with sdpa_kernel([backend]):
            return F.scaled_dot_product_attention(q, k, v, scale=scale)

    return run


def measure(fn, q, k, v, scale, min_ms: float, max_reps: int) -> dict[str, Any]:
    """Median time (ms) and peak memory above the inputs (MiB), or the error that stopped it."""
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    try:
        with torch.no_grad():
            out = fn(q, k, v, scale)  # warm-up, and the memory peak
            torch.cuda.synchronize()
            peak = (torch.cuda.max_memory_allocated() - base) / 2**20
            del out
            times: list[float] = []
            while len(times) < max_reps and (len(times) < 3 or sum(times) < min_ms):
                start = torch.cuda.Event(enable_timing=True)
                end = torch.cuda.Event(enable_timing=True)
                start.record()
                fn(q, k, v, scale)
                end.record()
                end.synchronize()
                times.append(start.elapsed_time(end))
    except (RuntimeError, torch.cuda.OutOfMemoryError) as exc:  # unsupported case or OOM
        torch.cuda.empty_cache()
        return {"error": str(exc).splitlines()[0][:160]}
    return {"ms": statistics.median(times), "peak_mib": peak, "reps": len(times)}


def run_case(n: int, d: int, dtype: torch.dtype, args: argparse.Namespace) -> dict[str, Any]:
    heads = 2 if d <= 64 else 1
    scale = d**-0.5
    g = torch.Generator(device="cuda").manual_seed(n + d)
    q, k, v = (torch.randn(1, heads, n, d, device="cuda", dtype=dtype, generator=g) for _ in "qkv")
    case: dict[str, Any] = {"tokens": n, "head_dim": d, "heads": heads, "dtype": str(dtype)[6:]}
    case["kernel_variant"] = ak.selected_kernel(d, dtype)
    out_mib = q.numel() * q.element_size() / 2**20

    with torch.no_grad():
        want = reference(q, k, v, scale)
        got = ak.kernel_attention(q, k, v, scale)
        err = (got.double() - want).abs().max().item()
        try:
            sdpa_err = F.scaled_dot_product_attention(q, k, v, scale=scale).double() - want
            sdpa_err = sdpa_err.abs().max().item()
        except (RuntimeError, torch.cuda.OutOfMemoryError):
            sdpa_err = None
        del want, got
    tol = max(TOL_FLOOR[dtype], 2 * sdpa_err) if sdpa_err is not None else TOL_FLOOR[dtype]
    case["correctness"] = {
        "kernel_max_abs_err": err,
        "sdpa_max_abs_err": sdpa_err,
        "tolerance": tol,
        "pass": err <= tol,
    }

    impls = {"kernel": lambda q, k, v, s: ak.kernel_attention(q, k, v, s)}
    if dtype == torch.float16:
        impls["kernel_cuda_core"] = lambda q, k, v, s: ak.kernel_attention(
            q, k, v, s, kernel="cuda-core"
        )
    impls.update({f"sdpa_{name}": sdpa_with(b) for name, b in sdpa_backends().items()})
    impls["naive"] = naive
    timings = {
        name: measure(fn, q, k, v, scale, args.min_ms, args.max_reps) for name, fn in impls.items()
    }
    case["timings"] = timings
    fused = [
        t["ms"]
        for name, t in timings.items()
        if name in ("sdpa_flash", "sdpa_efficient", "sdpa_cudnn") and "ms" in t
    ]
    kernel = timings["kernel"]
    case["best_fused_sdpa_ms"] = min(fused) if fused else None
    case["kernel_vs_best_fused"] = kernel["ms"] / min(fused) if fused and "ms" in kernel else None
    # Linear memory: the kernel's peak is its output (allow the allocator's rounding).
    case["kernel_memory_linear"] = "peak_mib" in kernel and kernel["peak_mib"] <= out_mib * 1.05 + 2
    case["output_mib"] = out_mib
    del q, k, v
    torch.cuda.empty_cache()
    return case


def fmt(t: dict[str, Any]) -> str:
    if "ms" not in t:
        return "OOM" if "out of memory" in t.get("error", "").lower() else "n/a"
    return f"{t['ms']:8.2f} ms {t['peak_mib']:8.0f} MiB"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, nargs="+", default=[1024, 8192, 32768])
    parser.add_argument("--head-dims", type=int, nargs="+", default=[64, 512])
    parser.add_argument("--dtypes", nargs="+", default=["float32", "float16"])
    parser.add_argument("--min-ms", type=float, default=200.0, help="time each case this long")
    parser.add_argument("--max-reps", type=int, default=20)
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "/tmp/sllen-gpu")))
    args = parser.parse_args()

    print(ak.status())
    if not ak.available():
        print("the kernel is not available: nothing to measure", file=sys.stderr)
        return 2
    props = torch.cuda.get_device_properties(0)
    result: dict[str, Any] = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "gpu": props.name,
        "compute_capability": f"{props.major}.{props.minor}",
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "library": str(ak.find_library()),
        "cases": [],
    }
    print(f"{props.name} (cc {props.major}.{props.minor}), torch {torch.__version__}")
    for dtype_name in args.dtypes:
        dtype = getattr(torch, dtype_name)
        for d in args.head_dims:
            for n in args.tokens:
                case = run_case(n, d, dtype, args)
                result["cases"].append(case)
                c, t = case["correctness"], case["timings"]
                ratio = case["kernel_vs_best_fused"]
                sdpa_err = c["sdpa_max_abs_err"]
                sdpa_err = "n/a" if sdpa_err is None else f"{sdpa_err:.2e}"
                print(
                    f"{dtype_name:8s} d={d:3d} n={n:6d} [{case['kernel_variant']}] "
                    f"err {c['kernel_max_abs_err']:.2e} (sdpa {sdpa_err}) "
                    f"{'PASS' if c['pass'] else 'FAIL'} | kernel {fmt(t['kernel'])} | "
                    + " | ".join(f"{name} {fmt(v)}" for name, v in t.items() if name != "kernel")
                    + (f" | kernel/best-fused {ratio:.2f}x" if ratio else " | no fused SDPA")
                    + ("" if case["kernel_memory_linear"] else " | MEMORY NOT LINEAR")
                )
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "attention_bench.json"
    path.write_text(json.dumps(result, indent=1))
    ok = all(c["correctness"]["pass"] and c["kernel_memory_linear"] for c in result["cases"])
    within = [c["kernel_vs_best_fused"] for c in result["cases"] if c["kernel_vs_best_fused"]]
    print(
        f"correct and linear in memory: {'all cases' if ok else 'NOT all cases'}; "
        f"kernel / best fused SDPA: {', '.join(f'{r:.2f}x' for r in within) or 'n/a'}"
    )
    print(f"results: {path}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
