"""Device buffers, one CUDA stream, events and CUDA graphs for the TensorRT backend.

One small interface (:class:`CudaBuffers`) with two implementations, chosen by
:func:`open_buffers`:

- ``torch``: CUDA tensors from torch's caching allocator, a ``torch.cuda.Stream``,
  ``torch.cuda.Event`` timing and ``torch.cuda.CUDAGraph``; used when torch with CUDA is
  importable (a desktop that also trains or exports).
- ``cuda-python``: ``cudaMalloc`` / ``cudaMallocHost`` / ``cudaMemcpyAsync`` / events / stream
  capture from cuda-python's runtime bindings, the module NVIDIA's TensorRT samples use
  (samples/python/common_runtime.py): ``cuda.bindings.runtime`` (cuda-python >= 12.6.1, and 13),
  else ``cuda.cudart`` (older 12.x; cuda-python 13 dropped it). For engine-only machines such
  as a Jetson, where torch is not installed.

Both hand TensorRT plain integers (device pointers, the stream handle), which is what
``IExecutionContext.set_tensor_address`` and ``execute_async_v3`` take. Host buffers are pinned
so the copies are truly asynchronous and the event timings split H2D / compute / D2H.

Only the selection logic is testable without a GPU; the implementations are thin and checked by
the TensorRT backend's real-GPU tests.
"""

from __future__ import annotations

import ctypes
import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from sllen.runtime.env import (
    CUDA_INSTALL_HINT,
    BackendUnavailableError,
    cudart_device_properties,
    cudart_module,
    torch_device_properties,
    torch_with_cuda,
)
from sllen.runtime.errors import InputError

IMPLEMENTATIONS = ("torch", "cuda-python")


@dataclass
class DeviceBuffer:
    """``nbytes`` of device memory at address ``ptr``; ``handle`` keeps it alive."""

    ptr: int
    nbytes: int
    handle: Any = None


@dataclass
class HostBuffer:
    """Pinned host memory seen as a flat uint8 array; ``view`` gives a typed, shaped window."""

    array: np.ndarray
    handle: Any = None

    @property
    def nbytes(self) -> int:
        return int(self.array.nbytes)

    def view(self, dtype: np.dtype | type, shape: tuple[int, ...]) -> np.ndarray:
        count = int(np.prod(shape)) * np.dtype(dtype).itemsize
        return self.array[:count].view(dtype).reshape(shape)


class CudaBuffers(ABC):
    """What the TensorRT backend needs from CUDA, on one device and one stream."""

    kind: ClassVar[str]

    def __init__(self, device: int) -> None:
        self.device = device

    @property
    @abstractmethod
    def stream_handle(self) -> int:
        """The stream as the integer ``execute_async_v3(stream_handle)`` takes."""

    @abstractmethod
    def device_properties(self) -> tuple[str, str]:
        """(GPU name, compute capability "major.minor") of this device."""

    @abstractmethod
    def alloc_device(self, nbytes: int) -> DeviceBuffer: ...

    @abstractmethod
    def alloc_host(self, nbytes: int) -> HostBuffer: ...

    @abstractmethod
    def h2d(self, dst: DeviceBuffer, src: HostBuffer, nbytes: int) -> None:
        """Copy the first ``nbytes`` host -> device, asynchronously on the stream."""

    @abstractmethod
    def d2h(self, dst: HostBuffer, src: DeviceBuffer, nbytes: int) -> None:
        """Copy the first ``nbytes`` device -> host, asynchronously on the stream."""

    @abstractmethod
    def event(self) -> Any:
        """A new timing event."""

    @abstractmethod
    def record(self, event: Any) -> None:
        """Record ``event`` on the stream."""

    @abstractmethod
    def elapsed(self, start: Any, end: Any) -> float:
        """Seconds between two recorded events (after ``synchronize``)."""

    @abstractmethod
    def synchronize(self) -> None: ...

    @abstractmethod
    def capture(self, enqueue: Callable[[], bool]) -> Any | None:
        """Capture what ``enqueue`` puts on the stream into a CUDA graph.

        Returns the graph to ``launch``, or None when the work cannot be captured (``enqueue``
        returned False or CUDA refused the capture), like trtexec's --useCudaGraph fallback.
        """

    @abstractmethod
    def launch(self, graph: Any) -> None:
        """Replay a captured graph on the stream."""

    @abstractmethod
    def release_graph(self, graph: Any) -> None: ...

    @abstractmethod
    def close(self) -> None:
        """Free every buffer, event, graph and the stream (after a synchronize)."""


# --------------------------------------------------------------------------- selection


def choose_implementation(prefer: str = "auto") -> str:
    """The implementation for ``prefer`` ("auto", "torch" or "cuda-python").

    auto: torch when it is importable and sees a CUDA GPU, else cuda-python. Raises
    BackendUnavailableError (one line, with the install command) when neither is usable.
    """
    if prefer not in ("auto", *IMPLEMENTATIONS):
        raise InputError(f"buffers must be auto, torch or cuda-python, not {prefer!r}")
    if prefer in ("auto", "torch") and torch_with_cuda() is not None:
        return "torch"
    if prefer == "torch":
        raise BackendUnavailableError("torch with CUDA is not available for the TensorRT buffers")
    if cudart_module() is not None:
        return "cuda-python"
    if prefer == "cuda-python":
        raise BackendUnavailableError(f"cuda-python is not installed: {CUDA_INSTALL_HINT}")
    raise BackendUnavailableError(
        f"the TensorRT backend needs CUDA buffers from torch or cuda-python: {CUDA_INSTALL_HINT}"
    )


def open_buffers(device: int = 0, prefer: str = "auto") -> CudaBuffers:
    """Open the buffer layer on CUDA device ``device`` (see :func:`choose_implementation`)."""
    kind = choose_implementation(prefer)
    if kind == "torch":
        return TorchBuffers(device)
    module = cudart_module()
    assert module is not None  # choose_implementation checked it
    return CudaPythonBuffers(device, module)


# --------------------------------------------------------------------------- torch


class TorchBuffers(CudaBuffers):
    kind = "torch"

    def __init__(self, device: int) -> None:
        super().__init__(device)
        self._torch = torch = importlib.import_module("torch")
        count = torch.cuda.device_count()
        if not 0 <= device < count:
            raise BackendUnavailableError(f"no CUDA device {device} (torch sees {count})")
        torch.cuda.set_device(device)
        self._device = torch.device("cuda", device)
        self._stream = torch.cuda.Stream(device=self._device)
        self._keep: list[Any] = []

    @property
    def stream_handle(self) -> int:
        return int(self._stream.cuda_stream)

    def device_properties(self) -> tuple[str, str]:
        return torch_device_properties(self._torch, self.device)

    def alloc_device(self, nbytes: int) -> DeviceBuffer:
        t = self._torch.empty(max(nbytes, 1), dtype=self._torch.uint8, device=self._device)
        self._keep.append(t)
        return DeviceBuffer(int(t.data_ptr()), nbytes, t)

    def alloc_host(self, nbytes: int) -> HostBuffer:
        t = self._torch.empty(max(nbytes, 1), dtype=self._torch.uint8, pin_memory=True)
        self._keep.append(t)
        return HostBuffer(t.numpy(), t)

    def h2d(self, dst: DeviceBuffer, src: HostBuffer, nbytes: int) -> None:
        with self._torch.cuda.stream(self._stream):
            dst.handle[:nbytes].copy_(src.handle[:nbytes], non_blocking=True)

    def d2h(self, dst: HostBuffer, src: DeviceBuffer, nbytes: int) -> None:
        with self._torch.cuda.stream(self._stream):
            dst.handle[:nbytes].copy_(src.handle[:nbytes], non_blocking=True)

    def event(self) -> Any:
        return self._torch.cuda.Event(enable_timing=True)

    def record(self, event: Any) -> None:
        event.record(self._stream)

    def elapsed(self, start: Any, end: Any) -> float:
        return float(start.elapsed_time(end)) / 1e3  # elapsed_time is in milliseconds

    def synchronize(self) -> None:
        self._stream.synchronize()

    def capture(self, enqueue: Callable[[], bool]) -> Any | None:
        graph = self._torch.cuda.CUDAGraph()
        ok = False
        try:
            # thread_local: like trtexec (cudaStreamCaptureModeThreadLocal), other threads'
            # CUDA calls (a video decoder) do not invalidate the capture.
            with self._torch.cuda.graph(
                graph, stream=self._stream, capture_error_mode="thread_local"
            ):
                ok = bool(enqueue())
        except RuntimeError:
            return None
        if not ok:
            graph.reset()
            return None
        return graph

    def launch(self, graph: Any) -> None:
        with self._torch.cuda.stream(self._stream):  # replay() launches on the current stream
            graph.replay()

    def release_graph(self, graph: Any) -> None:
        graph.reset()

    def close(self) -> None:
        self._stream.synchronize()
        self._keep.clear()


# --------------------------------------------------------------------------- cuda-python


class CudaPythonBuffers(CudaBuffers):
    """cuda-python runtime calls; every call returns (cudaError_t, *results)."""

    kind = "cuda-python"

    def __init__(self, device: int, cudart: Any) -> None:
        super().__init__(device)
        self._rt = cudart
        count = self._call(cudart.cudaGetDeviceCount(), "cudaGetDeviceCount")
        if not 0 <= device < count:
            raise BackendUnavailableError(f"no CUDA device {device} (CUDA sees {count})")
        self._call(cudart.cudaSetDevice(device), "cudaSetDevice")
        self._stream = self._call(cudart.cudaStreamCreate(), "cudaStreamCreate")
        self._device_ptrs: list[int] = []
        self._host_ptrs: list[int] = []
        self._events: list[Any] = []

    def _call(self, result: tuple[Any, ...], what: str) -> Any:
        err, *values = result
        if err != self._rt.cudaError_t.cudaSuccess:
            name = getattr(err, "name", str(err))
            raise RuntimeError(f"{what} failed on CUDA device {self.device}: {name}")
        return values[0] if len(values) == 1 else (tuple(values) or None)

    @property
    def stream_handle(self) -> int:
        return int(self._stream)  # the cudaStream_t address (cuda-python "Tips and Tricks")

    def device_properties(self) -> tuple[str, str]:
        return cudart_device_properties(self._rt, self.device)

    def alloc_device(self, nbytes: int) -> DeviceBuffer:
        ptr = int(self._call(self._rt.cudaMalloc(max(nbytes, 1)), "cudaMalloc"))
        self._device_ptrs.append(ptr)
        return DeviceBuffer(ptr, nbytes)

    def alloc_host(self, nbytes: int) -> HostBuffer:
        size = max(nbytes, 1)
        ptr = int(self._call(self._rt.cudaMallocHost(size), "cudaMallocHost"))
        self._host_ptrs.append(ptr)
        array = np.ctypeslib.as_array(ctypes.cast(ptr, ctypes.POINTER(ctypes.c_uint8)), (size,))
        return HostBuffer(array, ptr)

    def _copy(self, dst: int, src: int, nbytes: int, kind: Any) -> None:
        self._call(
            self._rt.cudaMemcpyAsync(dst, src, nbytes, kind, self._stream), "cudaMemcpyAsync"
        )

    def h2d(self, dst: DeviceBuffer, src: HostBuffer, nbytes: int) -> None:
        kind = self._rt.cudaMemcpyKind.cudaMemcpyHostToDevice
        self._copy(dst.ptr, src.array.ctypes.data, nbytes, kind)

    def d2h(self, dst: HostBuffer, src: DeviceBuffer, nbytes: int) -> None:
        kind = self._rt.cudaMemcpyKind.cudaMemcpyDeviceToHost
        self._copy(dst.array.ctypes.data, src.ptr, nbytes, kind)

    def event(self) -> Any:
        event = self._call(self._rt.cudaEventCreate(), "cudaEventCreate")
        self._events.append(event)
        return event

    def record(self, event: Any) -> None:
        self._call(self._rt.cudaEventRecord(event, self._stream), "cudaEventRecord")

    def elapsed(self, start: Any, end: Any) -> float:
        ms = self._call(self._rt.cudaEventElapsedTime(start, end), "cudaEventElapsedTime")
        return float(ms) / 1e3

    def synchronize(self) -> None:
        self._call(self._rt.cudaStreamSynchronize(self._stream), "cudaStreamSynchronize")

    def capture(self, enqueue: Callable[[], bool]) -> Any | None:
        rt = self._rt
        mode = rt.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal  # as trtexec does
        self._call(rt.cudaStreamBeginCapture(self._stream, mode), "cudaStreamBeginCapture")
        ok = False
        try:
            ok = bool(enqueue())
        finally:
            err, graph = rt.cudaStreamEndCapture(self._stream)
        if err != rt.cudaError_t.cudaSuccess or not ok:
            if err == rt.cudaError_t.cudaSuccess:
                rt.cudaGraphDestroy(graph)
            rt.cudaGetLastError()  # clear the capture error so later calls do not see it
            return None
        try:
            err, graph_exec = rt.cudaGraphInstantiate(graph, 0)  # cuda-python 12+: (graph, flags)
        finally:
            rt.cudaGraphDestroy(graph)
        return graph_exec if err == rt.cudaError_t.cudaSuccess else None

    def launch(self, graph: Any) -> None:
        self._call(self._rt.cudaGraphLaunch(graph, self._stream), "cudaGraphLaunch")

    def release_graph(self, graph: Any) -> None:
        self._rt.cudaGraphExecDestroy(graph)

    def close(self) -> None:
        rt = self._rt
        rt.cudaStreamSynchronize(self._stream)
        for event in self._events:
            rt.cudaEventDestroy(event)
        for ptr in self._device_ptrs:
            rt.cudaFree(ptr)
        for ptr in self._host_ptrs:
            rt.cudaFreeHost(ptr)
        self._events, self._device_ptrs, self._host_ptrs = [], [], []
        rt.cudaStreamDestroy(self._stream)
