"""torch -> ONNX: graph form of the attention modes, metadata, dynamic shapes, ablations."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")
pytest.importorskip("onnxslim")

import torch  # noqa: E402

import sllen  # noqa: E402
from sllen.config import get_preset  # noqa: E402
from sllen.export.onnx_export import attach_reference_attention, export_onnx  # noqa: E402
from sllen.export.parity import check_parity, parity_inputs  # noqa: E402
from sllen.export.simplify import simplify_onnx  # noqa: E402
from sllen.model.hsbab import MHA_ATTENTION, PLUGIN_ATTENTION, QUERY_CHUNK  # noqa: E402
from sllen.model.sllen import SLLEN  # noqa: E402

# Sizes that exercise the dynamic axes (all multiples of 16, H != W, batch 1 and 2).
SIZES = [(1, (32, 48)), (1, (64, 64)), (2, (48, 96))]


def _tiny(**overrides) -> SLLEN:
    torch.manual_seed(0)
    return SLLEN(get_preset("tiny", **overrides)).eval()


@pytest.fixture(scope="module")
def tiny() -> SLLEN:
    return _tiny()


@pytest.fixture(scope="module")
def decomposed(tiny: SLLEN, export_once) -> Path:
    return export_once(tiny)


@pytest.fixture(scope="module")
def plugin_seg(tiny: SLLEN, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("plugin") / "model.onnx"
    return export_onnx(tiny, path, attention="plugin", segmentation=True)


def _producers(graph) -> dict:
    return {out: node for node in graph.node for out in node.output}


def _consumers(graph, name: str) -> list:
    return [node for node in graph.node if name in node.input]


def _dims(value) -> list:
    return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]


def _meta(proto) -> dict[str, str]:
    return {p.key: p.value for p in proto.metadata_props}


def _check_common(proto, path: Path, attention: str, config, opset: int = 19) -> None:
    onnx.checker.check_model(proto)
    assert {o.domain: o.version for o in proto.opset_import}[""] == opset
    meta = _meta(proto)
    assert meta["sllen_attention"] == attention
    assert meta["sllen_precision"] == "fp32"
    assert meta["sllen_opset"] == str(opset)
    assert json.loads(meta["sllen_config"]) == config.to_dict()
    assert meta["sllen_preset"] == "tiny" and meta["sllen_version"] == sllen.__version__
    assert meta["sllen_variant"] == config.variant
    assert meta["sllen_size_multiple"] == "16"
    # one self-contained file: no external-data initializers, nothing written beside it
    assert all(t.data_location == onnx.TensorProto.DEFAULT for t in proto.graph.initializer)
    assert [p.name for p in path.parent.iterdir()] == [path.name]
    assert [i.name for i in proto.graph.input] == ["input"]
    assert _dims(proto.graph.input[0]) == ["batch", 3, "height", "width"]
    assert proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert _dims(proto.graph.output[0]) == ["batch", 3, "height", "width"]


@pytest.fixture(scope="module")
def mha(tiny: SLLEN, export_once) -> Path:
    return export_once(tiny, attention="mha")


def test_decomposed_graph(decomposed: Path, tiny: SLLEN) -> None:
    proto = onnx.load(str(decomposed))
    _check_common(proto, decomposed, "decomposed", tiny.config)
    assert [o.name for o in proto.graph.output] == ["output"]
    g = proto.graph
    assert not any(n.domain for n in g.node)
    producers = _producers(g)
    # MatMul -> Softmax -> MatMul: the attention, the only Softmax node (HSEB's class softmax
    # is written as ReduceMax/Sub/Exp/ReduceSum/Div, which ONNX Runtime runs 10x faster)
    softmaxes = [n for n in g.node if n.op_type == "Softmax"]
    attn = [n for n in softmaxes if producers[n.input[0]].op_type == "MatMul"]
    assert len(attn) == 1 and len(softmaxes) == 1
    assert {"ReduceMax", "Exp", "ReduceSum", "Div"} <= {n.op_type for n in g.node}
    softmax = attn[0]
    assert [c.op_type for c in _consumers(g, softmax.output[0])] == ["MatMul"]
    # 1/sqrt(d) is folded into Q's weights: no Mul/Div on the scores nor on Q or K
    qk = producers[softmax.input[0]]
    for name in qk.input:
        node = producers[name]
        while node.op_type in ("Transpose", "Reshape"):
            node = producers[node.input[0]]
        assert node.op_type == "Conv", f"{name} comes from {node.op_type}, not the projection"
    # the exported copy was changed, the caller's model was not
    assert tiny.hsbab.mode == "sdpa" and tiny.hsbab.scale is None


@pytest.mark.parametrize("n,size", SIZES)
def test_decomposed_matches_pytorch_at_several_sizes(
    decomposed: Path, tiny: SLLEN, n: int, size: tuple[int, int]
) -> None:
    r = check_parity(tiny, decomposed, parity_inputs(n, size), threads=1)
    assert r["shape"] == [n, 3, *size]
    assert r["max_abs"] < 1e-4, r


def test_plugin_graph(plugin_seg: Path, tiny: SLLEN) -> None:
    proto = onnx.load(str(plugin_seg))
    _check_common(proto, plugin_seg, "plugin", tiny.config)
    g = proto.graph
    assert {o.domain: o.version for o in proto.opset_import}["sllen"] == 1
    custom = [n for n in g.node if n.domain]
    assert [(n.domain, n.op_type) for n in custom] == [("sllen", "SllenAttention")]
    node = custom[0]
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    cfg = tiny.config
    assert attrs == {
        "num_heads": cfg.attention_heads,
        "head_dim": cfg.head_dim,
        "scale": 1.0,
        "plugin_version": b"1",
        "plugin_namespace": b"sllen",
    }
    assert len(node.input) == 3 and len(node.output) == 1
    # no decomposed attention left: no Softmax, no MatMul
    assert sum(n.op_type == "Softmax" for n in g.node) == 0
    assert not any(n.op_type == "MatMul" for n in g.node)
    assert [o.name for o in g.output] == ["output", "segmentation"]
    assert _dims(g.output[1]) == ["batch", cfg.num_classes, "height", "width"]
    # registered only during the export
    assert "fn" not in PLUGIN_ATTENTION
    assert tiny.hsbab.mode == "sdpa" and tiny.hsbab.scale is None


def test_plugin_graph_runs_with_reference_attention(plugin_seg: Path, tiny: SLLEN) -> None:
    # Q, K, V wiring of the plugin node checked numerically (reference function in ORT)
    r = check_parity(tiny, plugin_seg, parity_inputs(2, (48, 96)), threads=1)
    assert r["max_abs"] < 1e-4 and r["segmentation_max_abs"] < 1e-4, r
    proto = onnx.load(str(plugin_seg))
    assert not proto.functions  # the file itself stays plugin-only
    assert len(attach_reference_attention(proto).functions) == 1


def test_simplify_plugin_graph(plugin_seg: Path, tmp_path: Path) -> None:
    r = simplify_onnx(plugin_seg, tmp_path / "slim.onnx", threads=1)
    assert r["skipped"] is None, r
    assert r["nodes_after"] <= r["nodes_before"] and r["max_abs_diff"] < 1e-5
    proto = onnx.load(str(tmp_path / "slim.onnx"))
    assert [(n.domain, n.op_type) for n in proto.graph.node if n.domain] == [
        ("sllen", "SllenAttention")
    ]
    assert _meta(proto) == _meta(onnx.load(str(plugin_seg)))


def test_ablation_without_hsbab_has_no_attention(tmp_path: Path) -> None:
    model = _tiny(use_hsbab=False)  # SLLEN-1; also covers opset 20
    path = export_onnx(model, tmp_path / "sllen1.onnx", attention="plugin", opset=20)
    proto = onnx.load(str(path))
    _check_common(proto, path, "plugin", model.config, opset=20)
    assert _meta(proto)["sllen_variant"] == "SLLEN-1"
    ops = {n.op_type for n in proto.graph.node}
    assert not ops & {"Softmax", "MatMul", "SllenAttention"}
    assert not any(n.domain for n in proto.graph.node)
    r = check_parity(model, path, parity_inputs(2, (32, 48)), threads=1)
    assert r["max_abs"] < 1e-4, r


def test_rejects_bad_arguments(tiny: SLLEN, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="attention"):
        export_onnx(tiny, tmp_path / "x.onnx", attention="sdpa")
    with pytest.raises(ValueError, match="opset"):
        export_onnx(tiny, tmp_path / "x.onnx", opset=23)
    assert not list(tmp_path.iterdir())


def test_plugin_registry_restored_on_failure(tiny: SLLEN, tmp_path: Path, monkeypatch) -> None:
    def boom(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(torch.onnx, "export", boom)
    with pytest.raises(RuntimeError, match="boom"):
        export_onnx(tiny, tmp_path / "x.onnx", attention="plugin")
    assert "fn" not in PLUGIN_ATTENTION
    assert not list(tmp_path.iterdir())


def test_reference_attention_function_matches_numpy() -> None:
    # The reference used for plugin graphs in ORT: softmax(Q K^T * scale) V, per head.
    from onnx import TensorProto, helper

    from sllen.export.parity import ort_session

    shape = ["B", 2, "N", 4]
    node = helper.make_node(
        "SllenAttention", ["q", "k", "v"], ["o"], domain="sllen", num_heads=2, head_dim=4,
        scale=0.5, plugin_version="1", plugin_namespace="sllen",
    )  # fmt: skip
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, shape) for n in "qkv"],
        [helper.make_tensor_value_info("o", TensorProto.FLOAT, shape)],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 19), helper.make_opsetid("sllen", 1)]
    )
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((1, 2, 5, 4)).astype(np.float32) for _ in range(3))
    (got,) = ort_session(model, threads=1).run(None, {"q": q, "k": k, "v": v})
    s = q @ k.transpose(0, 1, 3, 2) * 0.5
    p = np.exp(s - s.max(-1, keepdims=True))
    want = (p / p.sum(-1, keepdims=True)) @ v
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_mha_graph(mha: Path, tiny: SLLEN) -> None:
    proto = onnx.load(str(mha))
    _check_common(proto, mha, "mha", tiny.config)
    g = proto.graph
    assert {o.domain: o.version for o in proto.opset_import}["com.microsoft"] == 1
    custom = [n for n in g.node if n.domain]
    assert [(n.domain, n.op_type) for n in custom] == [("com.microsoft", "MultiHeadAttention")]
    node = custom[0]
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    assert attrs == {"num_heads": tiny.config.attention_heads, "scale": 1.0}  # folded into Q
    assert len(node.input) == 3 and len(node.output) == 1
    # no N x N scores anywhere: no Softmax, no MatMul
    assert not any(n.op_type in ("Softmax", "MatMul") for n in g.node)
    # Q and K come from the projections through layout ops only (the scale is in Q's weights)
    producers = _producers(g)
    for name in node.input[:2]:
        src = producers[name]
        while src.op_type in ("Transpose", "Reshape"):
            src = producers[src.input[0]]
        assert src.op_type == "Conv"
    assert "fn" not in MHA_ATTENTION and "fn" not in PLUGIN_ATTENTION
    assert tiny.hsbab.mode == "sdpa" and tiny.hsbab.scale is None


@pytest.mark.parametrize("n,size", SIZES)
def test_mha_matches_pytorch_at_several_sizes(
    mha: Path, tiny: SLLEN, n: int, size: tuple[int, int]
) -> None:
    r = check_parity(tiny, mha, parity_inputs(n, size), threads=1)
    assert r["shape"] == [n, 3, *size]
    assert r["max_abs"] < 1e-4, r


@pytest.mark.slow
def test_mha_exact_over_many_blocks(export_once) -> None:
    # Heads of 64 as in the edge preset: ONNX Runtime's flash kernel then takes keys in blocks
    # of L2 / (4 * 4 * 128) (1,024 with a 2 MB L2) and queries in blocks of 128; 2,400 tokens
    # span several of both, and more than PyTorch's QUERY_CHUNK, so the reference is torch's
    # chunked SDPA.
    model = _tiny(attention_dim=128, attention_heads=2)
    size = (16 * 40, 16 * 60)
    assert (size[0] // 16) * (size[1] // 16) > QUERY_CHUNK
    path = export_once(model, attention="mha")
    r = check_parity(model, path, parity_inputs(1, size), threads=1)
    assert r["max_abs"] < 1e-4, r


def test_simplify_mha_graph(mha: Path, tmp_path: Path) -> None:
    r = simplify_onnx(mha, tmp_path / "slim.onnx", threads=1)
    assert r["skipped"] is None and r["max_abs_diff"] < 1e-5, r
    proto = onnx.load(str(tmp_path / "slim.onnx"))
    assert [(n.domain, n.op_type) for n in proto.graph.node if n.domain] == [
        ("com.microsoft", "MultiHeadAttention")
    ]
    assert _meta(proto)["sllen_attention"] == "mha"


def test_mha_registry_restored_on_failure(tiny: SLLEN, tmp_path: Path, monkeypatch) -> None:
    def boom(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(torch.onnx, "export", boom)
    with pytest.raises(RuntimeError, match="boom"):
        export_onnx(tiny, tmp_path / "x.onnx", attention="mha")
    assert "fn" not in MHA_ATTENTION
    assert not list(tmp_path.iterdir())


def test_mha_mode_in_pytorch_is_sdpa(tiny: SLLEN) -> None:
    # Outside an export the "mha" mode computes what "sdpa" does (chunked past QUERY_CHUNK).
    from sllen.model.hsbab import attention

    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, 2, QUERY_CHUNK + 100, 8, generator=g) for _ in range(3))
    torch.testing.assert_close(attention(q, k, v, mode="mha"), attention(q, k, v, mode="sdpa"))


@pytest.fixture(scope="module")
def refined(export_once) -> Path:
    return export_once(_tiny(refine_radius=2, refine_chroma_radius=4), segmentation=True)


def test_refinement_nodes_named_and_exact(refined: Path) -> None:
    from sllen.calib.graph import (
        REFINE_PREFIX,
        input_nodes,
        output_nodes,
        refine_nodes,
        weighted_nodes,
    )

    proto = onnx.load(str(refined))
    names = refine_nodes(proto)
    # Everything after the sigmoid on the image output, and the guide's grey level; its box
    # filters are constant-kernel Convs, not weighted layers for INT8.
    assert {n.op_type for n in proto.graph.node if n.name in names} >= {
        "ReduceMean", "Conv", "Div", "Clip", "Concat", "Split", "AveragePool", "Resize",
    }  # fmt: skip
    assert not set(names) & set(weighted_nodes(proto))
    # Whatever reads the refinement's tensors is the refinement too: the exporter's optimiser
    # makes the Splits of its batched box means without the records the names come from.
    made = {o for n in proto.graph.node if n.name in names for o in n.output}
    assert all(n.name in names for n in proto.graph.node if made & set(n.input))
    by_output = {n.output[0]: n for n in proto.graph.node}
    assert by_output["output"].name.startswith(REFINE_PREFIX)
    assert not any(n.startswith(REFINE_PREFIX) for n in output_nodes(proto) + input_nodes(proto))
    assert "Sigmoid" in {n.op_type for n in proto.graph.node if n.name in output_nodes(proto)}
    model = _tiny(refine_radius=2, refine_chroma_radius=4)
    r = check_parity(model, refined, parity_inputs(2, (48, 64)))
    assert r["max_abs"] < 1e-5, r
