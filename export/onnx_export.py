"""torch -> ONNX: the SLLEN graph that ONNX Runtime, the calibration step and TensorRT read.

The file written by :func:`export_onnx` follows the conventions shared by export, calib and
runtime:

- input ``"input"``: float32 ``[N, 3, H, W]`` in [0, 1], H and W multiples of the model's
  ``size_multiple`` (16 for every preset; the runtime pads); output ``"output"``: float32
  ``[N, 3, H, W]``, the enhanced image in [0, 1]; with ``segmentation=True`` a second output
  ``"segmentation"``: float32 ``[N, K, H, W]`` SSaN logits. Batch, height and width are dynamic
  (``dim_param`` "batch", "height", "width" on the graph's inputs and outputs).
- opset 19 by default (20 allowed): below 23 torch writes attention as MatMul/Softmax/MatMul,
  which every TensorRT version from Jetson's 10.3 on parses.
- one self-contained file (weights inside, no external ``.data`` file), written atomically.
- ``metadata_props`` on the ModelProto: sllen_version, sllen_preset, sllen_variant,
  sllen_config (``model.config.to_json()``), sllen_attention, sllen_precision ("fp32"; the
  calibration step rewrites it for its fp16/int8 files), sllen_opset, and sllen_size_multiple.

HSBAB's attention is written in one of three forms (``attention=``); which one a file holds is
its ``sllen_attention`` metadata:

- ``"decomposed"``: MatMul(Q, K^T) -> Softmax -> MatMul(V), the pattern TensorRT fuses into
  its own attention kernel in FP16. 1/sqrt(d) is folded into the Q projection's weights
  (``HSBAB.fold_scale``), so no Mul or Div runs over the N x N score matrix.
- ``"plugin"``: one node ``SllenAttention`` in domain ``sllen`` (declared in ``opset_import``,
  version 1) with inputs Q, K, V (``[B, heads, N, d]``) and output ``[B, heads, N, d]``;
  attributes ``num_heads``, ``head_dim`` (ints), ``scale`` (float; 1.0 as the scale is
  folded into Q), ``plugin_version`` ("1") and ``plugin_namespace`` ("sllen"): what the
  TensorRT ONNX parser's plugin fallback reads (op_type = plugin name). ONNX Runtime cannot run
  this node; :func:`attach_reference_attention` gives a copy that it can (tests, calibration).
  The name is not ``Attention``: the parser picks importers by op_type alone (domain ignored),
  and parsers that know the ONNX ``Attention`` op (TensorRT >= 10.14) would import such a node
  as their own IAttention layer, never reaching the plugin. So the plugin is named
  ``SllenAttention`` (namespace ``sllen``, version 1); ``PLUGIN_OP_TYPE`` is the one place.
- ``"mha"``: one ``MultiHeadAttention`` node of ONNX Runtime's contrib domain ``com.microsoft``
  (declared in ``opset_import``, version 1): inputs Q, K, V as ``[B, N, heads * d]`` (transposes
  around it turn HSBAB's ``[B, heads, N, d]`` into that and back), attributes ``num_heads`` and
  ``scale`` (1.0, folded into Q as above), output ``[B, N, heads * d]``. ONNX Runtime's CPU
  kernel runs it without a mask, bias or past state as a flash attention (MLAS: blocks of
  queries and keys sized to the L2 cache, online softmax), so the memory grows linearly with
  the token count N instead of holding N x N scores per head, and the result is exact (equal to
  the other forms within float rounding). The form for files ONNX Runtime runs (``sllen-export
  --target cpu``, the bundled model); TensorRT does not parse ``com.microsoft`` nodes. Measured
  against query blocks in an ONNX ``Loop`` (linear too, 5x the memory, no faster) and the
  opset-23 ``Attention`` op (ONNX Runtime 1.32's CPU kernel holds the N x N scores): see
  docs/export.md.

Exporter choice: torch.export-based (``dynamo=True``). Both exporters handle SLLEN's dynamic H
and W (measured: onnxruntime matches PyTorch to ~2e-7 at 32x48, 64x64 and 48x96, batch 2), but
the TorchScript exporter (``dynamo=False``) is deprecated and warns that it will be removed,
whereas torch.export *proves* the graph valid for every size of the declared form
(``16 * height``) and fails the export when a shape gets baked in, instead of leaving a graph
that is silently wrong at other sizes. The custom node is written with
``torch.onnx.ops.symbolic``, the exporter's documented way to emit an arbitrary ONNX op: no
torch.library custom op, translation table or onnxscript function to keep in sync. The price is
time: about 5 s per export of the tiny or edge preset on one CPU core (TorchScript: 0.2 s).
Needs torch >= 2.9 (the version where this exporter became the default; tested on 2.13).
torch is imported only inside :func:`export_onnx`: the ONNX helpers here (metadata, atomic
save, reference attention) and sllen.export.parity/simplify load without torch (sllen.calib).
"""

from __future__ import annotations

import ast
import contextlib
import copy
import logging
import math
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import sllen
from sllen.runtime.errors import InputError

from .pipeline import SUPPORTED_OPSETS

if TYPE_CHECKING:
    import torch

    from sllen.model.sllen import SLLEN

ExportAttention = Literal["decomposed", "plugin", "mha"]
ATTENTION_MODES: tuple[str, ...] = ("decomposed", "plugin", "mha")
# The forms whose memory in ONNX Runtime grows linearly with the token count (sllen.runtime's
# ONNX Runtime backend reads sllen_attention to size its tiling budget).
LINEAR_MEMORY_ATTENTION: tuple[str, ...] = ("mha",)
DEFAULT_OPSET = 19

INPUT_NAME = "input"
OUTPUT_NAME = "output"
SEGMENTATION_NAME = "segmentation"
DYNAMIC_AXES = {0: "batch", 2: "height", 3: "width"}

PLUGIN_DOMAIN = "sllen"
PLUGIN_OP_TYPE = "SllenAttention"
PLUGIN_VERSION = "1"
PLUGIN_DOMAIN_VERSION = 1
MHA_DOMAIN = "com.microsoft"
MHA_OP_TYPE = "MultiHeadAttention"
MHA_DOMAIN_VERSION = 1

# metadata_props keys (shared with sllen.calib and sllen.runtime)
META_VERSION = "sllen_version"
META_PRESET = "sllen_preset"
META_VARIANT = "sllen_variant"
META_CONFIG = "sllen_config"
META_ATTENTION = "sllen_attention"
META_PRECISION = "sllen_precision"
META_OPSET = "sllen_opset"
META_SIZE_MULTIPLE = "sllen_size_multiple"


def _with_segmentation(model: SLLEN) -> torch.nn.Module:
    """A module whose forward returns (image, segmentation logits)."""
    from torch import nn

    class SLLENWithSegmentation(nn.Module):
        def __init__(self, model: SLLEN) -> None:
            super().__init__()
            self.model = model

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            out = self.model.forward_all(x, with_segmentation=True)
            assert out.segmentation is not None  # asked for it
            return out.image, out.segmentation

    return SLLENWithSegmentation(model).eval()


def _plugin_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float | None
) -> torch.Tensor:
    """The ``sllen::SllenAttention`` node (only meaningful while torch.onnx.export traces)."""
    import torch

    if scale is None:
        scale = 1.0 / math.sqrt(q.shape[-1])
    return torch.onnx.ops.symbolic(
        f"{PLUGIN_DOMAIN}::{PLUGIN_OP_TYPE}",
        (q, k, v),
        {
            "num_heads": int(q.shape[1]),
            "head_dim": int(q.shape[3]),
            "scale": float(scale),
            "plugin_version": PLUGIN_VERSION,
            "plugin_namespace": PLUGIN_DOMAIN,
        },
        dtype=q.dtype,
        shape=(q.shape[0], q.shape[1], q.shape[2], v.shape[3]),
        version=PLUGIN_DOMAIN_VERSION,
    )


def _mha_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float | None
) -> torch.Tensor:
    """The ``com.microsoft::MultiHeadAttention`` node on HSBAB's ``[B, heads, N, d]`` tensors
    (only meaningful while torch.onnx.export traces)."""
    import torch

    if scale is None:
        scale = 1.0 / math.sqrt(q.shape[-1])
    b, heads, n, d = q.shape
    dv = v.shape[-1]

    def merge(x: torch.Tensor) -> torch.Tensor:  # [B, heads, N, d] -> [B, N, heads * d]
        return x.transpose(1, 2).reshape(x.shape[0], x.shape[2], heads * x.shape[3])

    out = torch.onnx.ops.symbolic(
        f"{MHA_DOMAIN}::{MHA_OP_TYPE}",
        (merge(q), merge(k), merge(v)),
        {"num_heads": int(heads), "scale": float(scale)},
        dtype=q.dtype,
        shape=(b, n, heads * dv),
        version=MHA_DOMAIN_VERSION,
    )
    return out.reshape(b, n, heads, dv).transpose(1, 2)


@contextlib.contextmanager
def _registered(table: dict, fn) -> Iterator[None]:
    """Put ``fn`` into one of HSBAB's hooks for the duration of one export."""
    missing = object()
    previous = table.get("fn", missing)
    table["fn"] = fn
    try:
        yield
    finally:
        if previous is missing:
            table.pop("fn", None)
        else:
            table["fn"] = previous


def _attention_registered(attention: str) -> contextlib.AbstractContextManager:
    from sllen.model.hsbab import MHA_ATTENTION, PLUGIN_ATTENTION

    if attention == "plugin":
        return _registered(PLUGIN_ATTENTION, _plugin_attention)
    if attention == "mha":
        return _registered(MHA_ATTENTION, _mha_attention)
    return contextlib.nullcontext()


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence the exporter's chatter (missing torchvision ops, pytree deprecations)."""
    logger = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            yield
    finally:
        logger.setLevel(level)


def _name_refine_nodes(graph) -> None:  # graph: onnx.GraphProto
    """Prefix the names of the nodes the exporter traced inside the guided refinement
    (sllen/model/refine.py) with ``REFINE_PREFIX``, read from the exporter's module-class
    records before they are stripped. Nodes its optimiser makes carry no record (the Split
    of a ``torch.split``): they join the refinement when all the data they read comes from it."""
    from sllen.calib.graph import REFINE_PREFIX
    from sllen.model.refine import GuidedRefine

    cls = f"{GuidedRefine.__module__}.{GuidedRefine.__qualname__}"
    constant = {t.name for t in graph.initializer}
    constant.update(o for n in graph.node if n.op_type == "Constant" for o in n.output)
    inside: set[str] = set()  # tensors the refinement makes (file order is topological)
    for node in graph.node:
        records = [
            ast.literal_eval(p.value)
            for p in node.metadata_props
            if p.key == "pkg.torch.onnx.class_hierarchy"
        ]
        data = [t for t in node.input if t and t not in constant]
        if any(cls in r for r in records) or (
            not records and data and all(t in inside for t in data)
        ):
            node.name = REFINE_PREFIX + node.name
            inside.update(node.output)


def _strip_trace_metadata(graph) -> None:  # graph: onnx.GraphProto
    """Drop the exporter's per-node/per-value trace records (stack traces with this machine's
    paths, FX node dumps): they make up most of a small model's file and would make the same
    weights export to different bytes (and ONNX hashes) on different checkouts."""
    for node in graph.node:
        del node.metadata_props[:]
        for attr in node.attribute:
            if attr.HasField("g"):
                _strip_trace_metadata(attr.g)
            for sub in attr.graphs:
                _strip_trace_metadata(sub)
    for value in [*graph.input, *graph.output, *graph.value_info]:
        del value.metadata_props[:]
    for init in graph.initializer:
        del init.metadata_props[:]
    del graph.metadata_props[:]


def _name_dynamic_dims(graph) -> None:  # graph: onnx.GraphProto
    """Call the graph inputs' and outputs' dynamic axes batch, height and width."""
    for value in [*graph.input, *graph.output]:
        dims = value.type.tensor_type.shape.dim
        for axis, name in DYNAMIC_AXES.items():
            if axis < len(dims) and not dims[axis].HasField("dim_value"):
                dims[axis].dim_param = name


def export_metadata(model: SLLEN, attention: str, opset: int) -> dict[str, str]:
    """The metadata_props an exported file carries (before any precision conversion)."""
    cfg = model.config
    return {
        META_VERSION: sllen.__version__,
        META_PRESET: cfg.preset,
        META_VARIANT: cfg.variant,
        META_CONFIG: cfg.to_json(),
        META_ATTENTION: attention,
        META_PRECISION: "fp32",
        META_OPSET: str(opset),
        META_SIZE_MULTIPLE: str(cfg.size_multiple),
    }


def set_metadata(proto, metadata: dict[str, str]) -> None:  # proto: onnx.ModelProto
    """Set (replace or add) metadata_props entries on a ModelProto."""
    current = {p.key: p.value for p in proto.metadata_props}
    current.update(metadata)
    del proto.metadata_props[:]
    for key, value in current.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value


def save_onnx_atomic(proto, path: str | os.PathLike) -> Path:  # proto: onnx.ModelProto
    """Write one self-contained .onnx file (no external data) via a temporary file + rename."""
    import onnx

    from sllen.runtime.files import atomic_write

    return atomic_write(
        path, lambda tmp: onnx.save_model(proto, str(tmp), save_as_external_data=False)
    )


def export_onnx(
    model: SLLEN,
    path: str | os.PathLike,
    *,
    attention: ExportAttention = "decomposed",
    opset: int = DEFAULT_OPSET,
    segmentation: bool = False,
) -> Path:
    """Export ``model`` to one ONNX file at ``path`` (see the module docstring for the format).

    The model is not modified: a float32 CPU deep copy in eval mode is exported, with HSBAB
    switched to ``attention`` and its 1/sqrt(d) folded into Q. ``segmentation=True`` adds the
    SSaN logits as a second output. The graph is checked with ``onnx.checker`` before it is
    written. Returns the path written.
    """
    import onnx
    import torch

    from sllen.model.sllen import SLLEN

    if tuple(int(v) for v in torch.__version__.split(".")[:2]) < (2, 9):
        raise RuntimeError(f"ONNX export needs torch >= 2.9, this is torch {torch.__version__}")
    if attention not in ATTENTION_MODES:
        raise InputError(f"attention must be one of {ATTENTION_MODES}, got {attention!r}")
    if opset not in SUPPORTED_OPSETS:
        raise InputError(
            f"opset {opset} is not supported; use one of {SUPPORTED_OPSETS} (TensorRT parses "
            "MatMul/Softmax/MatMul attention below opset 23 on every version, Jetson's 10.3 too)"
        )
    if not isinstance(model, SLLEN):
        raise TypeError(f"export_onnx needs an SLLEN model, got {type(model).__name__}")

    net = copy.deepcopy(model).to(device="cpu", dtype=torch.float32).eval()
    if net.hsbab is not None:
        net.hsbab.mode = attention
        net.hsbab.fold_scale()
    module = _with_segmentation(net) if segmentation else net
    output_names = [OUTPUT_NAME, SEGMENTATION_NAME] if segmentation else [OUTPUT_NAME]

    # Example: batch 2 and height != width, so no axis is 0/1-specialised or confused with
    # another. H and W are declared as multiples of size_multiple (a torch.export derived dim).
    m = net.config.size_multiple
    gen = torch.Generator().manual_seed(0)  # leave the caller's global RNG state alone
    example = torch.rand(2, net.config.in_channels, 3 * m, 4 * m, generator=gen)
    dims = (
        torch.export.Dim("batch", min=1),
        torch.export.Dim("height", min=1),
        torch.export.Dim("width", min=1),
    )
    dynamic_shapes = ({0: dims[0], 2: m * dims[1], 3: m * dims[2]},)

    with _attention_registered(attention), _quiet_exporter(), torch.no_grad():
        # torch.export-based exporter, not TorchScript: see "Exporter choice" above.
        program = torch.onnx.export(
            module,
            (example,),
            None,
            dynamo=True,
            input_names=[INPUT_NAME],
            output_names=output_names,
            dynamic_shapes=dynamic_shapes,
            opset_version=opset,
            external_data=False,
            optimize=True,
            verbose=False,
        )
    if program is None:  # torch returns None only when it writes to a file itself
        raise RuntimeError("torch.onnx.export returned no ONNX program")
    proto = program.model_proto

    _name_refine_nodes(proto.graph)
    _strip_trace_metadata(proto.graph)
    _name_dynamic_dims(proto.graph)
    custom = {
        "plugin": (PLUGIN_DOMAIN, PLUGIN_DOMAIN_VERSION),
        "mha": (MHA_DOMAIN, MHA_DOMAIN_VERSION),
    }
    if attention in custom and net.hsbab is not None:
        domain, version = custom[attention]
        if domain not in {o.domain for o in proto.opset_import}:
            proto.opset_import.add(domain=domain, version=version)
    set_metadata(proto, export_metadata(net, attention, opset))
    onnx.checker.check_model(proto, full_check=True)
    _check_attention(proto, net, attention)
    return save_onnx_atomic(proto, path)


def _check_attention(proto, net: SLLEN, attention: str) -> None:
    """Fail the export if the attention block did not come out in the requested form."""
    for mode, domain, op_type in (
        ("plugin", PLUGIN_DOMAIN, PLUGIN_OP_TYPE),
        ("mha", MHA_DOMAIN, MHA_OP_TYPE),
    ):
        nodes = [n for n in proto.graph.node if n.domain == domain and n.op_type == op_type]
        expected = 1 if (attention == mode and net.hsbab is not None) else 0
        if len(nodes) != expected:
            raise RuntimeError(
                f"exported graph has {len(nodes)} {domain}::{op_type} nodes, expected {expected}"
            )


def attach_reference_attention(proto):  # proto: onnx.ModelProto -> onnx.ModelProto
    """A copy of a plugin-mode model that ONNX Runtime can run.

    Adds a model-local ONNX function ``sllen::SllenAttention`` (Softmax(Q K^T * scale) V) that
    ONNX Runtime inlines. For tests, parity checks and calibration on the CPU only: keep it out
    of files meant for TensorRT, whose parser inlines a local function when no plugin of that
    name is loaded, so a missing plugin library would go unnoticed. Models without the node
    are returned unchanged (copied).
    """
    import onnx
    from onnx import helper

    out = onnx.ModelProto()
    out.CopyFrom(proto)
    uses = any(n.domain == PLUGIN_DOMAIN and n.op_type == PLUGIN_OP_TYPE for n in out.graph.node)
    if not uses or any(
        f.domain == PLUGIN_DOMAIN and f.name == PLUGIN_OP_TYPE for f in out.functions
    ):
        return out
    onnx_opset = next(o.version for o in out.opset_import if o.domain in ("", "ai.onnx"))
    scale_attr = helper.make_attribute_ref("value_float", onnx.AttributeProto.FLOAT)
    scale_attr.ref_attr_name = "scale"
    nodes = [
        helper.make_node("Transpose", ["K"], ["Kt"], perm=[0, 1, 3, 2]),
        helper.make_node("MatMul", ["Q", "Kt"], ["S0"]),
        helper.make_node("Constant", [], ["s"]),
        # the scale attribute is a float; CastLike so FP16 (and INT8 files' FP16) Q/K/V run too
        helper.make_node("CastLike", ["s", "S0"], ["s_like"]),
        helper.make_node("Mul", ["S0", "s_like"], ["S"]),
        helper.make_node("Softmax", ["S"], ["P"], axis=-1),
        helper.make_node("MatMul", ["P", "V"], ["O"]),
    ]
    nodes[2].attribute.append(scale_attr)
    fn = helper.make_function(
        PLUGIN_DOMAIN,
        PLUGIN_OP_TYPE,
        ["Q", "K", "V"],
        ["O"],
        nodes,
        [helper.make_opsetid("", onnx_opset)],
        attributes=["num_heads", "head_dim", "plugin_version", "plugin_namespace"],
        attribute_protos=[helper.make_attribute("scale", 1.0)],
    )
    out.functions.append(fn)
    return out
