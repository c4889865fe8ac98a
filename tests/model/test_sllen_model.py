"""Shapes, ablation switches and block semantics of the SLLEN network."""

import math

import pytest
import torch

from sllen.config import PRESETS, ModelConfig, get_preset, widths
from sllen.model.ffb import FFB
from sllen.model.hsbab import HSBAB
from sllen.model.rsaeb import RSAEB
from sllen.model.sllen import SLLEN


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.mark.parametrize("hw", [(16, 16), (37, 50), (64, 48), (5, 3)])
def test_enhance_any_size(hw: tuple[int, int]) -> None:
    model = SLLEN(get_preset("tiny")).eval()
    x = torch.rand(2, 3, *hw)
    y, seg = model.enhance(x, return_segmentation=True)
    assert y.shape == x.shape
    assert seg.shape == (2, model.config.num_classes, *hw)
    assert y.min() >= 0 and y.max() <= 1
    single = model.enhance(x[0])
    assert single.shape == x[0].shape
    torch.testing.assert_close(single, y[0], atol=1e-5, rtol=1e-4)


def test_forward_requires_multiple_of_16() -> None:
    model = SLLEN(get_preset("tiny"))
    with pytest.raises(ValueError, match="multiple of 16"):
        model(torch.rand(1, 3, 20, 32))


def test_padding_is_cropped_back_not_leaked() -> None:
    # A 16x16 image gives the same pixels whether run directly or through enhance().
    model = SLLEN(get_preset("tiny")).eval()
    x = torch.rand(1, 3, 32, 32)
    torch.testing.assert_close(model.enhance(x), model(x))


@pytest.mark.parametrize(
    "use_hsbab,use_rsaeb,variant",
    [
        (True, True, "SLLEN"),
        (False, True, "SLLEN-1"),
        (True, False, "SLLEN-2"),
        (False, False, "SLLEN-3"),
    ],
)
def test_ablation_switches(use_hsbab: bool, use_rsaeb: bool, variant: str) -> None:
    cfg = get_preset("tiny", use_hsbab=use_hsbab, use_rsaeb=use_rsaeb)
    model = SLLEN(cfg)
    assert cfg.variant == variant
    assert (model.hsbab is not None) == use_hsbab and (model.hseb is not None) == use_hsbab
    assert (model.rsaeb is not None) == use_rsaeb
    assert (model.ffb is not None) == (use_hsbab or use_rsaeb)
    out = model.forward_all(torch.rand(1, 3, 32, 32), with_segmentation=False)
    assert out.image.shape == (1, 3, 32, 32)
    # SLLEN-3 is a plain U-Net: enhancement does not run SSaN at all.
    assert (out.segmentation is None) == (variant == "SLLEN-3")


def test_sllen3_output_does_not_depend_on_ssan() -> None:
    model = SLLEN(get_preset("tiny", use_hsbab=False, use_rsaeb=False)).eval()
    x = torch.rand(1, 3, 32, 32)
    before = model(x)
    with torch.no_grad():
        for p in model.ss_decoder.parameters():
            p.add_(1.0)
    torch.testing.assert_close(model(x), before)


def test_full_model_output_depends_on_ssan() -> None:
    model = SLLEN(get_preset("tiny")).eval()
    x = torch.rand(1, 3, 32, 32)
    before = model(x)
    with torch.no_grad():
        for p in model.ss_decoder.parameters():
            p.add_(0.5)
    assert not torch.allclose(model(x), before)


def test_independent_variant_has_its_own_ssan_encoder() -> None:
    model = SLLEN(get_preset("tiny", shared_encoder=False))
    ss_ids = {id(p) for p in model.ss_parameters()}
    lle_ids = {id(p) for p in model.lle_parameters()}
    assert not ss_ids & lle_ids
    shared = SLLEN(get_preset("tiny"))
    enc_ids = {id(p) for p in shared.encoder.parameters()}
    assert enc_ids <= {id(p) for p in shared.ss_parameters()}
    assert enc_ids <= {id(p) for p in shared.lle_parameters()}


def test_stage_gradients_reach_their_parameter_groups() -> None:
    model = SLLEN(get_preset("tiny"))
    x = torch.rand(2, 3, 32, 32)
    model.segment(x).mean().backward()
    assert all(p.grad is not None for p in model.ss_parameters())
    assert all(p.grad is None for p in model.lle_decoder.parameters())
    model.zero_grad(set_to_none=True)
    model.forward_all(x, with_segmentation=False).image.mean().backward()
    assert all(p.grad is not None for p in model.lle_parameters())


def test_kd_feature_shapes_pair_up() -> None:
    model = SLLEN(get_preset("tiny"))
    out = model.forward_all(torch.rand(1, 3, 64, 64))
    enc_shapes = {tuple(f.shape) for f in out.encoder_features[:-1]}
    dec_shapes = {tuple(f.shape) for f in out.decoder_features}
    assert enc_shapes == dec_shapes


def test_hsbab_is_scaled_dot_product_attention() -> None:
    block = HSBAB(semantic_channels=6, feature_channels=5, dim=8, heads=2)
    f_h, f_l = torch.rand(1, 6, 2, 3), torch.rand(1, 5, 2, 3)
    got = block(f_h, f_l)
    # Reference written out: per head, softmax(Q K^T / sqrt(d)) V over the 6 positions.
    q = block.q(f_h).flatten(2).reshape(1, 2, 4, 6).transpose(-1, -2)
    k = block.k(f_h).flatten(2).reshape(1, 2, 4, 6).transpose(-1, -2)
    v = block.v(f_l).flatten(2).reshape(1, 2, 4, 6).transpose(-1, -2)
    att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(4), dim=-1) @ v
    ref = block.proj(att.transpose(-1, -2).reshape(1, 8, 2, 3))
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=1e-5)


def test_rsaeb_is_affine_in_f_l() -> None:
    block = RSAEB(ief_channels=3, feature_channels=4, hidden=5)
    f_i, f_l = torch.rand(1, 3, 4, 4), torch.rand(1, 4, 4, 4)
    beta = block(f_i, torch.zeros_like(f_l))
    gamma = block(f_i, torch.ones_like(f_l)) - beta
    torch.testing.assert_close(block(f_i, f_l), gamma * f_l + beta, atol=1e-5, rtol=1e-5)


def test_ffb_weight_trades_off_branches() -> None:
    block = FFB(4)
    a, b = torch.rand(1, 4, 3, 3), torch.rand(1, 4, 3, 3)
    with torch.no_grad():
        block.logit_w.fill_(50.0)  # w -> 1: only the attention branch
    torch.testing.assert_close(block(a, b), block.conv_hl(a))
    with torch.no_grad():
        block.logit_w.fill_(-50.0)
    torch.testing.assert_close(block(a, b), block.conv_r(b))


def test_presets_match_the_design() -> None:
    paper = PRESETS["paper"]
    assert paper.hseb_channels == (32, 128, 512)
    assert paper.attention_heads == 1 and paper.head_dim == 512
    assert paper.num_classes == 21 and paper.size_multiple == 16
    edge = PRESETS["edge"]
    # TensorRT fuses attention in FP16 for head sizes 16..256 that are multiples of 8.
    assert 16 <= edge.head_dim <= 256 and edge.head_dim % 8 == 0
    tiny = SLLEN(PRESETS["tiny"])
    assert sum(p.numel() for p in tiny.parameters()) < 100_000


def test_width_scales_the_convolutions_and_keeps_the_attention() -> None:
    edge = PRESETS["edge"]
    wide = get_preset("edge", **widths(edge, 1.5))
    assert wide.encoder_channels == (24, 48, 96, 192, 192) and wide.hseb_channels == (24, 48, 192)
    assert wide.rsaeb_hidden == 96 and wide.head_dim == edge.head_dim == 64
    assert widths(edge, 1.0) == {
        "encoder_channels": edge.encoder_channels,
        "hseb_channels": edge.hseb_channels,
        "rsaeb_hidden": edge.rsaeb_hidden,
    }
    model = SLLEN(get_preset("tiny", **widths(PRESETS["tiny"], 2.0)))
    out = model.enhance(torch.rand(1, 3, 32, 32))
    assert out.shape == (1, 3, 32, 32)
    for bad in (0.1, 5.0):
        with pytest.raises(ValueError, match="--width must be in"):
            widths(edge, bad)


def test_config_validation_and_round_trip() -> None:
    cfg = get_preset("edge", use_rsaeb=False)
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown preset"):
        get_preset("huge")
    with pytest.raises(ValueError, match="divisible"):
        get_preset("tiny", attention_dim=10, attention_heads=3)
    with pytest.raises(ValueError, match="unknown model config keys"):
        ModelConfig.from_dict({"widths": 3})


def test_attention_modes_and_scale_folding_agree() -> None:
    block = HSBAB(semantic_channels=6, feature_channels=5, dim=16, heads=2).eval()
    f_h, f_l = torch.rand(2, 6, 3, 4), torch.rand(2, 5, 3, 4)
    ref = block(f_h, f_l)
    block.mode = "decomposed"
    torch.testing.assert_close(block(f_h, f_l), ref, atol=1e-5, rtol=1e-5)
    block.fold_scale()
    block.fold_scale()  # idempotent
    assert block.scale == 1.0
    torch.testing.assert_close(block(f_h, f_l), ref, atol=1e-5, rtol=1e-5)
    block.mode = "sdpa"
    torch.testing.assert_close(block(f_h, f_l), ref, atol=1e-5, rtol=1e-5)
    block.mode = "plugin"
    with pytest.raises(RuntimeError, match="exporting"):
        block(f_h, f_l)


def test_chunked_attention_is_exact(monkeypatch: pytest.MonkeyPatch) -> None:
    from sllen.model import hsbab

    q, k, v = torch.rand(1, 2, 50, 8), torch.rand(1, 2, 50, 8), torch.rand(1, 2, 50, 8)
    whole = hsbab.attention(q, k, v)
    monkeypatch.setattr(hsbab, "QUERY_CHUNK", 16)  # 50 tokens -> 4 query blocks
    torch.testing.assert_close(hsbab.attention(q, k, v), whole, atol=1e-6, rtol=1e-5)
