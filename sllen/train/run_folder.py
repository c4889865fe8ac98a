"""What a run's output folder already holds, checked before a run writes into it.

A new run into a folder that holds one would replace its log at once and its weights as it
went (a forgotten ``--resume`` lost a finished run, and a Ctrl-C then left two runs mixed);
a resumed run whose data or settings differ from the checkpoint's would go on as another
run under the same name. Both are refused in one line before anything is written.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sllen.runtime.errors import InputError

# Files that mark a folder as holding a run.
RUN_FILES = ("log.csv", "last.safetensors", "best.safetensors", "checkpoint/state.json")

# Settings a resumed run may change: its length, where and how fast it runs, how often it
# saves and validates (best_by resets the best score itself), and what resume ignores.
MAY_CHANGE = {
    "out", "steps", "minutes", "resume", "workers", "threads", "device", "amp",
    "val_every", "save_every", "best_by", "init_weights", "gradient_level", "vgg_weights",
}  # fmt: skip

_NAMES = {
    "model_overrides": "the model options (--width, --no-hsbab, --num-classes, ...)",
    "loss_weights": "the loss weights (--w-*)",
}


def check_new_run(out: Path) -> None:
    """Refuse to start a new run in a folder that holds one."""
    found = [name for name in RUN_FILES if (out / name).exists()]
    if found:
        raise InputError(
            f"{out} already holds a run ({', '.join(found)}): add --resume to continue it, "
            "or give another --out"
        )


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def check_same_run(
    saved: dict[str, Any] | None, now: dict[str, Any], defaults: dict[str, Any] | None = None
) -> None:
    """Refuse a resume whose settings differ from the checkpoint's (``saved``: the config in
    its state.json; None for checkpoints written before it was kept: not checked). An option
    newer than the checkpoint (absent from ``saved``) ran at its default, from ``defaults``."""
    if not saved:
        return
    saved = {**{k: v for k, v in (defaults or {}).items() if k not in saved}, **saved}
    changed = [
        key
        for key, value in now.items()
        if key not in MAY_CHANGE and key in saved and _canonical(saved[key]) != _canonical(value)
    ]
    if changed:
        parts = [
            _NAMES.get(k, f"--{k.replace('_', '-')} (was {saved[k]}, now {now[k]})")
            for k in changed
        ]
        raise InputError(
            "--resume goes on with the run as it was started, but "
            + "; ".join(parts)
            + " differ: give the options it was started with, or another --out"
        )
