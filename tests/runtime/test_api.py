"""The embedding API: a program with numpy frames opens a model once and enhances them."""

from __future__ import annotations

import numpy as np
import pytest

from sllen.runtime import FrameEnhancer, open_enhancer
from sllen.runtime.errors import InputError


@pytest.fixture(scope="module")
def enhance():
    with open_enhancer(backend="onnxruntime", threads=1, batch=2) as e:
        yield e


def frames(n: int = 3, size: tuple[int, int] = (40, 56)) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 50, (*size, 3), dtype=np.uint8) for _ in range(n)]


def test_uint8_in_uint8_out_float_in_float_out(enhance: FrameEnhancer) -> None:
    f = frames(1)[0]
    out = enhance(f)
    assert out.dtype == np.uint8 and out.shape == f.shape and out.mean() > f.mean() + 20
    out_f = enhance(f.astype(np.float32) / 255)
    assert out_f.dtype == np.float32 and 0 <= out_f.min() and out_f.max() <= 1
    assert np.abs(out_f * 255 - out).max() <= 1  # the same result, rounded


def test_a_pil_image_or_torch_frame_comes_back_as_its_own_dtype(
    enhance: FrameEnhancer,
) -> None:
    from PIL import Image

    f = frames(1)[0]
    want = enhance(f)
    out = enhance(Image.fromarray(f))  # type: ignore[arg-type]  # no dtype of its own
    assert out.dtype == np.uint8 and np.array_equal(out, want)
    torch = pytest.importorskip("torch")
    out = enhance(torch.from_numpy(f))  # torch.uint8 is not np.uint8: it came back float
    assert out.dtype == np.uint8 and np.array_equal(out, want)


def test_bgr_is_rgb_mirrored(enhance: FrameEnhancer) -> None:
    f = frames(1)[0]
    with open_enhancer(backend="onnxruntime", threads=1, channels="bgr") as bgr:
        assert np.array_equal(bgr(f[..., ::-1])[..., ::-1], enhance(f))


def test_exposure_moves_the_models_result_by_stops(enhance: FrameEnhancer) -> None:
    from sllen.runtime.exposure import apply_table, exposure_table

    f = frames(1)[0].astype(np.float32) / 255
    with open_enhancer(backend="onnxruntime", threads=1, exposure=-1.0) as darker:
        assert np.allclose(darker(f), apply_table(enhance(f), exposure_table(-1.0)), atol=1e-6)


def test_stream_batches_lazily_and_matches_one_by_one(enhance: FrameEnhancer) -> None:
    fs = frames(5)
    pulled = []

    def source():
        for f in fs:
            pulled.append(f)
            yield f

    it = enhance.stream(source())
    first = next(it)
    assert len(pulled) == 2  # one batch of 2 read, not the whole iterator
    rest = list(it)
    singles = [enhance(f) for f in fs]
    for a, b in zip([first, *rest], singles, strict=True):
        assert np.abs(a.astype(int) - b).max() <= 1  # batched vs single inference


def test_smoothing_follows_the_clip_and_needs_fps() -> None:
    with pytest.raises(InputError, match="fps"):
        open_enhancer(backend="onnxruntime", smooth=True)
    for bad in (0, -25):  # refused, not read as 1 fps
        with pytest.raises(InputError, match="fps must be positive"):
            open_enhancer(backend="onnxruntime", fps=bad)
    # The smoothing itself is measured in test_temporal.py; here: the enhancer carries its
    # state from frame to frame (a gain on the second frame) and reset() drops it. Not a
    # comparison of output means: how much the output follows a dimmer input is the model's.
    f = frames(1)[0]
    dim = (f * 0.8).astype(np.uint8)
    with open_enhancer(backend="onnxruntime", threads=1) as plain:
        alone = plain(dim)
    with open_enhancer(backend="onnxruntime", threads=1, fps=25) as e:
        assert e.smoothing
        e(f)
        b = e(dim)
        gain = e.smoother.last_gain
        assert gain != 1.0 and not e.smoother.last_cut
        expected = np.clip(alone.astype(np.float32) * gain, 0, 255)
        assert np.abs(b.astype(np.float32) - expected).max() <= 1.5  # two uint8 roundings
        e.reset()
        assert np.array_equal(e(dim), alone)  # a fresh clip: nothing carried over


def test_bad_frames_and_options_are_one_line_errors(enhance: FrameEnhancer) -> None:
    with pytest.raises(InputError, match="HxWx3"):
        enhance(np.zeros((8, 8), np.uint8))
    with pytest.raises(InputError, match="uint8 or float"):
        enhance(np.zeros((8, 8, 3), np.int32))
    for empty in ((0, 5, 3), (5, 0, 3)):  # not a shape error from deep inside the backend
        with pytest.raises(InputError, match="HxWx3"):
            enhance(np.zeros(empty, np.uint8))
    with pytest.raises(InputError, match="segmentation=True"):
        enhance.segment(frames(1)[0])
    with pytest.raises(InputError, match="channels"):
        open_enhancer(backend="onnxruntime", channels="yuv")
    for bad in ({"threads": 0}, {"threads": -1}, {"batch": 0}):  # before a model is opened
        with pytest.raises(InputError, match="must be at least 1"):
            open_enhancer(backend="onnxruntime", **bad)  # type: ignore[arg-type]
    for device in ("tpu", "cuda:x", "CPU"):  # refused before a model is opened
        with pytest.raises(InputError, match="--device must be auto, cpu, cuda or cuda:N"):
            open_enhancer(device=device)


def test_bad_tile_nan_frames_and_a_closed_enhancer_are_input_errors() -> None:
    with pytest.raises(InputError, match=r"tile must be \(height, width\)"):
        open_enhancer(backend="onnxruntime", tile="64x64")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="each at least 16"):
        open_enhancer(backend="onnxruntime", tile=(8, 64))
    with open_enhancer(backend="onnxruntime", threads=1, tile=(32, 48)) as e:
        frame = frames(1)[0].astype(np.float32) / 255
        assert e(frame).shape == frame.shape
        frame[3, 4, 1] = np.nan
        with pytest.raises(InputError, match="NaN or infinite"):
            e(frame)
    with pytest.raises(InputError, match="backend is closed"):
        e(frames(1)[0])


def test_floats_outside_the_unit_range_are_clipped_on_the_way_in(enhance: FrameEnhancer) -> None:
    f = frames(1)[0].astype(np.float32) / 255
    wild = f.copy()
    wild[:4] = 2.0
    wild[-4:] = -1.0
    clipped = np.clip(wild, 0, 1)
    assert np.array_equal(enhance(wild), enhance(clipped))


def test_an_option_for_another_backend_is_an_input_error_as_in_sllen_run() -> None:
    # precision was dropped in silence on ONNX Runtime, attention was Python's TypeError
    pytorch_only = r"applies to the pytorch backend .*; this run uses onnxruntime"
    for option in ({"precision": "fp16"}, {"attention": "kernel"}):
        with pytest.raises(InputError, match=pytorch_only):
            open_enhancer(backend="onnxruntime", threads=1, **option)
    with pytest.raises(InputError, match=r"bands='on' applies to ONNX Runtime"):
        open_enhancer(backend="pytorch", threads=1, bands="on")


def test_options_go_to_the_backend_auto_picks(monkeypatch: pytest.MonkeyPatch) -> None:
    from sllen.runtime import backends
    from sllen.runtime.api import EnhancerSpec

    opened: list[dict] = []
    monkeypatch.setattr(backends, "open_backend", lambda *a, **kw: opened.append(kw))
    options = {"precision": "fp16", "attention": "auto", "bands": "auto"}
    monkeypatch.setattr(backends, "_nvidia_gpu", lambda: True)  # auto: PyTorch, when torch is
    if backends.installed("torch"):
        EnhancerSpec(threads=1, options=options).open_backend()
        assert opened[-1] == {
            "device": "auto",
            "threads": 1,
            "precision": "fp16",
            "attention": "auto",
        }
    # an option left at its default asks nothing of a backend it does not apply to
    EnhancerSpec(backend="onnxruntime", options={**options, "precision": "auto"}).open_backend()
    assert opened[-1] == {"device": "auto", "threads": None, "bands": "auto"}
