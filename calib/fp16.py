"""FP16 ONNX with float32 I/O and FP32 islands where FP16 is measured to fail.

``convert_fp16(src, dst, frames, budget_db=40.0)`` writes ``dst`` and returns a report.

1. Measure. The FP32 model runs in ONNX Runtime on ``frames`` with every float tensor exposed
   as an extra output. A tensor whose largest |value| exceeds ``overflow_fraction`` (0.5) of
   FP16's maximum (65504) is an overflow risk: its producer and all its consumers stay FP32
   (keeping only the producer would not help: its output would be cast to FP16 before the
   consumer). A Softmax stays FP32 together with the node that computes its logits when the
   softmax of the FP16-rounded logits differs from the FP32 softmax by more than
   ``softmax_tol`` (measured on the captured logits): large logits lose their fractional part
   in FP16. Nodes with a weight beyond FP16's range stay FP32 too, and so does ONNX Runtime's
   ``com.microsoft`` MultiHeadAttention (``--attention mha``): its CPU kernel is linear in
   memory (flash attention) only in FP32.
2. Convert with ONNX Runtime's maintained converter (``onnxruntime.transformers.float16.
   convert_float_to_float16``, keep_io_types=True, its default op block list plus those nodes
   as node_block_list; it inserts the Casts at the FP32/FP16 borders).
3. Check. The FP16 model must load and run in ONNX Runtime (on a CPU it computes FP16 nodes in
   FP32 behind inserted casts, so this checks numerics, not speed); the output is compared
   with the FP32 model's: PSNR (sllen's protocol: RGB, range 1, mean over frames) and max |diff|.
4. If the PSNR is under ``budget_db``: per-node sensitivity. Both models run on a few frames
   with every float tensor exposed; a node's own error is the relative RMS error of its output
   minus the largest relative error of its inputs (the error it adds, not the error it
   inherits). The node adding most is moved to FP32, the model is converted and checked again;
   after ``FALLBACK_SINGLES`` single nodes, the worst 2, 4, 8, ... nodes move at once, until
   the budget holds, ``max_steps`` steps have run (None: no limit) or no FP16 node is left.
   When the budget is still missed, the model is written as ``<dst stem>.over-budget.onnx``
   (for inspection), nothing is written at ``dst``, and the report says so: sllen-export then
   exits non-zero.

The report: ``kept_fp32`` (node -> reason), ``psnr_db``, ``max_abs``, ``passes_budget``,
``budget_db``, ``steps`` (nodes added by step 4 with the PSNR after each), ``frames``,
``max_abs_activation`` (the largest |value| of any FP32 tensor seen). The written model's
metadata keeps the source's sllen_* props with sllen_precision=fp16.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
import onnx.helper
import onnx.numpy_helper

from sllen.calib.graph import (
    consumers,
    copy_metadata,
    ensure_node_names,
    iter_float_outputs,
    load_model,
    producers,
    psnr_db,
    run,
    save_model,
    session,
)
from sllen.runtime.errors import InputError

__all__ = [
    "FP16_MAX",
    "convert_fp16",
    "drop_fp16_round_trips",
    "measure_fp16_risks",
    "to_fp16",
]

FP16_MAX = float(np.finfo(np.float16).max)  # 65504
# Nodes whose FP16 arithmetic can add error (candidates of the sensitivity step). Data movement
# and selection (Relu, MaxPool, Concat, Reshape, ...) only pass on the error of their inputs.
_ARITHMETIC = {
    "Conv", "ConvTranspose", "MatMul", "Gemm", "Softmax", "Add", "Sub", "Mul", "Div", "Pow",
    "Sqrt", "Exp", "Log", "Sigmoid", "Tanh", "Erf", "ReduceMean", "ReduceSum", "ReduceL2",
    "LayerNormalization", "InstanceNormalization", "BatchNormalization", "Resize",
    "AveragePool", "GlobalAveragePool",
}  # fmt: skip


def to_fp16(model: onnx.ModelProto, block: list[str] | set[str]) -> onnx.ModelProto:
    """FP16 copy of ``model`` with float32 I/O; nodes in ``block`` stay FP32."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    m = onnx.ModelProto()
    m.CopyFrom(model)
    _type_attention_outputs(m)
    from onnxruntime.transformers.onnx_model import OnnxModel

    half = drop_fp16_round_trips(
        convert_float_to_float16(
            m, keep_io_types=True, node_block_list=sorted(block), disable_shape_infer=False
        )
    )
    # The converter appends its Casts after the nodes that read them; ONNX requires producers
    # first (onnx.checker refuses the file otherwise; ONNX Runtime and TensorRT sort it).
    OnnxModel.graph_topological_sort(half.graph)
    return half


def drop_fp16_round_trips(model: onnx.ModelProto) -> onnx.ModelProto:
    """Remove the FP16 round trips the converter puts between FP32 tensors, in place.

    Why: ``convert_float_to_float16`` casts every blocked node's output to FP16 and back for
    the next blocked node (and the float32 input to FP16 and back for a blocked first node), so
    an "FP32 island" of several nodes would still store FP16 between them: measured on the
    bundled graph with every node blocked, 64.5 dB against FP32 instead of identical. Each
    ``Cast(to=FLOAT)`` of a ``Cast(to=FLOAT16)`` of a float32 tensor is replaced by that tensor
    (an ``Identity`` where its output is a graph output); Casts left without readers go.
    """
    g = model.graph
    f32 = {v.name for v in [*g.input, *g.value_info, *g.output] if _elem_type(v) == _F32}
    f32 |= {t.name for t in g.initializer if t.data_type == _F32}
    f32 |= {n.output[0] for n in g.node if n.op_type == "Cast" and _cast_to(n) == _F32}
    made = {o: n for n in g.node for o in n.output}
    outputs = {o.name for o in g.output}
    rename: dict[str, str] = {}
    kept = []
    for n in g.node:
        src = made.get(n.input[0]) if n.op_type == "Cast" and _cast_to(n) == _F32 else None
        if (
            src is not None
            and src.op_type == "Cast"
            and _cast_to(src) == _F16
            and src.input[0] in f32
        ):
            if n.output[0] not in outputs:
                rename[n.output[0]] = src.input[0]
                continue
            n.op_type = "Identity"  # a graph output keeps its name
            del n.attribute[:]
            n.input[0] = src.input[0]
        kept.append(n)
    for n in kept:
        for k, i in enumerate(n.input):
            n.input[k] = rename.get(i, i)
    while True:  # Casts whose output nobody reads any more (the FP16 halves of the trips)
        read = {i for n in kept for i in n.input} | outputs
        live = [n for n in kept if n.op_type != "Cast" or n.output[0] in read]
        if len(live) == len(kept):
            break
        kept = live
    del g.node[:]
    g.node.extend(kept)
    return model


_F16, _F32 = onnx.TensorProto.FLOAT16, onnx.TensorProto.FLOAT


def _elem_type(v: onnx.ValueInfoProto) -> int:
    return v.type.tensor_type.elem_type if v.type.HasField("tensor_type") else 0


def _cast_to(node: onnx.NodeProto) -> int:
    return next((a.i for a in node.attribute if a.name == "to"), 0)


def _type_attention_outputs(model: onnx.ModelProto) -> None:
    """Give MultiHeadAttention outputs a value_info where they have none (ONNX's shape
    inference does not know the contrib op): the converter places its Casts by those types."""
    typed = {v.name for v in [*model.graph.value_info, *model.graph.output]}
    for n in model.graph.node:
        if (n.domain, n.op_type) == ("com.microsoft", "MultiHeadAttention"):
            if n.output[0] not in typed:
                model.graph.value_info.append(
                    onnx.helper.make_tensor_value_info(n.output[0], onnx.TensorProto.FLOAT, None)
                )


def _softmax(x: np.ndarray, axis: int) -> np.ndarray:
    x = x - x.max(axis=axis, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=axis, keepdims=True)


def measure_fp16_risks(
    model: onnx.ModelProto,
    frames: np.ndarray,
    overflow_fraction: float = 0.5,
    softmax_tol: float = 1e-3,
    threads: int | None = None,
    batch: int = 2,
) -> tuple[dict[str, str], float]:
    """Nodes that must stay FP32 (name -> reason) by running the FP32 model on ``frames``;
    also the largest |activation| seen."""
    model = ensure_node_names(model)
    limit = overflow_fraction * FP16_MAX
    outs = list(iter_float_outputs(model))
    names = [o for _, o in outs]
    peak = dict.fromkeys(names, 0.0)
    softmaxes = {
        n.input[0]: n for n in model.graph.node if n.op_type == "Softmax" and n.input[0] in peak
    }
    sm_err = dict.fromkeys(softmaxes, 0.0)

    def collect(values: dict[str, np.ndarray]) -> None:
        for name in names:
            v = values[name]
            if v.size:
                finite = np.isfinite(v)
                a = np.abs(v[finite]).max() if finite.any() else 0.0
                peak[name] = max(peak[name], float(a) if finite.all() else float("inf"))
        for name, node in softmaxes.items():
            axis = next((a.i for a in node.attribute if a.name == "axis"), -1)
            x = values[name].astype(np.float32)
            ref = _softmax(x, axis)
            half = _softmax(x.astype(np.float16).astype(np.float32), axis)
            sm_err[name] = max(sm_err[name], float(np.abs(ref - half).max()))

    from sllen.calib.graph import capture

    capture(model, frames, names, collect, batch=batch, threads=threads)
    prod, cons = producers(model), consumers(model)
    keep: dict[str, str] = {}
    for name, value in peak.items():
        if value > limit:
            why = f"|{name}| reaches {value:.4g} > {limit:.4g} ({overflow_fraction:g} x FP16 max)"
            if name in prod:
                keep.setdefault(prod[name].name, "output " + why)
            for c in cons.get(name, []):
                keep.setdefault(c.name, "input " + why)
    for name, err in sm_err.items():
        if err > softmax_tol:
            why = f"softmax of FP16-rounded logits off by {err:.3g} > {softmax_tol:g}"
            keep.setdefault(softmaxes[name].name, why)
            if name in prod:
                keep.setdefault(prod[name].name, "computes logits: " + why)
    inits = {t.name: t for t in model.graph.initializer}
    for n in model.graph.node:
        for i in n.input:
            t = inits.get(i)
            if t is not None and t.data_type == onnx.TensorProto.FLOAT:
                w = onnx.numpy_helper.to_array(t)
                if w.size and float(np.abs(w).max()) > FP16_MAX:
                    keep.setdefault(n.name, f"weight {i} exceeds the FP16 range")
    for n in model.graph.node:
        if (n.domain, n.op_type) == ("com.microsoft", "MultiHeadAttention"):
            # ONNX Runtime's CPU kernel is the flash (linear-memory) one for float32 only.
            keep.setdefault(n.name, "linear-memory attention: ONNX Runtime's kernel is FP32")
    return keep, max(peak.values(), default=0.0)


def _own_errors(
    fp32: onnx.ModelProto, fp16: onnx.ModelProto, frames: np.ndarray, threads: int | None
) -> dict[str, float]:
    """Per node: relative RMS error of its output minus the largest of its inputs'."""
    names32 = {o for _, o in iter_float_outputs(fp32)}
    names16 = {o for _, o in iter_float_outputs(fp16)}
    common = sorted(names32 & names16)
    from sllen.calib.graph import capture

    def grab(model: onnx.ModelProto) -> dict[str, list[np.ndarray]]:
        got: dict[str, list[np.ndarray]] = {n: [] for n in common}

        def keep(values: dict[str, np.ndarray]) -> None:
            for n in common:
                got[n].append(values[n].astype(np.float32))

        capture(model, frames, common, keep, batch=1, threads=threads)
        return got

    a, b = grab(fp32), grab(fp16)
    rel = {}
    for n in common:
        ref, got = (
            np.concatenate([x.ravel() for x in a[n]]),
            np.concatenate([x.ravel() for x in b[n]]),
        )
        scale = float(np.sqrt(np.mean(ref.astype(np.float64) ** 2))) + 1e-12
        rel[n] = float(np.sqrt(np.mean((got.astype(np.float64) - ref) ** 2))) / scale
    own = {}
    for node in fp32.graph.node:
        outs = [o for o in node.output if o in rel]
        if not outs or node.op_type not in _ARITHMETIC:
            continue
        inherited = max((rel[i] for i in node.input if i in rel), default=0.0)
        own[node.name] = max(rel[o] for o in outs) - inherited
    return own


def convert_fp16(
    src_onnx: str | os.PathLike,
    dst_onnx: str | os.PathLike,
    frames: np.ndarray,
    budget_db: float = 40.0,
    overflow_fraction: float = 0.5,
    softmax_tol: float = 1e-3,
    max_steps: int | None = None,
    sensitivity_frames: int = 4,
    threads: int | None = None,
) -> dict:
    """Write an FP16 model (float32 I/O) of ``src_onnx`` to ``dst_onnx``; see the module
    docstring for the method and the report."""
    from sllen.calib.int8 import FALLBACK_SINGLES, over_budget_path

    frames = _check_frames(frames)
    src = ensure_node_names(load_model(src_onnx))
    keep, peak = measure_fp16_risks(src, frames, overflow_fraction, softmax_tol, threads)
    ref = run(session(src, threads), frames)
    steps: list[dict] = []

    def check(block: dict[str, str]) -> tuple[onnx.ModelProto, onnx.ModelProto, float, float]:
        half = to_fp16(src, set(block))
        try:
            run(session(half, threads), frames[:1])
        except Exception as err:  # noqa: BLE001 - any ORT failure means an unusable model
            raise RuntimeError(f"the FP16 model does not run in ONNX Runtime: {err}") from err
        emulated = emulate_fp16(src, set(block))
        out = run(session(emulated, threads), frames)
        return half, emulated, psnr_db(out, ref), float(np.abs(out - ref).max())

    half, emulated, psnr, max_abs = check(keep)
    sub = frames[: max(1, sensitivity_frames)]
    moved = 0
    while psnr < budget_db and (max_steps is None or len(steps) < max_steps):
        own = _own_errors(src, emulated, sub, threads)
        candidates = {n: e for n, e in own.items() if n not in keep}
        if not candidates:
            break
        # One node at a time first, then doubling groups (as the INT8 fallback does).
        size = 1 if moved < FALLBACK_SINGLES else 2 ** (len(steps) - FALLBACK_SINGLES + 1)
        group = sorted(candidates, key=candidates.__getitem__, reverse=True)[:size]
        for node in group:
            keep[node] = f"sensitivity: adds relative error {candidates[node]:.3g} in FP16"
        moved += len(group)
        half, emulated, psnr, max_abs = check(keep)
        steps.append({"nodes": group, "own_error": candidates[group[0]], "psnr_db": psnr})
    passes = bool(psnr >= budget_db)
    dst = Path(dst_onnx)
    written = dst if passes else over_budget_path(dst)
    if not passes:
        dst.unlink(missing_ok=True)  # an older file under the normal name would pass for this
    copy_metadata(src, half, {"sllen_precision": "fp16"})
    save_model(half, written)
    return {
        "precision": "fp16",
        "path": str(written),
        "kept_fp32": keep,
        "psnr_db": psnr,
        "max_abs": max_abs,
        "budget_db": budget_db,
        "passes_budget": passes,
        "steps": steps,
        "frames": int(len(frames)),
        "max_abs_activation": peak,
        "converter": "onnxruntime.transformers.float16.convert_float_to_float16",
        "numerics": "FP16 rounding of weights and of every activation emulated in FP32 "
        "(ONNX Runtime on a CPU computes FP16 nodes in FP32 without the roundings)",
    }


def emulate_fp16(model: onnx.ModelProto, block: set[str]) -> onnx.ModelProto:
    """An FP32 graph that rounds like the FP16 model: the weights of, and every float output
    of, the nodes not in ``block`` pass through float16.

    Why: ONNX Runtime on a CPU has few FP16 kernels; it runs the FP16 file in FP32 and its cast
    insertion drops the roundings in between, so the FP16 file's own output there differs from
    FP32 by weight rounding alone (measured on SLLEN-edge: 110 dB, where FP16 activations give
    85 dB). TensorRT stores every FP16 activation; this model shows those numbers on any CPU.
    """
    m = onnx.ModelProto()
    m.CopyFrom(model)
    users: dict[str, set[str]] = {}
    for n in m.graph.node:
        for i in n.input:
            users.setdefault(i, set()).add(n.name)
    for init in m.graph.initializer:
        if (
            init.data_type == onnx.TensorProto.FLOAT
            and users.get(init.name)
            and not (users[init.name] & block)
        ):
            a = onnx.numpy_helper.to_array(init).astype(np.float16).astype(np.float32)
            init.CopyFrom(onnx.numpy_helper.from_array(a, init.name))
    rounded = {o for n, o in iter_float_outputs(m) if n.name not in block}
    nodes = []
    for n in m.graph.node:
        nodes.append(n)
        for k, o in enumerate(n.output):
            if o in rounded:  # the node now writes o__f32; o becomes its FP16-rounded copy
                n.output[k] = f"{o}__f32"
                nodes.append(
                    onnx.helper.make_node(
                        "Cast", [f"{o}__f32"], [f"{o}__f16"], to=onnx.TensorProto.FLOAT16
                    )
                )
                nodes.append(
                    onnx.helper.make_node("Cast", [f"{o}__f16"], [o], to=onnx.TensorProto.FLOAT)
                )
    del m.graph.node[:]
    m.graph.node.extend(nodes)
    return m


def _check_frames(frames: np.ndarray) -> np.ndarray:
    frames = np.asarray(frames, dtype=np.float32)
    if frames.ndim != 4 or frames.shape[1] != 3 or len(frames) == 0:
        raise InputError(f"frames must be a non-empty (N, 3, H, W) array, got {frames.shape}")
    return frames
