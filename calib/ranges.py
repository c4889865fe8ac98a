"""INT8 calibration ranges: computing them with onnxruntime's calibrators, saving and loading.

``prepare_model`` gives the FP32 model as the quantizer sees it (ranges are keyed by its tensor
names and tied to its digest). ``compute_ranges(model, frames, method)`` returns
``{tensor: (low, high)}``; the calibrators are built here with ``create_calibrator`` (see
sllen.calib.int8 for why: quantize_static's own Entropy path gives MinMax ranges). Entropy adds
the zero-bin correction of NVIDIA's pytorch-quantization (``_suppress_zero_bin``), and its
per-tensor threshold search runs in sllen.calib.entropy (onnxruntime's search, its Python
loops in numpy: the same thresholds, in seconds where the library took minutes).

The JSON file (``save_ranges`` / ``load_ranges``)::

    {"format": "sllen-int8-ranges", "version": 1, "method": "entropy",
     "model_sha256": "<graph digest of the prepared model>", "attention": "decomposed",
     "info": {frames, size, bins, ...}, "ranges": {"<tensor>": [low, high], ...}}

Ranges do not depend on the INT8 flavour, but they belong to one FP32 graph, and a file is
refused for another one. The attention form is part of the graph: ``--target cpu`` exports it
as ``mha`` by default, ``--target tensorrt`` as ``decomposed``, so the same weights make two
graphs. ``attention`` (the model's ``sllen_attention``; older files lack it) lets a caller
refuse a file for the other form before that graph exists (``ranges_file_header``), and
``load_ranges`` say why it refuses one.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import numpy as np
import onnx

from sllen.calib.entropy import fast_entropy_search
from sllen.calib.graph import (
    copy_metadata,
    ensure_node_names,
    get_metadata,
    load_model,
    naming_writes,
    thread_count,
)
from sllen.runtime.errors import InputError
from sllen.runtime.files import atomic_write_json

__all__ = [
    "METHODS",
    "compute_ranges",
    "load_ranges",
    "method_enum",
    "model_digest",
    "prepare_model",
    "ranges_file_header",
    "ranges_file_method",
    "save_ranges",
]

METHODS = ("entropy", "percentile", "minmax")
RANGES_FORMAT = "sllen-int8-ranges"
RANGES_VERSION = 1
ATTENTION_KEY = "sllen_attention"  # the export's metadata entry (sllen.export.onnx_export)
log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------- model


def prepare_model(src: str | os.PathLike | onnx.ModelProto) -> onnx.ModelProto:
    """The FP32 model as the quantizer sees it: ONNX Runtime's quantization pre-processing
    (ONNX shape inference, constant folding, basic graph optimisation) and named nodes. Falls
    back to the model as it is if pre-processing fails."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    model = load_model(src)
    with tempfile.TemporaryDirectory(prefix="sllen-int8-") as tmp:
        inp, out = Path(tmp) / "in.onnx", Path(tmp) / "out.onnx"
        onnx.save(model, inp)
        # No symbolic shape inference: it lives in onnxruntime.tools, whose __init__ imports
        # torch when torch is installed (sllen.calib must not), and ONNX's own shape inference
        # covers a CNN like this one.
        try:
            quant_pre_process(str(inp), str(out), skip_symbolic_shape=True)
            prepared = onnx.load(str(out))
        except Exception as err:  # noqa: BLE001 - pre-processing is an optimisation
            log.info("quantization pre-processing failed (%s); using the model as it is", err)
            prepared = model
    copy_metadata(model, prepared)
    return ensure_node_names(prepared)


def model_digest(model: onnx.ModelProto) -> str:
    """SHA-256 of the graph (nodes and weights; metadata excluded)."""
    return hashlib.sha256(model.graph.SerializeToString(deterministic=True)).hexdigest()


# ---------------------------------------------------------------------------- ranges


def method_enum(method: str):
    from onnxruntime.quantization import CalibrationMethod

    return {
        "entropy": CalibrationMethod.Entropy,
        "percentile": CalibrationMethod.Percentile,
        "minmax": CalibrationMethod.MinMax,
    }[method]


def compute_ranges(
    model: onnx.ModelProto,
    frames: np.ndarray,
    method: str = "entropy",
    num_bins: int = 2048,
    num_quantized_bins: int = 128,
    percentile: float = 99.999,
    chunk: int = 8,
    threads: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, tuple[float, float]]:
    """Calibration range (low, high) of every float tensor, from ``frames``.

    Uses onnxruntime's calibrator (create_calibrator) with the bins set here; data go in
    chunks of ``chunk`` frames so the intermediate tensors of all frames are never held at
    once (the histograms merge across chunks). ``progress`` gets a line after each chunk and
    before the thresholds are chosen: tens of minutes on a small CPU that printed nothing.
    """
    import onnxruntime as ort
    from onnxruntime.quantization import CalibrationDataReader, create_calibrator

    if method not in METHODS:
        raise InputError(f"unknown calibration method {method!r}; choose one of {METHODS}")
    options: dict[str, float] = {}
    if method == "entropy":
        options = {"num_bins": num_bins, "num_quantized_bins": num_quantized_bins}
    elif method == "percentile":
        options = {"num_bins": num_bins, "percentile": percentile}

    class Reader(CalibrationDataReader):
        def __init__(self, data: np.ndarray):
            self.items = iter(data)

        def get_next(self):
            x = next(self.items, None)
            return None if x is None else {name: np.ascontiguousarray(x[None], np.float32)}

    name = model.graph.input[0].name
    with tempfile.TemporaryDirectory(prefix="sllen-calib-") as tmp:
        path = Path(tmp) / "model.onnx"
        onnx.save(model, path)
        calibrator = create_calibrator(
            path,
            None,
            augmented_model_path=str(Path(tmp) / "augmented.onnx"),
            calibrate_method=method_enum(method),
            extra_options=options,
        )
        # Same session as the calibrator's own, but with our thread count.
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        opts.intra_op_num_threads = thread_count(threads)
        calibrator.infer_session = ort.InferenceSession(
            calibrator.augmented_model_path, opts, providers=["CPUExecutionProvider"]
        )
        # onnxruntime's histogram calibrators print progress lines; keep stdout clean
        start = time.monotonic()
        for i in range(0, len(frames), chunk):
            with contextlib.redirect_stdout(io.StringIO()):
                calibrator.collect_data(Reader(frames[i : i + chunk]))
            if progress is not None:
                done = min(i + chunk, len(frames))
                progress(f"{done}/{len(frames)} frames, {time.monotonic() - start:.0f} s")
        if method == "entropy":
            _fast_thresholds(calibrator)
        if progress is not None:
            progress(f"choosing the {method} ranges of the collected histograms")
            if method == "entropy":
                _count_thresholds(calibrator, progress, sys.stdout)
        with contextlib.redirect_stdout(io.StringIO()):
            if method == "entropy":
                _suppress_zero_bin(calibrator)
            data = calibrator.compute_data()
    return {
        k: (float(np.min(v.range_value[0])), float(np.max(v.range_value[1])))
        for k, v in data.items()
    }


def _fast_thresholds(calibrator: Any) -> None:
    """The collector's per-tensor entropy search, the same thresholds from numpy
    (calib/entropy.py: onnxruntime's own loop took 11 minutes for the bundled model)."""
    collector = getattr(calibrator, "collector", None)
    search = getattr(collector, "get_entropy_threshold", None)
    if collector is not None and search is not None:
        collector.get_entropy_threshold = fast_entropy_search(search)


# Seconds between progress lines while the entropy thresholds are chosen.
THRESHOLD_PROGRESS_SECONDS = 30.0


def _count_thresholds(calibrator: Any, progress: Callable[[str], None], stdout: IO[str]) -> None:
    """Report the entropy search tensor by tensor: onnxruntime's loop over the tensors
    (HistogramCollector.compute_entropy) printed nothing for 11 minutes on a 2-core CPU, so its
    per-tensor search is wrapped to count. The lines go to ``stdout`` as it was before
    compute_data's prints were silenced."""
    collector = getattr(calibrator, "collector", None)
    search = getattr(collector, "get_entropy_threshold", None)
    hists = getattr(collector, "histogram_dict", None)
    if collector is None or search is None or not hists:
        return
    total, done, start = len(hists), 0, time.monotonic()
    last = start

    def counted(*args: Any, **kwargs: Any) -> Any:
        nonlocal done, last
        result = search(*args, **kwargs)
        done += 1
        now = time.monotonic()
        if now - last >= THRESHOLD_PROGRESS_SECONDS or done == total:
            last = now
            with contextlib.redirect_stdout(stdout):
                progress(f"{done}/{total} tensors ranged, {now - start:.0f} s")
        return result

    collector.get_entropy_threshold = counted


def _suppress_zero_bin(calibrator) -> None:
    """Give the histogram bin that holds exact zeros the count of its neighbour, as NVIDIA's
    pytorch-quantization entropy calibrator does (``bins[0] = bins[1]``).

    After a ReLU most values are exactly 0; that spike dominates the KL divergence, so the
    smallest candidate threshold (1/16 of the range, where the 128 quantized bins cost no
    resolution in the divergence) wins and features are clipped to 6% of their range. Measured
    on SLLEN-edge: 4.6 dB PSNR lost without this, 0.3 dB with it.
    """
    hists = getattr(getattr(calibrator, "collector", None), "histogram_dict", None)
    if not hists:
        return
    for name, entry in hists.items():
        hist = np.array(entry[0], copy=True)
        zero = len(hist) // 2  # histograms span (-t, t): bin len/2 is [0, w)
        if zero + 1 < len(hist):
            hist[zero] = hist[zero + 1]
            hists[name] = (hist, *entry[1:])


def save_ranges(
    path: str | os.PathLike,
    ranges: dict[str, tuple[float, float]],
    method: str,
    model: onnx.ModelProto,
    info: dict | None = None,
) -> Path:
    """Write calibration ranges as JSON: {format, version, method, model_sha256, attention,
    info, ranges: {tensor: [low, high]}} (attention: the model's sllen_attention, if any)."""
    path = Path(path)
    payload = {
        "format": RANGES_FORMAT,
        "version": RANGES_VERSION,
        "method": method,
        "model_sha256": model_digest(model),
        **({"attention": a} if (a := get_metadata(model).get(ATTENTION_KEY)) else {}),
        "info": info or {},
        "ranges": {k: [float(lo), float(hi)] for k, (lo, hi) in sorted(ranges.items())},
    }
    with naming_writes(path):
        return atomic_write_json(path, payload, indent=1)


def _read_ranges_file(path: Path, option: str | None = None) -> dict:
    """The JSON of a ranges file, checked to be one; ``option`` (e.g. "--ranges") names where
    the path came from in the messages."""
    where = f"{option} {path}" if option else str(path)
    try:
        payload = json.loads(path.read_text())
    except FileNotFoundError:
        # not a place to save new ranges: a typo would cost a whole calibration
        raise InputError(
            f"{where}: no such ranges file (give the .ranges.json an earlier INT8 export wrote "
            "beside its file, or leave the ranges out to calibrate)"
        ) from None
    except OSError as err:
        raise InputError(f"{where}: not a readable ranges file ({err})") from None
    except ValueError as err:
        raise InputError(f"{where}: not an sllen INT8 ranges file ({err})") from None
    if (
        not isinstance(payload, dict)
        or payload.get("format") != RANGES_FORMAT
        or not isinstance(payload.get("ranges"), dict)
    ):
        raise InputError(f"{where}: not an sllen INT8 ranges file")
    if payload.get("method") not in METHODS:
        raise InputError(
            f"{where}: unknown calibration method {payload.get('method')!r} in the ranges file"
        )
    return payload


def ranges_file_header(path: str | os.PathLike, option: str | None = None) -> dict:
    """A ranges file's fields but the ranges (method, model_sha256, attention where recorded,
    info); InputError when the file is missing or is not a ranges file (whether it fits the
    model is load_ranges's check)."""
    payload = _read_ranges_file(Path(path), option)
    return {k: v for k, v in payload.items() if k != "ranges"}


def ranges_file_method(path: str | os.PathLike, option: str | None = None) -> str:
    """The method a ranges file was computed with (see ranges_file_header)."""
    return ranges_file_header(path, option)["method"]


def load_ranges(
    path: str | os.PathLike, model: onnx.ModelProto | None = None
) -> tuple[dict[str, tuple[float, float]], dict]:
    """``(ranges, header)`` from a file written by ``save_ranges``; with ``model``, refuses
    ranges computed for another model."""
    path = Path(path)
    payload = _read_ranges_file(path)
    if model is not None and payload.get("model_sha256") != model_digest(model):
        theirs, ours = payload.get("attention"), get_metadata(model).get(ATTENTION_KEY)
        if theirs and ours and theirs != ours:
            raise InputError(
                f"{path}: these ranges were computed for the graph with {theirs} attention, "
                f"this model's attention is {ours}; recalibrate, or quantize the {theirs} graph"
            )
        raise InputError(
            f"{path}: these ranges were computed for another model (other weights, opset, "
            "outputs or attention form); recalibrate"
        )
    ranges = {k: (float(v[0]), float(v[1])) for k, v in payload["ranges"].items()}
    header = {k: v for k, v in payload.items() if k != "ranges"}
    return ranges, header
