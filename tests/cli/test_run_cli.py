"""sllen-run as a user meets it: real subprocesses, real files, exit codes, one-line errors."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from sllen.samples import sample_clip


def sllen_run(*args: str, prelude: str = "", **kw) -> subprocess.CompletedProcess:
    code = prelude + (
        "import sys\nfrom sllen.cli.run import main\nsys.argv = ['sllen-run', *sys.argv[1:]]\n"
        "main()\n"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-c", code, *args, "--threads", "1"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        **kw,
    )


def sllen_run_popen(*args: str) -> subprocess.Popen:
    """sllen-run started in the background, to be sent a signal. The child restores the default
    SIGINT handler itself: a pytest started with SIGINT ignored (in the background, by nohup)
    would otherwise pass that on and the signal would be lost."""
    code = (
        "import signal, sys\nsignal.signal(signal.SIGINT, signal.default_int_handler)\n"
        "from sllen.cli.run import main\n"
        "sys.argv = ['sllen-run', *sys.argv[1:]]\nmain()\n"
    )
    return subprocess.Popen(
        [sys.executable, "-c", code, *args, "--threads", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def one_line_error(r: subprocess.CompletedProcess, *words: str) -> str:
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr + r.stdout
    lines = [ln for ln in r.stderr.splitlines() if ln.strip() and not ln.startswith("backend:")]
    assert len(lines) == 1, r.stderr
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


def make_clip(path: Path, frames: int = 12, size: tuple[int, int] = (96, 64), audio: bool = True):
    """A short dark H.264 clip with an AAC track, made with PyAV."""
    w, h = size
    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=Fraction(15))
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        a_s = out.add_stream("aac", rate=44100) if audio else None
        for i in range(frames):
            img = np.clip(rng.normal(20 + i, 5, (h, w, 3)), 0, 255).astype(np.uint8)
            for p in vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(p)
        if a_s is not None:
            samples = 44100 * frames // 15
            t = np.arange(samples) / 44100
            tone = (0.1 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None]
            af = av.AudioFrame.from_ndarray(tone, format="fltp", layout="mono")
            af.sample_rate = 44100
            for p in a_s.encode(af):
                out.mux(p)
            for p in a_s.encode(None):
                out.mux(p)
        for p in vs.encode(None):
            out.mux(p)
    return path


def streams(path: Path) -> dict:
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        tb, rate, size, codec = (
            v.time_base,
            v.average_rate,
            (v.width, v.height),
            v.codec_context.name,
        )
        pts = [f.pts for f in c.decode(v)]
    with av.open(str(path)) as c:
        audio = [p for p in c.demux(c.streams.audio[0]) if p.size] if c.streams.audio else []
    return {
        "frames": len(pts),
        "rate": rate,
        "size": size,
        "codec": codec,
        "times": [float(p * tb) for p in pts],
        "audio_packets": len(audio),
    }


def test_video_keeps_frames_rate_timestamps_and_audio(tmp_path: Path) -> None:
    src = make_clip(tmp_path / "clip.mp4")
    r = sllen_run(str(src), "-o", str(tmp_path / "out"))
    assert r.returncode == 0, r.stderr
    out = tmp_path / "out" / "clip.mp4"
    a, b = streams(src), streams(out)
    assert b["frames"] == a["frames"] == 12
    assert b["rate"] == a["rate"] and b["size"] == a["size"] and b["codec"] == "h264"
    assert np.allclose(b["times"], a["times"], atol=1e-3)
    assert b["audio_packets"] == a["audio_packets"] > 0
    assert "end-to-end fps" in r.stderr  # the summary table with the stage split
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["clip.mp4"]


@pytest.mark.slow
def test_bundled_sample_clip_without_torch(tmp_path: Path, block_torch: str) -> None:
    r = sllen_run(str(sample_clip()), "-o", str(tmp_path), "--side-by-side", prelude=block_torch)
    assert r.returncode == 0, r.stderr
    assert "onnxruntime" in r.stderr
    info = streams(tmp_path / "dark-pan.mp4")
    assert info["frames"] == 60 and info["size"] == (640, 240)


def test_image_folder(tmp_path: Path, block_torch: str) -> None:
    d = tmp_path / "in"
    d.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 30, (40, 50, 3), dtype=np.uint8)).save(d / "a.jpg")
    Image.fromarray(rng.integers(0, 30, (40, 50), dtype=np.uint8)).save(d / "g.png")
    r = sllen_run(str(d), "-o", str(tmp_path / "out"), "--segmentation", prelude=block_torch)
    assert r.returncode == 0, r.stderr
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["a.jpg", "a.segmentation.png", "g.png", "g.segmentation.png"]
    assert Image.open(tmp_path / "out" / "g.png").mode == "L"


def test_one_input_to_a_named_file(tmp_path: Path) -> None:
    src = tmp_path / "a.png"
    Image.fromarray(np.full((40, 50, 3), 20, np.uint8)).save(src)
    r = sllen_run(str(src), "-o", str(tmp_path / "new" / "night.jpg"))
    assert r.returncode == 0, r.stderr
    assert Image.open(tmp_path / "new" / "night.jpg").format == "JPEG"  # the name's format
    assert "1 file, 1 frame in" in r.stderr
    r = sllen_run(str(src), "-o", str(tmp_path / "new" / "night.jpg"), "--resume")
    assert r.returncode == 0, r.stderr
    assert "night.jpg (already there: skipped)" in r.stderr
    assert "1 file skipped: its output exists (--resume)" in r.stderr
    (tmp_path / "scan").write_bytes(src.read_bytes())  # a name with no suffix: read by content
    r = sllen_run(str(tmp_path / "scan"), "-o", str(tmp_path / "out"))
    assert r.returncode == 0, r.stderr
    assert Image.open(tmp_path / "out" / "scan.png").format == "PNG"


def test_exposure_darkens_the_written_image(tmp_path: Path) -> None:
    src = tmp_path / "a.png"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 30, (40, 50, 3), dtype=np.uint8)).save(src)
    means = []
    for ev in ("0", "-1"):
        r = sllen_run(str(src), "-o", str(tmp_path / ev), f"--exposure={ev}")
        assert r.returncode == 0, r.stderr
        means.append(np.asarray(Image.open(tmp_path / ev / "a.png"), np.float32).mean())
    assert means[1] < means[0] * 0.8  # -1 EV halves the linear light: ~73% in sRGB values


def test_self_ensemble_writes_what_the_api_gives(tmp_path: Path) -> None:
    from sllen.runtime import open_enhancer

    src = tmp_path / "a.png"
    img = np.random.default_rng(0).integers(0, 30, (40, 50, 3), dtype=np.uint8)
    Image.fromarray(img).save(src)
    for flag in ("", "--self-ensemble"):
        args = [str(src), "-o", str(tmp_path / (flag or "plain")), "--backend", "onnxruntime"]
        r = sllen_run(*args, *([flag] if flag else []))
        assert r.returncode == 0, r.stderr
    plain = np.asarray(Image.open(tmp_path / "plain" / "a.png"), np.int16)
    both = np.asarray(Image.open(tmp_path / "--self-ensemble" / "a.png"), np.int16)
    with open_enhancer(backend="onnxruntime", threads=1, self_ensemble=True) as enhance:
        expected = enhance(img).astype(np.int16)
    assert np.abs(both - expected).max() <= 1
    assert np.abs(both - plain).mean() > 0.1  # the four results differ, so their mean does


def test_folder_with_a_bad_file_goes_on_and_fails_at_the_end(tmp_path: Path) -> None:
    d = tmp_path / "in"
    d.mkdir()
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(d / "a.png")
    (d / "b.png").write_text("not an image")
    r = sllen_run(str(d), "--out", str(tmp_path / "out"))  # --output's alias
    assert r.returncode == 2
    assert "b.png" in r.stderr and "1 of 2 files failed" in r.stderr
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["a.png"]


def bad_inputs(tmp_path: Path) -> dict[str, tuple[list[str], list[str]]]:
    (tmp_path / "empty").mkdir()
    (tmp_path / "text.mp4").write_text("this is not a video\n" * 10)
    (tmp_path / "zero.mp4").write_bytes(b"")
    clip = make_clip(tmp_path / "full.mp4", frames=30, audio=False)
    (tmp_path / "cut.mp4").write_bytes(clip.read_bytes()[: clip.stat().st_size // 3])
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    cut_w = tmp_path / "cut.safetensors"
    from sllen.runtime.bundled import bundled_weights

    cut_w.write_bytes(bundled_weights().read_bytes()[:100_000])
    engine = tmp_path / "model.engine"
    engine.write_bytes(b"not really an engine")
    return {
        "missing": ([str(tmp_path / "nope.mp4")], ["nope.mp4", "no such file"]),
        "empty folder": ([str(tmp_path / "empty")], ["no images or videos"]),
        "not a video": ([str(tmp_path / "text.mp4")], ["text.mp4"]),
        "empty video": ([str(tmp_path / "zero.mp4")], ["zero.mp4"]),
        "truncated weights": (
            [str(clip), "--model", str(cut_w)],
            ["cut.safetensors"],
        ),
        "unwritable output": (
            [str(clip), "-o", str(blocker / "out")],
            ["cannot create the output folder"],
        ),
        "not a model file": (
            [str(clip), "--model", str(tmp_path / "full.mp4")],
            ["unknown model file type"],
        ),
        "engine without TensorRT": (
            [str(clip), "--model", str(engine)],
            ["model.engine: TensorRT is not installed"],
        ),
        "bands on PyTorch": (
            [str(clip), "--model", str(bundled_weights()), "--bands", "on"],
            ["--bands applies to ONNX Runtime"],
        ),
        "attention on ONNX Runtime": (
            [str(clip), "--backend", "onnxruntime", "--attention", "kernel"],
            ["--attention applies to the pytorch backend", "this run uses onnxruntime"],
        ),
        "bad bands value": ([str(clip), "--bands", "sometimes"], ["bands must be one of"]),
        "exposure out of range": ([str(clip), "--exposure", "6"], ["--exposure", "stops"]),
        "bad well-exposed value": (
            [str(clip), "--well-exposed", "auto"],
            ["--well-exposed must be 'keep' or 'enhance'"],
        ),
        "bad device": ([str(clip), "--device", "tpu"], ["--device must be auto, cpu, cuda"]),
        "bad crf": ([str(clip), "--crf", "-5"], ["--crf must be in 0..51 for libx264"]),
        # mpeg4 encodes at a fixed quantiser: --crf gave byte-identical files (walkthrough M)
        "crf for a codec without one": (
            [str(clip), "--codec", "mpeg4", "--crf", "20", "-o", str(tmp_path / "o.avi")],
            ["--crf: mpeg4 has no constant-rate factor", "fixed quantiser"],
        ),
        "bad encoder preset": ([str(clip), "--encoder-preset", "warp"], ["--encoder-preset"]),
        "unknown codec": ([str(clip), "--codec", "nosuch264"], ["no 'nosuch264' video encoder"]),
        "audio codec": ([str(clip), "--codec", "aac"], ["--codec aac encodes audio, not video"]),
        "one file named for two inputs": (
            [str(clip), str(tmp_path / "cut.mp4"), "-o", str(tmp_path / "o" / "r.mp4")],
            ["names one file, but 2 inputs"],
        ),
    }


CASES = [
    "missing",
    "empty folder",
    "not a video",
    "empty video",
    "truncated weights",
    "unwritable output",
    "not a model file",
    "engine without TensorRT",
    "bands on PyTorch",
    "attention on ONNX Runtime",
    "bad bands value",
    "exposure out of range",
    "bad well-exposed value",
    "bad device",
    "bad crf",
    "bad encoder preset",
    "unknown codec",
    "audio codec",
    "one file named for two inputs",
]


@pytest.mark.parametrize("case", CASES)
def test_bad_input_one_line(tmp_path: Path, case: str) -> None:
    args, words = bad_inputs(tmp_path)[case]
    out = tmp_path / "o"
    r = sllen_run(*args, *([] if "-o" in args else ["-o", str(out)]))
    # a file that fails while the run goes on gives its own line alone ("error: 1 of 1 file
    # failed" came after it; with several files that count is said)
    one_line_error(r, *words)
    # nothing written, and not even the output folder the run created
    assert not out.exists(), list(out.rglob("*"))


def test_truncated_video_keeps_what_decodes(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "full.mp4", frames=40, audio=False)
    cut = tmp_path / "cut.mp4"
    data = clip.read_bytes()
    cut.write_bytes(data[: int(len(data) * 0.8)])
    r = sllen_run(str(cut), "-o", str(tmp_path / "out"))
    out = tmp_path / "out" / "cut.mp4"
    # Either a clear failure with nothing left behind, or an output with the decodable frames.
    if r.returncode == 0:
        assert 0 < streams(out)["frames"] <= 40
    else:
        assert "Traceback" not in r.stderr and not out.exists()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_leaves_nothing_behind(tmp_path: Path, sig: signal.Signals) -> None:
    # SIGTERM (a scheduler, docker stop) as Ctrl-C: it left the writer's temporary file.
    src = make_clip(tmp_path / "long.mp4", frames=400, size=(320, 240), audio=False)
    out = tmp_path / "out"
    p = sllen_run_popen(str(src), "-o", str(out))
    deadline = time.time() + 120
    while time.time() < deadline and not any(out.glob(".*")):
        time.sleep(0.2)  # wait until the writer's temporary file exists
    time.sleep(1.0)
    p.send_signal(sig)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    assert "Traceback" not in err
    assert not out.exists()  # no partial file, and the folder the run created is gone


def test_ctrl_c_in_a_run_of_several_files_says_what_was_kept(tmp_path: Path) -> None:
    # A bare "interrupted" left a walkthrough to list the folder to learn what was kept.
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(np.full((24, 32, 3), 30, np.uint8)).save(src / "a.jpg")  # first: done
    make_clip(src / "b.mp4", frames=400, size=(320, 240), audio=False)
    out = tmp_path / "out"
    p = sllen_run_popen(str(src), "-o", str(out))
    deadline = time.time() + 120
    while time.time() < deadline and not any(out.glob(".b*")):
        time.sleep(0.2)  # the photo is done and the video's temporary file exists
    time.sleep(1.0)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    assert err.splitlines()[-1] == (
        f"interrupted: 1 of 2 files done and kept ({out / 'a.jpg'}); the same command with "
        "--resume finishes the rest"
    ), err
    assert sorted(f.name for f in out.iterdir()) == ["a.jpg"]


def test_live_udp_stream_ctrl_c_finishes_the_recording(tmp_path: Path) -> None:
    """The issue's loopback test: a fake camera sends MPEG-TS over UDP; sllen-run enhances it
    live until Ctrl-C, reports drops and latency, and leaves a finished, playable file."""
    from fake_camera import FakeCamera, free_udp_port

    port = free_udp_port()
    cam = FakeCamera(port, size=(160, 96))
    out = tmp_path / "rec"
    p = sllen_run_popen(f"udp://127.0.0.1:{port}", "-o", str(out), "--timeout", "20")
    cam.start()
    deadline = time.time() + 120
    while time.time() < deadline and not any(out.glob(".*.mp4")):
        time.sleep(0.2)  # the recording's temporary file: frames are being written
    time.sleep(2.0)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    cam.stop()
    assert p.returncode == 0, err
    assert "Traceback" not in err and "stopped by: interrupt" in err
    assert "dropped" in err and "latency p50 ms" in err
    (rec,) = out.glob("udp-127.0.0.1-*.mp4")
    info = streams(rec)
    assert info["frames"] >= 1 and info["size"] == (160, 96)


def test_ctrl_c_while_a_live_source_is_awaited_stops_at_once(tmp_path: Path) -> None:
    # FFmpeg's open blocks until its timeout (30 s here): the signal must not wait for it.
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    out = tmp_path / "rec"
    p = sllen_run_popen(f"udp://127.0.0.1:{port}", "-o", str(out), "--timeout", "30")
    deadline = time.monotonic() + 120
    seen = ""
    while "live:" not in seen and time.monotonic() < deadline:  # the model loaded; opening now
        seen += p.stderr.readline() if p.stderr else ""
    time.sleep(1.0)
    sent = time.monotonic()
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    assert time.monotonic() - sent < 5, err
    assert p.returncode == 130 and "Traceback" not in err, err
    assert not out.exists()


@pytest.mark.parametrize("name", ["c.mp4", "c.ts"])
def test_an_http_video_file_is_read_once_to_its_end(tmp_path: Path, name: str) -> None:
    # A video file behind http:// (not a stream): every frame once, then the end; it was
    # fetched again and again, for ever, and most frames dropped. An MPEG-TS file from a
    # server without range requests has no duration: its stated length makes it a file.
    import functools
    import http.server
    import threading

    www = tmp_path / "www"
    www.mkdir()
    make_clip(www / name, frames=12, audio=False)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(www))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/{name}"
        r = sllen_run(url, "-o", str(tmp_path / "rec.mp4"))
    finally:
        server.shutdown()
    assert r.returncode == 0, r.stderr
    assert "stopped by: end" in r.stderr and "warning" not in r.stderr  # no reconnecting
    assert streams(tmp_path / "rec.mp4")["frames"] == 12


def test_live_options_are_checked(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "c.mp4", frames=2, audio=False)
    for option in ("--duration", "--timeout"):
        r = sllen_run("udp://127.0.0.1:9", "-o", str(tmp_path / "o"), option, "nan")
        one_line_error(r, f"{option} must be positive")
    for name, words in (("rec.jpg", "records a video"), ("rec.webm", "--codec libvpx-vp9")):
        one_line_error(sllen_run("udp://127.0.0.1:9", "-o", str(tmp_path / name)), words)
    one_line_error(sllen_run(str(clip), "--duration", "3"), "applies to live sources")
    # a file is not reconnected to: the option would be silently ignored
    one_line_error(sllen_run(str(clip), "--reconnect", "2"), "--reconnect applies to live")
    r = sllen_run("udp://127.0.0.1:9", str(clip), "-o", str(tmp_path / "o"))
    one_line_error(r, "runs alone")
    r = sllen_run("udp://127.0.0.1:9", "--ray")
    one_line_error(r, "for files, not live sources")
    one_line_error(sllen_run(str(clip), "--workers", "3"), "--workers sets the Ray workers")


def test_srt_without_libsrt_is_refused_before_the_model_loads(tmp_path: Path) -> None:
    from sllen.runtime.errors import SllenError
    from sllen.runtime.video.live import check_protocol

    try:
        check_protocol("srt://127.0.0.1:9")
    except SllenError:
        pass
    else:
        pytest.skip("this PyAV build has libsrt (PyPI's wheels have not)")
    clip = make_clip(tmp_path / "c.mp4", frames=2, audio=False)
    missing = str(tmp_path / "missing.onnx")  # a model error would mean the model came first
    for args in (("srt://127.0.0.1:9", "-o", str(tmp_path / "o")), (str(clip), "-o", "srt://h:9")):
        one_line_error(sllen_run(*args, "--model", missing), "no SRT support")
    assert not (tmp_path / "o").exists()


def test_a_live_source_that_never_sends_leaves_no_folder(tmp_path: Path) -> None:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # free now; nobody sends to it
    out = tmp_path / "rec" / "sub"
    r = sllen_run(f"udp://127.0.0.1:{port}", "-o", str(out), "--timeout", "2")
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert not (tmp_path / "rec").exists()


def test_a_cameras_password_is_never_printed(tmp_path: Path) -> None:
    # The "live:" line printed the URL as typed (the error line below it was redacted).
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # free now: the connection is refused
    r = sllen_run(f"rtsp://admin:hunter2@127.0.0.1:{port}/s", "-o", str(tmp_path / "rec"))
    assert r.returncode == 2 and "live: rtsp://admin:***@127.0.0.1" in r.stderr, r.stderr
    assert "hunter2" not in r.stdout + r.stderr


def test_ray_takes_an_optional_address() -> None:
    from sllen.cli.run import _ray_argv

    assert _ray_argv(["in/", "--ray"]) == ["in/", "--ray=local"]
    assert _ray_argv(["--ray", "in/", "-o", "x"]) == ["--ray=local", "in/", "-o", "x"]
    assert _ray_argv(["--ray", "auto", "in/"]) == ["--ray=auto", "in/"]
    assert _ray_argv(["in/", "--ray", "10.0.0.2:6379"]) == ["in/", "--ray=10.0.0.2:6379"]
    assert _ray_argv(["--ray", "ray://head:10001", "a.png"]) == ["--ray=ray://head:10001", "a.png"]
    assert _ray_argv(["--ray", "--workers", "2"]) == ["--ray=local", "--workers", "2"]


def test_ray_missing_names_the_extra(tmp_path: Path, block_torch: str) -> None:
    block_ray = block_torch.replace("'torch'", "'ray'").replace("'torch.'", "'ray.'")
    clip = make_clip(tmp_path / "c.mp4", frames=2, audio=False)
    r = sllen_run(str(clip), "-o", str(tmp_path / "o"), "--ray", prelude=block_ray)
    one_line_error(r, 'python -m pip install ".[ray]" in the sllen clone')


def test_webm_with_vp9_and_logged_warnings_get_the_warning_prefix(tmp_path: Path) -> None:
    # `-o x.webm --codec libvpx-vp9` was refused ("a video is written as H.264"); the
    # runtime's logged warnings (padding an odd size) printed bare, like a result line.
    src = tmp_path / "odd.mkv"
    with av.open(str(src), "w") as out:
        vs = out.add_stream("libx264", rate=15)
        vs.width, vs.height, vs.pix_fmt = 97, 63, "yuv444p"  # 4:4:4 takes an odd size
        for i in range(4):
            img = np.full((63, 97, 3), 20 + i, np.uint8)
            out.mux(vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        out.mux(vs.encode(None))
    one_line_error(sllen_run(str(src), "-o", str(tmp_path / "x.webm")), "--codec libvpx-vp9")
    r = sllen_run(str(src), "--codec", "libvpx-vp9", "-o", str(tmp_path / "x.webm"))
    assert r.returncode == 0, r.stderr
    padding = [ln for ln in r.stderr.splitlines() if "padding to 98x64" in ln]
    assert padding and padding[0].startswith("warning: "), r.stderr
    s = streams(tmp_path / "x.webm")
    assert s["codec"] == "vp9" and s["frames"] == 4
    # --pix-fmt yuv444p keeps the exact size (the warning named only a Python option)
    assert "--pix-fmt yuv444p keeps the exact size" in padding[0]
    r = sllen_run(str(src), "--pix-fmt", "yuv444p", "-o", str(tmp_path / "x444.mp4"), "-q")
    assert r.returncode == 0 and not r.stderr.strip(), r.stderr
    assert streams(tmp_path / "x444.mp4")["size"] == (97, 63)
    with av.open(str(tmp_path / "x444.mp4")) as c:
        assert c.streams.video[0].codec_context.pix_fmt == "yuv444p"
    for bad, words in (
        ("yuv9000", "not a pixel format"),
        ("rgb48le", "libx264 encodes, in colour YUV, yuv420p"),
        ("gray", "in colour YUV"),  # libx264 takes it: the levels came out wrong
    ):
        r = sllen_run(str(src), "--pix-fmt", bad, "-o", str(tmp_path / "bad"))
        one_line_error(r, f"--pix-fmt {bad}", words)


def test_an_unknown_codec_is_named_before_the_output_is_judged(tmp_path: Path) -> None:
    # The output's container was judged first: "a .mp4 file cannot hold nonsense video".
    src = make_clip(tmp_path / "a.mp4", frames=2, audio=False)
    r = sllen_run(str(src), "--codec", "nonsense", "-o", str(tmp_path / "o.mp4"))
    one_line_error(r, "no 'nonsense' video encoder")


def test_a_heic_output_without_pillow_heif_is_refused_before_the_model_loads(
    tmp_path: Path,
) -> None:
    src = tmp_path / "dim.jpg"
    Image.fromarray(np.full((24, 32, 3), 30, np.uint8)).save(src)
    no_heif = "import sys\nsys.modules['pillow_heif'] = None\n"  # an install without [heic]
    r = sllen_run(str(src), "-o", str(tmp_path / "o" / "x.heic"), prelude=no_heif)
    one_line_error(r, "x.heic", 'python -m pip install ".[heic]" in the sllen clone')
    assert "backend:" not in r.stderr  # refused before the model was opened
    assert not (tmp_path / "o").exists()


def test_a_recursive_glob_run_twice_leaves_out_its_earlier_results(tmp_path: Path) -> None:
    # `sllen-run '**/*.jpg' -o bright` again: the glob also matched bright/*.jpg, and the rerun
    # was refused ("the output bright/01.jpg would overwrite an input")
    for name in ("01.jpg", "day/02.jpg"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        Image.fromarray(np.full((24, 32, 3), 30, np.uint8)).save(tmp_path / name)
    first = sllen_run("**/*.jpg", "-o", "bright", "-q", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    again = sllen_run("**/*.jpg", "-o", "bright", "-q", "--overwrite", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    lines = [ln for ln in again.stderr.splitlines() if ln.strip()]
    assert lines == [
        "warning: **/*.jpg: skipped 2 files in the output folder bright (results of an "
        "earlier run, not inputs)"
    ]
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.jpg")) == [
        "01.jpg",
        "bright/01.jpg",
        "bright/day/02.jpg",
        "day/02.jpg",
    ]
    # a file of the output folder named as an input is still refused
    r = sllen_run("bright/01.jpg", "-o", "bright", cwd=tmp_path)
    one_line_error(r, "would overwrite")


def test_quality_sets_the_photos_quality(tmp_path: Path) -> None:
    # It was fixed at 95 (4:4:4): a quality-92 4:2:0 phone JPEG came back a third larger.
    rng = np.random.default_rng(0)
    src = tmp_path / "p.jpg"
    Image.fromarray(rng.integers(0, 40, (96, 128, 3), dtype=np.uint8)).save(src, quality=92)
    sizes = {}
    for q in ("95", "70"):
        r = sllen_run(str(src), "-o", str(tmp_path / f"q{q}.jpg"), "--quality", q, "-q")
        assert r.returncode == 0, r.stderr
        sizes[q] = (tmp_path / f"q{q}.jpg").stat().st_size
    assert sizes["70"] < sizes["95"] * 0.7, sizes
    one_line_error(sllen_run(str(src), "-o", str(tmp_path / "x.jpg"), "--quality", "0"), "1..100")


def test_a_large_camera_photo_runs_without_pillows_bomb_warning(tmp_path: Path) -> None:
    # From 89 MP (a 100 MP camera's photo) Pillow warned "could be decompression bomb DOS
    # attack", shown as a warning line. Pillow's limit scaled down here: 400 pixels > 300.
    src = tmp_path / "gfx100.png"
    Image.new("RGB", (20, 20), (10, 10, 10)).save(src)
    prelude = "from PIL import Image\nImage.MAX_IMAGE_PIXELS = 300\n"
    r = sllen_run(str(src), "-o", str(tmp_path / "out"), "-q", prelude=prelude)
    assert r.returncode == 0 and "warning" not in r.stderr.lower(), r.stderr


def test_stdin_and_stdout_are_refused_before_the_model_loads(tmp_path: Path) -> None:
    # `-o -` exited 0 with nothing on stdout and a folder named "-"; an input "-" was "no
    # such file or folder"
    Image.fromarray(np.full((24, 32, 3), 30, np.uint8)).save(tmp_path / "1.png")
    r = sllen_run("1.png", "-o", "-", cwd=tmp_path)
    one_line_error(r, "writing to stdout is not supported", "name a file or folder")
    assert r.stdout == "" and "backend:" not in r.stderr and not (tmp_path / "-").exists()
    r = sllen_run("-", "-o", "x.png", cwd=tmp_path)
    one_line_error(r, "reading from stdin is not supported")
    assert "backend:" not in r.stderr and not (tmp_path / "x.png").exists()


def test_an_output_file_in_no_format_sllen_writes_is_refused(tmp_path: Path) -> None:
    # `-o out.xyz` became a folder out.xyz/ holding 1.png, exit 0
    Image.fromarray(np.full((24, 32, 3), 30, np.uint8)).save(tmp_path / "1.png")
    r = sllen_run("1.png", "-o", "out.xyz", cwd=tmp_path)
    one_line_error(r, "out.xyz: .xyz is not an image format", ".png", "-o out.xyz/")
    assert "backend:" not in r.stderr and not (tmp_path / "out.xyz").exists()
    r = sllen_run("1.png", "-o", "out.xyz/", "-q", cwd=tmp_path)  # a folder, as asked
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "out.xyz" / "1.png").is_file()


@pytest.mark.skipif(not Path("/sys/kernel").is_dir(), reason="needs Linux's sysfs")
def test_an_output_that_cannot_be_written_is_refused_before_inference(tmp_path: Path) -> None:
    # root may write anywhere by os.access, but not into /sys: found only after the inference
    probe = Path("/sys/sllen-write-probe")
    try:
        probe.touch()
    except OSError:
        pass
    else:
        probe.unlink()
        pytest.skip("/sys is writable here")
    Image.fromarray(np.full((24, 32, 3), 30, np.uint8)).save(tmp_path / "1.png")
    r = sllen_run(str(tmp_path / "1.png"), "-o", "/sys/sllen-out.png")
    one_line_error(r, "/sys/sllen-out.png: cannot write", "/sys is not writable")
    assert "backend:" not in r.stderr  # refused before the model was opened


# a 20x24 photo counts as big here, and runs in 16x16 tiles
BIG_AT_100_PIXELS = "import sllen.runtime.big_images as big\nbig.BIG_PIXELS = 100\n"


def test_a_big_photo_on_the_cpu_says_what_it_is_doing(tmp_path: Path) -> None:
    # a 34.5 MP photo ran 16.5 minutes on a CPU with nothing printed in a log (no terminal)
    Image.fromarray(np.full((20, 24, 3), 30, np.uint8)).save(tmp_path / "big.png")
    args = ("big.png", "-o", "out", "--tile", "16x16", "--backend", "onnxruntime")
    r = sllen_run(*args, prelude=BIG_AT_100_PIXELS, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    lines = r.stderr.splitlines()
    start = lines.index("big.png: 0.0 MP (24x20), in tiles: this takes minutes on a CPU")
    assert lines[start - 1].startswith("backend:")  # said before the inference, not after
    assert any(ln.startswith("big.png: 4 of 4 tiles done after ") for ln in lines), lines
    r = sllen_run(*args, "-q", "--overwrite", prelude=BIG_AT_100_PIXELS, cwd=tmp_path)
    assert r.returncode == 0 and r.stderr == "", r.stderr


def test_an_existing_file_is_replaced_only_when_told(tmp_path: Path) -> None:
    # `-o mine.jpg` replaced the user's own photo silently; so did a second run into a folder
    # (clip.avi, then clip.webm: both write clip.mp4). As ffmpeg: a terminal is asked, a
    # script stops before any work; --overwrite (-y) replaces, --resume skips.
    src = tmp_path / "dim.jpg"
    Image.fromarray(np.full((24, 32, 3), 30, np.uint8)).save(src)
    mine = tmp_path / "mine.jpg"
    mine.write_bytes(b"the user's own photo")
    r = sllen_run(str(src), "-o", str(mine))
    one_line_error(r, f"{mine} exists", "--overwrite replaces, --resume skips")
    assert mine.read_bytes() == b"the user's own photo"
    for flag in ("--overwrite", "-y"):
        mine.write_bytes(b"the user's own photo")
        r = sllen_run(str(src), "-o", str(mine), flag, "-q")
        assert r.returncode == 0, r.stderr
        with Image.open(mine) as im:
            assert im.size == (32, 24)
    # a folder: the rerun names how many would be replaced, and leaves them all
    (tmp_path / "b.jpg").write_bytes(src.read_bytes())
    out = tmp_path / "out"
    assert sllen_run(str(src), str(tmp_path / "b.jpg"), "-o", str(out), "-q").returncode == 0
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    r = sllen_run(str(src), str(tmp_path / "b.jpg"), "-o", str(out))
    one_line_error(r, "2 outputs exist", "--overwrite replaces")
    r = sllen_run(str(src), str(tmp_path / "b.jpg"), "-o", str(out), "--resume", "-q")
    assert r.returncode == 0, r.stderr
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before
    r = sllen_run(str(src), "-o", str(out), "--resume", "--overwrite")
    one_line_error(r, "choose one")
    # a live recording into a named file: asked too, and not offered --resume (refused there)
    rec = tmp_path / "rec.mp4"
    rec.write_bytes(b"last night's recording")
    line = one_line_error(sllen_run("udp://127.0.0.1:9", "-o", str(rec)), "--overwrite replaces it")
    assert "--resume" not in line and rec.read_bytes() == b"last night's recording"
    # the semantic map beside an output is an output too (--segmentation)
    seg = tmp_path / "seg"
    seg.mkdir()
    (seg / "dim.segmentation.png").write_bytes(b"the user's own file")
    r = sllen_run(str(src), "-o", str(seg), "--segmentation")
    one_line_error(r, f"{seg / 'dim.segmentation.png'} exists")


@pytest.mark.parametrize("answer", [b"n\n", b"\x04"], ids=["no", "end of input"])
def test_a_terminal_is_asked_before_a_file_is_replaced(tmp_path: Path, answer: bytes) -> None:
    # Ctrl-D at click's question printed "error: Abort: Abort" with exit 1
    import pty

    src = tmp_path / "dim.jpg"
    Image.fromarray(np.full((24, 32, 3), 30, np.uint8)).save(src)
    mine = tmp_path / "mine.jpg"
    mine.write_bytes(b"keep me")
    main_fd, term = pty.openpty()
    try:
        os.write(main_fd, answer)
        code = (
            "import sys\nfrom sllen.cli.run import main\n"
            "sys.argv = ['sllen-run', *sys.argv[1:]]\nmain()\n"
        )
        r = subprocess.run(
            [sys.executable, "-c", code, str(src), "-o", str(mine)],
            stdin=term,
            stderr=term,
            stdout=subprocess.DEVNULL,
            timeout=120,
        )
        os.close(term)
        said = b""
        with contextlib.suppress(OSError):  # the terminal's other end is closed
            while chunk := os.read(main_fd, 4096):
                said += chunk
    finally:
        os.close(main_fd)
    assert r.returncode == 2
    text = said.decode(errors="replace")
    assert f"{mine} exists: replace? [y/N]" in text and "nothing replaced" in text, text
    assert "Abort" not in text
    assert "Traceback" not in text and mine.read_bytes() == b"keep me"


@pytest.mark.parametrize(
    ("make", "args", "words"),
    [
        ("photo", ["--codec", "libx265"], ["--codec: for videos", "the input is an image"]),
        ("photo", ["--crf", "23", "--no-smooth"], ["--crf and --smooth/--no-smooth: for videos"]),
        ("photo", ["--pix-fmt", "yuv444p"], ["--pix-fmt: for videos"]),
        # typed out at their defaults they were still ignored (judged against the default)
        ("photo", ["--codec", "libx264"], ["--codec: for videos"]),
        ("video", ["--quality", "95"], ["--quality: for photos"]),
        ("video", ["--codec", "mpeg4", "--crf", "18"], ["mpeg4 has no constant-rate factor"]),
        ("video", ["--quality", "80"], ["--quality: for photos", "the input is a video"]),
    ],
)
def test_options_for_the_other_kind_of_file_are_refused(
    tmp_path: Path, make: str, args: list[str], words: list[str]
) -> None:
    # `--codec libx265` on a photo was accepted and did nothing
    if make == "photo":
        src = tmp_path / "dim.jpg"
        Image.fromarray(np.full((24, 32, 3), 30, np.uint8)).save(src)
    else:
        src = make_clip(tmp_path / "a.mp4", frames=2, audio=False)
    one_line_error(sllen_run(str(src), *args, "-o", str(tmp_path / "out")), *words)
    assert not (tmp_path / "out").exists()
