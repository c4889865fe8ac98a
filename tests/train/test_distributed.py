"""torchrun with two CPU processes on the gloo backend: sharded data, averaged gradients,
replicas kept in sync (the trainer checks it), only rank 0 writing."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from sllen.model.io import load_weights


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_torchrun_two_processes_gloo(tmp_path: Path) -> None:
    out = tmp_path / "ddp"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc-per-node",
        "2",
        "--master-addr",
        "127.0.0.1",
        "--master-port",
        str(_free_port()),
        "-m",
        "sllen.cli.train",
        "--preset",
        "tiny",
        "--steps",
        "6",
        "--batch-size",
        "2",
        "--ss-batch-size",
        "2",
        "--crop-size",
        "32",
        "--out",
        str(out),
        "--device",
        "cpu",
        "--threads",
        "1",
        "--val-every",
        "3",
        "--save-every",
        "3",
    ]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    model = load_weights(out / "last.safetensors")
    assert model.config.preset == "tiny"
    rows = (out / "log.csv").read_text().splitlines()
    assert rows[-1].startswith("6,")  # one writer: no duplicated or interleaved rows
    assert len(rows) == len(set(rows))
    # Rank 0 alone prints the summary.
    assert r.stdout.count("done:") == 1
