"""Markdown tables from an `sllen-eval --evalset --baselines --json FILE` report (or
`--well-lit`): the overall means and, per darkening condition (exposure x uniform or
inhomogeneous light), PSNR / SSIM and the mean L* the method adds to the truth's (+ = brighter).

    python scripts/evalset_table.py docs/results/evalset-default.json
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict

import numpy as np


def _cell(summary: dict, key: str) -> str:
    if key not in summary:  # a report written before the column existed
        return "-"
    return f"{summary[key]:.3f}" if key == "ssim" else f"{summary[key]:.2f}"


def main() -> None:
    if len(sys.argv) != 2 or sys.argv[1] in ("-h", "--help"):
        print(__doc__)
        sys.exit(0 if len(sys.argv) == 2 else 2)
    report = json.loads(open(sys.argv[1]).read())
    methods = list(report["methods"])
    cols = [
        "psnr",
        "ssim",
        "loe",
        "saturation_ratio",
        "color_cast",
        "brightness_slope",
        "chroma_noise_ratio",
        "edge_ratio",
    ]
    print(
        "| method | PSNR dB | SSIM | LOE | saturation | cast | brightness slope | chroma noise "
        "| edges kept |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for m in methods:
        s = report["mean"][m]
        print(f"| {m} | " + " | ".join(_cell(s, c) for c in cols) + " |")
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for row in report["images"]:
        groups[(row["name"].split("_")[-1], row["method"])].append(row)
    conds = sorted({c for c, _ in groups})
    print()
    print("| condition | " + " | ".join(f"{m} PSNR / SSIM / L* added" for m in methods) + " |")
    print("|---|" + "---|" * len(methods))
    for c in conds:
        cells = []
        for m in methods:
            rows = groups[(c, m)]
            added = [r["lightness"] - r["lightness_gt"] for r in rows if "lightness" in r]
            cells.append(
                f"{np.mean([r['psnr'] for r in rows]):.2f} / "
                f"{np.mean([r['ssim'] for r in rows]):.3f} / "
                + (f"{np.mean(added):+.1f}" if added else "-")
            )
        print(f"| {c} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
