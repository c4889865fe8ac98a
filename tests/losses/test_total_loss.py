import pytest
import torch

from sllen.losses import (
    GradientLoss,
    IlluminationTVLoss,
    LLELoss,
    LossWeights,
    PerceptualLoss,
    SmoothL1Loss,
    SSIMLoss,
    VGG16Features,
    distillation_loss,
)


def _batch(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    target = torch.rand(2, 3, 16, 16, generator=g)
    low = 0.15 * target
    enhanced = torch.rand(2, 3, 16, 16, generator=g).requires_grad_(True)
    enc = [torch.randn(2, 4, 16, 16, generator=g), torch.randn(2, 8, 8, 8, generator=g)]
    dec = [torch.randn(2, 8, 8, 8, generator=g, requires_grad=True)]
    return enhanced, target, low, enc, dec


def test_default_weights():
    w = LossWeights()
    assert (w.smooth_l1, w.perceptual, w.distillation, w.illumination_tv, w.gradient, w.ssim) == (
        1.0, 0.05, 0.05, 0.05, 0.1, 0.0,
    )  # fmt: skip
    with pytest.raises(ValueError):
        LossWeights(gradient=-1.0)


def test_total_is_the_weighted_sum_and_gradients_reach_enhanced():
    enhanced, target, low, enc, dec = _batch()
    loss = LLELoss(LossWeights(), gradient_level=0.03)  # no VGG weights: perceptual skipped
    total, terms = loss(enhanced, target, low, enc, dec)
    assert set(terms) == {"smooth_l1", "distillation", "illumination_tv", "gradient", "total"}
    expected = (
        1.0 * SmoothL1Loss()(enhanced, target)
        + 0.05 * distillation_loss(enc, dec)
        + 0.05 * IlluminationTVLoss()(enhanced, low)
        + 0.1 * GradientLoss(0.03)(enhanced)
    )
    assert total.item() == pytest.approx(expected.item(), rel=1e-6)
    assert terms["total"] == pytest.approx(total.item())
    total.backward()
    assert enhanced.grad is not None and enhanced.grad.abs().sum() > 0
    assert dec[0].grad is not None


def test_zero_weight_terms_are_absent_and_do_not_contribute():
    enhanced, target, low, _, _ = _batch()
    weights = LossWeights(perceptual=0.0, distillation=0.0, gradient=0.0)
    loss = LLELoss(weights, gradient_level=None)  # G not needed without the gradient term
    total, terms = loss(enhanced, target, low)  # no features needed without distillation
    assert set(terms) == {"smooth_l1", "illumination_tv", "total"}
    assert loss.active == ("smooth_l1", "illumination_tv") and loss.skipped == {}
    expected = SmoothL1Loss()(enhanced, target) + 0.05 * IlluminationTVLoss()(enhanced, low)
    assert total.item() == pytest.approx(expected.item(), rel=1e-6)


def test_ssim_term_is_off_by_default_and_adds_when_weighted():
    enhanced, target, low, enc, dec = _batch()
    weights = LossWeights(perceptual=0.0, distillation=0.0, gradient=0.0, ssim=0.2)
    total, terms = LLELoss(weights)(enhanced, target, low)
    assert set(terms) == {"smooth_l1", "illumination_tv", "ssim", "total"}
    expected = (
        SmoothL1Loss()(enhanced, target)
        + 0.05 * IlluminationTVLoss()(enhanced, low)
        + 0.2 * SSIMLoss()(enhanced, target)
    )
    assert total.item() == pytest.approx(expected.item(), rel=1e-6)


@pytest.mark.parametrize("term", ["exposure", "spread"])
def test_optional_terms_add_only_when_weighted(term: str) -> None:
    # The exposure and brightness-spread terms (not in Eq. 11): absent at weight 0.
    a, b = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    rest = dict(perceptual=0, distillation=0, gradient=0, illumination_tv=0)
    total_off, logs_off = LLELoss(LossWeights(**rest))(a, b, a)
    total_on, logs_on = LLELoss(LossWeights(**rest, **{term: 2.0}))(a, b, a)
    assert term not in logs_off and logs_on[term] > 0
    assert total_on.item() == pytest.approx(total_off.item() + 2.0 * logs_on[term], rel=1e-5)


def test_perceptual_without_weights_is_skipped_and_reported():
    loss = LLELoss(LossWeights(), gradient_level=0.03, perceptual=None)
    assert "perceptual" not in loss.active
    assert "perceptual" in loss.skipped


def test_perceptual_term_with_weights():
    enhanced, target, low, enc, dec = _batch()
    perceptual = PerceptualLoss(VGG16Features(), layers=["relu1_2"])
    loss = LLELoss(LossWeights(perceptual=0.5), 0.03, perceptual)
    total, terms = loss(enhanced, target, low, enc, dec)
    assert terms["perceptual"] > 0
    others = [n for n in terms if n not in {"total", "perceptual"}]
    rest = sum(getattr(LossWeights(), n) * terms[n] for n in others)
    assert total.item() == pytest.approx(rest + 0.5 * terms["perceptual"], rel=1e-5)


def test_configuration_errors():
    enhanced, target, low, _, _ = _batch()
    with pytest.raises(ValueError, match="gradient_level"):
        LLELoss(LossWeights(), gradient_level=None)
    with pytest.raises(ValueError, match="no loss term"):
        LLELoss(LossWeights(0.0, 0.0, 0.0, 0.0, 0.0), 0.03)
    with pytest.raises(ValueError, match="enc_feats"):
        LLELoss(LossWeights(), 0.03)(enhanced, target, low)
