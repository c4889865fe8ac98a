"""torchrun with two CPU processes on the gloo backend: sharded data, averaged gradients,
replicas kept in sync (the trainer checks it), only rank 0 writing."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sllen.model.io import load_weights
from sllen.runtime.errors import InputError
from sllen.train import ddp


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


def _torchrun(out: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
        "--master-addr", "127.0.0.1", "--master-port", str(_free_port()),
        "-m", "sllen.cli.train", "--preset", "tiny", "--batch-size", "2", "--ss-batch-size", "2",
        "--crop-size", "32", "--out", str(out), "--device", "cpu", "--threads", "1", *extra,
    ]  # fmt: skip


def _wait_for_rows(log: Path, proc: subprocess.Popen[str], rows: int) -> None:
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if log.is_file() and len(log.read_text().splitlines()) > rows:
            return
        time.sleep(0.5)
    raise AssertionError(f"the run wrote no {rows} log rows: {proc.poll()}")


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (Linux /proc; torchrun's ranks)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        if int(fields[1]) == pid:  # state, then the parent's pid
            found.append(int(stat.parent.name))
    return found


@pytest.mark.slow
def test_ctrl_c_under_torchrun_saves_a_checkpoint_at_the_step(tmp_path: Path) -> None:
    # SLURM's scancel signals torchrun and both ranks, and torchrun forwards the signal to the
    # ranks again (Ctrl-C in a terminal reaches torchrun alone: the ranks have sessions of
    # their own). They take the repeat as the same stop, agree on one step, and rank 0 saves
    # there (was: exit 1, no checkpoint, everything since the last --save-every lost).
    out = tmp_path / "ddp"
    cmd = _torchrun(out, "--steps", "5000", "--val-every", "5000", "--save-every", "5000")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
        start_new_session=True,
    )  # fmt: skip
    try:
        _wait_for_rows(out / "log.csv", proc, 2)  # 20 steps trained
        for pid in [proc.pid, *_children(proc.pid)]:
            os.kill(pid, signal.SIGINT)
        said, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    stops = re.findall(r"interrupted at step (\d+): checkpoint saved", said)
    assert len(stops) == 1, said[-3000:]  # rank 0 alone says it
    state = json.loads((out / "checkpoint" / "state.json").read_text())
    assert state["step"] == int(stops[0]) >= 20 and state["world_size"] == 2
    assert "GLHF" not in said and "error:" not in said, said[-3000:]


def test_a_launch_without_torchrun_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    monkeypatch.delenv("MASTER_PORT", raising=False)
    with pytest.raises(InputError, match=r"WORLD_SIZE=2 says .*MASTER_ADDR.*torchrun"):
        ddp.join_group("cpu")


def test_a_lost_peer_is_told_apart_from_a_bug() -> None:
    # what the surviving rank's gloo raised when the other rank was killed (a walkthrough)
    gone = RuntimeError(
        "[/__w/pytorch/pytorch/third_party/gloo/gloo/transport/tcp/pair.cc:553] Connection "
        "closed by peer [127.0.0.1]:33156. This is typically caused by a remote worker "
        "crashing. Check the logs of the remote worker before reporting an error. GLHF!"
    )
    assert ddp.is_peer_loss(gone) and not ddp.is_peer_loss(RuntimeError("shape mismatch"))
    said = str(ddp.peer_lost(gone, 80))
    assert said.startswith(
        "another process of the run stopped (Connection closed by peer [127.0.0.1]:33156): "
    )
    assert "checkpoint at step 80 is kept" in said
    assert "no checkpoint was saved yet" in str(ddp.peer_lost(gone, 0))


def test_a_repeated_signal_is_the_same_stop_under_torchrun_only() -> None:
    # Under torchrun a rank gets SLURM's signal and torchrun's forwarded copy: one stop. In a
    # single process a second Ctrl-C is meant: it stops at once, however soon it comes.
    from sllen.train.interrupt import StopAfterStep

    ranks = StopAfterStep(enabled=False, repeat_s=2.0)
    ranks._handler(signal.SIGINT, None)
    ranks._handler(signal.SIGINT, None)  # the forwarded copy: ignored
    assert ranks.asked and ranks.signal_name == "SIGINT"
    single = StopAfterStep(enabled=False, repeat_s=0.0)
    single._handler(signal.SIGTERM, None)
    with pytest.raises(KeyboardInterrupt):
        single._handler(signal.SIGINT, None)


def test_torchrun_or_slurm_keep_the_repeat_window(monkeypatch: pytest.MonkeyPatch) -> None:
    # torchrun --nproc-per-node 1 under scancel delivers two signals to a world of one
    from sllen.train.interrupt import launched_by_a_manager

    for key in ("TORCHELASTIC_RUN_ID", "SLURM_JOB_ID"):
        monkeypatch.delenv(key, raising=False)
    assert not launched_by_a_manager()
    monkeypatch.setenv("SLURM_JOB_ID", "42")
    assert launched_by_a_manager()
    monkeypatch.delenv("SLURM_JOB_ID")
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "none")
    assert launched_by_a_manager()
