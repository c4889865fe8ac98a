"""TensorRT backend: runs an engine built by ``sllen-export`` on a CUDA GPU.

What it does, in order, when opened:

1. reads ``<engine>.json`` (sllen.runtime.engine_meta) and refuses an engine built for another
   TensorRT version or GPU with one line that holds the rebuild command;
2. loads the attention plugin library, if the engine uses it, before deserializing;
3. deserializes with ``Runtime.deserialize_cuda_engine`` and reads the I/O by name
   (``num_io_tensors``, ``get_tensor_name``, ``get_tensor_mode``, ``get_tensor_dtype``,
   ``get_tensor_profile_shape``); only float32 I/O is accepted (sllen's ONNX files keep
   float32 inputs and outputs whatever the precision inside);
4. allocates device and pinned host buffers for the profile's largest shape on its own CUDA
   stream (sllen.runtime.cuda_buffers: torch when present, else cuda-python).

Per batch: ``set_input_shape`` (only when the shape changes), the output shapes from the
context after that, ``set_tensor_address`` for every I/O tensor, then H2D copy,
``execute_async_v3(stream)`` and D2H copy, each bracketed by CUDA events for the timing split.
With ``cuda_graph=True`` the enqueue is captured into a CUDA graph after one warm-up enqueue
for the shape (TensorRT does deferred work on the first enqueue after a shape change; trtexec's
--useCudaGraph does the same) and replayed while the shape stays; a new shape drops the graph
and captures again. An engine whose enqueue cannot be captured falls back to plain enqueues.

TensorRT API names follow the Python bindings of 10.x and 11.x (python/src/infer/pyCore.cpp,
the "ICudaEngine" / "IExecutionContext" / "Runtime" pages): 11.x keeps only
``device_memory_size_v2``, 10.0 only ``device_memory_size``.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from sllen.runtime import cuda_buffers
from sllen.runtime.backends.base import (
    Backend,
    BackendInfo,
    InputError,
    Outputs,
    Timing,
)
from sllen.runtime.engine_meta import (
    EngineIncompatibleError,
    check_compatible,
    read_metadata,
    rebuild_command,
)

# One implementation of the TensorRT import and of plugin loading, shared with the engine
# builder (sllen.export.trt): a library loaded by either side is registered for both.
from sllen.runtime.env import BackendUnavailableError, import_tensorrt, load_plugin_library
from sllen.runtime.errors import MissingFileError

IMAGE_OUTPUT = "output"
SEGMENTATION_OUTPUT = "segmentation"


class EngineMismatchError(EngineIncompatibleError, ValueError):
    """An engine for another TensorRT or GPU. Also a ValueError: the user fixes it by rebuilding,
    so the CLI prints its one line (with the rebuild command) instead of a bug report."""


class EngineLoadError(InputError):
    """The engine file cannot be used: not deserializable, or not an sllen engine."""


# --------------------------------------------------------------------------- helpers


def parse_device(device: str) -> int:
    """The CUDA device index: "auto" / "cuda" -> 0, "cuda:N" -> N; anything else is refused."""
    if device in ("auto", "cuda"):
        return 0
    if device.startswith("cuda:") and device[5:].isdigit():
        return int(device[5:])
    raise InputError(
        f"the tensorrt backend runs on a CUDA GPU: --device cuda or cuda:N, not {device!r}"
    )


def _library_from_kernel_module() -> Path | None:
    """sllen.runtime.attention_kernel.find_plugin_library(), where that module exists."""
    try:
        module = importlib.import_module("sllen.runtime.attention_kernel")
    except ImportError:
        return None
    find = getattr(module, "find_plugin_library", None)
    found = find() if callable(find) else None
    return Path(found) if found else None


def resolve_plugin_library(
    engine_path: Path, meta: dict[str, Any], explicit: str | os.PathLike[str] | None
) -> Path | None:
    """The plugin library to load for this engine, or None when it needs none.

    Order: the explicit option; none for a version-compatible engine that carries its plugin
    library (TensorRT loads it from the plan: trtexec's README, "--setPluginsToSerialize"; a
    host library built against this machine's TensorRT would register the same creator
    twice); the library named in the metadata (absolute, or beside the engine: sllen-export
    records the file name); attention_kernel.find_plugin_library().
    """
    if explicit is not None:
        path = Path(explicit)
        if not path.is_file():
            raise MissingFileError(f"plugin library {path} does not exist")
        return path
    if carries_plugin(meta):
        return None
    named = meta.get("plugin_library")
    if not named and (meta.get("attention") or {}).get("mode") != "plugin":
        return None
    if named:
        beside = engine_path.parent / Path(named).name
        # A relative name is looked up beside the engine only, never in the working directory.
        candidates = (Path(named), beside) if Path(named).is_absolute() else (beside,)
        for candidate in candidates:
            if candidate.is_file():
                return candidate
    found = _library_from_kernel_module()
    if found is not None and found.is_file():
        return found
    raise MissingFileError(
        f"{engine_path} uses the sllen attention plugin ({named or 'plugin library'}), which was "
        "not found beside the engine nor by sllen.runtime.attention_kernel; build runtime/csrc "
        "with CMake against this TensorRT and copy the library beside the engine, or pass "
        "plugin_library=PATH"
    )


def carries_plugin(meta: dict[str, Any]) -> bool:
    """The engine was built version compatible with its plugin library serialized into it."""
    return bool(meta.get("version_compatible") and meta.get("plugins_serialized"))


def _dims(shape: Any) -> tuple[int, ...]:
    return tuple(int(d) for d in shape)


def _nbytes(shape: tuple[int, ...]) -> int:
    return int(np.prod(shape, dtype=np.int64)) * 4  # float32 I/O only


# --------------------------------------------------------------------------- backend


class TensorRTBackend(Backend):
    name = "tensorrt"

    def __init__(
        self,
        model: str | os.PathLike[str],
        *,
        device: str = "auto",
        cuda_graph: bool = False,
        plugin_library: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__()
        self._buffers: cuda_buffers.CudaBuffers | None = None
        self._graph: Any = None
        path = Path(model)
        if not path.is_file():
            raise MissingFileError(f"{path}: no such engine file")
        index = parse_device(device)
        # TensorRT first: without it no engine runs here, and the metadata's "rebuild it on
        # this machine" would send the user to a command that cannot work either
        try:
            trt = import_tensorrt()
        except BackendUnavailableError as e:
            raise BackendUnavailableError(f"{path.name}: {e}") from None
        meta = read_metadata(path)
        buffers = cuda_buffers.open_buffers(index)
        self._buffers = buffers
        try:
            self._open(trt, path, meta, index, cuda_graph, plugin_library)
        except BaseException:
            with contextlib.suppress(Exception):  # keep the original error, not a cleanup one
                self.close()
            raise

    def _open(
        self,
        trt: Any,
        path: Path,
        meta: dict[str, Any],
        index: int,
        cuda_graph: bool,
        plugin_library: str | os.PathLike[str] | None,
    ) -> None:
        buffers = self._buffers
        assert buffers is not None
        gpu_name, cc = buffers.device_properties()
        try:
            check_compatible(meta, trt.__version__, gpu_name, cc)
        except EngineIncompatibleError as exc:
            raise EngineMismatchError(f"{path}: {exc}") from None

        plugin = resolve_plugin_library(path, meta, plugin_library)
        if plugin is not None:
            plugin = load_plugin_library(plugin)  # creators registered before deserializing

        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        if meta.get("dla_core") is not None:
            self._runtime.DLA_core = int(meta["dla_core"])
        if meta.get("version_compatible"):
            self._runtime.engine_host_code_allowed = True  # the embedded lean runtime
        engine = self._runtime.deserialize_cuda_engine(path.read_bytes())
        if engine is None:
            carried = ""
            if plugin is None and carries_plugin(meta):
                carried = (
                    " (or the plugin library serialized in it did not load here: pass "
                    "--plugin / plugin_library= to load one built for this TensorRT)"
                )
            raise EngineLoadError(
                f"{path}: TensorRT {trt.__version__} could not deserialize it (a truncated or "
                "foreign file, another TensorRT build, or a plugin library that was not loaded; "
                f"TensorRT logged the reason){carried}; rebuild it with "
                f"`{rebuild_command(meta)}`"
            )
        self._engine = engine

        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        if len(inputs) != 1 or not outputs:
            raise EngineLoadError(
                f"{path}: not an sllen engine (expected one input and an output 'output', got "
                f"inputs {inputs} and outputs {outputs})"
            )
        for name in names:
            dtype = engine.get_tensor_dtype(name)
            if dtype != trt.DataType.FLOAT:
                raise EngineLoadError(
                    f"{path}: tensor '{name}' is {getattr(dtype, 'name', dtype)}, not FLOAT; the "
                    "runtime feeds float32 (sllen-export's ONNX files keep float32 I/O at every "
                    "precision): rebuild the engine from one of them"
                )
        self._input = inputs[0]
        self._outputs = outputs
        self._image_output = (
            IMAGE_OUTPUT
            if IMAGE_OUTPUT in outputs
            else next((n for n in outputs if n != SEGMENTATION_OUTPUT), outputs[0])
        )
        declared = _dims(engine.get_tensor_shape(self._input))
        if len(declared) != 4 or declared[1] not in (-1, 3):
            raise EngineLoadError(
                f"{path}: input '{self._input}' has shape {list(declared)}, not [N, 3, H, W]"
            )
        lo, opt, hi = (_dims(s) for s in engine.get_tensor_profile_shape(self._input, 0))
        self._profile = (lo, opt, hi)

        self._context = engine.create_execution_context()
        if self._context is None:
            raise RuntimeError(
                f"{path}: TensorRT could not create an execution context (out of GPU memory?)"
            )
        # Buffers for the profile's largest shape, allocated once: TensorRT sizes its own
        # activation memory for the maximum too, and fixed addresses keep CUDA graphs valid.
        self._shape: tuple[int, ...] | None = None
        self._out_shapes: dict[str, tuple[int, ...]] = {}
        self._set_input_shape(hi)
        sizes = {self._input: _nbytes(hi)}
        sizes.update({n: _nbytes(s) for n, s in self._out_shapes.items()})
        self._device = {n: buffers.alloc_device(size) for n, size in sizes.items()}
        self._host = {n: buffers.alloc_host(size) for n, size in sizes.items()}
        self._events = [buffers.event() for _ in range(4)]
        self._use_graph = bool(cuda_graph)

        device_memory = getattr(engine, "device_memory_size_v2", None)  # 10.x (newer) and 11.x
        if device_memory is None:
            device_memory = engine.device_memory_size  # 10.0 has only this one
        attention: dict[str, Any] = meta.get("attention") or {}
        labels: dict[Any, str] = {True: ", fused", False: ", not fused"}  # key: True/False/None
        fused = labels.get(attention.get("fused"), "")
        detail = (
            f"TensorRT {trt.__version__}, {gpu_name}, attention {attention.get('mode')}{fused}, "
            f"{buffers.kind} buffers" + (", CUDA graph" if cuda_graph else "")
        )
        self._info = BackendInfo(
            backend=self.name,
            model=str(path),
            device=f"cuda:{index}",
            precision=str(meta["precision"]),
            detail=detail,
            min_hw=(lo[2], lo[3]),
            opt_hw=(opt[2], opt[3]),
            max_hw=(hi[2], hi[3]),
            max_batch=hi[0],
            has_segmentation=SEGMENTATION_OUTPUT in outputs,
            extra={
                "metadata": meta,
                "tensorrt_version": str(trt.__version__),
                "gpu": gpu_name,
                "compute_capability": cc,
                "profile": {"min": list(lo), "opt": list(opt), "max": list(hi)},
                "device_memory_bytes": int(device_memory),
                "buffers": buffers.kind,
                "cuda_graph": bool(cuda_graph),
                "plugin_library": str(plugin) if plugin is not None else None,
            },
        )

    @property
    def info(self) -> BackendInfo:
        return self._info

    # ----------------------------------------------------------------------- shapes

    def _set_input_shape(self, shape: tuple[int, ...]) -> None:
        lo, _, hi = self._profile
        if any(not a <= d <= b for d, a, b in zip(shape, lo, hi, strict=True)):
            raise InputError(
                f"input {list(shape)} is outside the engine's profile (min {list(lo)}, max "
                f"{list(hi)}); rebuild the engine with a wider profile, or tile the frame"
            )
        self._shape = None  # until TensorRT has taken the new shape
        if self._graph is not None:  # captured for the old shape
            assert self._buffers is not None
            self._buffers.release_graph(self._graph)
            self._graph = None
        if not self._context.set_input_shape(self._input, shape):
            raise InputError(f"TensorRT refused input shape {list(shape)} for '{self._input}'")
        # Output shapes are only known once every input shape is set: read them from the context.
        out = {n: _dims(self._context.get_tensor_shape(n)) for n in self._outputs}
        if any(d < 0 for s in out.values() for d in s):
            raise RuntimeError(f"TensorRT left output shapes unresolved: {out}")
        self._out_shapes = out
        self._shape = shape

    def _bind(self) -> None:
        for name, buf in self._device.items():
            if not self._context.set_tensor_address(name, buf.ptr):
                raise RuntimeError(f"TensorRT refused the address of tensor '{name}'")

    # ----------------------------------------------------------------------- running

    def _enqueue(self) -> bool:
        assert self._buffers is not None
        return bool(self._context.execute_async_v3(self._buffers.stream_handle))

    def _enqueue_or_fail(self) -> None:
        if not self._enqueue():
            raise RuntimeError("TensorRT execute_async_v3 failed (TensorRT logged the reason)")

    def _compute(self) -> None:
        buffers = self._buffers
        assert buffers is not None
        if not self._use_graph:
            self._enqueue_or_fail()
            return
        if self._graph is None:
            # Warm-up enqueue for this shape, outside the capture (TensorRT's deferred updates).
            self._enqueue_or_fail()
            buffers.synchronize()
            self._graph = buffers.capture(self._enqueue)
            if self._graph is None:
                warnings.warn(
                    "this engine's enqueue cannot be captured into a CUDA graph; running "
                    "without one",
                    RuntimeWarning,
                    stacklevel=4,
                )
                self._use_graph = False
                self._enqueue_or_fail()
                return
        buffers.launch(self._graph)

    def _infer(self, x: np.ndarray, segmentation: bool) -> Outputs:
        buffers = self._buffers
        assert buffers is not None
        shape = _dims(x.shape)
        if shape != self._shape:
            self._set_input_shape(shape)
        self._bind()
        start, copied, computed, done = self._events
        np.copyto(self._host[self._input].view(np.float32, shape), x)
        buffers.record(start)
        buffers.h2d(self._device[self._input], self._host[self._input], x.nbytes)
        buffers.record(copied)
        self._compute()
        buffers.record(computed)
        wanted = [self._image_output] + ([SEGMENTATION_OUTPUT] if segmentation else [])
        for name in wanted:
            buffers.d2h(self._host[name], self._device[name], _nbytes(self._out_shapes[name]))
        buffers.record(done)
        buffers.synchronize()
        self.last_timing = Timing(
            h2d=buffers.elapsed(start, copied),
            compute=buffers.elapsed(copied, computed),
            d2h=buffers.elapsed(computed, done),
        )
        image, *seg = (self._host[n].view(np.float32, self._out_shapes[n]).copy() for n in wanted)
        return Outputs(image, seg[0] if seg else None)

    def close(self) -> None:
        buffers, self._buffers = self._buffers, None
        try:
            if buffers is not None:
                buffers.synchronize()
                if self._graph is not None:
                    buffers.release_graph(self._graph)
        finally:
            self._graph = None
            # TensorRT objects go before the memory they point into.
            self._context = self._engine = self._runtime = None
            if buffers is not None:
                buffers.close()
            super().close()
