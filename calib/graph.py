"""ONNX graph helpers shared by the FP16 and INT8 passes (onnx, onnxruntime, numpy; no torch).

- ``session`` / ``run``: an ONNX Runtime CPU session and batched inference over frames. The
  session uses ``threads`` intra-op threads, or OMP_NUM_THREADS when that is set (ONNX Runtime
  itself ignores that variable), so a calibration next to a training run stays on its cores.
- ``capture``: runs a model with chosen intermediate tensors exposed as extra graph outputs and
  hands each batch's values to a callback (the model on disk is not changed).
- ``attention_nodes``: HSBAB's nodes, found by the MatMul -> Softmax -> MatMul pattern or a
  fused attention node (ONNX Runtime's ``com.microsoft`` MultiHeadAttention/Attention, the ONNX
  ``Attention`` op), plus the 1x1 Q/K/V/output projections reached through layout ops, and by
  "hsbab" in node or weight names, so it works for the TorchScript and the dynamo exporter's
  naming.
- ``output_nodes``: the last convolution(s) on the path to a graph output and everything after.
- ``psnr_db``: the project's PSNR protocol (sllen.metrics.psnr_ssim: RGB, data range 1, MSE over
  all pixels and channels, no crop, capped at 100 dB), on (N, 3, H, W) batches: the mean over
  images.
- metadata helpers: sllen_* props travel from the source model to the converted one.
- ``save_model``: atomic; a full disk's error names the file (``naming_writes``, which
  sllen.export uses for its writes too).
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

from sllen.runtime.errors import InputError, SllenError

# Prefix sllen.export.onnx_export gives the guided refinement's node names
# (sllen/model/refine.py): INT8 leaves them in float, and finds the input and output layers
# around them.
REFINE_PREFIX = "refine/"

__all__ = [
    "PSNR_MAX_DB",
    "attention_nodes",
    "capture",
    "input_nodes",
    "consumers",
    "copy_metadata",
    "ensure_node_names",
    "float_tensor_types",
    "get_metadata",
    "iter_float_outputs",
    "load_model",
    "naming_writes",
    "output_nodes",
    "producers",
    "prune_opset_imports",
    "psnr_db",
    "run",
    "save_model",
    "session",
    "thread_count",
    "weighted_nodes",
]

PSNR_MAX_DB = 100.0
FLOAT_TYPES = (TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.BFLOAT16)
# Ops that only move data around between the attention matmuls and their projections.
_LAYOUT_OPS = {
    "Reshape", "Transpose", "Squeeze", "Unsqueeze", "Flatten", "Identity", "Cast", "Mul", "Div",
}  # fmt: skip
_PROJECTION_OPS = {"Conv", "MatMul", "Gemm"}
_WEIGHTED_OPS = {"Conv", "ConvTranspose", "Gemm", "MatMul"}
_SHAPE_OPS = {"Shape", "Size"}  # read a tensor's shape, not its values
# One node for the whole attention product (sllen-export --attention mha writes the first).
FUSED_ATTENTION_OPS = {("com.microsoft", "MultiHeadAttention"), ("com.microsoft", "Attention")}
FUSED_ATTENTION_OPS |= {("", "Attention"), ("ai.onnx", "Attention")}


def load_model(model: str | os.PathLike | onnx.ModelProto) -> onnx.ModelProto:
    if isinstance(model, onnx.ModelProto):
        return model
    path = Path(model)
    if not path.is_file():
        raise InputError(f"{path}: no such ONNX file")
    try:
        return onnx.load(str(path))
    except Exception as err:  # onnx raises DecodeError, OSError, ...
        raise InputError(f"{path}: not a readable ONNX model ({err})") from None


def thread_count(threads: int | None) -> int:
    """``threads``, else OMP_NUM_THREADS when set, else 0 (ONNX Runtime's default: all cores)."""
    if threads is not None:
        return int(threads)
    env = os.environ.get("OMP_NUM_THREADS", "")
    return int(env) if env.isdigit() else 0


def session(model: str | os.PathLike | onnx.ModelProto | bytes, threads: int | None = None):
    """An ONNX Runtime CPU session for a path, a ModelProto or serialized bytes."""
    from sllen.runtime.backends.onnxruntime import cpu_session  # the one session builder

    if isinstance(model, onnx.ModelProto):
        model = model.SerializeToString()
    return cpu_session(model, thread_count(threads))


def run(sess, frames: np.ndarray, batch: int = 4, name: str | None = None) -> np.ndarray:
    """The first output (or ``name``) for every frame, batched; float32."""
    inp = sess.get_inputs()[0].name
    outs = [
        sess.run([name or sess.get_outputs()[0].name], {inp: _f32(frames[i : i + batch])})[0]
        for i in range(0, len(frames), batch)
    ]
    return np.concatenate(outs).astype(np.float32, copy=False)


def _f32(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x, dtype=np.float32)


def float_tensor_types(model: onnx.ModelProto) -> dict[str, int]:
    """Element type of every float tensor a node produces (after shape inference)."""
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # noqa: BLE001 - types of graph outputs/value_info already there suffice
        inferred = model
    g = inferred.graph
    types = {}
    for vi in list(g.value_info) + list(g.output) + list(g.input):
        t = vi.type.tensor_type.elem_type
        if t in FLOAT_TYPES:
            types[vi.name] = t
    return types


def capture(
    model: onnx.ModelProto,
    frames: np.ndarray,
    tensors: Sequence[str],
    callback: Callable[[dict[str, np.ndarray]], None],
    batch: int = 2,
    threads: int | None = None,
) -> None:
    """Run ``model`` on ``frames`` exposing ``tensors`` as outputs; ``callback(values)`` per
    batch (values also holds the model's own outputs)."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    types = float_tensor_types(model)
    have = {o.name for o in m.graph.output}
    for name in tensors:
        if name not in have:
            m.graph.output.append(
                helper.make_tensor_value_info(name, types.get(name, TensorProto.FLOAT), None)
            )
            have.add(name)
    sess = session(m, threads)
    inp = sess.get_inputs()[0].name
    names = [o.name for o in sess.get_outputs()]
    for i in range(0, len(frames), batch):
        values = sess.run(names, {inp: _f32(frames[i : i + batch])})
        callback(dict(zip(names, values, strict=True)))


def producers(model: onnx.ModelProto) -> dict[str, onnx.NodeProto]:
    return {out: n for n in model.graph.node for out in n.output if out}


def consumers(model: onnx.ModelProto) -> dict[str, list[onnx.NodeProto]]:
    out: dict[str, list[onnx.NodeProto]] = {}
    for n in model.graph.node:
        for name in n.input:
            if name:
                out.setdefault(name, []).append(n)
    return out


def _initializer_names(model: onnx.ModelProto) -> set[str]:
    names = {t.name for t in model.graph.initializer}
    names |= {n.output[0] for n in model.graph.node if n.op_type == "Constant"}
    return names


def attention_nodes(model: onnx.ModelProto) -> list[str]:
    """Names of HSBAB's nodes: MatMul -> Softmax -> MatMul or one fused attention node, the
    layout ops around them, the Q/K/V and output projections, and any node named (or with a
    weight named) "hsbab"."""
    prod, cons = producers(model), consumers(model)
    consts = _initializer_names(model)
    found: dict[str, onnx.NodeProto] = {}
    for node in model.graph.node:
        if (node.domain, node.op_type) not in FUSED_ATTENTION_OPS:
            continue
        found[node.name] = node
        for t in node.input[:3]:  # query, key, value
            if t and t not in consts:
                _walk_back(t, prod, consts, found)
        _walk_forward(node.output[0], cons, found)
    for sm in model.graph.node:
        if sm.op_type != "Softmax":
            continue
        qk = prod.get(sm.input[0])
        av = [c for c in cons.get(sm.output[0], []) if c.op_type == "MatMul"]
        if qk is None or qk.op_type != "MatMul" or not av:
            continue
        for n in (qk, sm, *av):
            found[n.name] = n
        # Backwards from Q, K (inputs of the first matmul) and V (second input of the second).
        starts = list(qk.input) + [a.input[1] for a in av]
        for t in starts:
            _walk_back(t, prod, consts, found)
        for a in av:
            _walk_forward(a.output[0], cons, found)
    for n in model.graph.node:
        weights = [i for i in n.input if i in consts]
        if "hsbab" in n.name.lower() or any("hsbab" in w.lower() for w in weights):
            found[n.name] = n
    return [n.name for n in model.graph.node if n.name in found]


def _walk_back(tensor: str, prod, consts: set[str], found: dict) -> None:
    node = prod.get(tensor)
    while node is not None and node.name not in found:
        found[node.name] = node
        if node.op_type in _PROJECTION_OPS:
            return
        if node.op_type not in _LAYOUT_OPS:
            found.pop(node.name)
            return
        data = [i for i in node.input if i and i not in consts]
        node = prod.get(data[0]) if data else None


def _walk_forward(tensor: str, cons, found: dict) -> None:
    nexts = cons.get(tensor, [])
    while len(nexts) == 1 and nexts[0].name not in found:
        node = nexts[0]
        if node.op_type in _PROJECTION_OPS:
            found[node.name] = node
            return
        if node.op_type not in _LAYOUT_OPS:
            return
        found[node.name] = node
        nexts = cons.get(node.output[0], [])


def refine_nodes(model: onnx.ModelProto) -> list[str]:
    """Names of the guided refinement's nodes (sllen/model/refine.py; named by export)."""
    return [n.name for n in model.graph.node if n.name.startswith(REFINE_PREFIX)]


def output_nodes(model: onnx.ModelProto, convs: int = 1) -> list[str]:
    """The last ``convs`` weighted layers on the data path to each graph output, and every node
    after them (for SLLEN: the enhancement head's 1x1 conv and the sigmoid). The guided
    refinement is not counted (it has no weights): the walk starts from the network's output
    that it reads."""
    prod = producers(model)
    consts = _initializer_names(model)
    refine = set(refine_nodes(model))
    # What the refinement reads from outside itself (the network's output, not the input).
    feeds = [
        prod[t]
        for n in model.graph.node
        if n.name in refine
        for t in n.input
        if t in prod and prod[t].name not in refine
    ]
    starts: list[onnx.NodeProto | None] = []
    for out in model.graph.output:
        node = prod.get(out.name)
        starts += feeds if node is not None and node.name in refine else [node]
    found: set[str] = set()
    for start in starts:
        node, left = start, convs
        while node is not None and left > 0:
            found.add(node.name)
            if node.op_type in _WEIGHTED_OPS:
                left -= 1
                if left == 0:
                    break
            data = [i for i in node.input if i and i not in consts]
            node = prod.get(data[0]) if data else None
    return [n.name for n in model.graph.node if n.name in found]


def input_nodes(model: onnx.ModelProto) -> list[str]:
    """The first weighted layer on each data path from the graph inputs, and every node before
    it (for SLLEN: the first 3x3 conv, which reads the image itself)."""
    cons = consumers(model)
    found: set[str] = set()
    consts = _initializer_names(model)  # old IRs list the weights among the inputs too
    tensors = [i.name for i in model.graph.input if i.name not in consts]
    refine = set(refine_nodes(model))  # reads the input too, but is not an input layer
    while tensors:
        for node in cons.get(tensors.pop(), []):
            if node.op_type in _SHAPE_OPS or node.name in found or node.name in refine:
                continue
            found.add(node.name)
            if node.op_type not in _WEIGHTED_OPS:
                tensors.extend(node.output)
    return [n.name for n in model.graph.node if n.name in found]


def weighted_nodes(model: onnx.ModelProto) -> list[str]:
    """Layers with learned weights: the guided refinement's box-filter convolutions (constant
    kernels) are not among them."""
    refine = set(refine_nodes(model))
    return [n.name for n in model.graph.node if n.op_type in _WEIGHTED_OPS and n.name not in refine]


def ensure_node_names(model: onnx.ModelProto) -> onnx.ModelProto:
    """Give unnamed nodes unique names (node lists refer to nodes by name)."""
    seen = {n.name for n in model.graph.node if n.name}
    for i, n in enumerate(model.graph.node):
        if not n.name:
            name = f"{n.op_type}_{i}"
            while name in seen:
                name += "_"
            n.name = name
            seen.add(name)
    return model


def psnr_db(pred: np.ndarray, ref: np.ndarray) -> float:
    """Mean PSNR over the images of two (N, 3, H, W) batches (see the module docstring)."""
    pred = np.asarray(pred, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    if pred.shape != ref.shape:
        raise InputError(f"shapes differ: {pred.shape} vs {ref.shape}")
    mse = ((pred - ref) ** 2).reshape(len(pred), -1).mean(axis=1)
    with np.errstate(divide="ignore"):
        values = np.where(mse > 0, 10.0 * np.log10(1.0 / np.maximum(mse, 1e-300)), PSNR_MAX_DB)
    return float(np.minimum(values, PSNR_MAX_DB).mean())


def get_metadata(model: onnx.ModelProto) -> dict[str, str]:
    return {p.key: p.value for p in model.metadata_props}


def copy_metadata(
    src: onnx.ModelProto, dst: onnx.ModelProto, updates: dict[str, str] | None = None
) -> None:
    """dst gets src's sllen_* props (and its own others), then ``updates``."""
    props = {k: v for k, v in get_metadata(dst).items()}
    props.update({k: v for k, v in get_metadata(src).items() if k.startswith("sllen_")})
    props.update(updates or {})
    del dst.metadata_props[:]
    for k, v in props.items():
        entry = dst.metadata_props.add()
        entry.key, entry.value = k, str(v)


def save_model(model: onnx.ModelProto, path: str | os.PathLike) -> Path:
    """Save atomically (temporary file in the same folder, then rename); one file, no external
    data (SLLEN models are a few MB)."""
    from sllen.runtime.files import atomic_write

    with naming_writes(path):
        return atomic_write(path, lambda tmp: onnx.save(model, str(tmp)))


# A write to a full or limited disk fails without naming its file ("[Errno 28] No space left
# on device").
_DISK_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO)


@contextmanager
def naming_writes(path: str | os.PathLike) -> Iterator[None]:
    """An OSError of a full disk that names no file (a failed ``write``) gets ``path``, so its
    message says which file could not be written."""
    try:
        yield
    except OSError as e:
        if e.filename is None and e.errno in _DISK_ERRORS and not isinstance(e, SllenError):
            e.filename = os.fspath(path)
        raise


def iter_float_outputs(model: onnx.ModelProto) -> Iterable[tuple[onnx.NodeProto, str]]:
    """(node, output name) for each float tensor a node produces."""
    types = float_tensor_types(model)
    for n in model.graph.node:
        for o in n.output:
            if o and types.get(o) in FLOAT_TYPES:
                yield n, o


def prune_opset_imports(model: onnx.ModelProto) -> onnx.ModelProto:
    """Drop opset imports of domains no node uses (ONNX Runtime's optimiser adds several)."""
    used = {n.domain or "" for n in model.graph.node}
    keep = [
        o for o in model.opset_import if (o.domain or "") in used or o.domain in ("", "ai.onnx")
    ]
    del model.opset_import[:]
    model.opset_import.extend(keep)
    return model
