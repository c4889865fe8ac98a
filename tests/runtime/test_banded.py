"""Row-band execution of the full-resolution parts (sllen.runtime.backends.banded)."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from sllen.runtime.backends.banded import BAND_OPS, BandedModel, BandingUnsupported  # noqa: E402
from sllen.runtime.backends.onnxruntime import cpu_session  # noqa: E402
from sllen.runtime.backends.ort_graph import drop_outputs, split_concat_convs  # noqa: E402
from sllen.runtime.bundled import bundled_onnx  # noqa: E402


@pytest.fixture(scope="module")
def edited():
    """The bundled model as the CPU backend runs it (ort_graph's edits)."""
    proto = onnx.load(str(bundled_onnx()))
    drop_outputs(proto, [proto.graph.output[0].name])
    split_concat_convs(proto)
    return proto


@pytest.fixture(scope="module")
def banded(edited) -> BandedModel:
    return BandedModel(edited, threads=2, band_rows=48)  # the least halo per segment


@pytest.mark.parametrize(
    "height, width, halo", [(224, 160, None), (144, 96, 48), (96, 208, None), (64, 400, 48)]
)
def test_banded_equals_the_whole_frame(edited, banded, height, width, halo) -> None:
    # 224 and 144 rows in bands of 48: 5 and 3 bands, the last one short (224 = 4 x 48 + 32);
    # a wide frame in column bands (a panorama: rows would keep nearly all of it per band).
    model = banded if halo is None else BandedModel(edited, threads=2, band_rows=48, halo=halo)
    x = np.random.default_rng(height).random((1, 3, height, width), dtype=np.float32) * 0.25
    whole = cpu_session(edited.SerializeToString(), 2).run(None, {"input": x})[0]
    out = model.run(x)
    assert out.shape == whole.shape
    np.testing.assert_allclose(out, whole, rtol=0, atol=1e-5)


def test_bundled_model_segments(banded) -> None:
    kinds = [s.band for s in banded.segments]
    assert kinds.count(True) >= 3 and kinds.count(False) >= 2
    assert all(a != b for a, b in zip(kinds, kinds[1:], strict=False))  # they alternate
    for seg in banded.segments:
        if seg.band:
            assert set(seg.ops) <= BAND_OPS
            assert seg.halo_needed <= seg.halo and seg.halo % banded.align == 0
        else:  # the attention runs on the whole frame
            assert "Conv" in seg.ops
    assert any("MultiHeadAttention" in s.ops for s in banded.segments if not s.band)


def global_op_graph(op: str):
    """input [1,3,h,w] -> Conv 3x3 -> (global mean over H, W) * conv -> output."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "W")]
    nodes = [helper.make_node("Conv", ["input", "W"], ["c"], pads=[1, 1, 1, 1])]
    if op == "GlobalAveragePool":
        nodes.append(helper.make_node("GlobalAveragePool", ["c"], ["m"]))
    else:
        inits.append(numpy_helper.from_array(np.array([2, 3], np.int64), "axes"))
        nodes.append(helper.make_node("ReduceMean", ["c", "axes"], ["m"], keepdims=1))
    nodes.append(helper.make_node("Mul", ["c", "m"], ["output"]))
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, "h", "w"])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 4, "h", "w"])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


@pytest.mark.parametrize("op", ["GlobalAveragePool", "ReduceMean"])
def test_global_op_at_full_resolution_is_refused(op) -> None:
    with pytest.raises(BandingUnsupported):
        BandedModel(global_op_graph(op), threads=1)


def test_misaligned_bands_or_short_halo_are_refused(edited) -> None:
    with pytest.raises(ValueError, match="multiples"):
        BandedModel(edited, threads=1, band_rows=50)
    with pytest.raises(BandingUnsupported, match="receptive field"):
        BandedModel(edited, threads=1, halo=0)


def test_backend_bands_large_frames_and_gives_the_same_image(monkeypatch) -> None:
    from sllen.runtime.backends import onnxruntime as ortb

    x = np.random.default_rng(5).random((1, 3, 96, 128), dtype=np.float32) * 0.25
    with ortb.OnnxRuntimeBackend(device="cpu", threads=1, bands="off") as whole:
        reference = whole.infer(x).image
        assert whole._banded is None
    with ortb.OnnxRuntimeBackend(device="cpu", threads=1, bands="on") as on:
        np.testing.assert_allclose(on.infer(x).image, reference, rtol=0, atol=1e-5)
        assert on._banded is not None
        # the segmentation output comes from the whole-frame session
        assert on.infer(x, segmentation=True).segmentation is not None
    # auto: whole frames while they fit in BANDS_ABOVE_BYTES (720p does), bands above
    with ortb.OnnxRuntimeBackend(device="cpu", threads=1) as auto:
        free = ortb.available_memory()
        if free is None or free * ortb.MEMORY_SHARE >= ortb.BANDS_ABOVE_BYTES:
            assert 720 * 1280 <= auto._band_pixels < 1088 * 1920
        auto.infer(x)
        assert auto._banded is None
    monkeypatch.setattr(ortb, "BANDS_ABOVE_BYTES", 64 * 64 * ortb.BYTES_PER_PIXEL)
    with ortb.OnnxRuntimeBackend(device="cpu", threads=1) as auto:
        np.testing.assert_allclose(auto.infer(x).image, reference, rtol=0, atol=1e-5)
        assert auto._banded is not None
    # ... and when the machine has little memory available
    monkeypatch.undo()
    monkeypatch.setattr(ortb, "available_memory", lambda: 64 * 64 * ortb.BYTES_PER_PIXEL)
    with ortb.OnnxRuntimeBackend(device="cpu", threads=1) as low:
        low.infer(x)
        assert low._banded is not None


def test_backend_falls_back_to_whole_frames(monkeypatch) -> None:
    from sllen.runtime.backends import banded as banded_mod
    from sllen.runtime.backends import onnxruntime as ortb

    def refuse(*args, **kwargs):
        raise BandingUnsupported("refused for the test")

    monkeypatch.setattr(banded_mod, "BandedModel", refuse)
    x = np.random.default_rng(6).random((1, 3, 64, 96), dtype=np.float32) * 0.25
    with ortb.OnnxRuntimeBackend(device="cpu", threads=1, bands="on") as b:
        with pytest.warns(UserWarning, match="no row bands .*refused for the test"):
            out = b.infer(x).image
        assert out.shape == (1, 3, 64, 96) and b._bands == "off"
        assert b.info.max_pixels == ortb.pixel_budget(b.info.extra["metadata"], on_gpu=False)


def test_bad_bands_value_is_an_input_error() -> None:
    from sllen.runtime.backends.onnxruntime import OnnxRuntimeBackend
    from sllen.runtime.errors import InputError

    with pytest.raises(InputError, match="bands must be one of auto, on, off"):
        OnnxRuntimeBackend(device="cpu", bands="sometimes")


def test_switching_paths_frees_the_arena_not_taken(monkeypatch) -> None:
    """Photos of mixed sizes: the whole-frame and banded paths' arenas are emptied when the
    other path takes over (a tiny run with arena shrinkage), and outputs stay exact."""
    from sllen.runtime.backends import onnxruntime as ortb

    released: list[str] = []
    real_release = ortb.OnnxRuntimeBackend._release

    def spy(self, path: str) -> None:
        released.append(path)
        real_release(self, path)

    monkeypatch.setattr(ortb.OnnxRuntimeBackend, "_release", spy)
    monkeypatch.setattr(ortb, "BANDS_ABOVE_BYTES", 96 * 96 * ortb.BYTES_PER_PIXEL)
    small = np.random.default_rng(7).random((1, 3, 64, 96), dtype=np.float32) * 0.25
    large = np.random.default_rng(8).random((1, 3, 128, 128), dtype=np.float32) * 0.25
    with ortb.OnnxRuntimeBackend(device="cpu", threads=1, bands="off") as whole:
        want_small, want_large = whole.infer(small).image, whole.infer(large).image
    assert released == []  # one path only: nothing to free
    with ortb.OnnxRuntimeBackend(device="cpu", threads=1) as auto:
        for x, want in ((small, want_small), (large, want_large), (large, want_large)):
            np.testing.assert_allclose(auto.infer(x).image, want, rtol=0, atol=1e-5)
        assert released == ["whole"] and auto._last_path == "bands"
        np.testing.assert_allclose(auto.infer(small).image, want_small, rtol=0, atol=1e-5)
        assert released == ["whole", "bands"]
        assert auto.infer(small, segmentation=True).segmentation is not None
        assert released == ["whole", "bands", "whole"]  # its own session: "whole" idles
    assert released[-1] == "bands"  # close() empties the process-wide band arena


def test_release_runs_a_tiny_frame_with_arena_shrinkage(banded, monkeypatch) -> None:
    seen: list = []
    real_run = banded.run
    monkeypatch.setattr(
        banded, "run", lambda x, opts=None: seen.append((x.shape, opts)) or real_run(x, opts)
    )
    banded.release()
    ((shape, opts),) = seen
    assert shape == (1, 3, 64, 64)
    assert opts.get_run_config_entry("memory.enable_memory_arena_shrinkage") == "cpu:0"


def test_channel_stacking_is_row_local_and_other_axes_are_refused() -> None:
    from sllen.runtime.backends.band_rules import check_band_segment

    split_sizes = numpy_helper.from_array(np.array([1, 2], np.int64), "sizes")
    conv_w = numpy_helper.from_array(np.full((3, 1, 3, 1), 1 / 3, np.float32), "w")
    nodes = [
        helper.make_node("Concat", ["a", "b"], ["ab"], axis=1),
        helper.make_node(
            "Conv", ["ab", "w"], ["c"], group=3, kernel_shape=[3, 1], pads=[1, 0, 1, 0]
        ),
        helper.make_node("Split", ["c", "sizes"], ["c1", "c2"], axis=-3),
    ]
    inits = {"sizes": split_sizes, "w": conv_w}
    scale = dict.fromkeys(["a", "b", "ab", "c", "c1", "c2"], 1)
    # the Conv's 3-row window: one row next to each band edge
    assert check_band_segment(nodes, inits, ["a", "b"], ["c1", "c2"], scale, {}) == 1
    for op, axis in (("Concat", 2), ("Split", 3)):
        ins = ["a", "b"] if op == "Concat" else ["a", "sizes"]
        node = helper.make_node(op, ins, ["x", "y"][: 1 if op == "Concat" else 2], axis=axis)
        with pytest.raises(BandingUnsupported, match="more than the channels"):
            check_band_segment([node], inits, ["a", "b"], ["x"], {**scale, "x": 1, "y": 1}, {})


@pytest.mark.parametrize("height, width, columns", [(64, 400, True), (224, 160, False)])
def test_a_panorama_runs_in_column_bands(banded, height, width, columns) -> None:
    # Row bands across a 6000x400 panorama held nearly all of it in each band (1,681 MiB
    # against 886 MiB in column bands); 16:9 and taller frames keep rows.
    seen: list[tuple[int, int]] = []
    band_segments = [s for s in banded.segments if s.band]
    real = [s.session for s in band_segments]

    class Spy:
        def __init__(self, session) -> None:
            self.session = session

        def __getattr__(self, name: str):
            return getattr(self.session, name)

        def run(self, outputs, feeds, *args):
            seen.extend(v.shape[-2:] for v in feeds.values() if v.ndim == 4)
            return self.session.run(outputs, feeds, *args)

    try:
        for seg in band_segments:
            seg.session = Spy(seg.session)
        banded.run(np.zeros((1, 3, height, width), np.float32))
    finally:
        for seg, session in zip(band_segments, real, strict=True):
            seg.session = session
    full = {(h, w) for h, w in seen if h * width == w * height}  # inputs at the frame's shape
    assert seen and not full  # every band input is a part of the frame
    if columns:
        assert all(w < h * width / height for h, w in seen)  # narrower than the frame
    else:
        assert all(h < w * height / width for h, w in seen)
