"""Inference backends behind one interface, and the choice between them (``--backend auto``).

Importing this package imports no backend library: each backend module imports tensorrt,
onnxruntime or torch only when it is opened.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sllen.runtime.backends.base import (
    BACKENDS,
    Backend,
    BackendInfo,
    BackendUnavailableError,
    InputError,
    Outputs,
    Timing,
    check_device,
)
from sllen.runtime.env import installed
from sllen.runtime.errors import MissingFileError, install_hint

__all__ = [
    "BACKENDS",
    "Backend",
    "BackendInfo",
    "BackendUnavailableError",
    "InputError",
    "Outputs",
    "Timing",
    "backend_for_file",
    "choose_backend",
    "installed",
    "open_backend",
]

ENGINE_SUFFIXES = (".engine", ".plan", ".trt")
ONNX_SUFFIXES = (".onnx",)
WEIGHTS_SUFFIXES = (".safetensors",)


def backend_for_file(path: str | os.PathLike[str]) -> str:
    """The backend a model file needs, from its suffix."""
    suffix = Path(path).suffix.lower()
    if suffix in ENGINE_SUFFIXES:
        return "tensorrt"
    if suffix in ONNX_SUFFIXES:
        return "onnxruntime"
    if suffix in WEIGHTS_SUFFIXES:
        return "pytorch"
    raise InputError(
        f"{path}: unknown model file type {suffix or '(no suffix)'!r}; expected a TensorRT "
        f"engine ({', '.join(ENGINE_SUFFIXES)}), an ONNX file (.onnx) or weights (.safetensors)"
    )


def choose_backend(model: str | os.PathLike[str] | None, backend: str = "auto") -> tuple[str, str]:
    """(backend name, reason) for a model file (None: the bundled model) and a request."""
    if backend != "auto":
        if backend not in BACKENDS:
            raise InputError(
                f"--backend must be auto or one of {', '.join(BACKENDS)}, not {backend!r}"
            )
        if model is not None and backend_for_file(model) != backend:
            raise InputError(
                f"{model} is a model file for the {backend_for_file(model)} backend; the "
                f"{backend} backend cannot load it"
            )
        return backend, "asked for"
    if model is not None:
        return backend_for_file(model), f"{Path(model).suffix} file"
    # The bundled model: ONNX Runtime when present (torch-free and faster on a CPU), else
    # PyTorch; a CUDA GPU with torch gets PyTorch (FP16 on the GPU, no export needed).
    if installed("torch") and _nvidia_gpu():
        return "pytorch", "bundled model, CUDA GPU and torch found"
    if installed("onnxruntime"):
        return "onnxruntime", "bundled model, onnxruntime found"
    if installed("torch"):
        return "pytorch", "bundled model, onnxruntime not installed"
    raise BackendUnavailableError(
        f"no inference library found: install onnxruntime ({install_hint('run')}) or torch"
    )


def _nvidia_gpu() -> bool:
    """An NVIDIA GPU is visible, checked without importing torch (a second of start-up)."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return False
    gpus = Path("/proc/driver/nvidia/gpus")
    return gpus.is_dir() and any(gpus.iterdir())


def open_backend(
    model: str | os.PathLike[str] | None = None,
    backend: str = "auto",
    *,
    device: str = "auto",
    precision: str = "auto",
    threads: int | None = None,
    **options: Any,
) -> Backend:
    """Open a backend on `model` (None: the bundled default model).

    device: "auto", "cpu", "cuda" or "cuda:N"; precision: "auto", "fp32" or "fp16" (PyTorch
    only: ONNX and engine files carry their precision); threads: CPU threads (ONNX Runtime
    intra-op threads, torch.set_num_threads). Other keyword options go to the backend
    (tensorrt: cuda_graph, plugin_library; onnxruntime: bands; pytorch: attention).
    """
    check_device(device)
    name, _ = choose_backend(model, backend)
    if model is not None and not Path(model).is_file():
        raise MissingFileError(f"{model}: no such model file")
    if name == "onnxruntime":
        from sllen.runtime.backends.onnxruntime import OnnxRuntimeBackend

        return OnnxRuntimeBackend(model, device=device, threads=threads, **options)
    if name == "pytorch":
        from sllen.runtime.backends.pytorch import PyTorchBackend

        return PyTorchBackend(model, device=device, precision=precision, threads=threads, **options)
    from sllen.runtime.backends.tensorrt import TensorRTBackend

    if model is None:
        raise InputError("the TensorRT backend needs an engine file: --model model.engine")
    return TensorRTBackend(model, device=device, **options)
