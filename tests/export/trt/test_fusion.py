"""sllen.export.trt.fusion: the engine inspector's listing and the attention-fusion verdict.

The verdict is checked on listings in tests/export/data; inspect_layers runs against the fake
`tensorrt` module (tests/fakes/fake_tensorrt.py, a MOCK: TensorRT cannot be installed here).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from fake_tensorrt import names

from sllen.export.trt.fusion import (
    FUSED_ATTENTION_RULES,
    FusionRule,
    attention_fused,
    attention_fusion,
    inspect_layers,
    parse_layer_info,
)

DATA = Path(__file__).resolve().parents[1] / "data"


# --------------------------------------------------------------------------- inspector


def test_inspect_layers_without_tensorrt(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # import tensorrt -> ImportError
    with pytest.raises(RuntimeError, match="not installed"):
        inspect_layers(b"engine")


def test_inspect_layers_from_a_file(fake_trt, tmp_path):
    trt = fake_trt()
    engine = tmp_path / "model.engine"
    engine.write_bytes(b"ENGINE-BYTES")
    layers = inspect_layers(engine)
    assert ("deserialize_cuda_engine", b"ENGINE-BYTES") in trt.calls
    assert [layer["Name"] for layer in layers][3] == "_gemm_mha_v2_myl0_172"


def test_undeserializable_engine(fake_trt, tmp_path, monkeypatch):
    trt = fake_trt()
    monkeypatch.setattr(trt.Runtime, "deserialize_cuda_engine", lambda self, data: None)
    with pytest.raises(RuntimeError, match="could not deserialize the engine"):
        inspect_layers(b"garbage")


def test_inspect_layers_loads_the_plugin_first(fake_trt, tmp_path):
    trt = fake_trt()
    lib = tmp_path / "libsllen_attention_plugin.so"
    lib.write_bytes(b"\x7fELF")
    inspect_layers(b"ENGINE", plugin_library=lib)
    order = names(trt)
    assert order.index("dlopen") < order.index("deserialize_cuda_engine")


# --------------------------------------------------------------------------- fusion decision


def listing(name):
    return parse_layer_info((DATA / name).read_text())


def test_recorded_fused_listing():
    layers = listing("layers_trt10_detailed_fused.json")
    assert attention_fusion(layers) == "fused"
    assert attention_fused(layers)
    # the fused kernel's own Metadata names the Softmax it absorbed; it still counts as fused
    assert "Softmax" in layers[3]["Metadata"]


def test_recorded_unfused_listing():
    layers = listing("layers_trt10_detailed_unfused.json")
    assert attention_fusion(layers) == "unfused"
    assert not attention_fused(layers)
    # "/rsaeb/mha_proj/MatMul" has "mha" in its ONNX name: a name is not a fused kernel
    assert any("mha" in layer["Name"] for layer in layers)


def test_recorded_names_only_listing_is_unknown():
    layers = listing("layers_names_only.json")
    assert all(set(layer) == {"Name"} for layer in layers)
    # the opaque Myelin region mentions Softmax in its name span but says nothing of fusion
    assert attention_fusion(layers) == "unknown"
    assert not attention_fused(layers)


def test_scope_limits_softmax_evidence_to_the_attention_block():
    unfused = listing("layers_trt10_detailed_unfused.json")
    assert attention_fusion(unfused, scope="/rsaeb/") == "unfused"
    attention_gone = [layer for layer in unfused if "/rsaeb/" not in layer.get("Metadata", "")]
    assert attention_fusion(attention_gone) == "unfused"  # the segmentation Softmax
    assert attention_fusion(attention_gone, scope="/rsaeb/") == "unknown"
    assert attention_fused(listing("layers_trt10_detailed_fused.json"), scope="/rsaeb/")


@pytest.mark.parametrize(
    "layer",
    [
        {"Name": "_gemm_mha_v2_myl3_6", "LayerType": "kgen"},
        {"Name": "__mye8037_gemm_mha_v2", "LayerType": "kgen"},
        {"Name": "/attn/fused", "TacticName": "_gemm_mha_v2_0xbcebb264ff01c4c4"},
        {"Name": "_gemv_mha_v1_myl0_3", "LayerType": "kgen"},
        {"Name": "attn", "TacticName": "fmha_v2_flash_attention_fp16_64_32_S_qkv_64_sm89_kernel"},
    ],
)
def test_fused_kernel_names(layer):
    assert attention_fusion([layer]) == "fused"


FOREIGN_NODE = "{ForeignNode[/attn/Softmax.../attn/MatMul_1]}"


@pytest.mark.parametrize(
    "layer,status",
    [
        ({"Name": "/rsaeb/mha/MatMul_myl0_1", "LayerType": "gemm"}, "unknown"),
        ({"Name": "x", "Metadata": "[ONNX Layer: /rsaeb/fmha_v2/MatMul]"}, "unknown"),
        ({"Name": "/attn/Softmax", "LayerType": "Softmax"}, "unfused"),
        (
            {"Name": "{ForeignNode[/attn/Softmax.../attn/MatMul_1]}", "LayerType": "Myelin"},
            "unknown",
        ),
        ({"Name": 12, "LayerType": None}, "unknown"),
    ],
)
def test_names_that_are_not_fused_kernels(layer, status):
    assert attention_fusion([layer]) == status


def test_rules_are_data():
    rules = (FusionRule(("LayerType",), re.compile("^attention$"), "test"),)
    assert attention_fusion([{"Name": "a", "LayerType": "attention"}], rules=rules) == "fused"
    assert all(rule.source for rule in FUSED_ATTENTION_RULES)


def test_parse_layer_info_errors():
    with pytest.raises(ValueError, match="no 'Layers'"):
        parse_layer_info("{}")
    with pytest.raises(ValueError, match="no 'Layers'"):
        parse_layer_info("[]")
    assert parse_layer_info({"Layers": ["a", {"Name": "b"}]}) == [{"Name": "a"}, {"Name": "b"}]


@pytest.mark.parametrize(
    ("listing", "fusion"),
    [
        ("layers_trt10_detailed_fused.json", "fused"),
        ("layers_trt10_detailed_unfused.json", "unfused"),
        ("layers_names_only.json", "unknown"),
    ],
)
def test_recorded_listings_classify(listing, fusion) -> None:
    layers = parse_layer_info((DATA / listing).read_text())
    assert attention_fusion(layers) == fusion
