"""ONNX Runtime backend: any ONNX file sllen-export writes, on TensorRT, CUDA or the CPU.

Execution providers are taken in the order TensorRT > CUDA > CPU among those the installed
onnxruntime offers (a plain `pip install onnxruntime` has only the CPU one), or as asked with
``device``. Precision is whatever the file holds (FP32, FP16 casts, INT8 Q/DQ).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from sllen.runtime.backends.base import Backend, BackendInfo, BackendUnavailableError, Outputs
from sllen.runtime.bundled import bundled_onnx
from sllen.runtime.errors import InputError, install_hint

PLUGIN_OP = "SllenAttention"
# The frame size above which frames are tiled (each tile sees only its part of the frame in
# the attention; ``sllen-run --tile`` sets a tile size instead). It follows the file's
# ``sllen_attention`` metadata:
# - "decomposed" (and files without the key): MatMul-Softmax-MatMul materialises the N x N
#   scores per head (N = pixels / 256): 0.5 GB per head at 1080p, 8 GB at 4K, so larger frames
#   are tiled at about 1080p.
# - "mha" (sllen-export --target cpu, the bundled model): ONNX Runtime's MultiHeadAttention,
#   whose CPU kernel is a flash attention with memory linear in N: whole frames up to 4K
#   (4096x2160), larger ones in tiles of about that size. What remains is the convolutions'
#   activations, linear in the pixels (BYTES_PER_PIXEL below): machines with less memory tile
#   by themselves (pixel_budget) or with --tile.
MAX_PIXELS = 1088 * 1920
MAX_PIXELS_LINEAR = 2160 * 4096
LINEAR_ATTENTION = ("mha",)
_GPU_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")


def _l2_cache_known() -> bool:
    """ONNX Runtime takes the flash path of MultiHeadAttention only when it knows the L2 cache
    size (sysconf on Linux; elsewhere the OS always reports it); without it the kernel holds
    the N x N scores like the decomposed graph."""
    if "SC_LEVEL2_CACHE_SIZE" not in os.sysconf_names:
        return True
    try:
        return os.sysconf("SC_LEVEL2_CACHE_SIZE") > 0
    except (OSError, ValueError):
        return False


# Peak memory per input pixel of ONNX Runtime FP32 on the CPU for the edge preset, above the
# resident process (docs/performance.md): 612-682 bytes at 720p-4K for the session this
# backend opens (ort_graph's edits, no buffer reuse); the file as is needs more (1.5-2.1 KB
# with buffer reuse), so the budget assumes that where the edits could not be made.
# MEMORY_SHARE: the share of the available memory a frame may take.
BYTES_PER_PIXEL = 750
BYTES_PER_PIXEL_UNEDITED = 2000
# Row bands (runtime/backends/banded.py: the full- and half-resolution layers band by band,
# exact): about 300 bytes per pixel above the process (877 MiB peak at 1920x1088, 2,609 MiB at
# 3840x2160) for 13-44% more time (docs/performance.md). ``bands="auto"`` bands a frame whose
# whole-frame run would need more than BANDS_ABOVE_BYTES or more than MEMORY_SHARE of the
# memory available when the model opened. 1 GiB: 1080p and up band (0.9 GB instead of 1.5 GB,
# the 1.2 GB target of issue 12 by default), 720p (0.7 GB whole) keeps its speed.
BYTES_PER_PIXEL_BANDED = 400
BANDS_ABOVE_BYTES = 2**30
BANDS = ("auto", "on", "off")
MEMORY_SHARE = 0.8
MIN_PIXELS = 256 * 256


def available_memory() -> int | None:
    """Bytes the OS can give without swapping (MemAvailable on Linux, Jetson included)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def pixel_budget(
    metadata: dict[str, str], on_gpu: bool, edited: bool = True, banded: bool = False
) -> int:
    """The tiling budget (pixels per inference) for a file with these metadata_props: what the
    attention form allows, and on the CPU no more than fits in the memory available now (a
    4 GB Jetson Nano tiles a 4K frame instead of running out of memory). ``edited``: the
    session runs ort_graph's memory-lean edit of the file; ``banded``: large frames run in
    row bands."""
    linear = metadata.get("sllen_attention") in LINEAR_ATTENTION
    # On a GPU provider the node runs CUDA kernels whose memory is not measured here.
    budget = MAX_PIXELS_LINEAR if linear and not on_gpu and _l2_cache_known() else MAX_PIXELS
    free = None if on_gpu else available_memory()
    if free is not None:
        per_pixel = (
            BYTES_PER_PIXEL_BANDED
            if banded
            else BYTES_PER_PIXEL
            if edited
            else BYTES_PER_PIXEL_UNEDITED
        )
        budget = min(budget, max(MIN_PIXELS, int(free * MEMORY_SHARE / per_pixel)))
    return budget


def _import_ort() -> Any:
    try:
        import onnxruntime
    except ImportError:
        raise BackendUnavailableError(
            f"the onnxruntime backend needs onnxruntime: {install_hint('run')}"
        ) from None
    return onnxruntime


# ONNX Runtime keeps what an arena grew until its session closes (the bands' shared arena:
# until the process ends). When frames switch between whole-frame and banded runs (photos of
# mixed sizes, sllen-bench's resolutions) the path not taken would hold its last frame's
# activations beside the new frame's: 720p whole then 1080p banded peaked at 1,441 MiB
# instead of 1,037 (one sllen-bench run). A run on a tiny frame with arena shrinkage hands the
# free regions back (measured: 688 -> 265 MiB resident after a 720p whole frame, 811 -> 411 MiB
# after a 1080p banded one).
ARENA_SHRINK = ("memory.enable_memory_arena_shrinkage", "cpu:0")
RELEASE_SIZE = 64  # the tiny frame: a multiple of the network's 16, 4x4 attention tokens


def arena_shrink_options() -> Any:
    """RunOptions whose run ends by freeing the CPU arena's unused regions."""
    opts = _import_ort().RunOptions()
    opts.add_run_config_entry(*ARENA_SHRINK)
    return opts


def session_options(threads: int | None = None, profile_file: str | None = None) -> Any:
    """The one place sllen sets up ONNX Runtime sessions (this backend, calibration, parity
    checks): full graph optimisation, errors-only logging, no memory pattern (below),
    ``threads`` intra-op threads (None or 0: ONNX Runtime's default), one inter-op thread."""
    ort = _import_ort()
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3  # errors only: ORT's warnings are not the user's business
    # No memory pattern: with dynamic H and W, ONNX Runtime plans one block per input shape
    # on the first run and allocates it on later runs beside the arena the first run grew,
    # so every frame after the first held twice the activations (measured at 1280x720,
    # two threads: 2.7 GB instead of 1.4 GB peak RSS, and no slower without it).
    opts.enable_mem_pattern = False
    # No planned buffer reuse either: the planner gives a freed activation's buffer to a later
    # tensor of the same symbolic shape and holds it in between, so the first decoder's
    # full-resolution buffers stayed resident through the second decoder (measured on the
    # bundled file at 1920x1088, two threads, arena off: 2.2 GB peak with reuse, 1.0 GB
    # without; 720p no slower, docs/performance.md).
    opts.enable_mem_reuse = False
    if threads:
        opts.intra_op_num_threads = int(threads)
    opts.inter_op_num_threads = 1
    if profile_file:  # sllen-bench --layers: ORT writes per-node times to a JSON file
        opts.enable_profiling = True
        opts.profile_file_prefix = profile_file
    return opts


def _edited_model(path: Path, keep_segmentation: bool) -> tuple[bytes | None, list[str]]:
    """The file with ort_graph's memory edits for a CPU session and the outputs it dropped;
    None where there is nothing to change or the edits cannot be made (no ``onnx`` module, a
    graph they do not understand): the caller then opens the file itself, which ONNX Runtime
    runs all the same, only with more memory."""
    try:
        from sllen.runtime.backends.ort_graph import lean_model

        proto, dropped, changed = lean_model(path, keep_segmentation)
        if not changed:
            return None, []
        return bytes(proto.SerializeToString()), dropped
    except Exception:  # ImportError or a graph the edits do not understand: the file as is
        return None, []


def cpu_session(model: str | os.PathLike[str] | bytes, threads: int | None = None) -> Any:
    """An ONNX Runtime session on the CPU for a path or serialized model bytes."""
    ort = _import_ort()
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(
        source, session_options(threads), providers=["CPUExecutionProvider"]
    )


def _providers(available: list[str], device: str) -> list[str]:
    if device == "cpu":
        return ["CPUExecutionProvider"]
    gpu = [p for p in _GPU_PROVIDERS if p in available]
    if device.startswith("cuda") and not gpu:
        raise BackendUnavailableError(
            "this onnxruntime has no CUDA provider (install onnxruntime-gpu, or use --device cpu)"
        )
    return [*gpu, "CPUExecutionProvider"]


class OnnxRuntimeBackend(Backend):
    name = "onnxruntime"

    def __init__(
        self,
        model: str | os.PathLike[str] | None = None,
        *,
        device: str = "auto",
        threads: int | None = None,
        profile_file: str | None = None,
        bands: str = "auto",
    ) -> None:
        super().__init__()
        if bands not in BANDS:
            raise InputError(f"--bands must be one of {', '.join(BANDS)}, not {bands!r}")
        ort = _import_ort()
        path = Path(model) if model is not None else bundled_onnx()
        label = str(path) if model is not None else f"bundled {path.name}"
        opts = session_options(threads, profile_file)
        device_id = int(device.split(":")[1]) if device.startswith("cuda:") else 0
        providers = _providers(ort.get_available_providers(), device)
        provider_opts = [
            {"device_id": str(device_id)} if p in _GPU_PROVIDERS else {} for p in providers
        ]
        self._path = path
        self._cpu_only = providers == ["CPUExecutionProvider"]
        self._open_args: dict[str, Any] = {
            "sess_options": opts,
            "providers": providers,
            "provider_options": provider_opts,
        }
        # On the CPU the session runs the memory-lean edit of the file (ort_graph); the
        # segmentation output is left out until a call asks for it (a second session then).
        edited, dropped = (
            _edited_model(path, keep_segmentation=False) if self._cpu_only else (None, [])
        )
        self.session = self._open(edited)
        self._segmentation_session: Any = None if dropped else self.session
        # Row bands need the edited graph on the CPU; a profiled run (sllen-bench --layers)
        # times the one whole-frame session.
        self._bands = bands if edited is not None and not profile_file else "off"
        self._threads = threads
        self._banded: Any = None  # BandedModel, opened with the first frame that uses it
        self._last_path: str | None = None  # "whole", "bands" or "segmentation"
        free = available_memory()
        whole_limit = min(BANDS_ABOVE_BYTES, MEMORY_SHARE * free if free else BANDS_ABOVE_BYTES)
        self._band_pixels = int(whole_limit / BYTES_PER_PIXEL)  # bands="auto": larger frames
        inputs = self.session.get_inputs()
        self.input_name = inputs[0].name
        self.output_names = [o.name for o in self.session.get_outputs()]
        _check_interface(path, inputs, self.output_names)
        meta = self.session.get_modelmeta().custom_metadata_map
        used = self.session.get_providers()
        on_gpu = used[0] in _GPU_PROVIDERS
        self._on_gpu = on_gpu
        if meta.get("sllen_int8_flavour") == "tensorrt" and not on_gpu:
            warnings.warn(
                f"{path.name} is the TensorRT INT8 flavour (symmetric Q/DQ, FP16 elsewhere): "
                "ONNX Runtime on a CPU runs it about 2x slower than FP32; for the CPU export "
                "sllen-export --int8 --target cpu (sllen.int8-cpu.onnx)",
                stacklevel=2,
            )
        self._info = BackendInfo(
            backend=self.name,
            model=label,
            device=f"cuda:{device_id}" if on_gpu else "cpu",
            precision=meta.get("sllen_precision", "fp32"),
            detail=", ".join(p.replace("ExecutionProvider", "") for p in used)
            + (f", {threads} thread{'s' if threads > 1 else ''}" if threads else ""),
            has_segmentation="segmentation" in self.output_names + dropped,
            max_pixels=pixel_budget(
                meta, on_gpu, edited=edited is not None, banded=self._bands != "off"
            ),
            extra={"metadata": dict(meta), "providers": used},
        )
        self.profile_file = profile_file

    def _open(self, edited: bytes | None) -> Any:
        ort = _import_ort()
        path = self._path
        try:
            return ort.InferenceSession(edited or str(path), **self._open_args)
        except Exception as e:
            text = " ".join(str(e).split())
            if PLUGIN_OP in text:
                raise InputError(
                    f"{path}: this ONNX file uses the TensorRT attention plugin node, which ONNX "
                    "Runtime cannot run; export with --target cpu (or --attention decomposed), "
                    "or build an engine"
                ) from None
            raise InputError(f"{path}: ONNX Runtime cannot load it ({text[:300]})") from None

    @property
    def info(self) -> BackendInfo:
        return self._info

    def _use_bands(self, x: np.ndarray) -> bool:
        """Whether this frame runs in row bands (opens the BandedModel the first time)."""
        if self._bands == "off" or (
            self._bands == "auto" and x.shape[2] * x.shape[3] <= self._band_pixels
        ):
            return False
        if self._banded is None:
            from sllen.runtime.backends.banded import BandedModel, BandingUnsupported

            try:
                from sllen.runtime.backends.ort_graph import lean_model

                proto = lean_model(self._path, keep_segmentation=False)[0]
                self._banded = BandedModel(proto, threads=self._threads)
            except Exception as e:  # BandingUnsupported, or a graph the probe cannot run
                if not isinstance(e, BandingUnsupported):
                    e = BandingUnsupported(f"{type(e).__name__}: {' '.join(str(e).split())[:200]}")
                warnings.warn(f"{self._path.name}: whole frames, no row bands ({e})", stacklevel=3)
                self._bands = "off"
                meta = self._info.extra["metadata"]
                self._info = replace(self._info, max_pixels=pixel_budget(meta, on_gpu=False))
                return False
        return bool(x.shape[2] % self._banded.align == 0 and x.shape[3] % self._banded.align == 0)

    def _infer(self, x: np.ndarray, segmentation: bool) -> Outputs:
        feed = {self.input_name: x}
        path = "segmentation" if segmentation else "bands" if self._use_bands(x) else "whole"
        last, self._last_path = self._last_path, path
        shared = self._segmentation_session is self.session and "bands" not in (last, path)
        if last not in (None, path) and not shared:
            self._release(last)
        if path == "bands":
            return Outputs(self._banded.run(x), None)
        if path == "whole":
            return Outputs(self.session.run([self.output_names[0]], feed)[0], None)
        if self._segmentation_session is None:
            self._segmentation_session = self._open(
                _edited_model(self._path, keep_segmentation=True)[0]
            )
        result = self._segmentation_session.run([self.output_names[0], "segmentation"], feed)
        return Outputs(result[0], result[1])

    def end_profiling(self) -> str | None:
        """Stop ONNX Runtime's profiler; the path of its JSON trace (sllen-bench --layers)."""
        return self.session.end_profiling() if self.profile_file else None

    def _release(self, path: str) -> None:
        """Free what the arena of ``path`` (not taken by this frame) holds (ARENA_SHRINK)."""
        if self._on_gpu:
            return  # CPU arenas only, and bands never run on a GPU
        try:
            if path == "bands":
                if self._banded is not None:
                    self._banded.release()
                return
            session = self.session if path == "whole" else self._segmentation_session
            if session is None:
                return
            shape = session.get_inputs()[0].shape
            channels = shape[1] if isinstance(shape[1], int) else 3
            tiny = np.zeros((1, channels, RELEASE_SIZE, RELEASE_SIZE), np.float32)
            session.run(self.output_names[:1], {self.input_name: tiny}, arena_shrink_options())
        except Exception:  # memory hygiene only: a file with fixed input sizes keeps its arena
            pass

    def close(self) -> None:
        if self._banded is not None:  # the bands' arena is process-wide: leave it empty
            self._release("bands")
        self.session = self._segmentation_session = self._banded = None
        super().close()


def _check_interface(path: Path, inputs: list[Any], outputs: list[str]) -> None:
    """An sllen export takes one float32 N x 3 x H x W input of any size and names its result
    "output". Another model failed at its first frame as an ONNX Runtime error (a fixed
    224x224 input), or ran and wrote whatever it computed as "enhanced" images."""
    shape = inputs[0].shape if len(inputs) == 1 else []
    if len(inputs) != 1 or inputs[0].type != "tensor(float)" or len(shape) != 4:
        raise InputError(f"{path}: not an sllen model (expected one float32 NCHW input)")
    if isinstance(shape[1], int) and shape[1] != 3:
        raise InputError(f"{path}: not an sllen model (its input has {shape[1]} channels, not 3)")
    if isinstance(shape[2], int) or isinstance(shape[3], int):
        w, h = (d if isinstance(d, int) else "any" for d in (shape[3], shape[2]))
        raise InputError(
            f"{path}: not an sllen model (its input size is fixed: {w} wide, {h} high; sllen's "
            "exports take any size)"
        )
    if "output" not in outputs:
        raise InputError(
            f"{path}: not an sllen model (no tensor named 'output'; it has {', '.join(outputs)})"
        )
