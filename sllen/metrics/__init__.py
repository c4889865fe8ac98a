"""Evaluation metrics (pure numpy: they also run in the torch-free deployment runtime).

Each module's docstring writes down its protocol exactly; :data:`PROTOCOL` summarises them
in one string to store with reported numbers.
"""

from sllen.metrics.gt_mean import gt_mean_psnr_ssim
from sllen.metrics.loe import loe
from sllen.metrics.miou import confusion_matrix, miou
from sllen.metrics.protocol import PROTOCOL
from sllen.metrics.psnr_ssim import psnr, ssim

__all__ = ["PROTOCOL", "confusion_matrix", "gt_mean_psnr_ssim", "loe", "miou", "psnr", "ssim"]
