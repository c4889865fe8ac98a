"""What a run's output folder already holds, checked before a run writes into it.

A new run into a folder that holds one would replace its log at once and its weights as it
went (a forgotten ``--resume`` lost a finished run, and a Ctrl-C then left two runs mixed);
a resumed run whose data or settings differ from the checkpoint's would go on as another
run under the same name. Both are refused in one line before anything is written.

A folder with a log but no checkpoint or weights (a run that failed or was stopped before its
first save) holds nothing to protect or resume: a new run replaces its log, and ``--resume``
there says to start without it. A resumed run's data folders are compared as absolute paths,
so ``--lle-data LOL`` and ``--lle-data /data/LOL`` are one folder, and ``LOL`` typed in another
directory is another.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from sllen.runtime.errors import InputError
from sllen.runtime.files import check_output_folder

# Files that mark a folder as holding a run (its log alone does not: nothing is lost with it
# that a new run would not log again).
CHECKPOINT = "checkpoint/state.json"
RUN_FILES = ("last.safetensors", "best.safetensors", CHECKPOINT)

# Settings that are data folders: compared as absolute paths (a checkpoint stores them so).
DATA_PATHS = ("lle_data", "lle_photos", "ss_data", "val_data")

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


def check_out(out: Path) -> None:
    """Refuse an --out that cannot be a folder, before any data is read (it failed after the
    data was indexed, as a bare errno)."""
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} is a file, not a folder: give another --out")
    check_output_folder(out, "--out")


def check_new_run(out: Path) -> str | None:
    """Refuse to start a new run in a folder that holds one. A log without a checkpoint or
    weights is replaced: the returned note says so (None when there is none)."""
    found = [name for name in RUN_FILES if (out / name).exists()]
    if CHECKPOINT in found:
        raise InputError(
            f"{out} already holds a run ({', '.join(found)}): add --resume to continue it, "
            "or give another --out"
        )
    if found:  # weights, but no checkpoint to go on from: nothing --resume could do
        raise InputError(
            f"{out} already holds weights ({', '.join(found)}) and no checkpoint to resume: "
            "give another --out"
        )
    if (out / "log.csv").exists():
        return (
            f"{out / 'log.csv'} is from a run that stopped before its first checkpoint: "
            "this run replaces it"
        )
    return None


def check_resumable(out: Path) -> None:
    """Refuse --resume where there is no complete checkpoint, saying how to start instead."""
    if (out / CHECKPOINT).is_file():
        return
    if any((out / name).exists() for name in RUN_FILES):
        raise InputError(
            f"{out} holds weights but no complete checkpoint to resume: give another --out "
            "for a new run"
        )
    if (out / "log.csv").exists():
        raise InputError(
            f"nothing to resume in {out}: its run stopped before its first checkpoint; start "
            "it again without --resume (the log is replaced)"
        )
    raise InputError(f"nothing to resume in {out}: no checkpoint there; start without --resume")


def absolute(path: str | os.PathLike[str]) -> str:
    """A data folder as an absolute path (symbolic links followed): what a checkpoint keeps."""
    return str(Path(path).expanduser().resolve())


def run_config(config: dict[str, Any]) -> dict[str, Any]:
    """The config a checkpoint keeps: its data folders absolute, so a resume from another
    directory, or with the path typed another way, names the same folders."""
    return {k: absolute(v) if k in DATA_PATHS and v is not None else v for k, v in config.items()}


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _same(key: str, saved: Any, now: Any) -> bool:
    """A checkpoint's setting against this run's. Data folders: absolute paths. An older
    checkpoint kept them as typed, relative to a directory it did not record: the same text,
    or the same folder resolved from here, is taken as the same folder."""
    if _canonical(saved) == _canonical(now):
        return True
    if key in DATA_PATHS and saved is not None and now is not None:
        return absolute(saved) == absolute(now)
    return False


def _moved(key: str, saved: Any, now: Any) -> bool:
    """A run carried to another machine (its folder and its data copied under another root):
    the data folder it names is not here, and the one given now is."""
    return (
        key in DATA_PATHS
        and saved is not None
        and now is not None
        and Path(saved).is_absolute()
        and not Path(saved).exists()
        and Path(now).is_dir()
    )


def _unused(cfg: dict[str, Any]) -> set[str]:
    """Settings a run's data never used. New runs are refused them (TrainConfig), but a run
    started before that may hold one, and must resume without it."""
    unused = set()
    if cfg.get("lle_data"):  # its pairs are dark already: nothing darkened
        unused |= {"degradation", "camera_share"}
    if not cfg.get("lle_photos"):
        unused.add("photo_max_side")
    if not cfg.get("emitters"):  # no lights, no glow
        unused.add("emitter_glow")
    if not (cfg.get("lle_data") or cfg.get("lle_photos")):  # generated scenes: nothing held out
        unused.add("val_holdout")
    return unused


def check_same_run(
    saved: dict[str, Any] | None, now: dict[str, Any], defaults: dict[str, Any] | None = None
) -> list[str]:
    """Refuse a resume whose settings differ from the checkpoint's (``saved``: the config in
    its state.json; None for checkpoints written before it was kept: not checked). An option
    newer than the checkpoint (absent from ``saved``) ran at its default, from ``defaults``.
    Returns notes: a data folder the checkpoint names that is not on this machine is taken to
    be the one given now (a run carried to another machine)."""
    if not saved:
        return []
    defaults = defaults or {}
    saved = {**{k: v for k, v in defaults.items() if k not in saved}, **saved}
    for key, value in defaults.items():  # one level down too: a newer loss weight (--w-spread)
        if isinstance(value, dict) and isinstance(saved.get(key), dict):
            saved[key] = {**value, **saved[key]}
    unused = _unused(saved)
    differ = [
        key
        for key, value in now.items()
        if key not in MAY_CHANGE | unused and key in saved and not _same(key, saved[key], value)
    ]
    moved = [k for k in differ if _moved(k, saved[k], now[k])]
    changed = [k for k in differ if k not in moved]
    if changed:
        shown = run_config(now)  # data folders as the absolute paths they were compared as
        parts = [
            _NAMES.get(k, f"--{k.replace('_', '-')} (was {saved[k]}, now {shown[k]})")
            for k in changed
        ]
        raise InputError(
            "--resume goes on with the run as it was started, but "
            + "; ".join(parts)
            + " differ: give the options it was started with, or another --out"
        )
    return [
        f"--{k.replace('_', '-')}: {saved[k]}, the run's, is not on this machine; going on with "
        f"{absolute(now[k])}"
        for k in moved
    ]


def check_stage_boundary(state: dict[str, Any], cfg: Any) -> None:
    """SLLEN-4 (--schedule independent) switches from SSaN to LLEmN at --steps: a resume with
    another --steps would move the switch (SSaN trained again, LLEmN's cosine and data
    restarted), so the run keeps its own."""
    total = state.get("total_steps")
    if cfg.schedule == "independent" and total and int(total) != 2 * cfg.steps:
        raise InputError(
            f"--schedule independent switches stages at --steps: this run keeps --steps "
            f"{int(total) // 2} (was given {cfg.steps})"
        )
