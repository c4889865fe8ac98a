"""A TensorRT engine against its ONNX file, through Polygraphy's runners and comparator.

What the engine computes is checked against ONNX Runtime (CPU) running the ONNX file the engine
was built from, on the same inputs, with Polygraphy (NVIDIA's own tool for exactly this):

- runners: ``OnnxrtRunner(SessionFromOnnx(...))`` and ``TrtRunner(EngineFromBytes(...))``
  (polygraphy.backend.onnxrt / .trt), run by ``Comparator.run`` on a list of feed dicts;
- comparison: ``Comparator.compare_accuracy`` with ``SimpleCompareFunc`` (``CompareFunc.simple``
  on Polygraphy versions before 0.53): per output and per input, max / mean / median absolute
  and relative error against ``atol`` / ``rtol`` on the statistic ``check_error_stat``;
- replay: the inputs and both runners' outputs are saved as Polygraphy JSON
  (``parity_inputs.json``, ``parity_outputs.json``), so a user re-runs either side without
  sllen: ``polygraphy run model.onnx --onnxrt --load-inputs parity_inputs.json
  --load-outputs parity_outputs.json`` (the report holds the exact commands).

Precision lives in the ONNX file, so the reference runs the same precision as the engine (an
FP16 engine against fp16.onnx in ONNX Runtime): differences come from kernels, TF32 and fusion,
not from the precision, and the default tolerances are tight (DEFAULT_TOLERANCES, on the mean
absolute error of images in [0, 1]). The report adds each output's PSNR (data range 1) and the
worst max |err|.

Inputs: dark captures of procedural scenes (sllen.export.parity.parity_inputs) at the engine's
opt shape, or arrays the caller gives. A plugin-mode ONNX file runs in ONNX Runtime through its
reference function (attach_reference_attention); the plugin library is loaded before the
engine is deserialized. Polygraphy is optional (``pip install polygraphy``): without it
:func:`engine_parity` raises MissingDependencyError saying so.

    python -m sllen.export.trt.engine_parity model.onnx model.engine --out parity/
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shlex
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sllen.runtime.errors import MissingDependencyError

# (atol, rtol, statistic) per precision: mean |err| of an image output in [0, 1] against the
# same-precision ONNX file in ONNX Runtime.
DEFAULT_TOLERANCES: dict[str, tuple[float, float, str]] = {
    "fp32": (2e-3, 1e-3, "mean"),  # TF32 convolutions and matmuls (TensorRT's default)
    "fp16": (5e-3, 1e-2, "mean"),
    "int8": (1e-2, 2e-2, "mean"),  # rounding at Q/DQ boundaries differs between the two
}
INPUTS_FILE = "parity_inputs.json"
OUTPUTS_FILE = "parity_outputs.json"
REPORT_FILE = "parity.json"


def _polygraphy() -> Any:
    try:
        return importlib.import_module("polygraphy")
    except ImportError:
        raise MissingDependencyError(
            "the engine parity check runs through Polygraphy: pip install polygraphy "
            "(or the sllen extra that carries it)"
        ) from None


def onnxrt_runner(onnx_path: str | os.PathLike[str], name: str = "onnxrt") -> Any:
    """Polygraphy's ONNX Runtime runner (CPUExecutionProvider) for `onnx_path`; a plugin-mode
    file gets its reference function first (ONNX Runtime cannot run the plugin node)."""
    _polygraphy()
    import onnx
    from polygraphy.backend.onnxrt import OnnxrtRunner, SessionFromOnnx

    from sllen.export.onnx_export import attach_reference_attention

    proto = attach_reference_attention(onnx.load(str(onnx_path)))
    session = SessionFromOnnx(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return OnnxrtRunner(session, name=name)


def tensorrt_runner(
    engine_path: str | os.PathLike[str],
    *,
    plugin_library: str | os.PathLike[str] | None = None,
    version_compatible: bool = False,
    name: str = "tensorrt",
) -> Any:
    """Polygraphy's TensorRT runner for a serialized engine. The plugin library is loaded first
    (sllen.runtime.env, the same registry the runtime uses); version-compatible engines need
    Runtime.engine_host_code_allowed (a runtime passed to EngineFromBytes)."""
    _polygraphy()
    from polygraphy.backend.common import BytesFromPath
    from polygraphy.backend.trt import EngineFromBytes, TrtRunner

    from sllen.runtime import env

    trt = env.import_tensorrt()
    if plugin_library is not None:
        env.load_plugin_library(plugin_library)
    kwargs: dict[str, Any] = {}
    if version_compatible:
        runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        runtime.engine_host_code_allowed = True
        kwargs["runtime"] = runtime
    return TrtRunner(EngineFromBytes(BytesFromPath(str(engine_path)), **kwargs), name=name)


def _compare_func(atol: float, rtol: float, stat: str) -> Any:
    try:  # Polygraphy 0.53+
        from polygraphy.comparator import SimpleCompareFunc

        return SimpleCompareFunc(atol=atol, rtol=rtol, check_error_stat=stat)
    except ImportError:
        from polygraphy.comparator import CompareFunc

        return CompareFunc.simple(atol=atol, rtol=rtol, check_error_stat=stat)


def _accuracy_results(accuracy: Any) -> list[Any]:
    # A single AccuracyResult (dict of runner pair -> iterations) before 0.53, a list of them
    # (AccuracyResults, one per compare function) from 0.53 on.
    return [accuracy] if hasattr(accuracy, "items") else list(accuracy)


def _psnr(reference: np.ndarray, candidate: np.ndarray) -> float:
    mse = float(np.mean((reference.astype(np.float64) - candidate.astype(np.float64)) ** 2))
    return 100.0 if mse <= 1e-10 else min(100.0, 10 * np.log10(1.0 / mse))


def compare(
    reference: Any,
    candidate: Any,
    feeds: Sequence[dict[str, np.ndarray]],
    out_dir: str | os.PathLike[str],
    *,
    atol: float,
    rtol: float,
    check_error_stat: str = "mean",
    quiet: bool = True,
) -> dict[str, Any]:
    """Run two Polygraphy runners on `feeds`, compare every output, save inputs and outputs.

    Returns (and writes to out_dir/parity.json) {"passed", "runners", "tolerance", "outputs":
    {name: {"passed", "max_abs", "mean_abs", "median_abs", "max_rel", "psnr_db"}}, "inputs",
    "files": {"inputs", "outputs"}}; "outputs" are the worst over the inputs (PSNR: the
    lowest).
    """
    _polygraphy()
    from polygraphy.comparator import Comparator
    from polygraphy.logger import G_LOGGER

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    inputs_file, outputs_file = out / INPUTS_FILE, out / OUTPUTS_FILE
    for stale in (inputs_file, outputs_file):
        stale.unlink(missing_ok=True)
    with G_LOGGER.verbosity(G_LOGGER.WARNING if quiet else G_LOGGER.INFO):
        results = Comparator.run(
            [reference, candidate],
            data_loader=list(feeds),
            save_inputs_path=str(inputs_file),
        )
        # Saved here, not through run()'s save_outputs_path: Polygraphy 0.49 (the version in
        # TensorRT's own tools/ folder) has no such keyword; RunResults.save is in both.
        results.save(str(outputs_file))
        accuracy = Comparator.compare_accuracy(
            results, compare_func=_compare_func(atol, rtol, check_error_stat)
        )
    outputs: dict[str, dict[str, Any]] = {}
    for result in _accuracy_results(accuracy):
        for _pair, iterations in result.items():
            for iteration in iterations:
                for name, r in iteration.items():
                    o = outputs.setdefault(
                        name,
                        {"passed": True, "max_abs": 0.0, "mean_abs": 0.0, "median_abs": 0.0},
                    )
                    o["passed"] = o["passed"] and bool(r)
                    for key, attr in (
                        ("max_abs", "max_absdiff"),
                        ("mean_abs", "mean_absdiff"),
                        ("median_abs", "median_absdiff"),
                        ("max_rel", "max_reldiff"),
                    ):
                        value = getattr(r, attr, None)
                        if value is not None:
                            o[key] = max(o.get(key, 0.0), float(value))
    (ref_name, ref_iters), (cand_name, cand_iters) = list(results.items())[:2]
    for ref_it, cand_it in zip(ref_iters, cand_iters, strict=True):
        for name, o in outputs.items():
            psnr = _psnr(np.asarray(ref_it[name]), np.asarray(cand_it[name]))
            o["psnr_db"] = min(o.get("psnr_db", 100.0), round(psnr, 2))
    report = {
        "passed": bool(outputs) and all(o["passed"] for o in outputs.values()),
        "runners": [ref_name, cand_name],
        "tolerance": {"atol": atol, "rtol": rtol, "check_error_stat": check_error_stat},
        "outputs": outputs,
        "inputs": [{k: list(v.shape) for k, v in f.items()} for f in feeds],
        "files": {"inputs": str(inputs_file), "outputs": str(outputs_file)},
    }
    (out / REPORT_FILE).write_text(json.dumps(report, indent=2) + "\n")
    return report


def default_feeds(
    meta: dict[str, Any] | None, count: int = 2, seed: int = 0
) -> list[dict[str, np.ndarray]]:
    """`count` dark scenes at the engine's opt shape (batch and size), one feed dict each."""
    opt = (meta or {}).get("profile", {}).get("opt") or [1, 3, 256, 256]
    batch, _, h, w = (int(x) for x in opt)
    try:
        from sllen.export.parity import parity_inputs

        images = parity_inputs(count * batch, (h, w), seed=seed)
    except ImportError:  # sllen's scene generator is not there: plain dark noise
        rng = np.random.default_rng(seed)
        images = (rng.random((count * batch, 3, h, w)) * 0.2).astype(np.float32)
    return [{"input": images[i * batch : (i + 1) * batch]} for i in range(count)]


def replay_commands(
    onnx_path: str | os.PathLike[str],
    engine_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    plugin_library: str | os.PathLike[str] | None = None,
    tolerance: dict[str, Any] | None = None,
) -> list[str]:
    """The polygraphy command lines that re-run either side on the saved inputs and compare
    with the saved outputs, with the check's own tolerance (``compare``'s "tolerance"):
    Polygraphy's default (1e-5, element-wise) would fail an FP16 or INT8 check that passed."""
    out = Path(out_dir)
    q = shlex.quote  # pasted into a shell: paths with spaces or brackets
    load = f"--load-inputs {q(str(out / INPUTS_FILE))} --load-outputs {q(str(out / OUTPUTS_FILE))}"
    if tolerance:
        load += (
            f" --atol {tolerance['atol']:g} --rtol {tolerance['rtol']:g}"
            f" --check-error-stat {tolerance['check_error_stat']}"
        )
    plugins = f" --plugins {q(str(plugin_library))}" if plugin_library else ""
    return [
        f"polygraphy run {q(str(onnx_path))} --onnxrt {load}",
        f"polygraphy run {q(str(engine_path))} --model-type engine --trt{plugins} {load}",
    ]


def engine_parity(
    onnx_path: str | os.PathLike[str],
    engine_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    feeds: Iterable[dict[str, np.ndarray]] | None = None,
    count: int = 2,
    atol: float | None = None,
    rtol: float | None = None,
    check_error_stat: str | None = None,
    plugin_library: str | os.PathLike[str] | None = None,
    make_candidate: Callable[..., Any] | None = None,
    quiet: bool = True,
) -> dict[str, Any]:
    """The engine against ONNX Runtime on `onnx_path` (see the module docstring).

    The engine's metadata (``<engine>.json``) gives the precision (default tolerances), the
    opt shape (default inputs), the plugin library and version compatibility. Returns the
    report of :func:`compare` plus "precision", "onnx", "engine" and "replay" (commands).
    make_candidate(engine_path, plugin_library=..., version_compatible=...) builds the runner
    under test (default :func:`tensorrt_runner`).
    """
    make_candidate = make_candidate or tensorrt_runner
    from sllen.runtime.engine_meta import read_metadata

    engine_path = Path(engine_path)
    try:
        meta: dict[str, Any] | None = read_metadata(engine_path)
    except (OSError, ValueError):
        meta = None
    precision = (meta or {}).get("precision", "fp32")
    d_atol, d_rtol, d_stat = DEFAULT_TOLERANCES.get(precision, DEFAULT_TOLERANCES["fp32"])
    if plugin_library is None and meta and meta.get("plugin_library"):
        beside = engine_path.parent / Path(meta["plugin_library"]).name
        plugin_library = beside if beside.is_file() else None
        if plugin_library is None:
            from sllen.runtime.attention_kernel import find_plugin_library

            plugin_library = find_plugin_library()
    feeds = list(feeds) if feeds is not None else default_feeds(meta, count)
    reference = onnxrt_runner(onnx_path)
    candidate = make_candidate(
        engine_path,
        plugin_library=plugin_library,
        version_compatible=bool((meta or {}).get("version_compatible")),
    )
    report = compare(
        reference,
        candidate,
        feeds,
        out_dir,
        atol=d_atol if atol is None else atol,
        rtol=d_rtol if rtol is None else rtol,
        check_error_stat=check_error_stat or d_stat,
        quiet=quiet,
    )
    report.update(
        precision=precision,
        onnx=str(onnx_path),
        engine=str(engine_path),
        replay=replay_commands(
            onnx_path, engine_path, out_dir, plugin_library, report["tolerance"]
        ),
    )
    (Path(out_dir) / REPORT_FILE).write_text(json.dumps(report, indent=2) + "\n")
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A TensorRT engine against its ONNX file.")
    parser.add_argument("onnx", type=Path)
    parser.add_argument("engine", type=Path)
    parser.add_argument("--out", type=Path, default=Path("parity"))
    parser.add_argument("--count", type=int, default=2, help="inputs (dark scenes) to compare")
    parser.add_argument("--atol", type=float)
    parser.add_argument("--rtol", type=float)
    parser.add_argument("--check-error-stat", choices=["max", "mean", "median", "elemwise"])
    parser.add_argument("--plugin", type=Path, help="the attention plugin library")
    parser.add_argument("--verbose", action="store_true", help="Polygraphy's own log")
    args = parser.parse_args(argv)
    report = engine_parity(
        args.onnx,
        args.engine,
        args.out,
        count=args.count,
        atol=args.atol,
        rtol=args.rtol,
        check_error_stat=args.check_error_stat,
        plugin_library=args.plugin,
        quiet=not args.verbose,
    )
    for name, o in report["outputs"].items():
        print(
            f"{'PASS' if o['passed'] else 'FAIL'} {name}: max |err| {o['max_abs']:.3g}, mean "
            f"{o['mean_abs']:.3g}, PSNR {o['psnr_db']:.1f} dB ({report['precision']}, "
            f"{report['tolerance']['check_error_stat']} <= {report['tolerance']['atol']:g})"
        )
    print(f"report: {Path(args.out) / REPORT_FILE}; replay: {report['replay'][1]}")
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
