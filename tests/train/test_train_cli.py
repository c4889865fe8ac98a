"""sllen-train in-process (typer's runner): bad input is one line and exit 2 before anything
is indexed or written, an interrupted run says so once."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

import sllen.train.trainer as trainer_module
from sllen.cli.train import train_command
from sllen.config import get_preset
from sllen.model.io import save_weights
from sllen.model.sllen import SLLEN
from sllen.train.interrupt import Interrupted


def _cli(*args: str) -> tuple[int, str]:
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command()(train_command)
    r = CliRunner().invoke(app, list(args))
    return r.exit_code, r.output


def _one_line_error(code: int, output: str, *words: str) -> None:
    lines = [ln for ln in output.splitlines() if ln.strip()]
    assert code == 2, output  # bad input, not a bug (exit 1)
    assert len(lines) == 1 and "Traceback" not in output, output
    for w in words:
        assert w in lines[0], lines[0]


@pytest.fixture
def no_training(monkeypatch: pytest.MonkeyPatch) -> None:
    """Refusals must come before the data is indexed: reaching it fails the test."""

    def indexed(*a: object) -> None:
        raise AssertionError("the data was indexed before the refusal")

    monkeypatch.setattr(trainer_module, "build_datasets", indexed)


@pytest.mark.parametrize(
    "args,words",
    [
        (["--threads", "-3"], ["--threads must be at least 1, not -3"]),
        (["--threads", "0"], ["--threads must be at least 1, not 0"]),
        (["--val-holdout", "4"], ["--val-holdout holds out pairs of --lle-data"]),
        (["--val-holdout", "-1"], ["--val-holdout must be >= 0"]),
        (["--degradation", "phone"], ["--degradation must be one of"]),
        (["--photo-max-side", "800"], ["--photo-max-side sizes the photos of --lle-photos"]),
        (["--minutes", "0"], ["--minutes must be a finite number > 0"]),
        (["--num-classes", "1"], ["--num-classes must be at least 2, not 1"]),
        (["--refine-radius", "-1"], ["--refine-radius must be >= 0"]),
        (["--w-ssim", "-1"], ["--w-ssim must be a finite number >= 0, not -1.0"]),
        (["--w-smooth-l1", "nan"], ["--w-smooth-l1 must be a finite number >= 0"]),
        (["--w-spread", "1", "--batch-size", "1"], ["--w-spread needs --batch-size >= 2, not 1"]),
    ],
)
def test_bad_options_are_one_line_naming_the_option(
    tmp_path: Path, no_training: None, args: list[str], words: list[str]
) -> None:
    code, output = _cli(*args, "--out", str(tmp_path / "o"))
    _one_line_error(code, output, *words)
    assert not (tmp_path / "o").exists()


def test_option_combinations_that_would_do_nothing(tmp_path: Path, no_training: None) -> None:
    (tmp_path / "d").mkdir()
    out = ["--out", str(tmp_path / "o")]
    code, output = _cli("--lle-data", str(tmp_path / "d"), "--degradation", "camera", *out)
    _one_line_error(code, output, "--degradation", "drop it with --lle-data")
    code, output = _cli("--lle-photos", "p", "--val-holdout", "2", "--val-data", "v", *out)
    _one_line_error(code, output, "not both")
    assert not (tmp_path / "o").exists()


def test_refine_chroma_radius_names_only_the_option(tmp_path: Path, no_training: None) -> None:
    code, output = _cli("--refine-chroma-radius", "1", "--out", str(tmp_path / "o"))
    _one_line_error(code, output, "--refine-chroma-radius must be 0 (off) or at least 2")
    assert "eps" not in output and "noise" not in output and "refine_chroma" not in output


def test_out_that_is_a_file_is_refused_up_front(tmp_path: Path, no_training: None) -> None:
    (tmp_path / "afile").write_text("x")
    code, output = _cli("--out", str(tmp_path / "afile"))
    _one_line_error(code, output, "afile is a file, not a folder")
    assert "Errno" not in output
    code, output = _cli("--out", str(tmp_path / "afile" / "sub"))
    _one_line_error(code, output, "afile is a file, not a folder")


def test_vgg_weights_that_are_not_weights_are_bad_input(tmp_path: Path) -> None:
    fake = tmp_path / "fake.safetensors"
    fake.write_text("not weights")
    tiny = ["--preset", "tiny", "--crop-size", "32", "--batch-size", "2", "--threads", "1"]
    code, output = _cli(*tiny, "--vgg-weights", str(fake), "--out", str(tmp_path / "o"))
    _one_line_error(code, output, "fake.safetensors", "VGG16")  # was exit 1, a "bug"


def test_init_weights_of_other_options_name_what_differs(tmp_path: Path) -> None:
    weights = tmp_path / "w.safetensors"
    save_weights(SLLEN(get_preset("tiny", attention_dim=32, num_classes=10)), weights)
    tiny = ["--preset", "tiny", "--crop-size", "32", "--batch-size", "2", "--threads", "1"]
    code, output = _cli(*tiny, "--init-weights", str(weights), "--out", str(tmp_path / "o"))
    _one_line_error(code, output, "--num-classes (the weights have num_classes 10, this run 8)")
    assert "the weights were trained with attention_dim 32, this run 16" in output
    assert "--attention-dim" not in output and "options: attention_dim" not in output
    save_weights(SLLEN(get_preset("edge")), weights)
    code, output = _cli(*tiny, "--init-weights", str(weights), "--out", str(tmp_path / "o"))
    _one_line_error(code, output, "holds an 'edge' model", "give --preset edge")


def test_an_interrupted_run_says_so_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The trainer has said where its checkpoint went: no second "interrupted" line (exit 130).
    def interrupted(cfg: object, *a: object) -> None:
        raise Interrupted

    monkeypatch.setattr(trainer_module, "train", interrupted)
    code, output = _cli("--out", str(tmp_path / "o"))
    assert code == 130 and "interrupted" not in output, output

    def before_training(cfg: object, *a: object) -> None:
        raise KeyboardInterrupt  # Ctrl-C in the set-up: nothing said yet

    monkeypatch.setattr(trainer_module, "train", before_training)
    code, output = _cli("--out", str(tmp_path / "o"))
    assert code == 130 and output.strip() == "interrupted", output
