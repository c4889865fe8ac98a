"""ONNX graph simplification (constant folding, dead-node and redundant-shape-op removal).

Tool: onnxslim. Both onnxslim 0.1.98 and onnxsim 0.8.1 were tried on the exported tiny and
edge presets in both attention modes; both keep the dynamic batch/height/width and both cope
with the plugin node. onnxslim removes more (163 -> 159 nodes decomposed, 162 -> 158 plugin;
onnxsim: 162 and 161), reproduces the original's outputs bit for bit in onnxruntime (onnxsim:
~2e-7), keeps metadata_props without adding its own (onnxsim adds 19 ``onnxsim.*`` entries), and
is pure Python (onnxsim is a C++ extension; no wheel means a CMake build, e.g. on Jetson).
The exporter's own optimiser (torch.onnx, ``optimize=True``) has already folded most
constants, so the gain is small; what remains are the Shape/Concat chains that compute the
bilinear Resize sizes and the attention reshapes from the dynamic input size.

:func:`simplify_onnx` then runs the original and the simplified graph in onnxruntime on
synthetic dark inputs at two sizes and batch sizes (plugin-mode graphs through a reference
implementation of ``sllen::SllenAttention``, see
:func:`sllen.export.onnx_export.attach_reference_attention`) and refuses to write a result
that differs by more than ``atol``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from sllen.runtime.errors import InputError


def _io(proto) -> list[tuple[str, list[str | int]]]:
    """Names and shapes (dim_param or dim_value per axis) of the graph's inputs and outputs."""
    return [
        (v.name, [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim])
        for v in [*proto.graph.input, *proto.graph.output]
    ]


def _check_inputs(proto, seed: int = 0) -> list[np.ndarray]:
    """Two batches of different sizes (multiples of the model's size multiple)."""
    from sllen.export.parity import parity_inputs

    meta = {p.key: p.value for p in proto.metadata_props}
    m = int(meta.get("sllen_size_multiple", "16"))
    return [
        parity_inputs(n=2, size=(3 * m, 4 * m), seed=seed),
        parity_inputs(n=1, size=(2 * m, 5 * m), seed=seed + 1),
    ]


def simplify_onnx(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    *,
    atol: float | None = 1e-4,
    threads: int = 0,
) -> dict[str, Any]:
    """Simplify ``src`` with onnxslim and write the result to ``dst`` (may equal ``src``).

    Dynamic shapes and metadata_props are kept; the result is checked with onnx.checker and
    against the original in onnxruntime. Returns ``nodes_before``, ``nodes_after``,
    ``max_abs_diff`` (over all outputs and check inputs), ``tool`` ("onnxslim X.Y.Z") and
    ``skipped`` (None, or why the original was written unchanged: onnxslim failed, or it
    changed the input/output shapes). Raises ValueError when the simplified graph differs by
    more than ``atol`` (None: never raise) and writes nothing then.
    """
    import onnx
    import onnxslim

    from sllen.export.onnx_export import save_onnx_atomic, set_metadata
    from sllen.export.parity import ort_session, run_ort

    original = onnx.load(str(src))
    tool = f"onnxslim {onnxslim.__version__}"
    result: dict[str, Any] = {
        "nodes_before": len(original.graph.node),
        "nodes_after": len(original.graph.node),
        "max_abs_diff": 0.0,
        "tool": tool,
        "skipped": None,
    }

    work = onnx.ModelProto()
    work.CopyFrom(original)  # onnxslim edits the proto it is given
    try:
        simplified = onnxslim.slim(work)
        if not isinstance(simplified, onnx.ModelProto):
            raise RuntimeError(f"onnxslim returned {type(simplified).__name__}")
        if _io(simplified) != _io(original):
            raise RuntimeError(f"inputs/outputs changed: {_io(original)} -> {_io(simplified)}")
        set_metadata(simplified, {p.key: p.value for p in original.metadata_props})
        onnx.checker.check_model(simplified)
    except Exception as e:  # any failure of the tool: ship the unsimplified graph
        result["skipped"] = f"{tool} failed: {type(e).__name__}: {e}"
        save_onnx_atomic(original, dst)
        return result

    before = ort_session(original, threads)
    after = ort_session(simplified, threads)
    diff = 0.0
    for batch in _check_inputs(original):
        a, b = run_ort(before, batch), run_ort(after, batch)
        for name, value in a.items():
            diff = max(diff, float(np.abs(value - b[name]).max()))
    if atol is not None and not diff <= atol:
        raise InputError(
            f"simplified graph differs from {src} by {diff:.3g} (> {atol:g}); not written"
        )
    result["nodes_after"] = len(simplified.graph.node)
    result["max_abs_diff"] = diff
    save_onnx_atomic(simplified, Path(dst))
    return result
