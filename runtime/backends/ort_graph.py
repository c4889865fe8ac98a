"""Graph edits the ONNX Runtime backend makes in memory before it opens a CPU session.

They lower the peak memory of a frame without changing the file on disk (which stays the
standard graph TensorRT and the other providers take) and without changing the result beyond
float rounding (about 1e-6):

- ``drop_outputs``: a graph output is held until the end of the run, so the full-resolution
  segmentation logits (21 channels: 167 MiB at 1080p, 670 MiB at 4K) stay resident through
  the whole enhancement decoder even when nobody asked for them. Removing the output lets
  ONNX Runtime free them after HSEB has read them.
- ``split_concat_convs``: every decoder stage is Conv(Concat(upsampled, skip)). ONNX Runtime
  materialises the concatenation (48 channels at full resolution: 382 MiB at 1080p) next to
  both of its inputs. Conv(Concat(a, b), W) = Conv(a, W_a) + Conv(b, W_b), so each part is
  convolved with its slice of the weights and the partial results are summed: the
  concatenation is never built, and the upsampled part is freed as soon as its convolution
  has read it.

ONNX Runtime has no graph optimiser for either (its Concat elimination is for the GPU
providers), so sllen does them; ``onnx`` is needed only here and the backend opens the file
unchanged when it is missing.
"""

from __future__ import annotations

from typing import Any

# Nodes added by split_concat_convs carry this prefix (tests and the benchmark count them).
SPLIT_PREFIX = "sllen_split_"


def probe_session(proto: Any) -> Any:
    """A CPU session on a copy of ``proto`` with every tensor as an output and no graph
    optimisation (so every tensor is kept): for learning each tensor's shape at a given input
    size (runtime/backends/banded.py, benchmarks/graph_floor.py)."""
    import onnx
    import onnxruntime as ort

    probe = onnx.ModelProto()
    probe.CopyFrom(proto)
    known = {o.name for o in probe.graph.output}
    for node in probe.graph.node:
        for name in node.output:
            if name and name not in known:
                probe.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
                known.add(name)
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    opts.log_severity_level = 3
    return ort.InferenceSession(probe.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def lean_model(path: Any, keep_segmentation: bool) -> tuple[Any, list[str], bool]:
    """The file at ``path`` with both edits: (ModelProto, the outputs dropped, whether anything
    changed). Only the first output (the image) is kept unless ``keep_segmentation``."""
    import onnx

    proto = onnx.load(str(path))
    first = [proto.graph.output[0].name]
    dropped = [] if keep_segmentation else drop_outputs(proto, first)
    split = split_concat_convs(proto)
    return proto, dropped, bool(split or dropped)


def drop_outputs(proto: Any, keep: list[str]) -> list[str]:
    """Remove the graph outputs not in ``keep`` (ONNX Runtime still runs whatever the kept
    outputs need). Returns the names removed."""
    removed = [o for o in proto.graph.output if o.name not in keep]
    kept = [o for o in proto.graph.output if o.name in keep]
    proto.graph.value_info.extend(removed)  # their shapes stay known to shape inference
    del proto.graph.output[:]
    proto.graph.output.extend(kept)
    return [o.name for o in removed]


def _channels(proto: Any) -> dict[str, int]:
    """Channel count (axis 1) of every tensor whose shape inference gives it."""
    import onnx

    try:
        inferred = onnx.shape_inference.infer_shapes(proto)
    except Exception:  # a graph shape inference cannot follow: use what the file records
        inferred = proto
    out: dict[str, int] = {}
    for v in [*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output]:
        dims = v.type.tensor_type.shape.dim
        if len(dims) >= 2 and dims[1].HasField("dim_value"):
            out[v.name] = dims[1].dim_value
    return out


def split_concat_convs(proto: Any) -> int:
    """Rewrite Conv(Concat(parts, axis=1)) as a sum of Convs over the parts (see the module
    doc). Only plain float convolutions with one group and constant weights are rewritten
    (quantized graphs keep their structure). Returns how many convolutions were split."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    graph = proto.graph
    inits = {t.name: t for t in graph.initializer}
    producers = {o: n for n in graph.node for o in n.output}
    consumers: dict[str, int] = {}
    for n in graph.node:
        for i in n.input:
            consumers[i] = consumers.get(i, 0) + 1
    for o in graph.output:
        consumers[o.name] = consumers.get(o.name, 0) + 1
    channels = _channels(proto)

    new_nodes: list[Any] = []
    dropped: set[str] = set()  # outputs of the Concats that go
    split = 0
    for node in graph.node:
        cat = producers.get(node.input[0]) if node.op_type == "Conv" and node.input else None
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        weight = inits.get(node.input[1]) if len(node.input) > 1 else None
        if (
            cat is None
            or node.domain not in ("", "ai.onnx")
            or cat.op_type != "Concat"
            or consumers.get(cat.output[0]) != 1
            or {a.name: a.i for a in cat.attribute}.get("axis") != 1  # the channel axis
            or attrs.get("group", 1) != 1
            or weight is None
            or weight.data_type != onnx.TensorProto.FLOAT
        ):
            new_nodes.append(node)
            continue
        w = numpy_helper.to_array(weight)
        parts = list(cat.input)
        known = [channels.get(p) for p in parts]
        unknown = [i for i, c in enumerate(known) if c is None]
        if len(unknown) == 1:  # the one part shape inference lost: what the weights leave
            known[unknown[0]] = w.shape[1] - sum(c for c in known if c is not None)
        sizes = [c for c in known if c is not None and c > 0]
        if len(sizes) != len(parts) or sum(sizes) != w.shape[1]:
            new_nodes.append(node)
            continue
        dropped.add(cat.output[0])
        base = SPLIT_PREFIX + node.name
        offsets = np.cumsum([0, *sizes])
        partials: list[str] = []
        # The largest part (the upsampled features) first, so it is freed earliest.
        order = sorted(range(len(parts)), key=lambda i: -sizes[i])
        for k, i in enumerate(order):
            w_name = f"{base}_w{i}"
            graph.initializer.append(
                numpy_helper.from_array(
                    np.ascontiguousarray(w[:, offsets[i] : offsets[i + 1]]), w_name
                )
            )
            inputs = [parts[i], w_name]
            if k == 0 and len(node.input) > 2:
                inputs.append(node.input[2])  # the bias once
            out = f"{base}_p{i}"
            new_nodes.append(
                helper.make_node("Conv", inputs, [out], name=f"{base}_conv{i}", **attrs)
            )
            partials.append(out)
        total = partials[0]
        for k, p in enumerate(partials[1:], 1):
            last = k == len(partials) - 1
            out = node.output[0] if last else f"{base}_sum{k}"
            new_nodes.append(helper.make_node("Add", [total, p], [out], name=f"{base}_add{k}"))
            total = out
        split += 1
    if split:
        kept = [n for n in new_nodes if not (n.op_type == "Concat" and n.output[0] in dropped)]
        del graph.node[:]
        graph.node.extend(kept)
        used = {i for n in graph.node for i in n.input}
        unused = [t for t in graph.initializer if t.name not in used]
        for t in unused:
            graph.initializer.remove(t)
    return split
