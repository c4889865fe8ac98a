"""Graph passes that let ONNX Runtime run the CPU INT8 flavour as integer kernels end to end.

quantize_static's QDQ output leaves float islands that ONNX Runtime's CPU graph optimizer does
not remove (measured per layer with benchmarks/int8_layers.py, docs/performance.md). These
passes remove them; each one changes what the graph computes by at most one rounding step of
the tensor it touches, and the budget check in sllen.calib.int8 runs on the rewritten file.

Before quantization (on the FP32 model, so the quantizer places Q/DQ around the new node):

- ``channel_softmax_to_softmax``: the exporter writes HSEB's softmax over the class channel as
  ReduceMax/Sub/Exp/ReduceSum/Div (ONNX Runtime's float Softmax over axis 1 goes through
  transposes on one core). In a Q/DQ graph those five float ops at full resolution are a float
  island between two QLinearConvs: two DequantizeLinear copies of the logits, four float
  passes and a QuantizeLinear. As one ``Softmax(axis=1)`` between Q/DQ, ONNX Runtime fuses it
  into its uint8 ``QLinearSoftmax`` (a 256-entry exp table) and runs it in NHWC between the two
  QLinearConvs. Measured at 720p on two AVX2 cores it is as fast as the float ops it replaces
  (36 against 37 ms): it removes the float island, not time. The output keeps the Div's tensor
  name, so the saved calibration ranges still apply.

After quantization (on the Q/DQ model):

- ``shapes_from_quantized``: ``Shape`` nodes that read a DequantizeLinear output (the
  exporter's Resize target sizes) read the uint8 tensor instead. Otherwise every such Shape
  keeps a full-size transpose and dequantization alive just to learn four numbers.
- ``prune_dead_nodes``: nodes whose outputs nobody reads (the DequantizeLinear nodes the pass
  above orphans).
- ``unquantize_float_inputs``: a Q/DQ pair whose readers are all float layers (excluded from
  quantization: attention, the output layer, the budget's fallback) is removed, so those
  layers read the float tensor. quantize_static quantizes every op it can, so without this a
  layer moved back to float still reads an 8-bit copy of its input and the fallback of
  sllen.calib.int8 recovers less: measured on a SLLEN-edge trained from scratch (F3 in
  docs/default-model.md, dark-pan.mp4, MinMax), the same eight layers in float left 0.57 dB
  without it and 0.48 with it (0.88 fully quantized). Where the quantizer folded a ReLU into
  the Q (an unsigned Q with zero point 0 clamps as a ReLU does), the ReLU is put back in its
  place, read from the float model, or removing the Q would remove it too.

``optimize_for_ort_cpu`` runs the post-quantization passes and returns what they changed.

Left as they are, on purpose (measured, docs/performance.md): the bilinear Resize nodes stay
DequantizeLinear -> float Resize -> QuantizeLinear. ONNX Runtime 1.32 drops Q/DQ around Resize
only in nearest mode; rewriting the pair away by hand makes it run its uint8 linear Resize,
which was 5x slower than the float one plus the Q/DQ pair (130 vs 27 ms for the eight resizes
at 640x368, two threads).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from sllen.calib.graph import consumers, producers

__all__ = [
    "channel_softmax_to_softmax",
    "optimize_for_ort_cpu",
    "prune_dead_nodes",
    "shapes_from_quantized",
    "unquantize_float_inputs",
]


def _const(model: onnx.ModelProto, name: str) -> np.ndarray | None:
    for t in model.graph.initializer:
        if t.name == name:
            return numpy_helper.to_array(t)
    for n in model.graph.node:
        if n.op_type == "Constant" and n.output[0] == name:
            return numpy_helper.to_array(n.attribute[0].t)
    return None


def _axes(model: onnx.ModelProto, node: onnx.NodeProto) -> list[int] | None:
    """The reduce axes of a ReduceMax/ReduceSum (attribute up to opset 17, input from 18)."""
    for a in node.attribute:
        if a.name == "axes":
            return list(a.ints)
    if len(node.input) > 1 and node.input[1]:
        value = _const(model, node.input[1])
        return None if value is None else [int(v) for v in np.atleast_1d(value)]
    return None


def _keepdims(node: onnx.NodeProto) -> bool:
    return all(a.i != 0 for a in node.attribute if a.name == "keepdims")


# ---------------------------------------------------------------------------- before


def channel_softmax_to_softmax(model: onnx.ModelProto) -> tuple[onnx.ModelProto, list[str]]:
    """``model`` with every Div(Exp(Sub(x, ReduceMax(x, axis 1))), ReduceSum(.., axis 1))
    replaced by Softmax(x, axis=1) (module docstring); returns it and the new nodes' names."""
    prod, cons = producers(model), consumers(model)
    drop: set[int] = set()
    new: dict[int, onnx.NodeProto] = {}  # index of the Div -> Softmax node that replaces it
    index = {id(n): i for i, n in enumerate(model.graph.node)}
    for div in model.graph.node:
        if div.op_type != "Div":
            continue
        exp, rsum = prod.get(div.input[0]), prod.get(div.input[1])
        if not (exp and rsum and exp.op_type == "Exp" and rsum.op_type == "ReduceSum"):
            continue
        sub = prod.get(exp.input[0])
        if rsum.input[0] != exp.output[0] or not sub or sub.op_type != "Sub":
            continue
        rmax = prod.get(sub.input[1])
        if not rmax or rmax.op_type != "ReduceMax" or rmax.input[0] != sub.input[0]:
            continue
        if any(_axes(model, r) != [1] or not _keepdims(r) for r in (rmax, rsum)):
            continue
        # Only this softmax may read the intermediate tensors.
        inner = {rmax.output[0]: 1, sub.output[0]: 1, exp.output[0]: 2, rsum.output[0]: 1}
        if any(len(cons.get(t, [])) != k for t, k in inner.items()):
            continue
        if any(o.name in inner for o in model.graph.output):
            continue
        drop |= {index[id(n)] for n in (rmax, sub, exp, rsum)}
        new[index[id(div)]] = helper.make_node(
            "Softmax", [sub.input[0]], [div.output[0]], name=div.name or "channel_softmax", axis=1
        )
    if not new:
        return model, []
    out = onnx.ModelProto()
    out.CopyFrom(model)
    nodes = [new.get(i, n) for i, n in enumerate(model.graph.node) if i not in drop]
    del out.graph.node[:]
    out.graph.node.extend(nodes)
    return out, [n.name for n in new.values()]


# ---------------------------------------------------------------------------- after


def shapes_from_quantized(model: onnx.ModelProto) -> int:
    """Point Shape nodes that read a DequantizeLinear output at its quantized input (in
    place); returns how many were moved."""
    prod = producers(model)
    moved = 0
    for node in model.graph.node:
        if node.op_type != "Shape":
            continue
        dq = prod.get(node.input[0])
        if dq is not None and dq.op_type == "DequantizeLinear":
            node.input[0] = dq.input[0]
            moved += 1
    return moved


def prune_dead_nodes(model: onnx.ModelProto) -> int:
    """Remove nodes none of whose outputs is read or a graph output (in place, repeated until
    nothing changes); returns how many were removed."""
    removed = 0
    outputs = {o.name for o in model.graph.output}
    while True:
        read = {i for n in model.graph.node for i in n.input} | outputs
        keep = [n for n in model.graph.node if any(o in read for o in n.output if o)]
        if len(keep) == len(model.graph.node):
            return removed
        removed += len(model.graph.node) - len(keep)
        del model.graph.node[:]
        model.graph.node.extend(keep)


def unquantize_float_inputs(
    model: onnx.ModelProto, float_nodes: set[str], source: onnx.ModelProto
) -> int:
    """Remove every activation Q/DQ pair all of whose readers are in ``float_nodes`` (node
    names), pointing them at the float tensor (in place); returns how many Qs went.

    ``source`` is the float model that was quantized: where its tensor came from a ReLU or
    Clip that the quantizer folded into the unsigned Q (clamping at zero point 0), that
    activation is put back in the Q's place, or removing the Q would remove it too."""
    cons, prod, src_prod = consumers(model), producers(model), producers(source)
    weights = {t.name for t in model.graph.initializer}
    src_weights = {t.name: t for t in source.graph.initializer}
    outputs = {o.name for o in model.graph.output}
    replace: dict[int, onnx.NodeProto | None] = {}  # id of a removed node -> what takes its place
    rename: dict[str, str] = {}
    removed = 0
    for q in model.graph.node:
        x = q.input[0]
        if q.op_type != "QuantizeLinear" or x in weights:
            continue
        dqs = cons.get(q.output[0], [])
        if not dqs or any(d.op_type != "DequantizeLinear" or d.output[0] in outputs for d in dqs):
            continue
        readers = [r for d in dqs for r in cons.get(d.output[0], [])]
        if not readers or any(r.name not in float_nodes for r in readers):
            continue
        act, made_by = src_prod.get(x), prod.get(x)
        restored = None
        # Folded: the float model's activation made x, and the Q/DQ model's producer is not it.
        if (
            act is not None
            and act.op_type in ("Relu", "Clip")
            and (made_by is None or made_by.op_type != act.op_type)
        ):
            restored = onnx.NodeProto()
            restored.CopyFrom(act)
            restored.input[0], restored.output[0] = x, f"{x}_float"
            restored.name = f"{act.name or x}_float"
            for bound in act.input[1:]:  # a Clip's min/max, dropped with the Clip if unused
                if bound and bound not in weights and bound in src_weights:
                    model.graph.initializer.append(src_weights[bound])
                    weights.add(bound)
        replace[id(q)] = restored
        replace |= {id(d): None for d in dqs}
        rename |= {d.output[0]: restored.output[0] if restored else x for d in dqs}
        removed += 1
    nodes = [replace.get(id(n), n) for n in model.graph.node]
    keep = [n for n in nodes if n is not None]
    for node in keep:
        for k, name in enumerate(node.input):
            node.input[k] = rename.get(name, name)
    del model.graph.node[:]
    model.graph.node.extend(keep)
    return removed


def optimize_for_ort_cpu(
    model: onnx.ModelProto,
    float_nodes: set[str] | None = None,
    source: onnx.ModelProto | None = None,
) -> tuple[onnx.ModelProto, dict[str, int]]:
    """A copy of the Q/DQ ``model`` with the post-quantization passes applied, and what they
    changed: {"float_inputs": n, "shapes_moved": n, "pruned": n}. ``float_nodes`` and
    ``source`` (the float model quantized) enable unquantize_float_inputs."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    unquantized = 0
    if float_nodes and source is not None:
        unquantized = unquantize_float_inputs(out, float_nodes, source)
    shapes = shapes_from_quantized(out)
    return out, {
        "float_inputs": unquantized,
        "shapes_moved": shapes,
        "pruned": prune_dead_nodes(out),
    }
