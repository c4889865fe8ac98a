"""What sllen-export writes into ``--out``: the file names of each target, and the report.

One folder holds both targets without one replacing the other: the TensorRT flavour's files
keep their names (``sllen.fp32.onnx``, ``sllen.fp16.onnx``, ``sllen.int8.onnx``,
``report.json``) and ``--target cpu`` writes its own (``sllen.fp32-cpu.onnx``,
``sllen.fp16-cpu.onnx``, ``sllen.int8-cpu.onnx``, ``report-cpu.json``): the two FP32 files
differ (the CPU one carries ONNX Runtime's attention node, which TensorRT does not parse). An
engine build (``--from-onnx``) into a folder that holds an export's ``report.json`` adds its
engines to that report rather than replacing it, and later builds add theirs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sllen.runtime.files import atomic_write_json

# precision -> file name, per --target
ONNX_NAMES: dict[str, dict[str, str]] = {
    "tensorrt": {"fp32": "sllen.fp32.onnx", "fp16": "sllen.fp16.onnx", "int8": "sllen.int8.onnx"},
    "cpu": {
        "fp32": "sllen.fp32-cpu.onnx",
        "fp16": "sllen.fp16-cpu.onnx",
        "int8": "sllen.int8-cpu.onnx",
    },
}
FP32, FP16, INT8 = (ONNX_NAMES["tensorrt"][p] for p in ("fp32", "fp16", "int8"))
FP32_CPU, FP16_CPU, INT8_CPU = (ONNX_NAMES["cpu"][p] for p in ("fp32", "fp16", "int8"))
REPORTS = {"tensorrt": "report.json", "cpu": "report-cpu.json"}


def onnx_name(precision: str, target: str) -> str:
    return ONNX_NAMES[target][precision]


def report_path(out: Path, target: str) -> Path:
    return out / REPORTS[target]


def write_report(
    out: Path, report: dict[str, Any], target: str, *, into: Path | None = None
) -> Path:
    """Write ``report`` as the report of ``target`` in ``out`` (atomically); an engine build
    alone (no "files") is merged into the report already there. ``into``: write it there
    instead (a run's staging folder, sllen.export.staging), still merged with ``out``'s."""
    path = report_path(out, target)
    if "files" not in report:
        report = _merged_engine_build(path, report)
    return atomic_write_json(report_path(into or out, target), report, default=str)


def _merged_engine_build(path: Path, build: dict[str, Any]) -> dict[str, Any]:
    """The report at ``path`` (an export's, or earlier engine builds') with ``build``'s
    engines added; ``build`` itself when there is no readable report there."""
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError):  # none yet, or not ours: replaced (it is written atomically)
        return build
    if not isinstance(old, dict):
        return build
    before = old.get("engine")
    earlier = before.get("engines", {}) if isinstance(before, dict) else {}
    engine = {**build["engine"], "engines": {**earlier, **build["engine"].get("engines", {})}}
    if "files" not in old:  # earlier engine builds: this build's options, every engine
        return {**build, "engine": engine}
    # the export's report: its options stay; the build's are kept beside them
    settings = {k: build[k] for k in ("sllen_version", "options", "profile") if k in build}
    return {**old, "engine": engine, "engine_build": settings}


def check_budgets_of(report: dict[str, Any]) -> None:
    """BudgetError when a file missed its budget (written as *.over-budget.onnx, reported)."""
    from sllen.runtime.errors import BudgetError

    failed, kept = [], []
    for key, f in report.get("files", {}).items():
        if key == "fp16" and not f["passes_budget"]:
            kept.append(f["file"])
            failed.append(
                f"fp16 reaches {f['psnr_db']:.1f} dB vs FP32 with every sensitive node in FP32, "
                f"under the {f['budget_db']:.0f} dB budget (--fp16-budget-db)"
            )
        elif key.startswith("int8") and not f["budget"]["passes"]:
            kept.append(f["file"])
            b = f["budget"]
            tried = " and ".join(a["method"] for a in f.get("attempts", [])) or f["method"]
            failed.append(
                f"int8 loses {b['drop_db']:.2f} dB on the {b['worst_set']} set (SSIM "
                f"{b['ssim_drop']:.3f}) even with {len(f['excluded'])} layers in float ({tried} "
                f"ranges), over the {b['max_psnr_drop_db']} dB / {b['max_ssim_drop']} SSIM budget "
                "(--max-psnr-drop, --max-ssim-drop; calibrate on more varied footage with "
                "--calib-data)"
            )
    if failed:
        name = REPORTS.get(report.get("options", {}).get("target"), REPORTS["tensorrt"])
        raise BudgetError(
            "; ".join(failed) + f"; kept for inspection only as {', '.join(kept)}, see {name}"
        )
