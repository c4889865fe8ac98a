"""The command line as a user meets it: real subprocesses, exit codes, one-line errors."""

import json
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest
import torch
from in_process import run_cli

from sllen.config import get_preset
from sllen.data.samples import write_sample_pairs
from sllen.model.io import read_config, read_metadata, save_weights
from sllen.model.sllen import SLLEN


def sllen(*args: str) -> subprocess.CompletedProcess:
    """`sllen ARGS` in a subprocess: the console script as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "sllen", *args], capture_output=True, text=True, timeout=300
    )


def sllen_here(*args: str) -> subprocess.CompletedProcess:
    """`sllen ARGS` in this process (tests/fakes/in_process.py): for the cases that stop before
    any work, where a fresh interpreter would be most of the cost."""
    return run_cli("sllen", *args)


def assert_one_line_error(r: subprocess.CompletedProcess, *words: str) -> None:
    assert r.returncode != 0
    assert "Traceback" not in r.stderr and "Traceback" not in r.stdout
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, r.stderr
    for w in words:
        assert w in lines[0], lines[0]


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    return save_weights(
        SLLEN(get_preset("tiny")), tmp_path_factory.mktemp("w") / "tiny.safetensors"
    )


@pytest.fixture(scope="module")
def pairs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_sample_pairs(tmp_path_factory.mktemp("d") / "pairs", 3, (40, 56), seed=1)


def test_console_scripts_are_declared() -> None:
    names = {ep.name: ep.value for ep in entry_points(group="console_scripts")}
    assert names["sllen"] == "sllen.cli.main:main"
    assert names["sllen-train"] == "sllen.cli.train:main"
    assert names["sllen-eval"] == "sllen.cli.evaluate:main"


def test_help_and_version() -> None:
    r = sllen("--help")
    assert r.returncode == 0 and "train" in r.stdout and "eval" in r.stdout
    r = sllen("--version")
    assert r.returncode == 0 and r.stdout.startswith("sllen ")
    r = subprocess.run(
        [sys.executable, "-m", "sllen.cli.train", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0 and "--no-hsbab" in r.stdout
    # The bad-input cases below run in this process (sllen_here); one here runs as a program,
    # so the console script's own error path is tested whole: one line, exit 2.
    r = sllen("train", "--bogus")
    assert_one_line_error(r, "No such option: --bogus", "sllen train --help")
    assert r.returncode == 2


def test_eval_paired_folder_writes_table_and_json(
    weights: Path, pairs: Path, tmp_path: Path
) -> None:
    report = tmp_path / "r" / "report.json"
    r = sllen(
        "eval",
        "--weights",
        str(weights),
        "--data",
        str(pairs),
        "--json",
        str(report),
        "--save-dir",
        str(tmp_path / "out"),
    )
    assert r.returncode == 0, r.stderr
    assert "PSNR" in r.stdout and "mean of 3 images" in r.stdout
    data = json.loads(report.read_text())
    assert data["paired"] and data["count"] == 3
    mean = data["mean"]["sllen"]
    assert {
        "psnr",
        "ssim",
        "psnr_gt_mean",
        "ssim_gt_mean",
        "loe",
        "saturation_ratio",
        "edge_ratio",
    } <= set(mean)
    assert mean["psnr_gt_mean"] != mean["psnr"] and "gm = GT-mean" in r.stdout
    assert "RGB" in data["protocol"]
    assert len(list((tmp_path / "out").glob("*.png"))) == 3


def test_eval_unpaired_folder_reports_loe_only(weights: Path, pairs: Path, tmp_path: Path) -> None:
    r = sllen(
        "eval",
        "--weights",
        str(weights),
        "--data",
        str(pairs / "low"),
        "--json",
        str(tmp_path / "u.json"),
    )
    assert r.returncode == 0, r.stderr
    data = json.loads((tmp_path / "u.json").read_text())
    assert not data["paired"] and set(data["mean"]["sllen"]) == {"loe"}


def test_eval_with_baselines(weights: Path, pairs: Path, tmp_path: Path) -> None:
    r = sllen(
        "eval",
        "--weights",
        str(weights),
        "--data",
        str(pairs),
        "--baselines",
        "--per-image",
        "--json",
        str(tmp_path / "b.json"),
    )
    assert r.returncode == 0, r.stderr
    data = json.loads((tmp_path / "b.json").read_text())
    assert list(data["mean"]) == ["gamma", "clahe", "sllen"]
    assert len(data["images"]) == 9


def test_eval_of_one_pair_says_the_slope_needs_more(weights: Path, tmp_path: Path) -> None:
    # A slope across images needs two: the table says n/a and the report holds null (strict
    # JSON: NaN is not JSON, and jq or a browser refuse it).
    one = write_sample_pairs(tmp_path / "one", 1, (40, 56), seed=3)
    out = tmp_path / "one.json"
    r = sllen("eval", "--weights", str(weights), "--data", str(one), "--json", str(out))
    assert r.returncode == 0, r.stderr
    assert "n/a" in r.stdout and "nan" not in r.stdout.lower()
    mean = json.loads(out.read_text(), parse_constant=lambda c: pytest.fail(c))["mean"]
    assert mean["sllen"]["brightness_slope"] is None and mean["sllen"]["psnr"] > 0


def test_eval_needs_data_or_evalset(weights: Path, pairs: Path) -> None:
    assert_one_line_error(sllen_here("eval", "--weights", str(weights)), "--evalset")
    r = sllen_here("eval", "--evalset", "--well-lit", "--data", str(pairs))
    assert_one_line_error(r, "give one of --data DIR, --evalset or --well-lit")


def test_samples_command(tmp_path: Path) -> None:
    r = sllen_here("samples", str(tmp_path / "s"), "--count", "2", "--size", "48x32")
    assert r.returncode == 0, r.stderr
    assert len(list((tmp_path / "s" / "low").glob("*.png"))) == 2
    assert_one_line_error(sllen_here("samples", str(tmp_path / "t"), "--size", "big"), "--size")
    r = sllen_here("samples", str(tmp_path / "s"), "--count", "2", "--size", "48x32")
    assert r.returncode == 0, r.stderr  # the same set again: rewritten
    # Fewer pairs into that folder would leave the old 0001.png beside them as one of theirs.
    r = sllen_here("samples", str(tmp_path / "s"), "--count", "1", "--size", "48x32")
    assert_one_line_error(r, "already holds other files")


def test_info_command(weights: Path) -> None:
    r = sllen_here("info", str(weights))
    assert r.returncode == 0 and "preset tiny" in r.stdout


@pytest.mark.parametrize(
    "case",
    [
        "missing_weights",
        "truncated_weights",
        "not_weights",
        "missing_data",
        "empty_data",
        "bad_preset",
        "bad_schedule",
        "bad_minutes",
        "empty_photos",
        "bad_photo_size",
        "bad_camera_share",
        "train_bad_threads_or_out",
        "unknown_option",
        "bad_value",
        "corrupt_image",
    ],
)
def test_bad_input_gives_one_line_and_nonzero_exit(
    case: str, weights: Path, pairs: Path, tmp_path: Path
) -> None:
    if case == "missing_weights":
        r = sllen_here("eval", "--weights", str(tmp_path / "no.safetensors"), "--data", str(pairs))
        assert_one_line_error(r, "not found")
    elif case == "truncated_weights":
        bad = tmp_path / "t.safetensors"
        bad.write_bytes(weights.read_bytes()[:500])
        assert_one_line_error(
            sllen_here("eval", "--weights", str(bad), "--data", str(pairs)), str(bad)
        )
    elif case == "not_weights":
        bad = tmp_path / "x.safetensors"
        bad.write_text("hello")
        assert_one_line_error(sllen_here("eval", "--weights", str(bad), "--data", str(pairs)))
    elif case == "missing_data":
        r = sllen_here("eval", "--weights", str(weights), "--data", str(tmp_path / "nowhere"))
        assert_one_line_error(r, "nowhere")
    elif case == "empty_data":
        (tmp_path / "empty").mkdir()
        r = sllen_here("eval", "--weights", str(weights), "--data", str(tmp_path / "empty"))
        assert_one_line_error(r, "no images")
    elif case == "bad_preset":
        r = sllen_here("train", "--preset", "huge", "--out", str(tmp_path / "o"))
        assert_one_line_error(r, "unknown preset")
    elif case == "bad_schedule":
        r = sllen_here("train", "--schedule", "random", "--out", str(tmp_path / "o"))
        assert_one_line_error(r, "--schedule")
    elif case == "unknown_option":  # click's usage errors are one line too, not a framed box
        r = sllen_here("train", "--bogus")
        assert_one_line_error(r, "No such option: --bogus", "sllen train --help")
        r = run_cli("sllen-run", "x.png", "--outptu", "d")
        assert_one_line_error(r, "--outptu", "(see sllen-run --help)")
        assert r.returncode == 2
    elif case == "bad_value":
        r = sllen_here("train", "--steps", "abc")
        assert_one_line_error(r, "--steps")
    elif case == "bad_minutes":
        r = sllen_here("train", "--minutes", "-1", "--out", str(tmp_path / "o"))
        assert_one_line_error(r, "--minutes must be a finite number > 0")
    elif case == "empty_photos":
        (tmp_path / "photos" / "sub").mkdir(parents=True)
        (tmp_path / "photos" / "notes.txt").write_text("no images here")
        r = sllen_here(
            "train", "--lle-photos", str(tmp_path / "photos"), "--out", str(tmp_path / "o")
        )
        assert_one_line_error(r, "no images found")
        assert not (tmp_path / "o").exists()
    elif case == "bad_photo_size":
        r = sllen_here("train", "--photo-max-side", "-5", "--out", str(tmp_path / "o"))
        assert_one_line_error(r, "photo-max-side must be >= 0")
        assert not (tmp_path / "o").exists()
    elif case == "bad_camera_share":
        r = sllen_here(
            "train",
            "--camera-share",
            "0.5",
            "--degradation",
            "simple",
            "--out",
            str(tmp_path / "o"),
        )
        assert_one_line_error(r, "--camera-share sets the mix of --degradation mixed")
        r = sllen_here("train", "--camera-share", "2", "--out", str(tmp_path / "o"))
        assert_one_line_error(r, "--camera-share must be in [0, 1]")
        r = sllen_here("train", "--width", "9", "--out", str(tmp_path / "o"))
        assert_one_line_error(r, "--width must be in [0.25, 4]")
        r = sllen_here("train", "--bright-share", "1.5", "--out", str(tmp_path / "o"))
        assert_one_line_error(r, "--bright-share must be in [0, 1]")
        r = sllen_here(
            "train", "--bright-share", "0.2", "--lle-data", str(pairs), "--out", str(tmp_path / "o")
        )
        assert_one_line_error(r, "--bright-share darkens generated pairs")
        r = sllen_here("train", "--black-point", "-1", "--out", str(tmp_path / "o"))
        assert_one_line_error(r, "--black-point must be in [0, 20]")
        r = sllen_here(
            "train", "--black-point", "6", "--degradation", "simple", "--out", str(tmp_path / "o")
        )
        assert_one_line_error(r, "--black-point sets the camera pipeline")
        r = sllen_here("train", "--gt-exposure", "2.5", "--out", str(tmp_path / "o"))
        assert_one_line_error(r, "--gt-exposure must be in [0, 2] stops")
        r = sllen_here(
            "train", "--gt-exposure", "1", "--lle-data", str(pairs), "--out", str(tmp_path / "o")
        )
        assert_one_line_error(r, "--gt-exposure changes generated pairs")
        assert not (tmp_path / "o").exists()
        r = sllen_here("train", "--refine-radius", "-1", "--out", str(tmp_path / "o"))
        assert_one_line_error(r, "--refine-radius must be >= 0")
        for bad in ("-1", "1"):  # 1: the colour stage fits at half resolution
            r = sllen_here("train", "--refine-chroma-radius", bad, "--out", str(tmp_path / "o"))
            assert_one_line_error(r, "--refine-chroma-radius must be 0 (off) or at least 2")
            assert "refine_chroma_eps" not in r.stderr  # a field no option sets
        r = sllen_here(
            "train", "--refine-radius", "0", "--refine-in-loss", "--out", str(tmp_path / "o")
        )
        assert_one_line_error(r, "--refine-in-loss needs the refinement")
    elif case == "train_bad_threads_or_out":  # were a RuntimeError (exit 1), a raw errno
        r = sllen_here("train", "--threads", "-3", "--out", str(tmp_path / "o"))
        assert_one_line_error(r, "--threads must be at least 1, not -3")
        assert r.returncode == 2 and not (tmp_path / "o").exists()
        (tmp_path / "afile").write_text("x")
        r = sllen_here("train", "--out", str(tmp_path / "afile" / "sub"))
        assert_one_line_error(r, "afile is a file, not a folder")
        assert r.returncode == 2 and "Errno" not in r.stderr
    elif case == "corrupt_image":
        (tmp_path / "c").mkdir()
        (tmp_path / "c" / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
        r = sllen_here("eval", "--weights", str(weights), "--data", str(tmp_path / "c"))
        assert_one_line_error(r, "a.png")


def test_train_command_short_run(tmp_path: Path) -> None:
    out = tmp_path / "run"
    r = sllen(
        "train",
        "--preset",
        "tiny",
        "--steps",
        "3",
        "--batch-size",
        "2",
        "--ss-batch-size",
        "2",
        "--crop-size",
        "32",
        "--out",
        str(out),
        "--w-gradient",
        "0",
        "--no-rsaeb",
        "--refine-radius",
        "1",
        "--refine-chroma-radius",
        "3",
        "--refine-in-loss",
        "--bright-share",
        "0.3",
        "--black-point",
        "6",
        "--gt-exposure",
        "0.5",
        "--width",
        "2",
    )
    assert r.returncode == 0, r.stderr
    assert (out / "last.safetensors").is_file()
    r = sllen("info", str(out / "last.safetensors"))
    assert "SLLEN-2" in r.stdout
    config = read_config(out / "last.safetensors")
    assert config.refine_radius == 1 and config.refine_chroma_radius == 3
    assert config.encoder_channels == (8, 16, 16, 32, 32)  # tiny's (4, 8, 8, 16, 16) x 2
    train_config = json.loads(read_metadata(out / "last.safetensors")["train_config"])
    assert train_config["refine_in_loss"] is True and train_config["bright_share"] == 0.3
    assert train_config["black_point"] == 6.0 and train_config["gt_exposure"] == 0.5


@pytest.mark.slow
def test_eval_scores_a_deployed_onnx_file_like_its_weights(
    weights: Path, pairs: Path, tmp_path: Path
) -> None:
    # --model runs the file through sllen.runtime (as sllen-run does): the FP32 ONNX export of
    # the same weights must score what the PyTorch model scores.
    from sllen.export.onnx_export import export_onnx
    from sllen.model.io import load_weights

    onnx_path = export_onnx(load_weights(weights), tmp_path / "tiny.onnx")
    scores = {}
    for flag, path in (("--weights", weights), ("--model", onnx_path)):
        out = tmp_path / f"{path.suffix[1:]}.json"
        r = sllen(
            "eval", flag, str(path), "--data", str(pairs), "--json", str(out), "--threads", "1"
        )
        assert r.returncode == 0, r.stderr
        scores[flag] = json.loads(out.read_text())["mean"]["sllen"]
    assert "onnxruntime" in json.loads(out.read_text())["methods"]["sllen"]
    assert scores["--model"]["psnr"] == pytest.approx(scores["--weights"]["psnr"], abs=0.01)
    assert scores["--model"]["ssim"] == pytest.approx(scores["--weights"]["ssim"], abs=1e-3)


@pytest.mark.parametrize(
    "command,extra",
    [
        (["train", "--steps", "1", "--out", "{tmp}/t"], '".[train]"'),
        (["eval", "--weights", "{weights}", "--data", "{tmp}"], '".[train]"'),
        (["export", "--out", "{tmp}/e"], '".[export]"'),  # torch and the ONNX tools
    ],
)
def test_run_only_install_says_which_extra_to_install(
    command: list[str], extra: str, weights: Path, tmp_path: Path
) -> None:
    # A run-only install (no torch): the command names the extra instead of a traceback, and
    # the CPU build of torch for a machine without an NVIDIA GPU (pip's default is CUDA's, GBs).
    args = [a.format(tmp=tmp_path, weights=weights) for a in command]
    code = f"import sys; sys.modules['torch'] = None\nfrom sllen.cli.main import app\napp({args!r})"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    # README's command, run in the clone: "sllen[train]" named no package on PyPI (walkthrough K)
    assert_one_line_error(
        r, f'python -m pip install "torch==2.13.0" {extra} in the sllen clone',
        "torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu",
    )  # fmt: skip
    assert r.returncode == 2


def test_eval_set_without_its_packages_names_both_extras(tmp_path: Path) -> None:
    # --evalset scores the bundled PyTorch model on photographs from scikit-image: one install
    code = (
        "import sys\nfor m in ('skimage', 'sklearn', 'matplotlib'): sys.modules[m] = None\n"
        "from sllen.cli.main import app\n"
        f"app(['eval', '--evalset', '--json', {str(tmp_path / 'e.json')!r}])"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert_one_line_error(r, '".[train,eval]"')
    assert r.returncode == 2


def test_eval_rejects_an_unknown_well_exposed_mode(weights: Path, pairs: Path) -> None:
    r = sllen_here("eval", "--weights", str(weights), "--data", str(pairs), "--well-exposed", "x")
    assert_one_line_error(r, "--well-exposed must be 'keep' or 'enhance'")


def test_eval_self_ensemble_is_named_and_scored(weights: Path, pairs: Path, tmp_path: Path) -> None:
    scores = {}
    for flag in ("", "--self-ensemble"):
        out = tmp_path / f"s{len(flag)}.json"
        args = ["--weights", str(weights), "--data", str(pairs), "--json", str(out)]
        r = sllen("eval", *args, "--threads", "1", *([flag] if flag else []))
        assert r.returncode == 0, r.stderr
        report = json.loads(out.read_text())
        assert report["methods"]["sllen"].endswith("--self-ensemble") == bool(flag)
        scores[flag] = report["mean"]["sllen"]["psnr"]
    assert scores[""] != scores["--self-ensemble"]


def test_eval_checks_the_json_path_before_scoring(
    weights: Path, pairs: Path, tmp_path: Path
) -> None:
    r = sllen("eval", "--weights", str(weights), "--data", str(pairs), "--json", str(tmp_path))
    assert_one_line_error(r, f"--json {tmp_path}: that is a folder; name a file")
    assert "tmp" not in r.stderr.replace(str(tmp_path), "")  # no temporary file's name


def test_eval_rejects_zero_threads(tmp_path: Path) -> None:
    r = sllen("eval", "--data", str(tmp_path), "--threads", "0")
    assert_one_line_error(r, "--threads must be at least 1")


def test_info_reads_weights_without_torch(weights: Path) -> None:
    code = (
        "import sys; sys.modules['torch'] = None; sys.modules['safetensors'] = None\n"
        f"from sllen.cli.main import app\napp(['info', {str(weights)!r}])"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "preset tiny" in r.stdout


def test_help_texts_survive_rich_markup() -> None:
    # typer renders help as rich markup: a bare "[trt-check]" would vanish as a style tag.
    import typer.main
    from rich.text import Text

    from sllen.cli.main import app

    group = typer.main.get_command(app)
    for name, command in group.commands.items():  # type: ignore[attr-defined]
        for param in command.params:
            text = getattr(param, "help", None) or ""
            shown = Text.from_markup(text).plain
            assert shown == text.replace("\\[", "["), f"sllen {name} {param.name}: {text!r}"


def test_command_summaries_are_not_broken_mid_sentence() -> None:
    # rich keeps a docstring's line breaks: `sllen --help` read "TensorRT engines where" /
    # "TensorRT is installed." on two lines whatever the terminal's width.
    import typer.main

    from sllen.cli.main import app

    group = typer.main.get_command(app)
    for name, command in group.commands.items():  # type: ignore[attr-defined]
        first = (command.help or "").split("\n\n")[0]
        assert "\n" not in first, f"sllen {name}: {first!r}"


def test_sigterm_is_ctrl_c_in_commands_unless_the_command_keeps_it() -> None:
    # Every command takes SIGTERM as Ctrl-C (an export or evaluation cleans up); sllen-train
    # keeps its own handling, which leaves torchrun's ranks to torchrun (a KeyboardInterrupt
    # there hung a rank in a collective until NCCL's timeout).
    import signal

    from sllen.cli._errors import user_errors

    def mine(signum, frame) -> None:  # the handler a caller (torchrun's rank) had
        pass

    def seen() -> object:
        return signal.getsignal(signal.SIGTERM)

    before = signal.signal(signal.SIGTERM, mine)
    try:
        assert user_errors(sigterm=False)(seen)() is mine
        assert user_errors(seen)() is not mine
        assert signal.getsignal(signal.SIGTERM) is mine  # given back
    finally:
        signal.signal(signal.SIGTERM, before)
