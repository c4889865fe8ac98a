"""SLLEN losses (Sec. II-C): the SS-stage segmentation loss and the LLE-stage terms of Eq. 11
(and SSIM, exposure and brightness-spread terms that are not the paper's, off by default)."""

from .distillation import DistillationLoss, distillation_loss, match_by_shape
from .exposure import ExposureLoss
from .gradient import GradientLoss, mean_gradient
from .illumination import IlluminationTVLoss, illumination_map, total_variation
from .perceptual import (
    DEFAULT_LAYERS,
    VGG16_LAYERS,
    PerceptualLoss,
    VGG16Features,
    convert_vgg16_to_safetensors,
    load_vgg16_features,
    read_vgg16_state_dict,
)
from .reconstruction import SmoothL1Loss
from .segmentation import IGNORE_INDEX, SegmentationLoss, segmentation_loss
from .spread import BrightnessSpreadLoss, mean_lightness
from .structural import SSIMLoss
from .total import LLELoss, LossWeights

__all__ = [
    "DEFAULT_LAYERS",
    "BrightnessSpreadLoss",
    "IGNORE_INDEX",
    "VGG16_LAYERS",
    "DistillationLoss",
    "ExposureLoss",
    "GradientLoss",
    "IlluminationTVLoss",
    "LLELoss",
    "LossWeights",
    "PerceptualLoss",
    "SSIMLoss",
    "SegmentationLoss",
    "SmoothL1Loss",
    "VGG16Features",
    "convert_vgg16_to_safetensors",
    "distillation_loss",
    "illumination_map",
    "load_vgg16_features",
    "match_by_shape",
    "mean_lightness",
    "mean_gradient",
    "read_vgg16_state_dict",
    "segmentation_loss",
    "total_variation",
]
