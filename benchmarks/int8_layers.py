"""CPU INT8 against FP32 in one run: same-run latency ratio and the per-layer float/int split.

For an FP32 ONNX file and its INT8 (``--target cpu``) file:

1. latency, timed interleaved (FP32, INT8, FP32, INT8, ...) on one open session each, so a
   load that drifts over the run hits both: mean / median / best and the ratio FP32 / INT8;
2. ONNX Runtime's profiler (SessionOptions.enable_profiling) on each file: per node of the
   *optimized* graph its time and the kernel that ran, grouped into
     int8   integer kernels (QLinearConv, QLinearAdd, QLinearConcat, MaxPool on uint8, ...):
            every input and output that is a tensor of data is (u)int8
     q/dq   QuantizeLinear / DequantizeLinear that ONNX Runtime could not fold into a kernel
     float  everything else: the float islands (attention, softmax, resizes, the output head,
            convolutions left in float, ...)
   and the top float nodes by time with their op type and output shape;
3. optionally (``--psnr``) PSNR(INT8, FP32) on a synthetic dark frame at that size.

python benchmarks/int8_layers.py FP32.onnx INT8.onnx [--resolution 1280x720] [--threads 2]
    [--iterations 6] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort

INT_TYPES = ("uint8", "int8")
QDQ_OPS = {"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear"}


def open_session(
    path: str | os.PathLike, threads: int, profile_prefix: str | None = None, spin: bool = True
) -> ort.InferenceSession:
    """A CPU session the way sllen's runtime opens one (all graph optimizations, no memory
    pattern), ``threads`` intra-op threads, optionally profiling; ``spin=False`` stops idle
    pool threads from spinning, so process CPU time counts only work."""
    so = ort.SessionOptions()
    if not spin:
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.enable_mem_pattern = False
    if profile_prefix:
        so.enable_profiling = True
        so.profile_file_prefix = profile_prefix
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def dark_frame(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A smooth dark test frame with noise (1, 3, H, W) in [0, 0.25]: no file needed."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack(
        [0.5 + 0.5 * np.sin(xx / (37 + 11 * c) + yy / (53 + 7 * c) + c) for c in range(3)]
    )
    img = 0.2 * base + 0.02 * rng.standard_normal((3, h, w)).astype(np.float32)
    return np.clip(img, 0, 0.25)[None].astype(np.float32)


def kind_of(op: str, types: list[str]) -> str:
    if op in QDQ_OPS:
        return "q/dq"
    if types and all(t in INT_TYPES for t in types):
        return "int8"
    return "float"


def _types(shapes: list[dict]) -> list[str]:
    """Element types of a profiler event's input/output_type_shape, data tensors only (the
    per-channel scales and zero points of a QLinear kernel are 1-D or scalars)."""
    out = []
    for item in shapes:
        for t, dims in item.items():
            if len(dims) >= 3:
                out.append(t)
    return out


def conv_weights(path: str | os.PathLike) -> dict[str, int]:
    """Weight elements per output channel of every Conv in the file, by node name (through a
    DequantizeLinear for Q/DQ files): QLinearConv's profiler record lacks its packed weight."""
    model = onnx.load(str(path), load_external_data=False)
    inits = {t.name: list(t.dims) for t in model.graph.initializer}
    prod = {o: n for n in model.graph.node for o in n.output}
    out = {}
    for n in model.graph.node:
        if n.op_type != "Conv" or len(n.input) < 2:
            continue
        w = n.input[1]
        if w in prod and prod[w].op_type == "DequantizeLinear":
            w = prod[w].input[0]
        if w in inits and len(inits[w]) == 4:
            out[n.name] = int(np.prod(inits[w][1:]))
    return out


def conv_flop(op: str, node: str, args: dict, weights: dict[str, int]) -> float:
    """FLOPs (2 x MACs) of a convolution kernel: output elements times the weight's elements
    per output channel; layout-independent (NCHW, NCHWc or NHWC). The weight comes from the
    profiler's shapes, else from the file's Conv of the longest name that starts the kernel's
    (ONNX Runtime appends "_token_N" to the nodes it rewrites)."""
    if "Conv" not in op:
        return 0.0
    ins = [next(iter(d.values())) for d in args.get("input_type_shape", [])]
    outs = [next(iter(d.values())) for d in args.get("output_type_shape", [])]
    if not outs:
        return 0.0
    if not op.startswith("QLinear") and len(ins) > 1 and len(ins[1]) == 4:
        per_out = float(np.prod(ins[1][1:]))
    else:
        names = [k for k in weights if node.startswith(k)]
        if not names:
            return 0.0
        per_out = float(weights[max(names, key=len)])
    return 2.0 * float(np.prod(outs[0])) * per_out


def profile(path: str | os.PathLike, x: np.ndarray, threads: int, runs: int) -> dict[str, Any]:
    """Per-node time (ms per run) over ``runs`` profiled runs after one warm-up: each node's
    fastest run, which a load spike on a shared machine does not move; grouped by kind."""
    with tempfile.TemporaryDirectory(prefix="sllen-prof-") as tmp:
        sess = open_session(path, threads, str(Path(tmp) / "p"))
        name = sess.get_inputs()[0].name
        for _ in range(runs + 1):
            sess.run(None, {name: x})
        trace = json.loads(Path(sess.end_profiling()).read_text())
    weights = conv_weights(path)
    nodes: dict[str, dict[str, Any]] = {}
    for ev in trace:
        if ev.get("cat") != "Node" or not ev["name"].endswith("_kernel_time"):
            continue
        args = ev.get("args", {})
        node = ev["name"][: -len("_kernel_time")]
        op = args.get("op_name", "?")
        types = _types(args.get("input_type_shape", [])) + _types(args.get("output_type_shape", []))
        out_shape = next(iter(args.get("output_type_shape", [{}])[0].values()), [])
        rec = nodes.setdefault(
            node,
            {
                "op": op,
                "kind": kind_of(op, types),
                "us": [],
                "shape": out_shape,
                "flop": conv_flop(op, node, args, weights),
            },
        )
        rec["us"].append(ev["dur"])
    for rec in nodes.values():  # the first record of each node is the warm-up's
        rec["ms"] = min(rec["us"][1:] or rec["us"]) / 1e3
    total = sum(r["ms"] for r in nodes.values())
    by_kind: dict[str, float] = defaultdict(float)
    by_op: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0])
    for rec in nodes.values():
        by_kind[rec["kind"]] += rec["ms"]
        agg = by_op[(rec["kind"], rec["op"])]
        agg[0] += rec["ms"]
        agg[1] += 1
    conv = [r for r in nodes.values() if r["flop"] > 0]
    conv_ms = sum(r["ms"] for r in conv)
    conv_gflop = sum(r["flop"] for r in conv) / 1e9
    top_float = sorted(
        ((n, r) for n, r in nodes.items() if r["kind"] != "int8"), key=lambda t: -t[1]["ms"]
    )[:15]
    return {
        "total_ms": total,
        "nodes": len(nodes),
        "conv_ms": conv_ms,
        "conv_gflop": conv_gflop,
        "conv_gflops_rate": conv_gflop / (conv_ms / 1e3) if conv_ms else 0.0,
        "by_kind_ms": dict(by_kind),
        "by_op": [
            {"kind": k, "op": op, "ms": v[0], "count": v[1]}
            for (k, op), v in sorted(by_op.items(), key=lambda t: -t[1][0])
        ],
        "top_float": [
            {"node": n, "op": r["op"], "kind": r["kind"], "ms": r["ms"], "shape": r["shape"]}
            for n, r in top_float
        ],
    }


def interleaved(
    paths: dict[str, str],
    x: np.ndarray,
    threads: int,
    iterations: int,
    warmup: int = 1,
    spin: bool = True,
    cpu: dict[str, list[float]] | None = None,
    as_run: bool = False,
) -> dict[str, list[float]]:
    """Wall ms per run of each file, timed in turn; process CPU ms per run into ``cpu``.
    ``as_run``: through sllen's ONNX Runtime backend (its in-memory graph edits and session
    options, the image output only: what sllen-run does) instead of the file as is."""
    calls: dict[str, Callable[[], Any]] = {}
    for k, p in paths.items():
        if as_run:
            from sllen.runtime.backends.onnxruntime import OnnxRuntimeBackend

            backend = OnnxRuntimeBackend(p, device="cpu", threads=threads)
            calls[k] = lambda b=backend: b.infer(x)
        else:
            session = open_session(p, threads, spin=spin)
            feed = {session.get_inputs()[0].name: x}
            calls[k] = lambda s=session, f=feed: s.run(None, f)
    for call in calls.values():
        for _ in range(warmup):
            call()
    times: dict[str, list[float]] = {k: [] for k in calls}
    for _ in range(iterations):
        for k, call in calls.items():
            c, t = time.process_time(), time.perf_counter()
            call()
            times[k].append(1e3 * (time.perf_counter() - t))
            if cpu is not None:
                cpu.setdefault(k, []).append(1e3 * (time.process_time() - c))
    return times


def psnr_vs(path_a: str, path_b: str, x: np.ndarray, threads: int) -> float:
    a = open_session(path_a, threads).run(None, {"input": x})[0]
    b = open_session(path_b, threads).run(None, {"input": x})[0]
    mse = float(np.mean((np.clip(a, 0, 1) - np.clip(b, 0, 1)) ** 2))
    return 100.0 if mse == 0 else 10 * np.log10(1.0 / mse)


def split_line(label: str, prof: dict[str, Any]) -> str:
    tot = prof["total_ms"]
    parts = ", ".join(
        f"{k} {v:.0f} ms ({100 * v / tot:.0f}%)" for k, v in sorted(prof["by_kind_ms"].items())
    )
    return f"{label}: {tot:.0f} ms in {prof['nodes']} kernels: {parts}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("fp32")
    ap.add_argument("int8", nargs="+", help="one or more INT8 files (compared in turn)")
    ap.add_argument("--resolution", default="1280x720")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iterations", type=int, default=6)
    ap.add_argument(
        "--as-run", action="store_true", help="time through sllen's backend (what sllen-run runs)"
    )
    ap.add_argument("--no-profile", action="store_true")
    ap.add_argument("--profile-runs", type=int, default=3, help="profiled runs per file")
    ap.add_argument(
        "--no-spin", action="store_true",
        help="pool threads sleep instead of spinning: CPU time then counts only work "
        "(a fair measure on a loaded machine)",
    )  # fmt: skip
    ap.add_argument("--psnr", action="store_true", help="PSNR(INT8, FP32) on a synthetic frame")
    ap.add_argument(
        "--gemm", type=int, default=2048,
        help="M=K=N of the SGEMM / integer GEMM measured in the same run (0: skip)",
    )  # fmt: skip
    ap.add_argument("--json")
    args = ap.parse_args()
    w, h = (int(v) for v in args.resolution.lower().split("x"))
    x = dark_frame(h, w)
    out: dict[str, Any] = {
        "resolution": [w, h],
        "threads": args.threads,
        "onnxruntime": ort.__version__,
        "load_before": os.getloadavg(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }
    paths = {"fp32": args.fp32} | {f"int8[{i}]": p for i, p in enumerate(args.int8)}
    cpu: dict[str, list[float]] = {}
    times = interleaved(
        paths, x, args.threads, args.iterations, spin=not args.no_spin, cpu=cpu, as_run=args.as_run
    )
    out["latency_ms"] = times
    out["cpu_ms"] = cpu
    ref_med = statistics.median(times["fp32"])
    ref_min = min(times["fp32"])
    print(f"{w}x{h}, {args.threads} threads, interleaved, {args.iterations} runs each")
    out["paired_ratio"] = {}
    cpu_ref = statistics.median(cpu["fp32"])
    for k, ts in times.items():
        # FP32 over this file, run by run: neighbours in time see the same load.
        paired = statistics.median(a / b for a, b in zip(times["fp32"], ts, strict=True))
        out["paired_ratio"][k] = paired
        print(
            f"  {k:<8} mean {statistics.mean(ts):7.0f}  median {statistics.median(ts):7.0f}  "
            f"best {min(ts):7.0f} ms   FP32/this: paired x{paired:.2f}, medians "
            f"x{ref_med / statistics.median(ts):.2f}, bests x{ref_min / min(ts):.2f}; CPU time "
            f"{statistics.median(cpu[k]):.0f} ms, x{cpu_ref / statistics.median(cpu[k]):.2f}"
            f"   {paths[k]}"
        )
    if args.psnr:
        out["psnr_vs_fp32_db"] = {
            k: psnr_vs(args.fp32, p, x, args.threads) for k, p in paths.items() if k != "fp32"
        }
        for k, v in out["psnr_vs_fp32_db"].items():
            print(f"  PSNR({k}, fp32) on the synthetic frame: {v:.2f} dB")
    if args.gemm:
        from int8_gemm import gemm_models, summarize
        from int8_gemm import interleaved as gemm_interleaved

        n = args.gemm
        rows = summarize(
            gemm_interleaved(gemm_models(n, n, n), args.threads, 5), float(n) ** 3, "MatMul fp32"
        )
        out["gemm"] = rows
        print(f"\nGEMM {n}^3 in ONNX Runtime, {args.threads} threads, interleaved:")
        for r in rows:
            print(
                f"  {r['kernel']:<20} best {r['best_ms']:7.1f} ms  {r['gops_best']:6.1f} GOP/s  "
                f"x{r['speedup_best']:.2f} over MatMul fp32 (median x{r['speedup_median']:.2f})"
            )
    if not args.no_profile:
        out["profile"] = {}
        for k, p in paths.items():
            prof = profile(p, x, args.threads, args.profile_runs)
            out["profile"][k] = prof
            print("\n" + split_line(k, prof))
            if prof["conv_ms"]:
                sgemm = out["gemm"][0]["gops_best"] if args.gemm else None
                share = f", {100 * prof['conv_gflops_rate'] / sgemm:.0f}% of SGEMM" if sgemm else ""
                print(
                    f"  convolutions: {prof['conv_gflop']:.1f} GFLOP in {prof['conv_ms']:.0f} ms"
                    f" = {prof['conv_gflops_rate']:.1f} GFLOP/s{share}"
                )
            for row in prof["by_op"][:14]:
                print(f"    {row['kind']:<6} {row['op']:<24} {row['ms']:7.1f} ms  x{row['count']}")
            if k != "fp32":
                print("  top float / q-dq kernels:")
                for row in prof["top_float"][:10]:
                    print(
                        f"    {row['ms']:7.1f} ms  {row['kind']:<5} {row['op']:<20} "
                        f"{row['node'][:48]:<48} {row['shape']}"
                    )
    out["load_after"] = os.getloadavg()
    print(
        f"\nload average (1 min) before / after: {out['load_before'][0]:.2f} / "
        f"{out['load_after'][0]:.2f}"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
