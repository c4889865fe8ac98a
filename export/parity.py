"""Numerical parity: an ONNX file against the PyTorch model (and the ONNX Runtime helpers).

Inputs are real-looking dark images, not noise: procedural scenes
(:func:`sllen.data.scenes.generate_scene`) darkened by the project's low-light synthesis
(:func:`sllen.data.synthesis.synthesize_low`: exposure 2-5.6 stops down, uneven light, colour
cast, Poisson-Gaussian sensor noise, 8-bit quantisation), the statistics the network sees in
use. Noise alone would exercise neither the attention's semantic affinities nor the dark-range
precision that FP16/INT8 budgets are about.

Metrics (numbers are the candidate's "output", the enhanced image, against the reference's):

- ``max_abs``, ``mean_abs``: over every element of the batch;
- ``psnr``: :func:`sllen.metrics.psnr` (RGB, all channels, no crop, data range 1, capped at
  100 dB) of each image, then the mean over the images; no clipping (the outputs come out of a
  sigmoid and lie in [0, 1]).

Models with a segmentation output also get ``segmentation_max_abs`` (logits).

ONNX Runtime runs on the CPUExecutionProvider. Plugin-mode graphs (one ``sllen::SllenAttention``
node) run through :func:`sllen.export.onnx_export.attach_reference_attention`, an in-memory
copy with a reference implementation of the node; the file itself is never changed.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from sllen.data.scenes import generate_scene
from sllen.data.synthesis import synthesize_low
from sllen.runtime.errors import InputError

_OUTPUT = "output"
_SEGMENTATION = "segmentation"


def parity_inputs(n: int = 4, size: tuple[int, int] = (64, 96), seed: int = 0) -> np.ndarray:
    """``n`` synthetic dark captures of procedural scenes: float32 ``[n, 3, H, W]`` in [0, 1].

    Deterministic in ``seed``. ``size`` is (H, W); for a network input it must be a multiple of
    the model's size multiple (16).
    """
    if n < 1:
        raise InputError(f"n must be at least 1, got {n}")
    h, w = size
    rng = np.random.default_rng(seed)
    images = []
    for _ in range(n):
        scene, _ = generate_scene(rng, h, w)
        low, _ = synthesize_low(scene, rng)
        images.append(np.ascontiguousarray(low.transpose(2, 0, 1), dtype=np.float32))
    return np.stack(images)


def _load_for_ort(onnx_path: str | os.PathLike | Any) -> bytes:
    import onnx

    from sllen.export.onnx_export import attach_reference_attention

    proto = onnx_path if isinstance(onnx_path, onnx.ModelProto) else onnx.load(str(onnx_path))
    return attach_reference_attention(proto).SerializeToString()


def ort_session(onnx_path: str | os.PathLike | Any, threads: int | None = None):
    """An onnxruntime CPU session for a path or ModelProto (plugin nodes get the reference),
    built by sllen.calib.graph.session (``threads``: intra-op threads, None: the default)."""
    from sllen.calib.graph import session

    return session(_load_for_ort(onnx_path), threads)


_ORT_TO_NUMPY = {"tensor(float)": np.float32, "tensor(float16)": np.float16}


def run_ort(session, inputs: np.ndarray) -> dict[str, np.ndarray]:
    """Run ``session`` on an NCHW batch; outputs by name as float64 arrays.

    The batch is cast to the model's input type (float32, or float16 for a model converted
    without kept I/O types).
    """
    spec = session.get_inputs()[0]
    dtype = _ORT_TO_NUMPY.get(spec.type, np.float32)
    names = [o.name for o in session.get_outputs()]
    outs = session.run(names, {spec.name: np.asarray(inputs).astype(dtype, copy=False)})
    return {k: np.asarray(v, dtype=np.float64) for k, v in zip(names, outs, strict=True)}


def compare_images(candidate: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """max_abs, mean_abs and mean per-image PSNR of two NCHW image batches."""
    from sllen.metrics import psnr

    cand = np.asarray(candidate, dtype=np.float64)
    ref = np.asarray(reference, dtype=np.float64)
    if cand.shape != ref.shape:
        raise InputError(f"shape mismatch: {cand.shape} vs {ref.shape}")
    diff = np.abs(cand - ref)
    hwc = (0, 2, 3, 1)  # sllen.metrics takes H x W x 3 images
    psnrs = [psnr(c, r) for c, r in zip(cand.transpose(hwc), ref.transpose(hwc), strict=True)]
    return {
        "max_abs": float(diff.max()),
        "mean_abs": float(diff.mean()),
        "psnr": float(np.mean(psnrs)),
    }


def check_parity(
    model, onnx_path: str | os.PathLike, inputs: np.ndarray, *, threads: int = 0
) -> dict[str, Any]:
    """Compare the ONNX file's outputs in onnxruntime with the PyTorch model's on ``inputs``.

    ``model``: an :class:`sllen.model.SLLEN` (run in eval mode under no_grad; its training flag
    is restored afterwards; its attention mode does not matter). ``inputs``: NCHW float32
    (e.g. :func:`parity_inputs`). Returns ``max_abs``, ``mean_abs``, ``psnr`` (see the module
    docstring), ``n`` and ``shape``, and ``segmentation_max_abs`` when the file has a
    segmentation output.
    """
    import torch

    inputs = np.ascontiguousarray(inputs, dtype=np.float32)
    if inputs.ndim != 4:
        raise InputError(f"inputs must be NCHW, got shape {inputs.shape}")
    got = run_ort(ort_session(onnx_path, threads), inputs)
    if _OUTPUT not in got:
        raise InputError(f"{onnx_path} has no output named {_OUTPUT!r} (has {sorted(got)})")
    with_seg = _SEGMENTATION in got

    training = model.training
    model.eval()
    try:
        param = next(model.parameters())
        x = torch.from_numpy(inputs).to(device=param.device, dtype=param.dtype)
        with torch.no_grad():
            out = model.forward_all(x, with_segmentation=with_seg)
    finally:
        model.train(training)

    result: dict[str, Any] = compare_images(got[_OUTPUT], out.image.double().cpu().numpy())
    result["n"] = int(inputs.shape[0])
    result["shape"] = list(inputs.shape)
    if with_seg:
        seg = out.segmentation.double().cpu().numpy()
        result["segmentation_max_abs"] = float(np.abs(got[_SEGMENTATION] - seg).max())
    return result
