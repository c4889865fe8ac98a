"""The PyTorch backend on a GPU with the project's attention kernel against torch's SDPA.

    python scripts/gpu/backend_parity.py --out DIR        (from the repo root, sllen installed)

The bundled model through sllen.runtime's PyTorch backend at two sizes whose HSBAB attention
sees about 1,000 and 8,000 tokens (1/16 resolution: 512x512 -> 32x32 = 1,024 tokens,
1920x1088 -> 120x68 = 8,160), in FP16 (autocast) with --attention kernel and --attention sdpa,
each against the FP32 SDPA output of the same input:
- parity: PSNR (data range 1) and max |err| of kernel-FP16 and SDPA-FP16 against FP32; the
  kernel passes when its PSNR is >= 40 dB (the project's FP16 budget) or within 1 dB of SDPA's;
- time: median wall time of backend.infer (H2D, model, D2H; CUDA synchronised) over the runs.
Writes DIR/backend_parity.json; exit code 1 when a case fails parity, 2 when the kernel or CUDA
is not available.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

SIZES = {"1k tokens (512x512)": (512, 512), "8k tokens (1920x1088)": (1088, 1920)}


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 100.0 if mse <= 1e-12 else min(100.0, 10 * np.log10(1.0 / mse))


def timed(backend: Any, x: np.ndarray, runs: int) -> tuple[np.ndarray, float]:
    import torch

    out = backend.infer(x).image  # warm-up (and the kernel's one-time setup)
    times = []
    for _ in range(runs):
        torch.cuda.synchronize()
        start = time.perf_counter()
        out = backend.infer(x).image
        torch.cuda.synchronize()
        times.append(1000 * (time.perf_counter() - start))
    return out, statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    args = parser.parse_args()

    import torch

    from sllen.runtime import attention_kernel as ak
    from sllen.runtime.backends import open_backend

    if not torch.cuda.is_available():
        print("FAIL: torch sees no CUDA device", file=sys.stderr)
        return 2
    print(ak.status())
    if not ak.available():
        print("FAIL: the attention kernel is not available", file=sys.stderr)
        return 2
    backends = {
        "kernel_fp16": open_backend(None, "pytorch", device="cuda", precision="fp16",
                                    attention="kernel"),
        "sdpa_fp16": open_backend(None, "pytorch", device="cuda", precision="fp16",
                                  attention="sdpa"),
        "sdpa_fp32": open_backend(None, "pytorch", device="cuda", precision="fp32",
                                  attention="sdpa"),
    }  # fmt: skip
    result: dict[str, Any] = {
        "gpu": torch.cuda.get_device_name(0),
        "torch": torch.__version__,
        "kernel": ak.status(),
        "cases": [],
    }
    ok = True
    rng = np.random.default_rng(0)
    for label in args.sizes:
        h, w = SIZES[label]
        x = (rng.random((1, 3, h, w)) * 0.25).astype(np.float32)  # a dark frame
        outs, ms = {}, {}
        for name, backend in backends.items():
            outs[name], ms[name] = timed(backend, x, args.runs)
        ref = outs["sdpa_fp32"]
        case = {
            "size": label,
            "ms": ms,
            "psnr_vs_fp32": {n: psnr(outs[n], ref) for n in ("kernel_fp16", "sdpa_fp16")},
            "max_abs_vs_fp32": {
                n: float(np.abs(outs[n] - ref).max()) for n in ("kernel_fp16", "sdpa_fp16")
            },
            "psnr_kernel_vs_sdpa_fp16": psnr(outs["kernel_fp16"], outs["sdpa_fp16"]),
        }
        k, s = case["psnr_vs_fp32"]["kernel_fp16"], case["psnr_vs_fp32"]["sdpa_fp16"]
        case["pass"] = bool(k >= 40.0 or k >= s - 1.0)  # numpy bool is not JSON
        ok = ok and case["pass"]
        result["cases"].append(case)
        print(
            f"{'PASS' if case['pass'] else 'FAIL'} {label}: FP16 vs FP32 PSNR kernel {k:.1f} dB, "
            f"sdpa {s:.1f} dB; kernel vs sdpa {case['psnr_kernel_vs_sdpa_fp16']:.1f} dB | "
            f"ms kernel {ms['kernel_fp16']:.1f}, sdpa fp16 {ms['sdpa_fp16']:.1f}, "
            f"sdpa fp32 {ms['sdpa_fp32']:.1f}"
        )
    for backend in backends.values():
        backend.close()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "backend_parity.json").write_text(json.dumps(result, indent=1))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
