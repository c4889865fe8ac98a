"""sllen-eval: score a model on a folder of images.

Paired folders (low/ + high/, LOL, LSRW): PSNR, SSIM and LOE per image and on average.
Unpaired folders (just images, e.g. DICM/NPE/MEF): LOE only. The protocol (RGB, [0, 1] data
range, no GT-mean rescaling, LOE variant) is sllen.metrics.PROTOCOL and is written into the
JSON report so numbers stay comparable.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sllen.data.image_io import list_images, read_image, write_image
from sllen.metrics import PROTOCOL, loe, psnr, ssim

Enhancer = Callable[[np.ndarray], np.ndarray]


@dataclass
class EvalReport:
    data: str
    paired: bool
    model: str
    rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def means(self) -> dict[str, float]:
        keys = ["psnr", "ssim", "loe"] if self.paired else ["loe"]
        return {k: float(np.mean([r[k] for r in self.rows])) for k in keys}

    def to_dict(self) -> dict[str, Any]:
        return {
            "data": self.data,
            "paired": self.paired,
            "model": self.model,
            "protocol": PROTOCOL,
            "count": len(self.rows),
            "mean": self.means,
            "images": self.rows,
        }


def torch_enhancer(weights: str | os.PathLike | None, device: str = "cpu") -> tuple[Enhancer, str]:
    """An image -> image function running the PyTorch model (bundled weights by default)."""
    import torch

    from sllen.model.io import load_weights
    from sllen.weights import default_weights

    path = Path(weights) if weights is not None else default_weights()
    model = load_weights(path, device=device)

    @torch.no_grad()
    def run(img: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))).to(device)
        return model.enhance(x).clamp(0, 1).permute(1, 2, 0).cpu().numpy()

    return run, str(path)


def iter_pairs(root: Path) -> tuple[bool, Iterator[tuple[str, Path, Path | None]]]:
    """(paired?, iterator of (name, low path, high path or None)) for a folder."""
    if not root.is_dir():
        raise ValueError(f"data folder not found: {root}")
    from sllen.data.pairs import find_pairs

    pairs = find_pairs(root, split="eval")
    if pairs is not None:
        return True, iter(pairs)
    images = list_images(root)
    if not images:
        raise ValueError(f"{root} has no images (and no low/ + high/ subfolders)")
    return False, ((p.stem, p, None) for p in images)


def evaluate(
    enhance: Enhancer,
    data: str | os.PathLike,
    model_name: str = "",
    save_dir: str | os.PathLike | None = None,
    on_image: Callable[[dict[str, Any]], None] | None = None,
) -> EvalReport:
    root = Path(data)
    paired, items = iter_pairs(root)
    report = EvalReport(str(root), paired, model_name)
    for name, low_path, high_path in items:
        low = read_image(low_path)
        t = time.perf_counter()
        out = enhance(low)
        row: dict[str, Any] = {"name": name, "seconds": round(time.perf_counter() - t, 4)}
        if high_path is not None:
            high = read_image(high_path)
            if high.shape != low.shape:
                raise ValueError(
                    f"{name}: low {low.shape[:2]} and high {high.shape[:2]} differ in size"
                )
            row["psnr"] = psnr(out, high)
            row["ssim"] = ssim(out, high)
        row["loe"] = loe(low, out)
        if save_dir is not None:
            write_image(Path(save_dir) / f"{name}.png", out)
        report.rows.append(row)
        if on_image is not None:
            on_image(row)
    return report


def write_json(report: EvalReport, path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    with os.fdopen(fd, "w") as f:
        json.dump(report.to_dict(), f, indent=2)
    os.replace(tmp, path)
    return path
