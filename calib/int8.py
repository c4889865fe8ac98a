"""INT8: explicit Q/DQ quantization from calibration, with an accuracy budget.

``quantize_int8(src_fp32, dst, frames, method="auto", flavour="tensorrt", ...)`` writes an
ONNX model with QuantizeLinear/DequantizeLinear pairs (onnxruntime.quantization.quantize_static,
QuantFormat.QDQ) and returns a report. TensorRT compiles that file as it is (strongly typed
networks: the precision is in the file); ONNX Runtime runs it on a CPU, which is how every
number here is measured.

Flavours (``tensorrt``, the default, and ``cpu``): sllen.calib.qdq, which builds the Q/DQ model
from ranges.

Ranges (``method``)
- ``entropy``: KL-divergence threshold per tensor (TensorRT's classic method). The calibrator is
  built here with ``create_calibrator(CalibrationMethod.Entropy, num_bins=2048,
  num_quantized_bins=128)``: quantize_static's own Entropy path keeps 128 bins for both, which
  leaves a single candidate threshold, i.e. the MinMax range. Before the thresholds are
  computed, the bin of exact zeros gets its neighbour's count (NVIDIA's pytorch-quantization
  does the same): without that the zero spike after every ReLU makes the divergence pick the
  smallest threshold and clips features to 1/16 of their range (measured: 4.6 dB lost on
  SLLEN-edge). ONNX Runtime's threshold search is pure Python: about 0.4 s per tensor with 2048
  bins, a minute for SLLEN; that is why the ranges file exists.
- ``percentile``: 99.999th percentile of |x| (2048 bins).
- ``minmax``: the observed range.
- ``auto`` (the default): entropy, and minmax when the entropy ranges miss the budget even
  after the fallback: the calibration that suits a model is found by trying (NVIDIA's
  pytorch-quantization ResNet-50 tutorial compares percentile, MSE and entropy). Measured with
  D6 (docs/default-model.md) on dark-pan.mp4: the TensorRT flavour passed with entropy (0.49
  dB, two layers in float); the CPU flavour, before sllen.calib.cpu_graph let float layers
  read float inputs, missed with entropy (0.57-0.63 dB whatever moved to float) and held
  only with minmax. The bundled model since (F4) passes both flavours with entropy
  (docs/export.md).
Brighter exposures (``brighten``, default on): the ranges are calibrated on the frames and on
``sllen.calib.frames.brightened_copies`` of the dim ones (each scaled so its 99.5th percentile
reaches 0.9). Ranges from dark footage alone clip the same scenes shot brighter: the bundled
model calibrated on the sample clip (inputs up to 0.35 of full scale) lost 3.3 dB against FP32
on photographs darkened to exposure 0.2 while holding the budget on the clip's own frames;
with the copies, every layer but HSBAB's and the output's INT8: 0.22 dB on the held-back
frames, 0.01 dB on the photographs at three exposures (docs/export.md,
benchmarks/int8_exposure.py). The held-back frames stay as they are.
Ranges are computed once and saved as JSON (``save_ranges``, next to ``dst`` as
``<dst stem>.ranges.json``); passing that file as ``ranges=`` rebuilds the same model without
running the calibration again (the file records the model it belongs to and is refused for
another one; a ``ranges=`` path that does not exist is refused, never calibrated into).
Ranges do not depend on the flavour (the quantizer makes them symmetric for ``tensorrt``), so
one file serves both flavours of the same FP32 graph; but not another graph of the same
weights: ``--target cpu`` exports the attention as ``mha`` by default, ``--target tensorrt``
as ``decomposed``, and a file is refused for the other form (sllen.calib.ranges).
quantize_static then receives them through its calibration cache (``calibration_cache_path``,
present in onnxruntime 1.32) or, on an onnxruntime without it, through the QDQ quantizer
called the way quantize_static calls it.

Not quantized by default: HSBAB (the MatMul-Softmax-MatMul and its Q/K/V/output projections;
TensorRT fuses FP16 attention, INT8 attention only for head sizes 16/32/64 up to 512 tokens),
the output layers (the last convolution and the sigmoid): users report INT8 image-to-image
models coming out darker or with clipped highlights (e.g. NVIDIA/TensorRT#1187), and the input
layer (the first convolution, 3 -> 16 channels: 0.5% of the convolutions' multiply-adds), so the
image itself is never quantized: the tensorrt flavour's symmetric INT8 gives a [0, 1] input
127 steps (the darkest LOL pictures average 3-5 of them), and the network brightens those
steps into grain (the bundled model: SSIM drop 0.010 -> 0.005 on the held-back frames, PSNR
drop 0.22 -> -0.04 dB; docs/export.md).

Budget (``max_psnr_drop``, default 0.5 dB, and ``max_ssim_drop``, default 0.01): the PSNR and
SSIM drops against FP32 on held-back frames and on a second set of images unlike them, as
sllen.calib.budget defines them; it holds when both hold on every set.

When a drop is over budget: leave-one-out sensitivity on the ``sensitivity_frames`` pairs of
the worst set that lose most (PSNR, or SSIM when only the SSIM drop is over, of the fully
quantized model against FP32's): for every quantized weighted layer (Conv/MatMul/Gemm), the
model is quantized with all the others but that one, and the gain over the fully quantized
model is measured.
Layers go back to float in the order of that gain, re-quantizing and re-checking the whole
budget each time: one at a time for the first ``FALLBACK_SINGLES`` layers, then in groups that
double in size, until the budget holds, ``max_fallback_layers`` have moved (None: no limit,
up to a model with no quantized layer left, i.e. FP16 throughout for the tensorrt flavour).
(Sensitivity is measured with the float parts in FP32, the budget on the model that is
written.) When even that misses the budget, the file is written as ``<dst stem>.over-budget
.onnx`` for inspection, nothing is written at ``dst``, and the report says ``passes: False``:
the caller (sllen-export) exits non-zero.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx

from sllen.calib.budget import (
    BudgetSet,
    Score,
    budget_pairs,
    budget_set,
    measure_budget,
    psnr_each,
    ssim_each,
)
from sllen.calib.frames import brightened_copies, split_holdout
from sllen.calib.graph import (
    attention_nodes,
    copy_metadata,
    ensure_node_names,
    input_nodes,
    load_model,
    output_nodes,
    prune_opset_imports,
    psnr_db,
    refine_nodes,
    run,
    save_model,
    session,
    weighted_nodes,
)
from sllen.calib.qdq import FLAVOURS, quantize_with_ranges
from sllen.calib.ranges import (
    METHODS,
    compute_ranges,
    load_ranges,
    prepare_model,
    ranges_file_method,
    save_ranges,
)
from sllen.runtime.errors import InputError

__all__ = [
    "FLAVOURS",
    "dark_calibration_note",
    "few_int8_layers_note",
    "METHODS",
    "budget_pairs",
    "compute_ranges",
    "load_ranges",
    "prepare_model",
    "quantize_int8",
    "quantize_with_ranges",
    "save_ranges",
]

# Layers moved back to float one at a time before the fallback moves them in growing groups
# (a spread-out loss would otherwise cost one quantize-and-check per layer of the network).
FALLBACK_SINGLES = 8
# method="auto": the ranges tried in turn until the budget holds (module docstring).
AUTO_METHODS = ("entropy", "minmax")
# dark_calibration_note: an input range ending below this clips merely dark inputs.
DARK_INPUT_MAX = 0.5


def dark_calibration_note(report: dict) -> str | None:
    """A warning when the calibrated range of the network's input stops below
    ``DARK_INPUT_MAX``: the layers' ranges end where such frames take them, so brighter
    inputs are clipped by the quantizers after the input layer. Measured with the bundled model
    and the dark sample clip calibrated without brightened copies (input range 0-0.35):
    photographs darkened to exposure 0.2 came out 3.3 dB worse from the INT8 file than from
    FP32 (brighter), though the budget held on the clip's own frames (docs/export.md). With
    the copies (the default) it appears only for frames so dark that their copies' gain is
    capped."""
    rng = report.get("input_range") or []
    if len(rng) != 2 or rng[1] >= DARK_INPUT_MAX:
        return None
    return (
        f"the calibration frames are dark (input range {rng[0]:.2f}-{rng[1]:.2f} of full "
        "scale): brighter inputs are clipped and come out wrong; calibrate on footage that "
        "covers the brightest scenes this file will see (--calib-data), with --calib-brighten"
    )


def few_int8_layers_note(report: dict) -> str | None:
    """A warning when the fallback left fewer than half of the quantizable layers in INT8: such
    a file holds the budget but is little faster than the float one, which a user should hear
    rather than find out from a benchmark."""
    moved = sum(len(f["nodes"]) for f in report["fallback"])
    left = len(report["quantized_layers"])
    if not moved or left * 2 >= left + moved:
        return None
    return (
        f"only {left} of {left + moved} layers stay INT8 to hold the budget, so this file runs "
        "at about float speed; calibrate on footage from the deployment camera (--calib-data) "
        "or allow more loss (--max-psnr-drop, --max-ssim-drop)"
    )


def over_budget_path(dst: str | os.PathLike) -> Path:
    """Where a file that misses its budget is written instead of ``dst`` (for inspection)."""
    dst = Path(dst)
    return dst.with_name(f"{dst.stem}.over-budget{dst.suffix}")


def fallback_groups(nodes: list[str], singles: int = FALLBACK_SINGLES) -> list[list[str]]:
    """``nodes`` cut into the groups the fallback moves: ``singles`` single nodes, then groups
    of 2, 4, 8, ... (the last one shorter)."""
    groups, i, size = [], 0, 1
    while i < len(nodes):
        groups.append(nodes[i : i + size])
        i += size
        if i >= singles:
            size *= 2
    return groups


# ---------------------------------------------------------------------------- main


def quantize_int8(
    src_fp32: str | os.PathLike,
    dst: str | os.PathLike,
    frames: np.ndarray,
    method: str = "auto",
    flavour: str = "tensorrt",
    max_psnr_drop: float = 0.5,
    exclude_attention: bool = True,
    exclude_output: bool = True,
    ranges: str | os.PathLike | None = None,
    max_ssim_drop: float = 0.01,
    exclude_input: bool = True,
    **options,
) -> dict:
    """Write the INT8 Q/DQ model of ``src_fp32`` to ``dst``; returns the report (module
    docstring). ``method="auto"`` calibrates entropy ranges and, when those miss the budget even
    after the fallback, minmax ranges (``AUTO_METHODS``; the report's ``attempts`` lists each);
    with a ``ranges`` file, its method (a path that does not exist is an InputError: new ranges
    are saved beside ``dst`` only). ``options``: the keywords of
    ``_quantize_int8`` (holdout, references, sensitivity, threads, ``log``, ...)."""
    args = dict(
        flavour=flavour,
        max_psnr_drop=max_psnr_drop,
        max_ssim_drop=max_ssim_drop,
        exclude_attention=exclude_attention,
        exclude_output=exclude_output,
        exclude_input=exclude_input,
        **options,
    )
    if method != "auto":
        return _quantize_int8(src_fp32, dst, frames, method, ranges=ranges, **args)
    if ranges is not None:  # a missing file is an InputError, not a place to save ranges
        method = ranges_file_method(ranges)
        return _quantize_int8(src_fp32, dst, frames, method, ranges=ranges, **args)
    say = options.get("log") or (lambda _msg: None)
    attempts: list[dict] = []
    for i, method in enumerate(AUTO_METHODS):
        report = _quantize_int8(src_fp32, dst, frames, method, ranges=ranges, **args)
        budget = report["budget"]
        moved = sum(len(f["nodes"]) for f in report["fallback"])
        attempts.append(
            {"method": method, "drop_db": budget["drop_db"], "ssim_drop": budget["ssim_drop"],
             "passes": budget["passes"], "layers_moved_to_float": moved}
        )  # fmt: skip
        if budget["passes"] or i == len(AUTO_METHODS) - 1:
            break
        say(
            f"int8: {method} ranges miss the budget ({budget['drop_db']:.2f} dB, SSIM "
            f"{budget['ssim_drop']:.3f} with {moved} layers in float); trying "
            f"{AUTO_METHODS[i + 1]} ranges"
        )
        # The next ranges go where these were: the file belongs to the model written.
        Path(report["ranges_path"]).unlink(missing_ok=True)
    if report["budget"]["passes"]:  # an earlier attempt's file is not this model
        over_budget_path(dst).unlink(missing_ok=True)
    report["attempts"] = attempts
    return report


def _quantize_int8(
    src_fp32: str | os.PathLike,
    dst: str | os.PathLike,
    frames: np.ndarray,
    method: str = "entropy",
    flavour: str = "tensorrt",
    max_psnr_drop: float = 0.5,
    exclude_attention: bool = True,
    exclude_output: bool = True,
    ranges: str | os.PathLike | None = None,
    *,
    max_ssim_drop: float = 0.01,
    exclude_input: bool = True,
    float16: bool = True,
    brighten: bool = True,
    holdout_fraction: float = 0.2,
    references="enhanced",
    num_bins: int = 2048,
    num_quantized_bins: int = 128,
    percentile: float = 99.999,
    sensitivity_frames: int = 4,
    max_fallback_layers: int | None = None,
    eval_frames: np.ndarray | None = None,
    eval_references="frames",
    seed: int = 0,
    threads: int | None = None,
    log=None,
) -> dict:
    """quantize_int8 with one calibration method. ``log(str)`` hears about each step that
    takes longer than a moment."""
    say = log or (lambda _msg: None)
    if flavour not in FLAVOURS:
        raise InputError(f"unknown INT8 flavour {flavour!r}; choose one of {FLAVOURS}")
    if method not in METHODS:
        raise InputError(
            f"unknown calibration method {method!r}; choose one of {('auto', *METHODS)}"
        )
    frames = np.asarray(frames, dtype=np.float32)
    if frames.ndim != 4 or frames.shape[1] != 3:
        raise InputError(f"frames must be an (N, 3, H, W) array, got {frames.shape}")
    src = load_model(src_fp32)
    model = prepare_model(src)
    dst = Path(dst)
    if isinstance(references, tuple):  # real pairs judge the budget: calibrate on all frames
        calib, holdout = frames, np.asarray(references[0], dtype=np.float32)
    else:
        calib, holdout = split_holdout(frames, holdout_fraction, seed)

    # Ranges: reuse a file (it must exist: a mistyped path must not cost a calibration and
    # leave a file there), or calibrate and save them beside dst.
    ranges_path = Path(ranges) if ranges is not None else dst.with_suffix(".ranges.json")
    reused = ranges is not None
    if reused:
        tensor_ranges, header = load_ranges(ranges_path, model)
        info = header.get("info", {})
        if header["method"] != method:
            raise InputError(
                f"{ranges_path}: ranges were computed with {header['method']!r}, not {method!r}"
            )
    else:
        bright = brightened_copies(calib) if brighten else calib[:0]
        say(
            f"int8: calibrating {method} ranges on {len(calib)} frames"
            + (f" and {len(bright)} brightened copies" if len(bright) else "")
        )
        tensor_ranges = compute_ranges(
            model, np.concatenate([calib, bright]), method, num_bins, num_quantized_bins,
            percentile, threads=threads, progress=lambda line: say(f"int8: calibrating: {line}"),
        )  # fmt: skip
        info = {
            "frames": int(len(calib)), "brightened_copies": int(len(bright)),
            "size": list(calib.shape[2:]), "seed": seed,
        }  # fmt: skip
        if method == "entropy":
            info.update(
                num_bins=num_bins, num_quantized_bins=num_quantized_bins, zero_bin="suppressed"
            )
        elif method == "percentile":
            info.update(num_bins=num_bins, percentile=percentile)
        save_ranges(ranges_path, tensor_ranges, method, model, info)

    # The guided refinement's box filters (constant-kernel convolutions) stay float: they
    # average image statistics whose small differences are the filter's output.
    excluded: dict[str, str] = dict.fromkeys(refine_nodes(model), "guided refinement")
    if exclude_attention:
        excluded.update(dict.fromkeys(attention_nodes(model), "attention (HSBAB)"))
    if exclude_output:
        for n in output_nodes(model):
            excluded.setdefault(n, "output layer")
    if exclude_input:
        for n in input_nodes(model):
            excluded.setdefault(n, "input layer")

    # FP16 for the float parts (tensorrt flavour): FP32 islands where FP16 overflows.
    fp16_keep: dict[str, str] = {}
    use_fp16 = float16 and flavour == "tensorrt"
    if use_fp16:
        from sllen.calib.fp16 import measure_fp16_risks

        fp16_keep, _ = measure_fp16_risks(
            model, calib[: max(1, min(8, len(calib)))], threads=threads
        )

    sess32 = session(model, threads)
    ref_holdout = run(sess32, holdout)  # the fidelity's reference, and the "enhanced" budget's
    pairs = {"holdout": budget_pairs(sess32, holdout, references, seed, ref_holdout)}
    if eval_frames is not None or isinstance(eval_references, tuple):
        pairs["eval"] = budget_pairs(sess32, eval_frames, eval_references, seed + 1)
    sets = {name: budget_set(sess32, low, gt) for name, (low, gt) in pairs.items()}
    notes: list[str] = []

    def build(excl: dict[str, str], fp16: bool) -> onnx.ModelProto:
        q = quantize_with_ranges(model, tensor_ranges, method, flavour, set(excl))
        if fp16:
            q = _float_parts_to_fp16(q, fp16_keep)
        return q

    def evaluate(q: onnx.ModelProto) -> dict[str, Score]:
        sess8 = session(q, threads)
        return {n: measure_budget(sess8, ref) for n, ref in sets.items()}

    def over(v: Score) -> bool:
        return v.drop > max_psnr_drop or v.ssim_drop > max_ssim_drop

    def worst(scores: dict[str, Score]) -> str:
        """The set with the largest PSNR drop among those over budget (all when none is)."""
        pool = [n for n in scores if over(scores[n])] or list(scores)
        return max(pool, key=lambda n: scores[n].drop)

    def drops(v: Score) -> str:
        return f"drop {v.drop:.2f} dB, SSIM {v.ssim_drop:.3f}"

    say("int8: quantizing and checking the budget")
    qmodel = build(excluded, use_fp16)
    if use_fp16:
        try:
            scores = evaluate(qmodel)
        except Exception as err:  # noqa: BLE001 - any ORT failure: fall back to FP32 parts
            notes.append(
                "ONNX Runtime cannot run Q/DQ with FP16 float parts "
                f"({str(err).splitlines()[0]}); float parts kept FP32, so TensorRT runs the "
                "layers that are not quantized in FP32"
            )
            use_fp16 = False
            qmodel = build(excluded, False)
            scores = evaluate(qmodel)
    else:
        scores = evaluate(qmodel)

    sensitivity: list[dict] = []
    fallback: list[dict] = []
    limit = max_fallback_layers
    name = worst(scores)
    if over(scores[name]) and (limit is None or limit > 0):
        metric = "psnr" if scores[name].drop > max_psnr_drop else "ssim"
        say(
            f"int8: {drops(scores[name])} on the {name} set is over the budget ({max_psnr_drop} "
            f"dB, SSIM {max_ssim_drop}); measuring each layer's sensitivity"
        )
        sensitivity = _sensitivity(
            model, tensor_ranges, method, flavour, excluded, sets[name], sensitivity_frames,
            threads, metric,
        )  # fmt: skip
        order = [item["node"] for item in sensitivity][:limit]
        for group in fallback_groups(order):
            for node in group:
                excluded[node] = f"sensitivity: {_gain_text(sensitivity, node)} in float"
            qmodel = build(excluded, use_fp16)
            scores = evaluate(qmodel)
            name = worst(scores)
            fallback.append(
                {"nodes": group, "drop_db": scores[name].drop, "ssim_drop": scores[name].ssim_drop,
                 "psnr_int8_db": scores[name].psnr_int8}
            )  # fmt: skip
            moved = sum(len(f["nodes"]) for f in fallback)
            say(f"int8: {moved} layer{'s' * (moved != 1)} back in float, {drops(scores[name])}")
            if not any(over(v) for v in scores.values()):
                break

    passes = not any(over(v) for v in scores.values())
    fidelity = psnr_db(run(session(qmodel, threads), holdout), ref_holdout)
    copy_metadata(
        src,
        qmodel,
        {"sllen_precision": "int8", "sllen_int8_flavour": flavour, "sllen_int8_method": method},
    )
    written = dst if passes else over_budget_path(dst)
    if not passes:
        dst.unlink(missing_ok=True)  # an older file under the normal name would pass for this
    save_model(prune_opset_imports(qmodel), written)
    quantized = [n for n in weighted_nodes(model) if n not in excluded]
    name = worst(scores)
    return {
        "precision": "int8",
        "flavour": flavour,
        "method": method,
        "path": str(written),
        "ranges_path": str(ranges_path),
        "ranges_reused": reused,
        "brightened_copies": info.get("brightened_copies", 0),
        "input_range": [float(v) for v in tensor_ranges.get(model.graph.input[0].name, ())],
        "excluded": excluded,
        "quantized_layers": quantized,
        "float16_elsewhere": use_fp16,
        "fp16_kept_fp32": fp16_keep if use_fp16 else {},
        "notes": notes,
        "budget": {
            "definition": "PSNR(FP32(low), gt) - PSNR(INT8(low), gt); gt = "
            + (
                "FP32-enhanced held-back frames, low = gt darkened by sllen.data.synthesis"
                if references == "enhanced"
                else "held-back frames, low = gt darkened by sllen.data.synthesis"
                if references == "frames"
                else "given references"
            ),
            "max_psnr_drop_db": max_psnr_drop,
            "max_ssim_drop": max_ssim_drop,
            "worst_set": name,
            **_score_fields(scores[name]),
            "passes": passes,
            "sets": {
                n: {"frames": int(len(sets[n].low)), **_score_fields(v)} for n, v in scores.items()
            },
        },
        "psnr_int8_vs_fp32_db": fidelity,
        "sensitivity": sensitivity,
        "fallback": fallback,
        "calibration_frames": int(len(calib)),
        "holdout_frames": int(len(holdout)),
    }


def _float_parts_to_fp16(q: onnx.ModelProto, keep: dict[str, str]) -> onnx.ModelProto:
    """FP16 for every float node of a Q/DQ model except ``keep``; Q/DQ scales become FP16 too,
    so DequantizeLinear hands FP16 to the layers after it."""
    from sllen.calib.fp16 import to_fp16

    names = {n.name for n in q.graph.node}
    return to_fp16(ensure_node_names(q), {k for k in keep if k in names})


def _score_fields(v: Score) -> dict[str, float]:
    """A budget set's scores as the report writes them."""
    return {
        "psnr_fp32_db": v.psnr_fp32, "psnr_int8_db": v.psnr_int8, "drop_db": v.drop,
        "ssim_fp32": v.ssim_fp32, "ssim_int8": v.ssim_int8, "ssim_drop": v.ssim_drop,
    }  # fmt: skip


def _gain_text(sensitivity: list[dict], node: str) -> str:
    item = next(i for i in sensitivity if i["node"] == node)
    return f"+{item['gain_db']:.2f} dB" if "gain_db" in item else f"+{item['gain_ssim']:.4f} SSIM"


def _sensitivity(
    model, ranges, method, flavour, excluded, ref: BudgetSet, n_frames, threads, metric="psnr"
) -> list[dict]:
    """Leave-one-out: gain in ``metric`` (``psnr``: ``gain_db``, ``ssim``: ``gain_ssim``; vs
    gt, on the ``n_frames`` pairs the quantized model loses most on) of keeping each quantized
    weighted layer in float while all the others stay quantized; sorted, largest first."""
    each, key = (psnr_each, "gain_db") if metric == "psnr" else (ssim_each, "gain_ssim")
    quantized = session(quantize_with_ranges(model, ranges, method, flavour, excluded), threads)
    low, gt = ref.low, ref.gt
    loss = each(ref.out32, gt) - each(run(quantized, low), gt)
    pick = np.sort(np.argsort(-loss, kind="stable")[:n_frames])
    sub_low, sub_gt = low[pick], gt[pick]

    def score(excl: set[str]) -> float:
        q = quantize_with_ranges(model, ranges, method, flavour, excl)
        return float(each(run(session(q, threads), sub_low), sub_gt).mean())

    base = score(set(excluded))
    gains = []
    for node in weighted_nodes(model):
        if node in excluded:
            continue
        gains.append({"node": node, key: score(set(excluded) | {node}) - base})
    return sorted(gains, key=lambda g: -g[key])
