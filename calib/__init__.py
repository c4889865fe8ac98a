"""sllen.calib: calibration data, INT8 Q/DQ quantization, FP16 conversion, accuracy budgets.

Works on ONNX files and numpy arrays (onnx, onnxruntime, numpy, PyAV for video): no torch.
Names load lazily so `import sllen.calib` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "frames": ("load_calibration_frames", "split_holdout", "synthetic_calibration_frames"),
    "fp16": ("convert_fp16",),
    "int8": ("quantize_int8",),
    "ranges": ("save_ranges", "load_ranges", "compute_ranges"),
    "qdq_check": ("inspect_qdq", "require_tensorrt_qdq"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_MODULE_OF)


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
