"""sllen-export end to end: weights -> fp32/fp16/int8 ONNX (+ parity, budgets) -> engine.

One library call (``run_export``) per CLI invocation. Every ONNX file is checked in ONNX
Runtime on the CPU (precision lives in the file, not in builder flags); TensorRT engines are
built only where TensorRT is installed, otherwise the report says how to build them on the
target. ``--target cpu`` makes files for ONNX Runtime instead: the attention as ONNX Runtime's
MultiHeadAttention node (memory linear in the frame, ``sllen_attention`` "mha"), INT8 with
unsigned activations, and no engine.
"""

from __future__ import annotations

import shutil
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from sllen.runtime.errors import BudgetError, InputError
from sllen.runtime.files import atomic_write_json, removed_if_left_empty, topmost_missing

from .engine_meta import EngineCache, cache_key, onnx_sha256, read_metadata, write_metadata
from .shapes import DEFAULT_PROFILE, ShapeProfile

if TYPE_CHECKING:  # onnx_export imports torch: only for the type
    from .onnx_export import ExportAttention

Log = Callable[[str], None]
# File names inside the output folder.
FP32, FP16, INT8, INT8_CPU = (
    "sllen.fp32.onnx",
    "sllen.fp16.onnx",
    "sllen.int8.onnx",
    ("sllen.int8-cpu.onnx"),
)
# Size of the generated dark scenes for the parity check and the FP16 budget.
PARITY_SIZE = (192, 256)


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
    ranges: Path | None = None  # reuse saved INT8 calibration ranges
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


def export_onnx_files(opts: ExportOptions, log: Log) -> dict[str, Any]:
    """FP32 ONNX (simplified, parity-checked), then FP16 and INT8 as asked."""

    from sllen.model.io import load_weights
    from sllen.weights import default_weights

    from .onnx_export import export_onnx
    from .parity import check_parity, parity_inputs
    from .simplify import simplify_onnx

    # Calibration data first: a bad --calib-data path fails before minutes of work.
    frames = None
    if opts.int8:
        from sllen.calib.frames import (
            few_frames_note,
            load_calibration_frames,
            synthetic_calibration_frames,
        )

        if opts.calib_data:
            log(f"int8: loading up to {opts.calib_count} calibration frames")
            frames = load_calibration_frames(opts.calib_data, opts.calib_count, opts.calib_size)
            source: list[str] | str = [str(p) for p in opts.calib_data]
            if note := few_frames_note(len(frames)):
                log(f"[yellow]warning: int8: {note}")
        else:
            frames = synthetic_calibration_frames(min(opts.calib_count, 64), opts.calib_size)
            source = "generated dark scenes (give --calib-data for real footage)"
            log(
                "[yellow]no --calib-data: calibrating on generated dark scenes; footage "
                "from the deployment camera calibrates better"
            )
        calibration = {"source": source, "frames": int(len(frames)), "size": list(frames.shape[2:])}
    out = opts.out
    out.mkdir(parents=True, exist_ok=True)
    weights = opts.weights if opts.weights is not None else default_weights()
    model = load_weights(weights)
    report: dict[str, Any] = {
        "weights": str(weights),
        "preset": model.config.preset,
        "variant": model.config.variant,
        "files": {},
    }
    if frames is not None:
        report["calibration"] = calibration
    t = time.monotonic()
    attention = export_attention(opts)
    log(f"fp32: exporting {model.config.preset} ({attention} attention) to ONNX")
    fp32 = export_onnx(
        model,
        out / FP32,
        attention=attention,
        opset=opts.opset,
        segmentation=opts.segmentation,
    )
    log("fp32: simplifying the graph and checking it against PyTorch")
    simplified = simplify_onnx(fp32, fp32)
    inputs = parity_inputs(4, PARITY_SIZE, seed=0)
    parity = check_parity(model, fp32, inputs)
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
        f"fp32: {fp32} (attention {attention}; parity vs PyTorch: {parity['psnr']:.1f} dB, max "
        f"abs {parity['max_abs']:.2e})"
    )

    if opts.fp16:
        from sllen.calib.fp16 import convert_fp16

        t = time.monotonic()
        log("fp16: measuring where FP16 overflows, converting, checking the budget")
        r = convert_fp16(
            fp32,
            out / FP16,
            inputs,
            budget_db=opts.fp16_budget_db,
            threads=opts.threads,
        )
        written = Path(r["path"])
        r.update(file=written.name, mb=_size_mb(written), seconds=round(time.monotonic() - t, 1))
        report["files"]["fp16"] = r
        log(
            f"fp16: {written} ({r['psnr_db']:.1f} dB vs FP32, budget "
            f"{opts.fp16_budget_db:.0f} dB: {'pass' if r['passes_budget'] else 'FAIL'})"
        )
    if opts.int8:
        assert frames is not None  # loaded above for --int8
        from sllen.calib.frames import budget_eval_frames
        from sllen.calib.int8 import dark_calibration_note, few_int8_layers_note, quantize_int8

        name = INT8 if opts.target == "tensorrt" else INT8_CPU
        t = time.monotonic()
        eval_frames, eval_refs, eval_text = budget_eval_frames(
            opts.eval_data or None, opts.calib_size
        )
        log(f"int8: the budget is judged on held-back calibration frames and on {eval_text}")
        r = quantize_int8(
            fp32,
            out / name,
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
            log=log,
        )
        written = Path(r["path"])
        r.update(file=written.name, mb=_size_mb(written), seconds=round(time.monotonic() - t, 1))
        r["budget"]["eval_data"] = eval_text
        report["files"]["int8" if opts.target == "tensorrt" else "int8_cpu"] = r
        b = r["budget"]
        drops = ", ".join(
            f"{k} {v['drop_db']:.2f} dB / SSIM {v['ssim_drop']:.3f}" for k, v in b["sets"].items()
        )
        moved = sum(len(f["nodes"]) for f in r["fallback"])
        log(
            f"int8 ({opts.target}): {written} ({r['method']} ranges; drop {drops}; budget "
            f"{opts.max_psnr_drop} dB / SSIM {opts.max_ssim_drop}: "
            f"{'pass' if b['passes'] else 'FAIL'}; {moved} layers moved back to float)"
        )
        for note in (few_int8_layers_note(r), dark_calibration_note(r)):
            if b["passes"] and note:
                r["notes"].append(note)
                log(f"[yellow]warning: int8: {note}")
    return report


def _cache_key(opts: ExportOptions, onnx_path: Path) -> str:
    """Everything that changes the engine: ONNX bytes, precision, profile, TensorRT, GPU."""
    import tensorrt as trt

    from sllen.runtime import env

    from .trt.onnx_info import inspect_onnx

    gpu_name, cc = env.detect_gpu(opts.device or 0)
    return cache_key(
        onnx_sha256(onnx_path),
        inspect_onnx(onnx_path).precision,
        opts.profile.to_dict(),
        trt.__version__,
        cc,
        gpu_name=gpu_name,
        dla_core=opts.dla_core,
        version_compatible=opts.version_compatible,
        plugin_sha256=onnx_sha256(opts.plugin_library) if opts.plugin_library else None,
        extra={"workspace_gib": opts.workspace_gib, "attention": opts.attention},
    )


def _refuse_onnxruntime_attention(onnx_path: Path) -> None:
    """A file with ONNX Runtime's attention node (--target cpu) cannot become an engine."""
    import onnx

    from .onnx_export import META_ATTENTION, MHA_DOMAIN

    try:
        proto = onnx.load(str(onnx_path), load_external_data=False)
    except Exception:  # noqa: BLE001 - not readable: the builder says so in its own words
        return
    meta = {p.key: p.value for p in proto.metadata_props}
    if meta.get(META_ATTENTION) == "mha" or any(n.domain == MHA_DOMAIN for n in proto.graph.node):
        raise InputError(
            f"{onnx_path}: its attention is ONNX Runtime's {MHA_DOMAIN} MultiHeadAttention "
            "(an export for --target cpu), which TensorRT does not parse; export with "
            "--target tensorrt for an engine"
        )


def build_engines(opts: ExportOptions, onnx_files: list[Path], log: Log) -> dict[str, Any]:
    from sllen.runtime import env

    from .trt.auto import build_engine_auto
    from .trt.build import build_engine

    if opts.target == "cpu" and opts.from_onnx is None:
        log("--target cpu: files for ONNX Runtime, no TensorRT engine")
        return {"built": False, "reason": "--target cpu: files for ONNX Runtime"}
    ok, reason = env.tensorrt_available()
    if not ok:
        if opts.engine:
            raise InputError(f"cannot build a TensorRT engine here: {reason}")
        best = onnx_files[-1]
        hint = f"sllen-export --from-onnx {best} {opts.profile.cli_args()}" + (
            f" --dla-core {opts.dla_core}" if opts.dla_core is not None else ""
        )
        log(
            f"[yellow]no TensorRT here ({reason}): build the engine where TensorRT is, e.g. on "
            f"the Jetson: {hint}"
        )
        if any(p.name == INT8 for p in onnx_files):
            log(
                f"[yellow]{INT8} is the TensorRT flavour (symmetric Q/DQ, FP16 elsewhere): "
                "ONNX Runtime on a CPU runs it about 2x slower than FP32. For this machine's "
                "CPU: sllen-export --int8 --target cpu (writes sllen.int8-cpu.onnx)"
            )
        return {"built": False, "reason": reason, "command": hint}
    for onnx_path in onnx_files:
        _refuse_onnxruntime_attention(onnx_path)
    if opts.device is not None and opts.dla_core is not None:
        raise InputError("give --device or --dla-core, not both")
    if opts.device is not None:
        env.select_device(opts.device)
    plugin = opts.plugin_library
    if opts.attention == "auto" and plugin is None:
        from sllen.runtime.attention_kernel import find_plugin_library

        plugin = find_plugin_library()
        if plugin is None:
            log(
                "[yellow]--attention auto: no attention plugin library found (build runtime/csrc "
                "with CMake, or pass --plugin); engines keep the decomposed attention even where "
                "TensorRT does not fuse it"
            )
        opts = replace(opts, plugin_library=plugin)  # the cache key includes the library
    engines = {}
    for onnx_path in onnx_files:
        if onnx_path.name == INT8_CPU:
            continue  # the CPU flavour is for ONNX Runtime; TensorRT refuses it
        engine = opts.out / f"{onnx_path.stem}.engine"
        cache = EngineCache(opts.engine_cache) if opts.engine_cache is not None else None
        key = _cache_key(opts, onnx_path) if cache is not None else None
        cached = cache.lookup(key) if cache is not None and key else None
        if cached is not None:
            shutil.copyfile(cached, engine)
            write_metadata(engine, read_metadata(cached))
            log(f"engine: {engine} (from the cache, key {key})")
        else:
            kwargs: dict[str, Any] = dict(
                workspace_gib=opts.workspace_gib,
                timing_cache=opts.timing_cache or opts.out / "timing.cache",
                dla_core=opts.dla_core,
                version_compatible=opts.version_compatible,
                plugin_library=opts.plugin_library,
                gpu=env.detect_gpu(opts.device) if opts.device is not None else None,
            )
            if opts.attention == "auto":
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # the log line below says it
                    meta = build_engine_auto(onnx_path, engine, opts.profile, **kwargs)
                auto = meta["attention"]["auto"]
                color = "[yellow]" if auto["warning"] else ""
                log(f"{color}engine: {engine} (attention {auto['decision']}: {auto['reason']})")
            else:
                build_engine(onnx_path, engine, opts.profile, **kwargs)
                log(f"engine: {engine}")
            if cache is not None and key:
                cache.store(key, engine)
        engines[onnx_path.name] = {
            "engine": str(engine),
            "metadata": read_metadata(engine),
            "from_cache": cached is not None,
            "parity": _engine_parity(onnx_path, engine, opts, log) if opts.parity else None,
        }
    return {"built": True, "engines": engines}


def _engine_parity(onnx_path: Path, engine: Path, opts: ExportOptions, log: Log) -> Any:
    """The engine against its ONNX file in ONNX Runtime through Polygraphy (sllen[trt-check]),
    with the inputs and outputs saved for replay; None (said once) without Polygraphy."""
    from sllen.runtime.env import installed

    if not installed("polygraphy"):
        log("engine parity skipped: pip install 'sllen[trt-check]' (Polygraphy) to run it")
        return None
    from .trt.engine_parity import engine_parity

    out = opts.out / "parity" / engine.stem
    r = engine_parity(onnx_path, engine, out, plugin_library=opts.plugin_library)
    log(
        f"parity {engine.name} vs {onnx_path.name}: {'pass' if r.get('passed') else 'FAIL'} ({out})"
    )
    return r


def run_export(
    opts: ExportOptions, log: Log | None = None, *, check_budgets: bool = True
) -> dict[str, Any]:
    """Do everything ``opts`` asks and write ``report.json`` into ``opts.out``.

    ``log`` receives progress lines with rich markup; default: a rich console. A file that
    misses its accuracy budget raises BudgetError after the report is written (with
    ``check_budgets=False`` the caller calls :func:`check_budgets` itself, e.g. after printing
    the report)."""
    import sllen

    if log is None:
        from rich.console import Console

        log = Console(soft_wrap=True).print

    report: dict[str, Any] = {
        "sllen_version": sllen.__version__,
        "options": {
            k: str(v) if isinstance(v, Path) else v
            for k, v in asdict(opts).items()
            if k != "profile"
        },
        "profile": opts.profile.to_dict(),
    }
    # a failed export (a bad weights file, no TensorRT) takes away the folder it created
    with removed_if_left_empty(topmost_missing(opts.out)):
        if opts.from_onnx is not None:
            if not opts.from_onnx.is_file():
                raise InputError(f"ONNX file not found: {opts.from_onnx}")
            opts.out.mkdir(parents=True, exist_ok=True)
            report["engine"] = build_engines(replace(opts, engine=True), [opts.from_onnx], log)
        else:
            report.update(export_onnx_files(opts, log))
            files = [opts.out / f["file"] for f in report["files"].values()]
            report["engine"] = build_engines(opts, files, log)
        atomic_write_json(opts.out / "report.json", report, default=str)
    if check_budgets:
        check_budgets_of(report)
    return report


def check_budgets_of(report: dict[str, Any]) -> None:
    """BudgetError when a file missed its budget (written as *.over-budget.onnx, reported)."""
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
        raise BudgetError(
            "; ".join(failed) + f"; kept for inspection only as {', '.join(kept)}, see report.json"
        )
