"""sllen-eval: score a model (and optionally the classical baselines) on a folder of images.

Paired folders (low/ + high/, LOL, LSRW): PSNR, SSIM, LOE and the colour-fault statistics
of sllen.metrics.color per image, and per method on average; PSNR and SSIM also after GT-mean
rescaling (sllen.metrics.gt_mean: exposure set aside). Unpaired folders (just images,
e.g. DICM/NPE/MEF): LOE only. The protocol (RGB, [0, 1] data range, PSNR and SSIM without
GT-mean rescaling, LOE variant) is sllen.metrics.PROTOCOL and is written into the JSON report.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sllen.metrics import PROTOCOL, gt_mean_psnr_ssim, loe, psnr, ssim
from sllen.metrics.color import brightness_slope, color_stats, rgb_to_lab
from sllen.metrics.detail import edge_ratio
from sllen.metrics.psnr_ssim import SSIM_WINDOW
from sllen.runtime.errors import InputError
from sllen.runtime.files import atomic_write_json
from sllen.runtime.images import list_images, read_image, write_image

Enhancer = Callable[[np.ndarray], np.ndarray]
# Chroma noise is compared on the darkest third of the inputs, where speckle shows.
DARK_FRACTION = 1 / 3


@dataclass
class EvalReport:
    data: str
    paired: bool
    methods: dict[str, str]  # method name -> description (e.g. the weights file)
    rows: list[dict[str, Any]] = field(default_factory=list)

    def method_rows(self, method: str) -> list[dict[str, Any]]:
        return [r for r in self.rows if r["method"] == method]

    def summary(self, method: str) -> dict[str, float]:
        rows = self.method_rows(method)
        keys = ["psnr", "ssim", "psnr_gt_mean", "ssim_gt_mean", "loe"] if self.paired else ["loe"]
        out = {k: float(np.mean([r[k] for r in rows])) for k in keys}
        if self.paired:
            out["saturation_ratio"] = float(np.mean([r["saturation_ratio"] for r in rows]))
            out["color_cast"] = float(np.mean([r["color_cast"] for r in rows]))
            out["edge_ratio"] = float(np.mean([r["edge_ratio"] for r in rows]))
            out["brightness_slope"] = brightness_slope(
                [r["lightness"] for r in rows], [r["lightness_gt"] for r in rows]
            )
            dark = sorted(rows, key=lambda r: r["input_lightness"])
            dark = dark[: max(1, round(len(dark) * DARK_FRACTION))]
            out["chroma_noise_ratio"] = float(
                np.mean([r["chroma_noise"] / max(r["chroma_noise_gt"], 1e-6) for r in dark])
            )
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "data": self.data,
            "paired": self.paired,
            "protocol": PROTOCOL,
            "methods": self.methods,
            "count": len({r["name"] for r in self.rows}),
            # null, not NaN (which strict JSON readers refuse): a slope needs two brightnesses
            "mean": {
                m: {k: None if math.isnan(v) else v for k, v in self.summary(m).items()}
                for m in self.methods
            },
            "images": self.rows,
        }


def torch_enhancer(
    weights: str | os.PathLike | None,
    device: str = "cpu",
    threads: int | None = None,
    well_exposed: str = "keep",
    self_ensemble: bool = False,
) -> tuple[Enhancer, str]:
    """An image -> image function running the PyTorch model (bundled weights by default);
    ``threads`` sets torch's CPU threads for the process; ``well_exposed`` as sllen-run's
    (keep: a well-exposed input passes through, runtime/well_exposed.py); ``self_ensemble``
    the mean of four flipped inferences (runtime/self_ensemble.py)."""
    import torch

    from sllen.runtime.backends.base import check_device
    from sllen.runtime.self_ensemble import flip_ensemble
    from sllen.runtime.well_exposed import check_mode, keep_well_exposed
    from sllen.train.stages import pick_device

    keep = check_mode(well_exposed) == "keep"
    pick_device(check_device(device))  # cuda without a GPU: one line, as sllen-train says

    if threads is not None:
        torch.set_num_threads(threads)

    from sllen.model.io import load_weights
    from sllen.weights import default_weights

    path = Path(weights) if weights is not None else default_weights()
    model = load_weights(path, device=device)

    @torch.no_grad()
    def infer(img: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))).to(device)
        return model.enhance(x).clamp(0, 1).permute(1, 2, 0).cpu().numpy()

    def run(img: np.ndarray) -> np.ndarray:
        out = flip_ensemble(infer, img, axes=(0, 1)) if self_ensemble else infer(img)
        return keep_well_exposed(img, out) if keep else out

    return run, str(path)


def runtime_enhancer(
    model: str | os.PathLike | None,
    backend: str = "auto",
    device: str = "auto",
    threads: int | None = None,
    well_exposed: str = "keep",
    self_ensemble: bool = False,
) -> tuple[Enhancer, str]:
    """An image -> image function through sllen.runtime's Enhancer: the same backends,
    padding and tiling as sllen-run, so a deployed .onnx/.engine file is scored exactly as it
    runs (``model`` None: the bundled model on the backend sllen-run would pick)."""
    from sllen.runtime.backends import open_backend
    from sllen.runtime.enhancer import Enhancer as RuntimeEnhancer

    runner = RuntimeEnhancer(
        open_backend(model, backend, device=device, threads=threads),
        well_exposed=well_exposed,
        self_ensemble=self_ensemble,
    )
    info = runner.backend.info

    def run(img: np.ndarray) -> np.ndarray:
        return runner.enhance([img])[0].image

    return run, info.describe()


def iter_pairs(root: Path) -> tuple[bool, Iterator[tuple[str, Path, Path | None]]]:
    """(paired?, iterator of (name, low path, high path or None)) for a folder."""
    if not root.is_dir():
        what = "a file, not a folder" if root.exists() else "no such folder"
        raise InputError(f"--data {root}: {what}")
    from sllen.data.pair_layouts import find_pairs

    pairs = find_pairs(root, split="eval")
    if pairs is not None:
        return True, iter(pairs)
    images = list_images(root)
    if not images:
        raise InputError(f"{root} has no images (and no low/ + high/ subfolders)")
    return False, ((p.stem, p, None) for p in images)


def evaluate(
    methods: Mapping[str, Enhancer],
    data: str | os.PathLike,
    descriptions: Mapping[str, str] | None = None,
    save_dir: str | os.PathLike | None = None,
    on_image: Callable[[dict[str, Any]], None] | None = None,
    on_start: Callable[[int], None] | None = None,
) -> EvalReport:
    """Run every method on every image of ``data`` (each image read once). ``on_start(n)``
    hears the number of images before the first one, ``on_image(row)`` each result."""
    root = Path(data)
    paired, found = iter_pairs(root)
    items = list(found)
    if on_start is not None:
        on_start(len(items))
    report = EvalReport(str(root), paired, {m: (descriptions or {}).get(m, m) for m in methods})
    for name, low_path, high_path in items:
        low = read_image(low_path)
        high = read_image(high_path) if high_path is not None else None
        if high is not None and high.shape != low.shape:
            raise InputError(
                f"{low_path} and {high_path}: the sizes differ ({low.shape[1]}x{low.shape[0]} "
                f"and {high.shape[1]}x{high.shape[0]}); a pair must be aligned"
            )
        if high is not None and min(low.shape[:2]) < SSIM_WINDOW:
            raise InputError(
                f"{low_path}: {low.shape[1]}x{low.shape[0]} is smaller than SSIM's "
                f"{SSIM_WINDOW}x{SSIM_WINDOW} window"
            )
        low_lightness = float(rgb_to_lab(low)[..., 0].mean()) if high is not None else None
        for method, enhance in methods.items():
            t = time.perf_counter()
            out = enhance(low)
            row: dict[str, Any] = {
                "name": name,
                "method": method,
                "seconds": round(time.perf_counter() - t, 4),
                "loe": loe(low, out),
            }
            if high is not None:
                row["psnr"] = psnr(out, high)
                row["ssim"] = ssim(out, high)
                row["psnr_gt_mean"], row["ssim_gt_mean"] = gt_mean_psnr_ssim(out, high)
                row.update(color_stats(out, high))
                row["edge_ratio"] = edge_ratio(out, high)
                row["input_lightness"] = low_lightness
            if save_dir is not None:
                suffix = "" if len(methods) == 1 else f"_{method}"
                write_image(Path(save_dir) / f"{name}{suffix}.png", out)
            report.rows.append(row)
            if on_image is not None:
                on_image(row)
    return report


def write_json(report: EvalReport, path: str | os.PathLike) -> Path:
    try:
        return atomic_write_json(path, report.to_dict())
    except OSError as e:  # checked before the run (check_output_file); the disk may still fill
        raise InputError(f"--json {path}: cannot write the report ({e.strerror or e})") from None
