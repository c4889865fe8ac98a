"""Where the package's default model files are (data lookups only: no torch, no model code).

The bundled weights (sllen/weights/sllen-edge.safetensors) serve the PyTorch backend; the
same model exported to ONNX (sllen-edge.onnx, made by scripts/package_onnx.py) serves ONNX
Runtime, so a torch-free install runs the default model too.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from sllen.runtime.errors import MissingFileError

WEIGHTS_NAME = "sllen-edge.safetensors"
ONNX_NAME = "sllen-edge.onnx"


def _file(name: str) -> Path:
    path = Path(str(resources.files("sllen.weights").joinpath(name)))
    if not path.is_file():
        raise MissingFileError(f"the bundled model file {name} is missing from the installation")
    return path


def bundled_weights() -> Path:
    return _file(WEIGHTS_NAME)


def bundled_onnx() -> Path:
    return _file(ONNX_NAME)
