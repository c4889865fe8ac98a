"""sllen-export stages its files and moves them into --out only when the run succeeds.

An interrupted or failed run left a folder whose files and report.json disagreed (a new FP32
file beside the old FP16 file and the old report; an unchecked FP32 file under its final name).
Real runs of the tiny model: its FP32 export comes from the session's cache (export_once, the
same export_onnx call), the rest (simplification, parity, FP16, the engine step with the MOCK
TensorRT of tests/fakes/fake_tensorrt.py) runs for real.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from fake_tensorrt import GPU

from sllen.export.pipeline import ExportOptions, run_export
from sllen.export.shapes import ShapeProfile
from sllen.runtime import env


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch = pytest.importorskip("torch")
    from sllen.config import get_preset
    from sllen.model.io import save_weights
    from sllen.model.sllen import SLLEN

    torch.manual_seed(0)
    return save_weights(SLLEN(get_preset("tiny")), tmp_path_factory.mktemp("w") / "t.safetensors")


@pytest.fixture
def cached_export(export_once, monkeypatch) -> None:
    """run_export's FP32 export from the session's cache of export_onnx's files."""
    import sllen.export.onnx_export as onnx_export

    def export(model, path, **kwargs) -> Path:
        shutil.copyfile(export_once(model, **kwargs), path)
        return Path(path)

    monkeypatch.setattr(onnx_export, "export_onnx", export)


@pytest.fixture
def trt(fake_trt, monkeypatch):
    monkeypatch.setattr(env, "detect_gpu", lambda *a, **k: GPU)
    return fake_trt


def _contents(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (hidden ones too), by relative path."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _old_export(out: Path) -> dict[str, bytes]:
    out.mkdir()
    (out / "parity" / "sllen.fp32").mkdir(parents=True)
    old = {
        "sllen.fp32.onnx": b"old fp32",
        "sllen.fp16.onnx": b"old fp16",
        "sllen.fp32.engine": b"old engine",
        "timing.cache": b"old cache",
        "parity/sllen.fp32/parity.json": b"{}",
        "report.json": b'{"files": {"fp32": {}, "fp16": {}}}',
    }
    for name, data in old.items():
        (out / name).write_bytes(data)
    return old


def test_ctrl_c_during_simplification_leaves_no_folder(
    cached_export, weights: Path, tmp_path: Path, monkeypatch
) -> None:
    # Ctrl-C while onnxslim ran left sllen.fp32.onnx, unsimplified and never compared with
    # PyTorch, under its final name in the folder the run had made.
    import sllen.export.simplify as simplify

    real, seen = simplify.simplify_onnx, []

    def interrupted(src, dst, **kwargs):
        real(src, dst, **kwargs)
        seen.append(Path(dst))
        raise KeyboardInterrupt

    monkeypatch.setattr(simplify, "simplify_onnx", interrupted)
    out = tmp_path / "new" / "exports"
    with pytest.raises(KeyboardInterrupt):
        run_export(ExportOptions(out=out, weights=weights, threads=1), log=lambda m: None)
    assert not (tmp_path / "new").exists()
    [staged] = seen  # written, in the staging folder, when the interrupt came
    assert staged.parent.parent == out and staged.parent.name.startswith(".sllen-export-")


def test_a_failed_engine_build_leaves_the_old_export_as_it_was(
    cached_export, trt, weights: Path, tmp_path: Path
) -> None:
    # A failure after the FP32 export (here the engine build) left the new FP32 file beside
    # the old files and the old report.
    trt("10.3.0", build_result=None)
    out = tmp_path / "exports"
    old = _old_export(out)
    opts = ExportOptions(out=out, weights=weights, attention="decomposed", parity=False, threads=1)
    with pytest.raises(RuntimeError, match="could not build an engine") as err:
        run_export(opts, log=lambda m: None)
    # the message names the file by its place in --out, not the staging folder it was read from
    assert f"from {out / 'sllen.fp32.onnx'} " in str(err.value)
    assert _contents(out) == old


def test_engines_of_the_same_run_name_the_files_in_out(
    cached_export, trt, weights: Path, tmp_path: Path, monkeypatch
) -> None:
    # Built from the staged files, the engine's metadata, the parity data and the report
    # must still name the files where they end up; the timing cache of earlier builds in
    # --out is reused and replaced.
    pytest.importorskip("polygraphy")
    from sllen.export.trt import engine_parity as ep

    fake = trt("10.3.0")
    # ONNX Runtime on the ONNX file stands in for the engine (no TensorRT here)
    monkeypatch.setattr(
        ep, "tensorrt_runner", lambda *a, **k: ep.onnxrt_runner(a[0].with_suffix(".onnx"), "trt")
    )
    out = tmp_path / "exports"
    _old_export(out)
    small = ShapeProfile("64x64", "64x64", "128x128")  # the parity inputs are at opt
    cache = tmp_path / "engines"
    opts = ExportOptions(
        out=out,
        weights=weights,
        attention="decomposed",
        profile=small,
        engine_cache=cache,
        threads=1,
    )
    lines: list[str] = []
    report = run_export(opts, log=lines.append)
    assert ("create_timing_cache", b"old cache") in fake.calls
    assert (out / "timing.cache").read_bytes() != b"old cache"
    assert (out / "sllen.fp32.engine").read_bytes() == b"SERIALIZED-ENGINE"
    meta = json.loads((out / "sllen.fp32.engine.json").read_text())
    assert meta["onnx_file"] == str((out / "sllen.fp32.onnx").resolve())
    assert meta["timing_cache"]["file"] == str(out / "timing.cache")
    [cached] = cache.glob("*.engine.json")  # a later build from the cache copies it
    assert json.loads(cached.read_text())["onnx_file"] == meta["onnx_file"]
    entry = report["engine"]["engines"]["sllen.fp32.onnx"]
    assert entry["engine"] == str(out / "sllen.fp32.engine") and entry["metadata"] == meta
    parity = json.loads((out / "parity" / "sllen.fp32" / "parity.json").read_text())
    assert parity["passed"] and parity["replay"][0].startswith(
        f"polygraphy run {out / 'sllen.fp32.onnx'} --onnxrt --load-inputs {out / 'parity'}"
    )
    assert json.loads((out / "report.json").read_text()) == json.loads(json.dumps(report))
    files = _contents(out)
    assert not [n for n in files if ".sllen-export-" in n]
    assert not [n for n, data in files.items() if b".sllen-export-" in data]
    assert not [line for line in lines if ".sllen-export-" in line]
    assert files["sllen.fp16.onnx"] == b"old fp16"  # not this run's: left alone


def test_a_full_disk_names_the_file_under_out(
    cached_export, weights: Path, tmp_path: Path, monkeypatch
) -> None:
    # "error: [Errno 28] No space left on device", without a path. A file-size limit stands
    # in for the full disk: the simplified FP32 file is the first write past it.
    resource = pytest.importorskip("resource")
    import sllen.export.onnx_export as onnx_export

    copy, limit = onnx_export.export_onnx, resource.getrlimit(resource.RLIMIT_FSIZE)

    def then_limited(model, path, **kwargs) -> Path:
        written = copy(model, path, **kwargs)
        resource.setrlimit(resource.RLIMIT_FSIZE, (written.stat().st_size // 2, limit[1]))
        return written

    monkeypatch.setattr(onnx_export, "export_onnx", then_limited)
    out = tmp_path / "exports"
    try:
        with pytest.raises(OSError) as err:
            run_export(ExportOptions(out=out, weights=weights, threads=1), log=lambda m: None)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, limit)
    assert str(err.value) == f"{out / 'sllen.fp32.onnx'}: cannot write (File too large)"
    assert not out.exists()


def test_a_rename_that_fails_puts_back_every_file_it_moved(tmp_path: Path) -> None:
    # The renames at the end went one by one with no way back: a parity/ that links to another
    # file system (or that the user cannot write into) stopped them half-way, leaving new files
    # under the old report. A real cross-device rename here: /dev/shm is a tmpfs.
    import os
    import tempfile

    from sllen.export.staging import StagedOutput

    shm = Path("/dev/shm")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("needs a second file system at /dev/shm")
    elsewhere = Path(tempfile.mkdtemp(dir=shm))
    try:
        out = tmp_path / "exports"
        old = _old_export(out)
        shutil.move(out / "parity", elsewhere / "parity")
        (out / "parity").symlink_to(elsewhere / "parity")
        with pytest.raises(OSError, match="cross-device|Invalid"):
            with StagedOutput(out) as stage:
                new = {  # sorted before parity/: moved before the rename that fails
                    "sllen.fp16.onnx": b"new fp16",  # replaces an old file
                    "a.ranges.json": b"{}",  # a new name
                    "parity/sllen.fp32/parity.json": b'{"new": 1}',
                    "sllen.fp32.onnx": b"new fp32",
                }
                for name, data in new.items():
                    (stage.folder / name).parent.mkdir(parents=True, exist_ok=True)
                    (stage.folder / name).write_bytes(data)
                stage.commit({"files": {}}, "tensorrt")
        linked = "parity/sllen.fp32/parity.json"  # rglob does not follow the link
        assert _contents(out) == {k: v for k, v in old.items() if k != linked}
        assert (out / linked).read_bytes() == old[linked]
        assert sorted(p.name for p in out.iterdir()) == sorted(
            ["parity", *(n for n in old if "/" not in n)]
        )
    finally:
        shutil.rmtree(elsewhere, ignore_errors=True)


def test_ctrl_c_during_the_final_renames_lets_the_finished_export_stand(tmp_path: Path) -> None:
    # It re-raised the held Ctrl-C after the renames: exit 130, "interrupted", with the
    # complete new export already in --out.
    import os
    import signal

    from sllen.export.staging import StagedOutput

    out = tmp_path / "exports"
    # Python's own Ctrl-C handler, whatever this process inherited (a background CI job
    # starts with SIGINT ignored, where the interrupt would not come at all)
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
    with StagedOutput(out) as stage:
        (stage.folder / "sllen.fp32.onnx").write_bytes(b"new")
        real_replace = os.replace

        def replace_then_ctrl_c(src, dst):  # the user presses Ctrl-C mid-way
            real_replace(src, dst)
            if Path(dst).parent == out:  # a rename into --out, not the staged report's write
                os.kill(os.getpid(), signal.SIGINT)

        import sllen.export.staging as staging

        staging.os.replace = replace_then_ctrl_c  # type: ignore[attr-defined]
        try:
            report = stage.commit({"files": {}}, "tensorrt")  # no KeyboardInterrupt
        finally:
            staging.os.replace = real_replace  # type: ignore[attr-defined]
    assert report == {"files": {}}
    assert (out / "sllen.fp32.onnx").read_bytes() == b"new" and (out / "report.json").is_file()
    try:
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored
    finally:
        signal.signal(signal.SIGINT, inherited)


def test_a_killed_runs_staging_folder_goes_with_the_next_run_and_a_live_one_stays(
    tmp_path: Path,
) -> None:
    # A run killed outright (SIGKILL, a power cut) left its hidden staging folder for good;
    # the next run into --out removes it, but never the folder of a run still going.
    import subprocess
    import sys

    from sllen.export.staging import STAGING_PREFIX, StagedOutput

    out = tmp_path / "exports"
    killed = (
        "import os, sys\nfrom pathlib import Path\nfrom sllen.export.staging import StagedOutput\n"
        "s = StagedOutput(Path(sys.argv[1])).__enter__()\n"
        "(s.folder / 'sllen.fp32.onnx').write_bytes(b'half')\nos.kill(os.getpid(), 9)"
    )
    r = subprocess.run([sys.executable, "-c", killed, str(out)], capture_output=True, timeout=60)
    assert r.returncode == -9, r.stderr
    (abandoned,) = out.glob(STAGING_PREFIX + "*")
    with StagedOutput(out) as live:
        assert not abandoned.exists()
        with StagedOutput(out) as second:  # a second run beside the live one
            assert live.folder.is_dir() and second.folder.is_dir()
        live_file = live.folder / "sllen.fp32.onnx"
        live_file.write_bytes(b"new")
        live.commit({"files": {}}, "tensorrt")
    assert sorted(p.name for p in out.iterdir()) == ["report.json", "sllen.fp32.onnx"]


def test_a_dangling_symlink_out_says_what_it_is(tmp_path: Path) -> None:
    # mkdir said "[Errno 17] File exists" of a path that does not exist
    from sllen.export.staging import StagedOutput
    from sllen.runtime.errors import InputError

    out = tmp_path / "exports"
    out.symlink_to(tmp_path / "gone")
    with pytest.raises(InputError, match="symbolic link to .*gone, which does not exist"):
        with StagedOutput(out):
            pass


def test_staging_without_locks_or_of_another_host_is_left_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A file system without flock (Lustre mounted noflock: ENOSYS) made every export fail
    # with "cannot write (Function not implemented)"; it runs there, without the cleanup.
    # NFS may lock per host only: another host's folder is never taken for abandoned, nor a
    # folder whose lock file is missing (its run had only just made it).
    import errno
    import fcntl
    import os

    from sllen.export.staging import STAGING_PREFIX, StagedOutput

    out = tmp_path / "exports"
    theirs = out / f"{STAGING_PREFIX}otherhost"
    theirs.mkdir(parents=True)
    (theirs / ".lock").write_text("another-host 4242")
    young = out / f"{STAGING_PREFIX}young"
    young.mkdir()
    with StagedOutput(out) as stage:
        assert theirs.is_dir() and young.is_dir()
        assert (stage.folder / ".lock").read_text().endswith(f" {os.getpid()}")

    def no_locks(fd: int, op: int) -> None:
        raise OSError(errno.ENOSYS, os.strerror(errno.ENOSYS))

    monkeypatch.setattr(fcntl, "flock", no_locks)
    with StagedOutput(out) as stage:
        (stage.folder / "sllen.fp32.onnx").write_bytes(b"new")
        stage.commit({"files": {}}, "tensorrt")
    assert (out / "sllen.fp32.onnx").read_bytes() == b"new" and theirs.is_dir()
    assert sorted(p.name for p in out.glob(STAGING_PREFIX + "*")) == [theirs.name, young.name]


def test_a_run_starting_beside_one_that_is_locking_leaves_it_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The lock file existed a moment before it was locked: a second export starting into the
    # same --out at that instant took the first one's folder for abandoned and removed it.
    import fcntl

    import sllen.export.staging as staging

    out = tmp_path / "exports"
    real_flock, folders = fcntl.flock, []

    def flock_while_another_starts(fd: int, op: int) -> None:
        if not folders:  # the first run's own lock: the second run looks now
            folders.extend(out.glob(staging.STAGING_PREFIX + "*"))
            staging._remove_abandoned(out)
        real_flock(fd, op)

    monkeypatch.setattr(fcntl, "flock", flock_while_another_starts)
    with staging.StagedOutput(out) as stage:
        assert folders == [stage.folder] and stage.folder.is_dir()
        assert (stage.folder / ".lock").is_file()
