"""The evaluation protocol as one string, to store next to reported numbers (reports, JSON)."""

from __future__ import annotations

__all__ = ["PROTOCOL"]

PROTOCOL = (
    "sllen.metrics v1. Images: HxWx3 RGB, float [0,1] or uint8/255, used as given (no clip, "
    "no quantisation). "
    "PSNR: RGB, MSE over all pixels and channels, data_range=1, no crop, no GT-mean "
    "rescaling, capped at 100 dB (identical images = 100). "
    "SSIM: Wang et al. 2004, 11x11 Gaussian window sigma=1.5, K1=0.01, K2=0.03, population "
    "covariance, per RGB channel then averaged, 'valid' region (no padding), no downsampling, "
    "no crop, no GT-mean rescaling, data_range=1 (= skimage structural_similarity with "
    "channel_axis=-1, gaussian_weights=True, sigma=1.5, use_sample_covariance=False). "
    "LOE: Wang et al. 2013 (NPE) variant, reference = low-light input, lightness "
    "max(R,G,B) on 0-255 without rounding or local max, both maps resized to smaller side 50 "
    "by nearest sampling on pixel centres (MATLAB imresize 'nearest', size round(H*r) x "
    "round(W*r), r=50/min(H,W); no upsampling of smaller images), mean over pixels x of "
    "#{y: [L_in(x)>=L_in(y)] != [L_out(x)>=L_out(y)]}. "
    "GT-mean columns (psnr_gt_mean, ssim_gt_mean; PSNR and SSIM stay unscaled): the output "
    "times mean_grey(GT) / mean_grey(output), grey = 0.299 R + 0.587 G + 0.114 B, clipped to "
    "[0,1], then PSNR/SSIM as above. "
    "mIoU: PASCAL VOC, confusion matrix accumulated over the data set, target==255 ignored, "
    "classes absent from both prediction and ground truth excluded from the mean, fraction "
    "in [0,1]."
)
