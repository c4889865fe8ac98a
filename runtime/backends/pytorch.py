"""PyTorch backend: the .safetensors weights (the bundled model by default), CPU or CUDA.

The one place in sllen.runtime that imports torch and sllen's model code, and only when this
backend is opened. On CUDA it runs FP16 by default (autocast; the attention softmax is
computed in float32 by torch either way); HSBAB's attention uses the project's CUDA kernel
when its library is built (sllen.runtime.attention_kernel) and torch's
scaled_dot_product_attention otherwise, and says which.
"""

from __future__ import annotations

import os
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np

from sllen.runtime.backends.base import (
    Backend,
    BackendInfo,
    BackendUnavailableError,
    Outputs,
    Timing,
)
from sllen.runtime.bundled import bundled_weights
from sllen.runtime.errors import InputError, install_hint

ATTENTION_CHOICES = ("auto", "kernel", "sdpa")
# Attention is memory-linear here (chunked SDPA or the kernel), but the activations take about
# 1 KB per pixel in FP32: frames above 4K are tiled by default.
MAX_PIXELS = 2160 * 3840


def _attention_kernel() -> Any:
    """The kernel loader module, or None when this installation has none."""
    try:
        from sllen.runtime import attention_kernel
    except ImportError:
        return None
    return attention_kernel


class PyTorchBackend(Backend):
    name = "pytorch"

    def __init__(
        self,
        model: str | os.PathLike[str] | None = None,
        *,
        device: str = "auto",
        precision: str = "auto",
        threads: int | None = None,
        attention: str = "auto",
    ) -> None:
        super().__init__()
        try:
            import torch
        except ImportError:
            raise BackendUnavailableError(
                f"the pytorch backend needs torch: {install_hint('train', torch=True)}"
            ) from None
        from sllen.model.hsbab import HSBAB
        from sllen.model.io import load_weights

        if attention not in ATTENTION_CHOICES:
            raise InputError(f"attention must be one of {', '.join(ATTENTION_CHOICES)}")
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise BackendUnavailableError("--device cuda: torch sees no CUDA GPU")
        if precision == "auto":
            precision = "fp16" if device.startswith("cuda") else "fp32"
        if precision not in ("fp32", "fp16"):
            raise InputError(f"the pytorch backend runs fp32 or fp16, not {precision!r}")
        if precision == "fp16" and not device.startswith("cuda"):
            raise InputError("fp16 needs a CUDA device with the pytorch backend (use fp32)")
        if threads:
            torch.set_num_threads(int(threads))
        path = Path(model) if model is not None else bundled_weights()
        self.torch = torch
        self.device = torch.device(device)
        self.model = load_weights(path, device=str(self.device)).eval()
        self.precision = precision

        attn = "torch scaled_dot_product_attention"
        kernel = _attention_kernel() if self.device.type == "cuda" else None
        if attention == "kernel" and (kernel is None or not kernel.available()):
            why = kernel.status() if kernel is not None else "no kernel loader in this install"
            raise BackendUnavailableError(f"--attention kernel: {why}")
        if attention != "sdpa" and kernel is not None and kernel.available():
            for m in self.model.modules():
                if isinstance(m, HSBAB):
                    m.attention_fn = kernel.kernel_attention
            attn = kernel.status()
        elif attention == "auto" and kernel is not None and self.device.type == "cuda":
            attn = kernel.status()
        config = self.model.config
        self._info = BackendInfo(
            backend=self.name,
            model=str(path) if model is not None else f"bundled {path.name}",
            device=str(self.device),
            precision=precision,
            detail=f"{config.preset} preset, attention: {attn}",
            has_segmentation=True,
            max_pixels=MAX_PIXELS,
            extra={"preset": config.preset, "attention": attn, "config": config.to_dict()},
        )

    @property
    def info(self) -> BackendInfo:
        return self._info

    def _autocast(self) -> Any:
        if self.precision == "fp16":
            return self.torch.autocast("cuda", dtype=self.torch.float16)
        return nullcontext()

    def _infer(self, x: np.ndarray, segmentation: bool) -> Outputs:
        torch = self.torch
        cuda = self.device.type == "cuda"
        t0 = time.perf_counter()
        xt = torch.from_numpy(x).to(self.device, non_blocking=False)
        if cuda:
            torch.cuda.synchronize(self.device)
        t1 = time.perf_counter()
        with torch.inference_mode(), self._autocast():
            out = self.model.forward_all(xt, with_segmentation=segmentation)
        if cuda:
            torch.cuda.synchronize(self.device)
        t2 = time.perf_counter()
        image = out.image.float().cpu().numpy()
        seg = None
        if segmentation:
            assert out.segmentation is not None  # forward_all(with_segmentation=True) sets it
            seg = out.segmentation.float().cpu().numpy()
        t3 = time.perf_counter()
        self.last_timing = Timing(h2d=t1 - t0, compute=t2 - t1, d2h=t3 - t2)
        return Outputs(image, seg)

    def close(self) -> None:
        self.model = None  # type: ignore[assignment]
        super().close()
