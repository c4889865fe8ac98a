"""HSBAB's attention alone in ONNX Runtime: four ONNX forms, memory and latency.

    python benchmarks/attention_forms.py [--threads 2] [--sizes 1280x720,1920x1088,...]

The candidates for an exact attention whose memory grows linearly with the frame (the choice
is recorded in docs/export.md): Q, K, V are ``[1, 128, h, w]`` (the edge preset: 2 heads of
64, h x w = frame / 16 in each direction), the output ``[1, 128, h, w]``.

- ``decomposed``: Reshape/Transpose -> MatMul(Q, K^T) -> Softmax -> MatMul(V), what
  ``sllen-export --attention decomposed`` writes (N x N scores per head);
- ``loop512``: Q padded to a multiple of 512 queries, an ONNX ``Loop`` slicing 512 queries per
  iteration (MatMul-Softmax-MatMul against all keys), scan outputs reshaped and sliced back;
- ``mha``: one ``com.microsoft::MultiHeadAttention`` node on ``[1, N, 128]`` (what
  ``--attention mha`` writes);
- ``attn23``: ONNX's own ``Attention`` op (opset 23) on ``[1, 2, N, 64]``.

Each case runs in a fresh process (one session, one untimed run whose peak RSS above the
resident set at its start is reported, then ``--runs`` timed runs: the median), and the first
case of every form is checked against float64 numpy (max abs difference).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import numpy as np
import onnx
from onnx import TensorProto
from onnx import helper as h

HEADS, D = 2, 64
DIM = HEADS * D
FORMS = ("decomposed", "loop512", "mha", "attn23")
# Largest token count each form is run at (the quadratic ones would need GBs beyond it).
MAX_TOKENS = {"decomposed": 14400, "attn23": 8160}


def _const(name: str, arr) -> onnx.NodeProto:
    return h.make_node("Constant", [], [name], value=onnx.numpy_helper.from_array(arr, name))


def _heads(x: str, out: str, nodes: list) -> None:
    """[1, DIM, h, w] -> [1, HEADS, N, D]."""
    nodes += [
        h.make_node("Reshape", [x, "hdn"], [out + "_r"]),
        h.make_node("Transpose", [out + "_r"], [out], perm=[0, 1, 3, 2]),
    ]


def _back(o: str, nodes: list) -> None:
    nodes += [
        h.make_node("Transpose", [o], ["o_t"], perm=[0, 1, 3, 2]),
        h.make_node("Reshape", ["o_t", "shape_in"], ["O"]),
    ]


def _common(nodes: list, scaled_q: bool = True) -> None:
    nodes += [
        h.make_node("Shape", ["Q"], ["shape_in"]),
        _const("hdn", np.array([0, HEADS, D, -1], np.int64)),
    ]
    if scaled_q:  # the exporter folds 1/sqrt(d) into Q's weights; here it is one Mul on Q
        nodes += [
            _const("scale", np.array(1 / np.sqrt(D), np.float32)),
            h.make_node("Mul", ["Q", "scale"], ["Qs"]),
        ]


def decomposed() -> tuple[list, list]:
    n: list = []
    _common(n)
    _heads("Qs", "q", n)
    _heads("V", "v", n)
    n += [
        h.make_node("Reshape", ["K", "hdn"], ["kt"]),  # [1, H, D, N]: K^T
        h.make_node("MatMul", ["q", "kt"], ["s"]),
        h.make_node("Softmax", ["s"], ["p"], axis=-1),
        h.make_node("MatMul", ["p", "v"], ["o"]),
    ]
    _back("o", n)
    return n, [h.make_opsetid("", 19)]


def loop(chunk: int = 512) -> tuple[list, list]:
    n: list = []
    _common(n)
    _heads("Qs", "q", n)
    _heads("V", "v", n)
    i64 = np.int64
    n += [
        h.make_node("Reshape", ["K", "hdn"], ["kt"]),
        _const("C", np.array([chunk], i64)),
        _const("C1", np.array([chunk - 1], i64)),
        _const("ax2", np.array([2], i64)),
        _const("z1", np.zeros(1, i64)),
        _const("z6", np.zeros(6, i64)),
        h.make_node("Shape", ["q"], ["nq"], start=2, end=3),
        h.make_node("Add", ["nq", "C1"], ["nq1"]),
        h.make_node("Div", ["nq1", "C"], ["nc"]),  # ceil(N / C) blocks
        h.make_node("Mul", ["nc", "C"], ["npad"]),
        h.make_node("Sub", ["npad", "nq"], ["padn"]),
        h.make_node("Concat", ["z6", "padn", "z1"], ["pads"], axis=0),
        h.make_node("Pad", ["q", "pads"], ["qp"]),
        h.make_node("Squeeze", ["nc"], ["trip"]),
    ]
    body = [
        _const("ax0", np.array([0], i64)),
        h.make_node("Unsqueeze", ["i", "ax0"], ["i1"]),
        h.make_node("Mul", ["i1", "C"], ["start"]),
        h.make_node("Add", ["start", "C"], ["end"]),
        h.make_node("Slice", ["qp", "start", "end", "ax2"], ["qi"]),
        h.make_node("MatMul", ["qi", "kt"], ["si"]),
        h.make_node("Softmax", ["si"], ["pi"], axis=-1),
        h.make_node("MatMul", ["pi", "v"], ["oi"]),
        h.make_node("Identity", ["cond"], ["cond_out"]),
    ]
    graph = h.make_graph(
        body,
        "query_block",
        [h.make_tensor_value_info("i", TensorProto.INT64, []),
         h.make_tensor_value_info("cond", TensorProto.BOOL, [])],
        [h.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         h.make_tensor_value_info("oi", TensorProto.FLOAT, None)],
    )  # fmt: skip
    n += [
        h.make_node("Loop", ["trip", ""], ["blocks"], body=graph),  # [nc, 1, H, C, D]
        h.make_node("Transpose", ["blocks"], ["bt"], perm=[1, 2, 0, 3, 4]),
        _const("hnd", np.array([0, 0, -1, D], i64)),
        h.make_node("Reshape", ["bt", "hnd"], ["padded"]),
        h.make_node("Slice", ["padded", "z1", "nq", "ax2"], ["o"]),
    ]
    _back("o", n)
    return n, [h.make_opsetid("", 19)]


def mha() -> tuple[list, list]:
    n: list = []
    _common(n, scaled_q=False)
    n.append(_const("bcn", np.array([0, DIM, -1], np.int64)))
    for x in "QKV":
        n += [
            h.make_node("Reshape", [x, "bcn"], [x + "3"]),
            h.make_node("Transpose", [x + "3"], [x + "t"], perm=[0, 2, 1]),
        ]
    n += [
        h.make_node(
            "MultiHeadAttention", ["Qt", "Kt", "Vt"], ["ot"], domain="com.microsoft",
            num_heads=HEADS, scale=float(1 / np.sqrt(D)),
        ),
        h.make_node("Transpose", ["ot"], ["o3"], perm=[0, 2, 1]),
        h.make_node("Reshape", ["o3", "shape_in"], ["O"]),
    ]  # fmt: skip
    return n, [h.make_opsetid("", 19), h.make_opsetid("com.microsoft", 1)]


def attn23() -> tuple[list, list]:
    n: list = []
    _common(n, scaled_q=False)
    for x in "QKV":
        _heads(x, x.lower(), n)
    n.append(h.make_node("Attention", ["q", "k", "v"], ["o"], scale=float(1 / np.sqrt(D))))
    _back("o", n)
    return n, [h.make_opsetid("", 23)]


def build(form: str) -> onnx.ModelProto:
    nodes, opsets = {"decomposed": decomposed, "loop512": loop, "mha": mha, "attn23": attn23}[
        form
    ]()
    io = [h.make_tensor_value_info(x, TensorProto.FLOAT, [1, DIM, "h", "w"]) for x in "QKVO"]
    model = h.make_model(h.make_graph(nodes, form, io[:3], io[3:]), opset_imports=opsets)
    model.ir_version = 10
    onnx.checker.check_model(model)
    return model


def reference(q: np.ndarray, k: np.ndarray, v: np.ndarray) -> np.ndarray:
    """float64 softmax(Q K^T / sqrt(d)) V per head, in blocks of queries."""
    hh, ww = q.shape[2:]

    def split(x):
        return x.reshape(HEADS, D, -1).transpose(0, 2, 1).astype(np.float64)

    qs, ks, vs = split(q), split(k), split(v)
    out = np.empty_like(qs)
    for i in range(0, qs.shape[1], 2048):
        s = qs[:, i : i + 2048] @ ks.transpose(0, 2, 1) / np.sqrt(D)
        p = np.exp(s - s.max(-1, keepdims=True))
        out[:, i : i + 2048] = (p / p.sum(-1, keepdims=True)) @ vs
    return out.transpose(0, 2, 1).reshape(1, DIM, hh, ww)


def run_case(form: str, hh: int, ww: int, threads: int, runs: int, check: bool) -> dict:
    import onnxruntime as ort

    from sllen.bench.memory import PeakMemory

    so = ort.SessionOptions()
    so.intra_op_num_threads, so.inter_op_num_threads, so.log_severity_level = threads, 1, 3
    sess = ort.InferenceSession(
        build(form).SerializeToString(), so, providers=["CPUExecutionProvider"]
    )
    rng = np.random.default_rng(0)
    feeds = {x: (rng.standard_normal((1, DIM, hh, ww)) * 1.5).astype(np.float32) for x in "QKV"}
    with PeakMemory() as mem:
        (out,) = sess.run(None, feeds)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        sess.run(None, feeds)
        times.append(time.perf_counter() - t)
    row = {
        "form": form, "tokens": hh * ww, "grid": f"{ww}x{hh}",
        "added_rss_mb": round(mem.result.added_rss_mb or 0.0, 1),
        "median_ms": round(1000 * float(np.median(times)), 1),
    }  # fmt: skip
    if check:
        row["max_abs_vs_float64"] = float(np.abs(out - reference(*feeds.values())).max())
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--sizes", default="1280x720,1920x1088,2560x1440,3840x2160")
    ap.add_argument("--forms", default=",".join(FORMS))
    ap.add_argument("--case", help=argparse.SUPPRESS)  # internal: one case in this process
    args = ap.parse_args()
    if args.case:
        form, hh, ww, check = args.case.split(":")
        row = run_case(form, int(hh), int(ww), args.threads, args.runs, check == "1")
        print(json.dumps(row), flush=True)
        return
    for size in args.sizes.split(","):
        w, hgt = (int(v) // 16 for v in size.lower().split("x"))
        for form in args.forms.split(","):
            if w * hgt > MAX_TOKENS.get(form, 1 << 62):
                print(json.dumps({"form": form, "tokens": w * hgt, "skipped": "quadratic"}))
                continue
            check = "1" if size == args.sizes.split(",")[0] else "0"
            cmd = [sys.executable, __file__, "--threads", str(args.threads), "--runs",
                   str(args.runs), "--case", f"{form}:{hgt}:{w}:{check}"]  # fmt: skip
            subprocess.run(cmd, check=True)


if __name__ == "__main__":
    main()
