"""Backends: the choice, ONNX Runtime and PyTorch on the bundled model, the input checks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sllen.runtime.backends import (
    BackendUnavailableError,
    InputError,
    backend_for_file,
    choose_backend,
    open_backend,
)
from sllen.runtime.bundled import bundled_onnx, bundled_weights


def dark(n: int = 1, h: int = 48, w: int = 64, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).random((n, 3, h, w)) * 0.15).astype(np.float32)


def test_backend_for_file() -> None:
    assert backend_for_file("a/m.engine") == "tensorrt"
    assert backend_for_file("m.plan") == "tensorrt"
    assert backend_for_file("m.onnx") == "onnxruntime"
    assert backend_for_file("m.safetensors") == "pytorch"
    with pytest.raises(ValueError, match="unknown model file type"):
        backend_for_file("m.pt")


def test_choose_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    assert choose_backend("x.onnx") == ("onnxruntime", ".onnx file")
    assert choose_backend(None, "pytorch")[0] == "pytorch"
    with pytest.raises(ValueError, match="cannot load it"):
        choose_backend("x.onnx", "pytorch")
    with pytest.raises(ValueError, match="--backend must be"):
        choose_backend(None, "openvino")
    monkeypatch.setattr("sllen.runtime.backends._nvidia_gpu", lambda: False)
    assert choose_backend(None)[0] == "onnxruntime"
    monkeypatch.setenv("SLLEN_HIDE_ONNXRUNTIME", "1")
    assert choose_backend(None) == ("pytorch", "bundled model, onnxruntime not installed")
    monkeypatch.setenv("SLLEN_HIDE_TORCH", "1")
    with pytest.raises(BackendUnavailableError, match="no inference library"):
        choose_backend(None)


def test_missing_model_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such model file"):
        open_backend(tmp_path / "none.onnx")


def test_onnxruntime_matches_pytorch_on_bundled_model() -> None:
    x = dark(2)
    with open_backend(None, "onnxruntime", threads=1) as ort_b:
        info = ort_b.info
        assert info.backend == "onnxruntime" and info.device == "cpu"
        assert info.precision == "fp32" and info.has_segmentation
        a = ort_b.infer(x, segmentation=True)
        assert ort_b.last_timing.compute > 0
    with open_backend(None, "pytorch", device="cpu", threads=1) as pt:
        assert "sdpa" in pt.info.detail or "scaled_dot_product" in pt.info.detail
        b = pt.infer(x, segmentation=True)
    assert a.image.shape == (2, 3, 48, 64) and a.image.dtype == np.float32
    assert np.abs(a.image - b.image).max() < 1e-4
    assert a.segmentation is not None and b.segmentation is not None
    assert (a.segmentation.argmax(1) == b.segmentation.argmax(1)).mean() > 0.99
    assert a.image.mean() > x.mean() + 0.2  # it enhances


def test_input_checks() -> None:
    with open_backend(None, "onnxruntime", threads=1) as b:
        with pytest.raises(InputError, match="float32"):
            b.infer(dark().astype(np.float64))
        with pytest.raises(InputError, match="multiples of 16"):
            b.infer(dark(h=40))
        with pytest.raises(InputError, match=r"\[N, 3, H, W\]"):
            b.infer(dark()[:, :2])
    with pytest.raises(InputError, match="closed"):
        b.infer(dark())


def test_onnx_without_segmentation_output(tmp_path: Path) -> None:
    import onnx

    model = onnx.load(bundled_onnx())
    keep = [o for o in model.graph.output if o.name == "output"]
    del model.graph.output[:]
    model.graph.output.extend(keep)
    path = tmp_path / "image-only.onnx"
    onnx.save(model, path)
    with open_backend(path, threads=1) as b:
        assert not b.info.has_segmentation
        with pytest.raises(InputError, match="no segmentation output.*sllen-export --segmentation"):
            b.infer(dark(), segmentation=True)


def test_bad_onnx_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a protobuf at all")
    with pytest.raises(ValueError, match="ONNX Runtime cannot load it"):
        open_backend(bad)


def test_pytorch_weights_errors(tmp_path: Path) -> None:
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(bundled_weights().read_bytes()[:5000])
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        open_backend(cut, device="cpu")
    with pytest.raises(ValueError, match="fp16 needs a CUDA device"):
        open_backend(None, "pytorch", device="cpu", precision="fp16")


def test_runtime_imports_no_torch() -> None:
    """The deployment path (ONNX Runtime on the bundled model) never imports torch."""
    # The backend is named: on a machine with a CUDA GPU and torch, auto picks PyTorch.
    code = (
        "import sys, numpy as np\n"
        "from sllen.runtime.backends import open_backend\n"
        "from sllen.runtime.enhancer import Enhancer\n"
        "b = open_backend(None, 'onnxruntime', threads=1)\n"
        "Enhancer(b).enhance([np.zeros((20, 30, 3), np.float32)])\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def _cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


@pytest.mark.skipif(not _cuda(), reason="needs a CUDA GPU (scripts/gpu-check.sh runs this)")
@pytest.mark.parametrize("attention", ["sdpa", "auto"])
def test_pytorch_on_cuda_matches_the_cpu(attention: str) -> None:
    """FP32 and FP16 on the GPU against ONNX Runtime on the CPU; the kernel when it is built."""
    x = dark(2, 64, 96)
    with open_backend(None, "onnxruntime", threads=1) as cpu:
        ref = cpu.infer(x).image
    with open_backend(None, "pytorch", device="cuda", precision="fp32", attention=attention) as g:
        out32 = g.infer(x).image
        t = g.last_timing
        assert t.h2d > 0 and t.compute > 0 and t.d2h > 0
    with open_backend(None, "pytorch", device="cuda", precision="fp16", attention=attention) as g:
        out16 = g.infer(x).image
    assert np.abs(out32 - ref).max() < 2e-3  # TF32 convolutions may be on
    assert np.abs(out16 - ref).max() < 3e-2 and np.abs(out16 - ref).mean() < 3e-3


def test_weights_whose_tensors_are_another_preset(tmp_path: Path) -> None:
    """A header that says 'edge' over a tiny model's tensors: one line, not a shape traceback."""
    from safetensors.torch import save_file

    from sllen.config import get_preset
    from sllen.model.io import CONFIG_KEY, FORMAT_KEY, FORMAT_VERSION
    from sllen.model.sllen import SLLEN

    tiny = SLLEN(get_preset("tiny"))
    path = tmp_path / "mixed.safetensors"
    meta = {CONFIG_KEY: get_preset("edge").to_json(), FORMAT_KEY: FORMAT_VERSION}
    save_file({k: v.contiguous() for k, v in tiny.state_dict().items()}, str(path), meta)
    with pytest.raises(ValueError, match="mixed.safetensors") as e:
        open_backend(path, device="cpu")
    assert "\n" not in str(e.value)


def test_onnxruntime_pixel_budget_follows_the_attention_metadata(monkeypatch) -> None:
    from sllen.runtime.backends import onnxruntime as ortb

    linear, old = ortb.MAX_PIXELS_LINEAR, ortb.MAX_PIXELS
    assert linear >= 2160 * 3840 and old == 1088 * 1920
    monkeypatch.setattr(ortb, "available_memory", lambda: 64 * 2**30)  # a large machine
    assert ortb.pixel_budget({"sllen_attention": "mha"}, on_gpu=False) == linear
    assert ortb.pixel_budget({"sllen_attention": "decomposed"}, on_gpu=False) == old
    assert ortb.pixel_budget({}, on_gpu=False) == old  # files from before the metadata key
    assert ortb.pixel_budget({"sllen_attention": "mha"}, on_gpu=True) == old
    # Without a known L2 size ONNX Runtime's kernel holds the N x N scores: the old budget.
    monkeypatch.setattr(ortb, "_l2_cache_known", lambda: False)
    assert ortb.pixel_budget({"sllen_attention": "mha"}, on_gpu=False) == old


def test_onnxruntime_pixel_budget_fits_the_available_memory(monkeypatch) -> None:
    # A 4 GB machine with 3 GB available tiles a 4K frame instead of running out of memory.
    from sllen.runtime.backends import onnxruntime as ortb

    monkeypatch.setattr(ortb, "_l2_cache_known", lambda: True)
    monkeypatch.setattr(ortb, "available_memory", lambda: 3 * 2**30)
    budget = ortb.pixel_budget({"sllen_attention": "mha"}, on_gpu=False)
    assert budget * ortb.BYTES_PER_PIXEL <= 3 * 2**30 and budget < 2160 * 3840
    assert budget == int(3 * 2**30 * ortb.MEMORY_SHARE / ortb.BYTES_PER_PIXEL)
    # Without the graph edits a frame costs more, so the budget is smaller.
    unedited = ortb.pixel_budget({"sllen_attention": "mha"}, on_gpu=False, edited=False)
    assert unedited == int(3 * 2**30 * ortb.MEMORY_SHARE / ortb.BYTES_PER_PIXEL_UNEDITED)
    monkeypatch.setattr(ortb, "available_memory", lambda: 1)  # never below a small frame
    assert ortb.pixel_budget({}, on_gpu=False) == ortb.MIN_PIXELS
    monkeypatch.setattr(ortb, "available_memory", lambda: None)  # unknown: the form's budget
    assert ortb.pixel_budget({"sllen_attention": "mha"}, on_gpu=False) == ortb.MAX_PIXELS_LINEAR


def test_bundled_onnx_runs_4k_frames_whole_and_old_files_are_tiled(
    tmp_path: Path, monkeypatch
) -> None:
    import onnx

    from sllen.runtime.backends import onnxruntime as ortb
    from sllen.runtime.backends.onnxruntime import MAX_PIXELS, MAX_PIXELS_LINEAR, _l2_cache_known
    from sllen.runtime.enhancer import Enhancer

    monkeypatch.setattr(ortb, "available_memory", lambda: 64 * 2**30)  # a large machine

    with open_backend(None, "onnxruntime", threads=1) as b:
        assert b.info.extra["metadata"]["sllen_attention"] == "mha"
        if _l2_cache_known():
            assert b.info.max_pixels == MAX_PIXELS_LINEAR
            assert Enhancer(b).tile_for(2160, 3840) is None  # 4K runs whole
            th, tw = Enhancer(b, tile=(1088, 1920)).tile_for(2160, 3840)  # type: ignore[misc]
            assert th <= 1088 and tw <= 1920  # at most the tile given, no larger than needed
    model = onnx.load(bundled_onnx())
    for p in model.metadata_props:
        if p.key == "sllen_attention":
            p.value = "decomposed"
    old = tmp_path / "decomposed.onnx"
    onnx.save(model, old)
    with open_backend(old, threads=1) as b:
        assert b.info.max_pixels == MAX_PIXELS
        assert Enhancer(b).tile_for(2160, 3840) is not None


def test_tensorrt_int8_file_on_the_cpu_gets_a_warning(tmp_path: Path) -> None:
    # The TensorRT flavour runs ~2x slower than FP32 in ONNX Runtime on a CPU: say which file
    # to use instead (only the metadata matters here, so the bundled FP32 file is relabelled).
    import onnx

    model = onnx.load(bundled_onnx())
    onnx.helper.set_model_props(
        model,
        {p.key: p.value for p in model.metadata_props} | {"sllen_int8_flavour": "tensorrt"},
    )
    path = tmp_path / "sllen.int8.onnx"
    onnx.save(model, path)
    with pytest.warns(UserWarning, match="--target cpu"):
        open_backend(path, device="cpu", threads=1).close()


@pytest.mark.parametrize(
    ("shape", "output", "words"),
    [
        ([1, 3, 224, 224], "output", "fixed: 224 wide, 224 high"),
        (["N", 3, "H", 320], "output", "fixed: 320 wide, any high"),
        (["N", 1, "H", "W"], "output", "1 channels, not 3"),
        (["N", 3, "H", "W"], "logits", "no tensor named 'output'"),
    ],
)
def test_an_onnx_file_that_is_not_an_sllen_model_is_refused_when_opened(
    tmp_path: Path, shape: list, output: str, words: str
) -> None:
    # A classifier's 224x224 input failed at the first frame as an ONNX Runtime error (exit 1);
    # a dynamic-size graph ran and its result was written as "enhanced" images.
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], [output])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, shape)],
    )
    path = tmp_path / "other.onnx"
    onnx.save(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10), path
    )
    with pytest.raises(InputError, match=f"not an sllen model .*{words}"):
        open_backend(path, "onnxruntime", threads=1)


def test_pytorch_backend_without_torch_names_the_cpu_build() -> None:
    # A torch-free install asked for --backend pytorch: the extra, and the CPU build's index for
    # a machine without an NVIDIA GPU (pip's default torch on Linux is the multi-GB CUDA build).
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "from sllen.runtime.backends.pytorch import PyTorchBackend\n"
        "try:\n    PyTorchBackend('w.safetensors')\nexcept Exception as e:\n    print(e)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert '".[train]"' in r.stdout and "download.pytorch.org/whl/cpu" in r.stdout, r.stdout
