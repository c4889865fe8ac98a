"""What this machine offers the runtime and the engine builder: libraries, TensorRT, the GPU.

The one implementation of these checks, below every other module that needs them:

- :func:`installed`: whether a library can be imported, without importing it;
- TensorRT: :func:`tensorrt_available` / :func:`import_tensorrt` (10.x or 11.x, else one line
  saying how to get it), :func:`trt_major`;
- the CUDA GPU: :func:`detect_gpu` (name and compute capability, recorded in engine metadata
  and checked before an engine is run), :func:`select_device`, through torch when it has CUDA,
  else cuda-python's runtime module (:func:`cudart_module`), the module NVIDIA's TensorRT
  samples use (samples/python/common_runtime.py);
- plugin libraries: :func:`load_plugin_library`, one registry per process, so a library loaded
  by the engine builder (sllen.export.trt) is registered for the runtime's backend too. Both
  kinds of plugin library load: one that registers its creators when loaded (sllen's
  libsllen_attention_plugin.so), and a "plugin shared library" that exports getCreators()
  (libsllen_attention_plugin_dynamic.so), whose creators TensorRT's registry registers
  (IPluginRegistry.load_library, the path of trtexec --dynamicPlugins).

sllen.runtime.cuda_buffers, sllen.runtime.backends and sllen.export.trt import from here; this
module imports nothing of sllen and no heavy library at module level (torch, tensorrt and
cuda-python are imported only when a function asks for them).
"""

from __future__ import annotations

import ctypes
import importlib
import importlib.util
import os
from pathlib import Path
from typing import Any

from sllen.runtime.errors import InputError, MissingFileError, SllenError

MIN_TRT_MAJOR = 10
# cuda-python's runtime module: the 12.6.1+/13 name first, then the 12.x name 13 removed.
CUDART_MODULES = ("cuda.bindings.runtime", "cuda.cudart")


class BackendUnavailableError(SllenError, RuntimeError):
    """The backend's library (tensorrt, onnxruntime, torch) or device is not there."""

    user_error = True  # the CLI prints the message as one line, exit code 2


# --------------------------------------------------------------------------- libraries


def _hidden(module: str) -> bool:
    # SLLEN_HIDE_TORCH=1 etc. lets tests and users pretend a library is absent.
    return bool(os.environ.get(f"SLLEN_HIDE_{module.upper().replace('.', '_')}"))


def installed(module: str) -> bool:
    """Whether `module` can be imported, without importing it (torch takes seconds)."""
    if _hidden(module):
        return False
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


# --------------------------------------------------------------------------- TensorRT


def trt_major(version: str) -> int:
    """The major version of a TensorRT version string ("10.3.0" -> 10)."""
    try:
        return int(str(version).split(".")[0])
    except ValueError:
        raise RuntimeError(f"cannot read the TensorRT version {version!r}") from None


def _tensorrt() -> tuple[Any, str]:
    """(the tensorrt module, "TensorRT 10.3.0") or (None, why it cannot be used)."""
    try:
        trt = importlib.import_module("tensorrt")
    except ImportError as exc:
        return None, (
            f"TensorRT is not installed ({exc}); on Jetson use the system TensorRT (JetPack 6: "
            "10.3) from a venv made with --system-site-packages, elsewhere NVIDIA's tensorrt "
            "wheel (pip install tensorrt)"
        )
    except OSError as exc:  # the bindings import but libnvinfer does not load
        return None, f"TensorRT is installed but its libraries do not load ({exc})"
    version = getattr(trt, "__version__", "unknown")
    try:
        major = trt_major(version)
    except RuntimeError as exc:
        return None, str(exc)
    if major < MIN_TRT_MAJOR:
        return None, (
            f"TensorRT {version} is too old: sllen builds strongly typed networks, and its "
            "engines need TensorRT 10.x or 11.x"
        )
    return trt, f"TensorRT {version}"


def tensorrt_available() -> tuple[bool, str]:
    """(True, "TensorRT 10.3.0") when `import tensorrt` works and is 10.x or newer, else why not."""
    trt, reason = _tensorrt()
    return trt is not None, reason


def import_tensorrt() -> Any:
    """The tensorrt module (10.x or 11.x), or BackendUnavailableError saying how to get it."""
    trt, reason = _tensorrt()
    if trt is None:
        raise BackendUnavailableError(reason)
    return trt


# --------------------------------------------------------------------------- CUDA GPU


def torch_with_cuda() -> Any | None:
    """The torch module when it imports and sees a CUDA GPU, else None."""
    if _hidden("torch"):
        return None
    try:
        torch = importlib.import_module("torch")
    except ImportError:
        return None
    return torch if torch.cuda.is_available() else None


def cudart_module() -> Any | None:
    """cuda-python's runtime module (CUDART_MODULES, in that order), or None."""
    if _hidden("cuda"):
        return None
    for name in CUDART_MODULES:
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    return None


# What gives sllen the GPU's properties and, for the TensorRT backend, its CUDA buffers.
CUDA_INSTALL_HINT = (
    "install cuda-python matching the CUDA major version (CUDA 12 / JetPack 6: "
    "pip install 'cuda-python>=12,<13'; CUDA 13: pip install 'cuda-python>=13') or torch with CUDA"
)


def torch_device_properties(torch: Any, device: int) -> tuple[str, str]:
    """(GPU name, compute capability "major.minor") from torch.cuda.get_device_properties."""
    props = torch.cuda.get_device_properties(device)
    return str(props.name), f"{props.major}.{props.minor}"


def cudart_device_properties(cudart: Any, device: int) -> tuple[str, str]:
    """(GPU name, compute capability) from cuda-python's cudaGetDeviceProperties."""
    err, props = cudart.cudaGetDeviceProperties(device)
    if err != cudart.cudaError_t.cudaSuccess:
        raise RuntimeError(
            f"cudaGetDeviceProperties({device}) failed: {getattr(err, 'name', str(err))}"
        )
    name = props.name.decode(errors="replace") if isinstance(props.name, bytes) else props.name
    return str(name).rstrip("\x00"), f"{props.major}.{props.minor}"


def detect_gpu(device: int = 0) -> tuple[str, str]:
    """(GPU name, compute capability "major.minor") of CUDA device `device`.

    torch.cuda when torch with CUDA is importable, else cuda-python's cudaGetDeviceProperties
    (cuda.bindings.runtime on cuda-python 13, cuda.cudart on 12.x).
    """
    torch = torch_with_cuda()
    if torch is not None:
        return torch_device_properties(torch, device)
    cudart = cudart_module()
    if cudart is not None:
        return cudart_device_properties(cudart, device)
    # a missing package, not a bug: one line and exit 2 in every command
    raise BackendUnavailableError(
        f"cannot read the GPU name and compute capability: {CUDA_INSTALL_HINT}"
    )


def select_device(device: int) -> None:
    """Make CUDA device `device` current: TensorRT builds for the current device."""
    torch = torch_with_cuda()
    if torch is not None:
        torch.cuda.set_device(device)
        return
    cudart = cudart_module()
    if cudart is not None:
        (err,) = cudart.cudaSetDevice(device)
        if err != cudart.cudaError_t.cudaSuccess:
            raise InputError(f"cannot use CUDA device {device}: {err}")
        return
    raise RuntimeError("cannot select a CUDA device: install torch with CUDA or cuda-python")


# --------------------------------------------------------------------------- plugin libraries


def _dlopen(path: Path) -> Any:
    # samples/python/onnx_custom_plugin/load_plugin_lib.py: loading the library runs its
    # REGISTER_TENSORRT_PLUGIN static initialisers, which put the creators in TensorRT's plugin
    # registry; RTLD_GLOBAL keeps its symbols visible to libnvinfer.
    return ctypes.CDLL(str(path), mode=ctypes.RTLD_GLOBAL)


def _exports(handle: Any, symbol: str) -> bool:
    # ctypes resolves attributes with dlsym: True when the library exports `symbol`.
    try:
        return handle is not None and getattr(handle, symbol, None) is not None
    except (AttributeError, OSError, TypeError):
        return False


_loaded_plugins: dict[str, Any] = {}


def load_plugin_library(path: str | os.PathLike[str]) -> Path:
    """Load a plugin library once per process (before parsing or deserializing).

    A library that exports getCreators() (a plugin shared library, samples/trtexec/README.md)
    registers nothing by itself: its creators are handed to TensorRT's registry with
    ``tensorrt.get_plugin_registry().load_library(path)`` (IPluginRegistry::loadLibrary, which
    returns None "if any of the plugins are already registered").
    """
    lib = Path(path).resolve()
    if not lib.is_file():
        raise MissingFileError(
            f"plugin library {lib} does not exist (build runtime/csrc with CMake against this "
            "TensorRT)"
        )
    if str(lib) not in _loaded_plugins:
        try:
            handle = _dlopen(lib)
        except OSError as exc:
            raise BackendUnavailableError(f"cannot load plugin library {lib}: {exc}") from None
        if _exports(handle, "getCreators"):
            registry = import_tensorrt().get_plugin_registry()
            if registry.load_library(str(lib)) is None:
                raise BackendUnavailableError(
                    f"TensorRT's plugin registry refused {lib} (IPluginRegistry.load_library "
                    "returned None: its creators are registered already, e.g. by the "
                    "self-registering libsllen_attention_plugin.so loaded in this process; load "
                    "one of the two libraries, not both)"
                )
        _loaded_plugins[str(lib)] = handle
    return lib
