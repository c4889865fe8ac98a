"""sllen-export's engine step: TensorRT engines from the ONNX files, where TensorRT is.

Without TensorRT it says how to build them on the target; each engine is checked against its
ONNX file (Polygraphy and ONNX Runtime, ``sllen[trt-check]``) when both are installed. Log
lines are rich markup: text that may hold brackets (paths, reasons, install hints such as
``sllen[trt-check]``) is escaped.
"""

from __future__ import annotations

import shlex
import shutil
import warnings
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.markup import escape

from sllen.runtime.errors import InputError, install_hint

from .engine_meta import EngineCache, cache_key, onnx_sha256, read_metadata, write_metadata
from .outputs import FP32, FP32_CPU, INT8, INT8_CPU

if TYPE_CHECKING:  # pipeline imports this module
    from .pipeline import ExportOptions
    from .staging import StagedOutput

Log = Callable[[str], None]
# What the parity check imports, and the package that brings each.
PARITY_NEEDS = {"polygraphy": "Polygraphy", "onnxruntime": "ONNX Runtime"}
PARITY_INSTALL = install_hint("trt-check")
TIMING_CACHE = "timing.cache"  # in --out unless --timing-cache names a file


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
    """A file with ONNX Runtime's attention node (--target cpu) cannot become an engine; a
    file that is not ONNX at all is refused here too, before any TensorRT work."""
    from .onnx_export import META_ATTENTION, MHA_DOMAIN
    from .trt.onnx_info import load_graph

    proto = load_graph(onnx_path)
    meta = {p.key: p.value for p in proto.metadata_props}
    if meta.get(META_ATTENTION) == "mha" or any(n.domain == MHA_DOMAIN for n in proto.graph.node):
        raise InputError(
            f"{onnx_path}: its attention is ONNX Runtime's {MHA_DOMAIN} MultiHeadAttention "
            f"(an export for --target cpu, such as {FP32_CPU}), which TensorRT does not parse; "
            f"build from a --target tensorrt export ({FP32}, sllen.fp16.onnx or {INT8})"
        )


def build_engines(
    opts: ExportOptions, onnx_files: list[Path], log: Log, *, stage: StagedOutput | None = None
) -> dict[str, Any]:
    """An engine per ONNX file where TensorRT is (else how to build them on the target).

    ``stage``: run_export's staging folder, where the engines, their metadata, plugin graphs,
    parity data and the default timing cache are written (moved to ``opts.out`` when the run
    succeeds); the log, the report and the metadata name them in ``opts.out``."""
    from sllen.calib.graph import naming_writes
    from sllen.runtime import env

    from .trt.auto import build_engine_auto
    from .trt.build import build_engine

    folder = stage.folder if stage is not None else opts.out

    def shown(path: Path) -> Path:  # where a file written into `folder` ends up
        return stage.public(path) if stage is not None else path

    if opts.target == "cpu" and opts.from_onnx is None:
        log("--target cpu: files for ONNX Runtime, no TensorRT engine")
        return {"built": False, "reason": "--target cpu: files for ONNX Runtime"}
    ok, reason = env.tensorrt_available()
    if not ok:
        if opts.engine:
            raise InputError(f"cannot build a TensorRT engine here: {reason}")
        best = shown(onnx_files[-1])
        # quoted: a path with a space or a bracket is pasted into a shell
        hint = f"sllen-export --from-onnx {shlex.quote(str(best))} {opts.profile.cli_args()}"
        hint += f" --dla-core {opts.dla_core}" if opts.dla_core is not None else ""
        if opts.attention == "plugin":  # the file holds the plugin node: the build needs it
            library = opts.plugin_library or "build/libsllen_attention_plugin.so"
            hint += f" --plugin {shlex.quote(str(library))}"
        log(
            f"[yellow]no TensorRT here ({escape(reason)}): build the engine where TensorRT is, "
            f"e.g. on the Jetson: {escape(hint)}"
        )
        if any(p.name == INT8 for p in onnx_files):
            log(
                f"[yellow]{INT8} is the TensorRT flavour (symmetric Q/DQ, FP16 elsewhere): "
                "ONNX Runtime on a CPU runs it about 2x slower than FP32. For this machine's "
                f"CPU: sllen-export --int8 --target cpu (writes {FP32_CPU}, {INT8_CPU} and "
                "report-cpu.json beside these)"
            )
        return {"built": False, "reason": reason, "command": hint}
    for onnx_path in onnx_files:
        _refuse_onnxruntime_attention(onnx_path)
    if opts.device is not None:  # --device with --dla-core: refused by ExportOptions
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
    parity_ok = _parity_available(log) if opts.parity else False
    timing_cache = opts.timing_cache or opts.out / TIMING_CACHE
    if stage is not None:
        timing_cache = _staged_copy(timing_cache, stage)
    for onnx_path in onnx_files:
        if onnx_path.name == INT8_CPU:
            # the CPU flavour's asymmetric Q/DQ is for ONNX Runtime; TensorRT refuses it
            if opts.from_onnx is None:
                continue
            raise InputError(
                f"{onnx_path}: the CPU flavour's INT8 file (ONNX Runtime's asymmetric "
                f"quantization), which TensorRT does not build: export --int8 ({INT8}) for it"
            )
        engine = folder / f"{onnx_path.stem}.engine"
        cache = EngineCache(opts.engine_cache) if opts.engine_cache is not None else None
        key = _cache_key(opts, onnx_path) if cache is not None else None
        cached = cache.lookup(key) if cache is not None and key else None
        if cached is not None:
            with naming_writes(engine):
                shutil.copyfile(cached, engine)
                write_metadata(engine, read_metadata(cached))
            log(f"engine: {escape(str(shown(engine)))} (from the cache, key {key})")
        else:
            kwargs: dict[str, Any] = dict(
                workspace_gib=opts.workspace_gib,
                timing_cache=timing_cache,
                # the default cache is sllen's own: an unreadable one (another TensorRT) is
                # replaced; a --timing-cache file the user named is never overwritten unread
                replace_unreadable_cache=opts.timing_cache is None,
                dla_core=opts.dla_core,
                version_compatible=opts.version_compatible,
                plugin_library=opts.plugin_library,
                gpu=env.detect_gpu(opts.device) if opts.device is not None else None,
            )
            if opts.attention == "auto":
                with warnings.catch_warnings(), naming_writes(engine):
                    warnings.simplefilter("ignore")  # the log line below says it
                    # announce=False: the missing plugin was said once above, not per engine
                    meta = build_engine_auto(
                        onnx_path, engine, opts.profile, announce=False, **kwargs
                    )
                auto = meta["attention"]["auto"]
                color = "[yellow]" if auto["warning"] else ""
                log(
                    f"{color}engine: {escape(str(shown(engine)))} (attention "
                    f"{auto['decision']}: {escape(auto['reason'])})"
                )
            else:
                with naming_writes(engine):
                    build_engine(onnx_path, engine, opts.profile, **kwargs)
                log(f"engine: {escape(str(shown(engine)))}")
            if stage is not None:  # the cache keeps it too: where its ONNX file ends up
                with naming_writes(engine.with_name(engine.name + ".json")):
                    write_metadata(engine, stage.public(read_metadata(engine)))
            if cache is not None and key:
                cache.store(key, engine)
        parity = None
        if parity_ok:
            with naming_writes(folder / "parity"):
                parity = _engine_parity(onnx_path, engine, opts, log, folder)
        engines[onnx_path.name] = {
            "engine": str(shown(engine)),
            "metadata": read_metadata(engine),
            "from_cache": cached is not None,
            "parity": parity,
        }
    return {"built": True, "engines": engines}


def _staged_copy(path: Path, stage: StagedOutput) -> Path:
    """Where a run writes ``path``: a file under ``--out`` (the timing cache) is staged like the
    engines, starting from the one earlier builds left there (reused, not restarted); a file
    elsewhere (a --timing-cache shared between folders) is written in place."""
    try:
        relative = path.resolve().relative_to(stage.out.resolve())
    except ValueError:
        return path
    staged = stage.folder / relative
    if path.is_file():
        from sllen.calib.graph import naming_writes

        with naming_writes(staged):
            staged.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, staged)
    return staged


def _parity_available(log: Log) -> bool:
    """Whether Polygraphy and ONNX Runtime (its reference side) are both installed; if not,
    one line says the check is skipped and what installs it."""
    from sllen.runtime.env import installed

    missing = [name for module, name in PARITY_NEEDS.items() if not installed(module)]
    if missing:
        log(
            f"[yellow]engine parity skipped: it needs {' and '.join(missing)}, not installed "
            f"here: {escape(PARITY_INSTALL)} (or --no-parity)"
        )
    return not missing


def _engine_parity(
    onnx_path: Path, engine: Path, opts: ExportOptions, log: Log, folder: Path
) -> Any:
    """The engine against its ONNX file in ONNX Runtime through Polygraphy (sllen[trt-check]),
    with the inputs and outputs saved for replay under ``folder``/parity."""
    from .trt.engine_parity import engine_parity

    r = engine_parity(
        onnx_path, engine, folder / "parity" / engine.stem, plugin_library=opts.plugin_library
    )
    result = "pass" if r.get("passed") else "FAIL"
    shown = opts.out / "parity" / engine.stem
    log(f"parity {engine.name} vs {onnx_path.name}: {result} ({escape(str(shown))})")
    return r
