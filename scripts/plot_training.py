"""Plot a training run's log.csv: the LLE loss terms and the validation PSNR/SSIM over steps.

python scripts/plot_training.py runs/NAME/log.csv out.png [--title TEXT] [--val-label TEXT]
    [--ref-psnr DB --ref-label TEXT]

Losses are smoothed with a running mean over 5 logged rows (the raw rows are noisy: one batch
each); validation points are drawn as they are.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

TERMS = (
    "lle_total",
    "smooth_l1",
    "ssim",
    "exposure",
    "distillation",
    "illumination_tv",
    "gradient",
    "ss_ce",
)


def _column(rows: list[dict[str, str]], key: str) -> tuple[np.ndarray, np.ndarray]:
    pts = [(float(r["step"]), float(r[key])) for r in rows if r.get(key)]
    if not pts:
        return np.empty(0), np.empty(0)
    a = np.array(pts)
    return a[:, 0], a[:, 1]


def _smooth(x: np.ndarray, y: np.ndarray, k: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Trailing running mean of k rows (no edge effects: the first k-1 rows are dropped)."""
    if len(y) < k:
        return x, y
    return x[k - 1 :], np.convolve(y, np.ones(k) / k, mode="valid")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("log", type=Path, help="a run's log.csv, or the run folder that holds it")
    ap.add_argument("out", type=Path)
    ap.add_argument("--title", default="")
    ap.add_argument("--val-label", default="validation", help="what the validation set is")
    ap.add_argument(
        "--ref-psnr", type=float, default=None, help="a reference PSNR (e.g. the starting model)"
    )
    ap.add_argument("--ref-label", default="reference")
    args = ap.parse_args()
    if args.log.is_dir():
        args.log = args.log / "log.csv"
    if not args.log.is_file():
        ap.error(f"{args.log}: no such file (a run's log.csv, or its folder)")
    with open(args.log, newline="") as f:
        rows = list(csv.DictReader(f))

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4), dpi=110)
    FigureCanvasAgg(fig)
    ax, av = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    for key in TERMS:
        x, y = _column(rows, key)
        if len(x):
            ax.plot(*_smooth(x, y), label=key, linewidth=1)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (running mean of 5 rows)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    x, psnr = _column(rows, "val_psnr")
    _, ssim = _column(rows, "val_ssim")
    av.plot(x, psnr, "o-", color="tab:blue", label="val PSNR dB")
    xg, psnr_gm = _column(rows, "val_psnr_gm")  # logs from before 2026-12-03 lack it
    if len(xg):
        av.plot(xg, psnr_gm, "o:", color="tab:green", label="GT-mean PSNR dB")
    if args.ref_psnr is not None:
        av.axhline(args.ref_psnr, color="tab:blue", linestyle=":", linewidth=1)
        av.annotate(
            f"{args.ref_label}: {args.ref_psnr:.2f} dB",
            (0.02, args.ref_psnr),
            xycoords=("axes fraction", "data"),
            fontsize=7,
            color="tab:blue",
            va="bottom",
        )
    av.set_xlabel("step")
    av.set_ylabel(f"{args.val_label} PSNR dB", color="tab:blue")
    av.grid(True, alpha=0.3)
    av2 = av.twinx()
    av2.plot(x, ssim, "s--", color="tab:orange", label="val SSIM")
    av2.set_ylabel(f"{args.val_label} SSIM", color="tab:orange")
    # one legend for both axes (the SSIM line had none), where it covers the fewest points
    lines = av.get_legend_handles_labels()[0] + av2.get_legend_handles_labels()[0]
    av2.legend(lines, [line.get_label() for line in lines], fontsize=7, loc="best")  # on top
    fig.suptitle(args.title or str(args.log), fontsize=9)
    fig.tight_layout()
    fig.savefig(str(args.out), format="png")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
