"""What a training run ran on, stored with its weights so that two runs can be compared.

With one torch thread, sllen-train is bit-for-bit the same run to run, across commits that
leave its draws alone and across CPUs (a 2000-step run checked against one made on another
VM, 2026-12-06); a different thread count changes it from the first steps. So the thread
count, the torch version and the source's git commit (and whether it had uncommitted
changes) go into the weights' metadata: without them a run that does not reproduce cannot be
traced (docs/default-model.md, U1 and G2)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import torch

_SOURCE = Path(__file__).resolve().parents[2]  # the checkout, when sllen runs from one


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(_SOURCE), *args], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):  # no git on the machine
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def run_provenance() -> dict[str, str]:
    """torch version and threads, and the git commit and dirty state where sllen runs from a
    checkout (an installed wheel has none: the keys are left out)."""
    info = {"torch_version": torch.__version__, "torch_threads": str(torch.get_num_threads())}
    commit = _git("rev-parse", "HEAD") if (_SOURCE / ".git").exists() else None
    if commit:
        info["git_commit"] = commit
        status = _git("status", "--porcelain", "--untracked-files=no")
        if status is not None:
            info["git_dirty"] = "yes" if status else "no"
    return info
