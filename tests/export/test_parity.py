"""Parity checks (ONNX Runtime vs PyTorch, ONNX vs ONNX), their inputs, and simplification."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")
onnxslim = pytest.importorskip("onnxslim")

import torch  # noqa: E402

from sllen.config import get_preset  # noqa: E402
from sllen.export.parity import check_parity, parity_inputs  # noqa: E402
from sllen.export.simplify import simplify_onnx  # noqa: E402
from sllen.model.sllen import SLLEN  # noqa: E402


@pytest.fixture(scope="module")
def tiny() -> SLLEN:
    torch.manual_seed(0)
    return SLLEN(get_preset("tiny")).eval()


@pytest.fixture(scope="module")
def decomposed(tiny: SLLEN, export_once) -> Path:
    return export_once(tiny)


def _perturbed(path: Path, out: Path, scale: float = 1.5) -> Path:
    """A copy of the model with the enhancement head's weights scaled (a wrong 'candidate')."""
    proto = onnx.load(str(path))
    init = next(t for t in proto.graph.initializer if t.name == "lle_decoder.head.weight")
    arr = onnx.numpy_helper.to_array(init) * scale
    init.CopyFrom(onnx.numpy_helper.from_array(arr.astype(np.float32), init.name))
    onnx.save(proto, str(out))
    return out


def test_parity_inputs_are_dark_scenes() -> None:
    x = parity_inputs()
    assert x.shape == (4, 3, 64, 96) and x.dtype == np.float32
    assert x.min() >= 0 and x.max() <= 1
    np.testing.assert_array_equal(x, parity_inputs())
    assert not np.array_equal(x, parity_inputs(seed=1))
    assert not np.array_equal(x[0], x[1])
    # darkened 8-bit captures: multiples of 1/255, mostly dark
    np.testing.assert_allclose(x * 255, np.round(x * 255), atol=1e-3)
    assert x.mean() < 0.35
    # scenes, not noise: neighbouring pixels are strongly correlated
    a, b = x[..., :-1].ravel(), x[..., 1:].ravel()
    assert np.corrcoef(a, b)[0, 1] > 0.5
    assert parity_inputs(2, (32, 48), seed=3).shape == (2, 3, 32, 48)


def test_check_parity_matches(decomposed: Path, tiny: SLLEN) -> None:
    tiny.train()  # the training flag is restored afterwards
    try:
        r = check_parity(tiny, decomposed, parity_inputs(2, (64, 96)), threads=1)
        assert tiny.training
    finally:
        tiny.eval()
    assert r["n"] == 2 and r["shape"] == [2, 3, 64, 96]
    assert r["max_abs"] < 1e-4 and r["mean_abs"] <= r["max_abs"]
    assert r["psnr"] > 80
    assert "segmentation_max_abs" not in r


def test_check_parity_detects_a_different_model(decomposed: Path, tiny: SLLEN) -> None:
    other = copy.deepcopy(tiny)
    with torch.no_grad():
        other.lle_decoder.head.bias.add_(0.2)
    r = check_parity(other, decomposed, parity_inputs(2, (32, 48)), threads=1)
    assert r["max_abs"] > 1e-3 and r["psnr"] < 60


def test_simplify_keeps_outputs_shapes_and_metadata(
    decomposed: Path, tiny: SLLEN, tmp_path: Path
) -> None:
    dst = tmp_path / "slim.onnx"
    r = simplify_onnx(decomposed, dst, threads=1)
    assert r["skipped"] is None and r["tool"].startswith("onnxslim")
    assert r["nodes_after"] <= r["nodes_before"]
    assert r["max_abs_diff"] < 1e-5
    before, after = onnx.load(str(decomposed)), onnx.load(str(dst))
    assert len(after.graph.node) == r["nodes_after"]
    onnx.checker.check_model(after)

    def io(p):
        return [
            (v.name, [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim])
            for v in [*p.graph.input, *p.graph.output]
        ]

    assert io(after) == io(before)
    assert {p.key: p.value for p in after.metadata_props} == {
        p.key: p.value for p in before.metadata_props
    }
    assert all(t.data_location == onnx.TensorProto.DEFAULT for t in after.graph.initializer)
    assert [p.name for p in tmp_path.iterdir()] == ["slim.onnx"]
    assert check_parity(tiny, dst, parity_inputs(2, (48, 96)), threads=1)["max_abs"] < 1e-4


def test_simplify_skips_when_the_tool_fails(decomposed: Path, tmp_path: Path, monkeypatch) -> None:
    def broken(*args, **kwargs):
        raise RuntimeError("unsupported op")

    monkeypatch.setattr(onnxslim, "slim", broken)
    dst = tmp_path / "out.onnx"
    r = simplify_onnx(decomposed, dst, threads=1)
    assert "unsupported op" in r["skipped"]
    assert r["nodes_after"] == r["nodes_before"] and r["max_abs_diff"] == 0.0
    assert onnx.load(str(dst)) == onnx.load(str(decomposed))


def test_simplify_refuses_a_graph_that_changes_outputs(
    decomposed: Path, tmp_path: Path, monkeypatch
) -> None:
    wrong = onnx.load(str(_perturbed(decomposed, tmp_path / "p.onnx")))
    monkeypatch.setattr(onnxslim, "slim", lambda model, *a, **k: wrong)
    dst = tmp_path / "out.onnx"
    with pytest.raises(ValueError, match="differs"):
        simplify_onnx(decomposed, dst, threads=1)
    assert not dst.exists()


def test_onnx_side_runs_without_torch(decomposed: Path, tmp_path: Path) -> None:
    # sllen.calib (no torch) uses parity_inputs, the ONNX Runtime helpers and simplify_onnx.
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "from sllen.export.parity import compare_images, ort_session, parity_inputs, run_ort\n"
        "from sllen.export.simplify import simplify_onnx\n"
        f"r = simplify_onnx({str(decomposed)!r}, {str(tmp_path / 's.onnx')!r}, threads=1)\n"
        "x = parity_inputs(1, (32, 48))\n"
        f"a = run_ort(ort_session({str(decomposed)!r}, 1), x)['output']\n"
        f"b = run_ort(ort_session({str(tmp_path / 's.onnx')!r}, 1), x)['output']\n"
        "print(r['skipped'], compare_images(b, a)['max_abs'])\n"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["None", "0.0"]
