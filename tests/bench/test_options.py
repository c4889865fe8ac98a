"""sllen-bench option parsing: resolutions, the configuration matrix, one-line errors (exit 2)."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from sllen.cli.bench import bench_command, build_configs, parse_resolution


def test_parse_resolution() -> None:
    assert parse_resolution("1280x720") == (720, 1280)  # WIDTHxHEIGHT in, (H, W) out
    assert parse_resolution(" 640X360 ") == (360, 640)
    assert parse_resolution("720p") == (720, 1280)
    assert parse_resolution("4K") == (2160, 3840)
    # One size vocabulary with --tile and --*-shape (sllen.runtime.shapes.parse_size): "x" only.
    for bad in ("1280", "1280x", "x720", "1280x720x3", "big", "-640x360", "1.5x2", "1920*1080"):
        with pytest.raises(ValueError, match="WIDTHxHEIGHT"):
            parse_resolution(bad)
    for bad in ("8x8", "100000x720"):
        with pytest.raises(ValueError, match="within 16"):
            parse_resolution(bad)


def test_build_configs_matrix(tmp_path: Path) -> None:
    onnx_file = tmp_path / "m.onnx"
    onnx_file.write_bytes(b"")
    weights = tmp_path / "m.safetensors"
    weights.write_bytes(b"")
    # the bundled model on two backends, PyTorch in two precisions x two attentions
    cfgs = build_configs(None, ["onnxruntime", "pytorch"], ["fp32", "fp16"], ["kernel", "sdpa"])
    assert [(c.backend, c.precision, c.attention) for c in cfgs] == [
        ("onnxruntime", "auto", "auto"),
        ("pytorch", "fp32", "kernel"),
        ("pytorch", "fp32", "sdpa"),
        ("pytorch", "fp16", "kernel"),
        ("pytorch", "fp16", "sdpa"),
    ]
    # files go to the backend that can load them; a backend that cannot is skipped
    cfgs = build_configs([onnx_file, weights], ["onnxruntime", "pytorch"], None, None, threads=2)
    assert [(Path(c.model).suffix, c.backend, c.threads) for c in cfgs] == [
        (".onnx", "onnxruntime", 2),
        (".safetensors", "pytorch", 2),
    ]
    assert build_configs([onnx_file], None, None, None)[0].backend == "onnxruntime"
    assert len(build_configs(None, ["pytorch", "pytorch"], None, None)) == 1  # duplicates go
    with pytest.raises(ValueError, match="cannot load it"):
        build_configs([onnx_file], ["pytorch"], None, None)
    # a backend asked for by name that no model file fits is an error, not a missing row
    other = onnx_file.with_name("b.onnx")
    other.write_bytes(b"")
    with pytest.raises(ValueError, match="--backend pytorch: none of the --model files"):
        build_configs([onnx_file, other], ["onnxruntime", "pytorch"], None, None)
    with pytest.raises(ValueError, match="--precision applies to the pytorch backend"):
        build_configs([onnx_file], None, ["fp16"], None)
    with pytest.raises(ValueError, match="--precision must be one of"):
        build_configs(None, ["pytorch"], ["int4"], None)
    with pytest.raises(ValueError, match="--attention must be one of"):
        build_configs(None, ["pytorch"], None, ["flash"])
    with pytest.raises(ValueError, match="--backend must be"):
        build_configs(None, ["openvino"], None, None)
    with pytest.raises(FileNotFoundError, match="no such model file"):
        build_configs([tmp_path / "none.onnx"], None, None, None)
    # ONNX Runtime's row bands: one row per mode asked, for ONNX Runtime only
    cfgs = build_configs([onnx_file], None, None, None, bands=["off", "on"])
    assert [(c.backend, c.bands, c.options(c.backend)) for c in cfgs] == [
        ("onnxruntime", "off", {"bands": "off"}),
        ("onnxruntime", "on", {"bands": "on"}),
    ]
    with pytest.raises(ValueError, match="--bands must be auto, on or off"):
        build_configs([onnx_file], None, None, None, bands=["maybe"])
    with pytest.raises(ValueError, match="--bands applies to the onnxruntime backend"):
        build_configs(None, ["pytorch"], None, None, bands=["on"])


def _cli(*args: str) -> tuple[int, str]:
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command()(bench_command)
    r = CliRunner().invoke(app, list(args))
    return r.exit_code, r.output


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--resolution", "1280by720"], "WIDTHxHEIGHT"),
        (["--resolution", "4x4"], "within 16"),
        (["--backend", "openvino"], "--backend must be"),
        (["--batch", "0"], "--batch must be at least 1"),
        (["--iterations", "0"], "--iterations must be at least 1"),
        (["--warmup", "-1"], "--warmup cannot be negative"),
        (["--duration", "0"], "--duration must be positive"),
        (["--top-k", "0"], "--top-k must be at least 1"),
        (["--threads", "0"], "--threads must be at least 1"),
        (["--peak-gflops", "-3"], "--peak-gflops must be positive"),
        (["--backend", "onnxruntime", "--precision", "fp16"], "--precision applies"),
        (["--model", "nowhere.onnx"], "no such model file"),
        (["--model", "m.pt"], "unknown model file type"),
        (["--device", "gpu0"], "--device must be auto, cpu, cuda or cuda:N"),
        (["--backend", "onnxruntime", "--cuda-graph"], "--cuda-graph applies to the tensorrt"),
        (["--plot", "latency.txt"], "write .png, .svg, .pdf or .jpg"),
    ],
)
def test_bad_options_are_one_line_errors(args: list[str], words: str, tmp_path: Path) -> None:
    if "m.pt" in args:
        (tmp_path / "m.pt").write_bytes(b"")
        args = [str(tmp_path / a) if a == "m.pt" else a for a in args]
    code, out = _cli(*args)
    assert code == 2, out
    lines = [ln for ln in out.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and words in lines[0], out
    assert "Traceback" not in out


def test_when_no_case_runs_stderr_says_why(tmp_path: Path) -> None:
    # The reason is in the table too, but with --quiet or stdout in a file only stderr is read.
    code, out = _cli("--backend", "tensorrt", "--resolution", "64x64", "--iterations", "1")
    assert code == 2, out
    line = next(ln for ln in out.splitlines() if ln.startswith("error: no case ran: "))
    assert len(line) > len("error: no case ran: ") + 10, line
    assert "where the time goes" not in out and "Traceback" not in out


def test_a_plot_is_written_in_the_format_its_name_asks(tmp_path: Path) -> None:
    from sllen.bench import report as rep

    assert rep.plot_format("p") == "png" and rep.plot_format("P.JPEG") == "jpg"
    assert rep.plot_format(tmp_path / "p.svg") == "svg"
    jpg = rep.plot([], tmp_path / "latency.jpg")
    assert jpg.read_bytes()[:3] == b"\xff\xd8\xff"  # JPEG, not PNG bytes under a .jpg name


def test_plot_without_matplotlib_fails_before_the_benchmark(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    import sllen.bench

    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.setitem(sys.modules, name, None)  # an install without the eval extra
    monkeypatch.setitem(sys.modules, "matplotlib", None)

    def no_run(*args: object, **kwargs: object) -> None:
        raise AssertionError("the benchmark ran before the missing matplotlib was said")

    monkeypatch.setattr(sllen.bench, "run_bench", no_run)
    code, out = _cli("--resolution", "64x64", "--threads", "1", "--plot", str(tmp_path / "p.png"))
    assert code == 2, out
    lines = [ln for ln in out.splitlines() if ln.strip()]
    assert len(lines) == 1 and "matplotlib" in lines[0] and '".[eval]"' in lines[0], out
    assert not (tmp_path / "p.png").exists()
