"""sllen-run on Ray: a local two-worker Ray instance writes what a local run writes.

One Ray instance for the module (starting Ray costs seconds), two CPU slots, workers of one
ONNX Runtime thread each on the bundled model. A worker process that dies is simulated by a
worker set-up hook that makes ``run_image`` exit the process on files named ``crash*``.
"""

from __future__ import annotations

import logging
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sllen.runtime.api import EnhancerSpec
from sllen.runtime.backends import open_backend
from sllen.runtime.enhancer import Enhancer
from sllen.runtime.errors import InputError, MissingDependencyError, MissingFileError
from sllen.runtime.inputs import collect_inputs
from sllen.runtime.run import FileResult, RunOptions, run_files

pytestmark = pytest.mark.slow  # Ray's start-up alone takes about 6 s on two cores

SPEC = EnhancerSpec(backend="onnxruntime", device="cpu", threads=1)
FRAMES, FPS, W, H = 10, 10, 64, 48

# Run in every Ray worker process as it starts: a source named crash* kills the worker.
CRASH_HOOK = """
import os
import sllen.runtime.run as run
_run_image = run.run_image
def run_image(src, dst, enhancer, opts, *args):
    if src.name.startswith("crash"):
        os._exit(3)
    return _run_image(src, dst, enhancer, opts, *args)
run.run_image = run_image
"""


@pytest.fixture(scope="module")
def ray() -> Iterator[object]:
    ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'sllen[ray]')")

    def crash_hook() -> None:  # nested: Ray's cloudpickle sends it by value
        exec(CRASH_HOOK, {})

    ray.init(
        num_cpus=2,
        include_dashboard=False,
        logging_level=logging.ERROR,
        log_to_driver=False,
        runtime_env={"worker_process_setup_hook": crash_hook},
    )
    yield ray
    ray.shutdown()


def _image(path: Path, size: tuple[int, int], seed: int) -> Path:
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 60, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    return path


def _video(path: Path) -> Path:
    av = pytest.importorskip("av")
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        stream.options = {"crf": "18", "preset": "ultrafast"}
        y, x = np.mgrid[0:H, 0:W]
        for i in range(FRAMES):
            rgb = np.stack([(x + 3 * i) % 80, (y * 2) % 80, np.full_like(x, 10 + 2 * i)], -1)
            frame = av.VideoFrame.from_ndarray(rgb.astype(np.uint8), format="rgb24")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def _frames(path: Path) -> list[np.ndarray]:
    import av

    with av.open(str(path)) as f:
        return [frame.to_ndarray(format="rgb24") for frame in f.decode(video=0)]


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Path], Path]:
    """A folder of four small images, a ten-frame video and a broken PNG, and a local run's
    outputs of it (the reference)."""
    root = tmp_path_factory.mktemp("ray")
    folder = root / "in"
    folder.mkdir()
    for i, size in enumerate([(64, 48), (48, 64), (80, 40), (32, 32)]):
        _image(folder / f"img{i}.png", size, seed=i)
    _video(folder / "clip.mp4")
    (folder / "bad.png").write_bytes(b"not a png")
    sources = collect_inputs([folder])
    with open_backend(None, "onnxruntime", device="cpu", threads=1) as backend:
        local = run_files(sources, Enhancer(backend), RunOptions(output=root / "local"))
    assert [r.source.name for r in local.failed] == ["bad.png"]
    return sources, root / "local"


def _same_outputs(ours: Path, local: Path) -> None:
    for ref in sorted(local.iterdir()):
        out = ours / ref.name
        if ref.suffix == ".png":
            assert out.read_bytes() == ref.read_bytes(), ref.name
        else:
            got, want = _frames(out), _frames(ref)
            assert len(got) == len(want) == FRAMES
            # Equal except for rare values a few levels off: a full-suite run on a loaded
            # 2-core machine once saw 59 of 9216 values differ by up to 3 (the images stayed
            # byte-equal; the cause, somewhere between the frames and libx264, is not found)
            for a, b in zip(got, want, strict=True):
                diff = np.abs(a.astype(np.int16) - b.astype(np.int16))
                assert diff.max() <= 4 and np.count_nonzero(diff) <= diff.size // 50, diff.max()


def test_outputs_equal_a_local_run_and_a_resume_skips_them(
    ray: object, media: tuple[list[Path], Path], tmp_path: Path
) -> None:
    from sllen.runtime.distributed import run_files_ray

    sources, local = media
    progress: list[tuple[str, int, int | None]] = []
    finished: list[FileResult] = []
    opened: list[tuple[str, int]] = []
    opts = RunOptions(output=tmp_path / "out")
    summary = run_files_ray(
        sources,
        SPEC,
        opts,
        workers=2,
        progress=lambda *a: progress.append(a),
        on_result=finished.append,
        on_open=lambda *a: opened.append(a),
    )
    # the backend line: once, with the worker's own description and the planned count
    assert len(opened) == 1 and opened[0][1] == 2 and "cpu" in opened[0][0], opened
    assert [r.source for r in summary.results] == sources  # the sources' order, not finishing
    assert sorted(r.source.name for r in finished) == sorted(s.name for s in sources)
    # The bad file is reported as a local run reports it, and the others finish.
    (bad,) = summary.failed
    assert bad.source.name == "bad.png" and bad.output is None and bad.error
    assert summary.frames == 4 + FRAMES
    assert summary.times.frames == 4 + FRAMES
    assert all(r.output == opts.output / r.source.name for r in summary.results if not r.error)
    _same_outputs(opts.output, local)
    # Progress across the cluster: every image once, the video up to its last frame.
    assert sorted(p for p in progress if p[0] != "clip.mp4") == [
        (f"img{i}.png", 1, 1) for i in range(4)
    ]
    assert progress[[p[0] for p in progress].index("clip.mp4")][2] in (FRAMES, None)
    assert max(p[1] for p in progress if p[0] == "clip.mp4") == FRAMES

    # Resume: finished outputs are skipped (nothing dispatched for them), a removed one is
    # redone, and the bad file is tried again.
    (opts.output / "img2.png").unlink()
    resumed = run_files_ray(
        sources, SPEC, RunOptions(output=opts.output, skip_existing=True), workers=2
    )
    skipped = {r.source.name for r in resumed.results if r.skipped}
    assert skipped == {"img0.png", "img1.png", "img3.png", "clip.mp4"}
    redone = {r.source.name: r for r in resumed.results if not r.skipped}
    assert set(redone) == {"img2.png", "bad.png"}
    assert redone["img2.png"].frames == 1 and redone["bad.png"].error
    assert (opts.output / "img2.png").read_bytes() == (local / "img2.png").read_bytes()
    assert ray.is_initialized()  # type: ignore[attr-defined]  # the caller's instance stays


def test_files_of_one_name_stay_apart_in_progress_and_messages(
    ray: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two a.png in two folders: two progress entries, named by their paths (keyed on the name
    # alone, one bar switched between them); a failure names the path as the user gave it,
    # not the absolute one the workers use.
    from sllen.runtime.distributed import run_files_ray

    monkeypatch.chdir(tmp_path)
    for folder in ("x", "y"):
        (tmp_path / folder).mkdir()
        _image(tmp_path / folder / "a.png", (32, 32), seed=1)
    (tmp_path / "y" / "bad.png").write_bytes(b"not a png")
    sources = [Path("x/a.png"), Path("y/a.png"), Path("y/bad.png")]
    progress: list[tuple[str, int, int | None]] = []
    summary = run_files_ray(
        sources,
        SPEC,
        RunOptions(output=Path("out")),
        workers=1,
        progress=lambda *a: progress.append(a),
    )
    assert sorted(progress) == [("x/a.png", 1, 1), ("y/a.png", 1, 1)]
    (bad,) = summary.failed
    assert bad.error and "y/bad.png" in bad.error and str(tmp_path) not in bad.error


def test_a_dead_worker_is_replaced_and_its_file_reported(
    ray: object, media: tuple[list[Path], Path], tmp_path: Path
) -> None:
    from sllen.runtime.distributed import run_files_ray

    sources, local = media
    folder = tmp_path / "in"
    folder.mkdir()
    _image(folder / "crash.png", (32, 32), seed=9)
    for name in ("img0.png", "img1.png"):
        (folder / name).write_bytes((sources[0].parent / name).read_bytes())
    finished: list[FileResult] = []
    with pytest.warns(UserWarning, match="room for 2"):  # a local instance never grows
        summary = run_files_ray(
            collect_inputs([folder]),
            SPEC,
            RunOptions(output=tmp_path / "out"),
            workers=3,
            on_result=finished.append,
        )
    (crash,) = summary.failed
    assert crash.source.name == "crash.png"
    assert "died twice" in (crash.error or "")
    for name in ("img0.png", "img1.png"):
        assert (tmp_path / "out" / name).read_bytes() == (local / name).read_bytes()
    assert len(finished) == 3


def test_a_model_that_does_not_open_stops_the_run(
    ray: object, media: tuple[list[Path], Path], tmp_path: Path
) -> None:
    from sllen.runtime.distributed import run_files_ray

    opts = RunOptions(output=tmp_path / "out")
    spec = EnhancerSpec(model=str(tmp_path / "missing.onnx"), device="cpu", threads=1)
    with pytest.raises(MissingFileError, match="missing.onnx: no such model file"):
        run_files_ray(media[0], spec, opts, workers=2)  # found out before starting workers
    (tmp_path / "bad.onnx").write_bytes(b"not a model")
    spec = EnhancerSpec(model=str(tmp_path / "bad.onnx"), device="cpu", threads=1)
    with pytest.raises(InputError, match="ONNX Runtime cannot load it"):
        run_files_ray(media[0], spec, opts, workers=2)  # raised in the workers, sent back


def test_missing_ray_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, media: tuple[list[Path], Path], tmp_path: Path
) -> None:
    from sllen.runtime.distributed import run_files_ray

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(
        MissingDependencyError, match=r'python -m pip install "\.\[ray\]" in the sllen clone'
    ):
        run_files_ray(media[0], SPEC, RunOptions(output=tmp_path / "out"))


def test_tasks_put_videos_alone_and_first_images_in_batches_biggest_first(
    tmp_path: Path,
) -> None:
    from sllen.runtime.distributed import _tasks

    files = []
    for i in range(20):
        p = tmp_path / f"i{i:02d}.png"
        p.write_bytes(b"x" * (100 + i))
        files.append((p, tmp_path / "out" / p.name))
    clip = tmp_path / "v.mp4"
    clip.write_bytes(b"x" * 50)  # fewer bytes than any image, many frames of work: first
    files.append((clip, tmp_path / "out" / "v.mp4"))
    tasks = _tasks(files, workers=2)
    assert tasks[0].items == [(clip, tmp_path / "out" / "v.mp4")]
    images = tasks[1:]
    assert [len(t.items) for t in images] == [3] * 6 + [2]  # ceil(20 / (4 tasks x 2 workers))
    assert images[0].items[0][0].name == "i19.png"  # the biggest first
    assert [t.size for t in images] == sorted((t.size for t in images), reverse=True)


def test_connecting_starts_a_new_instance_or_says_why_it_cannot_join() -> None:
    from types import SimpleNamespace

    from sllen.runtime.distributed import _connect
    from sllen.runtime.errors import InputError

    calls: list[dict] = []

    def init(**kw: object) -> None:
        calls.append(kw)
        if kw.get("address") == "auto":
            raise ConnectionError("Could not find any running Ray instance. Please specify...")

    fake = SimpleNamespace(is_initialized=lambda: False, init=init)
    # alone: a new local instance even where `ray start` runs one (address "local")
    assert _connect(fake, None) and calls[-1]["address"] == "local"
    with pytest.raises(InputError, match=r"--ray auto: no Ray cluster runs on this machine"):
        _connect(fake, "auto")
    # nothing listening: one line at once, not Ray's retries for about 14 minutes
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: refused
        for address in (f"127.0.0.1:{port}", f"ray://127.0.0.1:{port}"):
            with pytest.raises(InputError, match="nothing answers at 127.0.0.1"):
                _connect(fake, address)
    with pytest.raises(InputError, match="give HOST:PORT"):
        _connect(fake, "somehost")
    assert len(calls) == 2  # neither of the last four reached ray.init


def _cluster(*nodes: dict[str, float]) -> object:
    """A stand-in for the ray module's nodes(): what _plan reads of the cluster."""
    from types import SimpleNamespace

    alive = [{"Alive": True, "Resources": n} for n in nodes]
    return SimpleNamespace(nodes=lambda: [*alive, {"Alive": False, "Resources": {"GPU": 8.0}}])


def test_plan_gives_each_worker_a_gpu_or_threads() -> None:
    from sllen.runtime.distributed import _plan
    from sllen.runtime.errors import InputError

    gpus = _cluster({"CPU": 16.0, "GPU": 4.0}, {"CPU": 8.0, "GPU": 2.0})
    plan = _plan(gpus, EnhancerSpec(model="m.engine", device="cuda:3"), None, False, tasks=99)
    assert (plan.workers, plan.resources, plan.spec.device) == (6, {"num_gpus": 1}, "cuda")
    plan = _plan(gpus, EnhancerSpec(), None, False, tasks=4)  # auto on GPUs: GPU workers
    assert (plan.workers, plan.resources, plan.spec.device) == (4, {"num_gpus": 1}, "cuda")
    # CPU workers: threads from the spec, else 4; as many as fit on each node.
    plan = _plan(gpus, EnhancerSpec(device="cpu"), None, False, tasks=99)
    assert (plan.workers, plan.resources, plan.spec.threads) == (6, {"num_cpus": 4}, 4)
    cpus = _cluster({"CPU": 2.0}, {"CPU": 3.0})
    plan = _plan(cpus, EnhancerSpec(threads=1), None, True, tasks=99)
    assert (plan.workers, plan.resources) == (5, {"num_cpus": 1})
    assert _plan(cpus, EnhancerSpec(), None, True, tasks=99).spec.threads == 3
    # More than fit: cut on a local instance, kept (waiting for the cluster to grow) otherwise.
    local = _plan(cpus, EnhancerSpec(threads=2), 5, True, tasks=99)
    assert local.workers == 2 and "room for 2" in local.notes[0]
    joined = _plan(cpus, EnhancerSpec(threads=2), 5, False, tasks=99)
    assert joined.workers == 5 and "when it grows" in joined.notes[0]
    with pytest.raises(InputError, match="no room for a worker"):
        _plan(cpus, EnhancerSpec(backend="tensorrt", model="m.engine"), None, False, tasks=9)
    with pytest.raises(InputError, match="at least 1"):
        _plan(cpus, EnhancerSpec(), 0, True, tasks=9)
