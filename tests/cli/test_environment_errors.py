"""The CLI's one-line errors for what a new user's walkthrough met: a pair of different sizes
found before training starts, data folders that are missing or hold split folders, a full disk
under a safetensors write, and output piped into a reader that stops early."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from sllen.data.samples import write_sample_pairs


def _lines(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.strip()]


def test_a_pair_of_different_sizes_stops_training_before_it_starts(tmp_path: Path) -> None:
    # It stopped the run when a training step drew the pair, up to hours in.
    data = write_sample_pairs(tmp_path / "pairs", 2, (40, 56), seed=1)
    Image.new("RGB", (30, 20)).save(data / "low" / "zz.png")
    Image.new("RGB", (60, 40)).save(data / "high" / "zz.png")
    out = tmp_path / "run"
    args = ["--preset", "tiny", "--steps", "2", "--threads", "1", "--out", str(out)]
    r = subprocess.run(
        [sys.executable, "-m", "sllen", "train", "--lle-data", str(data), *args],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert _lines(r.stderr) == [
        f"error: {data}: low/ and high/ differ in size for 1 pair: zz (30x20 and 60x40)"
    ]
    assert not out.exists()


def test_evaluation_names_the_split_folders_to_pass(tmp_path: Path) -> None:
    from sllen.evaluate import iter_pairs
    from sllen.runtime.errors import InputError

    for split in ("test", "train"):
        write_sample_pairs(tmp_path / "LOLn" / split, 1, (40, 56), seed=1)
    with pytest.raises(InputError, match=r"and low/ \+ high/ or normal/\); test/, train/ in it"):
        iter_pairs(tmp_path / "LOLn")


def _run_wrapped(body: str) -> SystemExit:
    """SystemExit of a user_errors command whose body is ``body``."""
    from sllen.cli._errors import user_errors

    @user_errors(sigterm=False)
    def command() -> None:
        exec(body)

    with pytest.raises(SystemExit) as info:
        command()
    return info.value


def test_a_full_disk_under_any_safetensors_write_is_bad_environment(capsys) -> None:
    # The trainer's optimizer files are written by safetensors directly: the wrapper knows its
    # error type, which is no OSError (it was exit 1, "a bug").
    body = (
        "from safetensors import SafetensorError\n"
        "raise SafetensorError('Error while serializing: I/O error: No space left on device"
        " (os error 28)')"
    )
    assert _run_wrapped(body).code == 2
    assert _lines(capsys.readouterr().err) == [
        "error: cannot write a safetensors file (No space left on device)"
    ]
    body = "from safetensors import SafetensorError\nraise SafetensorError('invalid tensor')"
    assert _run_wrapped(body).code == 1  # not the disk: a bug, said so


def _with_stdout_closed(code: str) -> subprocess.CompletedProcess:
    """Run ``code`` with its stdout a pipe whose reader has gone, as `... | head` leaves it."""
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    proc.stdout.close()  # before the child writes anything
    _, err = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, "", err)


def test_a_reader_that_stops_early_ends_the_command_quietly() -> None:
    # `sllen info FILE | head` ended with "error: [Errno 32] Broken pipe".
    from sllen.weights import default_weights

    code = f"from sllen.cli.main import main\nmain(['info', {str(default_weights())!r}])"
    r = _with_stdout_closed(code)
    assert (r.returncode, r.stderr) == (141, "")


def test_a_broken_pipe_of_the_commands_own_is_still_an_error() -> None:
    code = (
        "from sllen.cli._errors import user_errors\n"
        "@user_errors\n"
        "def command():\n"
        "    raise BrokenPipeError(32, 'Broken pipe')\n"
        "command()"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and _lines(r.stderr) == ["error: [Errno 32] Broken pipe"]
