"""The TensorRT backend, checked against a MOCK `tensorrt` module and a fake CUDA buffer layer.

TensorRT cannot be installed on the development machines (its PyPI wheels are placeholders that
download the libraries from NVIDIA's index, which is out of reach) and there is no GPU, so most
tests here install the shared FAKE `tensorrt` module (tests/fakes/fake_tensorrt.py, through the
`fake_trt` fixture of tests/conftest.py). It is a mock, not TensorRT: it records the calls the
backend makes and offers only names of the documented Python API (python/src/infer/pyCore.cpp
of NVIDIA/TensorRT; the 10.x and 11.x "Runtime", "ICudaEngine" and "IExecutionContext" pages):
Runtime.deserialize_cuda_engine / DLA_core / engine_host_code_allowed;
ICudaEngine.num_io_tensors, get_tensor_name, get_tensor_mode, get_tensor_dtype,
get_tensor_shape, get_tensor_profile_shape, create_execution_context, device_memory_size (10.x)
/ device_memory_size_v2 (10.1+, the only one in 11.x); IExecutionContext.set_input_shape,
get_tensor_shape, set_tensor_address, execute_async_v3. A misspelt name fails here. The fake
engine computes output = 1 - input on "device memory" held by FakeBuffers (numpy arrays behind
fake addresses), so the data path H2D -> enqueue -> D2H is checked end to end, CUDA-graph
replays included.

Whether TensorRT really runs the engines is checked by TestRealTensorRT, which runs only where
`tensorrt` imports and a CUDA GPU is present.
"""

from __future__ import annotations

import importlib.machinery
import sys
import types
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fake_tensorrt import ENGINE_BYTES, GPU, SEG_CLASSES, FakeBuffers, engine_metadata, names

from sllen.runtime import cuda_buffers, env
from sllen.runtime.backends import BackendUnavailableError, InputError, open_backend
from sllen.runtime.backends import tensorrt as trtb
from sllen.runtime.engine_meta import EngineIncompatibleError, write_metadata
from sllen.runtime.shapes import ShapeProfile


class NoGraphBuffers(FakeBuffers):
    def capture(self, enqueue) -> Any:
        self.captures += 1
        return None  # like a capture that CUDA refused


# --------------------------------------------------------------------------- fixtures


def write_engine(folder: Path, data: bytes = ENGINE_BYTES, **meta: Any) -> Path:
    engine = folder / "sllen.fp16.engine"
    engine.write_bytes(data)
    write_metadata(engine, engine_metadata(**meta))
    return engine


@pytest.fixture
def fake(fake_trt, monkeypatch):
    """install(version, buffers=None, **mock options) -> (trt mock, FakeBuffers)."""
    monkeypatch.setitem(sys.modules, "sllen.runtime.attention_kernel", None)  # no kernel module

    def install(version: str = "10.3.0", buffers: FakeBuffers | None = None, **options: Any):
        buffers = buffers or FakeBuffers()
        trt = fake_trt(version, buffers=buffers, engine_bytes=ENGINE_BYTES, **options)
        opened: list[int] = []

        def open_buffers(device: int = 0, prefer: str = "auto") -> FakeBuffers:
            opened.append(device)
            trt.calls.append(("open_buffers", device))
            return buffers

        monkeypatch.setattr(cuda_buffers, "open_buffers", open_buffers)
        return trt, buffers

    return install


def frame(n: int = 1, h: int = 64, w: int = 96, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, 3, h, w), dtype=np.float32)


# --------------------------------------------------------------------------- opening


def test_open_reads_profile_metadata_and_info(fake, tmp_path):
    trt, buffers = fake()
    engine = write_engine(tmp_path)
    with trtb.TensorRTBackend(engine) as backend:
        info = backend.info
        assert (info.backend, info.device, info.precision) == ("tensorrt", "cuda:0", "fp16")
        assert (info.min_hw, info.opt_hw, info.max_hw, info.max_batch) == (
            (32, 32),
            (64, 64),
            (128, 128),
            2,
        )
        assert not info.has_segmentation
        assert info.extra["device_memory_bytes"] == 222  # device_memory_size_v2 on 10.3
        assert "TensorRT 10.3.0" in info.describe() and GPU[0] in info.describe()
    assert buffers.closed and backend._closed


def test_open_backend_routes_engines_here_with_options(fake, tmp_path):
    trt, buffers = fake()
    engine = write_engine(tmp_path)
    with open_backend(engine, "tensorrt", device="cuda:1", cuda_graph=True) as backend:
        assert isinstance(backend, trtb.TensorRTBackend)
        assert backend.info.device == "cuda:1" and backend.info.extra["cuda_graph"] is True
    assert ("open_buffers", 1) in trt.calls


def test_device_must_be_a_gpu(fake, tmp_path):
    fake()
    engine = write_engine(tmp_path)
    with pytest.raises(ValueError, match="runs on a CUDA GPU"):
        trtb.TensorRTBackend(engine, device="cpu")
    assert trtb.parse_device("auto") == trtb.parse_device("cuda") == 0
    assert trtb.parse_device("cuda:3") == 3


@pytest.mark.parametrize("version,attr,value", [("10.0.1", "old", 111), ("11.4.1", "v2", 222)])
def test_device_memory_size_by_version(fake, tmp_path, version, attr, value):
    fake(version)
    engine = write_engine(tmp_path, tensorrt_version=version)
    with trtb.TensorRTBackend(engine) as backend:
        assert backend.info.extra["device_memory_bytes"] == value


def test_version_compatible_and_dla_engines_set_the_runtime(fake, tmp_path):
    trt, _ = fake("10.4.0")  # newer than the build: allowed for version-compatible engines
    engine = write_engine(tmp_path, version_compatible=True, dla_core=1)
    trtb.TensorRTBackend(engine).close()
    sets = {c[2]: c[3] for c in trt.calls if c[0] == "set" and c[1] == "Runtime"}
    assert sets == {"engine_host_code_allowed": True, "DLA_core": 1}
    order = names(trt)
    assert order.index("set") < order.index("deserialize_cuda_engine")


# --------------------------------------------------------------------------- refusals


def _one_line(exc: BaseException) -> str:
    message = str(exc)
    assert "\n" not in message
    return message


def test_other_tensorrt_version_is_refused_with_the_rebuild_command(fake, tmp_path):
    trt, buffers = fake("10.3.0")
    engine = write_engine(tmp_path, tensorrt_version="10.2.0")
    with pytest.raises(trtb.EngineMismatchError) as err:
        trtb.TensorRTBackend(engine)
    message = _one_line(err.value)
    assert "TensorRT 10.2.0" in message and "10.3.0" in message
    assert "sllen-export --from-onnx /models/sllen.fp16.onnx" in message
    # One line in the CLI (a ValueError), still catchable as the metadata module's error.
    assert isinstance(err.value, ValueError) and isinstance(err.value, EngineIncompatibleError)
    assert isinstance(err.value, RuntimeError)
    assert "deserialize_cuda_engine" not in names(trt) and buffers.closed


def test_other_compute_capability_is_refused(fake, tmp_path):
    fake(buffers=FakeBuffers(gpu=("NVIDIA GeForce RTX 3090", "8.6")))
    engine = write_engine(tmp_path)
    with pytest.raises(trtb.EngineMismatchError) as err:
        trtb.TensorRTBackend(engine)
    message = _one_line(err.value)
    assert "compute capability 8.7" in message and "RTX 3090 (8.6)" in message
    assert "rebuild it on this machine with `sllen-export --from-onnx" in message


def test_same_compute_capability_other_gpu_only_warns(fake, tmp_path):
    fake(buffers=FakeBuffers(gpu=("NVIDIA Jetson Orin NX", "8.7")))
    engine = write_engine(tmp_path)
    with pytest.warns(UserWarning, match="may run slower"):
        trtb.TensorRTBackend(engine).close()


def test_cli_shows_the_refusal_as_one_line(fake, tmp_path, capsys):
    from sllen.cli._errors import EXIT_BAD_INPUT, user_errors

    fake("10.3.0")
    engine = write_engine(tmp_path, tensorrt_version="10.2.0")
    with pytest.raises(SystemExit) as exit_:
        user_errors(lambda: trtb.TensorRTBackend(engine))()
    assert exit_.value.code == EXIT_BAD_INPUT
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "sllen-export --from-onnx" in lines[0]
    assert "SLLEN_DEBUG" not in lines[0]  # shown as a user error, not as a bug


def test_missing_engine_or_metadata(fake, tmp_path):
    fake()
    with pytest.raises(FileNotFoundError, match="no such engine file"):
        trtb.TensorRTBackend(tmp_path / "absent.engine")
    engine = tmp_path / "lonely.engine"
    engine.write_bytes(ENGINE_BYTES)
    with pytest.raises(FileNotFoundError, match="lonely.engine.json is missing.*sllen-export"):
        trtb.TensorRTBackend(engine)


@pytest.mark.parametrize("data", [ENGINE_BYTES[:7], b"\x89PNG garbage"])
def test_truncated_or_garbage_engine(fake, tmp_path, data):
    trt, buffers = fake()
    engine = write_engine(tmp_path, data=data)
    with pytest.raises(trtb.EngineLoadError) as err:
        trtb.TensorRTBackend(engine)
    message = _one_line(err.value)
    assert "could not deserialize" in message and "sllen-export --from-onnx" in message
    assert isinstance(err.value, ValueError) and buffers.closed


def test_non_float_io_is_refused(fake, tmp_path):
    fake(dtype="HALF")
    engine = write_engine(tmp_path)
    with pytest.raises(trtb.EngineLoadError, match="tensor 'input' is HALF, not FLOAT.*float32"):
        trtb.TensorRTBackend(engine)


def test_missing_or_old_tensorrt(fake_trt, monkeypatch, tmp_path):
    engine = write_engine(tmp_path)
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    with pytest.raises(BackendUnavailableError, match="system-site-packages"):
        trtb.TensorRTBackend(engine)
    fake_trt("8.6.1")
    with pytest.raises(BackendUnavailableError, match="8.6.1 is too old"):
        trtb.TensorRTBackend(engine)


# --------------------------------------------------------------------------- inputs


def test_input_outside_the_profile_is_refused(fake, tmp_path):
    trt, _ = fake()
    with trtb.TensorRTBackend(write_engine(tmp_path)) as backend:
        with pytest.raises(InputError, match="above the model's maximum 128x128"):
            backend.infer(frame(h=144, w=64))
        with pytest.raises(InputError, match="below the model's minimum 32x32"):
            backend.infer(frame(h=16, w=64))
        with pytest.raises(InputError, match="batch 3 is above the model's maximum 2"):
            backend.infer(frame(n=3))
        with pytest.raises(InputError, match="multiples of 16"):
            backend.infer(frame(h=40))
        with pytest.raises(InputError, match="float32"):
            backend.infer(frame().astype(np.float16))
    assert "execute_async_v3" not in names(trt)


def test_batch_below_the_profile_minimum_is_refused(fake, tmp_path):
    fake(profile=((2, 3, 32, 32), (2, 3, 64, 64), (4, 3, 128, 128)))
    with trtb.TensorRTBackend(write_engine(tmp_path)) as backend:
        with pytest.raises(InputError, match=r"outside the engine's profile \(min \[2, 3, 32"):
            backend.infer(frame(n=1))


def test_shape_tensorrt_refuses_is_an_input_error(fake, tmp_path):
    fake(refuse_shapes=True)
    with pytest.raises(InputError, match="TensorRT refused input shape"):
        trtb.TensorRTBackend(write_engine(tmp_path))


# --------------------------------------------------------------------------- running


def test_name_based_io_sequence_and_results(fake, tmp_path):
    trt, buffers = fake()
    with trtb.TensorRTBackend(write_engine(tmp_path)) as backend:
        start = len(trt.calls)
        x = frame()
        out = backend.infer(x)
        np.testing.assert_allclose(out.image, 1.0 - x, atol=1e-7)
        assert out.segmentation is None and out.image.shape == x.shape
        calls = trt.calls[start:]
        order = [c[0] for c in calls]
        # the new shape is set before the output shapes are read from the context
        assert calls[0] == ("set_input_shape", "input", (1, 3, 64, 96))
        assert order.index("set_input_shape") < order.index("context.get_tensor_shape")
        addressed = {c[1]: c[2] for c in calls if c[0] == "set_tensor_address"}
        assert set(addressed) == {"input", "output"} and len(set(addressed.values())) == 2
        assert order.index("set_tensor_address") < order.index("execute_async_v3")
        assert ("execute_async_v3", 0xBEEF) in calls  # the backend's own stream
        timing = backend.last_timing
        assert timing.h2d > 0 and timing.compute > 0 and timing.d2h > 0

        start = len(trt.calls)
        y = frame(seed=1)
        np.testing.assert_allclose(backend.infer(y).image, 1.0 - y, atol=1e-7)
        assert "set_input_shape" not in names(trt)[start:]  # same shape: not set again
        z = frame(n=2, h=128, w=32, seed=2)
        np.testing.assert_allclose(backend.infer(z).image, 1.0 - z, atol=1e-7)
    # buffers are allocated once, for the profile's maximum (2 x 3 x 128 x 128 float32)
    assert [e for e in buffers.log if e[0] == "alloc_device"] == [("alloc_device", 393216)] * 2


def test_buffers_are_sized_from_the_context_after_the_max_shape(fake, tmp_path):
    trt, _ = fake()
    trtb.TensorRTBackend(write_engine(tmp_path)).close()
    calls = trt.calls
    first_set = calls.index(("set_input_shape", "input", (2, 3, 128, 128)))
    first_read = calls.index(("context.get_tensor_shape", "output"))
    assert first_set < first_read


def test_segmentation_output(fake, tmp_path):
    trt, _ = fake(segmentation=True)
    with trtb.TensorRTBackend(write_engine(tmp_path)) as backend:
        assert backend.info.has_segmentation
        x = frame()
        out = backend.infer(x, segmentation=True)
        assert out.segmentation.shape == (1, SEG_CLASSES, 64, 96)
        np.testing.assert_allclose(out.segmentation[:, 0], x.mean(1), atol=1e-6)
        addressed = {c[1] for c in trt.calls if c[0] == "set_tensor_address"}
        assert addressed == {"input", "output", "segmentation"}  # bound even when not read
        assert backend.infer(x).segmentation is None


def test_asking_for_segmentation_without_the_output(fake, tmp_path):
    fake()
    with trtb.TensorRTBackend(write_engine(tmp_path)) as backend:
        with pytest.raises(InputError, match="no segmentation output"):
            backend.infer(frame(), segmentation=True)


def test_closed_backend_refuses(fake, tmp_path):
    fake()
    backend = trtb.TensorRTBackend(write_engine(tmp_path))
    backend.close()
    backend.close()  # idempotent
    with pytest.raises(InputError, match="closed"):
        backend.infer(frame())


# --------------------------------------------------------------------------- CUDA graphs


def test_cuda_graph_captured_once_per_shape_and_replayed(fake, tmp_path):
    trt, buffers = fake()
    with trtb.TensorRTBackend(write_engine(tmp_path), cuda_graph=True) as backend:
        for seed in range(3):
            x = frame(seed=seed)
            np.testing.assert_allclose(backend.infer(x).image, 1.0 - x, atol=1e-7)
        assert buffers.captures == 1 and buffers.launches == 3
        # one warm-up enqueue, then the one that was captured; replays do not enqueue
        assert names(trt).count("execute_async_v3") == 2
        capture_at = buffers.log.index(("capture",))
        assert buffers.log[capture_at - 1] == ("synchronize",)  # warm-up done before capture

        z = frame(n=2, h=32, w=128, seed=9)  # a new shape: the old graph goes, a new one comes
        np.testing.assert_allclose(backend.infer(z).image, 1.0 - z, atol=1e-7)
        assert buffers.captures == 2 and buffers.released == 1 and buffers.launches == 4
        assert names(trt).count("execute_async_v3") == 4
    assert buffers.released == 2  # close releases the last graph


def test_cuda_graph_refused_falls_back_to_enqueue(fake, tmp_path):
    trt, buffers = fake(buffers=NoGraphBuffers())
    with trtb.TensorRTBackend(write_engine(tmp_path), cuda_graph=True) as backend:
        x = frame()
        with pytest.warns(RuntimeWarning, match="cannot be captured"):
            np.testing.assert_allclose(backend.infer(x).image, 1.0 - x, atol=1e-7)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            np.testing.assert_allclose(backend.infer(x).image, 1.0 - x, atol=1e-7)
    assert buffers.captures == 1 and buffers.launches == 0


def test_no_cuda_graph_unless_asked(fake, tmp_path):
    trt, buffers = fake()
    with trtb.TensorRTBackend(write_engine(tmp_path)) as backend:
        backend.infer(frame())
        backend.infer(frame())
    assert buffers.captures == 0 and names(trt).count("execute_async_v3") == 2


# --------------------------------------------------------------------------- plugin


def _plugin_engine(tmp_path: Path) -> Path:
    return write_engine(
        tmp_path,
        attention={"mode": "plugin", "fused": None},
        plugin_library="libsllen_attention_plugin.so",
        precision="fp32",
    )


def test_plugin_beside_the_engine_is_loaded_before_deserializing(fake, tmp_path):
    trt, _ = fake()
    lib = tmp_path / "libsllen_attention_plugin.so"
    lib.write_bytes(b"\x7fELF")
    with trtb.TensorRTBackend(_plugin_engine(tmp_path)) as backend:
        assert backend.info.extra["plugin_library"] == str(lib.resolve())
    order = names(trt)
    assert order.index("dlopen") < order.index("Runtime") < order.index("deserialize_cuda_engine")
    assert ("dlopen", str(lib.resolve())) in trt.calls
    trtb.TensorRTBackend(_plugin_engine(tmp_path)).close()
    assert names(trt).count("dlopen") == 1  # once per process


def test_explicit_plugin_library_wins(fake, tmp_path):
    trt, _ = fake()
    lib = tmp_path / "elsewhere" / "libmine.so"
    lib.parent.mkdir()
    lib.write_bytes(b"\x7fELF")
    trtb.TensorRTBackend(_plugin_engine(tmp_path), plugin_library=lib).close()
    assert ("dlopen", str(lib.resolve())) in trt.calls
    with pytest.raises(FileNotFoundError, match="plugin library .* does not exist"):
        trtb.TensorRTBackend(_plugin_engine(tmp_path), plugin_library=tmp_path / "none.so")


def test_plugin_from_the_attention_kernel_module(fake, tmp_path, monkeypatch):
    trt, _ = fake()
    lib = tmp_path / "build" / "libsllen_attention_plugin.so"
    lib.parent.mkdir()
    lib.write_bytes(b"\x7fELF")
    kernel = types.ModuleType("sllen.runtime.attention_kernel")
    kernel.find_plugin_library = lambda: lib
    monkeypatch.setitem(sys.modules, "sllen.runtime.attention_kernel", kernel)
    trtb.TensorRTBackend(_plugin_engine(tmp_path)).close()
    order = names(trt)
    assert ("dlopen", str(lib.resolve())) in trt.calls
    assert order.index("dlopen") < order.index("deserialize_cuda_engine")


def test_plugin_not_found_says_how_to_get_it(fake, tmp_path):
    trt, buffers = fake()
    with pytest.raises(FileNotFoundError) as err:
        trtb.TensorRTBackend(_plugin_engine(tmp_path))
    message = _one_line(err.value)
    assert "libsllen_attention_plugin.so" in message and "runtime/csrc" in message
    assert "deserialize_cuda_engine" not in names(trt) and buffers.closed


def test_version_compatible_engine_carrying_its_plugin_loads_no_host_library(fake, tmp_path):
    # TensorRT loads a library serialized into a version-compatible engine itself (trtexec's
    # README: no --dynamicPlugins for such an engine); a host library built for another
    # TensorRT may not even load, and would register the creator twice.
    trt, _ = fake()
    (tmp_path / "libsllen_attention_plugin.so").write_bytes(b"\x7fELF")
    engine = write_engine(
        tmp_path,
        attention={"mode": "plugin", "fused": None},
        plugin_library="libsllen_attention_plugin.so",
        plugins_serialized=["libsllen_attention_plugin_dynamic.so"],
        version_compatible=True,
        precision="fp32",
    )
    trtb.TensorRTBackend(engine).close()
    assert "dlopen" not in names(trt) and "deserialize_cuda_engine" in names(trt)
    # An explicit library is still loaded (the user's way out where the serialized one fails).
    trtb.TensorRTBackend(engine, plugin_library=tmp_path / "libsllen_attention_plugin.so").close()
    assert "dlopen" in names(trt)


def test_engine_carrying_its_plugin_that_fails_names_the_way_out(fake, tmp_path):
    fake()
    engine = write_engine(
        tmp_path,
        data=b"not the engine",
        attention={"mode": "plugin", "fused": None},
        plugin_library="libsllen_attention_plugin.so",
        plugins_serialized=["libsllen_attention_plugin_dynamic.so"],
        version_compatible=True,
    )
    with pytest.raises(trtb.EngineLoadError) as err:
        trtb.TensorRTBackend(engine)
    message = _one_line(err.value)
    assert "serialized in it did not load here: pass --plugin" in message


def test_engines_without_the_plugin_load_nothing(fake, tmp_path):
    trt, _ = fake()
    (tmp_path / "libsllen_attention_plugin.so").write_bytes(b"\x7fELF")
    trtb.TensorRTBackend(write_engine(tmp_path)).close()
    assert "dlopen" not in names(trt)


# --------------------------------------------------------------------------- buffer choice


def _module(name: str, **attrs: Any) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__spec__ = importlib.machinery.ModuleSpec(name, None)
    module.__dict__.update(attrs)
    return module


@pytest.fixture
def libraries(monkeypatch):
    """set(torch=None|"cpu"|"cuda", cudart=None|"bindings"|"cudart"): fake what is installed."""

    def set_(torch: str | None = None, cudart: str | None = None) -> None:
        if torch is None:
            monkeypatch.setenv("SLLEN_HIDE_TORCH", "1")
        else:
            cuda = types.SimpleNamespace(is_available=lambda: torch == "cuda")
            monkeypatch.setitem(sys.modules, "torch", _module("torch", cuda=cuda))
        if cudart is None:
            monkeypatch.setenv("SLLEN_HIDE_CUDA", "1")
            return
        monkeypatch.setitem(sys.modules, "cuda", _module("cuda"))
        bindings = _module("cuda.bindings.runtime", which="bindings")
        old = _module("cuda.cudart", which="cudart")
        monkeypatch.setitem(sys.modules, "cuda.bindings", _module("cuda.bindings"))
        monkeypatch.setitem(
            sys.modules, "cuda.bindings.runtime", bindings if cudart == "bindings" else None
        )
        monkeypatch.setitem(sys.modules, "cuda.cudart", old)

    return set_


@pytest.mark.parametrize(
    "torch,cudart,expected",
    [
        ("cuda", "bindings", "torch"),
        ("cuda", None, "torch"),
        ("cpu", "bindings", "cuda-python"),  # CPU-only torch: cuda-python does the buffers
        (None, "cudart", "cuda-python"),  # cuda-python 12.x before cuda.bindings existed
    ],
)
def test_buffer_implementation_choice(libraries, torch, cudart, expected):
    libraries(torch, cudart)
    assert cuda_buffers.choose_implementation() == expected


def test_cuda_bindings_runtime_is_preferred_over_cuda_cudart(libraries):
    libraries(None, "bindings")
    assert env.cudart_module().which == "bindings"
    libraries(None, "cudart")
    assert env.cudart_module().which == "cudart"


def test_no_buffer_library_says_what_to_install(libraries):
    libraries("cpu", None)
    with pytest.raises(BackendUnavailableError, match=r"cuda-python>=12,<13"):
        cuda_buffers.choose_implementation()
    with pytest.raises(BackendUnavailableError, match="torch with CUDA is not available"):
        cuda_buffers.choose_implementation("torch")
    with pytest.raises(BackendUnavailableError, match="cuda-python is not installed"):
        cuda_buffers.choose_implementation("cuda-python")
    with pytest.raises(ValueError, match="auto, torch or cuda-python"):
        cuda_buffers.choose_implementation("pycuda")


def test_open_buffers_builds_the_chosen_implementation(libraries, monkeypatch):
    made = []
    monkeypatch.setattr(cuda_buffers, "TorchBuffers", lambda d: made.append(("torch", d)))
    monkeypatch.setattr(
        cuda_buffers, "CudaPythonBuffers", lambda d, rt: made.append(("cuda-python", d, rt.which))
    )
    libraries("cuda", "bindings")
    cuda_buffers.open_buffers(1)
    cuda_buffers.open_buffers(0, prefer="cuda-python")
    assert made == [("torch", 1), ("cuda-python", 0, "bindings")]


def test_host_buffer_views():
    host = cuda_buffers.HostBuffer(np.zeros(64, np.uint8))
    view = host.view(np.float32, (1, 2, 2, 2))
    view[...] = 0.5
    assert host.nbytes == 64 and host.array[:32].view(np.float32).tolist() == [0.5] * 8


# --------------------------------------------------------------------------- real TensorRT


def _why_no_real_tensorrt() -> str | None:
    try:
        trtb.import_tensorrt()
    except BackendUnavailableError as exc:
        return f"{exc} (TensorRT cannot be installed on the development machines)"
    try:
        buffers = cuda_buffers.open_buffers(0)
    except Exception as exc:  # no GPU, no driver, no torch/cuda-python
        return f"no usable CUDA GPU for TensorRT here: {exc}"
    buffers.close()
    return None


@pytest.fixture(scope="module")
def real_tensorrt() -> None:
    why = _why_no_real_tensorrt()
    if why is not None:
        pytest.skip(why)


@pytest.mark.usefixtures("real_tensorrt")
class TestRealTensorRT:
    """Export the tiny preset, build a real engine, run it and compare with ONNX Runtime.

    Runs only where `tensorrt` (10.x/11.x) imports and a CUDA GPU is present; skips otherwise.
    """

    @pytest.fixture(scope="class")
    def built(self, tmp_path_factory) -> tuple[Path, Path]:
        torch = pytest.importorskip("torch")
        pytest.importorskip("onnxruntime")
        from sllen.config import get_preset
        from sllen.export.onnx_export import export_onnx
        from sllen.export.trt.build import build_engine
        from sllen.model.sllen import SLLEN

        folder = tmp_path_factory.mktemp("trt-real")
        torch.manual_seed(0)
        onnx_path = export_onnx(SLLEN(get_preset("tiny")).eval(), folder / "tiny.fp32.onnx")
        engine = folder / "tiny.fp32.engine"
        profile = ShapeProfile((32, 32), (64, 96), (128, 128), batch=(1, 1, 2))
        build_engine(onnx_path, engine, profile)
        return onnx_path, engine

    @staticmethod
    def _onnxruntime(onnx_path: Path, x: np.ndarray) -> np.ndarray:
        import onnxruntime as ort

        session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
        return session.run(["output"], {"input": x})[0]

    @pytest.mark.parametrize("cuda_graph", [False, True])
    def test_matches_onnxruntime(self, built, cuda_graph):
        onnx_path, engine = built
        x = frame(1, 64, 96, seed=3)
        with trtb.TensorRTBackend(engine, cuda_graph=cuda_graph) as backend:
            assert backend.info.max_hw == (128, 128) and backend.info.precision == "fp32"
            first = backend.infer(x).image
            again = backend.infer(x).image  # a graph replay when cuda_graph
            timing = backend.last_timing
            other = frame(2, 32, 128, seed=4)
            other_out = backend.infer(other).image  # a new shape (a recapture)
        reference = self._onnxruntime(onnx_path, x)
        # FP32 engine; TensorRT may use TF32 for convolutions (on by default), hence 1e-2.
        np.testing.assert_allclose(first, reference, atol=1e-2)
        np.testing.assert_allclose(first, again, atol=1e-6)
        np.testing.assert_allclose(other_out, self._onnxruntime(onnx_path, other), atol=1e-2)
        assert timing.h2d > 0 and timing.compute > 0 and timing.d2h > 0
