"""Q/DQ models from precomputed ranges: the two INT8 flavours.

``quantize_with_ranges(model, ranges, method, flavour, exclude)`` calls onnxruntime's
``quantize_static`` (QuantFormat.QDQ) with ranges that sllen.calib.ranges computed, so no
calibration runs here; sllen.calib.int8 builds on it (budget, sensitivity, fallback).

Flavours (one INT8 file cannot serve both well: measured in docs/performance.md)
- ``tensorrt`` (default): Q/DQ on the inputs and weights of the weighted layers only (Conv,
  ConvTranspose, MatMul, Gemm: ``WEIGHTED_OP_TYPES``), the placement of NVIDIA's
  pytorch-quantization (its default quantizes the inputs of those modules, not their outputs
  nor ReLU, Add, Concat or Resize). With Q/DQ on every op ONNX Runtime supports, a layer moved
  back to float kept its quantized input for the Concat or Add beside it, so the fallback
  of sllen.calib.int8 could not recover the loss: measured on a fine-tuned SLLEN-edge (D6 in
  docs/default-model.md, dark-pan.mp4), 53 convolutions in float still lost 0.62 dB; with Q/DQ
  on the weighted layers' inputs only, two brought the drop from 0.74 to 0.49 dB.
  Activations QInt8 symmetric (ActivationSymmetric), weights QInt8
  symmetric per channel (WeightSymmetric, per_channel): every zero point is 0, which TensorRT
  requires. Biases stay float (QuantizeBias off; TensorRT folds float biases itself).
  sllen.calib.int8 converts the float parts (not quantized layers) to FP16 ("INT8 with FP16
  elsewhere", what a strongly typed TensorRT network then runs), with the nodes
  sllen.calib.fp16 measures to overflow kept FP32; if ONNX Runtime cannot run that mix, the
  float parts stay FP32 and the report says so (TensorRT then runs those layers in FP32).
- ``cpu``: activations QUInt8 asymmetric, weights QInt8 symmetric per channel with 7-bit range
  (reduce_range: no int16 saturation in the vpmaddubsw kernels of x86 CPUs without VNNI), int32
  biases: the fast form for ONNX Runtime on x86 (fuses to QLinearConv and friends). The graph
  passes of sllen.calib.cpu_graph run around the quantizer (HSEB's channel softmax as one
  Softmax that ONNX Runtime fuses into QLinearSoftmax; no dequantized copies kept only for a
  Shape), so the quantized part runs as integer kernels from one convolution to the next.
  Float parts stay FP32. TensorRT refuses this flavour (sllen.calib.qdq_check).
"""

from __future__ import annotations

import functools
import inspect
import tempfile
from pathlib import Path

import numpy as np
import onnx

from sllen.calib.cpu_graph import channel_softmax_to_softmax, optimize_for_ort_cpu
from sllen.calib.ranges import method_enum
from sllen.runtime.errors import InputError

__all__ = ["FLAVOURS", "WEIGHTED_OP_TYPES", "quantize_with_ranges"]

FLAVOURS = ("tensorrt", "cpu")
# The tensorrt flavour puts Q/DQ on the inputs of these layers only (module docstring).
WEIGHTED_OP_TYPES = ("Conv", "ConvTranspose", "MatMul", "Gemm")


def _flavour_settings(flavour: str) -> dict:
    from onnxruntime.quantization import QuantType

    if flavour == "tensorrt":
        return {
            "activation_type": QuantType.QInt8,
            "weight_type": QuantType.QInt8,
            "op_types_to_quantize": list(WEIGHTED_OP_TYPES),
            "extra_options": {
                "ActivationSymmetric": True,
                "WeightSymmetric": True,
                "QuantizeBias": False,
                # QDQ quantizes a quantized op's output too: TensorRT's placement does not.
                "OpTypesToExcludeOutputQuantization": list(WEIGHTED_OP_TYPES),
            },
        }
    if flavour == "cpu":
        return {
            "activation_type": QuantType.QUInt8,
            "weight_type": QuantType.QInt8,
            # 7-bit weights: x86 without VNNI (AVX2, AVX-512 without VNNI) multiplies uint8 by
            # int8 with vpmaddubsw, whose int16 pair sums saturate at 2 x 255 x 127 > 32767;
            # with |w| <= 63 they cannot. Measured on SLLEN-edge (AVX2 EPYC): budget drop
            # 0.65 -> 0.42 dB with every layer quantized, at the same speed.
            "reduce_range": True,
            "extra_options": {"ActivationSymmetric": False, "WeightSymmetric": True},
        }
    raise InputError(f"unknown INT8 flavour {flavour!r}; choose one of {FLAVOURS}")


def quantize_with_ranges(
    model: onnx.ModelProto,
    ranges: dict[str, tuple[float, float]],
    method: str,
    flavour: str,
    exclude: list[str] | set[str],
    _force_direct: bool = False,
) -> onnx.ModelProto:
    """Q/DQ model of ``model`` (prepared) from precomputed ranges; no calibration runs."""
    from onnxruntime.quantization import QuantFormat, quantize_static
    from onnxruntime.quantization.calibrate import TensorData, TensorsData

    settings = _flavour_settings(flavour)
    reduce_range = settings.pop("reduce_range", False)
    if flavour == "cpu":  # one Softmax that ONNX Runtime fuses into QLinearSoftmax
        model, _ = channel_softmax_to_softmax(model)
    tensors = TensorsData(
        method_enum(method),
        {
            k: TensorData(lowest=np.array(lo, np.float32), highest=np.array(hi, np.float32))
            for k, (lo, hi) in ranges.items()
        },
    )
    with tempfile.TemporaryDirectory(prefix="sllen-quant-") as tmp:
        src, dst = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        onnx.save(model, src)
        kwargs = dict(
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            reduce_range=reduce_range,
            nodes_to_exclude=sorted(exclude),
            calibrate_method=method_enum(method),
            **settings,
        )
        if _has_calibration_cache() and not _force_direct:
            from onnxruntime.quantization.calibrate import save_tensors_data

            cache = Path(tmp) / "ranges.json"
            save_tensors_data(tensors, cache)
            quantize_static(src, dst, None, calibration_cache_path=cache, **kwargs)
        else:  # older onnxruntime: what quantize_static does after its calibration
            _quantize_direct(src, dst, tensors, kwargs)
        q = onnx.load(str(dst))
    if flavour == "cpu":  # float layers read float inputs; no float copies just for a Shape
        q, _ = optimize_for_ort_cpu(q, set(exclude), model)
    return q


@functools.lru_cache(maxsize=1)
def _has_calibration_cache() -> bool:
    """quantize_static takes precomputed ranges (calibration_cache_path, onnxruntime PR 28221)."""
    try:
        from onnxruntime.quantization import quantize_static
    except ImportError:
        return False
    return "calibration_cache_path" in inspect.signature(quantize_static).parameters


def _quantize_direct(src: Path, dst: Path, tensors, kwargs: dict) -> None:
    from onnxruntime.quantization.qdq_quantizer import QDQQuantizer
    from onnxruntime.quantization.quant_utils import load_model_with_shape_infer
    from onnxruntime.quantization.registry import QDQRegistry, QLinearOpsRegistry

    model = load_model_with_shape_infer(src)
    quantizer = QDQQuantizer(
        model,
        kwargs["per_channel"],
        kwargs["reduce_range"],
        kwargs["weight_type"],
        kwargs["activation_type"],
        tensors,
        [],
        kwargs["nodes_to_exclude"],
        kwargs.get("op_types_to_quantize") or list(set(QLinearOpsRegistry) | set(QDQRegistry)),
        kwargs["extra_options"],
    )
    quantizer.quantize_model()
    quantizer.model.save_model_to_file(str(dst), False)
