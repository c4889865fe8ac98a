"""What a training run records about its machine and source (sllen.train.provenance)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import torch

from sllen.train import provenance


def test_torch_version_and_threads() -> None:
    info = provenance.run_provenance()
    assert info["torch_version"] == torch.__version__
    assert info["torch_threads"] == str(torch.get_num_threads())


@pytest.mark.skipif(shutil.which("git") is None, reason="no git on this machine")
def test_git_commit_and_dirty_state_of_a_checkout(tmp_path: Path, monkeypatch) -> None:
    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "a.txt").write_text("one")
    git("add", "a.txt")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "one")
    head = subprocess.run(
        ["git", "-C", str(tmp_path), "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    monkeypatch.setattr(provenance, "_SOURCE", tmp_path)
    info = provenance.run_provenance()
    assert info["git_commit"] == head and info["git_dirty"] == "no"
    (tmp_path / "a.txt").write_text("two")
    assert provenance.run_provenance()["git_dirty"] == "yes"


def test_an_installed_package_records_no_commit(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(provenance, "_SOURCE", tmp_path)  # no .git: a wheel's site-packages
    assert "git_commit" not in provenance.run_provenance()
