"""Engine metadata files, the compatibility refusal, atomic writes and the engine cache."""

import hashlib
import json
import warnings

import pytest
from fake_tensorrt import engine_metadata

from sllen.export.engine_meta import (
    EngineCache,
    EngineIncompatibleError,
    cache_key,
    check_compatible,
    format_cc,
    metadata_path,
    onnx_sha256,
    read_metadata,
    rebuild_command,
    validate_metadata,
    write_metadata,
)
from sllen.export.shapes import DEFAULT_PROFILE, ShapeProfile
from sllen.runtime.files import atomic_write_bytes, atomic_write_text


def _meta(**overrides):
    """The shared fake engine's metadata (tests/fakes/fake_tensorrt.py), as an Orin engine of
    the default profile built from /models/fp16.onnx."""
    orin = {
        "gpu_name": "Orin",
        "compute_capability": "8.7",
        "profile": DEFAULT_PROFILE.to_dict(),
        "onnx_file": "/models/fp16.onnx",
        "engine_file": "fp16.engine",
    }
    return engine_metadata(**{**orin, **overrides})


# --------------------------------------------------------------------------- files


def test_atomic_write_replaces_and_leaves_no_temp_files(tmp_path):
    target = tmp_path / "sub" / "model.engine"
    atomic_write_bytes(target, b"first")
    atomic_write_bytes(target, memoryview(b"second"))
    assert target.read_bytes() == b"second"
    atomic_write_text(tmp_path / "a.txt", "héllo")
    assert (tmp_path / "a.txt").read_text(encoding="utf-8") == "héllo"
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["model.engine"]


def test_atomic_write_failure_keeps_the_old_file(tmp_path):
    target = tmp_path / "model.engine"
    target.write_bytes(b"old engine")
    with pytest.raises(TypeError):
        atomic_write_bytes(target, object())  # not bytes: the write fails midway
    assert target.read_bytes() == b"old engine"
    assert [p.name for p in tmp_path.iterdir()] == ["model.engine"]


def test_onnx_sha256_covers_external_data(tmp_path):
    onnx_file = tmp_path / "model.onnx"
    onnx_file.write_bytes(b"graph")
    assert onnx_sha256(onnx_file) == hashlib.sha256(b"graph").hexdigest()
    (tmp_path / "model.onnx.data").write_bytes(b"weights")
    with_data = onnx_sha256(onnx_file)
    assert with_data == hashlib.sha256(b"graphweights").hexdigest()
    (tmp_path / "model.onnx.data").write_bytes(b"other weights")
    assert onnx_sha256(onnx_file) != with_data


def test_metadata_round_trip_next_to_engine(tmp_path):
    engine = tmp_path / "fp16.engine"
    path = write_metadata(engine, _meta())
    assert path == metadata_path(engine) == tmp_path / "fp16.engine.json"
    assert read_metadata(engine) == _meta()
    assert json.loads(path.read_text())["precision"] == "fp16"


def test_read_metadata_missing_says_how_to_rebuild(tmp_path):
    with pytest.raises(FileNotFoundError, match="sllen-export --from-onnx"):
        read_metadata(tmp_path / "lost.engine")


@pytest.mark.parametrize(
    "content,fragment",
    [("{not json", "not valid JSON"), ("[1, 2]", "JSON object"), ("{}", "lacks schema")],
)
def test_read_metadata_broken_files(tmp_path, content, fragment):
    engine = tmp_path / "x.engine"
    metadata_path(engine).write_text(content)
    with pytest.raises(ValueError, match=fragment):
        read_metadata(engine)


def test_read_metadata_of_another_tool_says_how_to_rebuild(tmp_path):
    engine = tmp_path / "x.engine"
    metadata_path(engine).write_text("{}")
    with pytest.raises(ValueError, match=r"x\.engine\.json: engine metadata lacks .*--from-onnx"):
        read_metadata(engine)


@pytest.mark.parametrize(
    "overrides,fragment",
    [
        ({"schema": 2}, "schema 2"),
        ({"precision": "bf16"}, "precision 'bf16'"),
        ({"attention": "fused"}, "attention must be"),
        ({"attention": {"mode": "flash"}}, "attention must be"),
        ({"hardware_compatibility": "turing_plus"}, "hardware_compatibility"),
    ],
)
def test_validate_metadata_errors(overrides, fragment):
    with pytest.raises(ValueError, match=fragment) as err:
        validate_metadata(_meta(**overrides))
    assert "\n" not in str(err.value)


def test_validate_metadata_lists_missing_keys():
    meta = _meta()
    del meta["gpu_name"], meta["dla_core"]
    with pytest.raises(ValueError, match="lacks gpu_name, dla_core"):
        validate_metadata(meta)


def test_write_metadata_refuses_incomplete_records(tmp_path):
    meta = _meta()
    del meta["onnx_sha256"]
    with pytest.raises(ValueError, match="onnx_sha256"):
        write_metadata(tmp_path / "x.engine", meta)
    assert not (tmp_path / "x.engine.json").exists()


# --------------------------------------------------------------------------- compatibility


def test_matching_machine_passes():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_compatible(_meta(), "10.3.0", "Orin", "8.7")
        check_compatible(_meta(), "10.3.0", "Orin", (8, 7))


def _refusal(meta, *args):
    with pytest.raises(EngineIncompatibleError) as err:
        check_compatible(meta, *args)
    message = str(err.value)
    assert "\n" not in message
    assert "sllen-export --from-onnx /models/fp16.onnx" in message
    assert "--min-shape 256x256 --opt-shape 1280x720 --max-shape 1920x1088" in message
    return message


def test_other_tensorrt_version_is_refused_with_rebuild_command():
    message = _refusal(_meta(), "10.3.1", "Orin", "8.7")
    assert "built with TensorRT 10.3.0, this machine has TensorRT 10.3.1" in message
    _refusal(_meta(), "11.0.0", "Orin", "8.7")


def test_version_compatible_engine_runs_on_newer_tensorrt_only():
    meta = _meta(version_compatible=True)
    check_compatible(meta, "10.3.0", "Orin", "8.7")
    check_compatible(meta, "10.7.0.23", "Orin", "8.7")
    check_compatible(meta, "11.1.0", "Orin", "8.7")
    message = _refusal(meta, "10.2.0", "Orin", "8.7")
    assert "newer than this machine's 10.2.0" in message
    assert "--version-compatible" in message
    # Across major versions only 10.x engines on an 11.x runtime (TensorRT 11.4.1's support
    # matrix, "Engine Portability"): an 11.x engine on TensorRT 12 is said before loading.
    message = _refusal(
        _meta(version_compatible=True, tensorrt_version="11.1.0"), "12.0.0", "Orin", "8.7"
    )
    assert "across major versions only 10.x engines on 11.x" in message
    check_compatible(
        _meta(version_compatible=True, tensorrt_version="11.1.0"), "11.4.1", "Orin", "8.7"
    )


def test_engine_from_another_platform_is_refused(monkeypatch):
    # "Serialized engines are not portable across platforms" (TensorRT's support matrix): a
    # hardware-compatible engine built on an x86 card would pass the GPU check on an Orin.
    from sllen.runtime import engine_meta

    monkeypatch.setattr(engine_meta, "engine_platform", lambda: "Linux aarch64")
    meta = _meta(platform="Linux x86_64", hardware_compatibility="ampere_plus")
    message = _refusal(meta, "10.3.0", "Orin", "8.7")
    assert "built on Linux x86_64, this machine is Linux aarch64" in message
    check_compatible(_meta(platform="Linux aarch64"), "10.3.0", "Orin", "8.7")
    check_compatible(_meta(), "10.3.0", "Orin", "8.7")  # older metadata: no platform recorded


def test_other_compute_capability_is_refused():
    message = _refusal(_meta(), "10.3.0", "NVIDIA GeForce RTX 4090", "8.9")
    assert "built for Orin (compute capability 8.7), this GPU is NVIDIA GeForce RTX 4090 (8.9)" in (
        message
    )


def test_same_compute_capability_level_still_needs_equal_capability():
    meta = _meta(hardware_compatibility="same_compute_capability")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_compatible(meta, "10.3.0", "Some other sm87 GPU", "8.7")
    _refusal(meta, "10.3.0", "RTX 3090", "8.6")


def test_ampere_plus_engine_runs_on_any_ampere_or_newer():
    meta = _meta(hardware_compatibility="ampere_plus", compute_capability="8.6")
    check_compatible(meta, "10.3.0", "A100", "8.0")
    check_compatible(meta, "10.3.0", "H100", "9.0")
    message = _refusal(meta, "10.3.0", "Tesla T4", "7.5")
    assert "Ampere or newer" in message
    assert "sllen-export --from-onnx" in message


def test_other_gpu_with_same_compute_capability_warns():
    meta = _meta(gpu_name="NVIDIA GeForce RTX 3090", compute_capability="8.6")
    with pytest.warns(UserWarning, match="may run slower"):
        check_compatible(meta, "10.3.0", "NVIDIA A10", "8.6")


def test_check_compatible_validates_metadata_and_versions():
    with pytest.raises(ValueError, match="lacks"):
        check_compatible({"schema": 1}, "10.3.0", "Orin", "8.7")
    with pytest.raises(ValueError, match="not a compute capability"):
        check_compatible(_meta(), "10.3.0", "Orin", "sm87")
    with pytest.raises(ValueError, match="not a version"):
        check_compatible(_meta(version_compatible=True), "dev", "Orin", "8.7")


def test_rebuild_command_carries_the_build_options():
    meta = _meta(
        plugin_library="libsllen_attention.so",
        dla_core=1,
        profile=ShapeProfile((256, 256), (256, 256), (512, 512), (1, 2, 4)).to_dict(),
    )
    command = rebuild_command(meta)
    assert command == (
        "sllen-export --from-onnx /models/fp16.onnx "
        "--min-shape 256x256 --opt-shape 256x256 --max-shape 512x512 "
        "--plugin libsllen_attention.so --dla-core 1"
    )
    assert rebuild_command({}) == "sllen-export --from-onnx <model.onnx>"
    assert format_cc((8, 7)) == format_cc("8.7") == "8.7"
    assert format_cc("9") == "9.0"


# --------------------------------------------------------------------------- cache


def _key(**overrides):
    args = {
        "onnx_sha256": "ab" * 32,
        "precision": "fp16",
        "profile": DEFAULT_PROFILE.to_dict(),
        "trt_version": "10.3.0",
        "compute_capability": "8.7",
    }
    args.update(overrides)
    return cache_key(**args)


def test_cache_key_is_stable_and_sensitive_to_every_input():
    key = _key()
    # Key version 3: an engine cached before its metadata recorded the platform and the
    # serialized plugins (which the runtime reads from the copied metadata) is rebuilt once.
    assert key != "c1b7599a8ca83a20b1637bc7"  # the same inputs under key version 2
    assert key == _key() and len(key) == 24 and int(key, 16) >= 0
    assert _key(compute_capability=(8, 7)) == key
    variants = [
        _key(onnx_sha256="cd" * 32),
        _key(precision="int8"),
        _key(profile={**DEFAULT_PROFILE.to_dict(), "opt": [1, 3, 512, 512]}),
        _key(trt_version="10.3.1"),
        _key(compute_capability="8.6"),
        _key(dla_core=0),
        _key(version_compatible=True),
        _key(hardware_compatibility="ampere_plus"),
        _key(plugin_sha256="ef" * 32),
        _key(extra={"workspace_bytes": 1 << 30}),
    ]
    assert len({key, *variants}) == len(variants) + 1


def _built_engine(tmp_path, name="built.engine", payload=b"ENGINE", **meta):
    engine = tmp_path / name
    engine.write_bytes(payload)
    write_metadata(engine, _meta(**meta))
    return engine


def test_cache_store_then_lookup(tmp_path):
    cache = EngineCache(tmp_path / "cache")
    key = _key()
    assert cache.lookup(key) is None
    stored = cache.store(key, _built_engine(tmp_path))
    assert stored == cache.path_for(key) == tmp_path / "cache" / f"{key}.engine"
    assert cache.lookup(key) == stored
    assert stored.read_bytes() == b"ENGINE"
    assert read_metadata(stored)["cache_key"] == key
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == [
        f"{key}.engine",
        f"{key}.engine.json",
    ]


def test_cache_store_replaces_an_older_entry(tmp_path):
    cache = EngineCache(tmp_path / "cache")
    key = _key()
    cache.store(key, _built_engine(tmp_path, "a.engine", b"OLD"))
    cache.store(key, _built_engine(tmp_path, "b.engine", b"NEW", build_time="later"))
    assert cache.lookup(key).read_bytes() == b"NEW"
    assert read_metadata(cache.lookup(key))["build_time"] == "later"


def test_cache_lookup_misses_on_incomplete_entries(tmp_path):
    cache = EngineCache(tmp_path)
    key = _key()
    engine = cache.path_for(key)
    engine.write_bytes(b"ENGINE")
    assert cache.lookup(key) is None  # no metadata
    metadata_path(engine).write_text("{broken")
    assert cache.lookup(key) is None  # unreadable metadata
    write_metadata(engine, {**_meta(), "cache_key": "someotherkey"})
    assert cache.lookup(key) is None  # metadata of another key
    write_metadata(engine, {**_meta(), "cache_key": key})
    assert cache.lookup(key) == engine


def test_cache_store_failure_leaves_no_partial_entry(tmp_path, monkeypatch):
    cache = EngineCache(tmp_path / "cache")
    key = _key()
    engine = _built_engine(tmp_path)

    def disk_full(src, dst):
        with open(dst, "wb") as f:
            f.write(b"EN")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("shutil.copyfile", disk_full)
    with pytest.raises(OSError, match="No space left"):
        cache.store(key, engine)
    assert cache.lookup(key) is None
    assert list((tmp_path / "cache").iterdir()) == []


def test_cache_store_needs_metadata_and_valid_keys(tmp_path):
    cache = EngineCache(tmp_path / "cache")
    bare = tmp_path / "bare.engine"
    bare.write_bytes(b"ENGINE")
    with pytest.raises(FileNotFoundError, match="sllen-export"):
        cache.store(_key(), bare)
    for bad in ("", "../escape", "a/b", ".hidden"):
        with pytest.raises(ValueError, match="not a cache key"):
            cache.path_for(bad)
