"""The INT8-over-FP32 ceiling of this CPU in ONNX Runtime: GEMM and convolution kernels.

What a quantized network can gain on a CPU is bounded by how much faster ONNX Runtime's integer
kernels are than its float ones on the same shapes. On x86 without AVX-512 VNNI / AVX-VNNI the
integer GEMM is U8S8 through vpmaddubsw + vpmaddwd (two instructions and an add per 32 MACs
where FP32 FMA does 8 MACs per instruction), so the ceiling is neither 4x nor 1x: this script
measures it rather than assuming it.

Pairs, each timed interleaved (FP32, INT8, FP32, INT8, ...) in one process, best-of and median:

  gemm    MatMul (fp32)  vs MatMulInteger (u8 x s8 -> int32) and QLinearMatMul (u8 x s8 -> u8)
  conv    Conv (fp32)    vs QLinearConv (u8 x s8 per channel -> u8)   3x3 and 1x1, 64-128 ch

python benchmarks/int8_gemm.py [--threads 2] [--size 2048] [--repeats 15] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper


def _session(model: onnx.ModelProto, threads: int) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])


def _model(nodes, inputs, outputs, inits) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "bench", inputs, outputs, initializer=inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    m.ir_version = 10
    return m


def gemm_models(m: int, k: int, n: int) -> dict[str, tuple[onnx.ModelProto, dict]]:
    """(model, feeds) for an M x K by K x N product in each precision."""
    rng = np.random.default_rng(0)
    a32 = rng.standard_normal((m, k), dtype=np.float32)
    b32 = rng.standard_normal((k, n), dtype=np.float32)
    a8 = rng.integers(0, 256, (m, k), dtype=np.uint8)
    b8 = rng.integers(-127, 128, (k, n), dtype=np.int8)
    f32 = _model(
        [helper.make_node("MatMul", ["A", "B"], ["Y"])],
        [helper.make_tensor_value_info("A", TensorProto.FLOAT, [m, k])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [m, n])],
        [numpy_helper.from_array(b32, "B")],
    )
    mmi = _model(
        [helper.make_node("MatMulInteger", ["A", "B", "az", "bz"], ["Y"])],
        [helper.make_tensor_value_info("A", TensorProto.UINT8, [m, k])],
        [helper.make_tensor_value_info("Y", TensorProto.INT32, [m, n])],
        [
            numpy_helper.from_array(b8, "B"),
            numpy_helper.from_array(np.array(128, np.uint8), "az"),
            numpy_helper.from_array(np.array(0, np.int8), "bz"),
        ],
    )
    qlm = _model(
        [helper.make_node("QLinearMatMul", ["A", "as", "az", "B", "bs", "bz", "ys", "yz"], ["Y"])],
        [helper.make_tensor_value_info("A", TensorProto.UINT8, [m, k])],
        [helper.make_tensor_value_info("Y", TensorProto.UINT8, [m, n])],
        [
            numpy_helper.from_array(b8, "B"),
            numpy_helper.from_array(np.array(0.02, np.float32), "as"),
            numpy_helper.from_array(np.array(128, np.uint8), "az"),
            numpy_helper.from_array(np.array(0.01, np.float32), "bs"),
            numpy_helper.from_array(np.array(0, np.int8), "bz"),
            numpy_helper.from_array(np.array(0.5, np.float32), "ys"),
            numpy_helper.from_array(np.array(128, np.uint8), "yz"),
        ],
    )
    return {
        "MatMul fp32": (f32, {"A": a32}),
        "MatMulInteger u8s8": (mmi, {"A": a8}),
        "QLinearMatMul u8s8": (qlm, {"A": a8}),
    }


def conv_models(c_in: int, c_out: int, k: int, h: int, w: int) -> dict[str, tuple]:
    """(model, feeds) for a k x k convolution, FP32 and QLinearConv (per-channel weights)."""
    rng = np.random.default_rng(1)
    w32 = rng.standard_normal((c_out, c_in, k, k), dtype=np.float32)
    b32 = rng.standard_normal(c_out, dtype=np.float32)
    x32 = rng.standard_normal((1, c_in, h, w), dtype=np.float32)
    pads = [k // 2] * 4
    f32 = _model(
        [helper.make_node("Conv", ["X", "W", "B"], ["Y"], pads=pads)],
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, c_in, h, w])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(w32, "W"), numpy_helper.from_array(b32, "B")],
    )
    w8 = rng.integers(-127, 128, w32.shape, dtype=np.int8)
    q = _model(
        [
            helper.make_node(
                "QLinearConv",
                ["X", "xs", "xz", "W", "ws", "wz", "ys", "yz", "B"],
                ["Y"],
                pads=pads,
            )
        ],
        [helper.make_tensor_value_info("X", TensorProto.UINT8, [1, c_in, h, w])],
        [helper.make_tensor_value_info("Y", TensorProto.UINT8, None)],
        [
            numpy_helper.from_array(np.array(0.02, np.float32), "xs"),
            numpy_helper.from_array(np.array(128, np.uint8), "xz"),
            numpy_helper.from_array(w8, "W"),
            numpy_helper.from_array(np.full(c_out, 0.01, np.float32), "ws"),
            numpy_helper.from_array(np.zeros(c_out, np.int8), "wz"),
            numpy_helper.from_array(np.array(0.5, np.float32), "ys"),
            numpy_helper.from_array(np.array(128, np.uint8), "yz"),
            numpy_helper.from_array(rng.integers(-1000, 1000, c_out).astype(np.int32), "B"),
        ],
    )
    x8 = rng.integers(0, 256, x32.shape, dtype=np.uint8)
    return {"Conv fp32": (f32, {"X": x32}), "QLinearConv u8s8": (q, {"X": x8})}


def interleaved(
    cases: dict[str, tuple[onnx.ModelProto, dict]], threads: int, repeats: int
) -> dict[str, list[float]]:
    """Seconds per call for each case, timed in turn so that a load drift hits all of them."""
    runs: dict[str, Callable[[], Any]] = {}
    for name, (model, feeds) in cases.items():
        sess = _session(model, threads)
        runs[name] = lambda s=sess, f=feeds: s.run(None, f)
        runs[name]()  # warm-up: packing of the constant B, arena
        runs[name]()
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, fn in runs.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    return times


def summarize(times: dict[str, list[float]], macs: float, ref: str) -> list[dict[str, Any]]:
    best_ref = min(times[ref])
    med_ref = statistics.median(times[ref])
    rows = []
    for name, ts in times.items():
        rows.append(
            {
                "kernel": name,
                "best_ms": 1e3 * min(ts),
                "median_ms": 1e3 * statistics.median(ts),
                "gops_best": 2 * macs / min(ts) / 1e9,
                "speedup_best": best_ref / min(ts),
                "speedup_median": med_ref / statistics.median(ts),
            }
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--threads", type=int, action="append", help="repeatable; default 1 and 2")
    ap.add_argument("--size", type=int, default=2048, help="M = K = N of the GEMM")
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--json", help="write the rows here")
    args = ap.parse_args()
    out: dict[str, Any] = {"load_before": os.getloadavg(), "onnxruntime": ort.__version__}
    s = args.size
    convs = [(64, 64, 3, 184, 320), (128, 128, 3, 92, 160), (64, 64, 1, 184, 320)]
    for threads in args.threads or [1, 2]:
        cases = gemm_models(s, s, s)
        rows = summarize(interleaved(cases, threads, args.repeats), float(s) ** 3, "MatMul fp32")
        out[f"gemm {s}^3, {threads} threads"] = rows
        for ci, co, k, h, w in convs:
            t = interleaved(conv_models(ci, co, k, h, w), threads, args.repeats)
            macs = float(ci * co * k * k * h * w)
            out[f"conv {ci}->{co} {k}x{k} at {w}x{h}, {threads} threads"] = summarize(
                t, macs, "Conv fp32"
            )
    out["load_after"] = os.getloadavg()
    for key, rows in out.items():
        if not isinstance(rows, list) or not rows or not isinstance(rows[0], dict):
            continue
        print(f"\n{key}")
        for r in rows:
            print(
                f"  {r['kernel']:<20} best {r['best_ms']:8.2f} ms  median {r['median_ms']:8.2f}"
                f" ms  {r['gops_best']:7.1f} GOP/s  x{r['speedup_best']:.2f} (median "
                f"x{r['speedup_median']:.2f}) over fp32"
            )
    lb, la = out["load_before"][0], out["load_after"][0]
    print(f"\nload average before / after: {lb:.2f} / {la:.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
