"""The paper's Table II ablations (SLLEN-1..4) trained on LOL at one budget, scored on eval15.

Trains the full edge model and each ablation from scratch with the same data, steps, seed and
learning rate (`sllen-train`), scores each last checkpoint on eval15 (`sllen-eval`, Table III
protocol) and prints a markdown table beside the paper's Table II. A variant whose score file
exists is not trained again, so a stopped run continues where it was; `--dry-run` prints the
commands only.

    python scripts/lol_ablations.py LOL/our485 LOL/eval15 --out runs/ablations --steps 600
    python scripts/lol_ablations.py ... --only full,sllen1        # a subset
    python scripts/lol_ablations.py --table runs/ablations        # the table only
"""

from __future__ import annotations

import argparse
import csv
import json
import shlex
import subprocess
import sys
from pathlib import Path

# name -> (sllen-train flags, the paper's Table II PSNR, SSIM, LOE; the full model from Table III)
VARIANTS: dict[str, tuple[list[str], tuple[float, float, float]]] = {
    "full": ([], (23.8, 0.84, 245)),
    "sllen1": (["--no-hsbab"], (22.6, 0.76, 281)),
    "sllen2": (["--no-rsaeb"], (20.7, 0.68, 357)),
    "sllen3": (["--no-hsbab", "--no-rsaeb"], (18.7, 0.60, 489)),
    "sllen4": (["--schedule", "independent"], (21.8, 0.78, 267)),
}
LABELS = {
    "full": "SLLEN",
    "sllen1": "SLLEN-1 (no HSBAB)",
    "sllen2": "SLLEN-2 (no RSAEB)",
    "sllen3": "SLLEN-3 (neither)",
    "sllen4": "SLLEN-4 (independent schedule)",
}


def commands(
    name: str, train: Path, eval15: Path, out: Path, steps: int, seed: int, threads: int
) -> list[list[str]]:
    """The train and eval command lines of one variant."""
    flags, _ = VARIANTS[name]
    run = out / name
    every = str(max(1, steps // 4))
    train_cmd = [
        "sllen-train", "--preset", "edge", "--lle-data", str(train), "--val-holdout", "15",
        "--steps", str(steps), "--lr", "5e-4", "--seed", str(seed), "--threads", str(threads),
        "--val-every", every, "--save-every", every, "--out", str(run), *flags,
    ]  # fmt: skip
    eval_cmd = [
        "sllen-eval", "--weights", str(run / "last.safetensors"), "--data", str(eval15),
        "--json", str(out / f"{name}-eval15.json"), "--threads", str(threads),
    ]  # fmt: skip
    if (run / "checkpoint").exists():
        train_cmd.append("--resume")  # continue a stopped run
    return [train_cmd, eval_cmd]


def _last_log(run: Path) -> dict[str, str]:
    """The last validation row and the last row's wall time from a run's log.csv."""
    log = run / "log.csv"
    if not log.exists():
        return {}
    rows = list(csv.DictReader(log.open()))
    vals = [r for r in rows if r.get("val_psnr")]
    out = {"time_s": rows[-1]["time_s"], "step": rows[-1]["step"]} if rows else {}
    if vals:
        out.update(val_psnr=vals[-1]["val_psnr"], val_ssim=vals[-1]["val_ssim"])
    return out


def table(out: Path) -> str:
    """Markdown: the paper's Table II next to this budget's eval15 scores."""
    lines = [
        "| variant | flags | paper PSNR / SSIM / LOE | ours eval15 PSNR / SSIM / LOE "
        "| ours GT-mean PSNR | held-out our485 PSNR / SSIM | steps | wall s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, (flags, (p_psnr, p_ssim, p_loe)) in VARIANTS.items():
        score = out / f"{name}-eval15.json"
        if not score.exists():
            continue
        mean = json.loads(score.read_text())["mean"]
        m = mean.get("sllen") or next(iter(mean.values()))
        log = _last_log(out / name)
        held = f"{float(log['val_psnr']):.2f} / {float(log['val_ssim']):.3f}" if log else "-"
        lines.append(
            f"| {LABELS[name]} | `{' '.join(flags) or '-'}` | {p_psnr} / {p_ssim:.2f} / {p_loe} "
            f"| {m['psnr']:.2f} / {m['ssim']:.3f} / {m['loe']:.0f} | {m['psnr_gt_mean']:.2f} "
            f"| {held} | {log.get('step', '-')} | {float(log.get('time_s', 'nan')):.0f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("train", nargs="?", type=Path, help="LOL our485 (low/ + high/ or normal/)")
    ap.add_argument("eval15", nargs="?", type=Path, help="LOL eval15")
    ap.add_argument("--out", type=Path, default=Path("runs/ablations"))
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--only", default=",".join(VARIANTS), help="comma-separated variants")
    ap.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    ap.add_argument("--table", type=Path, metavar="OUT", help="print the table of OUT and stop")
    a = ap.parse_args(argv)
    if a.table:
        print(table(a.table))
        return 0
    names = [n for n in a.only.split(",") if n]
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        print(
            f"error: unknown variant(s) {', '.join(unknown)}; known: {', '.join(VARIANTS)}",
            file=sys.stderr,
        )
        return 2
    if a.train is None or a.eval15 is None:
        print(
            "error: give the training folder (our485) and eval15, or --table OUT", file=sys.stderr
        )
        return 2
    for folder in (a.train, a.eval15):
        if not a.dry_run and not folder.is_dir():
            print(f"error: {folder} is not a folder", file=sys.stderr)
            return 2
    for name in names:
        if (a.out / f"{name}-eval15.json").exists():
            print(f"{name}: scored already, skipped")
            continue
        for cmd in commands(name, a.train, a.eval15, a.out, a.steps, a.seed, a.threads):
            print("+ " + shlex.join(cmd), flush=True)
            if not a.dry_run and subprocess.run(cmd).returncode != 0:
                print(f"error: {name}: {cmd[0]} failed", file=sys.stderr)
                return 1
    if not a.dry_run:
        print(table(a.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
