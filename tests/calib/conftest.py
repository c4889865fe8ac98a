"""Shared fixtures of the calib tests: a SLLEN ONNX file written with torch (the tests may use
torch; sllen.calib itself must not)."""

import warnings

import onnx
import pytest


def export_sllen_fixture(path) -> str:
    """SLLEN as ONNX: the tiny preset with random weights (the bundled model's numbers are
    measured by sllen-export and recorded in docs/export.md, not in unit tests); decomposed
    attention with the scale folded, dynamic batch/H/W, opset 19."""
    torch = pytest.importorskip("torch")
    from sllen.config import get_preset
    from sllen.model.sllen import SLLEN

    torch.manual_seed(0)
    model = SLLEN(get_preset("tiny"))
    model.hsbab.mode = "decomposed"
    model.hsbab.fold_scale()
    model.eval()
    axes = {0: "batch", 2: "height", 3: "width"}
    with warnings.catch_warnings():  # the TorchScript exporter is deprecated, and fast
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            model, (torch.rand(1, 3, 64, 64),), str(path), input_names=["input"],
            output_names=["output"], dynamic_axes={"input": axes, "output": axes},
            opset_version=19, dynamo=False,
        )  # fmt: skip
    m = onnx.load(str(path))
    for k, v in {"sllen_precision": "fp32", "sllen_preset": model.config.preset}.items():
        entry = m.metadata_props.add()
        entry.key, entry.value = k, v
    onnx.save(m, str(path))
    return str(path)


@pytest.fixture(scope="session")
def sllen_onnx(tmp_path_factory) -> str:
    return export_sllen_fixture(tmp_path_factory.mktemp("calib") / "sllen.onnx")
