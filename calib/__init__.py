"""sllen.calib: calibration data, INT8 Q/DQ quantization, FP16 conversion, accuracy budgets.

Works on ONNX files and numpy arrays (onnx, onnxruntime, numpy, PyAV for video): no torch.
Names load lazily so `import sllen.calib` stays cheap.
"""

from __future__ import annotations

from sllen._lazy import lazy_exports

_EXPORTS = {
    "frames": ("load_calibration_frames", "split_holdout", "synthetic_calibration_frames"),
    "fp16": ("convert_fp16",),
    "int8": ("quantize_int8",),
    "ranges": ("save_ranges", "load_ranges", "compute_ranges"),
    "qdq_check": ("inspect_qdq", "require_tensorrt_qdq"),
}
__all__, __getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
