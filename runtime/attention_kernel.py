"""The custom CUDA attention kernel (runtime/csrc) from Python, and its fallback.

``kernel_attention(q, k, v, scale)`` runs libsllen_attention's tiled, online-softmax kernel on
torch CUDA tensors: memory linear in the number of tokens, FP32 accumulation, FP16/FP32, head
sizes 32-512. Where the library is not built, does not load, or there is no CUDA device,
``available()`` is False and ``status()`` says in one line that torch's
scaled_dot_product_attention is used instead, and why.

The library is looked up in this order (first hit wins, ``find_library``):
1. ``$SLLEN_ATTENTION_LIB`` (a file, or a folder holding it); when set, nothing else is tried,
   so a wrong path is reported rather than silently replaced;
2. the CMake build folder of a source checkout: ``<repo>/build`` and its subfolders one level
   down (``cmake -S . -B build && cmake --build build``);
3. next to this package (``sllen/runtime/lib/``, ``sllen/runtime/``) and ``<sys.prefix>/lib``
   (``cmake --install build --prefix "$VIRTUAL_ENV"``).
The TensorRT plugin library (``libsllen_attention_plugin.so``, which registers its creator
under namespace "sllen" when loaded) is found the same way through ``find_plugin_library`` /
``locate_plugin_library`` and ``$SLLEN_ATTENTION_PLUGIN``; its twin
``libsllen_attention_plugin_dynamic.so`` (exports getCreators/setLoggerFinder, for
IPluginRegistry.load_library and the plugin library of version-compatible engines) through
``find_dynamic_plugin_library``.

Like all of sllen.runtime this imports neither torch (only inside functions) nor the rest of
sllen.
"""

from __future__ import annotations

import ctypes
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

ENV_LIBRARY = "SLLEN_ATTENTION_LIB"
ENV_PLUGIN = "SLLEN_ATTENTION_PLUGIN"
LIBRARY_NAMES = ("libsllen_attention.so", "sllen_attention.dll", "libsllen_attention.dylib")
PLUGIN_NAMES = ("libsllen_attention_plugin.so", "sllen_attention_plugin.dll")
DYNAMIC_PLUGIN_NAMES = (
    "libsllen_attention_plugin_dynamic.so",
    "sllen_attention_plugin_dynamic.dll",
)
API_VERSION = 1
SUPPORTED_HEAD_DIMS = (32, 64, 128, 256, 512)
BUILD_HINT = "cmake -S . -B build && cmake --build build"
# The plugin needs TensorRT's C++ headers, which pip's tensorrt wheels do not ship.
PLUGIN_BUILD_HINT = (
    "cmake -S . -B build -DTensorRT_INCLUDE_DIR=<include/ of this TensorRT release, e.g. "
    "NVIDIA/TensorRT's source at its tag> [-DTensorRT_LIBRARY=<libnvinfer.so.N>] && cmake "
    "--build build"
)

# sllen_attention.h
_FLOAT32, _FLOAT16 = 0, 1
_KERNELS = {0: "auto", 1: "tensor-core", 2: "cuda-core"}
_ERRORS = {1: "invalid argument", 2: "unsupported", 3: "CUDA error"}

_PACKAGE_DIR = Path(__file__).resolve().parent
_REPO_ROOT = _PACKAGE_DIR.parent  # runtime/ in a checkout


def _search_dirs() -> list[Path]:
    build = _REPO_ROOT / "build"
    dirs = [build]
    if build.is_dir():
        dirs += sorted(p for p in build.iterdir() if p.is_dir())
    return dirs + [_PACKAGE_DIR / "lib", _PACKAGE_DIR, Path(sys.prefix) / "lib"]


def _locate(env: str, names: tuple[str, ...], hint: str = BUILD_HINT) -> tuple[Path | None, str]:
    """(path, "") or (None, why not)."""
    value = os.environ.get(env)
    if value:
        path = Path(value).expanduser()
        if path.is_dir():
            for name in names:
                if (path / name).is_file():
                    return path / name, ""
            return None, f"{env}={value} is a folder without {names[0]}"
        if path.is_file():
            return path, ""
        return None, f"{env}={value} does not exist"
    for folder in _search_dirs():
        for name in names:
            if (folder / name).is_file():
                return folder / name, ""
    searched = ", ".join(str(d) for d in _search_dirs() if d.is_dir()) or "no build folder"
    return None, f"no {names[0]} found in {searched} (build it: {hint}; or set {env})"


def find_library() -> Path | None:
    """The kernel library: $SLLEN_ATTENTION_LIB, the build folder, or the installed location."""
    return _locate(ENV_LIBRARY, LIBRARY_NAMES)[0]


def find_plugin_library() -> Path | None:
    """The TensorRT plugin library, searched like find_library ($SLLEN_ATTENTION_PLUGIN)."""
    return locate_plugin_library()[0]


def locate_plugin_library() -> tuple[Path | None, str]:
    """(the TensorRT plugin library, "") or (None, one line: where it was searched, how to
    build it)."""
    return _locate(ENV_PLUGIN, PLUGIN_NAMES, PLUGIN_BUILD_HINT)


def find_dynamic_plugin_library(beside: str | os.PathLike[str] | None = None) -> Path | None:
    """libsllen_attention_plugin_dynamic.so: beside `beside` (a plugin library) when given,
    else where find_plugin_library searches (without the environment variable)."""
    folders = [Path(beside).parent] if beside is not None else _search_dirs()
    for folder in folders:
        for name in DYNAMIC_PLUGIN_NAMES:
            if (folder / name).is_file():
                return folder / name
    return None


_cache: dict[str, Any] = {"path": None, "lib": None, "reason": ""}


def _bind(lib: ctypes.CDLL) -> None:
    ptr, i64 = ctypes.c_void_p, ctypes.c_int64
    args: list[type[ctypes._SimpleCData[Any]]]
    args = [ptr, ptr, ptr, ptr, i64, i64, i64, i64, ctypes.c_float, ctypes.c_int, ptr]
    lib.sllen_attention_forward.argtypes = args
    lib.sllen_attention_forward.restype = ctypes.c_int
    lib.sllen_attention_forward_ex.argtypes = [*args, ctypes.c_int]
    lib.sllen_attention_forward_ex.restype = ctypes.c_int
    for name in ("sllen_attention_supported", "sllen_attention_selected_kernel"):
        getattr(lib, name).argtypes = [i64, ctypes.c_int]
        getattr(lib, name).restype = ctypes.c_int
    lib.sllen_attention_last_error.argtypes = []
    lib.sllen_attention_last_error.restype = ctypes.c_char_p
    lib.sllen_attention_api_version.argtypes = []
    lib.sllen_attention_api_version.restype = ctypes.c_int


def _load() -> tuple[Any, str]:
    path, reason = _locate(ENV_LIBRARY, LIBRARY_NAMES)
    if path is None:
        _cache.update(path=None, lib=None, reason=reason)
        return None, reason
    if _cache["path"] == path:
        return _cache["lib"], _cache["reason"]
    lib, reason = None, ""
    try:
        candidate = ctypes.CDLL(str(path))
        _bind(candidate)
        version = candidate.sllen_attention_api_version()
        if version != API_VERSION:
            reason = f"{path} has API version {version}, this sllen needs {API_VERSION} (rebuild)"
        else:
            lib = candidate
    except (OSError, AttributeError) as exc:
        reason = f"cannot load {path}: {exc}"
    _cache.update(path=path, lib=lib, reason=reason)
    return lib, reason


def load() -> Any:
    """The loaded library (ctypes handle, argtypes set), or None; cached per library path."""
    return _load()[0]


def _torch_cuda() -> tuple[bool, str]:
    try:
        import torch
    except ImportError:
        return False, "torch is not installed"
    if not torch.cuda.is_available():
        return False, "torch sees no CUDA device"
    return True, ""


def available() -> bool:
    """True when the library is found and loads and torch has a CUDA device."""
    return load() is not None and _torch_cuda()[0]


def status() -> str:
    """One line: which attention implementation the PyTorch backend will use, and why."""
    lib, reason = _load()
    if lib is None:
        return f"torch scaled_dot_product_attention: {reason}"
    ok, why = _torch_cuda()
    if not ok:
        return (
            f"torch scaled_dot_product_attention: kernel library {_cache['path']} found but {why}"
        )
    return f"custom CUDA kernel from {_cache['path']}"


def selected_kernel(head_dim: int, dtype: Any) -> str:
    """ "tensor-core" or "cuda-core": the kernel the library picks on the current device."""
    lib = _require()
    code = lib.sllen_attention_selected_kernel(int(head_dim), _dtype_code(dtype))
    if code < 0:
        raise RuntimeError(lib.sllen_attention_last_error().decode(errors="replace"))
    return _KERNELS[code]


def _require() -> Any:
    lib, reason = _load()
    if lib is None:
        raise RuntimeError(f"the sllen attention kernel is unavailable: {reason}")
    return lib


def _dtype_code(dtype: Any) -> int:
    import torch

    if dtype == torch.float16:
        return _FLOAT16
    if dtype == torch.float32:
        return _FLOAT32
    raise TypeError(f"the sllen attention kernel takes float16 or float32 tensors, not {dtype}")


def kernel_attention(q: Any, k: Any, v: Any, scale: float, *, kernel: str = "auto") -> Any:
    """softmax(scale * q k^T) v with the custom kernel, on torch's current CUDA stream.

    q, k, v: torch CUDA tensors [batch, heads, tokens, head_dim] of one shape, device and dtype
    (float16 or float32); non-contiguous inputs are copied. Inference only (no autograd).
    kernel: "auto" (tensor cores for FP16 on sm_80+), "tensor-core" or "cuda-core".
    """
    import torch

    ok, why = _torch_cuda()
    lib = _require()
    if not ok:
        raise RuntimeError(f"the sllen attention kernel needs a CUDA device: {why}")
    tensors = {"q": q, "k": k, "v": v}
    for name, t in tensors.items():
        if not isinstance(t, torch.Tensor) or not t.is_cuda:
            raise ValueError(f"{name} must be a torch CUDA tensor")
        if t.dim() != 4:
            raise ValueError(
                f"{name} must be [batch, heads, tokens, head_dim], got {tuple(t.shape)}"
            )
    if not (q.shape == k.shape == v.shape):
        raise ValueError(
            f"q, k, v must have one shape, got {tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}"
        )
    if not (q.dtype == k.dtype == v.dtype) or not (q.device == k.device == v.device):
        raise ValueError("q, k, v must share dtype and device")
    if torch.is_grad_enabled() and any(t.requires_grad for t in tensors.values()):
        raise RuntimeError("the sllen attention kernel is forward-only: call it under no_grad")
    if kernel not in ("auto", "tensor-core", "cuda-core"):
        raise ValueError(f"kernel must be auto, tensor-core or cuda-core, not {kernel!r}")
    dtype = _dtype_code(q.dtype)
    batch, heads, tokens, head_dim = (int(x) for x in q.shape)
    if not lib.sllen_attention_supported(head_dim, dtype):
        raise ValueError(f"head_dim {head_dim} is not supported (one of {SUPPORTED_HEAD_DIMS})")
    q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
    out = torch.empty_like(q)
    code = {"auto": 0, "tensor-core": 1, "cuda-core": 2}[kernel]
    with torch.cuda.device(q.device):
        stream = torch.cuda.current_stream(q.device).cuda_stream
        rc = lib.sllen_attention_forward_ex(
            q.data_ptr(), k.data_ptr(), v.data_ptr(), out.data_ptr(),
            batch, heads, tokens, head_dim, float(scale), dtype, stream, code,
        )  # fmt: skip
    if rc != 0:
        message = lib.sllen_attention_last_error().decode(errors="replace")
        raise RuntimeError(f"sllen attention kernel: {_ERRORS.get(rc, rc)}: {message}")
    return out


def reference_attention(q: Any, k: Any, v: Any, scale: float, chunk: int = 1024) -> np.ndarray:
    """softmax(scale * q k^T) v in float64 with numpy: [..., tokens, head_dim] arrays.

    The reference the kernel is tested against (float64 result). Queries are processed in
    chunks of ``chunk`` rows, so memory is chunk x tokens, not tokens x tokens.
    """
    q64, k64, v64 = (np.asarray(x, dtype=np.float64) for x in (q, k, v))
    out = np.empty(q64.shape[:-1] + v64.shape[-1:], dtype=np.float64)
    kt = np.swapaxes(k64, -1, -2)
    for start in range(0, q64.shape[-2], chunk):
        s = (q64[..., start : start + chunk, :] @ kt) * scale
        s -= s.max(axis=-1, keepdims=True)
        p = np.exp(s)
        p /= p.sum(axis=-1, keepdims=True)
        out[..., start : start + chunk, :] = p @ v64
    return out
