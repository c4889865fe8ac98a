"""sllen-export: ONNX (FP32, FP16, INT8 Q/DQ) with parity and budgets, then TensorRT engines."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from sllen.cli._errors import run_single, user_errors

Opt = typer.Option


@user_errors(extras={"torch": "export", "safetensors": "export", "av": "export"})
def export_command(
    weights: Annotated[Path | None, Opt(help="Weights (.safetensors). Default: bundled.")] = None,
    out: Annotated[
        Path,
        Opt(
            help="Output folder (ONNX files, engines, report.json; --target cpu writes its own "
            "*-cpu.onnx files and report-cpu.json, so both targets can share it)."
        ),
    ] = Path("exports"),
    fp16: Annotated[bool, Opt("--fp16", help="Also write the FP16 ONNX (budget-checked).")] = False,
    int8: Annotated[bool, Opt("--int8", help="Also write the calibrated INT8 Q/DQ ONNX.")] = False,
    calib_data: Annotated[
        list[Path] | None,
        Opt(help="Calibration images, videos, folders of them, or globs (repeatable)."),
    ] = None,
    calib_count: Annotated[int, Opt(help="Calibration frames to use.")] = 300,
    calib_method: Annotated[
        str,
        Opt(
            help="auto (entropy, then minmax if entropy misses the budget), entropy, percentile "
            "or minmax."
        ),
    ] = "auto",
    calib_brighten: Annotated[
        bool,
        Opt(
            help="Also calibrate INT8 on each dim frame brightened to full scale, so brighter "
            "inputs than the footage's are not clipped."
        ),
    ] = True,
    target: Annotated[
        str,
        Opt(
            help="What the files are for: tensorrt (decomposed/plugin attention, symmetric "
            "INT8) or cpu (ONNX Runtime: linear-memory attention, uint8 INT8; no engines)."
        ),
    ] = "tensorrt",
    max_psnr_drop: Annotated[float, Opt(help="INT8 budget against FP32, in dB.")] = 0.5,
    max_ssim_drop: Annotated[
        float, Opt(help="INT8 budget against FP32: largest SSIM drop (catches grain).")
    ] = 0.01,
    eval_data: Annotated[
        list[Path] | None,
        Opt(
            help="Images, videos or folders unlike the calibration data to judge the INT8 "
            "budget on too (repeatable). Default: the built-in evaluation photos, else "
            "generated scenes."
        ),
    ] = None,
    fp16_budget_db: Annotated[
        float, Opt(help="FP16 budget: minimum PSNR against FP32, in dB.")
    ] = 40.0,
    ranges: Annotated[
        Path | None,
        Opt(
            help="Reuse the INT8 calibration ranges an earlier export saved (its "
            "*.ranges.json, which must exist) instead of calibrating."
        ),
    ] = None,
    attention: Annotated[
        str,
        Opt(
            help="auto (--target cpu: mha; tensorrt: decomposed, the plugin engine where "
            "TensorRT does not fuse the attention or the build fails), decomposed, plugin, or "
            "mha (ONNX Runtime's MultiHeadAttention: memory linear in the frame; --target cpu)."
        ),
    ] = "auto",
    opset: Annotated[int, Opt(help="ONNX opset (19 or 20).")] = 19,
    segmentation: Annotated[
        bool, Opt("--segmentation", help="Add the segmentation logits as a second output.")
    ] = False,
    from_onnx: Annotated[
        Path | None, Opt(help="Only build a TensorRT engine from this ONNX file.")
    ] = None,
    min_shape: Annotated[
        str | None,
        Opt(
            help="Engine profile minimum WIDTHxHEIGHT (default 256x256; with --dla-core, "
            "--opt-shape)."
        ),
    ] = None,
    opt_shape: Annotated[str, Opt(help="Engine profile optimum WIDTHxHEIGHT.")] = "1280x720",
    max_shape: Annotated[
        str | None,
        Opt(
            help="Engine profile maximum WIDTHxHEIGHT (default 1920x1088; with --dla-core, "
            "--opt-shape)."
        ),
    ] = None,
    workspace_gib: Annotated[float, Opt(help="TensorRT workspace limit (GiB).")] = 2.0,
    device: Annotated[int | None, Opt(help="CUDA device to build the engine on.")] = None,
    dla_core: Annotated[int | None, Opt(help="Build for this DLA core (Jetson).")] = None,
    version_compatible: Annotated[
        bool, Opt("--version-compatible", help="Engine loadable by newer TensorRT.")
    ] = False,
    plugin: Annotated[
        Path | None,
        Opt(help="The attention plugin library (.so). Default for auto: the CMake build's."),
    ] = None,
    parity: Annotated[
        bool,
        # "\\[" : typer renders help as rich markup, where a bare [trt-check] is a style tag.
        Opt(
            help="Check each engine against its ONNX file through Polygraphy (sllen\\[trt-check])."
        ),
    ] = True,
    engine_cache: Annotated[
        Path | None, Opt(help="Engine cache folder: reuse engines built from identical inputs.")
    ] = None,
    timing_cache: Annotated[
        Path | None,
        Opt(help="TensorRT timing cache file, shared between builds. Default: OUT/timing.cache."),
    ] = None,
    threads: Annotated[
        int | None,
        Opt(help="CPU threads for the export, parity and calibration (default: all cores)."),
    ] = None,
) -> None:
    """Export SLLEN: fp32/fp16/int8 ONNX checked in ONNX Runtime, and TensorRT engines where
    TensorRT is installed."""
    from sllen.export.outputs import report_path
    from sllen.export.pipeline import ExportOptions, check_budgets_of, run_export
    from sllen.export.shapes import DEFAULT_PROFILE, ShapeProfile, parse_size
    from sllen.runtime.errors import InputError

    console = Console(soft_wrap=True)  # paths and commands must stay copyable
    # DLA runs one fixed size (check_dla_profile): there the profile follows --opt-shape, and a
    # --min-shape or --max-shape that differs is said as such, not as "min <= opt <= max".
    fixed = opt_shape if dla_core is not None else None
    for option, given in (("--min-shape", min_shape), ("--max-shape", max_shape)):
        if fixed and given and parse_size(given) != parse_size(fixed):
            raise InputError(
                f"DLA runs one fixed input size: {option} {given} differs from --opt-shape "
                f"{fixed}; with --dla-core leave {option} out (it follows --opt-shape)"
            )
    low, high = min_shape or fixed, max_shape or fixed
    profile = ShapeProfile(
        parse_size(low) if low else DEFAULT_PROFILE.min,
        parse_size(opt_shape),
        parse_size(high) if high else DEFAULT_PROFILE.max,
    )
    opts = ExportOptions(
        out=out,
        weights=weights,
        fp16=fp16,
        int8=int8,
        calib_data=list(calib_data or []),
        calib_count=calib_count,
        calib_method=calib_method,
        calib_brighten=calib_brighten,
        target=target,
        max_psnr_drop=max_psnr_drop,
        max_ssim_drop=max_ssim_drop,
        eval_data=list(eval_data or []),
        fp16_budget_db=fp16_budget_db,
        ranges=ranges,
        attention=attention,
        opset=opset,
        segmentation=segmentation,
        from_onnx=from_onnx,
        profile=profile,
        workspace_gib=workspace_gib,
        dla_core=dla_core,
        version_compatible=version_compatible,
        plugin_library=plugin,
        engine_cache=engine_cache,
        timing_cache=timing_cache,
        parity=parity,
        device=device,
        threads=threads,
    )
    # SIGTERM is Ctrl-C here too (user_errors), exit 130: --out is left as it was (the run's
    # staged files go, and the folder if the run made it), and the calibration's temporary
    # files go
    report = run_export(opts, log=console.print, check_budgets=False)
    table = Table(title=f"sllen-export -> {escape(str(out))}")
    files = report.get("files", {})
    widest = max((len(f["file"]) for f in files.values()), default=4)
    table.add_column("file", no_wrap=True, min_width=widest)  # a name cut short cannot be copied
    for col in ("precision", "MB", "check", "budget"):
        table.add_column(col)
    for precision, f in files.items():
        if precision == "fp32":
            p = f["parity_vs_pytorch"]
            check, budget = f"vs PyTorch {p['psnr']:.1f} dB, max {p['max_abs']:.1e}", "-"
        elif precision == "fp16":
            check = f"vs FP32 {f['psnr_db']:.1f} dB"
            budget = ("pass" if f["passes_budget"] else "FAIL") + f" (>= {f['budget_db']:.0f} dB)"
        else:
            b = f["budget"]
            check = "drop " + ", ".join(
                f"{k} {v['drop_db']:.2f} dB / {v['ssim_drop']:.3f}" for k, v in b["sets"].items()
            )
            check += " SSIM vs FP32"
            limits = f"{b['max_psnr_drop_db']} dB / {b['max_ssim_drop']}"
            budget = ("pass" if b["passes"] else "FAIL") + f" (<= {limits})"
        table.add_row(f["file"], precision, f"{f['mb']:.2f}", check, budget)
    if report.get("files"):
        console.print(table)
    written = report_path(out, "tensorrt" if from_onnx is not None else target)
    console.print(f"report: {escape(str(written))}")
    check_budgets_of(report)  # a missed budget: one line and a non-zero exit


def main() -> None:
    run_single(export_command)


if __name__ == "__main__":
    main()
