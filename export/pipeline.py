"""sllen-export end to end: weights -> fp32/fp16/int8 ONNX (+ parity, budgets) -> engine.

One library call (``run_export``) per CLI invocation. Every ONNX file is checked in ONNX
Runtime on the CPU (precision lives in the file, not in builder flags); TensorRT engines are
built only where TensorRT is installed, otherwise the report says how to build them on the
target. ``--target cpu`` makes files for ONNX Runtime instead: the attention as ONNX Runtime's
MultiHeadAttention node (memory linear in the frame, ``sllen_attention`` "mha"), INT8 with
unsigned activations, and no engine, under names of its own (sllen.export.outputs). What can
be checked without the model (--out, --ranges, the calibration and evaluation data, the engine
options) is checked before the FP32 export; the engine step is sllen.export.engines. Files
reach --out only when the run succeeds (sllen.export.staging).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from rich.markup import escape

from sllen.runtime.errors import InputError, MissingFileError
from sllen.runtime.files import check_output_folder, removed_if_left_empty, topmost_missing

from .engines import build_engines
from .outputs import FP16, FP32, INT8, INT8_CPU, check_budgets_of, onnx_name
from .shapes import DEFAULT_PROFILE, ShapeProfile
from .staging import StagedOutput

if TYPE_CHECKING:  # onnx_export imports torch: only for the type
    from .onnx_export import ExportAttention

__all__ = [
    "FP16", "FP32", "INT8", "INT8_CPU", "ExportOptions", "build_engines", "check_budgets_of",
    "export_attention", "export_onnx_files", "run_export",
]  # fmt: skip

Log = Callable[[str], None]
# Size of the generated dark scenes for the parity check and the FP16 budget.
PARITY_SIZE = (192, 256)


# INT8 holds back some calibration frames for its budget (sllen.calib.frames.split_holdout).
MIN_CALIB_FRAMES = 2

# Opsets the ONNX export writes (onnx_export.py says why; here so that options are checked
# without importing torch).
SUPPORTED_OPSETS: tuple[int, ...] = (19, 20)


@dataclass
class ExportOptions:
    # Not "export": run from a clone, that is the sllen.export package's own source folder.
    out: Path = Path("exports")
    weights: Path | None = None  # None: the bundled default model
    fp16: bool = False
    int8: bool = False
    calib_data: list[Path] = field(default_factory=list)
    calib_count: int = 300
    calib_size: tuple[int, int] = (256, 256)
    calib_method: str = "auto"
    # Calibrate on brightened copies of the dim frames too (sllen.calib.int8: brighten).
    calib_brighten: bool = True
    # Images unlike the calibration frames the INT8 budget is judged on as well (None: the
    # built-in evaluation photographs where installed, else generated scenes).
    eval_data: list[Path] = field(default_factory=list)
    # What the files are for: tensorrt (decomposed/plugin attention, symmetric INT8) or cpu
    # (ONNX Runtime: linear-memory "mha" attention, asymmetric uint8 INT8; no engines).
    target: str = "tensorrt"
    max_psnr_drop: float = 0.5
    max_ssim_drop: float = 0.01
    fp16_budget_db: float = 40.0
    # auto: mha for --target cpu; decomposed for tensorrt, plugin engine where it does not fuse
    attention: str = "auto"
    opset: int = 19
    segmentation: bool = False
    ranges: Path | None = None  # reuse saved INT8 calibration ranges (the file must exist)
    # Engine (only where TensorRT is installed).
    from_onnx: Path | None = None
    profile: ShapeProfile = DEFAULT_PROFILE
    engine: bool | None = None  # None: build when TensorRT is available
    workspace_gib: float = 2.0
    timing_cache: Path | None = None
    dla_core: int | None = None
    version_compatible: bool = False
    plugin_library: Path | None = None
    engine_cache: Path | None = None  # reuse engines built before with identical inputs
    parity: bool = True  # each engine against its ONNX file through Polygraphy, when installed
    device: int | None = None  # CUDA device to build on (default: the current one)
    threads: int | None = None

    def __post_init__(self) -> None:
        if self.threads is not None and self.threads < 1:
            raise InputError(f"--threads must be at least 1, not {self.threads}")
        if self.attention not in ("auto", "decomposed", "plugin", "mha"):
            raise InputError(
                f"--attention must be auto, decomposed, plugin or mha, not {self.attention!r}"
            )
        if self.target not in ("tensorrt", "cpu"):
            raise InputError(f"--target must be tensorrt or cpu, not {self.target!r}")
        if self.attention == "mha" and self.target != "cpu":
            raise InputError(
                "--attention mha writes ONNX Runtime's com.microsoft.MultiHeadAttention, which "
                "TensorRT does not parse: use it with --target cpu"
            )
        if self.attention == "plugin" and self.target == "cpu":
            raise InputError(
                "--attention plugin is the TensorRT plugin node, which ONNX Runtime cannot run: "
                "use --target tensorrt, or --attention mha/decomposed for --target cpu"
            )
        if self.target == "cpu" and self.engine:
            raise InputError(
                "--target cpu writes files for ONNX Runtime; build engines from a --target "
                "tensorrt export"
            )
        if self.attention == "plugin" and (self.fp16 or self.int8):
            # The precision tools measure the graph in ONNX Runtime, which cannot run the
            # plugin node; quantize the decomposed graph instead.
            raise InputError("--attention plugin is only exported in FP32 for now")
        if self.calib_count <= 0:
            raise InputError(f"--calib-count must be positive, not {self.calib_count}")
        if self.int8 and self.calib_count < MIN_CALIB_FRAMES:
            raise InputError(
                f"--calib-count must be at least {MIN_CALIB_FRAMES} for --int8, not "
                f"{self.calib_count} (frames are held back to check the budget)"
            )
        from sllen.calib.ranges import METHODS

        if self.calib_method not in ("auto", *METHODS):
            # checked here, not after the FP32 export the INT8 step starts from
            names = ", ".join(("auto", *METHODS[:-1])) + f" or {METHODS[-1]}"
            raise InputError(f"--calib-method must be {names}, not {self.calib_method!r}")
        if self.opset not in SUPPORTED_OPSETS:
            raise InputError(f"--opset must be 19 or 20, not {self.opset}")
        if self.out.exists() and not self.out.is_dir():
            raise InputError(f"--out {self.out} is a file: name a folder for the exported files")
        if self.calib_data and not self.int8:
            raise InputError("--calib-data is only used with --int8")
        if self.eval_data and not self.int8:
            raise InputError("--eval-data is only used with --int8")
        if self.ranges is not None and not self.int8:
            raise InputError("--ranges is only used with --int8")
        self._check_engine_options()

    def _check_engine_options(self) -> None:
        """The engine step's options, refused before the export rather than after it (and
        on a machine without TensorRT too, where a later --from-onnx would use them)."""
        if not 0 < self.workspace_gib < math.inf:
            raise InputError(f"--workspace-gib must be a positive size, not {self.workspace_gib}")
        for option, value, what in (
            ("--dla-core", self.dla_core, "DLA core"),
            ("--device", self.device, "CUDA device"),
        ):
            if value is not None and value < 0:
                raise InputError(f"{option} must be a {what} index (0, 1, ...), not {value}")
        if self.device is not None and self.dla_core is not None:
            raise InputError("give --device or --dla-core, not both")
        if self.dla_core is not None:
            from sllen.export.trt.build import check_dla_profile

            check_dla_profile(self.profile)


def export_attention(opts: ExportOptions) -> ExportAttention:
    """The attention form written into the ONNX files (their ``sllen_attention``).

    ``auto``: ``mha`` for ``--target cpu`` (ONNX Runtime's flash attention, memory linear in the
    frame), ``decomposed`` for TensorRT (the engine step then decides between TensorRT's fused
    attention and the plugin, build_engine_auto)."""
    if opts.attention == "auto":
        return "mha" if opts.target == "cpu" else "decomposed"
    return cast("ExportAttention", opts.attention)  # __post_init__ checked the value


def _size_mb(path: Path) -> float:
    return round(path.stat().st_size / 2**20, 3)


# calibration frames, the report's "calibration", and the second budget set (budget_eval_frames)
Int8Data = tuple[Any, dict[str, Any], tuple[Any, Any, str]]


def _int8_data(opts: ExportOptions, log: Log) -> Int8Data:
    """``(frames, calibration, (eval_frames, eval_references, eval_text))`` for --int8, loaded
    before the FP32 export: a bad --calib-data or --eval-data fails before minutes of work."""
    from sllen.calib.frames import (
        budget_eval_frames,
        few_frames_note,
        load_calibration_frames,
        synthetic_calibration_frames,
    )

    if opts.calib_data:
        log(f"int8: loading up to {opts.calib_count} calibration frames")
        with _naming_option("--calib-data", opts.calib_data):
            frames = load_calibration_frames(opts.calib_data, opts.calib_count, opts.calib_size)
        source: list[str] | str = [str(p) for p in opts.calib_data]
        if len(frames) < MIN_CALIB_FRAMES:  # split_holdout's minimum, said before the export
            raise InputError(
                f"--calib-data {' '.join(source)} gave {len(frames)} frame; INT8 needs at least "
                f"{MIN_CALIB_FRAMES} (some are held back to check the budget; 32 or more "
                "recommended)"
            )
        if note := few_frames_note(len(frames)):
            log(f"[yellow]warning: int8: {escape(note)}")
    else:
        frames = synthetic_calibration_frames(min(opts.calib_count, 64), opts.calib_size)
        source = "generated dark scenes (give --calib-data for real footage)"
        log(
            "[yellow]no --calib-data: calibrating on generated dark scenes; footage "
            "from the deployment camera calibrates better"
        )
    calibration = {"source": source, "frames": int(len(frames)), "size": list(frames.shape[2:])}
    with _naming_option("--eval-data", opts.eval_data):
        budget_set = budget_eval_frames(opts.eval_data or None, opts.calib_size)
    # "sllen[eval]" in the text is not a style tag: escaped for the markup the log reads
    log(
        f"int8: the budget is judged on held-back calibration frames and on {escape(budget_set[2])}"
    )
    return frames, calibration, budget_set


@contextmanager
def _naming_option(option: str, sources: list[Path]) -> Iterator[None]:
    """sllen.calib's one-line errors about the data, with the option that gave it: "--eval-data
    empty: folder has no images" said which of the two options named "empty"."""
    try:
        yield
    except (InputError, MissingFileError) as e:
        text = str(e)
        given = any(text.startswith(f"{p}:") for p in map(str, sources))
        raise type(e)(f"{option} {text}" if given else f"{option}: {text}") from None


def export_onnx_files(opts: ExportOptions, log: Log, *, into: Path | None = None) -> dict[str, Any]:
    """FP32 ONNX (simplified, parity-checked), then FP16 and INT8 as asked. ``into``: the
    folder to write them in (run_export's staging folder); the log names them in
    ``opts.out``, where they end up."""

    from sllen.calib.graph import naming_writes
    from sllen.model.io import load_weights
    from sllen.weights import default_weights

    from .onnx_export import export_onnx
    from .parity import check_parity, parity_inputs
    from .simplify import simplify_onnx

    int8_data = _int8_data(opts, log) if opts.int8 else None
    folder = into if into is not None else opts.out
    folder.mkdir(parents=True, exist_ok=True)
    weights = opts.weights if opts.weights is not None else default_weights()
    model = load_weights(weights)
    report: dict[str, Any] = {
        "weights": str(weights),
        "preset": model.config.preset,
        "variant": model.config.variant,
        "files": {},
    }
    if int8_data is not None:
        report["calibration"] = int8_data[1]
    t = time.monotonic()
    attention = export_attention(opts)
    log(f"fp32: exporting {model.config.preset} ({attention} attention) to ONNX")
    fp32 = folder / onnx_name("fp32", opts.target)
    with naming_writes(fp32):
        export_onnx(
            model, fp32, attention=attention, opset=opts.opset, segmentation=opts.segmentation
        )
    log("fp32: simplifying the graph and checking it against PyTorch")
    with naming_writes(fp32):
        simplified = simplify_onnx(fp32, fp32, threads=opts.threads or 0)
    inputs = parity_inputs(4, PARITY_SIZE, seed=0)
    parity = check_parity(model, fp32, inputs, threads=opts.threads or 0)
    report["files"]["fp32"] = {
        "file": fp32.name,
        "mb": _size_mb(fp32),
        "attention": attention,
        "opset": opts.opset,
        "simplify": simplified,
        "parity_vs_pytorch": parity,
        "seconds": round(time.monotonic() - t, 1),
    }
    log(
        f"fp32: {escape(str(opts.out / fp32.name))} (attention {attention}; parity vs PyTorch: "
        f"{parity['psnr']:.1f} dB, max abs {parity['max_abs']:.2e})"
    )

    if opts.fp16:
        from sllen.calib.fp16 import convert_fp16

        t = time.monotonic()
        log("fp16: measuring where FP16 overflows, converting, checking the budget")
        r = convert_fp16(
            fp32,
            folder / onnx_name("fp16", opts.target),
            inputs,
            budget_db=opts.fp16_budget_db,
            threads=opts.threads,
        )
        written = Path(r["path"])
        r.update(file=written.name, mb=_size_mb(written), seconds=round(time.monotonic() - t, 1))
        report["files"]["fp16"] = r
        log(
            f"fp16: {escape(str(opts.out / written.name))} ({r['psnr_db']:.1f} dB vs FP32, "
            f"budget {opts.fp16_budget_db:.0f} dB: {'pass' if r['passes_budget'] else 'FAIL'})"
        )
    if int8_data is not None:
        report["files"]["int8" if opts.target == "tensorrt" else "int8_cpu"] = _int8_file(
            opts, fp32, int8_data, log
        )
    return report


def _int8_file(opts: ExportOptions, fp32: Path, data: Int8Data, log: Log) -> dict[str, Any]:
    """The INT8 file of ``opts.target`` from the FP32 file and the data of :func:`_int8_data`,
    written beside the FP32 file."""
    from sllen.calib.int8 import dark_calibration_note, few_int8_layers_note, quantize_int8

    frames, _, (eval_frames, eval_refs, eval_text) = data
    t = time.monotonic()
    r = quantize_int8(
        fp32,
        fp32.with_name(onnx_name("int8", opts.target)),
        frames,
        method=opts.calib_method,
        flavour=opts.target,
        max_psnr_drop=opts.max_psnr_drop,
        max_ssim_drop=opts.max_ssim_drop,
        ranges=opts.ranges,
        brighten=opts.calib_brighten,
        eval_frames=eval_frames,
        eval_references=eval_refs,
        threads=opts.threads,
        log=lambda text: log(escape(text)),  # sllen.calib's lines are plain text
    )
    written = Path(r["path"])
    r.update(file=written.name, mb=_size_mb(written), seconds=round(time.monotonic() - t, 1))
    r["budget"]["eval_data"] = eval_text
    b = r["budget"]
    drops = ", ".join(
        f"{k} {v['drop_db']:.2f} dB / SSIM {v['ssim_drop']:.3f}" for k, v in b["sets"].items()
    )
    moved = sum(len(f["nodes"]) for f in r["fallback"])
    log(
        f"int8 ({opts.target}): {escape(str(opts.out / written.name))} ({r['method']} ranges; "
        f"drop {drops}; "
        f"budget {opts.max_psnr_drop} dB / SSIM {opts.max_ssim_drop}: "
        f"{'pass' if b['passes'] else 'FAIL'}; {moved} layers moved back to float)"
    )
    for note in (few_int8_layers_note(r), dark_calibration_note(r)):
        if b["passes"] and note:
            r["notes"].append(note)
            log(f"[yellow]warning: int8: {escape(note)}")
    return r


def check_before_work(opts: ExportOptions) -> None:
    """Refuse, in one line and before the FP32 export, what would only fail after it: an
    --out under a file or unwritable, a --ranges file that does not exist, is not one, or
    belongs to the other attention form."""
    check_output_folder(opts.out, "--out")
    if opts.ranges is not None:
        from sllen.calib.ranges import ranges_file_header

        header = ranges_file_header(opts.ranges, option="--ranges")
        method = header["method"]
        if opts.calib_method not in ("auto", method):
            raise InputError(
                f"--ranges {opts.ranges} holds {method} ranges, not --calib-method "
                f"{opts.calib_method}: leave --calib-method out or recalibrate without --ranges"
            )
        _check_ranges_attention(opts, header.get("attention"))


def _check_ranges_attention(opts: ExportOptions, theirs: str | None) -> None:
    """Ranges belong to one graph: --target cpu exports the attention as mha by default, the
    TensorRT target as decomposed, so the same weights give two graphs (and a file from one
    was refused for the other only after the FP32 export, as "for another model")."""
    ours = export_attention(opts)
    if theirs is None or theirs == ours:  # None: an older file, load_ranges checks the graph
        return
    if theirs == "mha":
        fix = (
            "use --target cpu (its default attention is mha)"
            if opts.target != "cpu"
            else "leave --attention out (mha is the default of --target cpu)"
        )
    elif opts.target == "cpu":
        fix = f"add --attention {theirs} (or use --target tensorrt)"
    else:
        fix = f"use --attention {theirs}"
    raise InputError(
        f"--ranges {opts.ranges} holds ranges of the graph with {theirs} attention, and this "
        f"export writes {ours} attention (--target {opts.target}, --attention {opts.attention}): "
        f"{fix}, or recalibrate without --ranges"
    )


def run_export(
    opts: ExportOptions, log: Log | None = None, *, check_budgets: bool = True
) -> dict[str, Any]:
    """Do everything ``opts`` asks and write the report (``report.json``, ``report-cpu.json``
    for ``--target cpu``: sllen.export.outputs) into ``opts.out``.

    Every file is staged in a hidden folder inside ``opts.out`` and moved into place, the
    report last, only when the run succeeds (sllen.export.staging): a run that fails or is
    interrupted leaves ``opts.out`` as it was, and takes away the folder if it made it.
    ``log`` receives progress lines with rich markup; default: a rich console. A file that
    misses its accuracy budget raises BudgetError after the report is written (with
    ``check_budgets=False`` the caller calls :func:`check_budgets_of` itself, e.g. after
    printing the report)."""
    import sllen

    if log is None:
        from rich.console import Console

        log = Console(soft_wrap=True).print

    check_before_work(opts)
    if opts.from_onnx is not None and not opts.from_onnx.is_file():
        raise InputError(f"ONNX file not found: {opts.from_onnx}")
    if opts.threads is not None and opts.from_onnx is None:  # ONNX Runtime takes them per session
        import torch

        torch.set_num_threads(opts.threads)
    report: dict[str, Any] = {
        "sllen_version": sllen.__version__,
        "options": {
            k: str(v) if isinstance(v, Path) else v
            for k, v in asdict(opts).items()
            if k != "profile"
        },
        "profile": opts.profile.to_dict(),
    }
    with removed_if_left_empty(topmost_missing(opts.out)), StagedOutput(opts.out) as stage:
        if opts.from_onnx is not None:
            built = replace(opts, engine=True)
            report["engine"] = build_engines(built, [opts.from_onnx], log, stage=stage)
            target = "tensorrt"  # engines: added to the export's report
        else:
            report.update(export_onnx_files(opts, log, into=stage.folder))
            files = [stage.folder / f["file"] for f in report["files"].values()]
            report["engine"] = build_engines(opts, files, log, stage=stage)
            target = opts.target
        report = stage.commit(report, target)
    if check_budgets:
        check_budgets_of(report)
    return report
