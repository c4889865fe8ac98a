"""sllen.runtime.env: TensorRT's version check, the GPU query and plugin loading, shared by the
runtime's TensorRT backend and the engine builder (sllen.export.trt).

`tensorrt` is the shared MOCK (tests/fakes/fake_tensorrt.py: TensorRT cannot be installed
here); cuda-python and torch are stood in for by namespaces with the few calls used.
"""

from __future__ import annotations

import enum
import sys
import types

import pytest

from sllen.runtime import env

# --------------------------------------------------------------------------- TensorRT


def test_tensorrt_available_reports_why_not(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # import tensorrt -> ImportError
    ok, reason = env.tensorrt_available()
    assert not ok and "TensorRT is not installed" in reason and "system-site-packages" in reason


def test_tensorrt_8_is_too_old(fake_trt):
    fake_trt("8.6.1")
    ok, reason = env.tensorrt_available()
    assert not ok and "8.6.1 is too old" in reason


def test_tensorrt_10_and_11_are_accepted(fake_trt):
    for version in ("10.3.0", "11.4.1"):
        fake_trt(version)
        assert env.tensorrt_available() == (True, f"TensorRT {version}")


def test_tensorrt_that_fails_to_load_or_has_no_version(fake_trt, monkeypatch):
    fake_trt("dev")
    ok, reason = env.tensorrt_available()
    assert not ok and "cannot read the TensorRT version 'dev'" in reason

    class BrokenLibrary:
        def find_spec(self, name, path=None, target=None):
            if name == "tensorrt":
                raise OSError("libnvinfer.so.10: cannot open shared object file")
            return None

    monkeypatch.delitem(sys.modules, "tensorrt")
    monkeypatch.setattr(sys, "meta_path", [BrokenLibrary(), *sys.meta_path])
    ok, reason = env.tensorrt_available()
    assert not ok and "libraries do not load" in reason and "libnvinfer" in reason


# --------------------------------------------------------------------------- GPU


def test_detect_gpu_without_cuda(monkeypatch):
    for name in ("torch", "cuda.bindings.runtime", "cuda.cudart"):
        monkeypatch.setitem(sys.modules, name, None)
    # a user error naming what to install (it was a RuntimeError: exit 1, "a bug")
    with pytest.raises(env.BackendUnavailableError, match="cannot read the GPU name.*cuda-python"):
        env.detect_gpu()


def test_detect_gpu_through_cuda_python(monkeypatch):
    class Err(enum.Enum):
        cudaSuccess = 0

    props = types.SimpleNamespace(name=b"Orin\x00", major=8, minor=7)
    cudart = types.SimpleNamespace(
        cudaError_t=Err, cudaGetDeviceProperties=lambda device: (Err.cudaSuccess, props)
    )
    monkeypatch.setitem(sys.modules, "torch", None)
    monkeypatch.setitem(sys.modules, "cuda.bindings.runtime", None)
    monkeypatch.setitem(sys.modules, "cuda.cudart", cudart)
    assert env.detect_gpu() == ("Orin", "8.7")


def test_detect_gpu_through_torch(monkeypatch):
    props = types.SimpleNamespace(name="NVIDIA H100 80GB HBM3", major=9, minor=0)
    cuda = types.SimpleNamespace(is_available=lambda: True, get_device_properties=lambda d: props)
    monkeypatch.setitem(sys.modules, "torch", types.SimpleNamespace(cuda=cuda))
    assert env.detect_gpu() == ("NVIDIA H100 80GB HBM3", "9.0")


def test_detect_gpu_cuda_python_error(monkeypatch):
    class Err(enum.Enum):
        cudaSuccess = 0
        cudaErrorNoDevice = 100

    cudart = types.SimpleNamespace(
        cudaError_t=Err, cudaGetDeviceProperties=lambda device: (Err.cudaErrorNoDevice, None)
    )
    monkeypatch.setitem(sys.modules, "torch", None)
    monkeypatch.setitem(sys.modules, "cuda.bindings.runtime", cudart)
    with pytest.raises(RuntimeError, match="cudaGetDeviceProperties\\(0\\) failed"):
        env.detect_gpu()


# --------------------------------------------------------------------------- plugin libraries


def test_real_dlopen_reports_a_bad_library(tmp_path):
    bad = tmp_path / "libnot_a_library.so"
    bad.write_bytes(b"not an ELF file")
    with pytest.raises(OSError):
        env._dlopen(bad)


class _Handle:
    """What ctypes.CDLL gives for a library; `getCreators` only on the dynamic one."""

    def __init__(self, exports: bool) -> None:
        if exports:
            self.getCreators = object()


def test_self_registering_library_is_only_dlopened(fake_trt, monkeypatch, tmp_path):
    trt = fake_trt()
    monkeypatch.setattr(env, "_dlopen", lambda path: _Handle(exports=False))
    lib = tmp_path / "libsllen_attention_plugin.so"
    lib.write_bytes(b"\x7fELF")
    assert env.load_plugin_library(lib) == lib.resolve()
    assert "load_library" not in [c[0] for c in trt.calls]


def test_dynamic_plugin_library_goes_through_the_registry(fake_trt, monkeypatch, tmp_path):
    # A plugin shared library (exports getCreators) registers nothing when dlopened: TensorRT's
    # registry registers its creators (IPluginRegistry.load_library), once per process.
    trt = fake_trt()
    monkeypatch.setattr(env, "_dlopen", lambda path: _Handle(exports=True))
    lib = tmp_path / "libsllen_attention_plugin_dynamic.so"
    lib.write_bytes(b"\x7fELF")
    env.load_plugin_library(lib)
    env.load_plugin_library(lib)
    assert [c for c in trt.calls if c[0] == "load_library"] == [
        ("load_library", str(lib.resolve()))
    ]
    assert trt.get_plugin_registry().get_creator("SllenAttention", "1", "sllen") is not None


def test_dynamic_plugin_library_refused_by_the_registry(fake_trt, monkeypatch, tmp_path):
    fake_trt(load_library_ok=False)
    monkeypatch.setattr(env, "_dlopen", lambda path: _Handle(exports=True))
    lib = tmp_path / "libsllen_attention_plugin_dynamic.so"
    lib.write_bytes(b"\x7fELF")
    with pytest.raises(env.BackendUnavailableError, match="registered already.*not both"):
        env.load_plugin_library(lib)
    assert str(lib.resolve()) not in env._loaded_plugins
